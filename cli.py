"""The ``mapcert`` command.

Exit status: 0 when a mapping is optimal or feasible (or a verification
passed), 2 for bad input or an instance with no feasible mapping (one line
per problem, ``file:line: field: what is wrong``), 1 when a check failed or
a solver gave no usable answer.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import typer
import yaml
from rich.console import Console
from rich import box
from rich.table import Table as _RichTable

from . import __version__
from .formulations.tiling.multilevel import MultiLevelProblem
from .formulations.tiling.problem import LOOP_DIMS, TilingProblem
from .formulations.tiling.solve import METHODS
from .formulations.tiling.space import CANONICAL_ORDER
from .instances import InstanceError, Issue, line_of, load, load_text
from .multilevel_instances import MultiLevelNetwork
from .partition_instances import PartitionInstance
from .report import RESULT_FORMAT, Report, solve_and_certify
from .units import format_bytes, format_count
from .validation.bounds import tiling_bounds
from .verification import verify_result

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Provably optimal mappings of neural-network layers onto accelerators, with certificates.",
)
out = Console(width=None if sys.stdout.isatty() else 110, highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_ERROR, EXIT_INPUT = 0, 1, 2


def Table(**kwargs) -> _RichTable:
    """Tables in one plain style that reads well in a terminal and in a log."""
    kwargs.setdefault("box", box.SIMPLE_HEAD)
    return _RichTable(**kwargs)


class _Exit(Exception):
    def __init__(self, code: int):
        self.code = code


def _fail_input(lines: list[str]) -> None:
    for line in lines:
        err.print(line, markup=False, soft_wrap=True)
    raise _Exit(EXIT_INPUT)


def _load(file: Path) -> TilingProblem:
    try:
        return load(file)
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    raise AssertionError("unreachable")


def _stationary(order: tuple[str, ...]) -> str:
    for cls, canonical in CANONICAL_ORDER.items():
        if tuple(order) == canonical:
            return {"inputs": "the input tile stays on chip across M (innermost)",
                    "weights": "the weight tile stays on chip across N, P, Q (innermost)",
                    "outputs": "the output tile stays on chip across C (innermost): no partial-sum spills"}[cls]
    return ""


def _title(problem: TilingProblem) -> str:
    layer = problem.layer
    dims = " ".join(f"{k}={v}" for k, v in layer.dims().items())
    extra = []
    if layer.stride != (1, 1):
        extra.append(f"stride {layer.stride[0]}x{layer.stride[1]}")
    if layer.dilation != (1, 1):
        extra.append(f"dilation {layer.dilation[0]}x{layer.dilation[1]}")
    if layer.groups != 1:
        extra.append(f"groups {layer.groups}")
    hw = f"{problem.buffer.name} {format_bytes(problem.buffer.capacity_bytes)}"
    if problem.buffer.partition_bits:
        hw += " (partitioned: " + ", ".join(
            f"{t} {format_bytes(b / 8)}" for t, b in problem.buffer.partition_bits.items()) + ")"
    return f"[bold]{layer.name}[/] ({layer.op} {dims}{', ' + ', '.join(extra) if extra else ''}) on {hw}"


def _render_report(report: Report) -> None:
    problem, result, cert = report.problem, report.result, report.certificate
    layer = problem.layer
    out.print(_title(problem))
    out.print(f"objective: off-chip traffic (bytes) · space: {problem.space} · method: {result.method}")
    colour = {"optimal": "green", "feasible": "yellow"}.get(cert.status, "red")
    out.print()
    if cert.status in ("infeasible", "error") and result.mapping is None:
        out.print(f"status: [bold {colour}]{cert.status.upper()}[/] - {cert.reason}")
        return
    claim = {
        "optimal": f"proved by {result.method} in {result.wall_time_s:.2f} s, confirmed by evaluate"
                   + (" and the functional model" if cert.functional else ""),
        "feasible": f"best mapping found in {result.wall_time_s:.2f} s; gap {100 * (result.gap or 0):.2f}% to the solver's bound",
        "error": cert.reason,
    }.get(cert.status, cert.reason)
    out.print(f"status: [bold {colour}]{cert.status.upper()}[/] ({claim})")

    mapping, metrics = result.mapping, result.metrics
    shown = [d for d in LOOP_DIMS if d != "G" or layer.groups > 1]
    table = Table(title="mapping", title_justify="left", show_edge=False)
    table.add_column("")
    for d in shown + ["R", "S"]:
        table.add_column(d, justify="right")
    table.add_row("extent", *[str(layer.extent(d)) for d in shown], str(layer.R), str(layer.S))
    table.add_row("on-chip tile", *[str(mapping.tiles[d]) for d in shown], str(layer.R), str(layer.S))
    table.add_row("DRAM trips", *[str(metrics.trips[d]) for d in shown], "1", "1")
    _show(table)
    order = " > ".join(d for d in mapping.order if d != "G" or layer.groups > 1)
    out.print(f"DRAM loop order (outer > inner): {order}; {_stationary(mapping.order)}")

    table = Table(title="off-chip traffic", title_justify="left", show_edge=False)
    for col in ("term", "bytes", "share"):
        table.add_column(col, justify="right" if col != "term" else "left")
    total = metrics.objective or 1
    for term, bits in metrics.traffic_bits.items():
        table.add_row(term.replace("_", " "), f"{bits / 8:,.0f}", f"{100 * bits / 8 / total:.1f}%")
    table.add_row("[bold]total[/]", f"[bold]{metrics.objective:,.0f}[/]", "100%")
    _show(table)
    foot = ", ".join(f"{t} {format_bytes(b / 8)}" for t, b in metrics.footprint_bits.items())
    out.print(f"buffer footprint: {foot} = {format_bytes(sum(metrics.footprint_bits.values()) / 8)} "
              f"of {format_bytes(problem.buffer.capacity_bytes)}")

    table = Table(title="bounds", title_justify="left", show_edge=False)
    for col in ("bound", "bytes", "optimum / bound", "rigorous", "meaning"):
        table.add_column(col, justify="right" if col in ("bytes", "optimum / bound") else "left")
    for name, bound in cert.bounds.items():
        ratio = cert.ratio(name)
        table.add_row(name, f"{bound.bytes:,.0f}", f"{ratio:.3f}" if ratio else "-",
                      "yes" if bound.rigorous else "no", bound.meaning)
    _show(table)
    if result.best_bound is not None:
        out.print(f"solver bound: {result.best_bound:,.0f} B · gap {100 * (result.gap or 0):.3f}%")

    if report.heuristics:
        table = Table(title="heuristics", title_justify="left", show_edge=False)
        for col in ("method", "bytes", "gap to optimum", "tiles", "time"):
            table.add_column(col, justify="left" if col in ("method", "tiles") else "right")
        for h in report.heuristics:
            if h.metrics is None:
                table.add_row(h.name, "no mapping fits", "-", "-", f"{h.wall_time_s:.2f} s")
                continue
            gap = f"{100 * h.gap_to_optimum:.1f}%" if h.gap_to_optimum is not None else "-"
            tiles = " ".join(f"{d}{h.mapping.tiles[d]}" for d in shown)
            table.add_row(h.name, f"{h.metrics.objective:,.0f}", gap, tiles, f"{h.wall_time_s:.2f} s")
        _show(table)

    table = Table(title="certificate checks", title_justify="left", show_edge=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in cert.checks:
        table.add_row(check.name, "[green]pass[/]" if check.passed else "[red]FAIL[/]", check.detail)
    _show(table)
    if cert.functional is None:
        out.print("functional check skipped (--no-functional)")


def _show(table) -> None:
    out.print()
    out.print(table)


def _exit_code(status: str) -> int:
    return {"optimal": EXIT_OK, "feasible": EXIT_OK, "infeasible": EXIT_INPUT}.get(status, EXIT_ERROR)


def _write_result(path: Path, report: Report, force: bool) -> None:
    if path.exists() and not force:
        _fail_input([f"{path}: exists; not overwritten (use --force to replace it)"])
    try:
        path.write_text(yaml.safe_dump(report.to_dict(), sort_keys=False))
    except OSError as exc:
        _fail_input([f"{path}: cannot write: {exc.strerror or exc}"])


@app.command()
def solve(
    file: Path = typer.Argument(..., help="Instance YAML (see README: family, workload, hardware, ...)."),
    method: Optional[str] = typer.Option(None, "--method", "-m",
                                         help=f"Exact method: {', '.join(METHODS)} (default: the instance's solver.method)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", "-t",
                                               help="Seconds for the solver; on time-out the best mapping is returned as 'feasible' with its gap."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the result (YAML) for `mapcert verify`."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
    functional: bool = typer.Option(True, "--functional/--no-functional",
                                    help="Execute the mapping in the functional model (on by default)."),
) -> None:
    """Find the optimal mapping of an instance and certify it."""
    problem = _load(file)
    if isinstance(problem, MultiLevelNetwork):
        _solve_network(problem, method, time_limit, as_json, output, force, functional)
    if isinstance(problem, MultiLevelProblem):
        _solve_multilevel(problem, method, time_limit, as_json, output, force, functional)
    if isinstance(problem, PartitionInstance):
        _solve_partition(problem, method, time_limit, as_json, output, force, functional)
    if not isinstance(problem, TilingProblem):
        _solve_pim(problem, method, time_limit, as_json, output, force)
    _check_solve_options(method, METHODS, time_limit, output, force)
    with _spinner(as_json):
        report = solve_and_certify(problem, method, time_limit, functional=functional)
    if output is not None:
        _write_result(output, report, force)
    status = report.status
    if status == "infeasible" and not as_json:
        line = line_of(file, ("hardware", "levels", 1, "capacity"))
        _fail_input([str(Issue(str(file), line, "hardware", f"no feasible mapping: {report.result.message}"))])
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _render_report(report)
        if output is not None:
            out.print(f"result saved to {output}")
    raise _Exit(_exit_code(status))


@app.command()
def bound(
    file: Path = typer.Argument(..., help="Instance YAML."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Analytical lower bounds (off-chip traffic, pipeline period), without solving."""
    problem = _load(file)
    if isinstance(problem, (MultiLevelProblem, MultiLevelNetwork)):
        _bound_multilevel(problem, as_json)
    if not isinstance(problem, TilingProblem):
        _bound_pim(problem, as_json)
    bounds = tiling_bounds(problem)
    if as_json:
        print(json.dumps({k: b.to_dict() for k, b in bounds.items()}, indent=2))
        raise _Exit(EXIT_OK)
    out.print(_title(problem))
    table = Table(show_edge=False)
    for col in ("bound", "bytes", "", "rigorous", "meaning"):
        table.add_column(col)
    for name, b in bounds.items():
        table.add_row(name, f"{b.bytes:,.0f}", format_count(b.bytes), "yes" if b.rigorous else "no", b.meaning)
    out.print(table)
    raise _Exit(EXIT_OK)


def _bound_multilevel(problem, as_json: bool) -> None:
    from .multilevel_report import UNITS
    from .validation.multilevel_bounds import multilevel_bounds

    items = [item.problem for item in problem.layers] if isinstance(problem, MultiLevelNetwork) else [problem]
    rows = []
    for p in items:
        b = multilevel_bounds(p)
        rows.append({"layer": p.layer.name, **b.to_dict()})
    if as_json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        raise _Exit(EXIT_OK)
    first = items[0]
    unit = first.hierarchy.energy_unit if first.objective in ("energy", "edp") else UNITS.get(first.objective, "")
    table = Table(show_edge=False, title=f"lower bounds on {first.hierarchy.name}, objective {first.objective}",
                  title_justify="left")
    for col in ("layer", f"objective ({unit})", "array boundary (words)"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for row in rows:
        table.add_row(row["layer"], f"{row['objective']:,.0f}", f"{row['array_boundary_words']:,.0f}")
    out.print(table)
    out.print(f"objective: {rows[0]['objective_meaning']}; array boundary: words into and out of PE-private "
              "storage, by the segment argument or the compulsory count")
    raise _Exit(EXIT_OK)


@app.command()
def verify(
    result: Path = typer.Argument(..., help="A result saved by `mapcert solve -o`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    time_limit: float = typer.Option(60.0, "--time-limit", "-t", help="Seconds for each re-proof."),
) -> None:
    """Re-derive everything in a saved result without trusting it: the
    objective, the bounds, the functional run, and the optimum by two exact
    methods."""
    data = _read_yaml_file(result)
    if isinstance(data, dict) and data.get("family") in ("crossbar", "pairing", "partition"):
        _fail_input([f"{result}:1: family: verify re-derives tiling results; for {data['family']} run "
                     f"`mapcert compare` on the instance, which re-proves the optimum with every exact method"])
    if isinstance(data, dict) and "objective_name" in data and data.get("family") == "tiling":
        _fail_input([f"{result}:1: family: verify re-derives two-level tiling results; for a memory hierarchy run "
                     "`mapcert compare` on the instance (every exact method and the functional model), or score "
                     "this result with `mapcert compare FILE --mapping RESULT`"])
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT or "instance" not in data:
        _fail_input([f"{result}:1: format: not a mapcert result (expected format: {RESULT_FORMAT})"])
    try:
        problem = load_text(yaml.safe_dump(data["instance"], sort_keys=False), f"{result}#instance")
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    checks = verify_result(problem, data, time_limit=time_limit)
    ok = all(c.passed for c in checks)
    if as_json:
        print(json.dumps({"verified": ok, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        out.print(_title(problem))
        table = Table(show_edge=False)
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail")
        for c in checks:
            table.add_row(c.name, "[green]pass[/]" if c.passed else "[red]FAIL[/]", c.detail)
        out.print(table)
        out.print("[bold green]VERIFIED[/]" if ok else "[bold red]NOT VERIFIED[/]")
    raise _Exit(EXIT_OK if ok else EXIT_ERROR)


@app.command()
def compare(
    file: Path = typer.Argument(..., help="Instance YAML of any family."),
    methods: Optional[str] = typer.Option(None, "--methods",
                                          help="Comma-separated methods (default: every exact method and heuristic of the family)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", "-t", help="Seconds for each exact method."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with one row per method."),
    mapping: Optional[list[Path]] = typer.Option(None, "--mapping",
                                                 help="Your own mapping (YAML: a mapping, or a result of "
                                                      "`mapcert solve -o`), scored beside the others; repeatable."),
) -> None:
    """Run every method on one instance and score each against the certified optimum."""
    from .comparison import available_methods, compare as run_compare

    problem = _load(file)
    if isinstance(problem, MultiLevelNetwork):
        _fail_input([f"{file}:1: workload: `mapcert compare` takes one layer; for a whole network, "
                     "`mapcert plot` draws every heuristic's gap per layer"])
    user_mappings = {f"mapping: {path.name}": _read_user_mapping(problem, path) for path in mapping or []}
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    unknown = [m for m in chosen or [] if m not in available_methods(problem)]
    if unknown:
        _fail_input([f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(available_methods(problem))}"])
    if time_limit is not None and time_limit <= 0:
        _fail_input([f"--time-limit: must be positive, got {time_limit}"])
    with _spinner(as_json):
        result = run_compare(problem, chosen, time_limit, user_mappings)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=_plain))
    else:
        verdict = (f"certified optimum {result.optimum:,.0f}" if result.optimum is not None
                   else "no feasible solution" if result.status == "infeasible"
                   else f"optimum not proved; gaps are to the lower bound {result.lower_bound:,.0f}"
                   if result.lower_bound is not None else "optimum not proved")
        out.print(f"{result.family}: {result.unit}; {verdict}")
        if result.message:
            out.print(f"[bold red]{result.message}[/]")
        table = Table(show_edge=False)
        gap_title = "gap to optimum" if result.optimum is not None or result.lower_bound is None else "gap to bound"
        functional = any(row.functional is not None for row in result.rows)
        columns = ["method", "kind", "status", "objective", gap_title, "time"] + (["functional"] if functional else [])
        for col in columns + ["note"]:
            table.add_column(col, justify="right" if col in ("objective", gap_title, "time") else "left")
        for row in result.rows:
            cells = [row.method, row.kind, row.status, "-" if row.objective is None else f"{row.objective:,.0f}",
                     "-" if row.gap is None else f"{100 * row.gap:.1f}%", f"{row.wall_time_s:.2f} s"]
            if functional:
                cells.append(row.functional or "-")
            table.add_row(*cells, row.note[:50])
        _show(table)
    raise _Exit(_exit_code(result.status))


@app.command()
def plot(
    file: Path = typer.Argument(..., help="A multi-level tiling instance (one layer or a whole network), "
                                          "or a graph-partition instance."),
    output: Path = typer.Option(Path("mapcert_plot.png"), "--output", "-o", help="Picture to write (PNG, SVG, PDF)."),
    sizes: Optional[str] = typer.Option(None, "--sizes",
                                        help="One layer: comma-separated capacities of the swept level "
                                             "(default: 1/8x to 4x of its size)."),
    level: Optional[str] = typer.Option(None, "--level", help="One layer: the level to sweep (default: the largest shared on-chip level)."),
    time_limit: float = typer.Option(30.0, "--time-limit", "-t", help="Seconds for CP-SAT per point or layer."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> None:
    """Draw the objective against buffer size (one layer), each heuristic's gap per layer (a network),
    or the optimal partition with its subgraphs coloured (a graph-partition instance)."""
    from rich.progress import Progress

    from . import plots
    from .multilevel_report import UNITS
    from .units import parse_bytes

    problem = _load(file)
    if not isinstance(problem, (MultiLevelProblem, MultiLevelNetwork, PartitionInstance)):
        _fail_input([f"{file}:1: hardware: `mapcert plot` draws multi-level tiling instances "
                     "(a hierarchy preset such as eyeriss, or levels with an array) and graph partitions"])
    if output.exists() and not force:
        _fail_input([f"{output}: exists; not overwritten (use --force to replace it)"])
    if isinstance(problem, PartitionInstance):
        _plot_partition(problem, output)
    if time_limit <= 0:
        _fail_input([f"--time-limit: must be positive, got {time_limit}"])
    show = sys.stderr.isatty()
    if isinstance(problem, MultiLevelNetwork):
        from .formulations.tiling.multilevel_cost import evaluate_multilevel
        from .formulations.tiling.multilevel_solve import solve_multilevel
        from .solvers.multilevel_heuristics import HEURISTICS

        names, gaps = [], {name: [] for name in HEURISTICS}
        with Progress(console=err, transient=True, disable=not show) as progress:
            task = progress.add_task("solving", total=len(problem.layers))
            for item in problem.layers:
                p = item.problem
                result = solve_multilevel(p, "cpsat", time_limit)
                names.append(p.layer.name)
                for name, heuristic in HEURISTICS.items():
                    mapping = heuristic(p)
                    value = evaluate_multilevel(p, mapping).objective(p.objective) if mapping is not None else None
                    ok = value is not None and result.status == "optimal" and result.objective
                    gaps[name].append((value - result.objective) / result.objective if ok else None)
                progress.advance(task)
        first = problem.layers[0].problem
        plots.plot_network_gaps(problem.network, names, gaps, output,
                                f"{problem.network} on {first.hierarchy.name}: heuristic gap to the optimum "
                                f"({first.objective})")
        out.print(f"wrote {output} ({len(names)} distinct layers; layers not proved within the limit have no bars)")
        raise _Exit(EXIT_OK)
    hier = problem.hierarchy
    shared = [i for i, lv in enumerate(hier.levels) if i > 0 and not lv.per_pe]
    candidates = {lv.name: i for i, lv in enumerate(hier.levels) if i > 0}
    if level is not None and level not in candidates:
        _fail_input([f"--level: {level!r} is not an on-chip level; choose one of {', '.join(candidates)}"])
    if level is None and not shared:
        _fail_input(["--level: the hierarchy has no shared on-chip level; name one with --level"])
    index = candidates[level] if level is not None else max(
        shared, key=lambda i: hier.levels[i].capacity_bits or sum((hier.levels[i].partition_bits or {}).values()))
    chosen = hier.levels[index]
    current = chosen.capacity_bits or sum(chosen.partition_bits.values())
    if sizes:
        try:
            sizes_bits = [parse_bytes(x.strip()) * 8 for x in sizes.split(",") if x.strip()]
        except ValueError as exc:
            _fail_input([f"--sizes: {exc}"])
    else:
        sizes_bits = [max(8, int(current * f)) for f in (0.125, 0.25, 0.5, 1, 2, 4)]
    with Progress(console=err, transient=True, disable=not show) as progress:
        task = progress.add_task(f"sweeping {chosen.name}", total=len(sizes_bits))
        rows = plots.sweep(problem, index, sizes_bits, time_limit, progress=lambda: progress.advance(task))
    unit = hier.energy_unit if problem.objective == "energy" else UNITS.get(problem.objective, "")
    plots.plot_sweep(problem, index, rows, unit, output)
    table = Table(show_edge=False)
    table.add_column(f"{chosen.name} size", justify="right")
    table.add_column("optimum", justify="right")
    table.add_column("lower bound", justify="right")
    for bits, value, proved, bound, _ in rows:
        table.add_row(format_bytes(bits / 8), "-" if value is None else f"{value:,.0f}" + ("" if proved else " (best)"),
                      f"{bound:,.0f}")
    _show(table)
    out.print(f"wrote {output}")
    raise _Exit(EXIT_OK)


def _plot_partition(instance, output: Path) -> None:
    from . import plots
    from .partition_report import solve_partition_instance

    with _spinner(False):
        report = solve_partition_instance(instance)
    if report.blocks is None:
        _fail_input([f"{instance.source}:1: buffer: nothing to draw: {report.message or report.status}"])
    from .partition_render import describe_capacity

    what = describe_capacity(report.capacity) + (" (co-explored)" if instance.coexplore else "")
    plots.plot_partition(instance.graph, report.blocks, output,
                         f"{instance.graph.name}: {report.status} partition, {what}, "
                         f"EMA {format_bytes(report.metrics.ema_bytes)}")
    out.print(f"wrote {output} ({report.status}, {len(report.blocks)} subgraphs)")
    raise _Exit(EXIT_OK)


def _read_yaml_file(path: Path):
    """The YAML document in ``path``, or a clear exit 2 saying why it cannot be read."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        _fail_input([f"{path}: cannot read: {exc.strerror or exc}"])
    except yaml.YAMLError as exc:
        _fail_input([f"{path}:1: (yaml): not valid YAML: {exc}"])


def _read_user_mapping(problem, path: Path):
    """A tiling mapping from YAML, or a clear exit 2 naming what is wrong."""
    from .formulations.tiling.multilevel import MultiLevelMapping
    from .formulations.tiling.problem import Mapping

    if not isinstance(problem, (TilingProblem, MultiLevelProblem)):
        _fail_input(["--mapping: user mappings are scored for the tiling family only"])
    data = _read_yaml_file(path)
    if isinstance(data, dict) and isinstance(data.get("solution"), dict):
        data = data["solution"]
    if isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        data = data["mapping"]
    try:
        if isinstance(problem, MultiLevelProblem):
            return MultiLevelMapping.from_dict(data, problem.hierarchy, problem.layer)
        return Mapping.from_dict(data, problem.layer)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        _fail_input([f"{path}:1: mapping: {exc}"])


@app.command()
def presets() -> None:
    """List the named networks (layers usable as `workload: net.layer`) and hardware."""
    from . import workload_library
    from .hardware.presets import hardware_presets

    table = Table(title="networks", title_justify="left", show_edge=False)
    table.add_column("network")
    table.add_column("layers", justify="right")
    table.add_column("first layers")
    for name in workload_library.networks():
        layers = workload_library.network(name)
        table.add_row(name, str(len(layers)), ", ".join(list(layers)[:4]) + ", ...")
    out.print(table)
    table = Table(title="hardware", title_justify="left", show_edge=False)
    table.add_column("preset")
    table.add_column("levels")
    table.add_column("source")
    for name, hw in hardware_presets().items():
        levels = " > ".join(l["name"] + (f" {l['capacity']}" if "capacity" in l else "") for l in hw["levels"])
        table.add_row(name, levels, hw.get("source", ""))
    out.print(table)
    from .hardware.hierarchy import hierarchy_presets

    table = Table(title="memory hierarchies with a PE array", title_justify="left", show_edge=False)
    for col in ("preset", "array", "levels", "source"):
        table.add_column(col)
    for name, hw in hierarchy_presets().items():
        array = hw.get("array", {})
        levels = " > ".join(
            level["name"] + ("*" if level.get("per_pe") else "")
            + (f" {level['capacity']}" if "capacity" in level else "")
            + (f" {{{', '.join(level['holds'])}}}" if "holds" in level else "")
            for level in hw["levels"])
        table.add_row(name, f"{array.get('rows', 1)}x{array.get('cols', 1)}", levels,
                      " ".join(str(hw.get("source", "")).split())[:60])
    out.print(table)
    out.print("(* private to each PE; {..} the tensors a level holds, the others bypass it)")
    from .hardware.pim import pim_presets

    table = Table(title="processing-in-memory chips", title_justify="left", show_edge=False)
    for col in ("preset", "crossbar", "cells", "budget", "source"):
        table.add_column(col)
    for name, chip in pim_presets().items():
        budget = chip["crossbars_per_pe"] * chip["pes_per_tile"] * chip["tiles"]
        table.add_row(name, f"{chip['rows']}x{chip['columns']}", f"{chip['cell_bits']} bit",
                      f"{budget:,} crossbars", " ".join(str(chip.get("source", "")).split())[:60])
    out.print(table)
    raise _Exit(EXIT_OK)


def _check_solve_options(method, methods, time_limit, output, force) -> None:
    """Refuse bad options before any work, and never overwrite a file unasked."""
    if method is not None and method not in methods:
        _fail_input([f"--method: unknown method {method!r} for this family; choose one of {', '.join(methods)}"])
    if time_limit is not None and time_limit <= 0:
        _fail_input([f"--time-limit: must be positive, got {time_limit}"])
    if output is not None and output.exists() and not force:
        _fail_input([f"{output}: exists; not overwritten (use --force to replace it)"])


def _spinner(as_json: bool):
    """A progress spinner on an interactive terminal, nothing otherwise."""
    return err.status("working...", spinner="dots") if sys.stderr.isatty() and not as_json else _null()


def _solve_partition(instance, method, time_limit, as_json, output, force, functional) -> None:
    from .formulations.partition.exact import METHODS as PARTITION_METHODS
    from .partition_render import render_partition
    from .partition_report import solve_partition_instance

    _check_solve_options(method, PARTITION_METHODS, time_limit, output, force)
    with _spinner(as_json):
        report = solve_partition_instance(instance, method, time_limit, functional=functional)
    data = report.to_dict()
    if output is not None:
        _save_yaml(output, data)
    if report.status == "infeasible" and not as_json:
        _fail_input([f"{instance.source}:1: buffer: no feasible partition: {report.message}"])
    if as_json:
        print(json.dumps(data, indent=2, default=_plain))
    else:
        _status_line(report.status, report.method, report.wall_time_s, report.message)
        render_partition(report, data, out, lambda **kw: Table(show_edge=False, **kw), _show)
        if output is not None:
            out.print(f"result saved to {output}")
    raise _Exit(_exit_code(report.status))


def _solve_pim(instance, method, time_limit, as_json, output, force) -> None:
    from .pim_instances import CrossbarInstance
    from .pim_reports import solve_crossbar_instance, solve_pairing_instance

    crossbar = isinstance(instance, CrossbarInstance)
    methods = ("milp", "cpsat", "bisection") if crossbar else ("milp", "cpsat")
    _check_solve_options(method, methods, time_limit, output, force)
    with _spinner(as_json):
        report = (solve_crossbar_instance if crossbar else solve_pairing_instance)(instance, method, time_limit)
    data = report.to_dict()
    if output is not None:
        try:
            output.write_text(yaml.safe_dump(data, sort_keys=False))
        except OSError as exc:
            _fail_input([f"{output}: cannot write: {exc.strerror or exc}"])
    if report.status == "infeasible" and not as_json:
        _fail_input([f"{instance.source}:1: {'constraints' if crossbar else 'workload'}: "
                     f"no feasible solution: {report.result.message}"])
    if as_json:
        print(json.dumps(data, indent=2, default=_plain))
    elif crossbar:
        _render_crossbar(report)
    else:
        _render_pairing(report)
    raise _Exit(_exit_code(report.status))


def _solve_multilevel(problem, method, time_limit, as_json, output, force, functional) -> None:
    from .formulations.tiling.multilevel_solve import MULTILEVEL_METHODS
    from .multilevel_report import solve_multilevel_instance

    _check_solve_options(method, MULTILEVEL_METHODS, time_limit, output, force)
    with _spinner(as_json):
        report = solve_multilevel_instance(problem, method, time_limit, functional=functional)
    data = report.to_dict()
    if output is not None:
        _save_yaml(output, data)
    if report.status == "infeasible" and not as_json:
        line = line_of(problem.source, ("hardware",)) if problem.source != "<text>" else 1
        _fail_input([f"{problem.source}:{line}: hardware: no feasible mapping: {report.result.message}"])
    if as_json:
        print(json.dumps(data, indent=2, default=_plain))
    else:
        _render_multilevel(report)
        if output is not None:
            out.print(f"result saved to {output}")
    raise _Exit(_exit_code(report.status))


def _solve_network(net, method, time_limit, as_json, output, force, functional) -> None:
    """Solve each distinct layer once, with progress, then one table and one file."""
    from rich.progress import Progress

    from .formulations.tiling.multilevel_solve import MULTILEVEL_METHODS
    from .multilevel_report import solve_multilevel_instance

    _check_solve_options(method, MULTILEVEL_METHODS, time_limit, output, force)
    reports = []
    show = sys.stderr.isatty() and not as_json
    with Progress(console=err, transient=True, disable=not show) as progress:
        task = progress.add_task(f"{net.network}: solving", total=len(net.layers))
        for item in net.layers:
            progress.update(task, description=f"{net.network}: {item.problem.layer.name}")
            reports.append(solve_multilevel_instance(item.problem, method, time_limit, functional=functional))
            progress.advance(task)
    rows = []
    totals = {"objective": 0.0, "wall_time_s": 0.0, "proved": 0}
    for item, report in zip(net.layers, reports, strict=True):
        r = report.result
        count = len(item.names)
        rows.append({"layer": item.problem.layer.name, "same_shape": list(item.names), "count": count,
                     "status": report.status, "objective": r.objective, "best_bound": r.best_bound,
                     "gap": r.gap, "lower_bound": report.bounds.objective, "wall_time_s": round(r.wall_time_s, 3),
                     "functional": _functional_word(report.functional),
                     "solution": None if r.mapping is None else r.mapping.to_dict(item.problem.hierarchy)})
        totals["objective"] += (r.objective or 0.0) * count
        totals["wall_time_s"] += r.wall_time_s
        totals["proved"] += report.status == "optimal"
    statuses = {row["status"] for row in rows}
    status = "optimal" if statuses == {"optimal"} else "error" if "error" in statuses else \
        "infeasible" if "infeasible" in statuses else "feasible"
    first = net.layers[0].problem
    data = {"status": status, "network": net.network, "hardware": first.hierarchy.name,
            "objective_name": first.objective, "unit": reports[0].unit, "total_objective": totals["objective"],
            "distinct_layers": len(rows), "proved": totals["proved"], "wall_time_s": round(totals["wall_time_s"], 3),
            "layers": rows}
    if output is not None:
        _save_yaml(output, data)
    if as_json:
        print(json.dumps(data, indent=2, default=_plain))
        raise _Exit(_exit_code(status))
    out.print(f"[bold]{net.network}[/] on [bold]{first.hierarchy.name}[/], objective {first.objective} "
              f"({reports[0].unit}); each distinct layer solved once")
    table = Table(show_edge=False)
    for col in ("layer", "x", "status", "objective", "gap", "to bound", "time", "functional"):
        table.add_column(col, justify="left" if col in ("layer", "status") else "right")
    for row, report in zip(rows, reports, strict=True):
        table.add_row(row["layer"], str(row["count"]), row["status"],
                      "-" if row["objective"] is None else f"{row['objective']:,.0f}",
                      "-" if row["gap"] is None else f"{100 * row['gap']:.1f}%",
                      "-" if report.gap_to_bound() is None else f"{100 * report.gap_to_bound():.0f}%",
                      f"{row['wall_time_s']:.1f} s", row["functional"])
    _show(table)
    out.print(f"total {totals['objective']:,.0f} {reports[0].unit} over {sum(r['count'] for r in rows)} layers; "
              f"{totals['proved']}/{len(rows)} distinct layers proved optimal in {totals['wall_time_s']:.0f} s")
    if output is not None:
        out.print(f"result saved to {output}")
    raise _Exit(_exit_code(status))


def _functional_word(check: dict) -> str:
    """One word for a functional check: passed, FAILED, or why it did not run."""
    if not check.get("ran"):
        return f"not run ({check.get('reason', 'no mapping')})"
    return "passed" if check["outputs_match"] and check["counts_match"] else "FAILED"


def _render_multilevel(report) -> None:
    r, problem = report.result, report.problem
    hier, layer = problem.hierarchy, problem.layer
    out.print(f"[bold]{layer.name}[/] on [bold]{hier.name}[/] ({hier.rows} x {hier.cols} PEs, "
              f"{' > '.join(level.name for level in hier.levels)}), objective {problem.objective}")
    _status_line(report.status, r.method, r.wall_time_s, report.message or r.message)
    if r.mapping is None:
        return
    m = r.metrics
    summary = Table(show_edge=False, show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row(f"objective ({report.unit})", f"{r.objective:,.0f}")
    summary.add_row("solver's bound", "-" if r.best_bound is None else f"{r.best_bound:,.0f}")
    summary.add_row("gap to solver's bound", "-" if r.gap is None else f"{100 * r.gap:.2f}%")
    summary.add_row("rigorous lower bound", f"{report.bounds.objective:,.0f}")
    summary.add_row("gap to lower bound", "-" if report.gap_to_bound() is None else f"{100 * report.gap_to_bound():.1f}%")
    summary.add_row(f"energy ({hier.energy_unit})", f"{m.energy:,.0f}")
    summary.add_row("latency (cycles)", f"{m.latency:,.0f} (compute {m.compute_cycles:,})")
    summary.add_row("off-chip traffic", format_bytes(m.offchip_bytes))
    summary.add_row("PE utilization", f"{100 * m.utilization:.1f}%")
    summary.add_row("array boundary (words)", f"{m.array_boundary_words:,} (bound {report.bounds.array_boundary_words:,.0f})")
    f = report.functional
    summary.add_row("functional model", ("outputs and counts match" if f.get("outputs_match") and f.get("counts_match")
                                         else "MISMATCH") if f.get("ran") else f"not run: {f.get('reason')}")
    _show(summary)
    out.print(f"lower bound: {report.bounds.objective_meaning}; array boundary bound: "
              f"{report.bounds.array_boundary_meaning}")
    loops = Table(show_edge=False, title="loops per level (outermost first)", title_justify="left")
    loops.add_column("level")
    loops.add_column("loops")
    loops.add_column("holds")
    for level, block in zip(hier.levels, r.mapping.levels, strict=True):
        text = " ".join(f"{d}{block.factors[d]}" for d in block.order if block.factors.get(d, 1) > 1) or "-"
        loops.add_row(level.name, text, ", ".join(t for t in ("inputs", "weights", "outputs") if t in level.holds))
    spatial = " ".join(f"{d}{f}" for d, f in r.mapping.spatial_rows.items()) or "-"
    spatial += " | " + (" ".join(f"{d}{f}" for d, f in r.mapping.spatial_cols.items()) or "-")
    loops.add_row("array (rows | cols)", spatial, "")
    _show(loops)
    access = Table(show_edge=False, title="accesses (words)", title_justify="left")
    access.add_column("level")
    for col in ("inputs r/w", "weights r/w", "outputs r/w", f"energy ({hier.energy_unit})"):
        access.add_column(col, justify="right")
    for i, level in enumerate(hier.levels):
        cells = [f"{format_count(m.reads[i][t])} / {format_count(m.writes[i][t])}" for t in ("inputs", "weights", "outputs")]
        energy = sum(m.reads[i][t] * level.read_energy + m.writes[i][t] * level.write_energy
                     for t in ("inputs", "weights", "outputs"))
        access.add_row(level.name, *cells, f"{energy:,.0f}")
    access.add_row("MAC", "", "", f"{format_count(m.macs)} MACs", f"{m.macs * hier.mac_energy:,.0f}")
    _show(access)


def _save_yaml(path: Path, data: dict) -> None:
    """Write a result as YAML (numpy numbers as plain ones), or exit 2 saying why not."""
    try:
        path.write_text(yaml.safe_dump(json.loads(json.dumps(data, default=_plain)), sort_keys=False))
    except OSError as exc:
        _fail_input([f"{path}: cannot write: {exc.strerror or exc}"])


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(type(value).__name__)


def _status_line(status: str, method: str, seconds: float, reason: str) -> None:
    colour = {"optimal": "green", "feasible": "yellow"}.get(status, "red")
    text = {"optimal": f"proved by {method} in {seconds:.2f} s; checks below",
            "feasible": f"best found in {seconds:.2f} s; optimality not proved"}.get(status, reason)
    out.print(f"status: [bold {colour}]{status.upper()}[/] ({text})")


def _checks_table(checks) -> None:
    table = Table(title="certificate checks", title_justify="left", show_edge=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in checks:
        table.add_row(check.name, "[green]pass[/]" if check.passed else "[red]FAIL[/]", check.detail)
    _show(table)


def _heuristics_table(heuristics, unit: str) -> None:
    table = Table(title="heuristics", title_justify="left", show_edge=False)
    for col in ("method", unit, "gap to optimum", "time", "note"):
        table.add_column(col, justify="right" if col not in ("method", "note") else "left")
    for h in heuristics:
        table.add_row(h.name, "-" if h.objective is None else f"{h.objective:,.0f}",
                      "-" if h.gap is None else f"{100 * h.gap:.1f}%", f"{h.wall_time_s:.2f} s", h.detail)
    _show(table)


def _render_crossbar(report) -> None:
    from .formulations.crossbar.cost import evaluate as evaluate_allocation

    p, r = report.instance.problem, report.result
    chip = p.chip
    out.print(f"[bold]{p.name}[/] ({len(p.layers)} layers) on {chip.name}: {chip.rows}x{chip.columns} crossbars, "
              f"budget {p.crossbar_budget:,} crossbars, {chip.tiles} tiles")
    extras = [name for name, on in (("one layer per tile", p.one_layer_per_tile), ("buffer bandwidth", p.bandwidth)) if on]
    out.print(f"objective: {p.objective} · styles: {', '.join(p.styles)}" + (f" · {', '.join(extras)}" if extras else ""))
    out.print()
    if r.allocation is None:
        out.print(f"status: [bold red]{report.status.upper()}[/] - {r.message}")
        return
    _status_line(report.status, r.method, r.wall_time_s, r.message)
    metrics = evaluate_allocation(p, r.allocation)
    table = Table(title="allocation", title_justify="left", show_edge=False)
    for col in ("layer", "style", "copies", "crossbars", "stage cycles"):
        table.add_column(col, justify="left" if col in ("layer", "style") else "right")
    slowest = max(metrics.stage_cycles)
    for layer, style, copies, xb, cyc in zip(p.layers, r.allocation.styles, r.allocation.copies,
                                             metrics.crossbars, metrics.stage_cycles):
        mark = " <" if cyc == slowest else ""
        table.add_row(layer.name, style, str(copies), f"{xb:,}", f"{cyc:,}{mark}")
    _show(table)
    out.print(f"pipeline period {metrics.period:,} cycles (slowest stage {slowest:,}"
              + (f", bandwidth {metrics.bandwidth_cycles:,}" if p.bandwidth else "") + f"); latency {metrics.latency:,} cycles; "
              f"energy {metrics.energy_pj / 1e6:,.3f} uJ per image; "
              f"{metrics.crossbars_used:,} of {p.crossbar_budget:,} crossbars, {metrics.tiles_used} tiles")
    if report.bounds:
        out.print("bounds: " + ", ".join(f"{k} {v:,.0f}" for k, v in report.bounds.items() if v != float("inf")))
    if report.styles and p.objective != "energy":
        conv, split = report.styles.get("conventional"), report.styles.get("split")
        if conv and split:
            out.print(f"styles alone: conventional {conv:,}, split {split:,} cycles: kernel split is "
                      f"{conv / split:.2f}x the speed of conventional (the paper reports 2.03x on ResNet-34)")
    _heuristics_table(report.heuristics, "pJ" if p.objective == "energy" else "cycles")
    _checks_table(report.checks)


def _render_pairing(report) -> None:
    from .formulations.pairing.cost import evaluate as evaluate_pairing

    inst, r = report.instance, report.result
    p = inst.problem
    out.print(f"[bold]{p.name}[/]: {p.filters} filters x {p.positions} weights, {p.bits}-bit; weights {inst.weights_origin}")
    out.print()
    if r.pairing is None:
        out.print(f"status: [bold red]{report.status.upper()}[/] - {r.message}")
        return
    _status_line(report.status, r.method, r.wall_time_s, r.message)
    metrics = evaluate_pairing(p, r.pairing)
    out.print(f"distortion {metrics.distortion:,} (sum of squared weight changes); LP bound {r.lp_bound:,.0f}; "
              f"{r.message}")
    out.print(f"{metrics.pairs} pairs, {len(r.pairing.unpaired)} unpaired: {metrics.rows} rows instead of "
              f"{metrics.rows_unpaired} ({metrics.density_gain:.2f}x weight density)")
    arrays = report.arrays
    out.print(f"arrays of {inst.chip.name} ({inst.chip.rows}x{inst.chip.columns}): {arrays['without_pairing']} without "
              f"pairing, {arrays['with_pairing']} with pairing")
    shown = ", ".join(f"{i}+{j}" for i, j in r.pairing.pairs[:12])
    out.print(f"pairs: {shown}{', ...' if len(r.pairing.pairs) > 12 else ''}")
    _heuristics_table(report.heuristics, "distortion")
    _checks_table(report.checks)


def _bound_pim(instance, as_json: bool) -> None:
    from .formulations.pairing.cost import distortion_matrix
    from .formulations.pairing.exact import _with_dummy, column_generation
    from .pim_instances import CrossbarInstance
    from .validation.crossbar_bounds import period_bounds

    if isinstance(instance, CrossbarInstance):
        bounds = period_bounds(instance.problem)
    else:
        cost, _ = _with_dummy(distortion_matrix(instance.problem))
        bounds = {"matching_lp": column_generation(cost)[3]}
    if as_json:
        print(json.dumps(bounds, indent=2))
    else:
        for name, value in bounds.items():
            out.print(f"{name:14s} {value:,.0f}")
    raise _Exit(EXIT_OK)


def _version(value: bool) -> None:
    if value:
        print(f"mapcert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """mapcert: provably optimal accelerator mappings with certificates."""


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _click_exceptions():
    """click's exception classes: from click itself, or from the copy that
    recent typer releases vendor as ``typer._click``."""
    try:
        import click
    except ImportError:
        from typer import _click as click
    return click.exceptions


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status instead of raising."""
    try:
        app(args=argv, standalone_mode=False)
    except _Exit as exc:
        return exc.code
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        return 130
    except Exception as exc:  # click usage errors and the unexpected
        exceptions = _click_exceptions()
        if isinstance(exc, exceptions.UsageError):
            exc.show()
            return EXIT_INPUT
        if isinstance(exc, exceptions.ClickException):
            exc.show()
            return EXIT_INPUT
        if os.environ.get("MAPCERT_DEBUG"):
            raise
        err.print(f"mapcert: internal error: {type(exc).__name__}: {exc} (set MAPCERT_DEBUG=1 for a traceback)",
                  markup=False)
        return EXIT_ERROR
    return EXIT_OK


def entry() -> None:
    sys.exit(main())
