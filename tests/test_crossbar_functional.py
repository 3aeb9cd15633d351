"""The bit-sliced crossbar model computes exact products with enough ADC
bits, reports the error with fewer, and its layout, fetches, activations and
cycles equal the allocation model in both mapping styles; every certificate
holds a functional run of the allocation, on a stated sample of layers when
the network is large, and a count that disagrees with the cost model fails
it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mapcert.formulations import registry
from mapcert.formulations.crossbar.cost import Allocation, CrossbarLayer, CrossbarProblem, evaluate
from mapcert.formulations.crossbar.family import functional_verdict
from mapcert.hardware.functional.crossbar import (crossbar_mvm, exact_adc_bits, layer_work, run_allocation,
                                                  run_pim_conv)
from mapcert.hardware.pim import pim_chip
from mapcert.instances import load_text
from mapcert.pipeline import solve

FAMILY = registry.get("crossbar")


@pytest.mark.parametrize("cell_bits,dac_bits", [(1, 1), (2, 1), (2, 2), (4, 4)])
def test_mvm_is_exact_with_enough_adc_bits(cell_bits, dac_bits):
    chip = pim_chip("neurosim-rram", rows=16, columns=16, cell_bits=cell_bits, dac_bits=dac_bits)
    chip = pim_chip("neurosim-rram", rows=16, columns=16, cell_bits=cell_bits, dac_bits=dac_bits,
                    adc_bits=exact_adc_bits(chip))
    rng = np.random.default_rng(cell_bits * 10 + dac_bits)
    w = rng.integers(-128, 128, size=(37, 5))
    x = rng.integers(0, 256, size=(4, 37))
    y, stats = crossbar_mvm(chip, w, x)
    assert np.array_equal(y, x @ w) and stats.saturated == 0
    assert stats.crossbars == 3 * int(np.ceil(5 * chip.slices / 16))


def test_a_differential_chip_stores_both_signs_on_crossbars_of_their_own():
    chip = pim_chip("neurosim-rram", rows=16, columns=16, differential=True)
    chip = replace(chip, adc_bits=exact_adc_bits(chip))
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(20, 3))
    x = rng.integers(0, 256, size=(5, 20))
    y, stats = crossbar_mvm(chip, w, x)
    assert np.array_equal(y, x @ w)
    assert stats.crossbars == 2 * 2 * 2  # positive and negative parts x 2 row blocks x 2 column blocks


def test_a_small_adc_saturates_and_the_error_shows():
    chip = pim_chip("neurosim-rram", rows=64, columns=64, adc_bits=3)
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(64, 4))
    x = rng.integers(0, 256, size=(3, 64))
    y, stats = crossbar_mvm(chip, w, x)
    assert stats.saturated > 0 and not np.array_equal(y, x @ w)


def _assert_matches_the_model(problem: CrossbarProblem, layer: CrossbarLayer, style: str, copies: int) -> None:
    report = run_pim_conv(problem, layer, style, copies)
    assert report.outputs_match and report.bit_planes_match
    assert report.crossbars_per_copy == problem.crossbars_per_copy(layer, style)
    assert report.crossbars == copies * problem.crossbars_per_copy(layer, style)
    assert report.input_bits == problem.input_bits(layer, style)
    assert report.cycles == problem.stage_cycles(layer, copies)
    assert report.activations == problem.activations(layer, style)


@pytest.mark.parametrize("style", ["conventional", "split"])
@pytest.mark.parametrize("layer", [
    CrossbarLayer("a", C=5, M=6, P=4, Q=3, R=3, S=3),
    CrossbarLayer("b", C=20, M=3, P=3, Q=3, R=3, S=2, stride=(2, 1)),
    CrossbarLayer("fc", C=40, M=7),
    CrossbarLayer("downsample", C=9, M=4, P=3, Q=4, stride=(2, 2)),
    CrossbarLayer("depthwise", C=6, M=6, P=3, Q=3, R=3, S=3, groups=6),
    CrossbarLayer("grouped", C=8, M=6, P=2, Q=3, R=2, S=2, N=2, groups=2, stride=(3, 1)),
])
def test_pim_convolution_matches_the_allocation_model(style, layer):
    chip = pim_chip("neurosim-rram", rows=16, columns=16)
    problem = CrossbarProblem((layer,), chip)
    for copies in (1, 2, 5):
        _assert_matches_the_model(problem, layer, style, copies)


def test_a_differential_chip_with_two_bit_cells_matches_the_model():
    chip = pim_chip("neurosim-rram", rows=8, columns=8, differential=True, cell_bits=2, dac_bits=2)
    layer = CrossbarLayer("d", C=5, M=3, P=3, Q=2, R=2, S=2)
    problem = CrossbarProblem((layer,), chip)
    for style in ("conventional", "split"):
        _assert_matches_the_model(problem, layer, style, 3)


def test_every_certificate_holds_a_functional_run_of_the_allocation():
    problem = load_text("family: crossbar\nworkload:\n  - {name: a, dims: {M: 4, C: 6, P: 3, Q: 2, R: 3, S: 3}}\n"
                        "  - {name: b, dims: {M: 4, C: 6, P: 3, Q: 2, R: 3, S: 3}}\n"
                        "  - {name: c, dims: {M: 3, C: 20, P: 2, Q: 2}, stride: 2}\n"
                        "hardware: {preset: neurosim-rram, rows: 16, columns: 16, crossbars_per_pe: 4, "
                        "pes_per_tile: 2, tiles: 12}\nconstraints: {budget: 60}\n")
    result = solve(problem, time_limit=30)
    functional = result.certificate.functional
    assert functional.ran and functional.passed, functional.reason
    assert functional.counts["layers"] == functional.counts["layers_run"] == 3
    runs = functional.counts["runs"]
    allocation = FAMILY.solution_from_dict(problem, result.solution)
    metrics = evaluate(problem, allocation)
    for row in runs:
        i = [l.name for l in problem.layers].index(row["layer"])
        assert (row["crossbars"], row["activations"], row["input_bits"], row["cycles"]) == (
            metrics.crossbars[i], metrics.activations[i], metrics.input_bits[i], metrics.stage_cycles[i])
    if allocation.styles[0] == allocation.styles[1] and allocation.copies[0] == allocation.copies[1]:
        assert any(row["stands_for"] == ["a", "b"] for row in runs)  # same shape, style, copies: run once
    assert any(c.name == "functional run: outputs and counts match" and c.passed for c in result.certificate.checks)


def test_a_count_the_cost_model_gets_wrong_fails_the_functional_run():
    layers = (CrossbarLayer("a", C=6, M=4, P=3, Q=2, R=3, S=3), CrossbarLayer("b", C=20, M=3, P=2, Q=2))
    problem = CrossbarProblem(layers, pim_chip("neurosim-rram", rows=16, columns=16), budget=100)
    allocation = Allocation(["split", "conventional"], [2, 1])
    metrics = evaluate(problem, allocation)
    run = run_allocation(problem, allocation)
    assert functional_verdict(problem, metrics, run).passed
    metrics.input_bits[1] += 8
    verdict = functional_verdict(problem, metrics, run)
    assert verdict.ran and not verdict.passed and "b: counted input_bits" in verdict.reason


def test_a_large_network_runs_a_stated_sample_that_includes_the_bottleneck():
    layers = tuple(CrossbarLayer(f"l{i}", C=8 + i, M=8, P=6 + i, Q=6, R=3, S=3) for i in range(6))
    problem = CrossbarProblem(layers, pim_chip("neurosim-rram", rows=16, columns=16), budget=10_000)
    allocation = Allocation(["split"] * 6, [4, 4, 4, 4, 1, 4])   # l4 is the slowest stage
    works = sorted(layer_work(problem, l) for l in layers)
    run = run_allocation(problem, allocation, budget=layer_work(problem, layers[4]) + works[0] + works[1])
    assert run.bottleneck == "l4" and [r.layer for r in run.reports] == ["l4", "l0", "l1"]
    assert run.skipped == ["l2", "l3", "l5"]
    verdict = functional_verdict(problem, evaluate(problem, allocation), run)
    assert verdict.ran and verdict.passed
    assert "a sample of 3 of 6 layers" in verdict.reason and "bottleneck layer l4" in verdict.reason


@pytest.mark.slow
def test_the_resnet34_example_allocation_runs_every_layer():
    from mapcert.instances import load

    problem = load("examples/resnet34_crossbar.yaml")
    allocation = FAMILY.methods(problem)[1].run(problem, 60).solution
    functional = FAMILY.functional(problem, allocation, seed=5)
    assert functional.ran and functional.passed, functional.reason
    assert functional.counts["layers_run"] == len(problem.layers)
