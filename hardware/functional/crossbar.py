"""Functional model of bit-sliced crossbar MVMs and of a PIM convolution in
both mapping styles.

A crossbar stores unsigned cell values: weights are offset-encoded
(w + 2^(B-1)) and cut into ``cell_bits`` slices, one column each.  Inputs
(non-negative activations) enter ``dac_bits`` at a time.  Each column's
analog sum of input-chunk times cell value is digitized by an ADC of
``adc_bits`` (values above its range saturate), then chunks and slices are
shifted and added digitally, row blocks are summed, and the offset
(2^(B-1) * sum of inputs) is subtracted.  With enough ADC bits the result is
the exact integer product; with fewer, the error is reported.

``run_pim_conv`` executes one layer with r copies in either style on an
actual crossbar layout and counts crossbars, crossbar activations, input
fetches and cycles, to be compared with the allocation model.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from ...formulations.crossbar.cost import CrossbarLayer, CrossbarProblem
from ..pim import PimChip


def exact_adc_bits(chip: PimChip) -> int:
    """ADC bits that never saturate: a full column of maximal products."""
    top = chip.rows * (2 ** chip.dac_bits - 1) * (2 ** chip.cell_bits - 1)
    return int(top).bit_length()


@dataclass
class MvmStats:
    crossbars: int          # distinct crossbars holding the matrix
    activations: int        # crossbar activations (one per input chunk per crossbar)
    saturated: int          # ADC conversions that clipped


def crossbar_mvm(chip: PimChip, weights: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, MvmStats]:
    """``inputs`` (vectors, K) @ ``weights`` (K, M) through crossbars.

    Weights must be B-bit signed integers, inputs unsigned ``input_bits``."""
    k, m = weights.shape
    wbits, cb = chip.weight_bits, chip.cell_bits
    offset = 2 ** (wbits - 1)
    unsigned = weights.astype(np.int64) + offset
    slices = [(unsigned >> (s * cb)) & (2 ** cb - 1) for s in range(chip.slices)]
    chunks = [(inputs.astype(np.int64) >> (t * chip.dac_bits)) & (2 ** chip.dac_bits - 1)
              for t in range(ceil(chip.input_bits / chip.dac_bits))]
    adc_max = 2 ** chip.adc_bits - 1
    row_blocks = ceil(k / chip.rows)
    col_blocks = ceil(m * chip.slices / chip.columns)
    out = np.zeros((inputs.shape[0], m), dtype=np.int64)
    saturated = 0
    for rb in range(row_blocks):
        rows = slice(rb * chip.rows, min(k, (rb + 1) * chip.rows))
        for t, chunk in enumerate(chunks):
            for s, plane in enumerate(slices):
                analog = chunk[:, rows] @ plane[rows, :]
                digital = np.minimum(analog, adc_max)
                saturated += int((analog > adc_max).sum())
                out += digital << (t * chip.dac_bits + s * cb)
    out -= offset * inputs.astype(np.int64).sum(axis=1, keepdims=True)
    crossbars = row_blocks * col_blocks * chip.copies_factor
    stats = MvmStats(crossbars, crossbars * len(chunks) * inputs.shape[0], saturated)
    return out, stats


@dataclass
class PimConvReport:
    outputs_match: bool
    max_abs_error: int
    crossbars_per_copy: int
    activations: int
    input_bits: int
    cycles: int
    saturated: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def run_pim_conv(problem: CrossbarProblem, layer: CrossbarLayer, style: str, copies: int,
                 seed: int = 0) -> PimConvReport:
    """Execute ``layer`` (groups = 1) with ``copies`` copies in ``style``."""
    if layer.groups != 1:
        raise ValueError("the functional PIM convolution models groups = 1")
    chip = problem.chip
    rng = np.random.default_rng(seed)
    half = 2 ** (chip.weight_bits - 1)
    weights = rng.integers(-half, half, size=(layer.M, layer.C, layer.R, layer.S))
    inputs = rng.integers(0, 2 ** chip.input_bits, size=(layer.N, layer.C, layer.input_height, layer.input_width))
    sh, sw = layer.stride
    # reference: direct convolution
    ref = np.zeros((layer.N, layer.M, layer.P, layer.Q), dtype=np.int64)
    for r in range(layer.R):
        for s in range(layer.S):
            window = inputs[:, :, r: r + (layer.P - 1) * sh + 1: sh, s: s + (layer.Q - 1) * sw + 1: sw]
            ref += np.einsum("ncpq,mc->nmpq", window, weights[:, :, r, s])
    pixels = [(n, p, q) for n in range(layer.N) for p in range(layer.P) for q in range(layer.Q)]
    out = np.zeros_like(ref)
    saturated = activations = 0
    if style == "conventional":
        # every pixel fetches its receptive field and multiplies the unrolled kernels
        field = np.stack([inputs[n, :, p * sh: p * sh + layer.R, q * sw: q * sw + layer.S].ravel()
                          for n, p, q in pixels])
        y, stats = crossbar_mvm(chip, weights.reshape(layer.M, -1).T, field)
        fetched = field.size
        per_copy = stats.crossbars
        activations += stats.activations
        saturated += stats.saturated
    else:
        # each kernel position on its own crossbars; each input fetched once
        # and forwarded between the positions' PEs; an adder tree sums them
        fetched = inputs.size
        y = np.zeros((len(pixels), layer.M), dtype=np.int64)
        per_copy = 0
        for r in range(layer.R):
            for s in range(layer.S):
                vec = np.stack([inputs[n, :, p * sh + r, q * sw + s] for n, p, q in pixels])
                part, stats = crossbar_mvm(chip, weights[:, :, r, s].T, vec)
                y += part
                per_copy += stats.crossbars
                activations += stats.activations
                saturated += stats.saturated
    for idx, (n, p, q) in enumerate(pixels):
        out[n, :, p, q] = y[idx]
    # copies take pixels round-robin, all copies in parallel
    busiest = ceil(len(pixels) / copies)
    error = int(np.abs(out - ref).max()) if out.size else 0
    return PimConvReport(
        outputs_match=bool(np.array_equal(out, ref)),
        max_abs_error=error,
        crossbars_per_copy=per_copy,
        activations=activations,
        input_bits=fetched * chip.input_bits,
        cycles=busiest * chip.cycles_per_mvm,
        saturated=saturated,
    )
