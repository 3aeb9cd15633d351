"""Solve a multi-level tiling instance and check the answer (``mapcert solve``).

The status is ``optimal`` only when the exact method proved it, when
``evaluate_multilevel`` agrees with the method's value, when the value is
not below the rigorous bound, and when the functional model passes (if it
ran). When the solver finds nothing in time, the best mapping of the random
mapper is returned as ``feasible``, with its gap to the lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formulations.tiling.multilevel import MultiLevelProblem
from .formulations.tiling.multilevel_cost import evaluate_multilevel
from .formulations.tiling.multilevel_solve import MultiLevelResult, solve_multilevel
from .hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from .solvers.multilevel_heuristics import random_sampling
from .validation.multilevel_bounds import MultiLevelBounds, multilevel_bounds

UNITS = {"offchip_traffic": "bytes", "latency": "cycles"}


@dataclass
class MultiLevelReport:
    problem: MultiLevelProblem
    result: MultiLevelResult
    bounds: MultiLevelBounds
    functional: dict
    status: str
    message: str = ""

    @property
    def unit(self) -> str:
        if self.problem.objective in ("energy", "edp"):
            unit = self.problem.hierarchy.energy_unit
            return unit if self.problem.objective == "energy" else f"{unit} x cycles"
        return UNITS[self.problem.objective]

    def gap_to_bound(self) -> float | None:
        value = self.result.objective
        if value is None or value == 0:
            return None
        return max(0.0, (value - self.bounds.objective) / value)

    def to_dict(self) -> dict:
        r, hier = self.result, self.problem.hierarchy
        return {
            "status": self.status,
            "family": "tiling",
            "objective_name": self.problem.objective,
            "unit": self.unit,
            "objective": r.objective,
            "best_bound": r.best_bound,
            "gap": r.gap,
            "lower_bound": self.bounds.objective,
            "gap_to_lower_bound": self.gap_to_bound(),
            "solution": None if r.mapping is None else r.mapping.to_dict(hier),
            "metrics": None if r.metrics is None else r.metrics.to_dict(),
            "method": r.method,
            "wall_time_s": round(r.wall_time_s, 4),
            "message": self.message or r.message,
            "certificate": {
                "space": self.problem.space_description,
                "hardware": hier.name,
                "hardware_source": hier.source,
                "bounds": self.bounds.to_dict(),
                "functional": self.functional,
            },
        }


def solve_multilevel_instance(problem: MultiLevelProblem, method: str | None = None,
                              time_limit: float | None = None, functional: bool = True) -> MultiLevelReport:
    method = method or problem.solver.method
    result = solve_multilevel(problem, method, time_limit)
    bounds = multilevel_bounds(problem)
    message = ""
    if result.status == "error" and result.mapping is None:
        mapping = random_sampling(problem)
        if mapping is not None:
            metrics = evaluate_multilevel(problem, mapping)
            value = metrics.objective(problem.objective)
            message = f"{result.message}; returning the random mapper's best mapping"
            result = MultiLevelResult("feasible", f"{method} (random mapper fallback)", mapping, metrics, value,
                                      None, result.wall_time_s, message)
    status = result.status
    check: dict = {"ran": False}
    if result.mapping is not None:
        if functional:
            check = functional_check(problem, result.mapping, result.metrics)
            if check["ran"] and not (check["outputs_match"] and check["counts_match"]):
                status, message = "error", "the functional model disagrees with the cost model"
        else:
            check["reason"] = "not requested"
        if result.objective is not None and result.objective < bounds.objective * (1 - 1e-9):
            status, message = "error", "the objective lies below a rigorous lower bound: a bug, please report it"
    return MultiLevelReport(problem, result, bounds, check, status, message)


def functional_check(problem: MultiLevelProblem, mapping, metrics) -> dict:
    """Run the vectorized functional model; whether it computed the layer and
    moved exactly the words ``metrics`` counts, or why it did not run."""
    try:
        run = run_multilevel_vectorized(problem, mapping)
    except ValueError as exc:  # beyond the model's size limits
        return {"ran": False, "reason": str(exc)}
    counts_match = (run.reads == metrics.reads and run.writes == metrics.writes
                    and run.cycles == metrics.compute_cycles)
    return {"ran": True, "outputs_match": run.outputs_match, "counts_match": counts_match,
            "cycles": run.cycles, "wall_time_s": round(run.wall_time_s, 3)}
