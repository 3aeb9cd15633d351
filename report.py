"""A solved instance: the result, its certificate, and heuristics scored
against it.  This is what the CLI prints and what ``-o result.yaml`` saves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .formulations.tiling.cost import Metrics, evaluate
from .formulations.tiling.problem import Mapping, TilingProblem
from .formulations.tiling.solve import TilingResult, solve_tiling
from .instances import dump_instance
from .solvers.tiling_heuristics import HEURISTICS
from .validation.certificate import Certificate, certify

RESULT_FORMAT = "mapcert-result/1"


@dataclass
class HeuristicScore:
    name: str
    mapping: Mapping | None
    metrics: Metrics | None
    wall_time_s: float
    gap_to_optimum: float | None

    def to_dict(self, problem: TilingProblem) -> dict:
        return {
            "method": self.name,
            "objective": self.metrics.objective if self.metrics else None,
            "gap_to_optimum": self.gap_to_optimum,
            "wall_time_s": round(self.wall_time_s, 4),
            "solution": self.mapping.to_dict(problem.layer) if self.mapping else None,
        }


@dataclass
class Report:
    problem: TilingProblem
    result: TilingResult
    certificate: Certificate
    heuristics: list[HeuristicScore] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.certificate.status

    def to_dict(self) -> dict:
        r, c, layer = self.result, self.certificate, self.problem.layer
        return {
            "format": RESULT_FORMAT,
            "status": c.status,
            "objective": c.objective,
            "objective_unit": "bytes of off-chip traffic",
            "best_bound": r.best_bound,
            "gap": r.gap if c.status in ("optimal", "feasible") else None,
            "lower_bound": c.lower_bound,
            "solution": r.mapping.to_dict(layer) if r.mapping else None,
            "metrics": r.metrics.to_dict() if r.metrics else None,
            "method": r.method,
            "wall_time_s": round(r.wall_time_s, 4),
            "message": c.reason or r.message,
            "certificate": c.to_dict(),
            "classes": r.classes,
            "heuristics": [h.to_dict(self.problem) for h in self.heuristics],
            "instance": dump_instance(self.problem),
        }


def score_heuristics(problem: TilingProblem, optimum: float | None, proved: bool) -> list[HeuristicScore]:
    scores = []
    for name, mapper in HEURISTICS.items():
        start = time.perf_counter()
        mapping = mapper(problem)
        wall = time.perf_counter() - start
        metrics = evaluate(problem, mapping) if mapping is not None else None
        gap = None
        if metrics is not None and optimum and proved:
            gap = (metrics.objective - optimum) / optimum
        scores.append(HeuristicScore(name, mapping, metrics, wall, gap))
    return scores


def solve_and_certify(
    problem: TilingProblem,
    method: str | None = None,
    time_limit: float | None = None,
    functional: bool = True,
    heuristics: bool = True,
) -> Report:
    result = solve_tiling(problem, method, time_limit)
    certificate = certify(problem, result, functional=functional)
    scores = []
    if heuristics and result.mapping is not None:
        scores = score_heuristics(problem, certificate.objective, certificate.status == "optimal")
    return Report(problem, result, certificate, scores)
