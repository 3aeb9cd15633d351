"""The loop-tiling problem of one layer between DRAM and one on-chip buffer.

A convolution is the 8-deep loop nest over N, G, M, C, P, Q, R, S (Timeloop's
names, with the group index G made explicit so that grouped and depthwise
convolutions are ordinary nests: M and C below are *per group*).  A mapping
keeps a tile of every tensor in the buffer and runs the DRAM-level loops over
the tiles in a chosen order.  The filter window (R, S) is always whole on chip:
splitting it at the DRAM level never saves off-chip traffic in this model and
would make a tile's input halo depend on two loop indices at once.
"""

from __future__ import annotations

from ...units import whole_number

from dataclasses import dataclass, field
from functools import lru_cache, cached_property
from math import prod

import numpy as np

from ...hardware.hierarchy import SortedFrozenset
from ...instances import field_hint

LOOP_DIMS: tuple[str, ...] = ("N", "G", "M", "C", "P", "Q")
"""Dimensions tiled at the DRAM level, in canonical order."""

TENSORS: tuple[str, ...] = ("inputs", "weights", "outputs")

RELEVANT: dict[str, frozenset[str]] = {
    "inputs": SortedFrozenset({"N", "G", "C", "P", "Q"}),
    "weights": SortedFrozenset({"G", "M", "C"}),
    "outputs": SortedFrozenset({"N", "G", "M", "P", "Q"}),
}
"""Loop dimensions that index each tensor (R and S index inputs and weights but
are never DRAM loops)."""

SPACES = ("divisors", "any")
OBJECTIVES = ("offchip_traffic",)


@dataclass(frozen=True)
class Precision:
    """Bits per element of each tensor; partial sums travel at ``psums`` bits."""

    inputs: int = 8
    weights: int = 8
    outputs: int = 8
    psums: int = 24


@dataclass(frozen=True)
class ConvLayer:
    """One conv2d / matmul layer.  ``M`` and ``C`` are the layer's totals."""

    name: str
    N: int
    M: int
    C: int
    P: int
    Q: int
    R: int = 1
    S: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    op: str = "conv2d"
    precision: Precision = field(default_factory=Precision)

    # -- loop-space extents -------------------------------------------------
    def extent(self, dim: str) -> int:
        """Trip count of ``dim`` in the loop nest (M and C per group)."""
        if dim == "G":
            return self.groups
        if dim == "M":
            return self.M // self.groups
        if dim == "C":
            return self.C // self.groups
        return int(getattr(self, dim))

    @cached_property
    def extents(self) -> dict[str, int]:
        return {d: self.extent(d) for d in LOOP_DIMS}

    @property
    def macs(self) -> int:
        return prod(self.extent(d) for d in LOOP_DIMS) * self.R * self.S

    # -- sliding windows ----------------------------------------------------
    def window_rows(self, axis: str, length: int) -> int:
        """Distinct input rows (axis 'P') or columns ('Q') that ``length``
        consecutive output positions read.  Stride gaps and dilation holes
        are not read, so this can be less than the bounding box."""
        return int(_window_table(*self._window_params(axis), length + 1)[length])

    def window_table(self, axis: str) -> np.ndarray:
        """``table[e]`` = distinct input rows for ``e`` output rows, e = 0..P."""
        return _window_table(*self._window_params(axis), self.extent(axis) + 1)

    def halo_rows(self, axis: str, tile: int) -> int:
        """Input rows (columns) one sweep along ``axis`` reads with halo reuse,
        in tiles of ``tile`` output rows (the last one possibly partial):
        each tile reads the rows of its window that the tile before it does
        not hold. Without dilation that is every row of the whole window
        once; with it, a short tile holds rows with holes and shares fewer
        rows with its neighbour, or none (one output row at dilation 2), and
        a row may leave the buffer and be read again
        (docs/tiling-cost-model.md, "Halo reuse")."""
        stride, dilation, window = self._window_params(axis)
        extent = self.extent(axis)
        if dilation == 1:
            return int(self.window_table(axis)[extent])
        return _halo_rows(stride, dilation, window, extent, int(tile))

    def _window_params(self, axis: str) -> tuple[int, int, int]:
        if axis == "P":
            return self.stride[0], self.dilation[0], self.R
        if axis == "Q":
            return self.stride[1], self.dilation[1], self.S
        raise ValueError(axis)

    @property
    def input_height(self) -> int:
        return (self.P - 1) * self.stride[0] + (self.R - 1) * self.dilation[0] + 1

    @property
    def input_width(self) -> int:
        return (self.Q - 1) * self.stride[1] + (self.S - 1) * self.dilation[1] + 1

    # -- tensor sizes (elements) --------------------------------------------
    @property
    def input_elements(self) -> int:
        """Elements of the (padded) input tensor."""
        return self.N * self.C * self.input_height * self.input_width

    @property
    def input_elements_used(self) -> int:
        """Input elements some MAC reads (fewer than the tensor when stride > window)."""
        return self.N * self.C * self.window_rows("P", self.P) * self.window_rows("Q", self.Q)

    @property
    def weight_elements(self) -> int:
        return self.M * (self.C // self.groups) * self.R * self.S

    @property
    def output_elements(self) -> int:
        return self.N * self.M * self.P * self.Q

    def reuse_max(self) -> int:
        """Largest number of window positions that read one input element:
        max over rows of (p, r) pairs times the same over columns."""
        return _max_hits(self.stride[0], self.dilation[0], self.R, self.P) * _max_hits(
            self.stride[1], self.dilation[1], self.S, self.Q
        )

    def reuse_average(self) -> float:
        """The paper's Rw = R*S/D^2, at least 1 (sliding-window reuse)."""
        return max(1.0, self.R * self.S / (self.stride[0] * self.stride[1]))

    def dims(self) -> dict[str, int]:
        """User-facing dimensions (Timeloop names, totals for M and C)."""
        return {"N": self.N, "M": self.M, "C": self.C, "P": self.P, "Q": self.Q, "R": self.R, "S": self.S}

    def shape_text(self) -> str:
        """The operation and every extent, as a report's header shows them, so
        that a layer read wrong (a misnamed dimension left at 1) shows:
        ``conv2d N=1 M=64 C=64 P=56 Q=56 R=3 S=3, stride 2x2``."""
        dims = " ".join(f"{k}={v}" for k, v in self.dims().items())
        extra = []
        if self.stride != (1, 1):
            extra.append(f"stride {self.stride[0]}x{self.stride[1]}")
        if self.dilation != (1, 1):
            extra.append(f"dilation {self.dilation[0]}x{self.dilation[1]}")
        if self.groups != 1:
            extra.append(f"groups {self.groups}")
        return f"{self.op} {dims}" + "".join(", " + e for e in extra)


def _window_table(stride: int, dilation: int, window: int, upto: int) -> np.ndarray:
    key = (stride, dilation, window, upto)
    table = _WINDOW_CACHE.get(key)
    if table is None:
        seen = np.zeros((upto - 1) * stride + (window - 1) * dilation + 2, dtype=bool)
        offsets = np.arange(window) * dilation
        table = np.zeros(upto, dtype=np.int64)
        count = 0
        for e in range(1, upto):
            rows = (e - 1) * stride + offsets
            fresh = ~seen[rows]
            count += int(np.count_nonzero(fresh))
            seen[rows] = True
            table[e] = count
        _WINDOW_CACHE[key] = table
    return table


_WINDOW_CACHE: dict[tuple[int, int, int, int], np.ndarray] = {}


@lru_cache(maxsize=65536)
def _halo_rows(stride: int, dilation: int, window: int, extent: int, tile: int) -> int:
    """``ConvLayer.halo_rows``: tile ``k`` holds the rows ``U_k`` of its
    output rows' windows and reads ``|U_k - U_(k-1)|`` of them."""
    outputs = np.arange(extent, dtype=np.int64)
    rows = (outputs[:, None] * stride + np.arange(window, dtype=np.int64)[None, :] * dilation).ravel()
    tiles = np.repeat(outputs // tile, window)
    span = int(rows.max()) + 2
    held = np.unique(tiles * span + rows)               # (tile, row) pairs, one per row a tile holds
    before = held - span                                # the same row in the tile before
    shared = np.isin(before, held, assume_unique=True)
    return int(np.count_nonzero(~shared))


def _max_hits(stride: int, dilation: int, window: int, length: int) -> int:
    rows = (np.arange(length)[:, None] * stride + np.arange(window)[None, :] * dilation).ravel()
    return int(np.bincount(rows).max())


@dataclass(frozen=True)
class Buffer:
    """The on-chip level: one shared capacity, or one partition per tensor."""

    name: str
    capacity_bits: int
    partition_bits: dict[str, int] | None = None

    @property
    def capacity_bytes(self) -> float:
        return self.capacity_bits / 8


@dataclass(frozen=True)
class SolverSettings:
    method: str = "cpsat"
    time_limit: float = 60.0
    workers: int = 0  # 0: one per core


@dataclass(frozen=True)
class TilingProblem:
    """Everything a solver needs: the layer, the buffer, the space and objective."""

    layer: ConvLayer
    buffer: Buffer
    dram_name: str = "DRAM"
    objective: str = "offchip_traffic"
    space: str = "divisors"
    solver: SolverSettings = field(default_factory=SolverSettings)
    source: str = "<memory>"
    hardware_name: str = ""
    halo: bool = False
    """Halo reuse: consecutive input tiles along P (or Q) keep their shared
    rows (columns) on chip and fetch only the new ones."""

    @property
    def space_description(self) -> str:
        tiles = (
            "tile sizes that divide each dimension"
            if self.space == "divisors"
            else "any tile size from 1 to the dimension, ceiling trip counts with a partial edge tile"
        )
        return (
            f"{tiles}; any DRAM-level loop order over {', '.join(LOOP_DIMS)}; "
            f"filter window R x S whole on chip; one resident tile per tensor in {self.buffer.name}"
            + ("; halo reuse: the next input tile along the innermost input loop (P or Q) keeps the rows "
               "it shares with the current one" if self.halo else "")
        )


@dataclass(frozen=True)
class Mapping:
    """On-chip tile per loop dimension and the DRAM-level loop order (outermost first)."""

    tiles: dict[str, int]
    order: tuple[str, ...] = LOOP_DIMS

    def trips(self, layer: ConvLayer) -> dict[str, int]:
        return {d: -(-layer.extent(d) // self.tiles[d]) for d in LOOP_DIMS}

    def to_dict(self, layer: ConvLayer) -> dict:
        tiles = {d: int(self.tiles[d]) for d in LOOP_DIMS if d != "G" or layer.groups > 1}
        tiles["R"], tiles["S"] = layer.R, layer.S
        order = [d for d in self.order if d != "G" or layer.groups > 1]
        return {"tiles": tiles, "order": order}

    @classmethod
    def from_dict(cls, data: dict, layer: ConvLayer) -> "Mapping":
        """Inverse of :meth:`to_dict`; raises ValueError on anything off."""
        if not isinstance(data, dict) or "tiles" not in data:
            raise ValueError("a mapping needs 'tiles' (and optionally 'order')")
        for key in data:  # a misspelt 'order' would silently score the default loop order
            if key not in ("tiles", "order"):
                raise ValueError(f"unknown field {key!r}{field_hint(str(key), ['tiles', 'order'])}")
        raw = dict(data["tiles"])
        for window in ("R", "S"):
            if window in raw and whole_number(raw.pop(window), f"tile of {window}") != getattr(layer, window):
                raise ValueError(f"tile of {window} must be the whole filter ({getattr(layer, window)})")
        unknown = set(raw) - set(LOOP_DIMS)
        if unknown:
            raise ValueError(f"unknown tile dimension(s) {sorted(unknown)}")
        tiles = {}
        for d in LOOP_DIMS:
            if d not in raw and layer.extent(d) > 1:
                raise ValueError(f"tile of {d} is missing (extent {layer.extent(d)})")
            value = whole_number(raw.get(d, 1), f"tile of {d}")
            if not 1 <= value <= layer.extent(d):
                raise ValueError(f"tile of {d} must be between 1 and {layer.extent(d)}, got {value}")
            tiles[d] = value
        order = data.get("order", LOOP_DIMS)
        if not isinstance(order, (list, tuple)):
            raise ValueError(f"order must be a list of dimensions of {', '.join(LOOP_DIMS)}, outermost first")
        unknown = [d for d in order if d not in LOOP_DIMS]
        twice = sorted({d for d in order if list(order).count(d) > 1})
        if unknown or twice:
            raise ValueError("order names " + "; ".join(
                ([f"{', '.join(map(str, unknown))}, not a DRAM loop (the loops are {', '.join(LOOP_DIMS)}; R and S "
                  "stay whole on chip)"] if unknown else []) + ([f"{', '.join(twice)} twice"] if twice else [])))
        # loops left out run outside the ones listed, as in a hierarchy's mapping
        order = [d for d in LOOP_DIMS if d not in order] + list(order)
        return cls(tiles=tiles, order=tuple(order))
