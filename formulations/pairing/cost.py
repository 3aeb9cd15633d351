"""Least-distortion complementary pairing: problem, solution and cost model.

A 6T SRAM cell holds a bit and its complement.  Store filter i as the B-bit
two's-complement word u in Q; the cells' Q-bar then hold NOT(u) = -u - 1,
which serves as filter j.  Two filters share one row of cells if we replace
them by (u, -u - 1).  The least squared distortion of doing so for filters
w_i, w_j (derivation in docs/pairing.md) is, per weight position k,

    min over integer u_k of (w_ik - u_k)^2 + (w_jk + u_k + 1)^2
      = ceil((w_ik + w_jk + 1)^2 / 2),   at u_k = floor((w_ik - w_jk - 1) / 2),

and that u_k is always inside the B-bit range.  Choosing which filters to
pair is a minimum-weight perfect matching over the filters (with an odd
count, one filter keeps a row of its own, undistorted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from ...hardware.pim import PimChip
from ..crossbar.cost import SolverSettings


@dataclass(frozen=True)
class PairingLayer:
    """The shape of the layer whose filters are paired: M filters of
    (C / groups) x R x S weights each."""

    name: str
    M: int
    C: int
    R: int = 1
    S: int = 1
    groups: int = 1

    @property
    def positions(self) -> int:
        """Weights per filter."""
        return (self.C // self.groups) * self.R * self.S

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The layer's weight tensor shape (M, C / groups, R, S)."""
        return (self.M, self.C // self.groups, self.R, self.S)


@dataclass(frozen=True, eq=False)
class PairingProblem:
    """Integer filters (one row each, all weight positions flattened).

    ``chip`` (the SRAM macro, for the arrays a layer needs), ``layer`` (the
    shape the filters come from), ``generated`` (the seed and spread of
    generated weights, None for given ones) and ``solver`` describe the
    instance; the solvers need only ``weights`` and ``bits``.  Two problems
    are equal when every field is, the weights element by element.
    """

    weights: np.ndarray  # (filters, positions), integers in the B-bit range
    bits: int = 8
    name: str = "layer"
    chip: PimChip | None = None
    layer: PairingLayer | None = None
    generated: tuple[int, float] | None = None   # (seed, std) of generated weights
    solver: SolverSettings = SolverSettings()

    def __post_init__(self):
        w = np.asarray(self.weights)
        if w.ndim != 2:
            raise ValueError(f"weights must be (filters, positions), got shape {w.shape}")
        lo, hi = -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        if w.size and (w.min() < lo or w.max() > hi):
            raise ValueError(f"weights must lie in [{lo}, {hi}] for {self.bits}-bit two's complement")
        if not np.array_equal(w, np.round(w)):
            raise ValueError("weights must be integers (quantize first)")
        object.__setattr__(self, "weights", w.astype(np.int64))

    def __eq__(self, other) -> bool:
        if not isinstance(other, PairingProblem):
            return NotImplemented
        same = (self.bits, self.name, self.chip, self.layer, self.generated, self.solver) == (
            other.bits, other.name, other.chip, other.layer, other.generated, other.solver)
        return same and np.array_equal(self.weights, other.weights)

    __hash__ = object.__hash__

    @property
    def filters(self) -> int:
        return self.weights.shape[0]

    @property
    def positions(self) -> int:
        return self.weights.shape[1]

    def arrays(self, rows: int) -> int | None:
        """Macros of ``chip`` that hold ``rows`` stored filters of the layer:
        weight positions down the rows, each filter ``slices`` columns wide
        (None without a chip)."""
        chip = self.chip
        if chip is None:
            return None
        return ceil(self.positions / chip.rows) * ceil(rows * chip.slices / chip.columns) * chip.copies_factor


@dataclass
class Pairing:
    """Pairs (i, j): filter i is stored in Q, filter j read from Q-bar."""

    pairs: list[tuple[int, int]]
    unpaired: list[int] = field(default_factory=list)

    def validate(self, filters: int) -> None:
        seen = [i for p in self.pairs for i in p] + list(self.unpaired)
        if sorted(seen) != list(range(filters)):
            raise ValueError("a pairing must use every filter exactly once")


def distortion_matrix(problem: PairingProblem) -> np.ndarray:
    """c[i, j] = sum_k ceil((w_ik + w_jk + 1)^2 / 2), for all pairs at once.

    With s = w_ik + w_jk + 1, ceil(s^2 / 2) = (s^2 + [s odd]) / 2 and s is odd
    exactly when w_ik and w_jk have the same parity, so the whole matrix comes
    from Gram products."""
    w = problem.weights.astype(np.float64)
    k = problem.positions
    sq = (w * w).sum(axis=1)
    sums = w.sum(axis=1)
    squares = sq[:, None] + sq[None, :] + 2 * (w @ w.T) + 2 * (sums[:, None] + sums[None, :]) + k
    odd = (problem.weights % 2).astype(np.float64)
    same_parity = odd @ odd.T + (1 - odd) @ (1 - odd).T
    c = np.rint((squares + same_parity) / 2).astype(np.int64)
    np.fill_diagonal(c, 0)
    return c


def stored_words(w_i: np.ndarray, w_j: np.ndarray) -> np.ndarray:
    """The least-distortion word u stored in Q for the pair (i, j)."""
    return np.floor_divide(w_i - w_j - 1, 2)


def paired_weights(problem: PairingProblem, pairing: Pairing) -> np.ndarray:
    """Weights after pairing: filter i becomes u, filter j becomes -u - 1."""
    out = problem.weights.copy()
    for i, j in pairing.pairs:
        u = stored_words(problem.weights[i], problem.weights[j])
        out[i], out[j] = u, -u - 1
    return out


@dataclass
class PairingMetrics:
    """What :func:`evaluate` computes for one pairing."""

    distortion: int       # sum of squared weight changes
    pairs: int
    rows: int             # stored filters (words per position): pairs + unpaired
    rows_unpaired: int    # stored filters without pairing: one per filter
    arrays: int | None = None              # macros of the chip with pairing
    arrays_unpaired: int | None = None     # and without

    @property
    def density_gain(self) -> float:
        return self.rows_unpaired / self.rows if self.rows else 1.0

    def to_dict(self) -> dict:
        return {"distortion": self.distortion, "pairs": self.pairs, "rows": self.rows,
                "rows_without_pairing": self.rows_unpaired, "density_gain": self.density_gain,
                "arrays": self.arrays, "arrays_without_pairing": self.arrays_unpaired}


def evaluate(problem: PairingProblem, pairing: Pairing) -> PairingMetrics:
    """Distortion recomputed from the paired weights themselves (not from the
    closed form), rows used, and the capacity gain over storing every filter.

    Raises
    ------
    ValueError
        The pairing does not use every filter exactly once.
    """
    pairing.validate(problem.filters)
    paired = paired_weights(problem, pairing)
    lo, hi = -(2 ** (problem.bits - 1)), 2 ** (problem.bits - 1) - 1
    if paired.min(initial=0) < lo or paired.max(initial=0) > hi:
        raise AssertionError("paired weight outside the B-bit range")  # excluded by the derivation
    distortion = int(((paired - problem.weights) ** 2).sum())
    rows = len(pairing.pairs) + len(pairing.unpaired)
    return PairingMetrics(distortion, len(pairing.pairs), rows, problem.filters,
                          problem.arrays(rows), problem.arrays(problem.filters))
