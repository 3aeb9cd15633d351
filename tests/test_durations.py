"""Time limits written as numbers or durations, in instances and on the command line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from helpers import run_mapcert
from mapcert.units import MAX_SECONDS, parse_seconds

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "small_three_level.yaml"


@pytest.mark.parametrize("text, seconds", [(90, 90.0), (2.5, 2.5), ("90", 90.0), ("90 s", 90.0), ("3m", 180.0),
                                           ("3 min", 180.0), ("1.5 h", 5400.0), ("1h 30m", 5400.0),
                                           ("2 minutes", 120.0), ("1e3", 1000.0)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text, said", [("3x", "not a duration"), ("", "is empty"), ("m", "not a duration"),
                                        ("1 30m", "not a duration"), ("8 days", "not a duration"), ("  ", "is empty"),
                                        (True, "not a duration"), (None, "is empty"),
                                        (0, "must be positive"), ("-1", "must be positive"),
                                        (math.nan, "must be positive"), (math.inf, "at most a week"),
                                        (MAX_SECONDS * 2, "at most a week")])
def test_what_is_not_a_time_limit_is_refused_by_name(text, said):
    with pytest.raises(ValueError, match=said):
        parse_seconds(text)


def test_an_instance_and_the_cli_take_a_duration(tmp_path):
    document = yaml.safe_load(EXAMPLE.read_text())
    document["solver"]["time_limit"] = "1 min"
    path = tmp_path / "i.yaml"
    path.write_text(yaml.safe_dump(document))
    done = run_mapcert("solve", str(path), "--json")
    assert done.returncode == 0, done.stderr
    document["solver"]["time_limit"] = "3 weeks"
    path.write_text(yaml.safe_dump(document))
    done = run_mapcert("solve", str(path))
    assert done.returncode == 2 and "solver.time_limit" in done.stderr and "not a duration" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_mapcert("solve", str(EXAMPLE), "--time-limit", "30 s").returncode == 0
    bad = run_mapcert("solve", str(EXAMPLE), "--time-limit", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
