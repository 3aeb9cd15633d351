"""Heuristic tiling mappers.  Each returns a Mapping that ``evaluate`` scores.

``paper_dataflow`` is the constructive dataflow of the communication
lower-bound paper (Chen, Han, Wang, HPCA 2020): keep an output tile
b x y x z on chip, stream the input channels innermost (C is the innermost
DRAM loop, one channel at a time), write each output exactly once.  Within
that dataflow the best integer tiles are found by enumeration, exactly as the
paper's authors searched tile sizes.
"""

from __future__ import annotations

import numpy as np

from ..formulations.tiling.enumeration import SpaceTooLarge, enumerate_space
from ..formulations.tiling.problem import LOOP_DIMS, Mapping, TilingProblem
from ..formulations.tiling.space import CANONICAL_ORDER, DimTable, dim_tables

HEURISTIC_LIMIT = 10**7
"""Most points the paper-dataflow search visits before giving up."""


def paper_dataflow(problem: TilingProblem) -> Mapping | None:
    """Output-stationary, input channels streamed one at a time; ``None``
    when not even that dataflow fits the buffer."""
    layer = problem.layer
    tables = dim_tables(layer, problem.space, reduced=True)
    one = np.array([1], dtype=np.int64)
    channels = np.array([layer.extent("C")], dtype=np.int64)
    tables["C"] = DimTable("C", tiles=one, trips=channels, swept=channels, input_extent=one, halo=channels)
    try:
        outcome = enumerate_space(problem, tables=tables, classes=("outputs",), limit=HEURISTIC_LIMIT)
    except SpaceTooLarge:
        return None
    return outcome.mapping


def fallback_mapping(problem: TilingProblem) -> Mapping:
    """A mapping that fits whenever anything does: the paper's dataflow, or
    tiles of one element each."""
    mapping = paper_dataflow(problem)
    if mapping is None:
        mapping = Mapping({d: 1 for d in LOOP_DIMS}, CANONICAL_ORDER["outputs"])
    return mapping


HEURISTICS = {"paper-dataflow": paper_dataflow}
