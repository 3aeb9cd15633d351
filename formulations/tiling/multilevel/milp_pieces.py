"""The MILP's stationary-tensor pieces, solved one after another or side by side.

A piece fixes the stationary tensor of every level (``sigma``) in the model
of one fixed hierarchy and asks HiGHS for a mapping strictly better than the
best known (the cutoff). Pieces depend on each other only through that
cutoff, so they form a task list. HiGHS' branch and bound runs on one core;
on a machine with more, each process of a pool holds its own copy of the
model in a persistent HiGHS (built once per process, the way the serial
route builds it once) and is sent pieces with the cutoff of the moment. A
better mapping found by one process tightens the cutoff of every piece
sent after it. What decides the answer is unchanged: the least piece
optimum, with every piece finished, is the optimum, whichever process
solved which piece and in what order.

Pools are not started where processes cannot have children (a daemonic
process, such as a Dask worker's), inside another pool's process, or where
the thread count is fixed from outside to one (a sweep's job, a network's
part solved beside others): there the pieces run here, one after another.
As with any pool of Python processes, a script that solves at import time
must do so under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from typing import Callable

from ....solvers.highs import load_model, new_highs, relaxation_infeasible, solve_highs
from ....solvers.outcome import SolverOutcome
from ....solvers.threads import solver_threads
from .terms import TENSORS

MIN_POOL_SECONDS = 10.0
"""Least time left for the pieces for a pool to be worth starting: each
process imports nothing (it is forked from a server) but builds and
translates its model, a second or two on the largest layers."""

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
    """The MILP of one fixed hierarchy in a persistent HiGHS, whose pieces
    are solved by fixing ``sigma`` and replacing the cutoff."""

    problem: object
    model: object
    builder: object
    rows: object
    solver: object
    probing_seconds: float | None = None
    """How long the last piece solved with presolve's probing took."""

    def fix(self, combo: tuple[str, ...]) -> None:
        """Fix ``sigma`` to the piece ``combo`` (a stationary tensor per level)."""
        for level, owner in enumerate(combo):
            for X in TENSORS:
                self.builder.boolean(("sigma", level, X)).fix(1 if X == owner else 0)

    def solve(self, combo: tuple[str, ...], cutoff: float | None, refuting: bool,
              seconds: float) -> "PieceResult":
        """Solve the piece ``combo`` (a stationary tensor per level) for a
        mapping whose objective is at most ``cutoff`` (model units; None: no
        cutoff) within ``seconds``. ``refuting``: the model holds a cutoff
        (this one or the restriction's), so the LP relaxation is tried first
        and HiGHS' primal heuristics are off."""
        import pyomo.environ as pyo

        from .milp import decode_milp

        m = self.model
        self.fix(combo)
        if m.find_component("cutoff") is not None:
            m.del_component("cutoff")
        if cutoff is not None:
            # only strictly better mappings are of interest: "infeasible" then means none is in this piece
            # (the restriction's own ``below`` is already a constraint of the model)
            m.cutoff = pyo.Constraint(expr=self.builder.objective_units <= cutoff)
        if refuting and relaxation_infeasible(m, seconds, self.solver):
            # the LP relaxation cannot reach below the cutoff: nothing better here (on ResNet-18's conv1
            # on eyeriss, 10 of 27 pieces, each in 0.1 s where the MIP's presolve took 3-13 s)
            return PieceResult(combo, True, refuted_by_relaxation=True)
        # with a cutoff most pieces only have to be refuted: primal heuristics
        # spend time there without helping the proof (ResNet-18 conv1: 18 s
        # -> 6.5 s for one piece); branching still finds better mappings
        options = {**MIP_OPTIONS, "mip_heuristic_effort": 0.0 if refuting else 0.05}
        start = time.perf_counter()

        def attempt(limit: float, probing: bool):
            return solve_highs(m, lambda _: decode_milp(self.problem, self.builder, self.rows), limit,
                               integral_objective=True, solver=self.solver,
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
        return PieceResult(combo, True, outcome=outcome)


@dataclass(frozen=True)
class PieceResult:
    """What became of one piece: not started (the time ran out first),
    refuted by its LP relaxation, or solved by HiGHS (``outcome``)."""

    combo: tuple[str, ...]
    started: bool
    refuted_by_relaxation: bool = False
    outcome: SolverOutcome | None = None


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

    ``cutoff()`` and ``refuting()`` are read when a piece starts, and
    ``record`` is called with each piece's result as it arrives (in this
    process, so it may update what ``cutoff`` returns). A piece the time
    left no room for is recorded as not started. With ``processes`` > 1 the
    pieces go to a pool whose processes each build the model from
    ``build_args`` (the arguments of ``build_multilevel_milp``); pieces a
    broken pool did not answer are solved here. Returns the processes that
    solved pieces (1 when the pool answered none)."""
    if processes > 1:
        from ....part_pool import side_by_side

        deadline_epoch = time.time() + (deadline - time.perf_counter())  # the wall clock, which processes share
        left = side_by_side(combos, _solve_in_worker, lambda combo: (combo, cutoff(), refuting(), deadline_epoch),
                            lambda _, piece: record(piece), deadline, processes, _build_in_worker, build_args)
        if len(left) == len(combos):  # the pool answered nothing (it broke at once): say so, not "in N processes"
            processes = 1
        combos = left
    for combo in combos:
        remaining = deadline - time.perf_counter()
        record(PieceResult(combo, False) if remaining <= 0 else local.solve(combo, cutoff(), refuting(), remaining))
    return processes


_WORKER_MODEL: PieceModel | None = None
"""The model of this pool process (set by :func:`_build_in_worker`)."""


def _build_in_worker(problem, incumbent, restriction) -> None:
    from .milp import build_multilevel_milp

    global _WORKER_MODEL
    m, builder, rows, _, _ = build_multilevel_milp(problem, incumbent, restriction)
    solver = new_highs()
    load_model(solver, m)
    _WORKER_MODEL = PieceModel(problem, m, builder, rows, solver)


def _solve_in_worker(combo, cutoff, refuting, deadline_epoch: float) -> PieceResult:
    """One piece in a pool process; the deadline is on the wall clock,
    which every process shares."""
    remaining = deadline_epoch - time.time()
    if remaining <= 0:
        return PieceResult(combo, False)
    return _WORKER_MODEL.solve(combo, cutoff, refuting, remaining)
