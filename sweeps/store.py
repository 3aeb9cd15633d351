"""The results store: one SQLite file that a sweep fills and reruns reuse.

Tables (``docs/sweeps.md`` has the full schema):

- ``jobs``: one row per job, keyed by the job's content hash, with indexed
  columns (family, workload, layer, hardware, status, objective, bounds,
  gap, times) and the whole result document;
- ``sweeps``, ``points``, ``point_values`` (one row per swept field of a
  point, indexed, for filtering) and ``point_parts`` (which jobs a point
  is made of, and how often each layer repeats);
- the view ``rows``: one row per point and part, joined.

Every write is one transaction, and the file runs in SQLite's WAL mode with
full synchronisation: a driver killed at any moment, or a machine that
loses power, leaves the store as it was after the last finished job.  A
file that is not a mapcert store (another program's database, or not a
database at all) is refused before anything is written to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..version import __version__
from .spec import numeric_value

STORE_FORMAT = "mapcert-store/1"
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    workload TEXT NOT NULL,
    layer TEXT NOT NULL,
    hardware TEXT NOT NULL,
    status TEXT NOT NULL,            -- optimal, feasible, infeasible, error, or failed (no result)
    objective_name TEXT,
    unit TEXT,
    objective REAL,
    best_bound REAL,
    lower_bound REAL,
    gap REAL,
    method TEXT,
    wall_time_s REAL,                -- the solve's own time
    job_time_s REAL,                 -- on the worker, start to end
    time_limit REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '', -- why a job failed or is not optimal
    worker TEXT NOT NULL DEFAULT '',
    finished_at TEXT,
    mapcert_version TEXT NOT NULL,
    instance TEXT NOT NULL,          -- the job's instance document (JSON)
    result TEXT                      -- the mapcert-result/2 document (JSON)
);
CREATE INDEX IF NOT EXISTS jobs_family ON jobs(family);
CREATE INDEX IF NOT EXISTS jobs_workload ON jobs(workload);
CREATE INDEX IF NOT EXISTS jobs_layer ON jobs(layer);
CREATE INDEX IF NOT EXISTS jobs_hardware ON jobs(hardware);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    axes TEXT NOT NULL,              -- JSON list, in the file's order
    spec TEXT NOT NULL,              -- the sweep file's content (JSON)
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS points (
    sweep TEXT NOT NULL,
    point INTEGER NOT NULL,
    label TEXT NOT NULL,
    family TEXT NOT NULL,
    workload TEXT NOT NULL,
    hardware TEXT NOT NULL,
    comparable TEXT NOT NULL,        -- the point's workload, written out (JSON): equal ones compare
    instance TEXT NOT NULL,          -- the point's instance document (JSON)
    PRIMARY KEY (sweep, point)
);
CREATE TABLE IF NOT EXISTS point_values (
    sweep TEXT NOT NULL,
    point INTEGER NOT NULL,
    axis TEXT NOT NULL,
    value TEXT NOT NULL,             -- as written in the sweep file (JSON)
    number REAL,                     -- the value as a number when it is one (sizes in bytes)
    PRIMARY KEY (sweep, point, axis)
);
CREATE INDEX IF NOT EXISTS point_values_axis ON point_values(axis, value);
CREATE TABLE IF NOT EXISTS point_parts (
    sweep TEXT NOT NULL,
    point INTEGER NOT NULL,
    position INTEGER NOT NULL,
    part TEXT NOT NULL,
    count INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (sweep, point, position)
);
CREATE INDEX IF NOT EXISTS point_parts_key ON point_parts(key);
CREATE VIEW IF NOT EXISTS rows AS
    SELECT pp.sweep, pp.point, pp.position, p.label, p.workload AS network, pp.part, pp.count, pp.key AS part_key,
           j.*
    FROM point_parts pp JOIN points p USING (sweep, point) LEFT JOIN jobs j ON j.key = pp.key;
"""

DONE = ("optimal", "infeasible", "error")
"""Statuses a rerun keeps: proved answers, proved infeasibility, and failed
checks (a defect to report, not to hide by solving again)."""


class StoreError(Exception):
    """A store file that cannot be used; the message says why and what to do."""


@dataclass
class StoredJob:
    key: str
    status: str
    attempts: int
    time_limit: float | None
    functional: bool
    """Whether the stored result ran the functional model."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_file(path: Path) -> None:
    """Refuse a file that is not a mapcert store, without writing to it."""
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a results store")
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head == b"":
        return  # an empty file: nothing to lose, it becomes a store
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path}: not an SQLite database (a mapcert results store is one); left untouched; a store is "
                         "the file `mapcert sweep` writes (its --db)")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "meta" not in tables:
                raise StoreError(f"{path}: an SQLite database of another program (tables: "
                                 f"{', '.join(sorted(tables)[:6])}); left untouched; a store is the file `mapcert sweep` "
                                 "writes (its --db)")
            if "meta" in tables:
                row = connection.execute("SELECT value FROM meta WHERE key='format'").fetchone()
                if row is None or row[0] != STORE_FORMAT:
                    found = row[0] if row else "no format"
                    raise StoreError(f"{path}: not a {STORE_FORMAT} store ({found}); left untouched")
            check = connection.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StoreError(f"{path}: the database is damaged ({check[0] if check else 'no answer'}); "
                                 f"left untouched — move it aside and run the sweep again")
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database ({exc}); left untouched") from exc


class Store:
    """An open results store.

    Parameters
    ----------
    path
        The SQLite file (created when missing).
    readonly
        Open for reading only (``mapcert results``, ``mapcert plot``).
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        check_file(self.path)
        if readonly and not self.path.exists():
            raise StoreError(f"{self.path}: no such results store; run `mapcert sweep` first")
        try:
            if readonly:
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            else:
                self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(SCHEMA)  # idempotent; DDL commits on its own
                with self.transaction():
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (_now(),))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot be used as a results store ({exc})") from exc
        self.db.row_factory = sqlite3.Row
        self._check_schema()
        if readonly:
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
            if "jobs" not in tables:
                raise StoreError(f"{self.path}: an empty store; run `mapcert sweep` first")

    def _check_schema(self) -> None:
        """Refuse a store whose tables lack columns this version writes or reads."""
        expected = sqlite3.connect(":memory:")
        expected.executescript(SCHEMA)
        for (table,) in expected.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            want = {row[1] for row in expected.execute(f"PRAGMA table_info({table})")}
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if have and want - have:
                self.db.close()
                raise StoreError(f"{self.path}: a results store of another mapcert version (table {table} lacks "
                                 f"{', '.join(sorted(want - have))}); left untouched — use a new store (--db)")
        expected.close()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transaction(self):
        return _Transaction(self.db)

    # -- writing ---------------------------------------------------------------

    def save_sweep(self, name: str, file: str, axes: list[str], spec: dict, points: list) -> None:
        """Record a sweep's points and the jobs each is made of (replacing an
        earlier expansion of the same sweep; stored results are kept)."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?, ?)",
                            (name, file, json.dumps(axes), json.dumps(spec, default=str), _now()))
            for table in ("points", "point_values", "point_parts"):
                self.db.execute(f"DELETE FROM {table} WHERE sweep = ?", (name,))
            for point in points:
                self.db.execute("INSERT INTO points (sweep, point, label, family, workload, hardware, comparable, "
                                "instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (name, point.index, point.label, point.family, point.workload, point.hardware,
                                 point.comparable, json.dumps(point.document, default=str)))
                for axis, value in point.values.items():
                    self.db.execute("INSERT INTO point_values VALUES (?, ?, ?, ?, ?)",
                                    (name, point.index, axis, json.dumps(value, default=str), numeric_value(value)))
                for position, part in enumerate(point.parts):
                    self.db.execute("INSERT INTO point_parts VALUES (?, ?, ?, ?, ?, ?)",
                                    (name, point.index, position, part.part, part.count, part.job.key))

    def job_states(self, keys: list[str]) -> dict[str, StoredJob]:
        """The stored state of each of ``keys`` that has a row."""
        states = {}
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(
                    f"SELECT key, status, attempts, time_limit, "
                    f"json_extract(result, '$.certificate.functional.ran') AS functional "
                    f"FROM jobs WHERE key IN ({marks})", part):
                states[row["key"]] = StoredJob(row["key"], row["status"], row["attempts"], row["time_limit"],
                                               bool(row["functional"]))
        return states

    def save_result(self, job, result: dict, time_limit: float | None, worker: str, job_time_s: float,
                    attempts: int) -> None:
        """Store a finished job's result (one transaction)."""
        reason = (result.get("message") or "") if result.get("status") != "optimal" else ""
        with self.transaction():
            if not _improves(self.db.execute("SELECT status, objective, best_bound FROM jobs WHERE key = ?",
                                             (job.key,)).fetchone(), result):
                return
            self.db.execute(
                "INSERT OR REPLACE INTO jobs VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.key, job.family, job.workload, job.layer, job.hardware, result.get("status"),
                 result.get("objective_name"), result.get("unit"), result.get("objective"), result.get("best_bound"),
                 result.get("lower_bound"), result.get("gap"), result.get("method"), result.get("wall_time_s"),
                 round(job_time_s, 4), time_limit, attempts, reason, worker, _now(), __version__,
                 json.dumps(job.document, default=str), json.dumps(result, default=str)))

    def save_failure(self, job, reason: str, time_limit: float | None, attempts: int, worker: str = "") -> None:
        """Record a job that raised or whose worker died (status ``failed``, no
        result); a stored result of the same job is never replaced by a failure."""
        with self.transaction():
            row = self.db.execute("SELECT status FROM jobs WHERE key = ?", (job.key,)).fetchone()
            if row is not None and row["status"] != "failed":
                return
            self.db.execute(
                "INSERT OR REPLACE INTO jobs (key, family, workload, layer, hardware, status, time_limit, attempts, "
                "reason, worker, finished_at, mapcert_version, instance) VALUES (?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?, "
                "?, ?, ?)",
                (job.key, job.family, job.workload, job.layer, job.hardware, time_limit, attempts, reason, worker,
                 _now(), __version__, json.dumps(job.document, default=str)))

    # -- reading ---------------------------------------------------------------

    def sweeps(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM sweeps ORDER BY name"))

    def points(self, sweep: str) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM points WHERE sweep = ? ORDER BY point", (sweep,)))

    def point_values(self, sweep: str) -> dict[int, dict[str, object]]:
        values: dict[int, dict[str, object]] = {}
        for row in self.db.execute("SELECT point, axis, value FROM point_values WHERE sweep = ? ORDER BY rowid",
                                   (sweep,)):
            values.setdefault(row["point"], {})[row["axis"]] = json.loads(row["value"])
        return values

    def rows(self, sweep: str) -> list[sqlite3.Row]:
        """One row per point and part (the ``rows`` view), in point order."""
        return list(self.db.execute("SELECT * FROM rows WHERE sweep = ? ORDER BY point, position", (sweep,)))

    def job_summaries(self, keys: list[str]) -> dict[str, dict]:
        """Status, objective, gap and times of stored jobs (for one line each)."""
        found = {}
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(f"SELECT key, status, objective, objective_name, gap, wall_time_s, attempts, "
                                       f"reason FROM jobs WHERE key IN ({marks})", part):
                found[row["key"]] = {k: row[k] for k in row.keys() if k != "key"}
        return found

    def job_results(self, keys: list[str]) -> dict[str, dict]:
        found = {}
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(f"SELECT key, result FROM jobs WHERE key IN ({marks}) AND result IS NOT NULL",
                                       part):
                found[row["key"]] = json.loads(row["result"])
        return found


def _improves(stored, result: dict) -> bool:
    """Whether ``result`` may replace the stored row: anything replaces a
    failure; a feasible answer never replaces a better feasible one, nor an
    equal one with a tighter bound (a retry must not lose what an earlier
    run found or proved)."""
    if stored is None or stored["status"] in ("failed",):
        return True
    if stored["status"] == "feasible" and result.get("status") == "feasible":
        old, new = stored["objective"], result.get("objective")
        if old is None or new is None:
            return old is None
        if new != old:
            return new < old
        old_bound, new_bound = stored["best_bound"], result.get("best_bound")
        return old_bound is None or (new_bound is not None and new_bound >= old_bound)
    return True


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an exception)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False
