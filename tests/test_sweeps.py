"""Sweeps: expansion, the results store, reuse, and agreement with `mapcert solve`.

The fault tests (a killed driver, a dying worker, a job that raises, a
separately started Dask scheduler) are in tests/test_sweep_faults.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from helpers import lenet_sweep, run_mapcert
from mapcert.instances import InstanceError, load_document
from mapcert.pipeline import solve
from mapcert.sweeps import runner, tables
from mapcert.sweeps.jobs import job_key
from mapcert.sweeps.spec import load_sweep
from mapcert.sweeps.store import Store, StoreError

LAYER = {"name": "small", "op": "conv2d", "dims": {"N": 1, "M": 16, "C": 8, "P": 8, "Q": 8, "R": 3, "S": 3},
         "precision": {"inputs": 8, "weights": 8, "outputs": 8, "psums": 24}}
BASE = {"family": "tiling", "workload": LAYER,
        "hardware": {"levels": [{"name": "DRAM"}, {"name": "GLB", "capacity": "2 KiB"}]},
        "objective": "offchip_traffic", "solver": {"method": "cpsat", "time_limit": 30}}


def write_sweep(folder: Path, axes: dict, name: str = "t", **extra) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"sweep": name, "base": BASE, "axes": axes, **extra}, sort_keys=False))
    return path


# -- expansion ----------------------------------------------------------------


def test_product_zip_and_exclude(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "2 KiB", "4 KiB"],
                                  "solver.method": ["cpsat", "milp"],
                                  "workload.dims.M": [8, 16, 32]},
                       zip=[["hardware.levels[GLB].capacity", "workload.dims.M"]],
                       exclude=[{"solver.method": "milp", "workload.dims.M": [8, 32]}])
    sweep = load_sweep(path)
    assert sweep.excluded == 2
    assert [(p.values["hardware.levels[GLB].capacity"], p.values["workload.dims.M"], p.values["solver.method"])
            for p in sweep.points] == [("1 KiB", 8, "cpsat"), ("2 KiB", 16, "cpsat"), ("2 KiB", 16, "milp"),
                                       ("4 KiB", 32, "cpsat")]
    point = sweep.points[2]
    assert point.document["hardware"]["levels"][1]["capacity"] == "2 KiB"
    assert point.document["workload"]["dims"]["M"] == 16
    assert point.document["solver"]["method"] == "milp"
    assert BASE["workload"]["dims"]["M"] == 16 and sweep.points[0].document["workload"]["dims"]["M"] == 8


def test_a_path_inside_a_preset_expands_it_and_scale_multiplies_sizes(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""\
        base: {family: tiling, workload: resnet18.layer4.0.conv2, hardware: eyeriss, objective: energy}
        axes:
          hardware: [eyeriss, simba-pe]
          hardware.levels[1].scale: [0.5, 2]
        """))
    sweep = load_sweep(path)
    assert sweep.name == "s"
    glb = [p.document["hardware"]["levels"][1] for p in sweep.points]
    assert glb[0]["name"] == "GLB" and glb[0]["capacity"] == 108 * 1024 // 2
    assert glb[1]["capacity"] == 108 * 1024 * 2
    assert glb[2]["name"] == "PEBuffer" and glb[2]["partition"] == {"inputs": 4096, "weights": 16384, "outputs": 1536}
    assert glb[3]["partition"]["weights"] == 65536


@pytest.mark.parametrize("text, expected", [
    ("base: {family: tiling}\naxes: {objective: [energy]}\n", "s.yaml:1: base"),
    ("base: nothere.yaml\naxes: {objective: [energy]}\n", "nothere.yaml: no such instance file"),
    ("base: BASE\naxes:\n  hardware.levels[L3].capacity: [1 KiB]\n", "no entry named 'L3'; the names are DRAM, GLB"),
    ("base: BASE\naxes:\n  hardware.levels[7].capacity: [1 KiB]\n", "there are 2 entries"),
    ("base: BASE\naxes: {objective: []}\n", "at least one value"),
    ("base: BASE\naxes: {objective: [energy], solver.method: [cpsat]}\nzip: [[objective, nope]]\n", "nope: not an axis"),
    ("base: BASE\naxes: {objective: [energy, latency], solver.method: [cpsat]}\nzip: [[objective, solver.method]]\n",
     "same length"),
    ("base: BASE\naxes: {objective: [energy]}\nexclude: [{colour: red}]\n", "exclude[0].colour: not an axis"),
    ("base: BASE\naxes: {objective: [energy]}\nexclude: [{objective: energy}]\n", "every point is excluded"),
    ("base: BASE\naxes: {objective: [energy]}\nworkers: 3\n", "workers"),
    ("base: BASE\naxes:\n  hardware.levels[GLB].capacity: [1 KiB, lots]\n",
     "(point 1: hardware.levels[GLB].capacity=lots)"),
    ("family: tiling\nworkload: vgg16.conv1_1\nhardware: eyeriss\n", "this is an instance, not a sweep"),
    ("base: BASE\naxes:\n  hardware.levels[GLB].capacity.scale: [0]\n", "positive number"),
    ("- just\n- a list\n", "a mapping with base and axes"),
])
def test_bad_sweep_files_are_refused_with_the_line(tmp_path, text, expected):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("BASE", "base.yaml"))
    with pytest.raises(InstanceError) as info:
        load_sweep(path)
    assert expected in str(info.value)
    done = run_mapcert("sweep", str(path), "--serial")
    assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr


def test_every_problem_of_a_sweep_file_is_said_in_one_run(tmp_path):
    """A bad setting, an axis that names no level and bad values of the
    other axes: all of them at once, each at its line, instead of one
    stage per run."""
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    path = tmp_path / "s.yaml"
    path.write_text("base: base.yaml\naxes:\n  hardware.levels[L3].capacity: [1 KiB]\n"
                    "  hardware.levels[GLB].capacity: [1 KiB, lots]\n  objective: [energy, speed]\n"
                    "retries: 50\nextra: 1\nzip: [[objective]]\nexclude: [{nope: 1}]\n")
    with pytest.raises(InstanceError) as info:
        load_sweep(path)
    text = str(info.value)
    for expected in ("s.yaml:6: retries", "s.yaml:7: extra", "s.yaml:8: zip[0]", "s.yaml:9: exclude[0].nope",
                     "s.yaml:3: axes.hardware.levels[L3].capacity",
                     "s.yaml:4: hardware.levels", "'lots'", "s.yaml:5: objective", "'speed'"):
        assert expected in text, text


def test_job_identity_is_the_instance_not_the_time_limit():
    a = load_document(BASE)
    from mapcert.formulations import registry

    doc = registry.family_of(a).dump(a)
    other = json.loads(json.dumps(doc))
    other["solver"]["time_limit"] = 999
    assert job_key(doc) == job_key(other)
    other["hardware"]["levels"][1]["capacity"] = 4096
    assert job_key(doc) != job_key(other)
    assert job_key(doc) != job_key(doc, version="0.0.0")


# -- running and the store ------------------------------------------------------


def _run(path: Path, db: Path, **settings) -> runner.RunSummary:
    sweep = load_sweep(path)
    with Store(db) as store:
        plan = runner.plan(sweep, store, retry_feasible=settings.pop("retry_feasible", False))
        store.save_sweep(sweep.name, str(path), sweep.axes, sweep.spec.model_dump(), plan.points)
        return runner.run(plan, store, runner.SerialExecutor(), runner.Settings(**settings))


def test_results_equal_serial_solve_and_a_rerun_solves_nothing(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "4 KiB"],
                                  "solver.method": ["cpsat", "milp"]})
    db = tmp_path / "t.db"
    first = _run(path, db)
    assert (first.total, first.solved, first.reused) == (4, 4, 0)
    again = _run(path, db)
    assert (again.solved, again.reused) == (0, 4)
    with Store(db, readonly=True) as store:
        summaries = tables.point_summaries(store, "t")
        rows = tables.job_rows(store, "t")
    assert [s.status for s in summaries] == ["optimal"] * 4
    for s, point in zip(summaries, load_sweep(path).points):
        direct = solve(load_document(point.document))
        assert s.objective == direct.objective and s.lower_bound == direct.lower_bound
    stored = {r["key"]: r for r in rows}
    with sqlite3.connect(db) as connection:
        count = connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        result = json.loads(connection.execute("SELECT result FROM jobs LIMIT 1").fetchone()[0])
    assert count == len(stored) == 4
    assert result["format"] == "mapcert-result/2" and result["certificate"]["functional"]["ran"]
    # the two methods agree on every capacity
    by_capacity = {}
    for s in summaries:
        by_capacity.setdefault(s.values["hardware.levels[GLB].capacity"], set()).add(s.objective)
    assert all(len(v) == 1 for v in by_capacity.values())


@pytest.mark.slow
def test_a_network_point_totals_equal_solve_on_the_network(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(lenet_sweep("net", ["2 KiB", "4 KiB"]))
    db = tmp_path / "net.db"
    summary = _run(path, db)
    with Store(db, readonly=True) as store:
        points = tables.point_summaries(store, "net")
    network = solve(load_document(load_sweep(path).points[1].document))
    assert points[1].objective == network.objective
    assert points[1].lower_bound == network.lower_bound
    assert points[1].layers == network.metrics["layers"] and points[1].distinct == len(network.parts)
    assert summary.total == sum(p.distinct for p in points)


def test_feasible_jobs_are_kept_unless_retried_and_proved_ones_are_never_touched(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "4 KiB"]})
    db = tmp_path / "t.db"
    _run(path, db)
    with sqlite3.connect(db) as connection:
        keys = [k for (k,) in connection.execute("SELECT key FROM jobs ORDER BY key")]
        connection.execute("UPDATE jobs SET status = 'feasible' WHERE key = ?", (keys[0],))
        proved_at = connection.execute("SELECT finished_at, result FROM jobs WHERE key = ?", (keys[1],)).fetchone()
    assert _run(path, db).solved == 0
    retried = _run(path, db, retry_feasible=True, time_limit=60)
    assert retried.solved == 1
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT status, time_limit FROM jobs WHERE key = ?", (keys[0],)).fetchone() == \
            ("optimal", 60.0)
        assert connection.execute("SELECT finished_at, result FROM jobs WHERE key = ?", (keys[1],)).fetchone() == \
            proved_at


def test_the_summary_table_reads_on_an_80_column_terminal(tmp_path):
    from mapcert import cli
    from mapcert.cli.sweeps import axis_label

    assert axis_label("hardware.levels[GLB].capacity") == "GLB capacity"
    assert axis_label("workload.dims.M") == "M" and axis_label("objective") == "objective"
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "4 KiB"],
                                  "objective": ["offchip_traffic"]})
    assert run_mapcert("sweep", str(path), "--serial", "--json").returncode == 0
    before = cli.out.width
    cli.out.width = 80
    try:
        done = run_mapcert("results", str(tmp_path / "t.db"))
    finally:
        cli.out.width = before
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    # the one-valued axis is said once above the table; status and values are never broken across lines
    assert "objective = offchip_traffic" in done.stdout
    table = done.stdout.split("* best point")[0]  # the full axis path is only in the best point's line
    assert "GLB capacity" in table and "hardware.levels[GLB].capacity" not in table
    assert sum("optimal" in line for line in lines) == 2 and "optimal *" in done.stdout
    assert "2.91 KiB" in done.stdout and "0.0%" in done.stdout


def test_the_cli_sweeps_exports_and_filters(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "4 KiB"],
                                  "objective": ["offchip_traffic"]})
    done = run_mapcert("sweep", str(path), "--serial", "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["job", "job", "sweep"]
    assert all(line["status"] == "optimal" for line in lines[:2])
    db = tmp_path / "t.db"
    assert db.exists()
    done = run_mapcert("results", str(db), "--where", "hardware.levels[GLB].capacity=4 KiB",
                       "--csv", str(tmp_path / "r.csv"), "--parquet", str(tmp_path / "r.parquet"))
    assert done.returncode == 0, done.stderr
    assert "optimal *" in done.stdout and "best point: #1" in done.stdout
    text = (tmp_path / "r.csv").read_text().splitlines()
    assert len(text) == 2 and "axis.objective" in text[0] and "4 KiB" in text[1]
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == 1 and table.column("status").to_pylist() == ["optimal"]
    again = run_mapcert("results", str(db), "--csv", str(tmp_path / "r.csv"))
    assert again.returncode == 2 and "--force" in again.stderr
    onto_store = run_mapcert("results", str(db), "--csv", str(db), "--force")  # the store is never an export's file
    assert onto_store.returncode == 2 and "is an input of this command" in onto_store.stderr
    bad = run_mapcert("results", str(db), "--where", "colour=red")
    assert bad.returncode == 2 and "unknown field 'colour'" in bad.stderr
    jobs = run_mapcert("results", str(db), "--jobs")
    assert jobs.returncode == 0 and "small" in jobs.stdout
    # in an 80-column terminal: the axis under its short name (the path above), one line per job, no empty
    # reason column
    narrow = subprocess.run([sys.executable, "-m", "mapcert", "results", str(db), "--jobs"], capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert "GLB capacity: hardware.levels[GLB].capacity" in narrow.stdout and "reason" not in narrow.stdout
    rows = [line for line in narrow.stdout.splitlines() if "optimal" in line]
    assert len(rows) == 2 and all("KiB" in row and "small" in row for row in rows)
    assert max(len(line.rstrip()) for line in narrow.stdout.splitlines()) <= 80
    rerun = run_mapcert("sweep", str(path), "--serial")
    assert rerun.returncode == 0 and "2 from the store, 0 solved" in rerun.stdout


@pytest.mark.parametrize("content", [b"hello, this is my thesis\n", "sqlite-foreign", "sqlite-damaged"])
def test_a_foreign_or_damaged_database_is_refused_and_left_untouched(tmp_path, content):
    db = tmp_path / "mine.db"
    if content == "sqlite-foreign":
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
            connection.execute("INSERT INTO invoices VALUES (1, 9.5)")
    elif content == "sqlite-damaged":
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE t (x)")
            connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
        data = bytearray(db.read_bytes())
        data[4096:8192] = b"\xff" * 4096
        db.write_bytes(bytes(data))
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB"]})
    for args in (("sweep", str(path), "--serial", "--db", str(db)), ("results", str(db)),
                 ("plot", str(db), "-o", str(tmp_path / "p.png"))):
        done = run_mapcert(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "left untouched" in done.stderr or "not a" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert db.read_bytes() == before
    assert not (tmp_path / "mine.db-wal").exists()
    with pytest.raises(StoreError):
        Store(db)


def test_every_family_sweeps_the_same_way(tmp_path):
    """One sweep per registered family over its exact methods: every point
    stored, and the methods agree."""
    from mapcert.formulations import registry
    from mapcert.pipeline import method_names

    for family in registry.families():
        examples = family.examples()
        if not examples:
            continue
        document = yaml.safe_load(examples[0])
        problem = load_document(document)
        methods = [m for m in method_names(family, problem)
                   if m in {x.name for x in family.methods(problem) if x.solves}]
        if "solver" not in family.dump(problem):  # a family without a solver section (the toy family)
            methods = methods[:1]
            axes = {"family": [document["family"]]}
        else:
            axes = {"solver.method": methods}
        path = tmp_path / f"{family.key or family.name}.yaml"
        path.write_text(yaml.safe_dump({"base": document, "axes": axes}, sort_keys=False))
        db = tmp_path / f"{family.key or family.name}.db"
        summary = _run(path, db)
        assert summary.failed == 0, family.name
        with Store(db, readonly=True) as store:
            points = tables.point_summaries(store, path.stem)
        assert len(points) == len(methods)
        objectives = {p.objective for p in points}
        assert len(objectives) == 1 and all(p.status == "optimal" for p in points), (family.name, points)


EXAMPLE_SWEEPS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("sweep_*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_SWEEPS, ids=[p.stem for p in EXAMPLE_SWEEPS])
def test_the_example_sweeps_expand(path, tmp_path):
    done = run_mapcert("sweep", str(path), "--dry-run", "--db", str(tmp_path / "x.db"))
    assert done.returncode == 0, done.stderr
    assert "to solve" in done.stdout and not (tmp_path / "x.db").exists()


def test_another_sweep_file_under_a_stored_name_is_refused(tmp_path):
    first = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB"]})
    other = tmp_path / "elsewhere"
    other.mkdir()
    second = write_sweep(other, {"hardware.levels[GLB].capacity": ["4 KiB"]})
    db = tmp_path / "shared.db"
    ran = run_mapcert("sweep", str(first), "--serial", "--db", str(db))
    assert ran.returncode == 0 and "(point 0)" in ran.stderr  # each job's log line names its point
    dry = run_mapcert("sweep", str(second), "--dry-run", "--db", str(db))  # a dry run says what the run would
    assert dry.returncode == 2 and "already holds a sweep named 't'" in dry.stderr
    done = run_mapcert("sweep", str(second), "--serial", "--db", str(db))
    assert done.returncode == 2 and "already holds a sweep named 't'" in done.stderr
    with Store(db, readonly=True) as store:
        assert [s.values for s in tables.point_summaries(store, "t")] == [{"hardware.levels[GLB].capacity": "1 KiB"}]


def test_a_store_of_another_schema_is_refused(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB"]})
    db = tmp_path / "t.db"
    assert run_mapcert("sweep", str(path), "--serial").returncode == 0
    with sqlite3.connect(db) as connection:
        connection.execute("ALTER TABLE jobs DROP COLUMN job_time_s")
    before = db.read_bytes()
    done = run_mapcert("results", str(db))
    assert done.returncode == 2 and "another mapcert version (table jobs lacks job_time_s)" in done.stderr
    assert db.read_bytes() == before


def test_filters_compare_sizes_as_values_and_say_when_nothing_matches(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "4 KiB"]})
    assert run_mapcert("sweep", str(path), "--serial").returncode == 0
    db = tmp_path / "t.db"
    for i, value in enumerate(("4KiB", "4096", "4 KiB")):
        out = tmp_path / f"{i}.csv"
        done = run_mapcert("results", str(db), "--where", f"hardware.levels[GLB].capacity={value}", "--csv", str(out))
        assert done.returncode == 0, (value, done.stderr)
        lines = out.read_text().splitlines()
        assert len(lines) == 2 and ",4 KiB," in lines[1], (value, lines)
    none = run_mapcert("results", str(db), "--where", "hardware.levels[GLB].capacity=2 KiB")
    assert none.returncode == 2 and "no row has it" in none.stderr and "1 KiB, 4 KiB" in none.stderr
    layer = run_mapcert("results", str(db), "--where", "layer=small", "--csv", str(tmp_path / "l.csv"))
    assert layer.returncode == 0, layer.stderr
    bad = run_mapcert("results", str(db), "--csv", str(tmp_path / "missing" / "x.csv"))
    assert bad.returncode == 2 and "cannot write: the folder" in bad.stderr and "Traceback" not in bad.stderr


def test_an_axis_a_later_axis_overwrites_is_warned_about(tmp_path):
    path = tmp_path / "rev.yaml"
    path.write_text(textwrap.dedent("""\
        base: {family: tiling, workload: resnet18.layer4.0.conv2, hardware: eyeriss, objective: energy}
        axes:
          hardware.levels[1].scale: [0.5, 2]
          hardware: [eyeriss, simba-pe]
        """))
    done = run_mapcert("sweep", str(path), "--dry-run")
    assert done.returncode == 0
    assert "warning: axis hardware.levels[1].scale: its values give the same jobs at every point" in done.stderr


def test_a_sweep_in_a_moved_folder_reruns_from_its_store(tmp_path):
    import shutil

    first = tmp_path / "a"
    first.mkdir()
    path = write_sweep(first, {"hardware.levels[GLB].capacity": ["1 KiB"]})
    assert run_mapcert("sweep", str(path), "--serial").returncode == 0
    moved = tmp_path / "b"
    shutil.copytree(first, moved)
    done = run_mapcert("sweep", str(moved / path.name), "--serial")
    assert done.returncode == 0 and "1 from the store, 0 solved" in done.stdout, done.stderr


def test_json_lines_of_stored_jobs_and_of_a_dry_run(tmp_path):
    path = write_sweep(tmp_path, {"hardware.levels[GLB].capacity": ["1 KiB", "4 KiB"]})
    first = run_mapcert("sweep", str(path), "--serial", "--json")
    solved = {line["key"]: line for line in map(json.loads, first.stdout.splitlines()) if line["event"] == "job"}
    again = run_mapcert("sweep", str(path), "--serial", "--json")
    cached = [json.loads(line) for line in again.stdout.splitlines()]
    assert [c["event"] for c in cached] == ["job", "job", "sweep"]
    for line in cached[:2]:
        assert line["cached"] and line["objective"] == solved[line["key"]]["objective"] and line["status"] == "optimal"
    plan = run_mapcert("sweep", str(path), "--dry-run", "--json")
    points = [json.loads(line) for line in plan.stdout.splitlines()]
    assert [p["values"]["hardware.levels[GLB].capacity"] for p in points] == ["1 KiB", "4 KiB"]
    assert all(p["event"] == "point" and p["to_solve"] == 0 for p in points)


def test_a_retry_keeps_the_better_answer_and_the_tighter_bound(tmp_path):
    """A feasible retry replaces a feasible row only with a better solution, or an equal one
    with a tighter bound: ``--retry-feasible`` with a shorter limit loses nothing."""
    from types import SimpleNamespace

    job = SimpleNamespace(key="k", family="partition", workload="w", layer="", hardware="h", document={})

    def feasible(objective, bound):
        return {"status": "feasible", "objective": objective, "best_bound": bound, "objective_name": "ema",
                "unit": "bytes", "gap": None, "method": "milp", "wall_time_s": 1.0, "message": "time limit"}

    with Store(tmp_path / "s.db") as store:
        for objective, bound in ((100, 90), (100, 80), (101, 99), (100, 95), (99, 50)):
            store.save_result(job, feasible(objective, bound), 10.0, "w", 1.0, 1)
            row = store.db.execute("SELECT objective, best_bound FROM jobs WHERE key = 'k'").fetchone()
            kept = tuple(row)
            if (objective, bound) == (100, 80) or objective == 101:
                assert kept == (100, 90)
            else:
                assert kept == (objective, bound)


def test_a_sweep_over_the_weight_bits_of_generated_pairing_weights_expands():
    """Generated weights follow the weight bits: a sweep that sets them gets other weights,
    not a checksum refusal (the expanded instance drops the checksum of generated weights)."""
    from mapcert.sweeps.spec import apply

    base = {"family": "pairing", "workload": "mobilenetv2.block14.project", "hardware": "ddc-sram",
            "weights": {"generate": {"seed": 0}}}
    point = apply(base, "hardware.weight_bits", 4, "<sweep>", Path("."))
    assert point["hardware"]["weight_bits"] == 4 and "sha256" not in point["weights"]
    problem = load_document(point, "<point>")
    assert problem.bits == 4 and abs(problem.weights).max() <= 8
