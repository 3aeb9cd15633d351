"""Real layers of VGG-16 and ResNet-50 at 16, 64 and 256 KiB (batch 1, 8-bit,
divisor tiles): CP-SAT and the MILP both prove the same optimum, it is at or
above the rigorous bound, and the functional model passes.  The default run
covers a chosen subset; ``make test-all`` (marker ``slow``) covers every conv
layer."""

from __future__ import annotations

import pytest

from mapcert import workload_library
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.instances import load_text
from mapcert.formulations.family import Attempt, Status
from mapcert.formulations.registry import family_of
from mapcert.validation.certificate import certify

SIZES = ("16KiB", "64KiB", "256KiB")
SUBSET = [
    "vgg16.conv1_2",   # large spatial, few channels
    "vgg16.conv3_2",   # the demo layer
    "vgg16.conv5_1",   # deep, small spatial
    "resnet50.conv1",  # 7x7 stride 2
    "resnet50.layer2.0.conv2",  # 3x3 stride 2
    "resnet50.layer4.1.conv1",  # 1x1, many channels
]
ALL = [f"{net}.{name}" for net in ("vgg16", "resnet50")
       for name, layer in workload_library.network(net).items() if layer["op"] == "conv2d"]


def problem_for(layer: str, size: str):
    return load_text(f"family: tiling\nworkload: {layer}\nhardware: glb-{size}\n", f"{layer}@{size}")


def check_layer(layer: str, size: str) -> None:
    problem = problem_for(layer, size)
    cpsat = solve_tiling(problem, "cpsat", 120)
    milp = solve_tiling(problem, "milp", 120)
    assert cpsat.status == "optimal", cpsat.message
    assert milp.status == "optimal", milp.message
    assert cpsat.objective == milp.objective
    family = family_of(problem)
    bounds = family.bounds(problem)
    attempt = Attempt(Status.OPTIMAL, cpsat.mapping, cpsat.solver_objective, cpsat.best_bound)
    cert = certify(family, problem, attempt, bounds, functional=True)
    assert cert.status == Status.OPTIMAL, [c for c in cert.checks if not c.passed]
    assert cert.functional.ran and cert.functional.passed
    assert all(cert.evaluation.objective >= b.value for b in bounds if b.rigorous)


SLOW_PAIRS = {("vgg16.conv1_2", "16KiB"), ("vgg16.conv1_2", "64KiB")}
"""The slowest pairs of the subset (about 10 s each); ``make test-all`` runs them."""


@pytest.mark.parametrize("layer, size", [
    pytest.param(layer, size, marks=[pytest.mark.slow] if (layer, size) in SLOW_PAIRS else [])
    for layer in SUBSET for size in SIZES])
def test_network_layer_subset(layer, size):
    check_layer(layer, size)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("layer", [l for l in ALL if l not in SUBSET])
def test_network_layer_all(layer, size):
    check_layer(layer, size)


@pytest.mark.parametrize("space", ["", "space: {bypass: chosen}\n"])
def test_a_layer_has_one_optimum_alone_and_in_its_network(space):
    """On DRAM and one buffer a layer alone is solved by the two-level
    model, which keeps every tensor in the buffer; in a network its layers
    are solved the same way, so both give one optimum. ``bypass: chosen``
    lets the network's layers stream a tensor past the buffer instead:
    ResNet-18's conv1 then moves less (its weights go straight to the MACs)."""
    import mapcert

    hardware = "hardware:\n  levels:\n    - {name: DRAM}\n    - {name: GLB, capacity: 16 KiB}\n"
    layers = {"conv1": "{op: conv2d, dims: {M: 64, C: 3, P: 112, Q: 112, R: 7, S: 7}, stride: 2}",
              "pw": "{op: conv2d, dims: {M: 64, C: 64, P: 56, Q: 56}}"}
    network = "workload:\n  name: two\n  layers:\n" + "".join(f"    {n}: {d}\n" for n, d in layers.items())
    whole = mapcert.solve(load_text(f"family: tiling\n{network}{hardware}{space}", "net.yaml"),
                          functional=False, heuristics=False, jobs=1)
    assert [part.name for part in whole.parts] == ["two.conv1", "two.pw"]
    for part in whole.parts:
        name = part.name.split(".")[1]
        alone = load_text(f"family: tiling\nworkload: {{name: {name}, {layers[name][1:]}\n{hardware}",
                          "one.yaml")
        assert family_of(alone).name == "tiling"       # the two-level model
        optimum = mapcert.solve(alone, functional=False, heuristics=False)
        assert optimum.status == part.result.status == Status.OPTIMAL
        if space:
            assert part.result.objective <= optimum.objective
        else:
            assert part.result.objective == optimum.objective
            # the network's mapping (hierarchy format) scores the same on the layer alone (two-level format)
            family = family_of(alone)
            scored = family.evaluate(alone, family.solution_from_dict(alone, part.result.solution))
            assert scored.feasible and scored.objective == part.result.objective
    if space:
        assert whole.parts[0].result.objective < mapcert.solve(
            load_text(f"family: tiling\nworkload: {{name: conv1, {layers['conv1'][1:]}\n{hardware}", "c.yaml"),
            functional=False, heuristics=False).objective
