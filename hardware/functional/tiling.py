"""Functional model of the two-level tiled accelerator.

It executes a mapping on random integer tensors the way the hardware would:
DRAM holds the tensors, the buffer holds one tile of each, the DRAM-level
loops walk the tiles in the mapping's order, and the MACs read only what is
in the buffer.  The buffer knows which tile it holds; asking for another one
fetches it (only the input rows and columns the window touches are read;
the rest of the tile stays NaN, so computing on data never fetched would
show up as a wrong output).  With halo reuse, the next input tile along P
(or Q) takes the rows (columns) it shares with the current one from the
buffer and reads only the others.  An output tile that leaves the buffer before its
reduction is complete is written as partial sums and read back on its next
visit.  Every transfer is counted in bits per term, to be compared with
``formulations.tiling.evaluate``; the final outputs are compared with a
reference convolution computed independently.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from ...formulations.tiling.cost import TRAFFIC_TERMS
from ...formulations.tiling.problem import LOOP_DIMS, ConvLayer, Mapping, TilingProblem


@dataclass
class FunctionalReport:
    outputs_match: bool
    counted_bits: dict[str, int]
    iterations: int
    max_abs_error: float
    wall_time_s: float
    psum_overflow: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "outputs_match": self.outputs_match,
            "counted_bytes": {k: v / 8 for k, v in self.counted_bits.items()},
            "dram_iterations": self.iterations,
            "max_abs_error": self.max_abs_error,
            "psum_overflow": self.psum_overflow,
            "wall_time_s": round(self.wall_time_s, 4),
        }


MAX_MACS = 1 << 34
"""Most MACs a functional model executes (twice: the mapping's tiles and the
direct convolution it is checked against), about ten seconds on two cores
(a 2.1e9-MAC matrix product ran in one second here);
an LLM-sized matrix product beyond it is not run, and ``evaluate`` alone
confirms its counts."""


def too_many_macs(layer: ConvLayer) -> str:
    """Why a layer is not run (empty when it is): beyond ``MAX_MACS``."""
    if layer.macs <= MAX_MACS:
        return ""
    return f"the layer's {layer.macs:.2e} MACs are beyond the {MAX_MACS:.2e} the model executes in about ten seconds"


def random_operands(layer: ConvLayer, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Integer inputs (N, G, C/G, H, W) and weights (G, M/G, C/G, R, S) in
    their precisions' ranges (at most 8 bits, so that float64 sums are exact)."""
    rng = np.random.default_rng(seed)
    p = layer.precision

    def draw(bits: int, shape) -> np.ndarray:
        half = 2 ** (min(bits, 8) - 1)
        return rng.integers(-half, half, size=shape).astype(np.float64)

    G, Cg, Mg = layer.groups, layer.extent("C"), layer.extent("M")
    inputs = draw(p.inputs, (layer.N, G, Cg, layer.input_height, layer.input_width))
    weights = draw(p.weights, (G, Mg, Cg, layer.R, layer.S))
    return inputs, weights


def reference_conv(layer: ConvLayer, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Direct convolution, one filter tap at a time, over the whole tensors."""
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    out = np.zeros((layer.N, layer.groups, layer.extent("M"), layer.P, layer.Q))
    for r in range(layer.R):
        for s in range(layer.S):
            window = inputs[:, :, :, r * dh: r * dh + (layer.P - 1) * sh + 1: sh,
                            s * dw: s * dw + (layer.Q - 1) * sw + 1: sw]
            out += np.einsum("ngcpq,gmc->ngmpq", window, weights[:, :, :, r, s], optimize=True)  # BLAS
    return out


def run_tiling(problem: TilingProblem, mapping: Mapping, seed: int = 0) -> FunctionalReport:
    layer = problem.layer
    prec = layer.precision
    start = time.perf_counter()
    inputs, weights = random_operands(layer, seed)
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    tiles = mapping.tiles
    trips = mapping.trips(layer)
    extent = {d: layer.extent(d) for d in LOOP_DIMS}
    taps = layer.R * layer.S

    dram_out = np.full((layer.N, layer.groups, extent["M"], layer.P, layer.Q), np.nan)
    dram_psum: dict[tuple, np.ndarray] = {}
    count = dict.fromkeys(TRAFFIC_TERMS, 0)
    reductions_done: dict[tuple, int] = {}
    spans = {d: [slice(i * tiles[d], min((i + 1) * tiles[d], extent[d])) for i in range(trips[d])] for d in LOOP_DIMS}
    windows = {
        "P": [_window(sl, sh, dh, layer.R) for sl in spans["P"]],
        "Q": [_window(sl, sw, dw, layer.S) for sl in spans["Q"]],
    }

    resident = {"inputs": None, "weights": None, "outputs": None}
    held = None  # the resident input tile: its rows, columns and values
    columns = w_matrix = out_buf = None  # buffer contents in compute layout
    out_at = None

    def evict_outputs():
        key = resident["outputs"]
        if key is None:
            return
        if reductions_done[key] == trips["C"]:
            n, g, m, p, q = out_at
            dram_out[n, g, m, p, q] = out_buf.reshape(out_shape).transpose(2, 0, 1, 3, 4)
            count["outputs_written"] += out_buf.size * prec.outputs
        else:
            dram_psum[key] = out_buf
            count["psums_written"] += out_buf.size * prec.psums

    order = mapping.order
    pos = {d: order.index(d) for d in LOOP_DIMS}
    iterations = 0
    for idx in itertools.product(*(range(trips[d]) for d in order)):
        iterations += 1
        n_i, g_i, m_i, c_i, p_i, q_i = (idx[pos[d]] for d in LOOP_DIMS)

        key_in = (n_i, g_i, c_i, p_i, q_i)
        if key_in != resident["inputs"]:
            rows, row_pos = windows["P"][p_i]
            cols, col_pos = windows["Q"][q_i]
            block = inputs[spans["N"][n_i], spans["G"][g_i], spans["C"][c_i]]
            fetched = np.full(block.shape[:3] + (len(rows), len(cols)), np.nan)
            kept_rows, kept_cols = _halo(problem.halo, resident["inputs"], key_in, held, rows, cols)
            if kept_rows is not None:  # the rows (columns) shared with the previous tile stay on chip
                old = held[2]
                fetched[:, :, :, kept_rows[0][:, None], kept_cols[0][None, :]] = \
                    old[:, :, :, kept_rows[1][:, None], kept_cols[1][None, :]]
            new = np.isnan(fetched)
            fetched[new] = block[:, :, :, rows[:, None], cols[None, :]][new]
            count["inputs_read"] += int(new.sum()) * prec.inputs
            held = (rows, cols, fetched)
            # im2col of the resident tile: (g, c*R*S, n*p*q)
            patches = fetched[:, :, :, row_pos[:, :, None, None], col_pos[None, None, :, :]]
            nb, gb, cb, tp, _, tq, _ = patches.shape
            columns = patches.transpose(1, 2, 4, 6, 0, 3, 5).reshape(gb, cb * taps, nb * tp * tq)
            resident["inputs"] = key_in

        key_w = (g_i, m_i, c_i)
        if key_w != resident["weights"]:
            w_tile = weights[spans["G"][g_i], spans["M"][m_i], spans["C"][c_i]]
            count["weights_read"] += w_tile.size * prec.weights
            w_matrix = w_tile.reshape(w_tile.shape[0], w_tile.shape[1], -1)
            resident["weights"] = key_w

        key_out = (n_i, g_i, m_i, p_i, q_i)
        if key_out != resident["outputs"]:
            evict_outputs()
            out_at = (spans["N"][n_i], spans["G"][g_i], spans["M"][m_i], spans["P"][p_i], spans["Q"][q_i])
            out_shape = tuple(sl.stop - sl.start for sl in (out_at[1], out_at[2], out_at[0], out_at[3], out_at[4]))
            if key_out in dram_psum:
                out_buf = dram_psum.pop(key_out)
                count["psums_read"] += out_buf.size * prec.psums
            else:
                out_buf = np.zeros((out_shape[0], out_shape[1], out_shape[2] * out_shape[3] * out_shape[4]))
                reductions_done.setdefault(key_out, 0)
            resident["outputs"] = key_out

        out_buf += np.matmul(w_matrix, columns)
        reductions_done[key_out] += 1
    evict_outputs()

    reference = reference_conv(layer, inputs, weights)
    written = np.isfinite(dram_out)
    match = bool(written.all() and np.array_equal(dram_out, reference))
    max_err = float(np.abs(dram_out[written] - reference[written]).max()) if written.any() else float("inf")
    notes = []
    if not written.all():
        notes.append(f"{int((~written).sum())} outputs were never written")
        max_err = float("inf")
    limit = 2 ** (prec.psums - 1)
    overflow = bool(reference.size and np.abs(reference).max() >= limit)
    return FunctionalReport(
        outputs_match=match,
        counted_bits=count,
        iterations=iterations,
        max_abs_error=max_err,
        wall_time_s=time.perf_counter() - start,
        psum_overflow=overflow,
        notes=notes,
    )


def _halo(halo: bool, old_key, new_key, held, rows: np.ndarray, cols: np.ndarray):
    """With halo reuse, when the new input tile is the next one along P (or
    Q), everything else equal: the positions of the shared rows (columns) in
    the new and the old tile, and all columns (rows). Otherwise (None, None)."""
    if not halo or old_key is None:
        return None, None
    steps = [new - old for new, old in zip(new_key, old_key)]
    if steps[:3] != [0, 0, 0] or sorted(steps[3:]) != [0, 1]:
        return None, None
    old_rows, old_cols, _ = held
    if steps[3] == 1:  # along P: the columns are the same
        _, new_at, old_at = np.intersect1d(rows, old_rows, return_indices=True)
        everything = np.arange(len(cols))
        return (new_at, old_at), (everything, everything)
    _, new_at, old_at = np.intersect1d(cols, old_cols, return_indices=True)
    everything = np.arange(len(rows))
    return (everything, everything), (new_at, old_at)


def _window(span: slice, stride: int, dilation: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """Input rows an output span reads (sorted, gaps skipped) and, per
    (output row, tap), the position of its row among them."""
    wanted = np.arange(span.start, span.stop)[:, None] * stride + np.arange(taps)[None, :] * dilation
    rows = np.unique(wanted)
    return rows, np.searchsorted(rows, wanted)
