"""The family contract: what every mapping problem of mapcert provides.

A *family* is one kind of mapping problem (loop tiling, crossbar
allocation, filter pairing, graph partition, ...).  Everything above the
families -- the command line, the Python API, ``compare``, ``verify``,
sweeps, readers of peers' files -- talks to a family only through this
interface, found in the registry (``formulations/registry.py``), and never
branches on a family's type.  Adding a family is one folder that subclasses
:class:`Family` and one call to ``register``; docs/adding-a-family.md walks
through it and tests/test_family_contract.py checks every registered family
the same way.

The interface is split by responsibility:

- *instances*: :meth:`Family.build` (schema, validation, errors as
  ``file:line: field: what``) and :meth:`Family.dump` (a self-contained
  instance that ``build`` reads back to an equal problem);
- *the one cost model*: :meth:`Family.evaluate` is the single source of
  truth for an objective value; solvers' values are only claims;
- *methods*: :meth:`Family.methods` (exact, each saying when it applies),
  :meth:`Family.heuristics`;
- *certificate*: :meth:`Family.bounds` (each flagged rigorous or not),
  :meth:`Family.functional` (the solution executed on random integers),
  :meth:`Family.cross_checks` (family-specific independent checks);
- *presentation*: :meth:`Family.describe`, :meth:`Family.render`,
  :meth:`Family.plot`;
- *tests*: :meth:`Family.examples` and :meth:`Family.brute_force`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable


class Status(str, Enum):
    """What a result claims.

    ``optimal``: proved by a solver and confirmed by ``evaluate``;
    ``feasible``: a solution whose gap to a bound is reported;
    ``infeasible``: no solution exists (with a reason a person can act on);
    ``error``: a check failed or no method gave a usable answer.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Bound:
    """A lower bound on the objective.

    ``rigorous`` bounds hold for every schedule of the declared machine, not
    only for the mappings of the declared space; an objective below one is a
    bug.  Non-rigorous bounds (asymptotic forms from papers) are reported as
    references.
    """

    name: str
    value: float
    rigorous: bool
    meaning: str

    def to_dict(self) -> dict:
        return {"name": self.name, "value": float(self.value), "rigorous": self.rigorous, "meaning": self.meaning}


@dataclass
class Evaluation:
    """The cost model's verdict on one solution.

    ``objective`` is None when the solution cannot run (``feasible`` False,
    ``violations`` say why).  ``metrics`` is JSON-ready and is what a result
    stores and ``verify`` compares field by field.
    """

    objective: float | None
    feasible: bool
    metrics: dict = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    secondary: dict[str, float] = field(default_factory=dict)
    """The value of each secondary objective (:meth:`Family.secondary_objectives`), when feasible."""


@dataclass(frozen=True)
class Secondary:
    """A method's claim on one secondary objective of a lexicographic
    solve: ``value`` is the least among the optima of the objectives before
    it when ``proved``."""

    objective: str
    value: float | None
    proved: bool


@dataclass
class Attempt:
    """What one exact method (or a heuristic fallback) reports, before anyone
    trusts it: ``objective`` and ``best_bound`` are the method's own claims."""

    status: Status
    solution: Any = None
    objective: float | None = None
    best_bound: float | None = None
    wall_time_s: float = 0.0
    message: str = ""
    method: str = ""
    details: dict = field(default_factory=dict)
    secondary: list[Secondary] = field(default_factory=list)


def always(problem) -> str | None:
    """``ExactMethod.why_not`` for a method that applies to every instance."""
    return None


@dataclass(frozen=True)
class ExactMethod:
    """One exact method of a family.

    ``run(problem, time_limit)`` returns an :class:`Attempt`;
    ``why_not(problem)`` says why the method does not apply to ``problem``
    (None when it does).  ``solves`` is False for independent references that
    only check an optimum (for example Edmonds' blossom) and are not offered
    as a way to solve.
    """

    name: str
    run: Callable[[Any, float | None], Attempt]
    why_not: Callable[[Any], str | None] = always
    solves: bool = True
    summary: str = ""


@dataclass(frozen=True)
class Heuristic:
    """One heuristic method: ``run()`` returns a solution or None (found
    nothing that fits).  ``in_solve`` heuristics are scored by every
    ``solve``; the others (long searches) only by ``compare``."""

    name: str
    run: Callable[[], Any]
    in_solve: bool = True
    summary: str = ""


@dataclass
class FunctionalRun:
    """The solution executed on random integers by the family's functional model.

    ``passed`` says whether the outputs equal a reference computation and the
    counted data movement equals ``evaluate``; ``counts`` holds the counted
    quantities.  When the model cannot run (``ran`` False), ``reason`` says
    why in words a user would accept.
    """

    ran: bool
    passed: bool | None = None
    reason: str = ""
    counts: dict = field(default_factory=dict)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict:
        return {"ran": self.ran, "passed": self.passed, "reason": self.reason, "counts": self.counts,
                "wall_time_s": round(self.wall_time_s, 4)}


@dataclass
class Check:
    """One check of a certificate: a name a person reads, pass/fail, and detail."""

    name: str
    passed: bool
    detail: str = ""
    undecided: bool = False
    """Failed only for want of time (a re-proof that did not finish), not
    because anything contradicts the claim: ``verify`` then says
    inconclusive rather than not verified."""

    def to_dict(self) -> dict:
        out = {"name": self.name, "passed": bool(self.passed), "detail": self.detail}
        if self.undecided and not self.passed:
            out["undecided"] = True
        return out


@dataclass(frozen=True)
class Part:
    """One distinct sub-problem of a composite instance (a network's layer):
    solved once, counted ``count`` times in the totals."""

    name: str
    problem: Any
    count: int = 1
    same_shape: tuple[str, ...] = ()


class PlotUnsupported(Exception):
    """Raised by :meth:`Family.plot` for an instance the family cannot draw."""


class Family(ABC):
    """The interface every problem family implements (see the module docstring).

    Subclasses set :attr:`name` (the ``family:`` value of an instance file
    and of a result) and implement the abstract methods.  Two families may
    share a ``name`` when :meth:`claims` tells their instances apart (two-level
    tiling and tiling on a hierarchy with a PE array both read
    ``family: tiling``).
    """

    name: str = ""
    """Value of ``family:`` in instance files and results."""
    key: str = ""
    """Unique key in the registry (defaults to ``name``)."""
    summary: str = ""
    """One line: the question the family answers."""

    # -- instances ---------------------------------------------------------

    def claims(self, data: dict) -> bool:
        """Whether an instance document with ``family: <name>`` is this family's."""
        return True

    @abstractmethod
    def build(self, data: dict, where, label: str, base: Path):
        """The typed problem of an instance document, or None with problems
        recorded on ``where`` (``instances.Located``: ``where.add(path, msg)``)."""

    @abstractmethod
    def dump(self, problem) -> dict:
        """A self-contained instance document that :meth:`build` reads back to
        an equal problem (results embed it, so they can be re-verified)."""

    def editable_dump(self, problem) -> dict:
        """The instance with its presets written out, to be edited (a sweep
        sets its axes in it): :meth:`dump` without what only certifies the
        instance as it is (a checksum of data derived from fields an edit
        may change)."""
        return self.dump(problem)

    @abstractmethod
    def owns(self, problem) -> bool:
        """Whether ``problem`` is one of this family's problems."""

    def parts(self, problem) -> list[Part] | None:
        """The distinct sub-problems of a composite instance (a whole
        network), or None for a single instance."""
        return None

    def time_limit(self, problem) -> float:
        """The instance's own time limit per exact solve (seconds)."""
        return 60.0

    # -- the one cost model -----------------------------------------------

    @abstractmethod
    def objective_name(self, problem) -> str:
        """Name of the objective (``energy``, ``ema``, ``bottleneck``, ...)."""

    @abstractmethod
    def unit(self, problem) -> str:
        """Unit of the objective, as a table header shows it."""

    def secondary_objectives(self, problem) -> list[tuple[str, str]]:
        """``(name, unit)`` of each objective minimized after the first, in
        order, each among the optima of the ones before it (default: none)."""
        return []

    @abstractmethod
    def space(self, problem) -> str:
        """The declared space optimality refers to, in words."""

    @abstractmethod
    def evaluate(self, problem, solution) -> Evaluation:
        """Score ``solution``: the single source of truth for an objective value."""

    @abstractmethod
    def solution_to_dict(self, problem, solution) -> dict:
        """JSON-ready form of a solution."""

    @abstractmethod
    def solution_from_dict(self, problem, data):
        """A solution from its stored form; raises ValueError naming what does
        not fit ``problem``."""

    # -- methods ------------------------------------------------------------

    @abstractmethod
    def methods(self, problem) -> list[ExactMethod]:
        """Every exact method of the family, whether or not it applies to
        ``problem`` (``why_not`` says)."""

    def default_method(self, problem) -> str:
        """The method ``solve`` uses when none is asked for."""
        return next(m.name for m in self.methods(problem) if m.solves and m.why_not(problem) is None)

    def heuristics(self, problem) -> list[Heuristic]:
        """Heuristic methods for ``problem`` (built per problem, so that
        heuristics may share work such as one sweep over buffer sizes)."""
        return []

    # -- certificate --------------------------------------------------------

    @abstractmethod
    def bounds(self, problem) -> list[Bound]:
        """Analytical lower bounds, each flagged rigorous or not."""

    @abstractmethod
    def functional(self, problem, solution, seed: int = 0) -> FunctionalRun:
        """Execute ``solution`` on random integers drawn from ``seed``."""

    second_opinion: bool = False
    """Whether ``solve`` re-proves every optimum with the family's other exact
    methods (cheap for small models; ``verify`` always does)."""

    def cross_checks(self, problem, solution, evaluation: Evaluation) -> list[Check]:
        """Independent family-specific checks of a solution (default: none)."""
        return []

    # -- presentation ---------------------------------------------------------

    def describe(self, problem) -> str:
        """One line naming the instance (rich markup allowed)."""
        return f"{self.name} instance"

    def render(self, problem, result, console, table) -> None:
        """Print the family's own view of a solved ``result`` (a
        :class:`mapcert.result.Result`): the mapping, the per-level numbers.
        ``table(**kwargs)`` makes a table in the CLI's style.  The generic
        parts (status, bounds, heuristics, checks) are printed by the CLI."""

    def plot(self, problem, output: Path, options: dict, progress: Callable[[str, int], Callable[[], None]]) -> str:
        """Draw what a user of the family reads into ``output``; returns a
        sentence saying what was drawn.  Raises :class:`PlotUnsupported`."""
        raise PlotUnsupported(f"`mapcert plot` has no picture for the {self.name} family")

    def draw_solution(self, problem, solution, output: Path) -> str:
        """Draw one solved instance's mapping into ``output`` (a sweep's report
        shows the best point's); returns what was drawn.  Raises
        :class:`PlotUnsupported` when the family has no such picture."""
        raise PlotUnsupported(f"no picture of a {self.name} solution")

    def presets(self, table) -> list:
        """Tables of the named hardware this family ships (``mapcert presets``)."""
        return []

    infeasible_field: tuple = ("hardware",)
    """Where in an instance file to point when no solution exists."""

    def infeasible_fields(self, problem, message: str) -> list[tuple]:
        """Where to point when no solution exists, most specific first: the
        command names the first field the instance file has (a family whose
        answer names a constraint points at it)."""
        return [self.infeasible_field]

    # -- tests ----------------------------------------------------------------

    def examples(self) -> list[str]:
        """Tiny instance documents (YAML text) for the contract test suite."""
        return []

    def brute_force(self, problem) -> float | None:
        """The optimum of a tiny instance by exhaustive search (None: no
        feasible solution); raises NotImplementedError where there is none."""
        raise NotImplementedError
