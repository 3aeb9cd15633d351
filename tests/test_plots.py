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


def test_a_two_level_instance_plots_traffic_against_the_buffer_size(tmp_path):
    """The lower-bound paper's picture: at the example's own 64 KiB the
    curve passes through the optimum `solve` proves (README)."""
    two_level = EXAMPLE.parent / "vgg16_conv3_2_64KiB.yaml"
    picture = tmp_path / "x.png"
    done = run("plot", str(two_level), "-o", str(picture), "--sizes", "16KiB,64KiB")
    assert done.returncode == 0, done.stderr
    assert picture.read_bytes().startswith(PNG)
    assert "off-chip traffic against GLB size (16.00 KiB: 26,263,552, 64.00 KiB: 11,321,344)" in " ".join(
        done.stdout.split())
    wrong = run("plot", str(two_level), "-o", str(tmp_path / "y.png"), "--level", "RF")
    assert wrong.returncode == 2 and "--level: 'RF' is not the buffer" in wrong.stderr


def test_plot_refuses_a_family_without_a_picture(tmp_path):
    crossbar = EXAMPLE.parent / "resnet34_crossbar.yaml"
    done = run("plot", str(crossbar), "-o", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "no picture" in done.stderr
