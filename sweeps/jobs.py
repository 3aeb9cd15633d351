"""Jobs: the unit a sweep solves, stores and never solves twice.

A point of a sweep is an instance; a network instance expands (through the
family's ``parts``) into its distinct layers.  Each layer, or each whole
single instance, is a *job*: a self-contained instance document (the
family's ``dump``, presets written out) solved by one ``mapcert solve``.

A job is identified by the SHA-256 of its canonical document (JSON with
sorted keys) and mapcert's version.  The time limit is left out of the
identity: it says how long to look, not what the problem is, so a job that
timed out can be retried with a larger limit in place.  Two points, or two
sweeps, that contain the same layer on the same hardware share one job.

:func:`run_job` is what a worker executes.  It must import nothing from the
driver but mapcert itself, so that a worker started anywhere with mapcert
installed can run it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..version import __version__

IDENTITY_EXCLUDES = (("solver", "time_limit"),)
"""Fields of a job document that do not change the problem it poses."""


@dataclass(frozen=True)
class Job:
    """One solve: a self-contained instance document and its identity."""

    key: str
    document: dict
    family: str
    workload: str
    layer: str
    hardware: str


@dataclass(frozen=True)
class PointPart:
    """A job as one point uses it: the part's name and how often it repeats."""

    part: str
    count: int
    job: Job


def canonical(document: dict) -> str:
    """The document as canonical JSON, without the fields that do not change the problem."""
    data = copy.deepcopy(document)
    for path in IDENTITY_EXCLUDES:
        node = data
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def job_key(document: dict, version: str = __version__) -> str:
    """The content hash that identifies a job (hex SHA-256)."""
    return hashlib.sha256(f"mapcert {version}\n{canonical(document)}".encode()).hexdigest()


def _name(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("name") or value.get("preset") or "")
    return ""


def _job(document: dict, family: str, layer: str) -> Job:
    return Job(key=job_key(document), document=document, family=family, workload=_name(document.get("workload")),
               layer=layer, hardware=_name(document.get("hardware")))


def expand_point(document: dict, label: str, base: Path) -> tuple[object, list[PointPart]]:
    """A point's problem and its jobs: one per distinct layer of a network
    (with its repeat count), or the whole instance."""
    from ..formulations import registry
    from ..instances import load_document

    problem = load_document(document, label, base)
    family = registry.family_of(problem)
    parts = family.parts(problem)
    if parts is None:
        whole = family.dump(problem)
        name = _name(whole.get("workload")) or str(whole.get("name") or "") or family.name
        return problem, [PointPart(part=name, count=1, job=_job(whole, family.name, name))]
    return problem, [PointPart(part=p.name, count=p.count, job=_job(family.dump(p.problem), family.name, p.name))
                     for p in parts]


class VersionMismatch(RuntimeError):
    """A worker whose mapcert differs from the driver's (its answers would be stored under the wrong key)."""


def run_job(payload: dict) -> dict:
    """Solve one job on a worker and return its result document.

    Parameters
    ----------
    payload
        ``key``, ``instance`` (the job's document), ``time_limit`` (None:
        the instance's), ``functional`` (run the functional model),
        ``threads`` (solver threads), ``version`` (the driver's mapcert).

    Returns
    -------
    dict
        ``key``, ``result`` (a ``mapcert-result/2`` document), ``worker``
        (host and process), ``started`` and ``finished`` (Unix seconds).
    """
    from ..hardware.functional.blas import single_threaded_blas
    from ..instances import load_document
    from ..pipeline import solve
    from ..solvers.threads import ENVIRONMENT_VARIABLE, SWEEP_JOB_VARIABLE

    if payload.get("version") != __version__:
        raise VersionMismatch(f"this worker runs mapcert {__version__}, the driver {payload.get('version')}; "
                              f"install the same version on every worker")
    os.environ[ENVIRONMENT_VARIABLE] = str(payload.get("threads") or 1)
    os.environ[SWEEP_JOB_VARIABLE] = "1"
    started = time.time()
    with single_threaded_blas():
        problem = load_document(payload["instance"], f"job {payload['key'][:12]}")
        result = solve(problem, time_limit=payload.get("time_limit"), functional=payload.get("functional", True))
    return {"key": payload["key"], "result": result.to_dict(), "worker": f"{socket.gethostname()}:{os.getpid()}",
            "started": started, "finished": time.time()}
