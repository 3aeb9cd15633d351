"""Sweeps under faults, run as a user would (``python -m mapcert sweep`` in
its own process): the driver killed mid-sweep, a Dask worker dying mid-job,
a job that raises, and a separately started scheduler and worker.

The jobs are tiny knapsacks of tests/faulty_family.py, a plug-in family
whose solve sleeps, raises or kills its process on request; the worker
processes find it through ``MAPCERT_FAMILIES`` and ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import interrupt_group

TESTS = Path(__file__).resolve().parent
ITEMS = [{"name": "a", "weight": 3, "value": 4}, {"name": "b", "weight": 4, "value": 5},
         {"name": "c", "weight": 2, "value": 3}]


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MAPCERT_FAMILIES"] = "faulty_family"
    return env


def write_sweep(folder: Path, names: list[str], fault: str = "none", seconds: float = 0.0, **base) -> Path:
    document = {"family": "faulty", "name": "bag", "capacity": 5, "items": ITEMS, "fault": fault,
                "seconds": seconds, **base}
    path = folder / "faults.yaml"
    path.write_text(yaml.safe_dump({"sweep": "faults", "base": document, "axes": {"name": names}},
                                   sort_keys=False))
    return path


def sweep(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mapcert", "sweep", *args, "--json"], capture_output=True,
                          text=True, env=environment(), timeout=timeout)


def events(done: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def stored(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT key, status, attempts, reason FROM jobs ORDER BY key").fetchall()


def test_a_killed_driver_loses_only_jobs_in_flight_and_a_rerun_finishes_each_job_once(tmp_path):
    names = [f"bag{i}" for i in range(6)]
    path = write_sweep(tmp_path, names, seconds=0.5)
    db = tmp_path / "faults.db"
    driver = subprocess.Popen([sys.executable, "-m", "mapcert", "sweep", str(path), "--workers", "1", "--json"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment(),
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if db.exists() and driver.poll() is None:
                try:
                    if len(stored(db)) >= 2:
                        break
                except sqlite3.OperationalError:
                    pass  # the store is being created
            assert driver.poll() is None, driver.stderr.read().decode()
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # the cluster's workers the driver left behind
        except ProcessLookupError:
            pass
    before = stored(db)
    assert 2 <= len(before) < len(names)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    done = sweep(str(path), "--serial")
    assert done.returncode == 0, done.stderr
    summary = events(done)[-1]
    assert summary["reused"] == len(before) and summary["solved"] == len(names) - len(before)
    after = stored(db)
    assert len(after) == len(names) == len({row[0] for row in after})
    assert {row[1] for row in after} == {"optimal"}
    assert all(row in after for row in before)  # what was stored is kept as it was


@pytest.mark.slow  # 12.5 s; a killed driver and a raising job run by default
def test_a_worker_killed_mid_job_is_survived_and_a_job_that_always_kills_is_recorded(tmp_path):
    marker = tmp_path / "killed-once"
    base = write_sweep(tmp_path, ["steady"])
    document = yaml.safe_load(base.read_text())
    document["axes"] = {"name": ["steady1", "once", "always", "steady2"]}
    document["zip"] = [["name", "fault"]]
    document["axes"]["fault"] = ["none", "kill-once", "kill", "none"]
    document["base"]["marker"] = str(marker)
    base.write_text(yaml.safe_dump(document, sort_keys=False))
    done = sweep(str(base), "--workers", "2", "--retries", "1")
    assert done.returncode == 1, done.stderr  # one job failed; the sweep itself ended normally
    assert "Traceback" not in done.stderr
    assert marker.exists()
    jobs = {e["layer"]: e for e in events(done) if e["event"] == "job"}
    assert jobs["once"]["status"] == "optimal"
    assert jobs["steady1"]["status"] == jobs["steady2"]["status"] == "optimal"
    assert jobs["always"]["status"] == "failed" and "worker running it died" in jobs["always"]["reason"]
    rows = stored(tmp_path / "faults.db")
    assert sorted(r[1] for r in rows) == ["failed", "optimal", "optimal", "optimal"]


@pytest.mark.parametrize("mode", [pytest.param("--serial", marks=pytest.mark.slow), "--workers=1"])
def test_a_job_that_raises_is_recorded_with_its_reason_and_the_sweep_ends(tmp_path, mode):
    path = write_sweep(tmp_path, ["good", "bad"])
    document = yaml.safe_load(path.read_text())
    document["axes"]["fault"] = ["none", "raise"]
    document["zip"] = [["name", "fault"]]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    done = sweep(str(path), mode, "--retries", "1")
    assert done.returncode == 1, done.stderr
    jobs = {e["layer"]: e for e in events(done) if e["event"] == "job"}
    assert jobs["good"]["status"] == "optimal"
    assert jobs["bad"]["status"] == "failed" and "RuntimeError: injected fault in bad" in jobs["bad"]["reason"]
    assert jobs["bad"]["attempts"] == 2
    summary = events(done)[-1]
    assert summary["event"] == "sweep" and summary["statuses"] == {"optimal": 1, "failed": 1}
    table = subprocess.run([sys.executable, "-m", "mapcert", "results", str(tmp_path / "faults.db")],
                           capture_output=True, text=True, env=environment())
    assert table.returncode == 0 and "failed" in table.stdout
    again = sweep(str(path), "--serial", "--retries", "0")  # a failed job is tried again on a rerun
    assert events(again)[-1]["reused"] == 1 and events(again)[-1]["statuses"]["failed"] == 1


@pytest.mark.slow  # about 9 s of process start-up; the local cluster of the other tests runs the same code
def test_a_separately_started_scheduler_and_worker_are_used(tmp_path):
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    started = []
    try:
        started.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment(),
                                        start_new_session=True))
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        started.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment(),
                                        start_new_session=True))
        path = write_sweep(tmp_path, ["x", "y", "z"])
        deadline = time.time() + 60
        while True:  # the worker takes a moment to register
            done = sweep(str(path), "--scheduler", address)
            if done.returncode != 2 or "no workers" not in done.stderr or time.time() > deadline:
                break
            time.sleep(0.5)
        assert done.returncode == 0, done.stderr
        jobs = [e for e in events(done) if e["event"] == "job"]
        assert len(jobs) == 3 and {j["status"] for j in jobs} == {"optimal"}
        assert all(j["worker"] for j in jobs)
    finally:
        for process in started:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_ctrl_c_stops_the_sweep_and_stores_nothing_after_it(tmp_path):
    path = write_sweep(tmp_path, ["first", "second", "third"], seconds=3.0)
    driver = subprocess.Popen([sys.executable, "-m", "mapcert", "sweep", str(path), "--serial"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
    time.sleep(5)  # mapcert starts, the first job sleeps in its solve
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, err
    assert "interrupted (SIGINT)" in err and "Run the same command again" in err and "Traceback" not in err
    assert len(stored(tmp_path / "faults.db")) <= 1  # at most the job that finished before Ctrl-C


@pytest.mark.slow
def test_an_unreachable_scheduler_is_a_clear_input_error(tmp_path):
    path = write_sweep(tmp_path, ["x"])
    done = sweep(str(path), "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2 and "cannot reach the scheduler" in done.stderr and "dask scheduler" in done.stderr


def test_ctrl_c_in_a_terminal_stops_a_dask_sweep_without_a_worker_traceback(tmp_path):
    """Ctrl-C in a terminal signals the whole process group, the local
    cluster's worker processes too: they must leave the stopping to the
    driver, which says what was kept, with no traceback of their own."""
    path = write_sweep(tmp_path, ["first", "second", "third"], seconds=3.0)
    driver = subprocess.Popen([sys.executable, "-m", "mapcert", "sweep", str(path), "--workers", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                              start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None:  # the workers run once a job has started
        if any("spawn_main" in " ".join(p) for p in _children_commands(driver.pid)):
            break
        time.sleep(0.2)
    time.sleep(4)
    _, err, _ = interrupt_group(driver)
    assert driver.returncode == 130, err
    assert "interrupted (SIGINT)" in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err


def _children_commands(pid: int) -> list[list[str]]:
    """The command lines of the processes in ``pid``'s process group."""
    commands = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pid:
                commands.append((entry / "cmdline").read_bytes().decode(errors="replace").split("\0"))
        except (OSError, ProcessLookupError):
            continue
    return commands
