"""Run a sweep: plan the jobs the store lacks, solve them, store each at once.

The driver (this module) is the only writer of the store.  It expands the
sweep into points and jobs, asks the store which jobs are already answered,
and hands the rest to an executor:

- :class:`SerialExecutor` solves them one after the other in this process;
- :class:`DaskExecutor` sends them to Dask workers: a ``LocalCluster`` it
  starts (one single-threaded worker process per core) or a running
  scheduler (``--scheduler tcp://HOST:PORT``).

Each finished job is written in its own transaction as soon as it arrives,
so a driver killed at any moment loses only the jobs in flight.  A job that
raises, or whose worker dies (a crash, the memory guard), is tried again up
to ``retries`` more times and then recorded as ``failed`` with the reason;
it never stops the sweep.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..version import __version__
from .jobs import Job, PointPart, VersionMismatch, expand_point, run_job
from .spec import Sweep
from .store import DONE, Store


class SweepError(Exception):
    """A sweep that cannot start (no scheduler, bad option); the message says what to do."""


@dataclass
class PlannedPoint:
    """A point of the sweep with the jobs it is made of."""

    index: int
    values: dict
    document: dict
    label: str
    family: str
    workload: str
    hardware: str
    parts: list[PointPart]
    comparable: str
    """The point's workload written out (canonical JSON): points with equal ones compare."""


@dataclass
class Plan:
    """What a run of a sweep will do."""

    sweep: Sweep
    points: list[PlannedPoint]
    jobs: dict[str, Job]
    todo: list[Job]
    reused: dict[str, str]  # key -> stored status
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.jobs)


def plan(sweep: Sweep, store: Store, retry_feasible: bool = False, functional: bool = True) -> Plan:
    """Expand ``sweep`` into jobs and find those the store already answers.

    A job is reused when its stored status is ``optimal``, ``infeasible`` or
    ``error``, or ``feasible`` unless ``retry_feasible``; jobs that failed
    (raised, or their worker died) are tried again, and so are answers
    stored without a functional run when this run asks for one.
    """
    from ..formulations import registry

    points, jobs = [], {}
    for point in sweep.points:
        problem, parts = expand_point(point.document, point.label, sweep.path.parent)
        written = registry.family_of(problem).dump(problem).get("workload")
        first = parts[0].job
        workload = point.document.get("workload")
        network = getattr(problem, "network", None)  # a network's own name, not its first layer's
        if isinstance(workload, dict):
            workload = workload.get("name") or network or first.workload
        elif not isinstance(workload, str):
            workload = network or first.workload
        points.append(PlannedPoint(index=point.index, values=point.values, document=point.document,
                                   label=point.label, family=first.family, workload=str(workload),
                                   hardware=first.hardware, parts=parts,
                                   comparable=json.dumps(written, sort_keys=True, default=str)))
        for part in parts:
            jobs.setdefault(part.job.key, part.job)
    states = store.job_states(list(jobs))
    reused, todo = {}, []
    for key, job in jobs.items():
        state = states.get(key)
        keep = state is not None and (state.status in DONE or (state.status == "feasible" and not retry_feasible))
        if keep and functional and state.status in ("optimal", "feasible") and not state.functional:
            keep = False  # stored without the functional run this run asks for
        if keep:
            reused[key] = state.status
        else:
            todo.append(job)
    return Plan(sweep=sweep, points=points, jobs=jobs, todo=todo, reused=reused, warnings=idle_axes(sweep, points))


def idle_axes(sweep: Sweep, points: list[PlannedPoint]) -> list[str]:
    """Axes whose values never change a point's jobs (an axis a later axis
    overwrites, such as a level's size before the hardware preset): a
    warning, since equal results would read as "this field does not matter"."""
    from .spec import describe_value

    out = []
    for axis in sweep.axes:
        if len(sweep.spec.axes[axis]) < 2:
            continue
        groups: dict[tuple, set] = {}
        sizes: dict[tuple, int] = {}
        for point in points:
            rest = tuple(describe_value(v) for a, v in point.values.items() if a != axis)
            groups.setdefault(rest, set()).add(frozenset(p.job.key for p in point.parts))
            sizes[rest] = sizes.get(rest, 0) + 1
        if all(len(keys) == 1 for keys in groups.values()) and any(n > 1 for n in sizes.values()):
            later = [a for a in sweep.axes[sweep.axes.index(axis) + 1:] if _root(a) == _root(axis)]
            out.append(f"axis {axis}: its values give the same jobs at every point"
                       + (f"; {later[0]} comes after it and overwrites it (put {axis} last)" if later else
                          " (a field the solve does not read?)"))
    return out


def _root(path: str) -> str:
    return path.split(".")[0].split("[")[0]


@dataclass
class Outcome:
    """What happened to one job in this run."""

    job: Job
    status: str             # a result status, or "failed"
    result: dict | None
    reason: str = ""
    attempts: int = 1
    worker: str = ""
    job_time_s: float = 0.0


@dataclass
class Settings:
    """How the jobs run."""

    time_limit: float | None = None
    functional: bool = True
    threads: int = 1
    retries: int = 2


Report = Callable[[str, Outcome | None], None]
"""Called with ``("started", None)`` when a job is handed out and
``("finished", outcome)`` when it is stored."""


def payload(job: Job, settings: Settings) -> dict:
    return {"key": job.key, "instance": job.document, "time_limit": settings.time_limit,
            "functional": settings.functional, "threads": settings.threads, "version": __version__}


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return ("the worker running it died each time it was tried (crash, or the memory guard stopped it): "
                f"{exc}")
    if isinstance(exc, VersionMismatch):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{name}: {exc}{where}"


class SerialExecutor:
    """Every job in this process, one after the other."""

    workers = 1
    description = "serial, in this process"

    def run(self, jobs: list[Job], settings: Settings, finished: Callable[[Outcome], None], report: Report) -> None:
        from ..solvers.threads import ENVIRONMENT_VARIABLE, SWEEP_JOB_VARIABLE

        previous = {name: os.environ.get(name) for name in (ENVIRONMENT_VARIABLE, SWEEP_JOB_VARIABLE)}
        try:
            for job in jobs:
                report("started", None)
                for attempt in range(1, settings.retries + 2):
                    start = time.perf_counter()
                    try:
                        answer = run_job(payload(job, settings))
                    except Exception as exc:  # a failing job is recorded, never fatal (Ctrl-C is not an Exception)
                        rearm_interrupts()
                        if attempt <= settings.retries and not isinstance(exc, VersionMismatch):
                            continue
                        finished(Outcome(job, "failed", None, _reason(exc), attempt,
                                         job_time_s=time.perf_counter() - start))
                        break
                    rearm_interrupts()
                    finished(_outcome(job, answer, attempt))
                    break
        finally:  # run_job set them for its solvers; this process goes on without a sweep
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _outcome(job: Job, answer: dict, attempts: int) -> Outcome:
    result = answer["result"]
    return Outcome(job, result.get("status", "error"), result, result.get("message", ""), attempts,
                   answer.get("worker", ""), answer.get("finished", 0) - answer.get("started", 0))


class DaskExecutor:
    """Jobs on Dask workers: a LocalCluster started here, or a running scheduler.

    Parameters
    ----------
    workers
        Worker processes of the LocalCluster (ignored with ``scheduler``).
    scheduler
        Address of a running scheduler (``tcp://HOST:PORT``).
    memory_limit
        Bytes per worker of the LocalCluster; a worker above it is
        restarted by its nanny and its job tried again.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, memory_limit: int | None = None):
        self.scheduler = scheduler
        self.workers = workers or (os.cpu_count() or 1)
        self.memory_limit = memory_limit
        self.description = (f"Dask scheduler {scheduler}" if scheduler
                            else f"Dask LocalCluster, {self.workers} worker process{'es' * (self.workers != 1)}")

    def _client(self, retries: int):
        import dask
        from distributed import Client, LocalCluster

        dask.config.set({"distributed.scheduler.allowed-failures": retries,
                         # one task per worker thread: a worker that dies takes only its running job
                         # down, so a job queued behind a crashing one is never blamed for the crash
                         "distributed.scheduler.worker-saturation": 1.0,
                         "distributed.admin.tick.limit": "1h",
                         "distributed.worker.memory.spill": False,
                         "distributed.worker.memory.target": False,
                         "distributed.worker.memory.pause": False,
                         "distributed.worker.memory.terminate": 0.95})
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout=15)
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"--scheduler {self.scheduler}: cannot reach the scheduler ({exc}); start one with "
                                 f"`dask scheduler` and workers with `dask worker {self.scheduler} --nthreads 1`")
            self.workers = max(1, len(client.scheduler_info().get("workers", {})))
            return client, None
        memory = self.memory_limit or _default_memory(self.workers)
        with _workers_ignore_interrupts():
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, memory_limit=memory,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
        return Client(cluster), cluster

    def run(self, jobs: list[Job], settings: Settings, finished: Callable[[Outcome], None], report: Report) -> None:
        from distributed import as_completed

        client, cluster = self._client(settings.retries)
        try:
            if self.scheduler:
                _check_versions(client)
            live = {}  # task key -> (future, job); holding the future keeps the task alive
            attempts: dict[str, int] = {}
            for job in jobs:
                future = client.submit(run_job, payload(job, settings), key=f"mapcert-{job.key[:16]}-1", pure=False)
                live[future.key] = (future, job)
                attempts[job.key] = 1
                report("started", None)
            pending = as_completed([f for f, _ in live.values()], with_results=False)
            for future in pending:
                _, job = live.pop(future.key)
                tries = attempts[job.key]
                if future.status == "finished":
                    finished(_outcome(job, future.result(), tries))
                    continue
                exc = future.exception()
                killed = type(exc).__name__ == "KilledWorker"
                if not killed and tries <= settings.retries and not isinstance(exc, VersionMismatch):
                    attempts[job.key] = tries + 1
                    again = client.submit(run_job, payload(job, settings),
                                          key=f"mapcert-{job.key[:16]}-{tries + 1}", pure=False)
                    live[again.key] = (again, job)
                    pending.add(again)
                    continue
                finished(Outcome(job, "failed", None, _reason(exc), settings.retries + 1 if killed else tries))
        finally:
            logging.getLogger("distributed").setLevel(logging.CRITICAL)  # closing after Ctrl-C is not news
            client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _workers_ignore_interrupts():
    """Start worker processes with SIGINT ignored: Ctrl-C in a terminal
    reaches the whole process group, and a worker that took it would print
    its own KeyboardInterrupt traceback while the driver stops the sweep
    and closes them. A process started with SIGINT ignored keeps it so
    (Python and asyncio install their handlers only over the default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker_version() -> str:
    try:
        return __import__("mapcert").__version__
    except ImportError:
        return "none (mapcert is not installed there)"


def _check_versions(client) -> None:
    try:
        versions = client.run(_worker_version)
    except Exception as exc:  # a worker that cannot even answer
        raise SweepError(f"the scheduler's workers cannot run mapcert ({type(exc).__name__}: {exc}); install "
                         f"mapcert {__version__} where they run")
    wrong = {w: v for w, v in versions.items() if v != __version__}
    if wrong:
        raise SweepError(f"workers with another mapcert than this driver's {__version__}: "
                         + ", ".join(f"{w} has {v}" for w, v in wrong.items()) + "; install the same version")
    if not versions:
        raise SweepError("the scheduler has no workers; start some with `dask worker ADDRESS --nthreads 1`")


def _default_memory(workers: int) -> int:
    """A worker's share of the machine's memory (90% of it in all)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(total * 0.9 / max(1, workers))


@dataclass
class RunSummary:
    """Counts of one run of a sweep."""

    total: int
    reused: int
    solved: int = 0
    proved: int = 0
    failed: int = 0
    statuses: dict = field(default_factory=dict)
    wall_time_s: float = 0.0


def run(plan_: Plan, store: Store, executor, settings: Settings,
        on_finished: Callable[[Outcome], None] | None = None, report: Report | None = None) -> RunSummary:
    """Solve ``plan_.todo`` with ``executor`` and store each job as it finishes.

    Parameters
    ----------
    plan_
        From :func:`plan`.
    store
        The results store (written one job at a time).
    executor
        :class:`SerialExecutor` or :class:`DaskExecutor`.
    settings
        Time limit, functional run, threads per job, retries.
    on_finished
        Called after each job is stored.
    report
        Progress events (see :data:`Report`).

    Returns
    -------
    RunSummary
    """
    start = time.perf_counter()
    summary = RunSummary(total=plan_.total, reused=len(plan_.reused))
    for status in plan_.reused.values():
        summary.statuses[status] = summary.statuses.get(status, 0) + 1

    def finished(outcome: Outcome) -> None:
        if interrupted.is_set():
            return  # an answer that arrives after Ctrl-C may be a search cut short: not stored
        limit = settings.time_limit
        if outcome.result is not None:
            store.save_result(outcome.job, outcome.result, limit, outcome.worker, outcome.job_time_s,
                              outcome.attempts)
        else:
            store.save_failure(outcome.job, outcome.reason, limit, outcome.attempts, outcome.worker)
        summary.solved += outcome.result is not None
        summary.proved += outcome.status == "optimal"
        summary.failed += outcome.status in ("failed", "error")
        summary.statuses[outcome.status] = summary.statuses.get(outcome.status, 0) + 1
        if on_finished is not None:
            on_finished(outcome)
        if report is not None:
            report("finished", outcome)

    if plan_.todo:
        with _interruptible(interrupted):
            executor.run(plan_.todo, settings, finished, report or (lambda kind, outcome: None))
    summary.wall_time_s = time.perf_counter() - start
    return summary


interrupted = threading.Event()
"""Set by Ctrl-C or SIGTERM during a run; from then on nothing more is stored."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the sweep; every job stored before it is kept."""


class _interruptible:
    """SIGINT and SIGTERM raise :class:`SweepInterrupted` in the driver (and
    stop the storing at once), whatever handlers Dask or a solver installed."""

    def __init__(self, event: threading.Event):
        self.event = event
        self.previous = {}

    def _handler(self, signum, frame):
        self.event.set()
        raise SweepInterrupted(signal.Signals(signum).name)

    def __enter__(self):
        global _armed
        self.event.clear()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
            _armed = self
        return self

    def rearm(self) -> None:
        """Install the handlers again: a native solver may have reset the
        process's SIGINT action to the default (terminate) when it finished,
        without Python knowing."""
        for sig in self.previous:
            signal.signal(sig, self._handler)

    def __exit__(self, *exc):
        global _armed
        _armed = None
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


_armed: _interruptible | None = None


def rearm_interrupts() -> None:
    """After a job ran in this process: make Ctrl-C reach the sweep again."""
    if _armed is not None:
        _armed.rearm()
