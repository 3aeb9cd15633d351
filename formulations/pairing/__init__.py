"""Complementary filter pairing for SRAM processing-in-memory (DDC-PIM)."""

from .cost import PairingProblem, Pairing, distortion_matrix, evaluate
from .exact import solve_pairing

__all__ = ["Pairing", "PairingProblem", "distortion_matrix", "evaluate", "solve_pairing"]
