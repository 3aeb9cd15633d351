"""Solver back-ends shared by every family, and heuristic mappers."""
