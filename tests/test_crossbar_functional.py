"""The bit-sliced crossbar model computes exact products with enough ADC
bits, reports the error with fewer, and its layout, fetches and cycles equal
the allocation model in both mapping styles."""

from __future__ import annotations

import numpy as np
import pytest

from mapcert.formulations.crossbar.cost import CrossbarLayer, CrossbarProblem
from mapcert.hardware.functional.crossbar import crossbar_mvm, exact_adc_bits, run_pim_conv
from mapcert.hardware.pim import pim_chip


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


def test_a_small_adc_saturates_and_the_error_shows():
    chip = pim_chip("neurosim-rram", rows=64, columns=64, adc_bits=3)
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(64, 4))
    x = rng.integers(0, 256, size=(3, 64))
    y, stats = crossbar_mvm(chip, w, x)
    assert stats.saturated > 0 and not np.array_equal(y, x @ w)


@pytest.mark.parametrize("style", ["conventional", "split"])
@pytest.mark.parametrize("layer", [
    CrossbarLayer("a", C=5, M=6, P=4, Q=3, R=3, S=3),
    CrossbarLayer("b", C=20, M=3, P=3, Q=3, R=3, S=2, stride=(2, 1)),
    CrossbarLayer("fc", C=40, M=7),
])
def test_pim_convolution_matches_the_allocation_model(style, layer):
    chip = pim_chip("neurosim-rram", rows=16, columns=16)
    chip = pim_chip("neurosim-rram", rows=16, columns=16, adc_bits=exact_adc_bits(chip))
    problem = CrossbarProblem((layer,), chip)
    for copies in (1, 2, 5):
        report = run_pim_conv(problem, layer, style, copies)
        assert report.outputs_match
        assert report.crossbars_per_copy == problem.crossbars_per_copy(layer, style)
        assert report.input_bits == problem.input_bits(layer, style)
        assert report.cycles == problem.stage_cycles(layer, copies)
        # the energy model's activation count
        assert report.activations == layer.outputs * problem.crossbars_per_copy(layer, style) * chip.input_chunks
