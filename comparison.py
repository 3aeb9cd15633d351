"""Every method of a family on one instance, scored against the certified
optimum (``mapcert compare``).

Exact methods must agree; their common proved value is the optimum every
row's gap refers to.  Heuristics are scored by the family's ``evaluate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .formulations.crossbar.cost import evaluate as evaluate_allocation
from .formulations.crossbar.exact import solve_crossbar
from .formulations.pairing.cost import evaluate as evaluate_pairing
from .formulations.pairing.exact import solve_pairing
from .formulations.tiling.cost import evaluate as evaluate_mapping
from .formulations.tiling.multilevel import MultiLevelProblem
from .formulations.tiling.multilevel_cost import evaluate_multilevel
from .formulations.tiling.multilevel_solve import solve_multilevel
from .formulations.tiling.problem import TilingProblem
from .formulations.tiling.solve import solve_tiling
from .partition_instances import PartitionInstance
from .pim_instances import CrossbarInstance, PairingInstance
from .solvers.crossbar_heuristics import CROSSBAR_HEURISTICS
from .solvers.multilevel_heuristics import HEURISTICS as MULTILEVEL_HEURISTICS
from .solvers.pairing_heuristics import PAIRING_HEURISTICS
from .solvers.tiling_heuristics import HEURISTICS as TILING_HEURISTICS
from .pim_reports import BLOSSOM_LIMIT
from .validation.matching_check import blossom_pairing


@dataclass
class Row:
    method: str
    kind: str              # exact | heuristic | check
    status: str
    objective: float | None
    wall_time_s: float
    gap: float | None = None
    note: str = ""
    functional: str | None = None
    """Multi-level tiling: whether the vectorized functional model ran the
    row's mapping and its outputs and counts matched (None for other families)."""


@dataclass
class Comparison:
    family: str
    unit: str
    rows: list[Row] = field(default_factory=list)
    optimum: float | None = None
    message: str = ""
    lower_bound: float | None = None
    """When no optimum is proved, gaps refer to this bound (a proved optimum's gap is exact)."""

    @property
    def status(self) -> str:
        if self.message:
            return "error"
        exact = [r for r in self.rows if r.kind == "exact"]
        if exact and all(r.status == "infeasible" for r in exact):
            return "infeasible"
        return "optimal" if self.optimum is not None else "feasible"

    def to_dict(self) -> dict:
        return {"family": self.family, "status": self.status, "optimum": self.optimum, "unit": self.unit,
                "lower_bound": self.lower_bound,
                "gap_reference": "optimum" if self.optimum is not None else "lower_bound",
                "message": self.message, "rows": [r.__dict__ for r in self.rows]}


def _exact_methods(instance) -> tuple[str, ...]:
    if isinstance(instance, PartitionInstance):
        return ("dp", "milp", "cpsat")
    if isinstance(instance, MultiLevelProblem):
        return ("cpsat", "milp", "enumerate")
    if isinstance(instance, TilingProblem):
        return ("cpsat", "milp", "enumerate")
    if isinstance(instance, CrossbarInstance):
        p = instance.problem
        pure = p.objective == "bottleneck" and not p.one_layer_per_tile and not p.bandwidth
        return ("milp", "cpsat") + (("bisection",) if pure else ())
    return ("milp", "cpsat", "blossom")


def _heuristics(instance) -> dict:
    if isinstance(instance, PartitionInstance):
        from .partition_report import partition_heuristics

        return partition_heuristics(instance)
    if isinstance(instance, MultiLevelProblem):
        return MULTILEVEL_HEURISTICS
    if isinstance(instance, TilingProblem):
        return TILING_HEURISTICS
    return CROSSBAR_HEURISTICS if isinstance(instance, CrossbarInstance) else PAIRING_HEURISTICS


def available_methods(instance) -> tuple[str, ...]:
    return _exact_methods(instance) + tuple(_heuristics(instance))


def compare(instance, methods: list[str] | None = None, time_limit: float | None = None,
            user_mappings: dict | None = None) -> Comparison:
    """Run ``methods`` (default: all of the family) and score them, with the
    user's own mappings (label -> mapping) scored beside them."""
    if not methods:
        methods = list(available_methods(instance))
        if isinstance(instance, PairingInstance) and instance.problem.filters > BLOSSOM_LIMIT:
            methods.remove("blossom")  # pure Python: minutes at this size; ask for it explicitly
    unknown = [m for m in methods if m not in available_methods(instance)]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; this family has {', '.join(available_methods(instance))}")
    if isinstance(instance, MultiLevelProblem):
        unit = {"offchip_traffic": "bytes of off-chip traffic", "latency": "cycles",
                "energy": instance.hierarchy.energy_unit, "edp": f"{instance.hierarchy.energy_unit} x cycles"}
        comparison = Comparison("tiling", unit[instance.objective])
    elif isinstance(instance, TilingProblem):
        comparison = Comparison("tiling", "bytes of off-chip traffic")
    elif isinstance(instance, PartitionInstance):
        comparison = Comparison("partition", "design cost (B + alpha * pJ)" if instance.coexplore else "bytes of EMA")
    elif isinstance(instance, CrossbarInstance):
        unit = {"bottleneck": "cycles (period)", "latency": "cycles (latency)",
                "energy": "pJ per image"}[instance.problem.objective]
        comparison = Comparison("crossbar", unit)
    else:
        comparison = Comparison("pairing", "distortion")
    heuristics = _heuristics(instance)
    for method in methods:
        start = time.perf_counter()
        if method in _exact_methods(instance):
            status, value, note, mapping = _padded(_run_exact(instance, method, time_limit))
            kind = "check" if method == "blossom" else "exact"
        else:
            status, value, note, mapping = _padded(_run_heuristic(instance, method, heuristics))
            kind = "heuristic"
        row = Row(method, kind, status, value, time.perf_counter() - start, note=note)
        row.functional = _functional_check(instance, mapping)
        comparison.rows.append(row)
    for label, mapping in (user_mappings or {}).items():
        start = time.perf_counter()
        status, value, note, checked = _score_user_mapping(instance, mapping)
        row = Row(label, "user", status, value, time.perf_counter() - start, note=note)
        row.functional = _functional_check(instance, checked)
        comparison.rows.append(row)
    proved = {r.objective for r in comparison.rows if r.kind in ("exact", "check") and r.status == "optimal"}
    if len(proved) > 1:
        comparison.message = f"exact methods disagree: {sorted(proved)}"
    elif proved:
        comparison.optimum = proved.pop()
    reference = comparison.optimum
    if reference is None and isinstance(instance, MultiLevelProblem):
        from .validation.multilevel_bounds import multilevel_bounds

        comparison.lower_bound = multilevel_bounds(instance).objective
        reference = comparison.lower_bound
    for row in comparison.rows:
        if reference and row.objective is not None and row.status != "baseline":
            row.gap = (row.objective - reference) / reference
    return comparison


def _run_exact(instance, method: str, time_limit: float | None):
    if isinstance(instance, PartitionInstance):
        from .partition_report import solve_partition_instance

        report = solve_partition_instance(instance, method, time_limit, functional=False)  # run once, below
        note = report.message
        if instance.coexplore and report.capacity is not None:
            from .units import format_bytes

            note = (note + "; " if note else "") + f"buffer {format_bytes(report.capacity)}"
        found = None if report.blocks is None else (report.blocks, report.capacity)
        return report.status, report.objective, note, found
    if isinstance(instance, MultiLevelProblem):
        result = solve_multilevel(instance, method, time_limit)
        note = result.message if result.status != "feasible" or result.gap is None else \
            f"gap {100 * result.gap:.1f}% to the solver's bound"
        return result.status, result.objective, note, result.mapping
    if isinstance(instance, TilingProblem):
        result = solve_tiling(instance, method, time_limit)
        return result.status, result.objective, result.message
    if isinstance(instance, CrossbarInstance):
        result = solve_crossbar(instance.problem, method, time_limit or instance.time_limit, instance.workers)
        return result.status, result.objective, result.message
    if method == "blossom":
        _, value = blossom_pairing(instance.problem)
        return "optimal", value, "Edmonds' blossom (networkx)"
    result = solve_pairing(instance.problem, method, time_limit or instance.time_limit)
    return result.status, result.objective, result.message


def _run_heuristic(instance, method: str, heuristics: dict):
    if isinstance(instance, PartitionInstance):
        from .partition_report import score_partition

        found = heuristics[method]()
        status, value, note = score_partition(instance, found)
        return status, value, note, found if status == "feasible" else None
    if isinstance(instance, MultiLevelProblem):
        mapping = heuristics[method](instance)
        if mapping is None:
            return "infeasible", None, "found no mapping that fits", None
        metrics = evaluate_multilevel(instance, mapping)
        if not metrics.fits:
            return "infeasible", None, "its mapping does not fit", None
        return "feasible", metrics.objective(instance.objective), "", mapping
    if isinstance(instance, TilingProblem):
        mapping = heuristics[method](instance)
        if mapping is None:
            return "infeasible", None, "no mapping of this dataflow fits"
        return "feasible", evaluate_mapping(instance, mapping).objective, ""
    if isinstance(instance, CrossbarInstance):
        metrics = evaluate_allocation(instance.problem, heuristics[method](instance.problem))
        if not metrics.feasible:
            return "infeasible", None, "; ".join(metrics.violations)
        return "feasible", metrics.objective(instance.problem.objective), ""
    metrics = evaluate_pairing(instance.problem, heuristics[method](instance.problem))
    if method == "none":
        return "baseline", metrics.distortion, "no pairing: no distortion, no capacity gain"
    return "feasible", metrics.distortion, f"{metrics.density_gain:.2f}x density"


def _score_user_mapping(instance, mapping):
    """A mapping the user brought, scored by the family's ``evaluate``."""
    if isinstance(instance, MultiLevelProblem):
        metrics = evaluate_multilevel(instance, mapping)
        value = metrics.objective(instance.objective)
    else:
        metrics = evaluate_mapping(instance, mapping)
        value = metrics.objective
    if not metrics.fits:
        return "infeasible", value, "does not fit the hardware", None
    return "feasible", value, "", mapping


def _padded(answer: tuple) -> tuple:
    """(status, value, note, mapping): families without a functional check give no mapping."""
    return answer if len(answer) == 4 else (*answer, None)


def _functional_check(instance, mapping) -> str | None:
    if isinstance(instance, PartitionInstance):
        if mapping is None:
            return "-"
        from .partition_report import functional_check, functional_passed

        check = functional_check(instance.graph, *mapping, instance.objective, instance.machine)
        if not check["ran"]:
            return f"not run ({check['reason']})"
        return "passed" if functional_passed(check) else "FAILED"
    if not isinstance(instance, MultiLevelProblem):
        return None
    if mapping is None:
        return "-"
    from .multilevel_report import functional_check

    check = functional_check(instance, mapping, evaluate_multilevel(instance, mapping))
    if not check["ran"]:
        return f"not run ({check['reason']})"
    ok = check["outputs_match"] and check["counts_match"]
    return "passed" if ok else "FAILED"
