"""mapcert: provably optimal mappings of neural-network layers onto accelerators.

    >>> import mapcert
    >>> problem = mapcert.load("examples/vgg16_conv3_2_64KiB.yaml")
    >>> report = mapcert.solve(problem)            # optimum + certificate
    >>> report.status, report.certificate.objective
    ('optimal', 11321344.0)

``solve`` runs an exact method, ``certify`` re-checks any result
independently (cost model, bounds, functional execution), ``bounds`` gives
the analytical lower bounds, ``evaluate`` scores any mapping.
"""

from __future__ import annotations

from pathlib import Path

from .formulations.tiling import Mapping, TilingProblem, evaluate, solve_tiling
from .instances import InstanceError, load, load_text
from .report import Report, solve_and_certify
from .validation.bounds import tiling_bounds as bounds
from .validation.certificate import Certificate, certify

__version__ = "0.1.0"


def solve(
    problem: TilingProblem | str | Path,
    method: str | None = None,
    time_limit: float | None = None,
    functional: bool = True,
) -> Report:
    """Solve an instance (a problem or a YAML path) and certify the answer."""
    if not isinstance(problem, TilingProblem):
        problem = load(problem)
    return solve_and_certify(problem, method, time_limit, functional=functional)


__all__ = [
    "Certificate", "InstanceError", "Mapping", "Report", "TilingProblem",
    "bounds", "certify", "evaluate", "load", "load_text", "solve", "solve_tiling",
]
