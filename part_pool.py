"""Solve the distinct parts of a network side by side, one process per core.

The parts of a network (its distinct layers) are independent problems, so
they can be solved at the same time. On a few cores this beats giving every
core to one part at a time: CP-SAT's proofs of multi-level tilings run in
its single full-problem worker, and a second worker adds neighbourhood
search that finds the optimum sooner but proves it no faster (ResNet-50 on
``eyeriss``: the 24 distinct layers take 162 s one after another with two
workers each, and 132 s of single-worker solves in all, which two
processes share). The certificate work of each part (bounds, heuristics,
functional run) is spread the same way.

Each process gets its share of the solver threads through
``MAPCERT_SOLVER_THREADS`` (``solvers/threads.py``), so processes times
threads never exceed the cores. Inside a sweep's job, where the thread
count is already fixed, parts stay serial: the sweep spreads its jobs over
the cores itself. The processes are forked from a server that imports
mapcert once per pool, so each one starts with a fork, not an import.

``side_by_side`` runs any list of independent tasks the same way; the MILP
of multi-level tiling sends it its pieces and keep sets (``milp_pieces.py``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Callable

from .solvers.threads import ENVIRONMENT_VARIABLE, solver_threads, threads_fixed


def part_jobs(parts: int, jobs: int | None = None) -> int:
    """How many parts to solve at once.

    Parameters
    ----------
    parts : int
        The network's distinct parts.
    jobs : int, optional
        Asked for by the user; default: one per solver thread (the cores, at
        most 8). Inside a sweep's job (threads fixed from outside), 1.

    Returns
    -------
    int
        At least 1 and at most ``parts``.
    """
    if jobs is None:
        jobs = 1 if threads_fixed() else solver_threads()
    return max(1, min(int(jobs), parts))


def picklable(problems: list) -> bool:
    """Whether the problems can be sent to another process (a problem built
    in Python may hold something that cannot; it is then solved here)."""
    try:
        pickle.dumps(problems)
    except Exception:  # pickling raises PicklingError, TypeError or AttributeError, by what it meets
        return False
    return True


def _start_process(threads: int, initializer, initargs: tuple) -> None:
    os.environ[ENVIRONMENT_VARIABLE] = str(threads)
    _exit_with_parent()
    if initializer is not None:
        initializer(*initargs)


def _exit_with_parent() -> None:
    """End this pool process as soon as the process that started it ends.

    A solver call cannot be interrupted from Python, and the pool's own
    shutdown only reaches processes between tasks; without this, a killed
    ``mapcert`` (a job scheduler's SIGTERM, a closed terminal) would leave
    its pool solving on every core until each task's time limit."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def _main_script_hidden():
    """Hide the main script from the processes started inside this block.

    A process forked from the server imports the parent's ``__main__`` by
    its path (or module name) before its first task, which runs a script's
    top-level code again: a script that calls ``mapcert.solve`` without
    ``if __name__ == "__main__":`` solved again in the child, which tried
    to start a pool of its own and died, and the parent stopped with a
    broken pipe. The pool's tasks are functions of mapcert, which the
    child imports by name, so it needs nothing from ``__main__``."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    missing = object()
    saved = {name: main.__dict__.pop(name, missing) for name in ("__file__", "__spec__")}
    main.__spec__ = None  # multiprocessing reads it as an attribute
    try:
        yield
    finally:
        del main.__spec__
        for name, value in saved.items():
            if value is not missing:
                setattr(main, name, value)


class _Pool(ProcessPoolExecutor):
    """A process pool whose processes do not import the main script."""

    def _spawn_process(self):
        with _main_script_hidden():
            super()._spawn_process()

    def terminate_workers(self) -> None:
        """Stop every process of the pool now (after Ctrl-C): a process
        that took the interrupt in one task would go on with the tasks
        already handed to it, and the command would wait for them."""
        for process in list((getattr(self, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()


PRELOAD = ["mapcert.pipeline", "mapcert.formulations.tiling.multilevel.milp"]
"""What the fork server imports once, so that a process forked from it does
not: the pipeline, and the solver modules with pyomo, HiGHS and CP-SAT
(0.8 s of imports, which every process of every pool paid before its first
task: on ResNet-18's fc on ``eyeriss`` the MILP's two processes answered
their first relaxation 1.6 s and 2.7 s after the pool started)."""


@contextmanager
def part_pool(jobs: int, initializer=None, initargs: tuple = ()):
    """A pool of ``jobs`` processes, each with its share of the solver threads.

    ``initializer(*initargs)``, when given, runs once in each process after
    its thread share is set (to build what every task of the pool reuses).
    Leaving the block waits for the parts under way; an exception (Ctrl-C
    among them) cancels those not yet started. Tasks and the initializer
    must be importable by name: the processes do not import the main
    script (``_main_script_hidden``).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    threads = max(1, solver_threads() // jobs)
    pool = _Pool(max_workers=jobs, mp_context=context, initializer=_start_process,
                               initargs=(threads, initializer, initargs))
    try:
        yield pool
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            pool.terminate_workers()  # before the shutdown, which lets go of the processes
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def results_in_order(futures: list[Future], names: list[str], progress=None) -> list:
    """The futures' results in submission order; ``progress(name)`` is
    called as each one finishes, whatever the order."""
    index = {id(f): i for i, f in enumerate(futures)}
    for future in as_completed(futures):
        future.result()  # raise a part's error at once
        if progress is not None:
            progress(names[index[id(future)]])
    return [f.result() for f in futures]


def side_by_side(items: list, task: Callable, args_of: Callable, record: Callable, deadline: float, jobs: int,
                 initializer=None, initargs: tuple = (), then: Callable[[], list] | None = None) -> list:
    """Run ``task(*args_of(item))`` for each item in a pool of ``jobs`` processes.

    At most ``jobs`` items are under way at once, and ``args_of(item)`` is
    called when an item is sent, so it may use what the results so far
    taught (a search's cutoff, say). ``record(item, result)`` is called in
    this process as each result arrives. No item is sent after ``deadline``
    (``time.perf_counter``). ``then``: called whenever every item sent so
    far is answered, for more items to run in the same pool (a next phase,
    which depends on the results so far); an empty list ends. Returns the
    items without a result: those not sent by the deadline, or, if a
    process of the pool died, every item not answered, for the caller to
    run here or report.
    """
    queue = list(items)
    everything = list(items)
    pending: dict = {}
    answered: list = []
    try:
        with part_pool(jobs, initializer=initializer, initargs=initargs) as pool:
            while queue or pending or then is not None:
                if not queue and not pending:
                    queue = list(then())
                    everything += queue
                    if not queue:
                        then = None
                    continue
                while queue and len(pending) < jobs and time.perf_counter() < deadline:
                    item = queue.pop(0)
                    pending[pool.submit(task, *args_of(item))] = item
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    record(item, future.result())
                    answered.append(item)
    except BrokenProcessPool:
        return [item for item in everything if item not in answered]
    return queue
