"""Functional model of bit-sliced crossbar MVMs and of a PIM convolution in
both mapping styles, vectorized.

A crossbar stores unsigned cell values.  Weights are offset-encoded
(w + 2^(B-1)), or, on a differential chip, split into a positive and a
negative part on crossbars of their own; either is cut into ``cell_bits``
slices, one column each (filter m owns the ``slices`` adjacent columns
starting at m * slices).  Inputs (non-negative activations) enter
``dac_bits`` at a time.  Each column's analog sum of input chunk times cell
value is digitized by an ADC, then chunks and slices are shifted and added
digitally, row blocks are summed, and the offset (2^(B-1) * sum of inputs)
is subtracted (or the negative part's result, on a differential chip).

:func:`run_pim_conv` executes one layer with r copies in either style on an
actual crossbar layout, with converters wide enough never to clip, so that
its output must equal the integer convolution; it counts what it uses --
crossbars holding weights, crossbar activations, ADC conversions, input
elements fetched from the buffer, and the cycles of the busiest copy --
for comparison with the allocation model, and reports what the chip's own
(narrower) ADC would clip.  :func:`run_allocation` runs the layers of a
whole allocation, or a stated sample of them within a work budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...formulations.crossbar.cost import Allocation, CrossbarLayer, CrossbarProblem
from ..pim import PimChip
from .blas import single_threaded_blas

WORK_BUDGET = 1e10
"""Multiply-accumulates (:func:`layer_work`) :func:`run_allocation` spends
before it samples layers: about 3 s of matrix products on one core (every
distinct layer of ResNet-34 takes 0.7e10)."""

BOTTLENECK_SHARE = 4
"""The bottleneck layer runs even when it alone takes this many budgets."""

MEMORY_LIMIT = 2 ** 26
"""Largest array (elements) one layer's run may hold -- the receptive fields
of every output pixel in the conventional style, or the input -- about
512 MiB as int64; a larger layer is not run."""

BATCH_ELEMENTS = 1 << 23
"""Largest analog-sum array (chunks x vectors x columns) held at once."""


def exact_adc_bits(chip: PimChip) -> int:
    """ADC bits that never saturate: a full column of maximal products."""
    top = chip.rows * (2 ** chip.dac_bits - 1) * (2 ** chip.cell_bits - 1)
    return int(top).bit_length()


@dataclass
class MvmStats:
    """What one bit-sliced matrix-vector product used."""

    crossbars: int          # distinct crossbars holding the matrix
    activations: int        # crossbar activations (one per input chunk per crossbar per vector)
    saturated: int          # ADC conversions that clipped
    conversions: int = 0    # ADC conversions (columns x row blocks x chunks x vectors)


@dataclass
class _Programmed:
    """Weights of G independent matrices (K, M) programmed as cell planes.

    ``parts`` holds one (G, K, M * slices) array of cell values per
    encoding part (offset: one; differential: positive and negative) and
    ``signs`` the sign each part's result is added with."""

    parts: list[np.ndarray]
    signs: list[int]
    offset: int
    crossbars: int


def _program(chip: PimChip, weights: np.ndarray) -> _Programmed:
    """Cut (G, K, M) signed weights into cell slices on crossbars."""
    g, k, m = weights.shape
    cb, slices = chip.cell_bits, chip.slices
    w = weights.astype(np.int64)
    if chip.differential:
        encoded, signs, offset = [np.maximum(w, 0), np.maximum(-w, 0)], [1, -1], 0
    else:
        offset = 2 ** (chip.weight_bits - 1)
        encoded, signs = [w + offset], [1]
    parts = []
    for unsigned in encoded:
        planes = np.empty((g, k, m, slices), dtype=np.uint8)          # cell values < 2^cell_bits <= 256
        for s in range(slices):
            planes[..., s] = (unsigned >> (s * cb)) & (2 ** cb - 1)
        parts.append(planes.reshape(g, k, m * slices))                 # column m * slices + s
    row_blocks = len(np.unique(np.arange(k) // chip.rows))
    column_blocks = len(np.unique(np.arange(m * slices) // chip.columns))
    return _Programmed(parts, signs, offset, g * row_blocks * column_blocks * len(parts))


def _input_chunks(chip: PimChip, vectors: np.ndarray) -> np.ndarray:
    """(T, ...) DAC chunks of unsigned inputs, least significant first."""
    x = vectors.astype(np.int64)
    return np.stack([(x >> (t * chip.dac_bits)) & (2 ** chip.dac_bits - 1) for t in range(chip.input_chunks)])


def _column_blocks(chip: PimChip, prog: _Programmed) -> int:
    return len(np.unique(np.arange(prog.parts[0].shape[2]) // chip.columns))


@dataclass
class _Blocked:
    outputs: np.ndarray     # (G, V, M) with converters that never clip
    activations: int        # crossbar activations (crossbar x input chunk x vector)
    conversions: int        # ADC conversions (column x row block x input chunk x vector)


def _through_blocks(chip: PimChip, prog: _Programmed, vectors: np.ndarray) -> _Blocked:
    """(G, V, K) unsigned vectors through the programmed crossbars, row block
    by row block, with converters wide enough never to clip.

    Each crossbar's column sums are then a linear function of its cells, so
    the shift-and-add over input chunks and cell slices may be done before
    the column sum: one product per row block with the cell planes
    recombined (sum_s 2^(s cell_bits) plane_s), which is what the weights
    look like when read back from the cells.  :func:`_through_bit_planes`
    does it plane by plane."""
    g, v, k = vectors.shape
    slices = chip.slices
    m = prog.parts[0].shape[2] // slices
    x = vectors.astype(np.float64)
    out = np.zeros((g, v, m), dtype=np.int64)
    activations = conversions = 0
    column_blocks = _column_blocks(chip, prog)
    for part, sign in zip(prog.parts, prog.signs):
        cells = part.reshape(g, k, m, slices)
        read_back = np.zeros((g, k, m), dtype=np.int64)
        for s in range(slices):
            read_back += cells[..., s].astype(np.int64) << (s * chip.cell_bits)
        read_back = read_back.astype(np.float64)
        for r0 in range(0, k, chip.rows):
            rows = slice(r0, min(k, r0 + chip.rows))
            out += sign * np.rint(np.matmul(x[:, :, rows], read_back[:, rows, :])).astype(np.int64)
            activations += chip.input_chunks * g * v * column_blocks
            conversions += chip.input_chunks * g * v * m * slices
    if prog.offset:
        out -= prog.offset * vectors.astype(np.int64).sum(axis=2, keepdims=True)
    return _Blocked(out, activations, conversions)


@dataclass
class _Planes:
    wide: np.ndarray        # (G, V, M) with ADCs wide enough never to clip
    chip: np.ndarray        # (G, V, M) with the chip's own ADC
    saturated: int          # conversions the chip's ADC clips
    conversions: int


def _through_bit_planes(chip: PimChip, prog: _Programmed, vectors: np.ndarray) -> _Planes:
    """(G, V, K) unsigned vectors through the programmed crossbars input chunk
    by input chunk and slice by slice: each column sum is digitized (by an
    ADC that never clips, and by the chip's own, which clips at
    2^adc_bits - 1), then shifted and added."""
    g, v, k = vectors.shape
    m_cols = prog.parts[0].shape[2]
    slices = chip.slices
    m = m_cols // slices
    chunks = _input_chunks(chip, vectors)                         # (T, G, V, K)
    t_count = chunks.shape[0]
    shift = 2.0 ** (np.arange(t_count)[:, None] * chip.dac_bits + np.arange(slices)[None, :] * chip.cell_bits)
    top = chip.rows * (2 ** chip.dac_bits - 1) * (2 ** chip.cell_bits - 1)
    dtype = np.float32 if top < 2 ** 24 else np.float64       # column sums exact in the float type
    adc_max = 2 ** chip.adc_bits - 1
    wide = np.zeros((g, v, m), dtype=np.int64)
    real = np.zeros((g, v, m), dtype=np.int64)
    saturated = conversions = 0
    step = max(1, BATCH_ELEMENTS // max(1, t_count * g * m_cols))
    for part, sign in zip(prog.parts, prog.signs):
        for r0 in range(0, k, chip.rows):
            rows = slice(r0, min(k, r0 + chip.rows))
            cells = part[:, rows, :].astype(dtype)
            for v0 in range(0, v, step):
                pixels = slice(v0, min(v, v0 + step))
                analog = np.matmul(chunks[:, :, pixels, rows].astype(dtype), cells)          # (T, G, Vb, M*S)
                conversions += analog.size
                saturated += int(np.count_nonzero(analog > adc_max))
                for out, digital in ((wide, analog), (real, np.minimum(analog, adc_max))):
                    planes = digital.reshape(t_count, g, -1, m, slices).astype(np.float64)
                    out[:, pixels] += sign * np.rint(np.tensordot(planes, shift, axes=([0, 4], [0, 1]))).astype(np.int64)
    if prog.offset:
        total = prog.offset * vectors.astype(np.int64).sum(axis=2, keepdims=True)
        wide -= total
        real -= total
    return _Planes(wide, real, saturated, conversions)


def crossbar_mvm(chip: PimChip, weights: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, MvmStats]:
    """``inputs`` (vectors, K) @ ``weights`` (K, M) through crossbars with the
    chip's own ADC.

    Weights must be B-bit signed integers, inputs unsigned ``input_bits``.

    Examples
    --------
    >>> from mapcert.hardware.pim import pim_chip
    >>> chip = pim_chip("neurosim-rram", rows=8, columns=8, adc_bits=4)
    >>> y, stats = crossbar_mvm(chip, np.array([[1], [-2]]), np.array([[3, 1]]))
    >>> int(y[0, 0]), stats.crossbars, stats.saturated
    (1, 1, 0)
    """
    prog = _program(chip, weights[None])
    planes = _through_bit_planes(chip, prog, inputs[None])
    activations = prog.crossbars * chip.input_chunks * inputs.shape[0]
    return planes.chip[0], MvmStats(prog.crossbars, activations, planes.saturated, planes.conversions)


# --------------------------------------------------------------------------
# one layer


@dataclass
class PimConvReport:
    """One layer executed with ``copies`` copies in ``style``: the verdict
    and the counted quantities (per image)."""

    layer: str
    style: str
    copies: int
    outputs_match: bool            # every output pixel equals the direct convolution
    bit_planes_match: bool         # the plane-by-plane execution of the sampled pixels agrees
    max_abs_error: int
    crossbars_per_copy: int
    crossbars: int
    activations: int
    input_bits: int
    cycles: int
    conversions: int
    sampled_pixels: int            # pixels also run plane by plane through ADCs
    saturated: int                 # of their conversions, those the chip's own ADC clips
    chip_adc_max_abs_error: int    # and the output error that causes
    work: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


SAMPLE_PIXELS = 8
"""Output pixels of each layer also executed plane by plane (input chunk by
cell slice) through ADCs, to check the plane-by-plane path and measure what
the chip's own ADC clips."""


def layer_work(problem: CrossbarProblem, layer: CrossbarLayer) -> float:
    """Multiply-accumulates :func:`run_pim_conv` performs for ``layer``: the
    reference convolution and the crossbar products of every pixel, and the
    sampled pixels' products plane by plane (both styles do the same
    products, the split one in R*S pieces)."""
    chip = problem.chip
    kernel = (layer.C // layer.groups) * layer.R * layer.S
    planes = min(layer.outputs, SAMPLE_PIXELS) * chip.input_chunks * chip.slices
    return float(kernel) * layer.M * (2 * layer.outputs + planes) * chip.copies_factor


def _reference(layer: CrossbarLayer, weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Direct grouped convolution in float64 (exact: every sum < 2^53): (V, M)."""
    sh, sw = layer.stride
    g, cg, mg = layer.groups, layer.C // layer.groups, layer.M // layer.groups
    out = np.zeros((layer.N, layer.P, layer.Q, g, mg))
    x = inputs.astype(np.float64).reshape(layer.N, g, cg, layer.input_height, layer.input_width)
    w = weights.astype(np.float64).reshape(g, mg, cg, layer.R, layer.S)
    for r in range(layer.R):
        for s in range(layer.S):
            window = x[:, :, :, r: r + (layer.P - 1) * sh + 1: sh, s: s + (layer.Q - 1) * sw + 1: sw]
            out += np.einsum("ngcpq,gmc->npqgm", window, w[:, :, :, r, s], optimize=True)
    return np.rint(out).astype(np.int64).reshape(layer.outputs, layer.M)


@dataclass
class _Tally:
    """Outputs and counts summed over the MVMs of one layer."""

    exact: np.ndarray
    planes_wide: np.ndarray
    planes_chip: np.ndarray
    crossbars: int = 0
    activations: int = 0
    conversions: int = 0
    saturated: int = 0

    def add(self, chip: PimChip, weights: np.ndarray, vectors: np.ndarray, sample: np.ndarray) -> None:
        """One MVM: (G, K, Mg) weights, (G, V, K) vectors; the adder tree sums
        the results into the layer's outputs (V, G * Mg)."""
        g, v, _ = vectors.shape
        prog = _program(chip, weights)
        blocked = _through_blocks(chip, prog, vectors)
        self.exact += blocked.outputs.transpose(1, 0, 2).reshape(v, -1)
        self.crossbars += prog.crossbars
        self.activations += blocked.activations
        self.conversions += blocked.conversions
        planes = _through_bit_planes(chip, prog, vectors[:, sample])
        self.planes_wide += planes.wide.transpose(1, 0, 2).reshape(len(sample), -1)
        self.planes_chip += planes.chip.transpose(1, 0, 2).reshape(len(sample), -1)
        self.saturated += planes.saturated


def run_pim_conv(problem: CrossbarProblem, layer: CrossbarLayer, style: str, copies: int,
                 seed: int = 0) -> PimConvReport:
    """Execute ``layer`` with ``copies`` copies in ``style`` on random integers.

    Parameters
    ----------
    problem
        Gives the chip.
    layer
        The layer (any groups and stride).
    style
        ``conventional`` (each output pixel fetches its receptive field and
        multiplies the unrolled kernels) or ``split`` (each kernel position
        on crossbars of its own, every input read fetched once and
        forwarded, an adder tree summing the positions).
    copies
        Copies of the weights; output pixels go to them round-robin.
    seed
        Seed of the random weights and inputs.

    Returns
    -------
    PimConvReport
        The verdict (outputs equal the direct convolution) and the counts.
    """
    chip = problem.chip
    rng = np.random.default_rng(seed)
    half = 2 ** (chip.weight_bits - 1)
    g, cg, mg = layer.groups, layer.C // layer.groups, layer.M // layer.groups
    weights = rng.integers(-half, half, size=(layer.M, cg, layer.R, layer.S))
    inputs = rng.integers(0, 2 ** chip.input_bits, size=(layer.N, layer.C, layer.input_height, layer.input_width))
    reference = _reference(layer, weights, inputs)
    sh, sw = layer.stride
    pix = np.arange(layer.outputs)
    n_idx, p_idx, q_idx = pix // (layer.P * layer.Q), (pix // layer.Q) % layer.P, pix % layer.Q
    sample = np.unique(np.linspace(0, layer.outputs - 1, min(SAMPLE_PIXELS, layer.outputs)).astype(np.int64))
    w_grouped = weights.reshape(g, mg, cg, layer.R, layer.S)
    tally = _Tally(np.zeros((layer.outputs, layer.M), dtype=np.int64),
                   np.zeros((len(sample), layer.M), dtype=np.int64), np.zeros((len(sample), layer.M), dtype=np.int64))
    if style == "conventional":
        # each pixel fetches its receptive field; kernels unrolled down the rows
        windows = np.lib.stride_tricks.sliding_window_view(inputs, (layer.R, layer.S), axis=(2, 3))
        fields = windows[n_idx, :, p_idx * sh, q_idx * sw]                           # (V, C, R, S)
        vectors = fields.reshape(layer.outputs, g, cg * layer.R * layer.S).transpose(1, 0, 2)
        matrix = w_grouped.transpose(0, 2, 3, 4, 1).reshape(g, cg * layer.R * layer.S, mg)
        tally.add(chip, matrix, vectors, sample)
        fetched = vectors.size
    elif style == "split":
        # each kernel position on crossbars of its own; an input some pixel reads is fetched once
        read = np.zeros(inputs.shape, dtype=bool)
        for r in range(layer.R):
            for s in range(layer.S):
                rows, cols = p_idx * sh + r, q_idx * sw + s
                read[n_idx, :, rows, cols] = True
                vectors = inputs[n_idx, :, rows, cols].reshape(layer.outputs, g, cg).transpose(1, 0, 2)
                tally.add(chip, w_grouped[:, :, :, r, s].transpose(0, 2, 1), vectors, sample)
        fetched = int(np.count_nonzero(read))
    else:
        raise ValueError(f"unknown mapping style {style!r}")
    busiest = int(np.bincount(pix % copies, minlength=copies).max())
    return PimConvReport(
        layer=layer.name, style=style, copies=copies,
        outputs_match=bool(np.array_equal(tally.exact, reference)),
        bit_planes_match=bool(np.array_equal(tally.planes_wide, tally.exact[sample])),
        max_abs_error=int(np.abs(tally.exact - reference).max()),
        crossbars_per_copy=tally.crossbars, crossbars=tally.crossbars * copies, activations=tally.activations,
        input_bits=fetched * chip.input_bits, cycles=busiest * chip.cycles_per_mvm,
        conversions=tally.conversions, sampled_pixels=len(sample), saturated=tally.saturated,
        chip_adc_max_abs_error=int(np.abs(tally.planes_chip - reference[sample]).max()),
        work=layer_work(problem, layer),
    )


# --------------------------------------------------------------------------
# a whole allocation


@dataclass
class AllocationRun:
    """The layers of an allocation executed (or a sample of them).

    ``reports`` holds one report per distinct (shape, style, copies) run;
    ``covered`` maps each run layer's name to the layers of the same shape,
    style and copies it stands for; ``skipped`` names the layers left out
    to stay within the work budget."""

    reports: list[PimConvReport] = field(default_factory=list)
    covered: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    bottleneck: str = ""
    wall_time_s: float = 0.0


def _signature(layer: CrossbarLayer, style: str, copies: int) -> tuple:
    return (layer.N, layer.M, layer.C, layer.P, layer.Q, layer.R, layer.S, layer.groups, layer.stride, style, copies)


def run_allocation(problem: CrossbarProblem, allocation: Allocation, seed: int = 0,
                   budget: float = WORK_BUDGET) -> AllocationRun:
    """Execute every layer of ``allocation`` in its style with its copies.

    Layers of the same shape, style and copies run once (their layouts and
    counts are identical).  The bottleneck layer (the longest stage) runs
    first, unless it alone needs more than ``BOTTLENECK_SHARE`` budgets of
    multiply-accumulates (:func:`layer_work`); then the others, cheapest
    first, while ``budget`` lasts.  Layers left out, and layers beyond
    :data:`MEMORY_LIMIT`, are listed as skipped.
    """
    start = time.perf_counter()
    groups: dict[tuple, list[int]] = {}
    for i, (layer, style, copies) in enumerate(zip(problem.layers, allocation.styles, allocation.copies)):
        groups.setdefault(_signature(layer, style, copies), []).append(i)
    stages = [problem.stage_cycles(l, max(1, r)) for l, r in zip(problem.layers, allocation.copies)]
    slowest = max(range(len(stages)), key=lambda i: stages[i])
    first = next(members for members in groups.values() if slowest in members)
    rest = sorted((m for m in groups.values() if m is not first),
                  key=lambda m: (layer_work(problem, problem.layers[m[0]]), m[0]))
    run = AllocationRun(bottleneck=problem.layers[slowest].name)
    ordered = [(slowest, first, True)] + [(members[0], members, False) for members in rest]
    with single_threaded_blas():  # many small products: BLAS threads cost more than they save
        _run_groups(problem, allocation, seed, budget, ordered, run)
    run.wall_time_s = time.perf_counter() - start
    return run


def _run_groups(problem: CrossbarProblem, allocation: Allocation, seed: int, budget: float,
                ordered: list[tuple[int, list[int], bool]], run: AllocationRun) -> None:
    """Run one layer of each (layer, its group, is it the bottleneck's) in
    ``ordered`` while the budget lasts; record the others as skipped."""
    spent = 0.0
    for index, members, bottleneck in ordered:
        layer, style = problem.layers[index], allocation.styles[index]
        work = layer_work(problem, layer)
        allowed = BOTTLENECK_SHARE * budget if bottleneck else budget - spent
        if work > allowed or layer_memory(layer, style) > MEMORY_LIMIT:
            run.skipped.extend(problem.layers[i].name for i in members)
            continue
        spent += work
        run.reports.append(run_pim_conv(problem, layer, style, allocation.copies[index], seed=seed + index))
        run.covered[layer.name] = [problem.layers[i].name for i in members]


def layer_memory(layer: CrossbarLayer, style: str) -> int:
    """Elements of the largest array :func:`run_pim_conv` holds for ``layer``."""
    inputs = layer.N * layer.C * layer.input_height * layer.input_width
    fields = layer.outputs * layer.C * layer.R * layer.S if style == "conventional" else layer.outputs * layer.C
    return max(inputs, fields, layer.outputs * layer.M)
