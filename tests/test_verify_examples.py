"""Every file in examples/: a fresh result keeps the one format (JSON Schema,
a rigorous lower bound, a functional run) and passes `verify` (the tamper
corpus runs on every family in test_family_contract.py).  The default run
re-proves with each example's own method; the slow run with every exact
method that applies."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest

import mapcert
from mapcert.formulations.registry import family_of
from mapcert.result import json_schema

EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[1] / "examples").glob("*.yaml")
                  if not p.name.startswith("sweep_"))  # sweep files: tests/test_sweeps.py


@lru_cache(maxsize=None)
def solved(path: Path):
    return mapcert.solve(path)


SLOW_TO_VERIFY = {"resnet18_layer4_eyeriss_edp",  # its EDP search is also checked by test_multilevel_exact.py
                  "resnet34_crossbar"}  # a whole network; crossbar results verify in test_family_contract.py


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_TO_VERIFY else p
                                  for p in EXAMPLES], ids=[p.stem for p in EXAMPLES])
def test_example_result_keeps_the_format_and_verifies(path):
    result = solved(path)
    data = result.to_dict()
    jsonschema.validate(json.loads(json.dumps(data)), json_schema())
    assert result.status == "optimal", result.message
    assert result.lower_bound is not None and result.objective >= result.lower_bound
    functional = result.certificate.functional
    assert functional.ran and functional.passed, functional
    problem = mapcert.load(path)
    own = [family_of(problem).default_method(problem)]
    verification = mapcert.verify(data, time_limit=120, methods=own)
    assert verification.passed, [(c.name, c.detail) for c in verification.checks if not c.passed]


def example(name: str) -> Path:
    return next(p for p in EXAMPLES if p.stem == name)


def test_the_full_size_hierarchy_layer_runs_in_the_functional_model():
    functional = solved(example("resnet18_layer4_eyeriss")).certificate.functional
    assert functional.ran and functional.passed, functional
    assert functional.counts["cycles"] == 1_204_224  # 115,605,504 MACs on 96 of the 168 PEs


@pytest.mark.slow
def test_edp_with_bandwidth_limits_is_proved():
    """EDP on a full-size layer whose DRAM and per-PE bandwidths bind: the
    exact search walks the energy-latency front and proves the optimum, and
    the functional model runs it (small EDP instances against the
    enumeration are in the default suite: tests/test_multilevel_exact.py)."""
    result = solved(example("resnet18_layer4_eyeriss_edp"))
    assert result.status == "optimal", result.message
    metrics = result.metrics
    assert metrics["latency_cycles"] > metrics["compute_cycles"]  # a bandwidth limit binds
    assert result.objective == metrics["energy"] * metrics["latency_cycles"] >= result.lower_bound


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_result_is_reproved_by_every_exact_method(path):
    verification = mapcert.verify(solved(path).to_dict(), time_limit=900)
    assert verification.passed, [(c.name, c.detail) for c in verification.checks if not c.passed]
