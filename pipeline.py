"""Solve and compare, for every family, through the family contract.

The stages of ``solve``, in order:

1. find the problem's family in the registry; a network (a family whose
   ``parts`` expand it) is solved part by part and totalled (step 7);
2. pick the exact method (the instance's default, or the one asked for; a
   method that does not apply is a usage error, :class:`MethodError`);
3. run it with the time limit: an :class:`Attempt` (the method's claims);
4. when it found nothing in time, take the best heuristic solution as a
   ``feasible`` answer, so that a time-out still gives a mapping;
5. certify: ``evaluate`` the solution, check it against every rigorous
   bound and the method's bound, run the family's cross-checks and the
   functional model (``validation/certificate.py``);
6. score the heuristics against the optimum (or the bound) and write one
   :class:`~mapcert.result.Result`;
7. a network: one result per distinct part, totals weighted by how often
   each part repeats.

Nothing here knows a family's type: every family-specific answer comes from
the :class:`~mapcert.formulations.family.Family` interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .version import __version__
from .formulations import registry
from .formulations.family import Attempt, Bound, Check, Evaluation, ExactMethod, Family, Part, Status
from .result import (Certificate, CheckEntry, FunctionalEntry, HeuristicEntry, PartEntry, Result, BoundEntry,
                     SecondaryEntry, excess, gap_of)
from .part_pool import part_jobs, part_pool, picklable, results_in_order
from .units import format_value
from .validation.certificate import Certification, at_least, certify, lower_bound


class MethodError(ValueError):
    """A method that does not exist in the family or does not apply to the instance."""


def exact_method(family: Family, problem, name: str | None) -> ExactMethod:
    """The exact method ``name`` of ``family`` (its default when None).

    Raises
    ------
    MethodError
        Unknown method, or one that does not apply to ``problem`` (the
        message says why and what to use instead).
    """
    methods = {m.name: m for m in family.methods(problem)}
    if name is None:
        name = family.default_method(problem)
    if name not in methods:
        choices = [m.name for m in methods.values() if m.solves and m.why_not(problem) is None]
        if name in {h.name for h in family.heuristics(problem)}:
            raise MethodError(f"{name!r} is a heuristic, which proves nothing: `mapcert compare FILE --methods "
                              f"{name}` scores it against the optimum; solve with one of {', '.join(choices)}")
        raise MethodError(f"unknown method {name!r} for the {family.name} family; choose one of {', '.join(choices)}")
    method = methods[name]
    reason = method.why_not(problem)
    if reason is not None:
        raise MethodError(f"method {name!r} does not apply to this instance: {reason}")
    if not method.solves:
        raise MethodError(f"{name!r} is a cross-check, not a solving method; use `mapcert compare` to run it")
    return method


def method_names(family: Family, problem) -> list[str]:
    """Every method (exact and heuristic) ``compare`` can run on ``problem``."""
    exact = [m.name for m in family.methods(problem) if m.why_not(problem) is None]
    return exact + [h.name for h in family.heuristics(problem)]


def bounds(problem) -> list[Bound]:
    """The analytical lower bounds of a problem, each flagged rigorous or not."""
    return registry.family_of(problem).bounds(problem)


def solve(problem, method: str | None = None, time_limit: float | None = None, *, functional: bool = True,
          heuristics: bool = True, seed: int = 0,
          progress: Callable[[str], None] | None = None, jobs: int | None = None) -> Result:
    """Solve ``problem`` with an exact method and certify the answer.

    Parameters
    ----------
    problem
        A problem of any registered family (``mapcert.load``).
    method
        Exact method name; default: the instance's own.
    time_limit
        Seconds per exact solve; default: the instance's own.  On time-out
        the best solution found is returned as ``feasible`` with its gap.
    functional
        Execute the solution in the family's functional model.
    heuristics
        Score the family's quick heuristics against the answer.
    seed
        Seed of the functional model's random operands.
    progress
        Called with the name of each part of a network once it is solved.
    jobs
        Parts of a network solved at once, each in its own process with its
        share of the solver threads (``part_pool.py``); default: one per
        core (1 inside a sweep's job). The optima do not depend on it (nor, for
        tiling, the mapping: the canonical optimum).

    Returns
    -------
    Result
        The one result format (``mapcert-result/2``).
    """
    family = registry.family_of(problem)
    parts = family.parts(problem)
    if parts is not None:
        start = time.perf_counter()
        results = _solve_parts(family, parts, method, time_limit, functional, heuristics, seed, progress, jobs)
        return network_result(family, problem, parts, results, wall_time_s=time.perf_counter() - start)
    result = _solve_single(family, problem, method, time_limit, functional, heuristics, seed)
    result.instance = family.dump(problem)
    return result


def _solve_parts(family: Family, parts: list[Part], method_name, time_limit, functional, heuristics, seed,
                 progress, jobs) -> list[Result]:
    """One result per part, in the parts' order, ``jobs`` parts at a time (``part_pool.py``)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a whole number of at least 1 (or None: one per core), not {jobs!r}")
    jobs = part_jobs(len(parts), jobs)
    if jobs == 1 or not picklable([part.problem for part in parts]):
        results = []
        for part in parts:
            results.append(_solve_single(family, part.problem, method_name, time_limit, functional, heuristics, seed))
            if progress is not None:
                progress(part.name)
        return results
    exact_method(family, parts[0].problem, method_name)  # a usage error at once, not from every process
    with part_pool(jobs) as pool:
        futures = [pool.submit(_solve_part, part.problem, method_name, time_limit, functional, heuristics, seed)
                   for part in parts]
        return results_in_order(futures, [part.name for part in parts], progress)


def _solve_part(problem, method_name, time_limit, functional, heuristics, seed) -> Result:
    """One part in a pool's process (the family is found again there)."""
    return _solve_single(registry.family_of(problem), problem, method_name, time_limit, functional, heuristics, seed)


def _solve_single(family: Family, problem, method_name, time_limit, functional, heuristics, seed) -> Result:
    method = exact_method(family, problem, method_name)
    limit = time_limit if time_limit is not None else family.time_limit(problem)
    start = time.perf_counter()
    attempt = method.run(problem, limit)
    attempt.method = attempt.method or method.name
    # a time-out falls back on a better heuristic solution even with heuristics off (they only go unscored),
    # within what is left of the time limit then, unless there is no solution at all
    unfinished = attempt.solution is None or attempt.status in (Status.FEASIBLE, Status.ERROR)
    deadline = None if heuristics or attempt.solution is None or limit is None else start + limit
    scored = score_heuristics(family, problem, [h for h in family.heuristics(problem) if h.in_solve], deadline) \
        if heuristics or unfinished else []
    if attempt.status in (Status.FEASIBLE, Status.ERROR):
        attempt = _fallback(family, problem, attempt, scored)
    wall = time.perf_counter() - start
    all_bounds = family.bounds(problem)
    cert = certify(family, problem, attempt, all_bounds, functional=functional, seed=seed)
    if cert.better is not None:  # the method stopped short and another exact method proved a better optimum
        stopped, value = attempt, cert.evaluation.objective
        attempt = cert.better
        attempt.message = (f"{stopped.method} stopped at {format_value(value)} ({stopped.message or 'time limit'}); "
                           f"{attempt.method}, run as the second opinion, proved the optimum")
        cert = certify(family, problem, attempt, all_bounds, functional=functional, seed=seed, second_opinion=False)
        cert.checks.append(Check(f"{stopped.method} agrees", at_least(value, attempt.objective),
                                 f"{stopped.method}: {stopped.status.value} at {format_value(value)}, at or above "
                                 "this optimum"))
    result = assemble(family, problem, attempt, all_bounds, cert, wall)
    if heuristics:
        result.heuristics = heuristic_entries(family, problem, scored, result)
    return result.attach(problem, attempt.solution)


@dataclass
class Scored:
    """A heuristic's solution and the cost model's verdict on it."""

    name: str
    solution: object
    evaluation: Evaluation | None
    wall_time_s: float
    note: str = ""

    @property
    def value(self) -> float | None:
        ok = self.evaluation is not None and self.evaluation.feasible
        return self.evaluation.objective if ok else None


def score_heuristics(family: Family, problem, chosen, deadline: float | None = None) -> list[Scored]:
    """Run each heuristic of ``chosen`` and evaluate its solution; none is
    started after ``deadline`` (a ``time.perf_counter()`` value)."""
    out = []
    for h in chosen:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        start = time.perf_counter()
        solution = h.run()
        evaluation = family.evaluate(problem, solution) if solution is not None else None
        note = "" if solution is not None else "found no solution that fits"
        if evaluation is not None and not evaluation.feasible:
            note = "; ".join(evaluation.violations[:2])
        out.append(Scored(h.name, solution, evaluation, time.perf_counter() - start, note))
    return out


def _fallback(family: Family, problem, attempt: Attempt, scored: list[Scored]) -> Attempt:
    """The best heuristic solution when the exact method stopped without one,
    or with a worse one (a time-out): the answer is the best solution known."""
    usable = [s for s in scored if s.value is not None]
    if not usable:
        return attempt
    best = min(usable, key=lambda s: s.value)
    if attempt.solution is not None:
        own = family.evaluate(problem, attempt.solution)
        if not own.feasible or own.objective is None or own.objective <= best.value:
            return attempt
        why = f"{attempt.message or 'time limit reached'}; heuristic {best.name} found a better solution"
    else:
        why = f"{attempt.message or 'no solution in time'}; returning the best heuristic solution ({best.name})"
    return Attempt(Status.FEASIBLE, best.solution, best.value, attempt.best_bound, attempt.wall_time_s,
                   why, f"{attempt.method} (then heuristic {best.name})", attempt.details)


def assemble(family: Family, problem, attempt: Attempt, all_bounds: list[Bound], cert: Certification,
             wall_time_s: float) -> Result:
    """The result document of one certified attempt (without heuristics)."""
    lower = lower_bound(all_bounds)
    evaluation = cert.evaluation
    objective = evaluation.objective if evaluation is not None and evaluation.feasible else None
    best = best_bound(cert.status, objective, attempt.best_bound, lower)
    return Result(
        family=family.name, status=cert.status, objective=objective,
        objective_name=family.objective_name(problem), unit=family.unit(problem),
        secondary=secondary_entries(family, problem, attempt, cert), best_bound=best, lower_bound=lower,
        bounds=[BoundEntry(**b.to_dict()) for b in all_bounds],
        gap=gap_of(objective, best, lower) if cert.status in (Status.OPTIMAL, Status.FEASIBLE) else None,
        solution=None if attempt.solution is None else family.solution_to_dict(problem, attempt.solution),
        metrics=None if evaluation is None else evaluation.metrics,
        method=attempt.method, wall_time_s=round(wall_time_s, 4), message=cert.message or attempt.message,
        certificate=Certificate(space=family.space(problem), checks=[CheckEntry(**c.to_dict()) for c in cert.checks],
                                functional=FunctionalEntry(**cert.functional.to_dict())),
        details=attempt.details, mapcert_version=__version__,
    )


def secondary_entries(family: Family, problem, attempt: Attempt, cert: Certification) -> list[SecondaryEntry]:
    """Each secondary objective with ``evaluate``'s value of the solution,
    proved only where the method proved it and the primary optimum stands."""
    evaluation = cert.evaluation
    proved = {c.objective for c in attempt.secondary if c.proved} if cert.status == Status.OPTIMAL else set()
    return [SecondaryEntry(objective=name, unit=unit, proved=name in proved,
                           value=None if evaluation is None else evaluation.secondary.get(name))
            for name, unit in family.secondary_objectives(problem)]


def best_bound(status: Status, objective: float | None, solver_bound: float | None,
               lower: float | None) -> float | None:
    """The bound a result reports: the optimum when proved, else the larger of
    the solver's bound and the rigorous bound (docs/results.md)."""
    if status == Status.OPTIMAL and objective is not None:
        return float(objective)
    if status not in (Status.OPTIMAL, Status.FEASIBLE):
        return None
    known = [float(b) for b in (solver_bound, lower) if b is not None]
    return max(known) if known else None


def heuristic_entries(family: Family, problem, scored: list[Scored], result: Result) -> list[HeuristicEntry]:
    """Heuristic rows of a result, each with its excess over the reference."""
    reference = result.objective if result.status == Status.OPTIMAL else result.best_bound
    rows = []
    for s in scored:
        value = s.value
        rows.append(HeuristicEntry(
            method=s.name, status=Status.FEASIBLE if value is not None else Status.INFEASIBLE,
            objective=value, gap=excess(value, reference), wall_time_s=round(s.wall_time_s, 4), note=s.note,
            solution=None if s.solution is None else family.solution_to_dict(problem, s.solution)))
    return rows


def network_status(statuses: list[Status]) -> Status:
    """A network is optimal when every part is; any error or infeasible part decides."""
    if all(s == Status.OPTIMAL for s in statuses):
        return Status.OPTIMAL
    for worst in (Status.ERROR, Status.INFEASIBLE):
        if worst in statuses:
            return worst
    return Status.FEASIBLE


def _weighted(values: list[float | None], counts: list[int]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(sum(v * c for v, c in zip(values, counts)))


def _secondary_totals(results: list[Result], counts: list[int]) -> list[SecondaryEntry]:
    """Each secondary objective summed over the layers (a sum of per-layer
    lexicographic optima is the network's), proved when every layer's is."""
    out = []
    for i, entry in enumerate(results[0].secondary):
        entries = [r.secondary[i] if i < len(r.secondary) else None for r in results]
        out.append(SecondaryEntry(objective=entry.objective, unit=entry.unit,
                                  proved=all(e is not None and e.proved for e in entries),
                                  value=_weighted([None if e is None else e.value for e in entries], counts)))
    return out


def network_result(family: Family, problem, parts: list[Part], results: list[Result],
                   wall_time_s: float | None = None) -> Result:
    """One result for a network from one result per distinct part;
    ``wall_time_s`` is the elapsed time of the whole solve (parts solved
    side by side overlap), the sum of the parts' times when not given."""
    counts = [p.count for p in parts]
    status = network_status([r.status for r in results])
    objective = _weighted([r.objective for r in results], counts)
    lower = _weighted([r.lower_bound for r in results], counts)
    best = _weighted([r.best_bound for r in results], counts)
    ran = [r.certificate.functional.ran for r in results]
    passed = [r.certificate.functional.passed for r in results if r.certificate.functional.ran]
    functional = FunctionalEntry(
        ran=all(ran) and bool(ran), passed=(all(passed) if passed else None),
        reason="" if all(ran) else f"not run on {len(ran) - sum(ran)} of {len(ran)} layers (see each layer)",
        counts={"layers_run": sum(ran), "layers": len(ran)},
        wall_time_s=round(sum(r.certificate.functional.wall_time_s for r in results), 4))
    checks = [CheckEntry(name=f"{p.name}: certified", passed=r.status in (Status.OPTIMAL, Status.FEASIBLE),
                         detail=f"{r.status.value}" + (f" ({r.message})" if r.message else ""))
              for p, r in zip(parts, results)]
    heuristics = []
    names = [h.method for h in results[0].heuristics] if results else []
    for name in names:
        values = [next((h.objective for h in r.heuristics if h.method == name), None) for r in results]
        total = _weighted(values, counts)
        reference = objective if status == Status.OPTIMAL else best
        heuristics.append(HeuristicEntry(method=name, status=Status.FEASIBLE if total is not None else Status.INFEASIBLE,
                                         objective=total, gap=excess(total, reference),
                                         wall_time_s=round(sum(h.wall_time_s for r in results for h in r.heuristics
                                                               if h.method == name), 4),
                                         note="" if total is not None else "no solution on some layer"))
    first = results[0]
    result = Result(
        family=family.name, status=status, objective=objective, objective_name=first.objective_name,
        unit=first.unit, secondary=_secondary_totals(results, counts), best_bound=best, lower_bound=lower,
        bounds=[] if lower is None else [BoundEntry(name="sum of the layers' rigorous bounds", value=lower,
                                                    rigorous=True, meaning="each distinct layer's best rigorous "
                                                    "bound times how often it repeats")],
        gap=gap_of(objective, best, lower) if status in (Status.OPTIMAL, Status.FEASIBLE) else None,
        solution=None, metrics={"distinct_layers": len(parts), "layers": sum(counts),
                                "proved": sum(r.status == Status.OPTIMAL for r in results)},
        method=first.method, wall_time_s=round(sum(r.wall_time_s for r in results) if wall_time_s is None else wall_time_s, 4),
        message="" if status == Status.OPTIMAL else "; ".join(
            f"{p.name}: {r.status.value}" for p, r in zip(parts, results) if r.status != Status.OPTIMAL),
        certificate=Certificate(space=first.certificate.space, checks=checks, functional=functional),
        heuristics=heuristics,
        parts=[PartEntry(name=p.name, count=p.count, same_shape=list(p.same_shape), result=r)
               for p, r in zip(parts, results)],
        instance=family.dump(problem), mapcert_version=__version__)
    return result.attach(problem, None)


# --------------------------------------------------------------------------
# compare


@dataclass
class Row:
    """One method (or the user's own solution) scored on one instance."""

    method: str
    kind: str              # exact | check | heuristic | user
    status: Status
    objective: float | None
    wall_time_s: float
    gap: float | None = None
    note: str = ""
    functional: str = "-"
    metrics: dict = field(default_factory=dict)
    """The cost model's metrics of the row's solution (per-level accesses of a tiling mapping, ...)."""

    def to_dict(self) -> dict:
        return {"method": self.method, "kind": self.kind, "status": self.status.value, "objective": self.objective,
                "gap": self.gap, "wall_time_s": round(self.wall_time_s, 4), "note": self.note,
                "functional": self.functional, "metrics": self.metrics}


@dataclass
class Comparison:
    """Every method on one instance, scored against the certified optimum."""

    family: str
    unit: str
    objective_name: str
    rows: list[Row] = field(default_factory=list)
    optimum: float | None = None
    lower_bound: float | None = None
    message: str = ""

    @property
    def status(self) -> Status:
        if self.message:
            return Status.ERROR
        exact = [r for r in self.rows if r.kind == "exact"]
        if exact and all(r.status == Status.INFEASIBLE for r in exact):
            return Status.INFEASIBLE
        return Status.OPTIMAL if self.optimum is not None else Status.FEASIBLE

    def to_dict(self) -> dict:
        return {"family": self.family, "status": self.status.value, "objective_name": self.objective_name,
                "unit": self.unit, "optimum": self.optimum, "lower_bound": self.lower_bound,
                "gap_reference": "optimum" if self.optimum is not None else "lower_bound",
                "message": self.message, "rows": [r.to_dict() for r in self.rows]}


def _functional_word(family: Family, problem, solution, evaluation: Evaluation | None) -> str:
    if solution is None or evaluation is None or not evaluation.feasible:
        return "-"
    run = family.functional(problem, solution)
    if not run.ran:
        return f"not run ({run.reason})"
    return "passed" if run.passed else "FAILED"


def compare(problem, methods: list[str] | None = None, time_limit: float | None = None,
            user_solutions: dict | None = None, functional: bool = True) -> Comparison:
    """Run ``methods`` (default: every applicable one of the family) on
    ``problem`` and score each, with the user's own solutions (label ->
    solution) beside them, against the optimum the exact methods agree on.

    Raises
    ------
    MethodError
        A method that is unknown or does not apply.
    """
    family = registry.family_of(problem)
    if family.parts(problem) is not None:
        raise MethodError("`compare` takes one layer; for a whole network `solve` scores every heuristic per "
                          "layer and in total")
    exact = {m.name: m for m in family.methods(problem)}
    heuristics = {h.name: h for h in family.heuristics(problem)}
    available = method_names(family, problem)
    chosen = list(methods) if methods else available
    unknown = [m for m in chosen if m not in available]
    if unknown:
        raise MethodError(f"unknown or inapplicable method(s) {', '.join(unknown)}; "
                          f"this instance has {', '.join(available)}")
    limit = time_limit if time_limit is not None else family.time_limit(problem)
    comparison = Comparison(family.name, family.unit(problem), family.objective_name(problem))
    for name in chosen:
        start = time.perf_counter()
        if name in exact:
            attempt = exact[name].run(problem, limit)
            evaluation = family.evaluate(problem, attempt.solution) if attempt.solution is not None else None
            value = evaluation.objective if evaluation is not None and evaluation.feasible else attempt.objective
            note = "" if attempt.message.strip().lower() == attempt.status.value else attempt.message  # "OPTIMAL"
            if attempt.status == Status.FEASIBLE and attempt.best_bound is not None and value:
                note = f"gap {100 * gap_of(value, attempt.best_bound, None):.1f}% to its bound; " + note
            row = Row(name, "exact" if exact[name].solves else "check", attempt.status, value,
                      time.perf_counter() - start, note=note.strip("; "),
                      metrics=evaluation.metrics if evaluation is not None else {})
            solution = attempt.solution
        else:
            s = score_heuristics(family, problem, [heuristics[name]])[0]
            row = Row(name, "heuristic", Status.FEASIBLE if s.value is not None else Status.INFEASIBLE, s.value,
                      s.wall_time_s, note=s.note, metrics=s.evaluation.metrics if s.evaluation is not None else {})
            solution, evaluation = s.solution, s.evaluation
        if functional:
            row.functional = _functional_word(family, problem, solution, evaluation)
        comparison.rows.append(row)
    for label, solution in (user_solutions or {}).items():
        start = time.perf_counter()
        evaluation = family.evaluate(problem, solution)
        row = Row(label, "user", Status.FEASIBLE if evaluation.feasible else Status.INFEASIBLE, evaluation.objective,
                  time.perf_counter() - start, note="; ".join(evaluation.violations[:2]), metrics=evaluation.metrics)
        if functional:
            row.functional = _functional_word(family, problem, solution, evaluation)
        comparison.rows.append(row)
    for row in comparison.rows:
        if row.functional == "FAILED":  # the cost model and the functional model disagree on this solution
            row.note = "; ".join(filter(None, [row.note, "the functional model moved other counts than evaluate: "
                                                          "its value is not trusted (a defect; please report it)"]))
    proved_rows = [r for r in comparison.rows if r.kind in ("exact", "check") and r.status == Status.OPTIMAL]
    proved_sorted = sorted({r.objective for r in proved_rows})
    comparison.lower_bound = lower_bound(family.bounds(problem))
    if proved_sorted and any(not _same(proved_sorted[0], v) for v in proved_sorted):
        comparison.message = f"exact methods disagree: {proved_sorted}"
    elif any(r.functional == "FAILED" for r in proved_rows):
        comparison.message = ("no optimum is certified: the functional model disagrees with evaluate on "
                              + ", ".join(r.method for r in proved_rows if r.functional == "FAILED") + "'s optimum")
    elif proved_sorted and comparison.lower_bound is not None and not at_least(proved_sorted[0],
                                                                                comparison.lower_bound):
        comparison.message = (f"no optimum is certified: the proved {format_value(proved_sorted[0])} lies below "
                              f"the rigorous lower bound {format_value(comparison.lower_bound)}")
    elif proved_sorted:
        comparison.optimum = proved_sorted[0]
    reference = comparison.optimum if comparison.optimum is not None else comparison.lower_bound
    for row in comparison.rows:
        if row.objective is not None and row.status != Status.INFEASIBLE:
            row.gap = excess(row.objective, reference)
    return comparison


def _same(a: float, b: float) -> bool:
    from .validation.certificate import close

    return close(a, b)
