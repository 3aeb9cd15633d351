"""Keep or bypass as a decision: the keep sets a hierarchy allows.

A level whose ``holds`` the hardware does not fix keeps or bypasses each
tensor it has room for as the mapping decides (``MemoryLevel.chosen``).
With the keep sets fixed, a hierarchy is an ordinary fixed one
(``Hierarchy.kept``), so the enumeration and the MILP solve the space as a
union over keep sets: one fixed problem per keep set, each searched only
for mappings strictly better than the best found so far. The CP-SAT model
instead decides keep Booleans inside one model (``cpsat.py``); the two
routes agreeing is part of the evidence that both are exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from ....hardware.hierarchy import TENSORS, Hierarchy
from .problem import MultiLevelMapping, MultiLevelProblem

MAX_KEEP_SETS = 4096
"""Most keep sets the union over keep sets walks (12 chosen tensor-level pairs)."""


@dataclass(frozen=True)
class Link:
    """A possible fill path of ``tensor``: child level ``level`` (``len(levels)``
    = the MAC units) filled from ``parent``. It exists when the levels in
    ``kept`` keep the tensor and those in ``bypassed`` (between the two)
    bypass it; with fixed keep sets both are empty."""

    level: int
    tensor: str
    parent: int
    kept: tuple[int, ...] = ()
    bypassed: tuple[int, ...] = ()

    def active(self, keep: tuple[frozenset[str], ...]) -> bool:
        """Whether the link exists under the keep sets ``keep``."""
        return all(self.tensor in keep[j] for j in self.kept) and \
            not any(self.tensor in keep[j] for j in self.bypassed)


def links(hierarchy: Hierarchy) -> list[Link]:
    """Every fill path a mapping of the hierarchy can have.

    With fixed keep sets each tensor has one parent per level that holds it:
    the nearest level above that holds it. A level whose keep is chosen may
    hold the tensor or not, so a child may be filled from any level above
    it up to the nearest one that always keeps the tensor."""
    K = len(hierarchy.levels)
    out = []
    for l in range(1, K + 1):
        for X in TENSORS:
            if l < K and X not in hierarchy.levels[l].holds:
                continue
            child_chosen = l < K and X in hierarchy.levels[l].chosen
            between: list[int] = []
            for a in range(l - 1, -1, -1):
                level = hierarchy.levels[a]
                if X not in level.holds:
                    continue
                kept = tuple(j for j, chosen in ((a, X in level.chosen), (l, child_chosen)) if chosen)
                out.append(Link(l, X, a, kept, tuple(sorted(between))))
                if X not in level.chosen:
                    break
                between.append(a)
    return out


def keep_sets(hierarchy: Hierarchy) -> list[tuple[frozenset[str], ...]]:
    """Every keep set the hierarchy allows, everything kept first (the space
    without bypass choices, whose optimum is the best first cutoff)."""
    options = []
    for level in hierarchy.levels:
        chosen = sorted(level.chosen)
        subsets = [frozenset(c) for r in range(len(chosen), -1, -1) for c in itertools.combinations(chosen, r)]
        options.append([level.always_holds | s for s in subsets])
    count = 1
    for o in options:
        count *= len(o)
    if count > MAX_KEEP_SETS:
        raise ValueError(f"{count:,} keep/bypass combinations; the union over keep sets stops at "
                         f"{MAX_KEEP_SETS:,} (fix some levels' holds, or use cpsat)")
    return [tuple(combo) for combo in itertools.product(*options)]


def sample_keep_sets(hierarchy: Hierarchy, rnd, count: int) -> list[tuple[frozenset[str], ...]]:
    """Everything kept, then ``count - 1`` keep sets drawn uniformly (each
    chosen tensor kept or bypassed with even odds), without listing them all:
    for samplers, whatever the number of keep sets."""
    everything = hierarchy.default_keep()
    drawn = [tuple(level.always_holds | frozenset(t for t in sorted(level.chosen) if rnd.random() < 0.5)
                   for level in hierarchy.levels) for _ in range(count - 1)]
    return [everything, *dict.fromkeys(k for k in drawn if k != everything)]


def with_keep(problem: MultiLevelProblem, mapping: MultiLevelMapping | None,
              keep: tuple[frozenset[str], ...]) -> MultiLevelMapping | None:
    """A mapping of a fixed piece as a mapping of ``problem`` (its keep sets attached)."""
    if mapping is None:
        return None
    return replace(mapping, keep=None if keep == problem.hierarchy.default_keep() else keep)
