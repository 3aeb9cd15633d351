"""Loop tiling of one layer between DRAM and an on-chip buffer."""

from .cost import Metrics, evaluate
from .problem import Buffer, ConvLayer, Mapping, Precision, SolverSettings, TilingProblem
from .solve import METHODS, TilingResult, infeasibility_reason, solve_tiling

__all__ = [
    "Buffer", "ConvLayer", "Mapping", "Metrics", "Precision", "SolverSettings", "TilingProblem",
    "TilingResult", "METHODS", "evaluate", "infeasibility_reason", "solve_tiling",
]
