"""The declared mapping space and its exact reductions.

Two reductions keep the exact models small without losing the optimum; both
are proved in docs/tiling-space-reductions.md and checked by tests against
the unreduced space:

* **Loop orders.**  Of the 720 DRAM-level orders of six loops, three classes
  suffice: the innermost non-trivial loop is M (the input tile stays), C (the
  output tile stays) or a block of N, P, Q (the weight tile stays).  Each
  class has a closed-form cost; the best order's cost is the least of the
  three.
* **Dominated tiles.**  Traffic grows with every trip count and every swept
  input extent, footprint with every tile extent; a tile size that is no
  smaller in any of them than another one is never needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost import halo_swept, input_tile_extent, swept_extent, trips_of
from .problem import LOOP_DIMS, ConvLayer

STATIONARY_CLASSES: tuple[str, ...] = ("outputs", "inputs", "weights")
"""Which tensor's tile stays resident across the innermost DRAM loops."""

HALO_CLASSES: tuple[str, ...] = ("outputs", "inputs/P", "inputs/Q", "weights/P", "weights/Q")
"""With halo reuse, the inputs and weights classes split by the window axis
that is the innermost input loop (docs/tiling-space-reductions.md)."""

CANONICAL_ORDER: dict[str, tuple[str, ...]] = {
    "inputs": ("N", "G", "C", "P", "Q", "M"),
    "weights": ("G", "M", "C", "N", "P", "Q"),
    "outputs": ("N", "G", "M", "P", "Q", "C"),
    "inputs/P": ("N", "G", "C", "Q", "P", "M"),
    "inputs/Q": ("N", "G", "C", "P", "Q", "M"),
    "weights/P": ("G", "M", "C", "N", "Q", "P"),
    "weights/Q": ("G", "M", "C", "N", "P", "Q"),
}


def order_classes(halo: bool) -> tuple[str, ...]:
    """The order classes whose least cost is the least over all 720 orders."""
    return HALO_CLASSES if halo else STATIONARY_CLASSES


def stationary_of(order_class: str) -> str:
    """The tensor whose tile stays across the innermost loops of the class."""
    return order_class.split("/")[0]


def halo_axis_of(order_class: str) -> str | None:
    """The window axis whose consecutive tiles share rows in the class (None without halo)."""
    parts = order_class.split("/")
    return parts[1] if len(parts) > 1 else None


def all_tiles(layer: ConvLayer, dim: str, space: str) -> np.ndarray:
    """Every tile size the declared space allows for ``dim``."""
    extent = layer.extent(dim)
    values = np.arange(1, extent + 1, dtype=np.int64)
    if space == "divisors":
        values = values[extent % values == 0]
    return values


def undominated_tiles(layer: ConvLayer, dim: str, space: str) -> np.ndarray:
    """Tile sizes not dominated in (trips, swept input extent, input extent
    swept with halo reuse, tile extents)."""
    tiles = all_tiles(layer, dim, space)
    trips = trips_of(layer.extent(dim), tiles)
    swept = swept_extent(layer, dim, tiles)
    halo = halo_swept(layer, dim, tiles)
    keep = []
    best: list[tuple[int, int, int]] = []  # (trips, swept, halo) of kept smaller tiles
    for t, n, a, h in zip(tiles.tolist(), trips.tolist(), swept.tolist(), halo.tolist()):
        # tiles ascend, so every earlier tile is smaller in both tile extents
        if any(n0 <= n and a0 <= a and h0 <= h for n0, a0, h0 in best):
            continue
        keep.append(t)
        best.append((n, a, h))
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class DimTable:
    """Candidate tile sizes of one dimension and the quantities they imply."""

    dim: str
    tiles: np.ndarray
    trips: np.ndarray
    swept: np.ndarray
    input_extent: np.ndarray
    halo: np.ndarray
    """Input elements one sweep reads with halo reuse (``cost.halo_swept``)."""

    def __len__(self) -> int:
        return len(self.tiles)


def dim_tables(layer: ConvLayer, space: str, reduced: bool = True) -> dict[str, DimTable]:
    pick = undominated_tiles if reduced else all_tiles
    tables = {}
    for dim in LOOP_DIMS:
        tiles = pick(layer, dim, space)
        tables[dim] = DimTable(
            dim=dim,
            tiles=tiles,
            trips=trips_of(layer.extent(dim), tiles),
            swept=swept_extent(layer, dim, tiles),
            input_extent=input_tile_extent(layer, dim, tiles),
            halo=halo_swept(layer, dim, tiles),
        )
    return tables


def space_size(layer: ConvLayer, space: str, reduced: bool = False) -> int:
    """Points in the space: tile combinations times the 720 orders (or the 3
    order classes once reduced)."""
    tables = dim_tables(layer, space, reduced)
    count = 1
    for table in tables.values():
        count *= len(table)
    return count * (len(STATIONARY_CLASSES) if reduced else 720)  # halo: five classes once reduced
