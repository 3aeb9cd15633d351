"""Tiling on a memory hierarchy with a PE array: problem, cost model, space,
exact models (CP-SAT, MILP, enumeration), instance schema and the family
registration (``family.py``)."""
