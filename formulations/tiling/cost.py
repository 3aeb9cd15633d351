"""The cost model of two-level tiling: ``evaluate`` is the one source of truth.

Every solver reports what it believes the traffic is; the certificate always
recomputes it here.  The model (derived in docs/tiling-cost-model.md):

* the buffer holds one tile of each tensor; a DRAM-level loop nest walks the
  tiles in the mapping's order;
* a tensor's tile is fetched again whenever a loop that indexes it advances;
  loops that do not index it and sit *inside* every loop that does (after
  dropping loops with one trip) reuse the resident tile; irrelevant loops
  outside it re-fetch the whole sweep, so each adds a factor of its trips;
* an output tile revisited by an outer reduction loop (C) spills its partial
  sums: every visit but the first reads them back and every visit but the last
  writes them, at psum precision; the last visit writes the final outputs;
* an input tile reads exactly the input rows and columns its window touches
  (stride gaps and dilation holes are skipped); with halo reuse, the next
  tile along the innermost input loop keeps the rows (P) or columns (Q) it
  shares with the current one and reads only the others.

The core works on numpy arrays so that exhaustive enumeration evaluates
millions of mappings with the very same formulas ``evaluate`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .problem import LOOP_DIMS, RELEVANT, TENSORS, ConvLayer, Mapping, TilingProblem

TRAFFIC_TERMS = ("inputs_read", "weights_read", "outputs_written", "psums_read", "psums_written")


def trips_of(extent: int, tiles: np.ndarray) -> np.ndarray:
    return -(-extent // np.asarray(tiles, dtype=np.int64))


def swept_extent(layer: ConvLayer, dim: str, tiles: np.ndarray) -> np.ndarray:
    """Elements of the input along ``dim`` read by one sweep over all tiles of
    ``dim``: the sum over tiles (the last one possibly partial) of the rows
    each tile's window touches.  For dims without a window it is the extent."""
    tiles = np.asarray(tiles, dtype=np.int64)
    extent = layer.extent(dim)
    if dim not in ("P", "Q"):
        return np.full(tiles.shape, extent, dtype=np.int64)
    table = layer.window_table(dim)
    trips = trips_of(extent, tiles)
    last = extent - (trips - 1) * tiles
    return (trips - 1) * table[tiles] + table[last]


def halo_swept(layer: ConvLayer, dim: str, tiles: np.ndarray) -> np.ndarray:
    """Elements of the input along ``dim`` one sweep reads with halo reuse
    (``ConvLayer.halo_rows``), per tile size; the extent for dims without a
    window."""
    tiles = np.asarray(tiles, dtype=np.int64)
    if dim not in ("P", "Q"):
        return np.full(tiles.shape, layer.extent(dim), dtype=np.int64)
    sizes, where = np.unique(tiles, return_inverse=True)
    return np.array([layer.halo_rows(dim, int(t)) for t in sizes], dtype=np.int64)[where].reshape(tiles.shape)


def input_tile_extent(layer: ConvLayer, dim: str, tiles: np.ndarray) -> np.ndarray:
    """Extent of the resident input tile along ``dim`` (window rows for P, Q)."""
    tiles = np.asarray(tiles, dtype=np.int64)
    if dim in ("P", "Q"):
        return layer.window_table(dim)[tiles]
    return tiles


def multiplicity(order: tuple[str, ...], trips: dict[str, np.ndarray], tensor: str) -> np.ndarray:
    """How many times the full sweep of ``tensor``'s tiles is repeated.

    Walk the loops from the innermost out.  While only irrelevant (or
    one-trip) loops have been seen, the tile stays resident; after the first
    relevant loop with more than one trip, every irrelevant loop multiplies.
    """
    relevant = RELEVANT[tensor]
    in_suffix = np.asarray(True)
    factor = np.asarray(1, dtype=np.int64)
    for dim in reversed(order):
        n = np.asarray(trips[dim], dtype=np.int64)
        if dim in relevant:
            in_suffix = in_suffix & (n == 1)
        else:
            factor = factor * np.where(in_suffix, 1, n)
    return factor


def halo_axes(order: tuple[str, ...], trips: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per window axis, whether it is the innermost input loop with more than
    one trip: consecutive input tiles then differ only along it, by one step."""
    found = np.asarray(False)
    axes = {"P": np.asarray(False), "Q": np.asarray(False)}
    for dim in reversed(order):
        if dim not in RELEVANT["inputs"]:
            continue
        real = np.asarray(trips[dim]) > 1
        if dim in axes:
            axes[dim] = axes[dim] | (real & ~found)
        found = found | real
    return axes


def traffic_bits(layer: ConvLayer, order: tuple[str, ...], tiles: dict[str, np.ndarray],
                 halo: bool = False) -> dict[str, np.ndarray]:
    """DRAM traffic in bits per term, broadcast over array-valued tiles.

    With ``halo``, a sweep along the innermost input loop (when it is P or Q)
    reads, per tile, only the rows the tile before it does not hold
    (``halo_swept``; without dilation, every row of the range once)."""
    prec = layer.precision
    trips = {d: trips_of(layer.extent(d), tiles[d]) for d in LOOP_DIMS}
    swept = {d: swept_extent(layer, d, tiles[d]) for d in ("P", "Q")}
    if halo:
        for axis, inner in halo_axes(order, trips).items():
            swept[axis] = np.where(inner, halo_swept(layer, axis, tiles[axis]), swept[axis])
    sweep_inputs = layer.extent("N") * layer.extent("G") * layer.extent("C") * swept["P"] * swept["Q"]
    visits = multiplicity(order, trips, "outputs")
    outputs = layer.output_elements
    return {
        "inputs_read": prec.inputs * sweep_inputs * multiplicity(order, trips, "inputs"),
        "weights_read": prec.weights * layer.weight_elements * multiplicity(order, trips, "weights"),
        "outputs_written": np.broadcast_to(np.int64(prec.outputs * outputs), np.shape(visits)),
        "psums_read": prec.psums * outputs * (visits - 1),
        "psums_written": prec.psums * outputs * (visits - 1),
    }


def footprint_bits(layer: ConvLayer, tiles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bits each tensor's resident tile occupies; outputs are held as psums."""
    prec = layer.precision
    t = {d: np.asarray(tiles[d], dtype=np.int64) for d in LOOP_DIMS}
    return {
        "inputs": prec.inputs * t["N"] * t["G"] * t["C"]
        * input_tile_extent(layer, "P", t["P"]) * input_tile_extent(layer, "Q", t["Q"]),
        "weights": prec.weights * t["G"] * t["M"] * t["C"] * layer.R * layer.S,
        "outputs": prec.psums * t["N"] * t["G"] * t["M"] * t["P"] * t["Q"],
    }


def fits(problem: TilingProblem, footprint: dict[str, np.ndarray]) -> np.ndarray:
    buffer = problem.buffer
    if buffer.partition_bits is None:
        return sum(footprint[t] for t in TENSORS) <= buffer.capacity_bits
    ok = np.asarray(True)
    for tensor in TENSORS:
        ok = ok & (footprint[tensor] <= buffer.partition_bits[tensor])
    return ok


@dataclass
class Metrics:
    """What a mapping costs, per tensor, in bits (bytes in ``to_dict``)."""

    traffic_bits: dict[str, int]
    footprint_bits: dict[str, int]
    fits: bool
    trips: dict[str, int]
    iterations: int
    extra: dict = field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        return int(sum(self.traffic_bits.values()))

    @property
    def objective(self) -> float:
        """Off-chip traffic in bytes."""
        return self.total_bits / 8

    def to_dict(self) -> dict:
        return {
            "offchip_bytes": self.objective,
            "traffic_bytes": {k: v / 8 for k, v in self.traffic_bits.items()},
            "footprint_bytes": {k: v / 8 for k, v in self.footprint_bits.items()},
            "fits": self.fits,
            "trips": dict(self.trips),
            "dram_iterations": self.iterations,
        }


def evaluate(problem: TilingProblem, mapping: Mapping) -> Metrics:
    """Exact off-chip traffic and footprint of ``mapping`` (no trust in solvers)."""
    layer = problem.layer
    if sorted(mapping.order) != sorted(LOOP_DIMS):
        raise ValueError(f"order must list each of {', '.join(LOOP_DIMS)} once, got {list(mapping.order)}")
    tiles = {d: np.int64(mapping.tiles[d]) for d in LOOP_DIMS}
    for d in LOOP_DIMS:
        if not 1 <= mapping.tiles[d] <= layer.extent(d):
            raise ValueError(f"tile of {d} = {mapping.tiles[d]} outside 1..{layer.extent(d)}")
        if problem.space == "divisors" and layer.extent(d) % mapping.tiles[d]:
            raise ValueError(f"tile of {d} = {mapping.tiles[d]} does not divide {layer.extent(d)}")
    traffic = {k: int(v) for k, v in traffic_bits(layer, mapping.order, tiles, problem.halo).items()}
    footprint = {k: int(v) for k, v in footprint_bits(layer, tiles).items()}
    trips = mapping.trips(layer)
    iterations = int(np.prod([trips[d] for d in LOOP_DIMS]))
    return Metrics(
        traffic_bits=traffic,
        footprint_bits=footprint,
        fits=bool(fits(problem, footprint)),
        trips=trips,
        iterations=iterations,
    )
