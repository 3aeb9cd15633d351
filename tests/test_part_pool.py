"""A network's distinct parts solved side by side give the serial answer."""

from __future__ import annotations

import pytest

import mapcert
from mapcert.part_pool import part_jobs
from mapcert.pipeline import MethodError, solve
from mapcert.solvers.threads import ENVIRONMENT_VARIABLE

NETWORK = ("family: tiling\nworkload: lenet5\nhardware: chen2020-3level\n"
           "objective: energy\nsolver: {method: cpsat, time_limit: 20}\n")


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "lenet.yaml"
    path.write_text(NETWORK)
    return mapcert.load(path)


def test_parallel_parts_give_the_serial_answer_in_the_parts_order(network):
    import time

    seen = []
    start = time.perf_counter()
    parallel = solve(network, jobs=2, progress=seen.append)
    elapsed = time.perf_counter() - start
    # the network's time is the elapsed time, not the sum of the parts' (they overlap)
    assert max(p.result.wall_time_s for p in parallel.parts) <= parallel.wall_time_s <= elapsed
    serial = solve(network, jobs=1)
    names = [p.name for p in parallel.parts]
    assert names == [p.name for p in serial.parts] and sorted(seen) == sorted(names)
    assert parallel.status == serial.status and parallel.status.value == "optimal"
    assert parallel.objective == serial.objective
    for a, b in zip(parallel.parts, serial.parts):
        assert a.result.solution == b.result.solution  # the canonical optimum, whatever the threads
        assert a.result.certificate.functional.passed is True


def test_a_usage_error_comes_before_any_process_starts(network):
    with pytest.raises(MethodError, match="nosuch"):
        solve(network, method="nosuch", jobs=2)


def test_how_many_parts_at_once(monkeypatch):
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    assert part_jobs(5, 3) == 3
    assert part_jobs(2, 8) == 2
    assert part_jobs(0, 4) == 1
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "1")  # inside a sweep's job: serial, the sweep spreads the jobs
    assert part_jobs(24) == 1
    assert part_jobs(24, 2) == 2  # unless asked for


def test_a_problem_that_cannot_be_sent_to_another_process_is_solved_here(network):
    import copy
    from dataclasses import replace

    from mapcert import pipeline

    family = pipeline.registry.family_of(network)
    parts = [replace(part, problem=copy.copy(part.problem)) for part in family.parts(network)[:2]]
    for part in parts:
        object.__setattr__(part.problem, "_local", lambda: None)  # a lambda cannot be pickled
    assert not pipeline.picklable([part.problem for part in parts])
    results = pipeline._solve_parts(family, parts, None, 20, False, False, 0, None, 2)
    assert [r.status.value for r in results] == ["optimal", "optimal"]


@pytest.mark.parametrize("jobs", [0, -1, 2.5, "2", True])
def test_jobs_must_be_a_whole_number_of_at_least_one(network, jobs):
    with pytest.raises(ValueError, match="jobs must be"):
        solve(network, jobs=jobs)


@pytest.mark.slow  # 8 s; a pool's answer equal to the serial one is tested by default
def test_python_dash_m_mapcert_solves_a_network_side_by_side(tmp_path):
    """End to end, as a user runs it: the command, the pool's processes
    (started from a fork server) and the JSON result."""
    import json
    import subprocess
    import sys

    instance = tmp_path / "net.yaml"
    instance.write_text(NETWORK.replace("energy", "offchip_traffic"))
    done = subprocess.run([sys.executable, "-m", "mapcert", "solve", str(instance), "--jobs", "2", "--json",
                           "--no-functional", "--no-heuristics"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["status"] == "optimal"


@pytest.mark.slow  # 7 s; a pool's answer equal to the serial one is tested by default
def test_a_script_without_a_main_guard_solves_with_a_pool(tmp_path):
    """A user's script that calls ``mapcert.solve`` at its top level, with
    no ``if __name__ == "__main__":``: the MILP's pool processes must not
    run the script again (they once did, died, and the script stopped with
    a broken pipe)."""
    import subprocess
    import sys

    instance = tmp_path / "two_workers.yaml"
    instance.write_text("family: tiling\nworkload: {name: small, dims: {N: 1, M: 16, C: 16, P: 7, Q: 7, R: 3, S: 3}}\n"
                        "hardware: eyeriss\nobjective: energy\nsolver: {method: milp, time_limit: 60, workers: 2}\n")
    script = tmp_path / "unguarded.py"
    script.write_text("import mapcert\n"
                      f"result = mapcert.solve(mapcert.load({str(instance)!r}))\n"
                      "print('RESULT', result.status, result.message)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.count("RESULT") == 1 and "RESULT optimal" in done.stdout, done.stdout
    assert "in 2 processes" in done.stdout, done.stdout


@pytest.mark.slow
def test_a_network_is_verified_side_by_side_with_the_serial_checks(network):
    result = solve(network, jobs=2)
    seen = []
    parallel = mapcert.verify(result, time_limit=20, methods=["cpsat"], jobs=2)
    from mapcert.validation.verify import verify as run_verify

    serial = run_verify(result.to_dict(), time_limit=20, methods=["cpsat"], jobs=1, progress=seen.append, seed=0)
    assert parallel.passed and serial.passed
    assert [c.name for c in parallel.checks] == [c.name for c in serial.checks]
    assert any(f"(1/{len(result.parts)}): re-proving with cpsat" in what for what in seen)


def test_a_tampered_layer_of_a_network_is_named_when_verified_side_by_side(network):
    result = solve(network, jobs=2, functional=False)
    tampered = result.to_dict()
    tampered["parts"][1]["result"]["objective"] *= 0.9
    failed = {c.name: c.detail for c in mapcert.verify(tampered, time_limit=20, methods=["cpsat"], jobs=2).checks
              if not c.passed}
    assert f"parts[{result.parts[1].name}].objective: equals evaluate of the solution" in failed
    # the network's total, re-added from the tampered layer, differs from the (right) stored one:
    # the check names the layer that failed its own checks instead of leaving the total to blame
    assert "objective: re-derived from the layers" in failed
    assert f"{result.parts[1].name} failed its own checks above" in failed["objective: re-derived from the layers"]
    assert "{'" not in " ".join(failed.values())  # records are printed as key=value, not as raw dicts


def test_a_layer_list_moved_between_distinct_layers_fails_verify(network):
    """`same_shape` says which layers of the network a distinct layer stands
    for: a result that credits them to another layer does not verify."""
    result = solve(network, jobs=1, functional=False, heuristics=False)
    tampered = result.to_dict()
    first, last = tampered["parts"][0], tampered["parts"][-1]
    first["same_shape"], last["same_shape"] = last["same_shape"] or [last["name"]], first["same_shape"] or [first["name"]]
    assert tampered != result.to_dict()
    failed = [c.name for c in mapcert.verify(tampered, time_limit=20, methods=["cpsat"], jobs=1).checks
              if not c.passed]
    assert "parts: the layers each distinct layer stands for (same_shape)" in failed


@pytest.fixture(scope="module")
def solved(network):
    return solve(network, jobs=1, functional=False, heuristics=False)


@pytest.mark.parametrize("jobs", [0, 1.5, True])
def test_verify_checks_its_jobs(solved, jobs):
    with pytest.raises(ValueError, match="jobs must be"):
        mapcert.verify(solved, methods=["cpsat"], jobs=jobs)


SPIN_MODULE = """
import os, time

def pid_then_spin(seconds):
    print(os.getpid(), flush=True)
    end = time.time() + seconds
    while time.time() < end:
        pass
"""
"""A pool's task lives in a module: its processes do not import the main script."""

POOL_SCRIPT = """
import time
from mapcert.part_pool import part_pool
from spin import pid_then_spin

if __name__ == "__main__":
    with part_pool(2) as pool:
        for _ in range(2):
            pool.submit(pid_then_spin, 120)
        time.sleep(120)
"""


def test_pool_processes_end_with_the_process_that_started_them(tmp_path):
    """A killed mapcert (SIGTERM from a job scheduler) must not leave its
    pool solving: each pool process watches its parent and exits with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    (tmp_path / "spin.py").write_text(SPIN_MODULE)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(parent.stdout.readline()) for _ in range(2)]
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie waiting for its (now gone) parent to reap it is dead too
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ")[-1][:1] != "Z"
        except OSError:
            return False
        return True

    deadline = time.time() + 20
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids), "pool processes outlived their parent"


def test_side_by_side_runs_the_next_phase_with_what_the_last_one_taught():
    """``then`` is asked for more items each time everything sent is
    answered; the next phase sees every result of the one before."""
    import time

    from mapcert.part_pool import side_by_side

    results: dict = {}
    phases = [lambda: [("square", sum(results.values()))], lambda: []]
    left = side_by_side([("square", 2), ("square", 3)], pow, lambda item: (item[1], 2),
                        lambda item, value: results.__setitem__(item, value), time.perf_counter() + 60, 2,
                        then=lambda: phases.pop(0)())
    assert left == [] and not phases
    assert results == {("square", 2): 4, ("square", 3): 9, ("square", 13): 169}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_a_network_solve_at_once_and_says_so(tmp_path, jobs):
    """Ctrl-C in a terminal (SIGINT to the process group) during a network's
    solve stops it within a second or two, one layer at a time or side by
    side: the native solver is told to stop rather than catching the signal
    itself (CP-SAT then ended its search as at a time-out, the solve went on
    to the next layer and saved its result), the pool's processes end, and
    the command says it was interrupted (exit 130) and writes nothing."""
    import subprocess
    import sys
    import time

    from helpers import interrupt_group

    instance = tmp_path / "r50.yaml"
    instance.write_text("family: tiling\nworkload: resnet50\nhardware: eyeriss\nobjective: energy\n")
    out = tmp_path / "result.yaml"
    driver = subprocess.Popen([sys.executable, "-m", "mapcert", "solve", str(instance), "--jobs", jobs, "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(7)  # started, and solving layers
    assert driver.poll() is None, driver.communicate()
    _, err, waited = interrupt_group(driver)
    assert driver.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "terminate called" not in err, err
    assert waited < 5, waited
    assert not out.exists()
