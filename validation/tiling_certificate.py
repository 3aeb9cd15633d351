"""Certificates: why a tiling is optimal, and the checks that back the claim.

A solver's word is not enough.  ``certify`` recomputes the objective with
``evaluate``, compares it with what the solver reported, places it against
the analytical bounds, and executes the mapping in the functional model.  The
final status is ``optimal`` only when the solver proved it *and* every check
passes; a failed check turns any claim into ``error`` (it means a bug, and
the certificate says which check caught it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..formulations.tiling.cost import evaluate
from ..formulations.tiling.problem import TilingProblem
from ..formulations.tiling.solve import TilingResult
from ..hardware.functional.tiling import FunctionalReport, run_tiling
from .bounds import Bound, tiling_bounds

TOLERANCE_BYTES = 1e-6


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class Certificate:
    status: str
    space: str
    method: str
    solver_proved: bool
    objective: float | None
    best_bound: float | None
    bounds: dict[str, Bound]
    checks: list[Check] = field(default_factory=list)
    functional: FunctionalReport | None = None
    reason: str = ""

    @property
    def lower_bound(self) -> float:
        return self.bounds["rigorous"].bytes

    def ratio(self, bound: str) -> float | None:
        value = self.bounds[bound].bytes
        if self.objective is None or value <= 0:
            return None
        return self.objective / value

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "space": self.space,
            "method": self.method,
            "solver_proved": self.solver_proved,
            "objective_bytes": self.objective,
            "solver_bound_bytes": self.best_bound,
            "bounds": {k: dict(b.to_dict(), ratio=self.ratio(k)) for k, b in self.bounds.items()},
            "checks": [c.to_dict() for c in self.checks],
            "functional": self.functional.to_dict() if self.functional else None,
            "reason": self.reason,
        }


def certify(problem: TilingProblem, result: TilingResult, functional: bool = True, seed: int = 0) -> Certificate:
    bounds = tiling_bounds(problem)
    cert = Certificate(
        status=result.status,
        space=problem.space_description,
        method=result.method,
        solver_proved=result.proved,
        objective=None,
        best_bound=result.best_bound,
        bounds=bounds,
        reason=result.message,
    )
    if result.mapping is None:
        return cert

    metrics = evaluate(problem, result.mapping)
    cert.objective = metrics.objective
    checks = cert.checks
    claimed = result.solver_objective
    if claimed is not None:
        agree = abs(claimed - metrics.objective) <= TOLERANCE_BYTES
        undercut_ok = not result.proved and metrics.objective < claimed
        checks.append(Check(
            "evaluate agrees with the solver", agree or undercut_ok,
            f"solver {claimed:,.0f} B, evaluate {metrics.objective:,.0f} B",
        ))
    checks.append(Check(
        "mapping fits the buffer", metrics.fits,
        f"footprint {sum(metrics.footprint_bits.values()) / 8:,.0f} B of {problem.buffer.capacity_bytes:,.0f} B",
    ))
    rigorous = bounds["rigorous"].bytes
    checks.append(Check(
        "at or above the rigorous lower bound", metrics.objective >= rigorous - TOLERANCE_BYTES,
        f"{metrics.objective:,.0f} B >= {rigorous:,.0f} B",
    ))
    if result.best_bound is not None:
        checks.append(Check(
            "solver bound at or below the objective", result.best_bound <= metrics.objective + TOLERANCE_BYTES,
            f"bound {result.best_bound:,.0f} B",
        ))
    if functional:
        report = run_tiling(problem, result.mapping, seed=seed)
        cert.functional = report
        detail = f"{report.iterations:,} DRAM-level iterations in {report.wall_time_s:.2f} s"
        if report.notes:
            detail += "; " + "; ".join(report.notes)
        checks.append(Check("functional outputs equal the reference", report.outputs_match, detail))
        diffs = [k for k, v in metrics.traffic_bits.items() if report.counted_bits[k] != v]
        checks.append(Check(
            "functional transfer counts equal evaluate", not diffs,
            "all terms equal" if not diffs else "differ in " + ", ".join(diffs),
        ))

    failed = [c.name for c in checks if not c.passed]
    if failed:
        cert.status = "error"
        cert.reason = "check failed: " + "; ".join(failed)
    elif result.status == "optimal" and result.proved:
        cert.status = "optimal"
    elif result.status in ("optimal", "feasible"):
        cert.status = "feasible"
    return cert
