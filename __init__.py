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


def solve(problem, method: str | None = None, time_limit: float | None = None, functional: bool = True):
    """Solve an instance (a problem, a loaded instance or a YAML path) and
    certify the answer.  Two-level tiling gives a Report, a memory hierarchy
    with a PE array a MultiLevelReport (multilevel_report.py); the PIM
    families give a CrossbarReport or PairingReport (pim_reports.py)."""
    if isinstance(problem, (str, Path)):
        problem = load(problem)
    if isinstance(problem, TilingProblem):
        return solve_and_certify(problem, method, time_limit, functional=functional)
    from .formulations.tiling.multilevel import MultiLevelProblem

    if isinstance(problem, MultiLevelProblem):
        from .multilevel_report import solve_multilevel_instance

        return solve_multilevel_instance(problem, method, time_limit, functional=functional)
    from .pim_instances import CrossbarInstance, PairingInstance
    from .pim_reports import solve_crossbar_instance, solve_pairing_instance

    if isinstance(problem, CrossbarInstance):
        return solve_crossbar_instance(problem, method, time_limit)
    if isinstance(problem, PairingInstance):
        return solve_pairing_instance(problem, method, time_limit)
    raise TypeError(f"cannot solve a {type(problem).__name__}")


__all__ = [
    "Certificate", "InstanceError", "Mapping", "Report", "TilingProblem",
    "bounds", "certify", "evaluate", "load", "load_text", "solve", "solve_tiling",
]
