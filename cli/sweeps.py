"""The ``mapcert sweep`` and ``mapcert results`` commands, and ``mapcert
plot`` of a results store.

Everything here goes through ``mapcert.sweeps``; the commands read options,
show progress and tables, and map problems to exit statuses (0 every job
answered, 1 a job failed or a check failed, 2 bad input).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from ..instances import InstanceError
from ..sweeps import runner, tables
from ..sweeps.spec import describe_value, load_sweep
from ..sweeps.store import Store, StoreError
from ..units import format_quantity, format_value, parse_bytes
from . import (EXIT_ERROR, EXIT_INPUT, EXIT_OK, _Exit, seconds_option, _fail_input, _Quiet, _refuse_overwrite, app,
               err, out, render)


def _open_store(path: Path, readonly: bool) -> Store:
    try:
        return Store(path, readonly=readonly)
    except StoreError as exc:
        _fail_input([f"{exc}"])


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="Sweep YAML: a base instance and axes (docs/sweeps.md)."),
    db: Optional[Path] = typer.Option(None, "--db", help="Results store (SQLite); default: the sweep file's name "
                                                         "with .db, next to it."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, metavar="N",
                                          help="Worker processes of the local Dask cluster (default: one per core)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Use a running Dask scheduler (tcp://HOST:PORT) instead of a local "
                                                 "cluster; its workers need only mapcert installed."),
    serial: bool = typer.Option(False, "--serial", help="Solve the jobs one after the other in this process "
                                                        "(no Dask)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", "-t", parser=seconds_option, metavar="SECONDS",
                                               help="Time per job, in seconds or as a duration (3 min) (default: the sweep file's, else the "
                                                    "instance's)."),
    retry_feasible: bool = typer.Option(False, "--retry-feasible",
                                        help="Solve again the jobs stored as feasible (timed out), e.g. with a "
                                             "larger --time-limit; proved jobs are kept."),
    retries: Optional[int] = typer.Option(None, "--retries", min=0, max=20,
                                          help="Extra tries of a job that raises or whose worker dies (default: "
                                               "the sweep file's, else 2)."),
    memory_limit: Optional[str] = typer.Option(None, "--memory-limit",
                                               help="Memory guard per local worker, e.g. '4 GiB' (default: 90% "
                                                    "of the machine's memory shared among the workers)."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, metavar="N", help="Solver threads per job."),
    functional: bool = typer.Option(True, "--functional/--no-functional",
                                    help="Run each solution in the functional model (the certificate's check)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the points and the jobs to solve; solve nothing."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per finished job instead of a progress bar."),
) -> None:
    """Solve every point of a sweep (a product of axes over a base instance) and keep each job in a results store.

    Networks expand to their distinct layers, each solved once; a job already in the store (same instance, same
    mapcert) is not solved again, so a sweep that was stopped is finished by running it again."""
    if serial and workers:
        _fail_input(["--serial: solves in this process; drop --workers (or drop --serial to use a local Dask cluster)"])
    if scheduler and (serial or workers):
        _fail_input(["--scheduler: the workers are the scheduler's; drop --serial and --workers"])
    if memory_limit is not None and (serial or scheduler):
        _fail_input(["--memory-limit: guards the workers of the local Dask cluster; a running scheduler's workers "
                     "take theirs from `dask worker --memory-limit`, and --serial has none"])
    memory = None
    if memory_limit is not None:
        try:
            memory = parse_bytes(memory_limit)
        except ValueError as exc:
            _fail_input([f"--memory-limit: {exc}"])
    try:
        spec = load_sweep(file)
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    db = db or file.with_suffix(".db")
    if dry_run and not db.exists():
        store = _open_store(Path(":memory:"), readonly=False)  # a dry run leaves no file behind
    else:
        store = _open_store(db, readonly=False)
    try:
        _same_sweep_or_refuse(store, spec.name, file, spec.spec.model_dump())  # a dry run says so too
        with err.status("expanding the sweep...", spinner="dots") if sys.stderr.isatty() and not as_json \
                else _Quiet():
            plan = runner.plan(spec, store, retry_feasible=retry_feasible, functional=functional)
        settings = runner.Settings(time_limit=time_limit or spec.spec.time_limit, functional=functional,
                                   threads=threads, retries=spec.spec.retries if retries is None else retries)
        for warning in plan.warnings:
            err.print(f"warning: {warning}", markup=False, soft_wrap=True)
        if dry_run:
            if as_json:
                todo = {job.key for job in plan.todo}
                for point in plan.points:
                    print(json.dumps({"event": "point", "point": point.index, "values": point.values,
                                      "family": point.family, "workload": point.workload,
                                      "jobs": len(point.parts),
                                      "to_solve": len({p.job.key for p in point.parts} & todo)},
                                     default=str), flush=True)
            else:
                _show_plan(plan, db)
            raise _Exit(EXIT_OK)
        store.save_sweep(spec.name, str(file.resolve()), spec.axes, spec.spec.model_dump(), plan.points)
        executor = runner.SerialExecutor() if serial else runner.DaskExecutor(workers, scheduler, memory)
        if not as_json:
            err.print(f"sweep {spec.name}: {len(plan.points)} points, {plan.total} distinct jobs, "
                      f"{len(plan.reused)} in the store ({db}), {len(plan.todo)} to solve on "
                      f"{executor.description}", markup=False)
        try:
            summary = _run_with_progress(plan, store, executor, settings, as_json)
        except runner.SweepInterrupted as exc:
            err.print(f"interrupted ({exc}): the jobs that finished are stored in {db}, the ones in flight are "
                      f"not. Run the same command again to finish the sweep.", markup=False)
            raise _Exit(130)
        summaries = tables.point_summaries(store, spec.name)
    except runner.SweepError as exc:
        _fail_input([str(exc)])
    finally:
        store.close()
    if as_json:
        print(json.dumps({"event": "sweep", "sweep": spec.name, "db": str(db), "points": len(plan.points),
                          "jobs": summary.total, "reused": summary.reused, "solved": summary.solved,
                          "statuses": summary.statuses, "wall_time_s": round(summary.wall_time_s, 3)}), flush=True)
    else:
        _summary_table(summaries, spec.axes, f"sweep {spec.name}")
        out.print(f"{summary.total} job{'s' * (summary.total != 1)}: {summary.reused} from the store, "
                  f"{summary.solved} solved, "
                  f"{summary.failed} failed, in {summary.wall_time_s:.1f} s; results in {db}", markup=False)
    unanswered = summary.failed + sum(status in ("failed", "error") for status in plan.reused.values())
    raise _Exit(EXIT_ERROR if unanswered else EXIT_OK)


def _same_sweep_or_refuse(store: Store, name: str, file: Path, spec_dump: dict) -> None:
    """A store keeps one sweep per name: another file under the same name
    would silently take its points over."""
    for row in store.sweeps():
        moved_copy = row["spec"] == json.dumps(spec_dump, default=str)  # the same file in a moved folder
        if row["name"] == name and Path(row["file"]).resolve() != file.resolve() and not moved_copy:
            _fail_input([f"{file}: the store {store.path} already holds a sweep named {name!r} from {row['file']}; "
                         f"give this one another name (`sweep:` in the file) or another store (--db)"])


def _show_plan(plan: runner.Plan, db: Path) -> None:
    t = render.table(title=f"{len(plan.points)} points, {plan.total} distinct jobs, {len(plan.todo)} to solve "
                           f"({db})", title_justify="left")
    t.add_column("#", justify="right")
    for axis in plan.sweep.axes:
        t.add_column(axis)
    t.add_column("family")
    t.add_column("workload")
    t.add_column("jobs", justify="right")
    t.add_column("to solve", justify="right")
    todo = {job.key for job in plan.todo}
    for point in plan.points:
        keys = {p.job.key for p in point.parts}
        t.add_row(str(point.index), *[describe_value(point.values[a]) for a in plan.sweep.axes], point.family,
                  point.workload, str(len(point.parts)), str(len(keys & todo)))
    out.print(t)


def _run_with_progress(plan, store, executor, settings, as_json: bool) -> runner.RunSummary:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    counts = {"done": len(plan.reused), "proved": sum(s == "optimal" for s in plan.reused.values()),
              "failed": sum(s == "error" for s in plan.reused.values()), "running": 0, "handed": 0}
    total = plan.total
    workers = getattr(executor, "workers", 1)
    interactive = sys.stderr.isatty() and not as_json
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                        console=err, transient=False, disable=not interactive)
    if as_json:
        stored = store.job_summaries(list(plan.reused))
        for key in plan.reused:
            job, row = plan.jobs[key], stored.get(key, {})
            print(json.dumps({"event": "job", "key": key, "family": job.family, "layer": job.layer,
                              "hardware": job.hardware, **row, "cached": True}), flush=True)

    def text() -> str:
        return (f"done {counts['done']}/{total} · proved {counts['proved']} · failed {counts['failed']} · "
                f"running {counts['running']}")

    points_of = _points_of_jobs(plan)
    start = time.perf_counter()
    with progress:
        task = progress.add_task("jobs", total=max(total, 1), completed=counts["done"], counts=text())

        def report(kind: str, outcome) -> None:
            if kind == "started":
                counts["handed"] += 1
            else:
                counts["done"] += 1
                counts["proved"] += outcome.status == "optimal"
                counts["failed"] += outcome.status in ("failed", "error")
            counts["running"] = min(workers, counts["handed"] - (counts["done"] - len(plan.reused)))
            progress.update(task, completed=counts["done"], counts=text())
            if kind == "finished":
                _job_line(outcome, counts, total, start, as_json, interactive, points_of.get(outcome.job.key, ""))

        return runner.run(plan, store, executor, settings, report=report)


def _points_of_jobs(plan) -> dict[str, str]:
    """For each job, the points that use it, by the values of the axes that
    vary (``point 3: GLB capacity=8 KiB``): jobs of different points often
    share a layer and a hardware name, and a log line should say which."""
    varied = [a for a in plan.sweep.axes if len({describe_value(p.values[a]) for p in plan.points}) > 1]
    users: dict[str, list] = {}
    for point in plan.points:
        for part in point.parts:
            users.setdefault(part.job.key, []).append(point)
    out = {}
    for key, points in users.items():
        first = points[0]
        values = ", ".join(f"{axis_label(a)}={describe_value(first.values[a])}" for a in varied)
        more = f" and {len(points) - 1} more" if len(points) > 1 else ""
        out[key] = f"point {first.index}{more}" + (f": {values}" if values else "")
    return out


def _job_line(outcome, counts: dict, total: int, start: float, as_json: bool, interactive: bool,
              points: str = "") -> None:
    job, result = outcome.job, outcome.result or {}
    if as_json:
        print(json.dumps({"event": "job", "key": job.key, "family": job.family, "layer": job.layer,
                          "hardware": job.hardware, "status": outcome.status, "objective": result.get("objective"),
                          "objective_name": result.get("objective_name"), "gap": result.get("gap"),
                          "wall_time_s": result.get("wall_time_s"), "attempts": outcome.attempts,
                          "reason": "" if outcome.status == "optimal" else outcome.reason,
                          "worker": outcome.worker, "cached": False}), flush=True)
    elif not interactive:
        where = f"{job.layer} on {job.hardware}" if job.hardware else job.layer  # a partition has no hardware
        where += f" ({points})" if points else ""
        err.print(f"[{counts['done']}/{total} {time.perf_counter() - start:.0f} s] {where}:"
                  f" {outcome.status}" + (f" {format_value(result.get('objective'))} {result.get('unit', '')}"
                                          if result.get("objective") is not None else "")
                  + (f" ({outcome.reason})" if outcome.status == "failed" else ""), markup=False, soft_wrap=True)


def axis_label(axis: str) -> str:
    """A sweep axis' short column header: its last field, with the named
    level or fan-out it belongs to (``hardware.levels[GLB].capacity`` ->
    ``GLB capacity``, ``workload.dims.M`` -> ``M``); the full path is in the
    best point's line below the table."""
    parts = axis.split(".")
    owner = next((part for part in reversed(parts[:-1]) if "[" in part and part.endswith("]")), None)
    if owner is None:
        return parts[-1]
    key = owner[owner.index("[") + 1:-1]
    # a level named by its position says where: levels[1] scale, not "1 scale"
    return f"{owner} {parts[-1]}" if key.isdigit() else f"{key} {parts[-1]}"


def _summary_table(summaries: list[tables.PointSummary], axes: list[str], title: str) -> None:
    best = tables.best_point(summaries)
    winners = {s.index for s in tables.best_points(summaries).values()}
    workloads = sorted({s.workload for s in summaries})
    if len(workloads) == 1:
        title += f": {workloads[0]}"
    # an axis with one value over the points shown reads better once, above the table
    fixed = [a for a in axes if len(summaries) > 1 and len({describe_value(s.values.get(a)) for s in summaries}) == 1]
    varied = [a for a in axes if a not in fixed]
    labels = [axis_label(a) for a in varied]
    if len(set(labels)) < len(labels):  # two axes end in the same field: their paths tell them apart
        labels = list(varied)
    names = sorted({s.objective_name for s in summaries if s.objective_name})
    same = [f"{a} = {describe_value(summaries[0].values.get(a))}" for a in fixed]
    if len(names) == 1 and "objective" not in fixed:
        same.append(f"objective = {names[0]}")
    if same:
        title += "\n" + ", ".join(same)
    title += ("\nbound: the rigorous lower bound; gap: to the best bound of the solver, the certificate's "
              "(0 when proved); heuristic: the best heuristic mapper's excess over the optimum")
    t = render.table(title=title, title_justify="left", collapse_padding=True)
    t.add_column("#", justify="right", no_wrap=True)
    for label in labels:
        t.add_column(label, overflow="fold")
    show_workload = len(workloads) > 1 and "workload" not in axes  # a swept workload is its own column
    if show_workload:
        t.add_column("workload", overflow="fold")
    t.add_column("status", no_wrap=True)
    networks = any(s.distinct > 1 for s in summaries)  # one layer per point: the status says it all
    if networks:
        t.add_column("proved", justify="right")
    t.add_column("objective", justify="right", no_wrap=True)
    t.add_column("bound", justify="right", no_wrap=True)
    t.add_column("gap", justify="right", no_wrap=True)
    t.add_column("heuristic", justify="right", no_wrap=True)
    t.add_column("solve s", justify="right")
    for s in summaries:
        heuristic = min((v for v in s.heuristics.values() if v is not None), default=None)
        over = "-" if heuristic is None or not s.objective else f"+{(heuristic / s.objective - 1) * 100:.1f}%"
        mark = " *" if s.index in winners else ""
        t.add_row(str(s.index), *[describe_value(s.values.get(a)) for a in varied],
                  *([s.workload] if show_workload else []), s.status + mark,
                  *([f"{s.proved}/{s.distinct}"] if networks else []), format_quantity(s.objective, s.unit), format_quantity(s.lower_bound, s.unit),
                  render.percent(s.gap), over, f"{s.wall_time_s:.1f}")
    out.print(t)
    if best is None and winners:
        out.print("* the best point of each workload and objective", markup=False)
    if best is not None:
        out.print(f"* best point: #{best.index} (" + ", ".join(f"{a}={describe_value(best.values.get(a))}"
                                                               for a in axes)
                  + f"), {best.objective_name} {format_quantity(best.objective, best.unit)}", markup=False)


@app.command()
def results(
    db: Path = typer.Argument(..., help="Results store written by `mapcert sweep`."),
    sweep_name: Optional[str] = typer.Option(None, "--sweep", help="Which sweep of the store (when it holds more "
                                                                   "than one)."),
    where: list[str] = typer.Option([], "--where", help="Keep the rows whose field has this value, e.g. "
                                                        "--where hardware=eyeriss (any swept field, family, "
                                                        "workload, layer, status); repeatable."),
    jobs: bool = typer.Option(False, "--jobs", help="One row per layer of each point instead of per point."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Export the rows (one per point and layer) as CSV."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="Export the rows as Parquet."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report (tables and "
                                                             "pictures)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the export files if they exist."),
) -> None:
    """Summarise a results store: its points, the best one, and exports.

    One row per point with its network totals (or per job with --jobs), the best point, and exports to CSV,
    Parquet and an HTML report."""
    for path in (csv, parquet, html):
        _refuse_overwrite(path, force, [db])
    store = _open_store(db, readonly=True)
    try:
        name = tables.sweep_name(store, sweep_name)
        axes = tables.axes_of(store, name)
        try:
            rows = tables.job_rows(store, name, where) if (jobs or csv or parquet or where) else []
            point_where = tables.point_filters(where, axes)
            if not jobs and not (csv or parquet) and len(point_where) < len(where):
                layer_only = ", ".join(f for f in where if f not in point_where)
                raise ValueError(f"--where {layer_only}: a layer's field; add --jobs (or export with --csv or "
                                 f"--parquet) to filter the layer rows")
            summaries = [] if jobs else tables.point_summaries(store, name, point_where)
        except ValueError as exc:
            _fail_input([str(exc)])
        if jobs:
            _jobs_table(rows, axes, name)
        else:
            _summary_table(summaries, axes, f"sweep {name} ({db})")
        try:
            if csv is not None:
                tables.write_csv(rows, csv)
                out.print(f"wrote {csv}: {len(rows)} rows", markup=False)
            if parquet is not None:
                tables.write_parquet(rows, parquet)
                out.print(f"wrote {parquet}: {len(rows)} rows", markup=False)
            if html is not None:
                from ..sweeps.report import write_report

                write_report(store, name, html, point_where)
                out.print(f"wrote {html}", markup=False)
        except OSError as exc:
            _fail_input([f"{exc.filename or 'output'}: cannot be written ({exc.strerror or exc})"])
    except StoreError as exc:
        _fail_input([str(exc)])
    finally:
        store.close()
    raise _Exit(EXIT_OK)


def _jobs_table(rows: list[dict], axes: list[str], name: str) -> None:
    labels = [axis_label(a) for a in axes]
    if len(set(labels)) < len(labels):  # two axes end in the same field: their paths tell them apart
        labels = list(axes)
    title = f"sweep {name}: {len(rows)} layer rows"
    if labels != list(axes):
        title += "\n" + ", ".join(f"{label}: {axis}" for label, axis in zip(labels, axes) if label != axis)
    t = render.table(title=title, title_justify="left", collapse_padding=True)
    t.add_column("#", justify="right", no_wrap=True)
    for label in labels:
        t.add_column(label, overflow="fold")
    reasons = any(r["reason"] for r in rows)  # a column of failures' reasons only when some job failed
    for column in ("layer", "x", "status", "objective", "bound", "gap", "solve s") + ("reason",) * reasons:
        numeric = column in ("x", "objective", "bound", "gap", "solve s")
        # numbers and statuses keep one line; a long layer name folds rather than a column being cut
        t.add_column(column, justify="right" if numeric else "left", overflow="fold",
                     no_wrap=numeric or column == "status", min_width=12 if column == "layer" else None)
    for r in rows:
        t.add_row(str(r["point"]), *[describe_value(r.get(tables.axis_column(a))) for a in axes], r["part"],
                  str(r["count"]), r["status"], format_quantity(r["objective"], r["unit"] or ""),
                  format_quantity(r["lower_bound"], r["unit"] or ""), render.percent(r["gap"]),
                  "-" if r["wall_time_s"] is None else f"{r['wall_time_s']:.1f}", *[r["reason"] or ""] * reasons)
    out.print(t)


def plot_store(db: Path, output: Path, x_axis: str | None, layer: str | None, sweep_name: str | None,
               where: list[str]) -> str:
    """``mapcert plot DB``: the sweep's pictures into ``output``."""
    from ..sweeps import pictures

    store = _open_store(db, readonly=True)
    try:
        name = tables.sweep_name(store, sweep_name)
        summaries = tables.point_summaries(store, name, where)
        if not summaries:
            _fail_input([f"{db}: no point of sweep {name} matches the --where filters"])
        if all(s.objective is None for s in summaries):
            _fail_input([f"{db}: nothing to draw yet: no point of sweep {name} has every layer solved "
                         f"({', '.join(sorted({s.status for s in summaries}))})"])
        return pictures.draw(summaries, tables.axes_of(store, name), output, x_axis=x_axis, layer=layer)
    except (StoreError, ValueError) as exc:
        _fail_input([str(exc)])
    except OSError as exc:
        _fail_input([f"{exc.filename or output}: cannot be written ({exc.strerror or exc})"])
    finally:
        store.close()


__all__ = ["sweep", "results", "plot_store", "EXIT_INPUT"]
