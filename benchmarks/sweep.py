"""Sweep execution: serial against a Dask LocalCluster of 1 and 2 workers,
and a rerun from a full store.

Two sweeps, each run in a fresh store per configuration:

- *solve*: every distinct conv layer of ResNet-18 on the ``eyeriss``
  hierarchy (energy); real jobs of a few seconds each;
- *tiny*: 40 small two-level layers (a few milliseconds of solving each), so
  that what is measured is the cost of a job around its solve: planning,
  shipping the instance to a worker, storing the result.

Every configuration gives each job one solver thread (``--threads 1``, the
sweep's default), so the serial and parallel runs do the same work.  The
Dask runs include starting and stopping the cluster, reported on its own.

Prints, per configuration: the wall time (median over ``--repeats``), the
speed-up over serial, and the overhead per job, ``(workers x (wall -
cluster start) - sum of the jobs' own times) / jobs``: the worker-seconds
not spent solving, per job.  On the *tiny* sweep that is the cost of a job
around its solve; on the *solve* sweep with 2 workers it is mostly one
worker waiting for the other's last job (12 jobs of unequal length do not
split evenly).  With ``--resnet50 STORE`` it also
times a fully cached rerun of examples/sweep_resnet50_glb.yaml from that
store (a store ``mapcert sweep`` filled).

Run: ``python benchmarks/sweep.py [--repeats 3] [--resnet50 examples/sweep_resnet50_glb.db]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from mapcert.sweeps import runner
from mapcert.sweeps.spec import load_sweep
from mapcert.sweeps.store import Store

ROOT = Path(__file__).resolve().parents[1]

SOLVE = {"sweep": "solve",
         "base": {"family": "tiling", "workload": "resnet18", "hardware": "eyeriss", "objective": "energy",
                  "solver": {"method": "cpsat", "time_limit": 120}},
         "axes": {"hardware.levels[GLB].scale": [1]}}

TINY = {"sweep": "tiny",
        "base": {"family": "tiling",
                 "workload": {"name": "tiny", "dims": {"N": 1, "M": 8, "C": 4, "P": 4, "Q": 4, "R": 3, "S": 3}},
                 "hardware": {"levels": [{"name": "DRAM"}, {"name": "GLB", "capacity": 512}]},
                 "objective": "offchip_traffic", "solver": {"method": "cpsat", "time_limit": 30}},
        "axes": {"workload.dims.M": [4, 8, 12, 16, 20, 24, 28, 32], "hardware.levels[GLB].capacity": [256, 384, 512,
                                                                                                     768, 1024]}}


def cluster_start(workers: int) -> float:
    """Seconds to start and stop a LocalCluster of ``workers`` (no jobs)."""
    import logging

    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.CRITICAL)
    client = Client(cluster)
    client.close()
    cluster.close()
    return time.perf_counter() - start


def run_once(document: dict, folder: Path, executor, keep_store: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, sum of the jobs' own seconds, jobs) of one sweep in a fresh store."""
    path = folder / f"{document['sweep']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    db = keep_store or folder / f"{document['sweep']}-{time.monotonic_ns()}.db"
    start = time.perf_counter()
    sweep = load_sweep(path)
    with Store(db) as store:
        plan = runner.plan(sweep, store)
        store.save_sweep(sweep.name, str(path), sweep.axes, sweep.spec.model_dump(), plan.points)
        summary = runner.run(plan, store, executor, runner.Settings(threads=1))
        wall = time.perf_counter() - start
        jobs = store.db.execute("SELECT COALESCE(SUM(job_time_s), 0), COUNT(*) FROM jobs").fetchone()
    assert summary.failed == 0, f"{summary.failed} jobs failed"
    return wall, float(jobs[0]), summary.solved


def measure(document: dict, repeats: int, folder: Path) -> list[tuple]:
    rows = []
    configurations = [("serial (one process)", lambda: runner.SerialExecutor(), 0),
                      ("LocalCluster, 1 worker", lambda: runner.DaskExecutor(workers=1), 1),
                      ("LocalCluster, 2 workers", lambda: runner.DaskExecutor(workers=2), 2)]
    serial = None
    for name, make, workers in configurations:
        walls, own, count = [], [], 0
        for _ in range(repeats):
            wall, jobs_time, count = run_once(document, folder, make())
            walls.append(wall)
            own.append(jobs_time)
        startup = statistics.median(cluster_start(workers) for _ in range(repeats)) if workers else 0.0
        wall = statistics.median(walls)
        serial = serial or wall
        per_job = (wall * max(1, workers) - startup * max(1, workers) - statistics.median(own)) / max(1, count)
        rows.append((name, count, wall, startup, serial / wall, per_job))
    cached = folder / "cached.db"
    run_once(document, folder, runner.SerialExecutor(), keep_store=cached)
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_once(document, folder, runner.DaskExecutor(workers=2), keep_store=cached)
        walls.append(time.perf_counter() - start)
    rows.append(("rerun from a full store", 0, statistics.median(walls), 0.0, serial / statistics.median(walls),
                 float("nan")))
    return rows


def cached_resnet50(store: Path, repeats: int) -> float:
    """Median seconds of a fully cached rerun of the ResNet-50 example sweep."""
    sweep = load_sweep(ROOT / "examples" / "sweep_resnet50_glb.yaml")
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.db"
        shutil.copy(store, copy)
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            sweep = load_sweep(ROOT / "examples" / "sweep_resnet50_glb.yaml")
            with Store(copy) as opened:
                plan = runner.plan(sweep, opened)
                opened.save_sweep(sweep.name, str(sweep.path), sweep.axes, sweep.spec.model_dump(), plan.points)
                if plan.todo:
                    raise SystemExit(f"{store}: {len(plan.todo)} of {plan.total} jobs are not stored; run the "
                                     f"example sweep to the end first")
            walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resnet50", type=Path, help="a full store of examples/sweep_resnet50_glb.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for label, document in (("solve: ResNet-18 on eyeriss, energy", SOLVE),
                                ("tiny: 40 small two-level layers", TINY)):
            rows = measure(document, args.repeats, Path(folder))
            print(f"\n{label} (median of {args.repeats})")
            print(f"{'configuration':26} {'jobs':>5} {'wall s':>8} {'cluster s':>10} {'speed-up':>9} "
                  f"{'overhead/job s':>15}")
            for name, jobs, wall, startup, speedup, per_job in rows:
                print(f"{name:26} {jobs:5d} {wall:8.2f} {startup:10.2f} {speedup:8.2f}x "
                      f"{'-' if per_job != per_job else f'{per_job:.3f}':>15}")
    if args.resnet50:
        print(f"\nResNet-50 example sweep, fully cached rerun: {cached_resnet50(args.resnet50, args.repeats):.2f} s "
              f"(median of {args.repeats})")


if __name__ == "__main__":
    main()
