"""Re-derive a saved result from scratch (``mapcert verify``), for every family.

Nothing in the file is trusted but the instance and the solution.  The
solution is re-read against the instance, re-evaluated by the family's cost
model, re-certified (bounds, cross-checks, a functional run on fresh random
operands), and a claimed optimum (and each secondary objective stored as
proved) is re-proved by each applicable exact method.  Then every stored
field that can be re-derived -- status, objective, the secondary
objectives' values, metrics, bounds, lower and best bound, gap, the
certificate's checks and functional run, the heuristics' objectives and
gaps, a network's totals -- is compared with its re-derivation.  Each difference is a failed
check whose name starts with the field it concerns.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field, replace
from typing import Callable

from pydantic import ValidationError

from ..formulations import registry
from ..formulations.family import Attempt, Check, Family, Secondary, Status
from ..result import Result, excess, gap_of
from ..units import format_value
from ..version import __version__
from .certificate import (FUNCTIONAL_CHECK, NOT_REQUESTED, SAME_VALUE_TOLERANCE, at_least, certify, close,
                          closing_bound, lower_bound)


@dataclass
class Verification:
    """The checks of one verification; ``passed`` when every check passed."""

    checks: list[Check] = field(default_factory=list)
    problem: object = None
    family: Family | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def inconclusive(self) -> bool:
        """Not passed, but every failed check failed only for want of time:
        nothing contradicts the result, a longer time limit may verify it."""
        failed = [c for c in self.checks if not c.passed]
        return bool(failed) and all(c.undecided for c in failed)

    def to_dict(self) -> dict:
        return {"verified": self.passed, "inconclusive": self.inconclusive,
                "checks": [c.to_dict() for c in self.checks]}


def verify(data: dict, label: str = "<result>", time_limit: float = 60.0, methods: list[str] | None = None,
           seed: int | None = None, progress: Callable[[str], None] | None = None,
           jobs: int | None = 1) -> Verification:
    """Re-derive every field of a stored result.

    Parameters
    ----------
    data
        The result document (as ``mapcert solve -o`` saved it).
    label
        Names the file in messages.
    time_limit
        Seconds for each re-proof by an exact method.
    methods
        The exact methods that re-prove the optimum (default: every one that
        applies).
    seed
        Seed of the functional run (default: a fresh random one).
    progress
        Called with a short description before each expensive step (for a
        network verified side by side: as each layer finishes).
    jobs
        Layers of a network verified at once, each in its own process
        (``part_pool.py``); None: one per core. The default 1 keeps
        everything in the calling process.

    Returns
    -------
    Verification
        Every check; ``passed`` only when all passed.

    Examples
    --------
    >>> import mapcert
    >>> result = mapcert.solve(mapcert.load("examples/vgg16_conv3_2_64KiB.yaml"))
    >>> mapcert.verify(result.to_dict(), time_limit=30, methods=["cpsat"]).passed
    True
    >>> tampered = result.to_dict(); tampered["objective"] *= 0.9
    >>> [c.name for c in mapcert.verify(tampered, time_limit=30, methods=["cpsat"]).checks if not c.passed]
    ['objective: equals evaluate of the solution']
    """
    from ..instances import InstanceError, load_document, schema_problem

    out = Verification()
    try:
        result = Result.from_dict(data)
    except ValidationError as exc:
        for err in exc.errors()[:10]:
            loc, message = schema_problem(err)
            where = ".".join(str(p) for p in loc) or "(document)"
            out.checks.append(Check(f"{where}: matches the mapcert-result/2 schema", False,
                                    f"{message} (is the file a whole result of `mapcert solve -o`?)"))
        return out
    if result.instance is None:
        out.checks.append(Check("instance: present", False, "the result holds no instance to re-derive it from"))
        return out
    try:
        problem = load_document(result.instance, f"{label}#instance")
    except InstanceError as exc:
        out.checks.append(Check("instance: loads", False, "; ".join(str(i) for i in exc.issues[:3])))
        return out
    family = registry.family_of(problem)
    out.problem, out.family = problem, family
    if methods:
        from ..pipeline import MethodError

        sample = _sample(family, problem)
        known = {m.name: m for m in family.methods(sample)}
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise MethodError(f"unknown method(s) {', '.join(unknown)} for the {family.name} family; "
                              f"choose from {', '.join(sorted(known))}")
        refused = [(m, known[m].why_not(sample)) for m in methods if known[m].why_not(sample) is not None]
        if len(refused) == len(methods):  # nothing left to re-prove with: more time would not help
            raise MethodError("; ".join(f"{m} does not apply: {why}" for m, why in refused)
                              + f" (applicable: {', '.join(n for n, m in known.items() if m.why_not(sample) is None)})")
    seed = secrets.randbits(31) if seed is None else seed
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a whole number of at least 1 (or None: one per core), not {jobs!r}")
    context = _Context(time_limit, methods, seed, progress or _quiet, jobs)
    parts = family.parts(problem)
    if parts is None:
        out.checks.extend(_verify_single(family, problem, result, context, prefix=""))
    else:
        out.checks.extend(_verify_network(family, problem, parts, result, context))
    return out


def _sample(family: Family, problem):
    """The problem itself, or a network's first part (methods are per layer)."""
    parts = family.parts(problem)
    return parts[0].problem if parts else problem


def _quiet(_: str) -> None:
    """No progress report (module level, so that a context can be pickled)."""


@dataclass
class _Context:
    time_limit: float
    methods: list[str] | None
    seed: int
    progress: Callable[[str], None]
    jobs: int | None = 1


def _same_value(a, b) -> bool:
    """Deep equality of stored and re-derived JSON values, numbers within
    :data:`SAME_VALUE_TOLERANCE` (the same solution, the same code)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return close(a, b, SAME_VALUE_TOLERANCE)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return a == b


def _differences(stored, derived, path: str) -> list[str]:
    """Where ``stored`` differs from ``derived``: dotted paths (list items
    by index), each leaf with both values, so that an edit is found, not
    only its section."""
    if isinstance(stored, dict) and isinstance(derived, dict):
        out = [f"{path}.{k} (only in the {'stored' if k in stored else 're-derived'})"
               for k in sorted(set(stored) ^ set(derived), key=str)]
        for k in stored.keys() & derived.keys():
            out.extend(_differences(stored[k], derived[k], f"{path}.{k}"))
        return out
    if (isinstance(stored, list) and isinstance(derived, list) and len(stored) == len(derived)
            and any(isinstance(x, (dict, list)) for x in stored)):
        return [d for i, (a, b) in enumerate(zip(stored, derived)) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if _same_value(stored, derived) else [f"{path} (stored {_fmt(stored)}, re-derived {_fmt(derived)})"]


def _fmt(value) -> str:
    """A stored or re-derived value for a check's detail: numbers with
    separators, records as ``key=value`` pairs, lists item by item."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_value(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "null" if value is None else str(value)


def _field(name: str, stored, derived, what: str = "re-derived", derived_as: str = "re-derived") -> Check:
    """Stored against re-derived; ``derived_as`` says where the second value comes from."""
    same = _same_value(stored, derived)
    if (not same and isinstance(stored, list) and isinstance(derived, list) and len(stored) == len(derived)
            and all(isinstance(x, dict) for x in stored + derived)):
        # a list of records (the bounds): name the records and fields that differ
        parts = [f"[{i}].{k}: stored {_fmt(a.get(k))}, {derived_as} {_fmt(b.get(k))}"
                 for i, (a, b) in enumerate(zip(stored, derived))
                 for k in dict.fromkeys([*a, *b]) if not _same_value(a.get(k), b.get(k))]
        return Check(f"{name}: {what}", same, "; ".join(parts[:4]) + (f" (and {len(parts) - 4} more)" if len(parts) > 4 else ""))
    if not same and isinstance(stored, dict) and isinstance(derived, dict):
        # a record (metrics, a bound): name the fields that differ, not the whole of both
        keys = [k for k in dict.fromkeys([*stored, *derived]) if not _same_value(stored.get(k), derived.get(k))]
        detail = "; ".join(f"{k}: stored {_fmt(stored.get(k))}, {derived_as} {_fmt(derived.get(k))}" for k in keys[:4])
        return Check(f"{name}: {what}", same, detail + (f" (and {len(keys) - 4} more)" if len(keys) > 4 else ""))
    text = _fmt(stored)
    if not same and text == _fmt(derived):  # a difference the rounding for display would hide
        return Check(f"{name}: {what}", same, f"stored {stored!r}, {derived_as} {derived!r}")
    if same and len(text) > SHORT_DETAIL:  # one copy of a long value that agrees says all there is to say
        return Check(f"{name}: {what}", same, f"stored = {derived_as}: {text[:SHORT_DETAIL - 3]}...")
    return Check(f"{name}: {what}", same, f"stored {text}, {derived_as} {_fmt(derived)}")


def _older_version(check: Check, result: Result) -> Check:
    """A bound that differs from the one this version derives, in a result
    another version wrote, is no sign of tampering: bounds get tighter
    between versions. The check still fails (this version cannot vouch for
    the stored figure), and says how to bring the result up to date."""
    if check.passed or not result.mapcert_version or result.mapcert_version == __version__:
        return check
    return Check(check.name, False, f"{check.detail} (written by mapcert {result.mapcert_version}, which derived "
                 f"other bounds; this is mapcert {__version__}: solve the instance again to certify it with it)")


SHORT_DETAIL = 80
"""Characters of a long agreeing value a check's detail shows."""


def _verify_single(family: Family, problem, result: Result, ctx: _Context, prefix: str) -> list[Check]:
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(Check(prefix + check.name, check.passed, check.detail, check.undecided))

    add(_field("family", result.family, family.name))
    add(_field("objective_name", result.objective_name, family.objective_name(problem)))
    add(_field("unit", result.unit, family.unit(problem)))
    add(_field("certificate.space", result.certificate.space, family.space(problem)))
    bounds = family.bounds(problem)
    lower = lower_bound(bounds)
    for check in (_field("bounds", [b.model_dump() for b in result.bounds], [b.to_dict() for b in bounds],
                         "recomputed from the instance"),
                  _field("lower_bound", result.lower_bound, lower, "the best rigorous bound, recomputed")):
        add(_older_version(check, result))

    if result.solution is None:
        checks.extend(Check(prefix + c.name, c.passed, c.detail, c.undecided) for c in _verify_no_solution(family, problem, result, ctx))
        return checks
    try:
        solution = family.solution_from_dict(problem, result.solution)
    except (ValueError, TypeError, KeyError) as exc:
        add(Check("solution: lies in the declared space", False, str(exc)))
        return checks
    add(_canonical_check(family, problem, solution, result.solution))
    add(_method_check(family, problem, result))
    ctx.progress("re-certifying the solution")
    # the stored objective is compared field-wise below; the certificate re-derives everything else
    attempt = Attempt(result.status if result.status == Status.OPTIMAL else Status.FEASIBLE, solution,
                      None, None, method=result.method,  # best_bound has checks of its own below
                      secondary=[Secondary(e.objective, e.value, e.proved) for e in result.secondary])
    try:
        cert = certify(family, problem, attempt, bounds, functional=True, seed=ctx.seed, second_opinion=False)
    except ValueError as exc:  # a solution the cost model cannot score on this instance
        add(Check("solution: evaluates on the instance", False, str(exc)))
        return checks
    evaluation = cert.evaluation
    value = evaluation.objective if evaluation.feasible else None
    add(Check("solution: fits the instance", evaluation.feasible, "; ".join(evaluation.violations[:3]) or "fits"))
    add(_field("objective", result.objective, value, "equals evaluate of the solution"))
    stored = [(e.objective, e.unit, e.value) for e in result.secondary]
    derived = [(name, unit, evaluation.secondary.get(name)) for name, unit in family.secondary_objectives(problem)]
    add(Check("secondary: equals evaluate of the solution", _same_value(stored, derived),
              f"stored {_objectives_text(stored)}, re-derived {_objectives_text(derived)}"))
    diffs = _differences(result.metrics, evaluation.metrics, "metrics")
    add(Check("metrics: re-evaluated", not diffs, "differ: " + ", ".join(diffs[:5]) if diffs else "every field equal"))
    for c in cert.checks:
        add(Check(f"certificate: {c.name}", c.passed, c.detail))
    stored_failed = [c.name for c in result.certificate.checks if not c.passed]
    if stored_failed and result.status != Status.ERROR:
        add(Check("certificate.checks: all passed", False,
                  f"status {result.status.value} beside failed checks: {', '.join(stored_failed[:3])}"))
    stored_f, run = result.certificate.functional, cert.functional
    skipped = not stored_f.ran and stored_f.reason == NOT_REQUESTED
    stored_checks = {c.name: c.passed for c in result.certificate.checks}
    wrong = [c.name for c in cert.checks
             if stored_checks.get(c.name) != c.passed and not (skipped and c.name == FUNCTIONAL_CHECK)]
    add(Check("certificate.checks: every re-derived check stored, with its outcome", not wrong,
              "missing or different: " + ", ".join(wrong[:3]) if wrong else f"{len(cert.checks)} checks re-derived"))
    ran_as_stored = run.ran == stored_f.ran or skipped
    add(Check("certificate.functional: re-run on fresh random operands",
              ran_as_stored and (not run.ran or run.passed is True) and (not stored_f.ran or stored_f.passed == run.passed),
              f"stored ran={stored_f.ran} passed={stored_f.passed}; re-run ran={run.ran} passed={run.passed}"
              + (f" ({run.reason})" if run.reason else "") + f", seed {ctx.seed}"))

    proofs = _reprove(family, problem, ctx)
    optimum = _proved_optimum(proofs)
    closing = None if optimum is not None else closing_bound(
        value, bounds, [(f"{name}'s", proof.best_bound) for name, proof, _ in proofs])
    if closing is not None:
        optimum = value  # no method finished, but nothing can be below a lower bound
    for name, proof, proved_value in proofs:
        add(_proof_check(name, proof, proved_value, result, value))
    if result.status == Status.OPTIMAL:
        detail = (f"{closing} meets the objective" if closing is not None
                  else "re-proved optimum " + _fmt(optimum) + (
                      "; the stored solution has no value (it does not fit the instance)" if value is None else "")
                  if optimum is not None
                  else "no exact method re-proved the optimum within the time limit (raise --time-limit)")
        add(Check("status: optimum re-proved", optimum is not None and value is not None and close(optimum, value),
                  detail, undecided=optimum is None and value is not None))
    for entry in result.secondary:
        if entry.proved:
            add(_secondary_check(entry, result.status, proofs))
    derived_status = _derived_status(result.status, cert.status, optimum, value)
    status_check = _field("status", result.status.value, derived_status.value)
    if (not status_check.passed and result.status == Status.OPTIMAL and derived_status == Status.FEASIBLE
            and optimum is None and value is not None):  # feasible only because no re-proof finished
        status_check = replace(status_check, undecided=True,
                               detail=status_check.detail + " (no re-proof finished in the time limit)")
    if (status_check.passed and result.status == Status.FEASIBLE and optimum is not None and value is not None
            and close(optimum, value)):
        status_check = Check(status_check.name, True, "stored feasible; the re-derivation proves the solution "
                                                      "optimal (the stored claim is weaker, not false)")
    add(status_check)
    if optimum is not None and result.best_bound is not None:
        add(Check("best_bound: at or below the re-proved optimum", at_least(optimum, result.best_bound),
                  f"best bound {_fmt(result.best_bound)}, optimum {_fmt(optimum)}"))
    if result.status == Status.OPTIMAL:  # against the re-proved optimum, whatever the stored solution is worth
        add(_field("best_bound", result.best_bound, optimum if optimum is not None else value,
                   "equals the proved optimum"))
    elif result.best_bound is not None and lower is not None:
        add(Check("best_bound: at or above the rigorous bound", at_least(result.best_bound, lower),
                  f"{_fmt(result.best_bound)} >= {_fmt(lower)}"))
    known = [v for v in [value] + [v for _, _, v in proofs] if v is not None]
    for h in result.heuristics:
        known.extend(v for v in [_heuristic_value(family, problem, h)] if v is not None)
    if result.best_bound is not None and known:
        add(Check("best_bound: at or below every solution found", at_least(min(known), result.best_bound),
                  f"best bound {_fmt(result.best_bound)}, best solution re-derived {_fmt(min(known))}"))
    # a claimed optimum's gap is re-derived from the re-proved optimum (the best bound there is); a feasible
    # result's from its stored best bound, which the checks above hold at or below the optimum
    claimed = result.status if result.status in (Status.OPTIMAL, Status.FEASIBLE) else derived_status
    gap_bound = optimum if claimed == Status.OPTIMAL and optimum is not None else result.best_bound
    add(_field("gap", result.gap, gap_of(value, gap_bound, lower)
               if claimed in (Status.OPTIMAL, Status.FEASIBLE) else None))
    reference = (optimum if optimum is not None else value) if result.status == Status.OPTIMAL else result.best_bound
    heuristics = {h.name: h for h in family.heuristics(problem)} if result.heuristics else {}
    if result.heuristics:
        # solve scores these in this order, all of them; only a method stopped short with heuristics off scores
        # the first ones the rest of its time limit allows (the answer is then not a finished proof of its own)
        expected = [h.name for h in heuristics.values() if h.in_solve]
        stored = [h.method for h in result.heuristics]
        cut = result.status != Status.OPTIMAL or "second opinion" in (result.message or "")
        add(Check("heuristics: the rows solve writes, in order",
                  stored == expected[:len(stored)] if cut else stored == expected,
                  f"stored {', '.join(stored)}; solve scores {', '.join(expected)}"))
    for i, h in enumerate(result.heuristics):
        ctx.progress(f"running heuristic {h.method} again")
        checks.extend(Check(prefix + c.name, c.passed, c.detail, c.undecided)
                      for c in _verify_heuristic(family, problem, i, h, reference, heuristics))
    return checks


def _canonical_check(family: Family, problem, solution, stored) -> Check:
    """The stored solution is written as mapcert writes it. A solution's
    written form carries meaning its value does not check (a partition's
    subgraphs and layers in the order they run, a loop nest's order), so a
    stored form that reads back to the same solution but is written
    otherwise has been edited."""
    written = json.loads(json.dumps(family.solution_to_dict(problem, solution)))
    stored = json.loads(json.dumps(stored))
    if written == stored:
        return Check("solution: stored as mapcert writes it", True, "reads back to the same form")
    where, ours, theirs = _first_difference(written, stored, "solution")
    return Check("solution: stored as mapcert writes it", False,
                 f"at {where}: stored {_short(theirs)}; mapcert writes this solution "
                 + ("without it" if ours == "(absent)" else f"with {_short(ours)}") + " (an edited order or factor?)")


def _first_difference(ours, theirs, path: str) -> tuple[str, object, object]:
    """The first place where two JSON values differ, and the two values there."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in list(ours) + [k for k in theirs if k not in ours]:
            if key not in ours or key not in theirs:
                return f"{path}.{key}", ours.get(key, "(absent)"), theirs.get(key, "(absent)")
            if ours[key] != theirs[key]:
                return _first_difference(ours[key], theirs[key], f"{path}.{key}")
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return path, ours, theirs


def _short(value, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "..."


def _method_check(family: Family, problem, result: Result) -> Check:
    """The stored method names one of the family's exact methods (an
    optimum) or starts with one (a solution a time-out left, perhaps then
    bettered by a heuristic): what a reader takes as the solution's
    provenance must be a method this instance can be solved by."""
    methods = [m for m in family.methods(problem) if m.solves]
    exact = [m.name for m in methods if m.why_not(problem) is None]
    first, _, rest = result.method.partition(" ")
    heuristics = {h.name for h in family.heuristics(problem)}
    # a time-out's solution bettered by a heuristic: "cpsat (then heuristic NAME)", optimal when a bound meets it
    prefix = "(then heuristic "
    fallback = rest.startswith(prefix) and rest.endswith(")") and rest[len(prefix):-1] in heuristics
    named = first in exact and (fallback or (not rest if result.status == Status.OPTIMAL else True))
    detail = f"stored {result.method!r}; the exact methods for this instance: {', '.join(exact)}"
    refused = next((m for m in methods if m.name == first and m.why_not(problem) is not None), None)
    if refused is not None:
        detail += f" ({first} does not apply: {refused.why_not(problem)})"
    return Check("method: an exact method of the family", named, detail)


def _verify_no_solution(family: Family, problem, result: Result, ctx: _Context) -> list[Check]:
    """A result without a solution claims infeasibility (or reports an error)."""
    if result.status == Status.ERROR:
        return [Check("status: error without a solution", True, result.message)]
    if result.status != Status.INFEASIBLE:
        return [Check("status: a solution backs the claim", False, f"status {result.status.value} without a solution")]
    checks = []
    proofs = _reprove(family, problem, ctx)
    confirmed = False
    for name, proof, _ in proofs:
        found = proof.solution is not None and family.evaluate(problem, proof.solution).feasible
        confirmed |= proof.status == Status.INFEASIBLE
        open_ = "" if proof.status in (Status.INFEASIBLE, Status.OPTIMAL) or found else "; inconclusive"
        checks.append(Check(f"status: {name} finds no solution", not found,
                            f"{name}: {proof.status.value}" + (f" ({proof.message})" if proof.message else "") + open_))
    if not proofs:
        refused = [f"{m.name}: {m.why_not(problem)}" for m in family.methods(problem)
                   if (not ctx.methods or m.name in ctx.methods) and m.why_not(problem) is not None]
        checks.append(Check("status: infeasibility re-proved", False,
                            "no exact method ran" + (f" ({'; '.join(refused)})" if refused else "")))
        return checks
    found_any = any(not c.passed for c in checks)
    checks.append(Check("status: infeasibility re-proved", confirmed,
                        "at least one exact method proved it" if confirmed else "no method proved it in time",
                        undecided=not confirmed and not found_any))
    return checks


def _reprove(family: Family, problem, ctx: _Context) -> list[tuple[str, Attempt, float | None]]:
    """Run each applicable exact method: (name, attempt, its evaluated value)."""
    out = []
    for method in family.methods(problem):
        if method.why_not(problem) is not None or (ctx.methods and method.name not in ctx.methods):
            continue
        ctx.progress(f"re-proving with {method.name}")
        proof = method.run(problem, ctx.time_limit)
        value = None
        if proof.solution is not None:
            evaluation = family.evaluate(problem, proof.solution)
            value = evaluation.objective if evaluation.feasible else None
        elif proof.status == Status.OPTIMAL:
            value = proof.objective  # a reference that returns only a value (a cross-check)
        out.append((method.name, proof, value))
    return out


def _proved_optimum(proofs) -> float | None:
    values = [v for _, proof, v in proofs if proof.status == Status.OPTIMAL and v is not None]
    return min(values) if values else None


def _proof_check(name: str, proof: Attempt, proved_value, result: Result, value) -> Check:
    """What one re-proof says about the stored claim."""
    label = f"status: consistent with {name}"
    if proof.status == Status.INFEASIBLE:
        return Check(label, False, f"{name} proves the instance infeasible")
    if value is None:
        return Check(label, False, "the stored solution does not evaluate")
    if proof.status == Status.OPTIMAL and proved_value is not None:
        if result.status == Status.OPTIMAL:
            return Check(label, close(proved_value, value), f"{name} proves {_fmt(proved_value)}")
        ok = at_least(value, proved_value)
        ok = ok and (result.best_bound is None or at_least(proved_value, result.best_bound))
        return Check(label, ok, f"{name} proves {_fmt(proved_value)}; stored {_fmt(value)}, "
                                f"bound {_fmt(result.best_bound)}")
    # not proved in time: its incumbent must not beat a claimed optimum, its bound must lie below
    beaten = proved_value is not None and result.status == Status.OPTIMAL and not at_least(proved_value, value)
    above = proof.best_bound is not None and not at_least(value, proof.best_bound)
    found = "".join([f"; incumbent {_fmt(proved_value)}" if proved_value is not None
                     and result.status == Status.OPTIMAL else "",
                     f"; bound {_fmt(proof.best_bound)}" if proof.best_bound is not None else ""])
    if beaten or above:
        why = (f"its incumbent {_fmt(proved_value)} is below the claimed optimum {_fmt(value)}" if beaten
               else f"its bound {_fmt(proof.best_bound)} lies above the stored {_fmt(value)}")
        return Check(label, False, f"{name}: {proof.status.value}, no proof, but {why}")
    return Check(label, True, f"{name}: {proof.status.value}, no proof; inconclusive (nothing it found contradicts "
                              f"the claim){found}")


def _objectives_text(values: list[tuple]) -> str:
    return ", ".join(f"{name} {_fmt(value)} {unit}" for name, unit, value in values) or "none"


def _secondary_check(entry, status: Status, proofs) -> Check:
    """A secondary objective stored as proved: an exact method re-proves its
    value (each method minimizes the secondary objectives after its optimum)."""
    label = f"secondary[{entry.objective}]: re-proved"
    if status != Status.OPTIMAL:
        return Check(label, False, f"proved beside status {status.value}: a secondary objective is minimized only "
                                   "among proved optima")
    proved = [(name, c.value) for name, proof, _ in proofs for c in proof.secondary
              if c.objective == entry.objective and c.proved]
    if not proved:
        return Check(label, False, "no exact method re-proved it within the time limit (raise --time-limit)",
                     undecided=True)
    wrong = [f"{name} proves {_fmt(v)}" for name, v in proved if not close(v, entry.value)]
    return Check(label, not wrong, "; ".join(wrong) + f"; stored {_fmt(entry.value)}" if wrong
                 else ", ".join(f"{name} proves {_fmt(v)}" for name, v in proved))


def _derived_status(stored: Status, certified: Status, optimum, value) -> Status:
    """The status the re-derivation supports: optimal when the solution's
    value is the re-proved optimum, else feasible. A stored ``feasible`` is
    left as it is (weaker than what a re-proof may show, not false)."""
    if certified == Status.ERROR:
        return Status.ERROR
    if stored != Status.FEASIBLE and optimum is not None and value is not None and close(optimum, value):
        return Status.OPTIMAL
    return Status.FEASIBLE


def _heuristic_value(family: Family, problem, h) -> float | None:
    """A stored heuristic solution's value by ``evaluate`` (None: none, or it does not run)."""
    if h.solution is None:
        return None
    try:
        evaluation = family.evaluate(problem, family.solution_from_dict(problem, h.solution))
    except (ValueError, TypeError, KeyError):
        return None
    return evaluation.objective if evaluation.feasible else None


def _verify_heuristic(family: Family, problem, index: int, h, reference, heuristics: dict) -> list[Check]:
    """A stored heuristic's row: its method is one of the family's, which,
    run again, finds a solution of the stored value (its solution may differ
    where several have that value), and the stored solution evaluates to
    the stored objective, status and gap."""
    name = f"heuristics[{index}] ({h.method})"
    method = heuristics.get(h.method)
    if method is None:
        return [Check(f"{name}.method: a heuristic of this family", False,
                      f"{h.method!r} is not one of {', '.join(heuristics)}")]
    again = _run_again(family, problem, method)
    if h.solution is None:
        return [Check(f"{name}: no solution", h.objective is None and h.status == Status.INFEASIBLE,
                      f"stored {h.status.value}, objective {_fmt(h.objective)}"),
                _field(f"{name}.objective", h.objective, again, "equals what the heuristic finds when run again", "found again")]
    try:
        evaluation = family.evaluate(problem, family.solution_from_dict(problem, h.solution))
    except (ValueError, TypeError, KeyError) as exc:
        return [Check(f"{name}: solution lies in the declared space", False, str(exc))]
    value = evaluation.objective if evaluation.feasible else None
    status = Status.FEASIBLE if value is not None else Status.INFEASIBLE
    checks = [_field(f"{name}.objective", h.objective, value, "equals evaluate of its solution")]
    found = _field(f"{name}.objective", h.objective, again, "equals what the heuristic finds when run again",
                   "found again")
    # a heuristic that is itself a time-limited solve may find nothing this time: that decides nothing
    checks.append(replace(found, undecided=again is None))
    checks.append(_field(f"{name}.status", h.status.value, status.value))
    checks.append(_field(f"{name}.gap", h.gap, excess(value, reference)))
    return checks


def _run_again(family: Family, problem, heuristic) -> float | None:
    """The value of the solution ``heuristic`` finds now (None: none that
    fits). Every heuristic is seeded, so a stored row is reproducible."""
    solution = heuristic.run()
    if solution is None:
        return None
    evaluation = family.evaluate(problem, solution)
    return evaluation.objective if evaluation.feasible else None


def _verify_parts(family: Family, parts, results: list[Result], ctx: _Context) -> list[list[Check]]:
    """Each layer's checks, in the layers' order; ``ctx.jobs`` layers at once
    (each re-proof is a solve, so a network's verification takes about as
    long as its solve with every method)."""
    from ..part_pool import part_jobs, part_pool, picklable, results_in_order

    jobs = part_jobs(len(parts), ctx.jobs)
    if jobs == 1 or not picklable([(part.problem, result) for part, result in zip(parts, results)]):
        out = []
        for i, (part, result) in enumerate(zip(parts, results)):
            layer = _Context(ctx.time_limit, ctx.methods, ctx.seed,
                             lambda what, i=i, name=part.name: ctx.progress(f"{name} ({i + 1}/{len(parts)}): {what}"), 1)
            out.append(_verify_single(family, part.problem, result, layer, prefix=f"parts[{part.name}]."))
        return out
    quiet = _Context(ctx.time_limit, ctx.methods, ctx.seed, _quiet, 1)
    done: list[str] = []

    def finished(name: str) -> None:
        done.append(name)
        ctx.progress(f"verified {len(done)}/{len(parts)} layers (last: {name}), {jobs} at once")

    with part_pool(jobs) as pool:
        futures = [pool.submit(_verify_part, part.problem, result, quiet, f"parts[{part.name}].")
                   for part, result in zip(parts, results)]
        return results_in_order(futures, [part.name for part in parts], finished)


def _verify_part(problem, result: Result, ctx: _Context, prefix: str) -> list[Check]:
    """One layer's checks in a pool's process (the family is found again there)."""
    return _verify_single(registry.family_of(problem), problem, result, ctx, prefix)


def _verify_network(family: Family, problem, parts, result: Result, ctx: _Context) -> list[Check]:
    from ..pipeline import network_result

    checks: list[Check] = [_field("family", result.family, family.name)]
    stored = result.parts or []
    expected = [(p.name, p.count) for p in parts]
    got = [(p.name, p.count) for p in stored]
    first = next(((e, g) for e, g in zip(expected, got) if e != g), None)
    detail = (f"the instance expands to {len(expected)} distinct layers, the result holds {len(got)}"
              if len(expected) != len(got) or first is None
              else f"the instance has {first[0][0]} x{first[0][1]} where the result has {first[1][0]} x{first[1][1]}")
    checks.append(Check("parts: the network's distinct layers and their counts", expected == got, detail))
    if expected != got:
        return checks
    shapes = [(p.name, list(p.same_shape), list(e.same_shape)) for p, e in zip(parts, stored)]
    other = next(((name, want, have) for name, want, have in shapes if want != have), None)
    checks.append(Check("parts: the layers each distinct layer stands for (same_shape)", other is None,
                        "as the instance expands" if other is None else
                        f"{other[0]}: the instance gives {other[1] or 'none'}, the result {other[2] or 'none'}"))
    failed_parts = []
    for part, part_checks in zip(parts, _verify_parts(family, parts, [e.result for e in stored], ctx)):
        checks.extend(part_checks)
        if not all(c.passed for c in part_checks):
            failed_parts.append(part.name)
    derived = network_result(family, problem, parts, [e.result for e in stored]).to_dict()
    data = result.to_dict()
    first_network_check = len(checks)
    for name in ("objective", "secondary", "lower_bound", "best_bound", "gap", "status", "metrics"):
        checks.append(_field(name, data[name], derived[name], "re-derived from the layers",
                             "the stored layers give"))
    for name, key in (("heuristics", ("method", "status", "objective", "gap")),
                      ("certificate.checks", ("name", "passed"))):
        stored_rows = [{k: row[k] for k in key} for row in _get(data, name)]
        derived_rows = [{k: row[k] for k in key} for row in _get(derived, name)]
        same = _same_value(stored_rows, derived_rows)
        detail = f"{len(stored_rows)} stored, {len(derived_rows)} re-derived"
        if not same:  # name the first row that differs, when the counts agree
            detail = next((f"first difference: stored {_fmt(a)}, re-derived {_fmt(b)}"
                           for a, b in zip(stored_rows, derived_rows) if not _same_value(a, b)), detail)
        checks.append(Check(f"{name}: re-derived from the layers", same, detail))
    stored_f, derived_f = data["certificate"]["functional"], derived["certificate"]["functional"]
    checks.append(Check("certificate.functional: re-derived from the layers",
                        (stored_f["ran"], stored_f["passed"]) == (derived_f["ran"], derived_f["passed"]),
                        f"stored ran={stored_f['ran']} passed={stored_f['passed']}; layers say ran={derived_f['ran']} "
                        f"passed={derived_f['passed']}"))
    if failed_parts:
        # the totals are re-added from the stored layer results: with a layer that failed its own
        # checks, a difference here may be that layer's fault, not the total's
        blame = (f"; {', '.join(failed_parts[:3])}{' and others' if len(failed_parts) > 3 else ''} failed "
                 f"{'its' if len(failed_parts) == 1 else 'their'} own checks above, so the stored total may be "
                 "the right one: look there first")
        checks[first_network_check:] = [c if c.passed else Check(c.name, c.passed, c.detail + blame)
                                        for c in checks[first_network_check:]]
    return checks


def _get(data: dict, dotted: str):
    for key in dotted.split("."):
        data = data[key]
    return data
