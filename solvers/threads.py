"""How many threads one solve may use.

A sweep runs one job per worker process and as many workers as cores, so
each job's solvers must keep to one thread or N workers would fight over
the cores.  The worker sets ``MAPCERT_SOLVER_THREADS``; the solver back-ends
read it here.  Without it a solve uses the machine's cores (at most 8,
beyond which CP-SAT's portfolio gains little).
"""

from __future__ import annotations

import os

ENVIRONMENT_VARIABLE = "MAPCERT_SOLVER_THREADS"
SWEEP_JOB_VARIABLE = "MAPCERT_SWEEP_JOB"
"""Set while a sweep's job runs: the solvers then leave Ctrl-C to the sweep."""


def solver_threads() -> int:
    """Threads per solve: ``MAPCERT_SOLVER_THREADS`` when set, else the cores (at most 8)."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(8, os.cpu_count() or 1))


def threads_fixed() -> bool:
    """Whether the thread count was set from outside (a sweep's worker)."""
    return bool(os.environ.get(ENVIRONMENT_VARIABLE, "").strip())
