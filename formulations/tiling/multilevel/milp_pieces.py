"""The MILP's stationary-tensor pieces, solved one after another or side by side.

A piece fixes the stationary tensor of every level (``sigma``) in the model
of one fixed hierarchy and asks HiGHS for a mapping strictly better than the
best known (the cutoff). Pieces depend on each other only through that
cutoff, so they form a task list, taken best first: in the order of their
LP relaxations' optima, after those relaxations. HiGHS' branch and bound
runs on one core; on a machine with more, each process of a pool holds
its own copy of the model in HiGHS (the arrays built here, loaded once
per process) and is sent pieces with the cutoff of the moment. A
better mapping found by one process tightens the cutoff of every piece
sent after it. What decides the answer is unchanged: the least piece
optimum, with every piece finished, is the optimum, whichever process
solved which piece and in what order.

Pools are not started where processes cannot have children (a daemonic
process, such as a Dask worker's), inside another pool's process, or where
the thread count is fixed from outside to one (a sweep's job, a network's
part solved beside others): there the pieces run here, one after another.
The pool's processes do not import the main script (``part_pool``), so a
script that solves at its top level needs no ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import dataclass, replace
from typing import Callable

from ....solvers.highs import run_highs
from ....solvers.outcome import SolverOutcome
from ....solvers.threads import solver_threads
from .terms import TENSORS

MIN_POOL_SECONDS = 10.0
"""Least time left for the pieces for a pool to be worth starting: each
process imports nothing (it is forked from a server) but loads the model
into its own HiGHS."""

MIP_OPTIONS = {"mip_feasibility_tolerance": 1e-7}
"""HiGHS options of every piece (as of the whole model): a tight
feasibility tolerance, so that a claimed mapping is one ``evaluate``
confirms. Whether presolve probes is decided per attempt
(:data:`QUICK_SECONDS`)."""


NO_PROBING = 1 << 15
"""HiGHS' ``presolve_rule_off`` bit of probing."""

QUICK_SECONDS = 1.0
"""Seconds a piece is first given without presolve's probing, until a
piece solved with it says how long that takes. Probing
takes most of a large layer's pieces (6 to 9 s of each of ResNet-18's
conv1 pieces on ``eyeriss``, whose branch and bound then ends at the
root) and little of a small layer's, where branch and bound without it
can take ten times longer; a short first attempt without it, then one
with it, takes the better of both on most pieces
(``docs/tiling-multilevel.md``, "Exact methods")."""


@dataclass
class PieceModel:
    """The MILP of one fixed hierarchy in HiGHS, whose pieces are solved by
    fixing ``sigma`` and moving the cutoff row's bound, in place."""

    problem: object
    highs: object
    """The ``highspy.Highs`` that holds the model (``LinearModel.highs``)."""
    builder: object
    rows: object
    probing_seconds: float | None = None
    """How long the last piece solved with presolve's probing took."""

    def fix(self, combo: tuple[str, ...]) -> None:
        """Fix ``sigma`` to the piece ``combo`` (a stationary tensor per level)."""
        for level, owner in enumerate(combo):
            for X in TENSORS:
                var = self.builder.booleans.get(("sigma", level, X))
                if var is not None:
                    value = 1.0 if X == owner else 0.0
                    self.highs.changeColBounds(var.index, value, value)

    def relaxation(self, combo: tuple[str, ...], seconds: float) -> "Relaxation":
        """The LP relaxation of the piece ``combo`` without a cutoff (the
        restriction's own ``below`` stays), within ``seconds``."""
        self.fix(combo)
        self.builder.set_cutoff(self.highs, None)
        self.highs.clearSolver()  # from scratch, with presolve: a warm start from the last basis skips it
        outcome = run_highs(self.highs, lambda _: None, seconds, integral_objective=False, relaxation=True,
                            objective_scale=self.builder.objective_scale)
        return Relaxation(outcome.infeasible, outcome.objective if outcome.proved else None)

    def solve(self, combo: tuple[str, ...], cutoff: float | None, refuting: bool,
              seconds: float, relaxed: "Relaxation | None" = None) -> "PieceResult":
        """Solve the piece ``combo`` (a stationary tensor per level) for a
        mapping whose objective is at most ``cutoff`` (model units; None: no
        cutoff) within ``seconds``. ``refuting``: the model holds a cutoff
        (this one or the restriction's), so HiGHS' primal heuristics are
        off and, unless ``relaxed`` (the piece's relaxation, solved before)
        already says, the LP relaxation is tried first."""
        from .milp import decode_milp

        if relaxed is not None and relaxed.refutes(cutoff):
            return PieceResult(combo, True, refuted_by_relaxation=True)
        self.fix(combo)
        # only strictly better mappings are of interest: "infeasible" then means none is in this piece
        # (the restriction's own ``below`` is already a row of the model)
        self.builder.set_cutoff(self.highs, cutoff)
        if refuting and (relaxed is None or relaxed.bound is None) and run_highs(
                self.highs, lambda _: None, seconds, integral_objective=False, relaxation=True).infeasible:
            # (where the relaxation without a cutoff is unknown) the LP relaxation cannot reach below the
            # cutoff: nothing better here (each in about 0.1 s where the MIP's presolve takes 3-13 s)
            return PieceResult(combo, True, refuted_by_relaxation=True)
        # with a cutoff most pieces only have to be refuted: primal heuristics
        # spend time there without helping the proof (ResNet-18 conv1: 18 s
        # -> 6.5 s for one piece); branching still finds better mappings
        options = {**MIP_OPTIONS, "mip_heuristic_effort": 0.0 if refuting else 0.05}
        start = time.perf_counter()

        def attempt(limit: float, probing: bool):
            return run_highs(self.highs, lambda values: decode_milp(self.problem, self.builder, self.rows, values),
                             limit, integral_objective=True,
                             extra_options={**options, "presolve_rule_off": 0 if probing else NO_PROBING},
                             objective_scale=self.builder.objective_scale)

        # first without presolve's probing, for as long as a piece with it took last: most pieces end
        # there; the rest start again with it (at most twice the better of the two, as in ski rental)
        quick = attempt(min(seconds, self.probing_seconds or QUICK_SECONDS), probing=False)
        left = seconds - (time.perf_counter() - start)
        if quick.proved or quick.infeasible or left <= 0:
            return PieceResult(combo, True, outcome=quick)
        began = time.perf_counter()
        outcome = attempt(left, probing=True)
        self.probing_seconds = time.perf_counter() - began
        if outcome.values is None and quick.values is not None and not outcome.infeasible:
            outcome = quick  # the time ran out: keep the mapping the first attempt found
        return PieceResult(combo, True, outcome=outcome, probing_seconds=self.probing_seconds)


RELAXATION_MARGIN = 1e-4
"""Relative margin by which a piece's LP optimum must exceed the cutoff to
refute the piece without solving it: far wider than the numerical error
of the LP optimum, and costing nothing but a MIP solve for the rare piece
whose relaxation lies within it (``docs/tiling-multilevel.md``, "Exact
methods")."""


@dataclass(frozen=True)
class Relaxation:
    """A piece's LP relaxation without a cutoff: infeasible (then so is the
    piece), or its optimum (model units; None when the time ran out), a
    lower bound on every mapping of the piece."""

    infeasible: bool
    bound: float | None

    def refutes(self, cutoff: float | None) -> bool:
        """Whether no mapping of the piece can be at most ``cutoff``."""
        if self.infeasible:
            return True
        if cutoff is None or self.bound is None:
            return False
        return self.bound > cutoff + RELAXATION_MARGIN * max(1.0, abs(cutoff))

    def lower_bound(self) -> float | None:
        """A bound on every mapping of the piece that the LP optimum's
        numerical error cannot overstate (the optimum less the margin);
        None when infeasible or unknown."""
        if self.infeasible or self.bound is None:
            return None
        return self.bound - RELAXATION_MARGIN * max(1.0, abs(self.bound))

    def rank(self) -> float:
        """Best first: the lower the bound, the likelier the piece holds the optimum."""
        return -math.inf if self.infeasible else math.inf if self.bound is None else self.bound


@dataclass(frozen=True)
class PieceResult:
    """What became of one piece: not started (the time ran out first),
    refuted by its LP relaxation, or solved by HiGHS (``outcome``), with
    its LP relaxation when that was solved (a bound where the piece was
    not finished)."""

    combo: tuple[str, ...]
    started: bool
    refuted_by_relaxation: bool = False
    outcome: SolverOutcome | None = None
    relaxation: "Relaxation | None" = None
    probing_seconds: float | None = None
    """How long its solve with presolve's probing took, when it needed one."""


def piece_processes(workers: int, pieces: int, seconds: float, problem=None) -> int:
    """How many processes solve ``pieces`` pieces (or keep sets) in
    ``seconds``: ``workers`` (0: one per solver thread,
    ``solvers/threads.py``), at most one per piece, and 1 where a pool
    cannot start, cannot be sent ``problem``, or would not pay for itself."""
    from ....part_pool import picklable

    wanted = workers or solver_threads()
    if wanted <= 1 or pieces <= 1 or seconds < MIN_POOL_SECONDS:
        return 1
    if multiprocessing.current_process().daemon or multiprocessing.parent_process() is not None:
        return 1  # a daemon may not have children; a pool's own process never starts another pool
    if problem is not None and not picklable([problem]):
        return 1
    return min(wanted, pieces)


def solve_pieces(local: PieceModel, combos: list[tuple[str, ...]], cutoff: Callable[[], float | None],
                 refuting: Callable[[], bool], record: Callable[[PieceResult], None], deadline: float,
                 processes: int, build_args: tuple) -> int:
    """Solve every piece of ``combos`` before ``deadline`` (``time.perf_counter``).

    First every piece's LP relaxation, then the pieces best first: in the
    order of their relaxations' optima, so that the piece likeliest to
    hold the optimum sets the cutoff early, and a piece whose relaxation is
    infeasible or above the cutoff when its turn comes is refuted without a
    MIP solve (``docs/tiling-multilevel.md``, "Exact methods"). Ties keep
    the order of ``combos``.

    ``cutoff()`` and ``refuting()`` are read when a piece starts, and
    ``record`` is called with each piece's result as it arrives (in this
    process, so it may update what ``cutoff`` returns). A piece the time
    left no room for is recorded as not started. With ``processes`` > 1 the
    relaxations and pieces go to a pool whose processes each load the
    model from ``build_args`` (the problem, the model's builder and its
    rows, as ``build_multilevel_milp`` returned them); what a broken pool did not answer is done here. Returns the processes
    that solved pieces (1 when the pool answered none)."""
    relaxed: dict[tuple[str, ...], Relaxation] = {}
    done: set[tuple[str, ...]] = set()

    def best_first() -> list[tuple[str, ...]]:
        """The pieces left, best first (a stable sort: ties keep their order)."""
        return sorted((c for c in combos if c not in done),
                      key=lambda c: relaxed[c].rank() if c in relaxed else math.inf)

    def solved(piece: PieceResult) -> None:
        done.add(piece.combo)
        if piece.relaxation is None and piece.combo in relaxed:
            piece = replace(piece, relaxation=relaxed[piece.combo])
        record(piece)

    def relaxation_known(combo: tuple[str, ...], relaxation: Relaxation) -> None:
        relaxed[combo] = relaxation
        if relaxation.infeasible:  # so is the piece
            solved(PieceResult(combo, True, refuted_by_relaxation=True))

    if processes > 1:
        from ....part_pool import side_by_side

        deadline_epoch = time.time() + (deadline - time.perf_counter())  # the wall clock, which processes share

        probing: list[float] = []  # the probing times the pool's pieces reported, latest last

        def args_of(item):
            kind, combo = item
            if kind == "relax":
                return kind, combo, deadline_epoch
            return (kind, combo, deadline_epoch, cutoff(), refuting(), relaxed.get(combo),
                    probing[-1] if probing else None)

        def arrived(item, answer) -> None:
            kind, combo = item
            if kind == "relax":
                relaxation_known(combo, answer)
            else:
                if answer.probing_seconds is not None:
                    probing.append(answer.probing_seconds)
                solved(answer)

        # the best piece alone, then the rest: two first pieces would both run under the incumbent's cutoff
        phases = [lambda: [("solve", c) for c in best_first()[:1]], lambda: [("solve", c) for c in best_first()]]
        side_by_side([("relax", c) for c in combos], _in_worker, args_of, arrived, deadline, processes,
                     _build_in_worker, build_args, then=lambda: phases.pop(0)() if phases else [])
        if not done:  # the pool solved nothing (it broke, or no time was left): say so, not "in N processes"
            processes = 1
    for combo in combos:
        if combo not in relaxed and combo not in done and deadline > time.perf_counter():
            relaxation_known(combo, local.relaxation(combo, deadline - time.perf_counter()))
    for combo in best_first():
        remaining = deadline - time.perf_counter()
        solved(PieceResult(combo, False) if remaining <= 0
               else local.solve(combo, cutoff(), refuting(), remaining, relaxed.get(combo)))
    return processes


_WORKER_MODEL: PieceModel | None = None
"""The model of this pool process (set by :func:`_build_in_worker`)."""


def _build_in_worker(problem, builder, rows) -> None:
    """Load the model built in the parent process (its arrays, sent pickled)."""
    global _WORKER_MODEL
    _WORKER_MODEL = PieceModel(problem, builder.lp.highs(), builder, rows)


def _in_worker(kind: str, combo, deadline_epoch: float, *solve_args):
    """A piece's relaxation (``kind`` "relax") or the piece itself
    (``solve_args``: cutoff, refuting, relaxation, and how long the last
    piece solved with probing took in any process) in a pool process; the
    deadline is on the wall clock, which every process shares. A process
    whose first piece needs probing then tries without it only as long as
    probing took elsewhere, not the default second."""
    remaining = deadline_epoch - time.time()
    if kind == "relax":
        return Relaxation(False, None) if remaining <= 0 else _WORKER_MODEL.relaxation(combo, remaining)
    if remaining <= 0:
        return PieceResult(combo, False)
    cutoff, refuting, relaxed, probing_seconds = solve_args
    if probing_seconds is not None:
        _WORKER_MODEL.probing_seconds = probing_seconds
    return _WORKER_MODEL.solve(combo, cutoff, refuting, remaining, relaxed)
