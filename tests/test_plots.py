"""`mapcert plot` writes pictures and never overwrites one unasked."""

from __future__ import annotations

import pytest

from pathlib import Path

from mapcert import plots

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "small_three_level.yaml"
PNG = b"\x89PNG"


from helpers import run_mapcert as run


@pytest.mark.slow
def test_layer_sweep_plot(tmp_path):
    picture = tmp_path / "sweep.png"
    done = run("plot", str(EXAMPLE), "-o", str(picture), "--sizes", "32 B,64 B", "-t", "20")
    assert done.returncode == 0, done.stderr
    assert picture.read_bytes().startswith(PNG)
    assert "30,960" in done.stdout  # the optimum at the example's own 64 B (the RF bypasses inputs and outputs)
    again = run("plot", str(EXAMPLE), "-o", str(picture))
    assert again.returncode == 2 and "not overwritten" in again.stderr


def test_network_gap_chart(tmp_path):
    picture = tmp_path / "gaps.png"
    plots.plot_network_gaps("net", ["net.a", "net.b"], {"random": [0.1, None], "greedy": [0.5, 0.2]}, picture, "t")
    assert picture.read_bytes().startswith(PNG)


def test_plot_refuses_two_level_instances(tmp_path):
    two_level = Path(__file__).resolve().parent.parent / "examples" / "vgg16_conv3_2_64KiB.yaml"
    done = run("plot", str(two_level), "-o", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "no picture" in done.stderr
