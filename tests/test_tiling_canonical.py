"""Two-level tiling returns one optimal mapping, the canonical one, whatever
the method, the number of CP-SAT workers or the run (docs/tiling-exact-models.md, "The
canonical optimum")."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import mapcert
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.instances import load_text

# conv3_2 at 64 KiB has optima that differ only in P and Q (14 x 28 and 28 x 14)
VGG = "examples/vgg16_conv3_2_64KiB.yaml"
HALO = """family: tiling
workload: {name: c, op: conv2d, dims: {N: 1, M: 32, C: 16, P: 28, Q: 28, R: 3, S: 3}}
hardware: {levels: [{name: DRAM}, {name: GLB, capacity: 8 KiB}]}
space: {tiles: any, halo: true}
"""


@pytest.mark.parametrize("source", ["vgg", "halo-any"])
def test_every_method_and_worker_count_returns_the_same_mapping(source):
    problem = mapcert.load(VGG) if source == "vgg" else load_text(HALO)
    answers = set()
    for method, workers in (("cpsat", 1), ("cpsat", 2), ("cpsat", 1), ("milp", 0), ("enumerate", 0)):
        if method == "enumerate" and source != "vgg":
            continue  # the enumeration of partial tiles with halo reuse is refused as too large here
        result = solve_tiling(replace(problem, solver=replace(problem.solver, workers=workers)), method, 120)
        assert result.status == "optimal", (method, result.message)
        answers.add(json.dumps({"tiles": result.mapping.tiles, "order": list(result.mapping.order)}, sort_keys=True))
    assert len(answers) == 1, answers


def test_the_canonical_mapping_has_the_least_tiles_in_order():
    """Among the optima of the vgg layer, P 14 x Q 28 precedes P 28 x Q 14."""
    result = solve_tiling(mapcert.load(VGG), "cpsat", 60)
    assert (result.mapping.tiles["P"], result.mapping.tiles["Q"]) == (14, 28)


def test_another_optimum_is_replaced_by_the_canonical_one():
    """The step that makes the answer canonical, on its own: handed the other
    optimum (P 28 x Q 14, same traffic), it returns P 14 x Q 28."""
    import time

    from mapcert.formulations.tiling.cost import evaluate
    from mapcert.formulations.tiling.problem import Mapping
    from mapcert.formulations.tiling.solve import _canonical, _finish

    problem = mapcert.load(VGG)
    best = solve_tiling(problem, "cpsat", 60)
    other = Mapping(tiles={**best.mapping.tiles, "P": 28, "Q": 14}, order=best.mapping.order)
    assert evaluate(problem, other).objective == best.objective  # a second optimum
    handed = _finish(problem, "cpsat", other, evaluate(problem, other).total_bits, proved=True)
    canonical = _canonical(problem, handed, time.perf_counter() + 60)
    assert canonical.status == "optimal" and canonical.mapping == best.mapping
