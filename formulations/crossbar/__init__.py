"""Crossbar allocation with weight duplication on a PIM chip (pipelined layers)."""

from .cost import Allocation, CrossbarLayer, CrossbarProblem, evaluate, layers_from_network
from .exact import solve_crossbar

__all__ = ["Allocation", "CrossbarLayer", "CrossbarProblem", "evaluate", "layers_from_network", "solve_crossbar"]
