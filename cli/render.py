"""Terminal rendering of results, comparisons and verifications.

Only what every family shares is drawn here (status, objective and bounds,
heuristics, the certificate's checks, a network's layers); each family
draws its own mapping through ``Family.render``.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from .. import workload_library
from ..formulations.family import Family, Status
from ..pipeline import Comparison
from ..result import Result
from ..validation.certificate import NO_CONCLUSION
from ..units import format_number as number

COLOURS = {Status.OPTIMAL: "green", Status.FEASIBLE: "yellow"}


class _FoldingTable(RichTable):
    """A table that never loses a character to an ellipsis: on a narrow
    terminal a cell too wide for its column breaks onto the next line (a
    number cut to ``18,437,674,47…`` reads as another number)."""

    def add_column(self, header="", *args, **kwargs) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(header, *args, **kwargs)


def table(**kwargs) -> RichTable:
    """Tables in one plain style that reads well in a terminal and in a log."""
    kwargs.setdefault("box", box.SIMPLE_HEAD)
    kwargs.setdefault("show_edge", False)
    return _FoldingTable(**kwargs)


def percent(value: float | None, digits: int = 1) -> str:
    """A ratio as a percentage; a gap too small to show at ``digits`` but not
    zero says so (``<0.1%``) rather than reading as proved."""
    if value is None:
        return "-"
    if 0 < value < 0.5 * 10 ** -(digits + 2):
        return f"<{10 ** -digits:.{digits}f}%"
    return f"{100 * value:.{digits}f}%"


def show(console: Console, item) -> None:
    console.print()
    console.print(item)


def say(console: Console, text: str) -> None:
    """Print a line with markup; as plain text when a name in it (a layer
    called ``c[/]``) is not valid markup."""
    try:
        console.print(text)
    except MarkupError:
        console.print(text, markup=False)


def status_line(console: Console, result: Result) -> None:
    """One line: the status, who proved it, how long it took."""
    colour = COLOURS.get(result.status, "red")
    method, _, fallback = result.method.partition(" (then heuristic ")
    proof = result.message.rpartition("optimal: ")[2] if "optimal: " in (result.message or "") else ""
    proved = (f"found by heuristic {fallback[:-1]} after {method} stopped, proved optimal: "
              f"{proof or 'a rigorous bound meets it'}," if fallback
              else f"found by {result.method}, proved optimal: {proof}," if proof else f"proved by {result.method}")
    text = {
        Status.OPTIMAL: f"{proved} in {result.wall_time_s:.2f} s, confirmed by evaluate"
                        + (" and the functional model" if result.certificate.functional.passed else ""),
        Status.FEASIBLE: f"best found by {result.method} in {result.wall_time_s:.2f} s; optimality not proved",
    }.get(result.status, result.message)
    console.print(f"status: [bold {colour}]{result.status.value.upper()}[/] ({text})")
    if (result.message and result.status in (Status.OPTIMAL, Status.FEASIBLE)
            and result.message.strip().upper() != result.status.value.upper()):  # a solver's bare "OPTIMAL" says nothing new
        console.print(f"note: {result.message}", markup=False)


def summary(console: Console, result: Result) -> None:
    """Objective, best bound, gap and the rigorous bound."""
    t = table(show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row(f"objective: {result.objective_name} ({result.unit})", number(result.objective))
    for s in result.secondary:  # lexicographic: each least among the optima of the ones above when proved
        t.add_row(f"then: {s.objective} ({s.unit})", number(s.value) + ("" if s.proved else " (not proved least)"))
    proved = result.status == Status.OPTIMAL
    # unproved, the best bound is the larger of the method's own bound and the rigorous one (docs/results.md)
    t.add_row("best bound" if proved else "best bound (the method's or the rigorous, whichever is larger)",
              number(result.best_bound))
    t.add_row("gap (objective - best bound) / objective", percent(result.gap, 3))
    t.add_row("rigorous lower bound", number(result.lower_bound))
    if result.objective and result.lower_bound:
        t.add_row(f"{'optimum' if proved else 'objective'} / rigorous bound",
                  f"{result.objective / result.lower_bound:.3f}")
    show(console, t)


def bound_meaning(value: float, meaning: str) -> str:
    """A bound's meaning, saying so when its argument gives nothing on
    this instance (a segment bound is 0 when every tensor fits on chip)."""
    return f"{meaning} (not binding here)" if value <= 0 else meaning


def network_bound_totals(rows: list[dict]) -> dict:
    """A network's bounds: each bound summed over its distinct parts, each
    part weighed by how often it occurs, and ``best_rigorous``, the sum of
    each part's largest rigorous bound. The network's objective is that
    weighted sum of its parts' objectives, so each total bounds it, and
    ``best_rigorous`` is the tightest of them."""
    totals: dict[str, float] = {}
    best = 0.0
    for row in rows:
        for b in row["bounds"]:
            totals[b["name"]] = totals.get(b["name"], 0.0) + row["count"] * b["value"]
        best += row["count"] * max((b["value"] for b in row["bounds"] if b["rigorous"]), default=0.0)
    return {"bounds": totals, "best_rigorous": best}


def network_bounds(console: Console, rows: list[dict], unit: str) -> None:
    """A network's bounds as one table: a row per distinct part, a column
    per bound and the best rigorous one, the network's totals below, and
    each bound's meaning once under the table."""
    names: list[str] = []
    meanings: dict[str, tuple[bool, str]] = {}
    for row in rows:
        for b in row["bounds"]:
            if b["name"] not in names:
                names.append(b["name"])
            meanings.setdefault(b["name"], (b["rigorous"], b["meaning"]))
    t = table(title=f"lower bounds ({unit})", title_justify="left")
    t.add_column("layer")
    t.add_column("x", justify="right")
    for name in names:
        t.add_column(name if meanings[name][0] else f"{name} (not rigorous)", justify="right")
    several = sum(rigorous for rigorous, _meaning in meanings.values()) > 1
    if several:
        t.add_column("best rigorous", justify="right")

    def cell(value: float | None) -> str:
        return "-" if value is None or value <= 0 else number(value)

    for row in rows:
        values = {b["name"]: b["value"] for b in row["bounds"]}
        best = max((b["value"] for b in row["bounds"] if b["rigorous"]), default=None)
        t.add_row(row["name"], str(row["count"]), *(cell(values.get(n)) for n in names), *([cell(best)] if several else []))
    totals = network_bound_totals(rows)
    t.add_section()
    t.add_row(f"network ({sum(r['count'] for r in rows)} layers)", "",
              *(cell(totals["bounds"].get(n)) for n in names), *([cell(totals["best_rigorous"])] if several else []))
    show(console, t)
    console.print()
    if any(b["value"] <= 0 for row in rows for b in row["bounds"]):
        console.print("'-': the argument gives nothing on that layer (every tensor it counts fits on chip).",
                      markup=False, soft_wrap=True)
    console.print("The network's totals weigh each layer by how often it occurs (x)"
                  + ("; 'best rigorous' adds each layer's largest rigorous bound, so it is the tightest." if several
                     else "."), markup=False, soft_wrap=True)
    for name in names:
        rigorous, meaning = meanings[name]
        console.print(f"  {name}: {meaning}" + ("" if rigorous else " (not rigorous: never asserted)"),
                      markup=False, soft_wrap=True)


def bounds_table(console: Console, result: Result) -> None:
    if not result.bounds:
        return
    t = table(title="bounds", title_justify="left")
    for col in ("bound", result.unit, "objective / bound", "rigorous", "meaning"):
        t.add_column(col, justify="right" if col in (result.unit, "objective / bound") else "left")
    for b in result.bounds:
        ratio = f"{result.objective / b.value:.3f}" if result.objective and b.value > 0 else "-"
        t.add_row(b.name, number(b.value), ratio, "yes" if b.rigorous else "no", bound_meaning(b.value, b.meaning))
    show(console, t)


def heuristics_table(console: Console, result: Result) -> None:
    if not result.heuristics:
        return
    reference = "optimum" if result.status == Status.OPTIMAL else "bound"
    t = table(title="heuristics", title_justify="left")
    # (objective - reference) / reference: how far above the reference, unlike the summary's gap, which is
    # relative to the objective (docs/results.md)
    for col in ("method", result.unit, f"above {reference}", "time", "note"):
        t.add_column(col, justify="right" if col not in ("method", "note") else "left")
    for h in result.heuristics:
        t.add_row(h.method, number(h.objective), percent(h.gap), f"{h.wall_time_s:.2f} s", h.note)
    show(console, t)


def check_word(check) -> str:
    """A check's verdict: ``pass``, ``FAIL``, ``undecided`` (failed only for
    want of time), or ``no answer`` (another method that ran out of time:
    nothing contradicts the result, nothing confirms it)."""
    if check.passed:
        return "[yellow]no answer[/]" if NO_CONCLUSION in check.detail else "[green]pass[/]"
    return "[yellow]undecided[/]" if getattr(check, "undecided", False) else "[red]FAIL[/]"


def checks_table(console: Console, checks, title: str = "certificate checks", by_layer: bool = False) -> None:
    """The checks, one per row; ``by_layer``: a network layer's checks
    (named ``parts[LAYER]. ...``) as one row when all of them passed, in
    full when one failed, so a network's table stays a screen long."""
    t = table(title=title, title_justify="left")
    t.add_column("check")
    t.add_column("result")
    t.add_column("detail")
    rows, layers = [], {}
    for c in checks:
        layer = _layer_of(c.name) if by_layer else None
        if layer is None:
            rows.append(c)
        else:
            if layer not in layers:
                layers[layer] = []
                rows.append(layer)
            layers[layer].append(c)
    for row in rows:  # names and details quote user data (layer names in brackets): no markup
        group = layers.get(row) if isinstance(row, str) else None
        if group is not None and all(c.passed for c in group):
            t.add_row(escape(f"parts[{row}]: every check"), "[green]pass[/]",
                      escape(f"{len(group)} checks (--all lists them)"))
            continue
        for c in group if group is not None else [row]:
            t.add_row(escape(c.name), check_word(c), escape(c.detail))
    show(console, t)


def _layer_of(name: str) -> str | None:
    """The layer a check's name is about (``parts[LAYER]. ...``), or None."""
    if not name.startswith("parts["):
        return None
    end = name.find("].")
    return None if end < 0 else name[len("parts["):end]


def functional_word(entry) -> str:
    """One word for a functional run: passed, FAILED, or why it did not run."""
    if not entry.ran:
        return f"not run ({entry.reason})" if entry.reason else "not run"
    return "passed" if entry.passed else "FAILED"


def render_result(console: Console, family: Family, problem, result: Result) -> None:
    """The whole terminal view of a solved instance or network."""
    say(console, family.describe(problem))
    console.print(f"space: {result.certificate.space}", markup=False)
    if result.parts is not None:
        render_network(console, result)
        return
    status_line(console, result)
    if result.solution is None:
        return
    summary(console, result)
    family.render(problem, result, console, table)
    bounds_table(console, result)
    heuristics_table(console, result)
    checks_table(console, result.certificate.checks)
    console.print(f"functional model: {functional_word(result.certificate.functional)}")


def shape_text(layer: dict) -> str:
    """A layer of a network's table in a few characters, with the peers'
    dimension names: ``N4 M64 C3 P112 Q112 R7 S7 /2 g2`` (N only when
    not 1)."""
    dims = layer.get("dims", {})
    text = " ".join(f"{d}{dims[d]}" for d in "NMCPQRS" if d in dims and (d != "N" or dims[d] != 1))
    stride = layer.get("stride", 1)
    if stride != 1:
        text += " /" + ("x".join(map(str, stride)) if isinstance(stride, list) else str(stride))
    if layer.get("dilation", 1) != 1:
        dilation = layer["dilation"]
        text += " dil" + ("x".join(map(str, dilation)) if isinstance(dilation, list) else str(dilation))
    if layer.get("groups", 1) != 1:
        text += f" g{layer['groups']}"
    return text


def network_layers(result: Result) -> tuple[str, dict]:
    """The network's name and its layer table, as the saved instance holds
    them (empty when the instance does not list its layers)."""
    workload = (result.instance or {}).get("workload")
    if isinstance(workload, str) and workload in workload_library.networks():  # a network of workloads/
        return workload, workload_library.network(workload)
    if not isinstance(workload, dict) or not isinstance(workload.get("layers"), dict):
        return "", {}
    return str(workload.get("name", "")), workload["layers"]


def render_network(console: Console, result: Result) -> None:
    colour = COLOURS.get(result.status, "red")
    console.print(f"status: [bold {colour}]{result.status.value.upper()}[/]; each distinct layer solved once")
    network, layers = network_layers(result)
    prefix = f"{network}." if network and all(p.name.startswith(f"{network}.") for p in result.parts) else ""
    names = [part.name[len(prefix):] for part in result.parts]
    shapes = [shape_text(layers[name]) if isinstance(layers.get(name), dict) else "" for name in names]
    t = table()
    objectives = [number(part.result.objective) for part in result.parts]
    cells = [(percent(r.gap), f"{r.objective / r.lower_bound:.3f}" if r.objective and r.lower_bound else "-",
              f"{r.wall_time_s:.1f} s") for r in (part.result for part in result.parts)]
    words = [functional_word(part.result.certificate.functional) for part in result.parts]
    same_word = len(set(words)) == 1  # one line below the table says it, and the shapes get the room
    columns = ("layer", "shape", "x", "status", result.unit, "gap", "/ rigorous bound", "time", "functional")
    # numbers stay whole; a name stays whole when the table still fits (a user finds the layer by it: about 70
    # columns go to the other cells and their gaps), else it breaks over lines, as a shape does between dimensions
    whole_names = max(map(len, names)) + max(map(len, objectives)) + 70 <= console.width
    for col in columns:
        if (col == "shape" and not any(shapes)) or (col == "functional" and same_word):
            continue
        widest = {"layer": max(map(len, names)) if whole_names else None, result.unit: max(map(len, objectives)),
                  **{c: max(len(row[i]) for row in cells) for i, c in enumerate(("gap", "/ rigorous bound", "time"))}
                  }.get(col)
        t.add_column(col, justify="left" if col in ("layer", "shape", "status", "functional") else "right",
                     min_width=widest, max_width=10 if col == "/ rigorous bound" else None)
    for part, name, shape, word, objective, (gap, ratio, seconds) in zip(result.parts, names, shapes, words,
                                                                         objectives, cells, strict=True):
        t.add_row(escape(name), *([escape(shape)] if any(shapes) else []), str(part.count),
                  part.result.status.value, objective, gap, ratio, seconds, *([] if same_word else [word]))
    show(console, t)
    if same_word and words:
        console.print(f"functional model: {words[0]} on every distinct layer", markup=False)
    metrics = result.metrics or {}
    counted = metrics.get("layers", "?")
    console.print(f"total {number(result.objective)} {result.unit} over {counted} layer{'' if counted == 1 else 's'}; "
                  f"{metrics.get('proved', 0)}/{metrics.get('distinct_layers', '?')} distinct layers proved optimal "
                  f"in {result.wall_time_s:.0f} s; best bound {number(result.best_bound)} (gap "
                  f"{percent(result.gap)}; the heuristics are measured against it); rigorous bound "
                  f"{number(result.lower_bound)}")
    for s in result.secondary:
        proved = "least among the optima" if s.proved else "not proved least"
        console.print(f"then {s.objective}: {number(s.value)} {s.unit} ({proved} on every layer)")
    heuristics_table(console, result)


def row_status(row) -> str:
    """A comparison row's status word: ``time-out`` for a method that ran
    out of time without an answer (its status is ``error``: no usable
    answer), so that it does not read as a failed check."""
    if row.status == Status.ERROR and "time limit" in (row.note or ""):
        return "time-out"
    return row.status.value


def render_comparison(console: Console, comparison: Comparison) -> None:
    if comparison.optimum is not None:
        verdict = f"certified optimum {number(comparison.optimum)}"
    elif comparison.status == Status.INFEASIBLE:
        verdict = "no feasible solution"
    elif comparison.lower_bound is not None:
        verdict = f"optimum not proved; gaps are to the lower bound {number(comparison.lower_bound)}"
    else:
        verdict = "optimum not proved"
    console.print(f"{comparison.family}: {comparison.objective_name} ({comparison.unit}); {verdict}")
    if comparison.message:
        console.print(f"[bold red]{comparison.message}[/]")
    gap_title = "above optimum" if comparison.optimum is not None or comparison.lower_bound is None else "above bound"
    t = table()
    cells = [(row.method, row.kind, row_status(row), number(row.objective), percent(row.gap),
              f"{row.wall_time_s:.2f} s", row.functional, row.note) for row in comparison.rows]
    columns = ("method", "kind", "status", "objective", gap_title, "time", "functional", "note")
    widest = [max([len(col)] + [len(c[i]) for c in cells]) for i, col in enumerate(columns)]
    notes = []
    if sum(w + 3 for w in widest) > console.width:  # the notes would be cut at the edge: list them below
        notes = list(dict.fromkeys(c[-1] for c in cells if c[-1]))  # rows with one note share its number
        cells = [c[:-1] + (f"[{notes.index(c[-1]) + 1}]" if c[-1] else "",) for c in cells]
    # every column but the note keeps its longest cell whole; when even that is too wide (a mapping file with a
    # long name), the method's name breaks over lines rather than a number column being dropped
    folded = {"note"} | ({"method"} if sum(w + 3 for w in widest[:-1]) > console.width else set())
    room = 7 + (15 if "method" in folded else 0)  # the note's marker, and a folded name's few letters a line
    if sum(w + 3 for i, w in enumerate(widest) if columns[i] not in folded) + room > console.width:
        # still too wide (80 columns): each row's kind goes under its method's name, so no column is cut,
        # a header may wrap at its spaces
        widest = [max([len(c[i]) for c in cells] + [max(map(len, col.split()))]) for i, col in enumerate(columns)]
        # and its note's marker after the kind, so the note column gives the names its room
        cells = [(Text(c[0].removeprefix("mapping: ")) + Text("\n" + c[1], style="dim") + Text(
            f" {c[-1]}" if c[-1] else ""),) + c[2:-1] for c in cells]
        columns, widest = columns[:1] + columns[2:-1], widest[:1] + widest[2:-1]
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if col in ("objective", gap_title, "time") else "left",
                     min_width=widest[i] if col not in folded else None)
    for row in cells:
        t.add_row(*row)
    show(console, t)
    for n, note in enumerate(notes, start=1):
        console.print(f"[{n}] {note}", markup=False)
