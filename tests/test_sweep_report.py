"""What a sweep shows: `mapcert plot` of a store and the HTML report, the
report opened in a real browser (headless Chromium, when installed) and
parsed."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from helpers import lenet_sweep, run_mapcert

NETWORK_SWEEP = lenet_sweep("lenet", ["1 KiB", "4 KiB", "16 KiB"])


@pytest.fixture(scope="module")
def network_store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lenet")
    path = folder / "lenet.yaml"
    path.write_text(NETWORK_SWEEP)
    done = run_mapcert("sweep", str(path), "--serial", "--no-functional")
    assert done.returncode == 0, done.stderr
    return folder / "lenet.db"


@pytest.fixture(scope="module")
def partition_store(tmp_path_factory) -> Path:
    from mapcert.formulations import registry

    folder = tmp_path_factory.mktemp("partition")
    base = yaml.safe_load(registry.get("partition").examples()[0])
    base.pop("buffer", None)
    path = folder / "fuse.yaml"
    path.write_text(yaml.safe_dump({"sweep": "fuse", "base": {**base, "buffer": "1 KiB"},
                                    "axes": {"buffer": ["1 KiB", "2 KiB", "8 KiB"]}}, sort_keys=False))
    done = run_mapcert("sweep", str(path), "--serial")
    assert done.returncode == 0, done.stderr
    return folder / "fuse.db"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_of_a_store_draws_the_curve_and_the_totals(network_store, tmp_path):
    output = tmp_path / "slope.png"
    done = run_mapcert("plot", str(network_store), "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert "against hardware.levels[GLB].capacity" in done.stdout and "3 points" in done.stdout
    width, height = png_size(output.read_bytes())
    assert width > 1000 and height > 500
    layer = run_mapcert("plot", str(network_store), "-o", str(tmp_path / "conv1.png"), "--layer", "conv1")
    assert layer.returncode == 0, layer.stderr
    for args, message in ((("--layer", "conv9"), "no such layer"), (("--x", "colour"), "not a swept field"),
                          (("--where", "status=nonsense"), "no row has it; status is one of optimal")):
        bad = run_mapcert("plot", str(network_store), "-o", str(tmp_path / "bad.png"), *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    assert run_mapcert("plot", str(tmp_path / "none.db"), "-o", str(tmp_path / "x.png")).returncode == 2


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse(text: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(text)
    return parser.tags


def check_report(text: str, points: int, pictures: int) -> None:
    tags = parse(text)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) >= pictures
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(attrs["src"].split(",", 1)[1]))
        assert width > 300 and height > 200
    assert not [a for _, a in tags if any(str(v).startswith(("http:", "https:", "//")) for k, v in a.items()
                                          if k in ("src", "href"))], "the report must be self-contained"
    tables = [attrs.get("class") for tag, attrs in tags if tag == "table"]
    assert tables == ["points", "jobs"]
    start = text.index("<table class='points'>")
    assert text[start:text.index("</table>", start)].count("<tr") == points + 1


def test_the_html_report_holds_tables_and_pictures(network_store, partition_store, tmp_path):
    report = tmp_path / "lenet.html"
    done = run_mapcert("results", str(network_store), "--html", str(report))
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    check_report(text, points=3, pictures=2)  # the curve and totals, and the heaviest layers
    assert "layers that weigh most" in text and "class='best'" in text
    fused = tmp_path / "fuse.html"
    assert run_mapcert("results", str(partition_store), "--html", str(fused)).returncode == 0
    text = fused.read_text()
    check_report(text, points=3, pictures=2)  # the curve and totals, and the best point's partition
    assert "The best point's mapping" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", *args], capture_output=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium); "
                                             "the report is still checked by parsing its HTML")
def test_the_html_report_renders_in_a_real_browser(network_store, tmp_path):
    report = tmp_path / "report.html"
    assert run_mapcert("results", str(network_store), "--html", str(report)).returncode == 0
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    shots = {}
    for name, page in (("report", report), ("blank", blank)):
        shot = tmp_path / f"{name}.png"
        done = _chromium("--window-size=1300,2000", f"--screenshot={shot}", page.as_uri())
        assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]
        assert png_size(shot.read_bytes()) == (1300, 2000)
        shots[name] = shot.stat().st_size
    assert shots["report"] > 20 * shots["blank"], shots  # tables and pictures, not an empty page
    dom = _chromium("--dump-dom", "--virtual-time-budget=5000", report.as_uri()).stdout.decode()
    tags = parse(dom)
    assert sum(tag == "img" for tag, _ in tags) >= 2
    assert [a.get("class") for t, a in tags if t == "table"] == ["points", "jobs"]
    assert "Sweep lenet" in dom
