"""The ``mapcert`` command: commands and rendering, no family logic.

Every command loads an instance (or a result), finds its family in the
registry, and calls the generic pipeline; what differs between families is
asked of the family through the contract (``formulations/family.py``).

Exit status: 0 when a mapping is optimal or feasible (or a verification
passed), 2 for bad input, a method that does not apply, or an instance with
no feasible solution (one line per problem, ``file:line: field: what is
wrong``), 1 when a check failed or no method gave a usable answer, 3 when
``verify`` could not decide a check within its time limit (a re-proof that
did not finish) and nothing contradicts the result, 130 when interrupted
(Ctrl-C), 141 when the reader of the output closed it (``| head``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from ..formulations import registry
from ..formulations.family import PlotUnsupported, Status
from ..instances import InstanceError, Issue, first_field, line_of, load, read_document
from ..pipeline import MethodError, compare as run_compare, method_names, solve as run_solve
from ..result import RESULT_FORMAT
from ..units import parse_seconds
from ..version import __version__
from . import render

app = typer.Typer(
    add_completion=False,
    rich_markup_mode="markdown",  # help paragraphs are prose: a line break in a docstring is a space
    no_args_is_help=True,
    help="Provably optimal mappings of neural-network layers onto accelerators, with certificates.",
    epilog="Exit status: 0 optimal or feasible (verify: verified); 1 a failed check or no usable answer; 2 bad "
           "input, a method that does not apply, or no feasible mapping (file:line: field: what is wrong); 3 verify "
           "could not decide a check in its time limit and nothing contradicts the result; 130 interrupted; 141 "
           "the output's reader closed it (| head).",
)
class _PipedConsole(Console):
    """A console that lets a closed pipe reach ``main`` (rich's own answer is
    to exit with status 1, which reads as a failed check)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


out = _PipedConsole(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 110, highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)  # file.yaml:100: is no emoji

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_UNDECIDED = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141
"""The output's reader closed it (`mapcert solve x | head`): 128 + SIGPIPE, as a shell reports it."""


class _Exit(Exception):
    def __init__(self, code: int):
        self.code = code


def _fail_input(lines: list[str]) -> None:
    for line in lines:
        err.print(line, markup=False, soft_wrap=True)
    raise _Exit(EXIT_INPUT)


def _load(file: Path):
    try:
        return load(file)
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])


def _exit_code(status: Status) -> int:
    return {Status.OPTIMAL: EXIT_OK, Status.FEASIBLE: EXIT_OK, Status.INFEASIBLE: EXIT_INPUT}.get(status, EXIT_ERROR)


def seconds_option(text: str) -> float:
    """``--time-limit``'s value: seconds, or a duration such as ``3 min``."""
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _refuse_overwrite(path: Path | None, force: bool, inputs: list[Path] = ()) -> None:
    """Refuse, before any work, an output that would replace a file without
    ``--force``, or ever one of the command's own input files."""
    if path is not None and any(_same_file(path, given) for given in inputs):
        _fail_input([f"{path}: is an input of this command; not overwritten, even with --force (give another "
                     "output file)"])
    if path is not None and path.is_dir():
        _fail_input([f"{path}: is a directory; give a file to write, e.g. {path / 'result.yaml'}"])
    if path is not None and path.exists() and not force:
        _fail_input([f"{path}: exists; not overwritten (use --force to replace it)"])
    if path is not None and not path.parent.is_dir():  # said before the work, not after it
        _fail_input([f"{path}: cannot write: the folder {path.parent} does not exist"])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _save(path: Path, data: dict) -> None:
    """Write a result as YAML (as JSON when the name ends in .json), or exit 2
    saying why not. Either reads back with ``verify``: JSON is YAML."""
    try:
        path.write_text(json.dumps(data, indent=2) + "\n" if path.suffix.lower() == ".json"
                        else yaml.safe_dump(data, sort_keys=False))
    except OSError as exc:
        _fail_input([f"{path}: cannot write: {exc.strerror or exc}"])


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _spinner(as_json: bool, what: str = "working..."):
    """A progress spinner on an interactive terminal, nothing otherwise."""
    return err.status(what, spinner="dots") if sys.stderr.isatty() and not as_json else _Quiet()


def _progress(as_json: bool):
    """A rich progress bar on an interactive terminal (disabled otherwise)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not sys.stderr.isatty() or as_json)


@app.command()
def solve(
    files: list[Path] = typer.Argument(..., help="Instance YAML of any family (see README: family, workload, "
                                                 "hardware, ...), or a peer's files, imported as `mapcert import` "
                                                 "would: Timeloop's ARCH.yaml PROBLEM.yaml [ERT.yaml] ..., or "
                                                 "ZigZag's WORKLOAD.yaml HARDWARE.yaml [MAPPING.yaml]."),
    method: Optional[str] = typer.Option(None, "--method", "-m",
                                         help="Exact method (default: the instance's solver.method); "
                                              "`mapcert methods FILE` lists them."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", "-t", parser=seconds_option, metavar="SECONDS",
                                               help="Time per exact solve, in seconds or as a duration (3 min); on time-out the best solution is "
                                                    "returned as 'feasible' with its gap to a bound."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (mapcert-result/2) as JSON instead of tables."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the result for `mapcert verify`: YAML, or JSON when the name ends in .json."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
    functional: bool = typer.Option(True, "--functional/--no-functional",
                                    help="Execute the solution in the family's functional model (on by default)."),
    heuristics: bool = typer.Option(True, "--heuristics/--no-heuristics",
                                    help="Score the family's quick heuristics against the optimum (on by default). "
                                         "Off, they still stand in for an exact method that stops at its "
                                         "time limit with a worse solution."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="A network's distinct layers (parts) solved at once, each in its own "
                                            "process with its share of the cores (default: one per core; 1 solves "
                                            "them one after another with every core); one layer: the threads "
                                            "and processes its solve may use. The optima are the same."),
    export: Optional[tuple[str, Path]] = typer.Option(None, "--export", metavar="FORMAT PATH",
                                                      help="Also write the optimum in a peer's format: "
                                                           "`--export timeloop OUT.map.yaml` or "
                                                           "`--export zigzag OUT.yaml`."),
) -> None:
    """Find the optimal mapping of an instance (or of every distinct layer of a network) and certify it.

    The instance says what is optimal and among which mappings, by family:
    tiling: `objective:` energy, latency, edp or offchip_traffic (a list
    breaks ties), `space:` (`factors: divisors | any`, `halo: true`) and
    `constraints:` (per level `factors`, `whole`, `order`; per fan-out the
    dimensions each axis may unroll and a least utilization;
    docs/tiling-multilevel.md, "Mapping constraints"); crossbar: `objective:`
    bottleneck, latency or energy, `styles:` and `constraints:` (budget,
    tiles, bandwidth; docs/crossbar.md); pairing: the least distortion
    (docs/pairing.md); partition: `objective:` ema or latency, one `buffer:`
    or several to co-explore (docs/partition.md). `mapcert methods FILE`
    lists the methods that apply.
    """
    file = files[0]
    loaded = peers.load_files(files, _load)
    problem = loaded.problem
    family = registry.family_of(problem)
    _refuse_overwrite(output, force, files)
    for given in loaded.mappings:
        err.print(f"note: {given} is a mapping; `solve` finds the optimum and does not score it "
                  f"(`mapcert compare {' '.join(str(f) for f in files)}` does)", markup=False, soft_wrap=True)
    export = None if export is None or export[0] is None else export
    if export is not None:
        peers.check_export(export[0], family, loaded, export[1], force, files)
    parts = family.parts(problem)
    try:
        if parts is None:
            with _spinner(as_json), _solver_threads(jobs):  # one layer: the threads and processes it may use
                result = run_solve(problem, method, time_limit, functional=functional, heuristics=heuristics)
        else:
            with _progress(as_json) as bar:
                task = bar.add_task(f"solving {len(parts)} distinct parts", total=len(parts))
                done = []

                def step(name: str) -> None:  # called as each part is solved
                    done.append(name)
                    bar.update(task, description=f"solved {name}", completed=len(done))

                result = run_solve(problem, method, time_limit, functional=functional, heuristics=heuristics,
                                   progress=step, jobs=jobs)
    except MethodError as exc:
        where = "--method" if method is not None else f"{file}:{line_of(file, ('solver', 'method'))}: solver.method"
        _fail_input([f"{where}: {exc}"])
    if output is not None:
        _save(output, result.to_dict())
    if result.status == Status.INFEASIBLE and not as_json:
        path, line = first_field(file, family.infeasible_fields(problem, result.message))
        field = ".".join(str(p) for p in path)
        if output is not None:  # the infeasibility is a result too (`verify` re-checks it): say where it went
            err.print(f"result (status infeasible) saved to {output}", markup=False, soft_wrap=True)
        _fail_input([str(Issue(str(file), line, field, f"INFEASIBLE, no feasible solution: {result.message}"))])
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render.render_result(out, family, problem, result)
        if output is not None:
            out.print(f"result saved to {output}")
    if export is not None and result.solution_object is not None:  # after the report: a refusal keeps it
        said = peers.export(export[0], loaded, result.solution_object, family.objective_name(problem), export[1])
        if said and not as_json:
            out.print(said, markup=False, soft_wrap=True)
    raise _Exit(_exit_code(result.status))


@app.command()
def bound(
    files: list[Path] = typer.Argument(..., help="Instance YAML of any family, or a peer's files (as for solve)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Analytical lower bounds of an instance (each flagged rigorous or not), without solving."""
    problem = peers.load_files(files, _load).problem
    family = registry.family_of(problem)
    parts = family.parts(problem)
    unit, objective = family.unit(problem), family.objective_name(problem)
    if parts is None:
        bounds = [b.to_dict() for b in family.bounds(problem)]
        if as_json:
            print(json.dumps({"family": family.name, "objective_name": objective, "unit": unit,
                              "bounds": bounds}, indent=2))
            raise _Exit(EXIT_OK)
        render.say(out, family.describe(problem))
        t = render.table()
        for col in ("bound", unit, "rigorous", "meaning"):
            t.add_column(col, justify="right" if col == unit else "left")
        for b in bounds:
            t.add_row(b["name"], render.number(b["value"]), "yes" if b["rigorous"] else "no",
                      render.bound_meaning(b["value"], b["meaning"]))
        render.show(out, t)
        raise _Exit(EXIT_OK)
    rows = []
    with _progress(as_json) as bar:
        task = bar.add_task(f"bounding {len(parts)} distinct parts", total=len(parts))
        for part in parts:
            rows.append({"name": part.name, "count": part.count,
                         "bounds": [b.to_dict() for b in family.bounds(part.problem)]})
            bar.update(task, description=f"bounded {part.name}", advance=1)
    if as_json:
        print(json.dumps({"family": family.name, "objective_name": objective, "unit": unit,
                          "parts": rows, "total": render.network_bound_totals(rows)}, indent=2))
        raise _Exit(EXIT_OK)
    render.say(out, family.describe(problem))
    render.network_bounds(out, rows, unit)
    raise _Exit(EXIT_OK)


@app.command()
def methods(files: list[Path] = typer.Argument(..., help="Instance YAML of any family, or a peer's files (as "
                                                          "for solve).")) -> None:
    """The exact methods and heuristics of an instance's family, and whether each applies."""
    problem = peers.load_files(files, _load).problem
    family = registry.family_of(problem)
    parts = family.parts(problem)
    sample = parts[0].problem if parts else problem
    t = render.table(title=f"{family.name}: {family.summary}", title_justify="left")
    for col in ("method", "kind", "applies", "what it is"):
        t.add_column(col)
    default = family.default_method(sample)
    for m in family.methods(sample):
        why = m.why_not(sample)
        kind = "exact" if m.solves else "cross-check"
        t.add_row(m.name + (" (solve uses it)" if m.name == default else ""), kind, "yes" if why is None else f"no: {why}",
                  m.summary)
    for h in family.heuristics(sample):
        t.add_row(h.name, "heuristic", "yes", " ".join(filter(None, (h.summary, "" if h.in_solve else "(compare only)"))))
    out.print(t)
    raise _Exit(EXIT_OK)


def _read_yaml_file(path: Path):
    """The YAML document in ``path``, or a clear exit 2 saying why it cannot be
    read (at the line of a syntax error, as for an instance)."""
    try:
        return read_document(path)[0]
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])


@app.command()
def verify(
    result: Path = typer.Argument(..., help="A result saved by `mapcert solve -o`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    time_limit: float = typer.Option(60.0, "--time-limit", "-t", parser=seconds_option, metavar="SECONDS", help="Time for each re-proof: seconds, or a duration (3 min)."),
    methods: Optional[str] = typer.Option(None, "--methods",
                                          help="Comma-separated exact methods that re-prove the optimum "
                                               "(default: every one that applies)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="Layers of a network verified at once, each in its own process "
                                            "(default: one per core)."),
    every_check: bool = typer.Option(False, "--all", help="For a network, list every layer's checks (by default a "
                                                          "layer that passed them all is one row)."),
) -> None:
    """Re-derive everything in a saved result without trusting it.

    The objective, the metrics, the bounds, the certificate's checks, a functional run on fresh random data,
    the heuristics' scores, and the optimum by every exact method. Exit status 0 verified, 1 a check failed,
    3 inconclusive: a re-proof did not finish in the time limit and nothing contradicts the result (raise
    --time-limit)."""
    from ..validation.verify import verify as run_verify

    data = _read_yaml_file(result)
    if not isinstance(data, dict) or "format" not in data:
        hint = (f"; it looks like an instance: `mapcert solve {result} -o result.yaml` writes a result to verify"
                if isinstance(data, dict) and "family" in data else "")
        _fail_input([f"{result}:1: format: not a mapcert result (expected format: {RESULT_FORMAT}){hint}"])
    if data["format"] != RESULT_FORMAT:
        _fail_input([f"{result}:1: format: {data['format']!r} is not {RESULT_FORMAT}; solve the instance again "
                     "with this version to get a result it can verify"])
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    with _spinner(as_json, "verifying...") as spinner:
        def step(what: str) -> None:
            if hasattr(spinner, "update"):
                spinner.update(what)
            elif not as_json and what.startswith("verified "):  # a network's layers, in a log: one line each
                err.print(what, markup=False, highlight=False)

        try:
            verification = run_verify(data, str(result), time_limit=time_limit, methods=chosen, progress=step,
                                      jobs=jobs)
        except MethodError as exc:
            _fail_input([f"--methods: {exc}"])
    if as_json:
        print(json.dumps(verification.to_dict(), indent=2))
    else:
        if verification.family is not None:
            render.say(out, verification.family.describe(verification.problem))
        render.checks_table(out, verification.checks, title="verification", by_layer=not every_check)
        if verification.passed:
            out.print("[bold green]VERIFIED[/]")
        elif verification.inconclusive:
            undecided = [c for c in verification.checks if not c.passed]
            out.print(f"[bold yellow]INCONCLUSIVE[/]: {len(undecided)} of {len(verification.checks)} checks could not "
                      f"be decided within the time limit ({time_limit:g} s per re-proof) and nothing contradicts the "
                      "result; raise --time-limit to decide them")
            for c in undecided[:10]:
                out.print(f"  - {escape(c.name)}: {escape(c.detail)}", highlight=False)
        else:
            # a network's table runs to hundreds of rows: repeat what failed where the reader looks
            failed = [c for c in verification.checks if not c.passed]
            undecided = sum(1 for c in failed if c.undecided)
            out.print(f"[bold red]NOT VERIFIED[/]: {len(failed) - undecided} of {len(verification.checks)} checks "
                      "failed" + (f", {undecided} undecided in the time limit" if undecided else ""))
            for c in failed[:10]:
                out.print(f"  - {escape(c.name)}: {escape(c.detail)}", highlight=False)
            if len(failed) > 10:
                out.print(f"  ... and {len(failed) - 10} more (see the table above)")
    raise _Exit(EXIT_OK if verification.passed else EXIT_UNDECIDED if verification.inconclusive else EXIT_ERROR)


@app.command()
def compare(
    files: list[Path] = typer.Argument(..., help="Instance YAML of any family (of tiling, one layer: `solve` "
                                                 "scores the heuristics of a network's layers), or "
                                                 "a peer's files: Timeloop's (ARCH.yaml PROBLEM.yaml [ERT.yaml] "
                                                 "...) or ZigZag's (WORKLOAD.yaml HARDWARE.yaml [MAPPING.yaml]); a "
                                                 "mapping file among them is scored as with --mapping."),
    methods: Optional[str] = typer.Option(None, "--methods",
                                          help="Comma-separated methods (default: every exact method and heuristic "
                                               "that applies; `mapcert methods FILE` lists them)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", "-t", parser=seconds_option, metavar="SECONDS", help="Time for each exact method: seconds, or a duration (3 min)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with one row per method."),
    mapping: Optional[list[Path]] = typer.Option(None, "--mapping",
                                                 help="Your own solution (YAML: a solution, a `mapping:` or "
                                                      "`solution:` entry, a result of `mapcert solve -o`, or a "
                                                      "Timeloop or ZigZag mapping), scored beside the others; repeatable."),
    functional: bool = typer.Option(True, "--functional/--no-functional",
                                    help="Execute each row's solution in the family's functional model (on by "
                                         "default; off saves its time on large layers)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="Threads (and processes) each method may use: CP-SAT's search workers, "
                                            "the MILP's keep sets side by side (default: one per core, at most 8)."),
) -> None:
    """Run every method on one instance and score each (and your own solutions) against the certified optimum.

    Your mapping is scored under the instance's `constraints:` (see `mapcert
    solve --help`): one that breaks a fixed factor, a loop order or a fan-out's
    axes is reported with the constraint it breaks, not scored.
    """
    file = files[0]
    loaded = peers.load_files(files, _load)
    problem = loaded.problem
    family = registry.family_of(problem)
    if family.parts(problem) is not None:
        from ..workload_onnx import is_onnx

        document = _read_yaml_file(file)
        one = ("; `workload: {onnx: ..., layer: NAME}` picks one layer of a model"
               if isinstance(document, dict) and is_onnx(document.get("workload")) else "")
        _fail_input([f"{file}:{line_of(file, ('workload',))}: workload: `mapcert compare` takes one layer; `mapcert "
                     "solve` on a network scores every quick heuristic per layer and in total, `mapcert plot` draws "
                     f"every heuristic's gap{one}"])
    given = list(dict.fromkeys([*loaded.mappings, *(mapping or [])]))  # a mapping among the files, then --mapping
    user = {f"mapping: {path.name}": _read_user_solution(family, loaded, path) for path in given}
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    available = method_names(family, problem)
    unknown = [m for m in chosen or [] if m not in available]
    if unknown:
        why = {m.name: m.why_not(problem) for m in family.methods(problem)}
        named = [f"{m} (does not apply: {why[m]})" if why.get(m) else m for m in unknown]
        _fail_input([f"--methods: unknown or inapplicable {', '.join(named)}; choose from {', '.join(available)}"])
    with _spinner(as_json), _solver_threads(jobs):
        comparison = run_compare(problem, chosen, time_limit, user, functional=functional)
    if as_json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        render.render_comparison(out, comparison)
    raise _Exit(_exit_code(comparison.status))


@contextlib.contextmanager
def _solver_threads(jobs: int | None):
    """``MAPCERT_SOLVER_THREADS`` at ``jobs`` while the block runs (unchanged
    when None): every solver back-end reads its thread count there."""
    from ..solvers.threads import ENVIRONMENT_VARIABLE

    before = os.environ.get(ENVIRONMENT_VARIABLE)
    if jobs is not None:
        os.environ[ENVIRONMENT_VARIABLE] = str(jobs)
    try:
        yield
    finally:
        if jobs is not None:
            if before is None:
                os.environ.pop(ENVIRONMENT_VARIABLE, None)
            else:
                os.environ[ENVIRONMENT_VARIABLE] = before


def _read_user_solution(family, loaded, path: Path):
    """A solution of the loaded problem from YAML, or a clear exit 2 naming
    what is wrong (a peer's mapping file, Timeloop's or ZigZag's, is translated)."""
    problem = loaded.problem
    data = _read_yaml_file(path)
    peer = peers.read_peer_mapping(loaded, path, data)
    if peer is not None:
        return peer
    prefix: tuple = ()
    other = _other_layer(problem, data)
    if other:
        _fail_input([f"{path}:1: instance: this result solves {other}; the instance is "
                     f"{problem.layer.shape_text()}: a mapping of one layer cannot be scored on another"])
    if isinstance(data, dict) and data.get("parts") and data.get("solution") is None:
        names = [str(part.get("name")) for part in data["parts"] if isinstance(part, dict)][:3]
        _fail_input([f"{path}:1: parts: a network's result holds one solution per distinct layer; compare one layer: "
                     f"its solution is under parts[NAME].result.solution ({', '.join(names)}, ...), to copy into a "
                     "file of its own"])
    if isinstance(data, dict) and isinstance(data.get("solution"), dict):
        data, prefix = data["solution"], ("solution",)
    if isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        data, prefix = data["mapping"], prefix + ("mapping",)
    if not isinstance(data, dict):
        _fail_input([f"{path}:1: solution: not a mapping file mapcert reads: mapcert's own solution YAML (or a result "
                     "of `mapcert solve -o`), a Timeloop mapping (map.yaml, not the map.txt summary) or a ZigZag "
                     "mapping list"])
    try:
        return family.solution_from_dict(problem, data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        lines = []
        for message in getattr(exc, "problems", None) or (str(exc),):  # each problem at the line it is about
            field = _field_of_mapping_problem(data, message)
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in prefix + field).lstrip(".") or "solution"
            lines.append(f"{path}:{line_of(path, prefix + field)}: {where}: {message}")
        _fail_input(lines)


def _other_layer(problem, data) -> str | None:
    """The layer a saved result was solved for, when it is not the
    problem's (a tiling result's ``instance`` names it): its solution's
    factors would not multiply to this layer's extents, and saying so beats
    a line per dimension. None when it is the same layer or cannot be told."""
    from ..instances import load_document

    instance = data.get("instance") if isinstance(data, dict) else None
    layer = getattr(problem, "layer", None)
    if not isinstance(instance, dict) or layer is None or "solution" not in data:
        return None
    try:
        theirs = getattr(load_document(instance, "result"), "layer", None)
    except (InstanceError, ValueError, TypeError, KeyError, AttributeError, OSError):
        return None
    if theirs is None or theirs.shape_text() == layer.shape_text():
        return None
    return theirs.shape_text()


def _field_of_mapping_problem(data: dict, message: str) -> tuple:
    """The entry of a hand-written mapping that ``message`` is about, so the
    error points at its line: a level it names, the spatial block, or the
    first level with a factor of the dimension it names (() if none)."""
    import re

    levels = data.get("levels")
    names = [lv.get("name") if isinstance(lv, dict) else None for lv in levels] if isinstance(levels, list) else []
    named = re.match(r"(?:mapping )?level '?([^':]+)'?", message)
    if named and named.group(1) in names:
        unknown = re.search(r"unknown field '([^']+)'", message)
        index = names.index(named.group(1))
        return ("levels", index) + ((unknown.group(1),) if unknown else ())
    unknown = re.match(r"unknown field '([^']+)'", message)
    if unknown and unknown.group(1) in data:
        return (unknown.group(1),)
    if message.startswith("spatial"):
        return ("spatial",) if "spatial" in data else ()
    dim = re.match(r"factors of (\w+)", message)
    if dim and names:
        for i, lv in enumerate(levels):
            if isinstance(lv, dict) and dim.group(1) in (lv.get("factors") or {}):
                return ("levels", i, "factors", dim.group(1))
    tile = re.match(r"tile of (\w+)", message)  # a two-level mapping: its tiles and its order
    if tile and tile.group(1) in (data.get("tiles") or {}):
        return ("tiles", tile.group(1))
    if message.startswith("order") and "order" in data:
        return ("order",)
    return ("levels",) if names else ()


@app.command()
def plot(
    file: Path = typer.Argument(..., help="Instance YAML (a tiling layer or network, or a graph partition), or a "
                                          "results store written by `mapcert sweep`."),
    output: Path = typer.Option(Path("mapcert_plot.png"), "--output", "-o", help="Picture to write (PNG, SVG, PDF)."),
    sizes: Optional[str] = typer.Option(None, "--sizes",
                                        help="One tiling layer: comma-separated capacities of the swept level "
                                             "(default: 1/8x to 4x of its size)."),
    level: Optional[str] = typer.Option(None, "--level",
                                        help="One tiling layer: the level to sweep (default: the largest shared "
                                             "on-chip level)."),
    time_limit: float = typer.Option(30.0, "--time-limit", "-t", parser=seconds_option, metavar="SECONDS", help="Time per exact solve: seconds, or a duration (3 min)."),
    x_axis: Optional[str] = typer.Option(None, "--x", help="A store: the swept field on the x axis (default: the "
                                                           "first numeric one)."),
    layer: Optional[str] = typer.Option(None, "--layer", help="A store: draw one layer instead of the network "
                                                              "totals."),
    sweep_name: Optional[str] = typer.Option(None, "--sweep", help="A store: which sweep (when it holds several)."),
    where: list[str] = typer.Option([], "--where", help="A store: keep the points whose field has this value "
                                                        "(FIELD=VALUE; repeatable)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> None:
    """Draw an instance's picture, or a results store's.

    The objective against buffer size with the lower bound (one layer), each heuristic's gap per layer (a
    network), or the optimal partition with its subgraphs coloured.  Given a results store: the proved
    objective against a swept size with the lower bound and the heuristics, and every point's total with the
    best point."""
    _refuse_overwrite(output, force)
    formats = _picture_formats()
    if output.suffix.lower().lstrip(".") not in formats:
        _fail_input([f"--output: {output.name}: a picture needs one of the endings {', '.join('.' + f for f in formats)}"])
    if _is_store(file):
        from .sweeps import plot_store

        said = plot_store(file, output, x_axis, layer, sweep_name, where)
        out.print(f"wrote {output}: {said}", soft_wrap=True, markup=False)
        raise _Exit(EXIT_OK)
    problem = _load(file)
    family = registry.family_of(problem)
    options = {"sizes": sizes, "level": level, "time_limit": time_limit}
    with _progress(False) as bar:
        def progress(what: str, total: int):
            task = bar.add_task(what, total=total)
            return lambda: bar.advance(task)

        try:
            said = family.plot(problem, output, options, progress)
        except PlotUnsupported as exc:
            _fail_input([f"{file}:1: {exc}"])
    out.print(f"wrote {output}: {said}")
    raise _Exit(EXIT_OK)


def _is_store(path: Path) -> bool:
    """Whether ``path`` is an SQLite file or named like one (a results store) rather than YAML."""
    from ..sweeps.store import SQLITE_MAGIC

    if path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _picture_formats() -> list[str]:
    """The file endings matplotlib can write."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


@app.command()
def presets() -> None:
    """List the named networks (layers usable as `workload: net.layer`) and each family's hardware."""
    from .. import workload_library

    t = render.table(title="networks", title_justify="left")
    t.add_column("network")
    t.add_column("layers", justify="right")
    t.add_column("first layers")
    for name in workload_library.networks():
        layers = workload_library.network(name)
        t.add_row(name, str(len(layers)), ", ".join(list(layers)[:4]) + ", ...")
    out.print(t)
    for family in registry.families():
        for item in family.presets(render.table):
            render.show(out, item)
    raise _Exit(EXIT_OK)


def _version(value: bool) -> None:
    if value:
        print(f"mapcert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """mapcert: provably optimal accelerator mappings with certificates."""


def _click_exceptions() -> tuple[type, ...]:
    """click's usage-error class wherever typer takes it from: recent typer
    releases vendor click as ``typer._click``, while click itself may be
    installed too (Dask needs it), with classes of its own."""
    classes = []
    try:
        from typer import _click

        classes.append(_click.exceptions.ClickException)
    except ImportError:
        pass
    try:
        import click

        classes.append(click.exceptions.ClickException)
    except ImportError:
        pass
    return tuple(classes)


from . import sweeps as _sweeps  # noqa: E402,F401  (registers `sweep` and `results`)
from . import peers  # noqa: E402  (registers `import`)

app.add_typer(peers.import_app, name="import")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status instead of raising."""
    try:
        code = app(args=argv, standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into a return of 130 when not standalone
            raise KeyboardInterrupt
    except _Exit as exc:
        return exc.code
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted: stopped before the end; nothing more was written")
        return 130
    except registry.PluginError as exc:
        err.print(f"mapcert: {exc} (check {registry.PLUGIN_VARIABLE} and the installed plug-ins)", markup=False)
        return EXIT_INPUT
    except BrokenPipeError:
        # the reader of the output closed it (`| head`): stop quietly, with the status a shell gives a
        # process its pipe's reader left (128 + SIGPIPE), and keep Python from reporting it at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError:
        err.print("mapcert: out of memory: the instance is too large for this machine; reduce its sizes")
        return EXIT_INPUT
    except Exception as exc:  # click usage errors and the unexpected
        if isinstance(exc, _click_exceptions()):
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
