"""Re-derive a saved result from scratch (``mapcert verify``).

Nothing in the file is trusted: the mapping is re-read against the declared
space, its traffic recomputed by ``evaluate``, the bounds recomputed, the
mapping executed in the functional model, and a claimed optimum re-proved by
two exact methods independently of the one that produced it.
"""

from __future__ import annotations

from .formulations.tiling.cost import evaluate
from .formulations.tiling.problem import Mapping, TilingProblem
from .formulations.tiling.solve import solve_tiling
from .hardware.functional.tiling import run_tiling
from .validation.bounds import tiling_bounds
from .validation.certificate import Check

_EPS = 1e-6


def _close(a, b) -> bool:
    return a is not None and b is not None and abs(float(a) - float(b)) <= _EPS * max(1.0, abs(float(b)))


def verify_result(problem: TilingProblem, data: dict, time_limit: float = 60.0) -> list[Check]:
    checks: list[Check] = []
    status = data.get("status")
    if data.get("solution") is None:
        if status == "infeasible":
            proof = solve_tiling(problem, "enumerate" if problem.space == "divisors" else "cpsat", time_limit)
            checks.append(Check("instance has no feasible mapping", proof.status == "infeasible", proof.message))
        else:
            checks.append(Check("result holds a mapping", False, f"status {status!r} without a solution"))
        return checks
    try:
        mapping = Mapping.from_dict(data["solution"], problem.layer)
        metrics = evaluate(problem, mapping)
    except (ValueError, KeyError, TypeError) as exc:
        checks.append(Check("mapping lies in the declared space", False, str(exc)))
        return checks
    checks.append(Check("mapping lies in the declared space", True, problem.space_description))
    checks.append(Check("mapping fits the buffer", metrics.fits,
                        f"footprint {sum(metrics.footprint_bits.values()) / 8:,.0f} B"))
    claimed = data.get("objective")
    checks.append(Check("objective re-evaluated", _close(metrics.objective, claimed),
                        f"claimed {claimed}, evaluate {metrics.objective:,.0f} B"))
    terms = (data.get("metrics") or {}).get("traffic_bytes") or {}
    same_terms = all(_close(metrics.traffic_bits[k] / 8, terms.get(k)) for k in metrics.traffic_bits)
    checks.append(Check("traffic per term re-evaluated", same_terms, "inputs, weights, outputs, psums"))

    bounds = tiling_bounds(problem)
    rigorous = bounds["rigorous"].bytes
    checks.append(Check("lower bound re-derived", _close(rigorous, data.get("lower_bound")),
                        f"claimed {data.get('lower_bound')}, recomputed {rigorous:,.0f} B"))
    checks.append(Check("objective at or above the rigorous bound", metrics.objective >= rigorous - _EPS,
                        f"{metrics.objective:,.0f} B >= {rigorous:,.0f} B"))

    report = run_tiling(problem, mapping, seed=1)
    checks.append(Check("functional outputs equal the reference", report.outputs_match,
                        f"{report.iterations:,} iterations, fresh random operands"))
    checks.append(Check("functional counts equal evaluate", report.counted_bits == metrics.traffic_bits,
                        "per term, in bits"))

    for method in ("cpsat", "milp"):
        proof = solve_tiling(problem, method, time_limit)
        if proof.status != "optimal":
            checks.append(Check(f"optimum re-proved by {method}", False,
                                f"{method} returned {proof.status}: {proof.message}"))
            continue
        if status == "optimal":
            checks.append(Check(f"optimum re-proved by {method}", _close(proof.objective, metrics.objective),
                                f"{method} optimum {proof.objective:,.0f} B"))
        else:
            ok = metrics.objective >= proof.objective - _EPS
            bound = data.get("best_bound")
            ok = ok and (bound is None or bound <= proof.objective + _EPS)
            checks.append(Check(f"claimed mapping and bound consistent with {method}'s optimum", ok,
                                f"{method} optimum {proof.objective:,.0f} B"))

    for h in data.get("heuristics") or []:
        if h.get("solution") is None:
            continue
        try:
            value = evaluate(problem, Mapping.from_dict(h["solution"], problem.layer)).objective
        except (ValueError, KeyError, TypeError) as exc:
            checks.append(Check(f"heuristic {h.get('method')} re-evaluated", False, str(exc)))
            continue
        checks.append(Check(f"heuristic {h.get('method')} re-evaluated", _close(value, h.get("objective")),
                            f"{value:,.0f} B"))
    return checks
