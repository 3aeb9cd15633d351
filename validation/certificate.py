"""Certificates: why a solution is optimal, and the checks that back the claim.

A method's word is not enough.  :func:`certify` recomputes the objective
with the family's ``evaluate``, compares it with what the method reported,
places it against every rigorous bound and the method's own bound, runs the
family's independent cross-checks and executes the solution in the
functional model.  The status is ``optimal`` only when the method proved it
*and* every check passes; a failed check turns any claim into ``error`` (it
means a bug, and the check's name says which part disagreed).

The same function serves ``solve`` and ``verify``: verification is
certification again, from the stored instance and solution only.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

from ..units import format_value as fmt
from ..formulations.family import Attempt, Bound, Check, Evaluation, Family, FunctionalRun, Status

NOT_REQUESTED = "not requested: --no-functional"
"""The functional run's reason when ``solve --no-functional`` skipped it:
the one way a result may leave the run out (``verify`` accepts no other)."""
NOT_FEASIBLE = "not run: the solution does not fit the instance"
"""The functional run's reason when the solution breaks the instance (a
capacity, a constraint): there is no valid execution to run."""
FUNCTIONAL_CHECK = "functional run: outputs and counts match"

RELATIVE_TOLERANCE = 1e-9
"""Two objective values closer than this (relative, at least absolute 1e-9)
are equal: two methods' optimal solutions may differ, and so may the
rounding of their evaluated sums (about 1e-16 per term), but not by one
unit of any objective below 1e9 (at 1e-6 a result edited by -250 on
3e8 units passed)."""

SAME_VALUE_TOLERANCE = 1e-12
"""Tolerance between a stored value and the same value re-derived from the
same solution by the same code (``verify``): only the last bits of a float
written out and read back, or summed by another build of numpy, may
differ."""


def close(a: float | None, b: float | None, tolerance: float = RELATIVE_TOLERANCE) -> bool:
    """Equal within ``tolerance``, relative (None equals only None; an
    infinity only the same infinity, which a relative tolerance would not
    tell from any finite number)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def at_least(a: float, b: float) -> bool:
    """``a >= b`` up to the tolerance."""
    return float(a) >= float(b) - RELATIVE_TOLERANCE * max(1.0, abs(float(b)))


def answers_contradict(a, b) -> bool:
    """Two answers of exact methods (anything with ``status``, ``objective``
    and ``best_bound``) that cannot both be right: a proved optimum above the
    other's solution, or below the other's bound.  Time-outs that merely
    disagree (a weaker solution, a lower bound) do not contradict."""
    for p, q in ((a, b), (b, a)):
        if p.status != "optimal":
            continue
        if q.objective is not None and q.objective < p.objective - 1e-6:
            return True
        if q.best_bound is not None and q.best_bound > p.objective + 1e-6:
            return True
    return False


def lower_bound(bounds: list[Bound]) -> float | None:
    """The best rigorous bound (None when the family has none)."""
    rigorous = [b.value for b in bounds if b.rigorous]
    return max(rigorous) if rigorous else None


@dataclass
class Certification:
    """The outcome of :func:`certify`."""

    status: Status
    checks: list[Check] = field(default_factory=list)
    functional: FunctionalRun = field(default_factory=lambda: FunctionalRun(False, reason="no solution"))
    evaluation: Evaluation | None = None
    message: str = ""
    better: Attempt | None = None
    """Another exact method's proved optimum below an unproved solution's
    value: the answer the pipeline then certifies instead."""


NO_CONCLUSION = "no conclusion"
"""What the detail of another method's check says when that method proved
nothing in its time limit (the check passes: nothing contradicts)."""


def other_method_check(name: str, other: Attempt, value: float, claimed: Status) -> Check:
    """What another exact method's answer says about a solution of value ``value``.

    A claimed optimum must be the other method's proved optimum; a
    ``feasible`` solution must not lie below it.  A method that proves
    nothing within its time limit gives no conclusion (the check passes and
    says so); one that finds the instance infeasible contradicts any
    solution.
    """
    label = f"{name} agrees"
    if other.status == Status.OPTIMAL and other.objective is not None:
        agree = close(other.objective, value) if claimed == Status.OPTIMAL else at_least(value, other.objective)
        detail = f"{name} proves {fmt(other.objective)}" + ("" if agree else f"; this solution: {fmt(value)}")
        return Check(label, agree, detail)
    if other.status == Status.INFEASIBLE:
        return Check(label, False, f"{name} finds the instance infeasible ({other.message})")
    return Check(label, True, f"{name}: {other.status.value} within the time limit, {NO_CONCLUSION}"
                              + (f" ({other.message})" if other.message else ""))


def second_opinions(family: Family, problem, attempt: Attempt,
                    value: float) -> tuple[list[Check], str | None, Attempt | None]:
    """Every other applicable exact method (and reference) on ``problem``:
    the checks; the first method that proved the optimum at ``value``
    (which proves an unproved solution optimal), if any; and the first
    proved optimum below ``value`` with its solution (a better answer than
    an unproved one), if any."""
    checks, proof, better = [], None, None
    own = attempt.method.partition(" (then heuristic ")[0]  # a time-out's method stays its own, heuristic or not
    for method in family.methods(problem):
        if method.name == own or method.why_not(problem) is not None:
            continue
        other = method.run(problem, family.time_limit(problem))
        if other.solution is not None:
            evaluation = family.evaluate(problem, other.solution)
            other.objective = evaluation.objective if evaluation.feasible else None
        checks.append(other_method_check(method.name, other, value, attempt.status))
        if other.status == Status.OPTIMAL and other.objective is not None:
            if proof is None and close(other.objective, value):
                proof = f"{method.name} proves the optimum {fmt(other.objective)}"
            elif better is None and other.solution is not None and other.objective < value \
                    and not close(other.objective, value):
                other.method = other.method or method.name
                better = other
    return checks, proof, better


def certify(family: Family, problem, attempt: Attempt, bounds: list[Bound], functional: bool = True,
            seed: int = 0, second_opinion: bool = True) -> Certification:
    """Check ``attempt`` of ``family`` on ``problem`` independently of the method.

    Parameters
    ----------
    family, problem
        The registered family and one of its problems.
    attempt
        The method's claims: status, solution, objective and bound.
    bounds
        The family's analytical bounds for ``problem``.
    functional
        Execute the solution in the functional model (``--no-functional`` skips it).
    seed
        Seed of the functional model's random operands.
    second_opinion
        Re-prove with the family's other exact methods when the family asks
        for it (``Family.second_opinion``); ``verify`` re-proves anyway.

    Returns
    -------
    Certification
        The final status, the checks, the functional run and the evaluation.
    """
    if attempt.solution is None:
        status = attempt.status if attempt.status in (Status.INFEASIBLE, Status.ERROR) else Status.ERROR
        return Certification(status, message=attempt.message or "no solution")
    checks: list[Check] = []
    other_proof = None
    evaluation = family.evaluate(problem, attempt.solution)
    checks.append(Check("solution is feasible", evaluation.feasible,
                        "; ".join(evaluation.violations[:3]) or "fits every capacity and constraint"))
    value = evaluation.objective
    if evaluation.feasible and value is not None:
        if attempt.objective is not None:
            proved = attempt.status == Status.OPTIMAL
            agree = close(attempt.objective, value) or (not proved and value < attempt.objective)
            checks.append(Check("evaluate agrees with the method", agree,
                                f"method {fmt(attempt.objective)}, evaluate {fmt(value)}"))
        for claim in attempt.secondary:
            derived = evaluation.secondary.get(claim.objective)
            checks.append(Check(f"evaluate agrees on the secondary objective '{claim.objective}'",
                                claim.value is not None and close(claim.value, derived),
                                f"method {fmt(claim.value)} ({'proved least' if claim.proved else 'not proved'}), "
                                f"evaluate {fmt(derived)}"))
        for bound in bounds:
            if bound.rigorous:
                checks.append(Check(f"at or above the rigorous bound '{bound.name}'", at_least(value, bound.value),
                                    f"{fmt(value)} >= {fmt(bound.value)}"))
        if attempt.best_bound is not None:
            checks.append(Check("method's bound at or below the objective", at_least(value, attempt.best_bound),
                                f"bound {fmt(attempt.best_bound)}"))
        checks.extend(family.cross_checks(problem, attempt.solution, evaluation))
        if second_opinion and family.second_opinion:
            opinions, other_proof, better = second_opinions(family, problem, attempt, value)
            checks.extend(opinions)
            if better is not None and all(c.passed for c in checks):
                # another method proved a lower optimum: that is the answer, certified (and run) in its turn,
                # so this solution goes no further
                return Certification(Status.FEASIBLE, checks, evaluation=evaluation, message=attempt.message,
                                     better=better)
    run = FunctionalRun(False, reason=NOT_REQUESTED if not functional else NOT_FEASIBLE)
    if functional and evaluation.feasible:
        run = family.functional(problem, attempt.solution, seed=seed)
        if run.ran:
            checks.append(Check(FUNCTIONAL_CHECK, bool(run.passed),
                                run.reason or f"executed in {run.wall_time_s:.2f} s"))
    failed = [c.name for c in checks if not c.passed]
    if failed:
        return Certification(Status.ERROR, checks, run, evaluation, "check failed: " + "; ".join(failed))
    if attempt.status == Status.OPTIMAL:
        return Certification(Status.OPTIMAL, checks, run, evaluation, attempt.message)
    why = f"{attempt.message}; " if attempt.message else ""
    if other_proof is not None:  # the method stopped short, another exact method proved this value optimal
        return Certification(Status.OPTIMAL, checks, run, evaluation, f"{why}optimal: {other_proof}")
    closing = closing_bound(value, bounds, [("the method's", attempt.best_bound)])
    if closing is not None:
        # a lower bound at the objective is a proof, whether or not the method finished
        checks.append(Check("a lower bound meets the objective", True, f"{closing} = {fmt(value)}"))
        return Certification(Status.OPTIMAL, checks, run, evaluation, f"{why}optimal: {closing} equals the objective")
    return Certification(Status.FEASIBLE, checks, run, evaluation, attempt.message)


def closing_bound(value: float | None, bounds: list[Bound],
                  method_bounds: list[tuple[str, float | None]]) -> str | None:
    """The name of a lower bound at or above ``value``, which proves a
    solution optimal though no method finished: a method's own bound
    (``(whose, bound)`` pairs) or a rigorous analytical one. No tolerance:
    equal as floats, else unproved. None when no bound reaches it."""
    if value is None:
        return None
    for whose, bound in method_bounds:
        if bound is not None and float(bound) >= float(value):
            return f"{whose} bound {fmt(bound)}"
    for bound in bounds:
        if bound.rigorous and float(bound.value) >= float(value):
            return f"the rigorous bound '{bound.name}' ({fmt(bound.value)})"
    return None
