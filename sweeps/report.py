"""A sweep's HTML report: one self-contained file with its tables and pictures.

Pictures are PNG embedded as ``data:`` URIs and the style sheet is inline,
so the file can be mailed, archived or opened offline.  The report has:
the sweep's axes and counts; one row per point (network totals, lower
bound, gap, best heuristic, the best point highlighted); the main picture
(objective against the swept size, every point's total); one small curve
per heavy layer; the best point's mapping when its family draws one; and
one row per job, folded.
"""

from __future__ import annotations

import base64
import html
import io
import json
import tempfile
import time
from pathlib import Path

from ..formulations.family import PlotUnsupported
from ..units import format_quantity
from ..version import __version__
from . import pictures
from .spec import describe_value
from .store import Store
from .tables import PointSummary, axes_of, best_point, best_points, job_rows, point_summaries

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1300px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f5f7; } td.text, th.text { text-align: left; }
tr.best td { background: #e6f4e6; font-weight: bold; }
td.optimal { color: #1a7f37; } td.feasible { color: #9a6700; } td.failed, td.error { color: #cf222e; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
details summary { cursor: pointer; color: #0969da; }
"""


def _png(fig_writer) -> str:
    """A picture drawn by ``fig_writer(path)`` as a data URI."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "picture.png"
        fig_writer(path)
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}>{html.escape(str(value))}</td>"


def _points_table(summaries: list[PointSummary], axes: list[str]) -> str:
    winners = {s.index for s in best_points(summaries).values()}
    head = ["#", *axes, "workload", "status", "proved", "objective", "lower bound", "gap", "best heuristic",
            "solve s"]
    rows = ["<table class='points'><thead><tr>" + "".join(
        f"<th class='{'text' if h in axes or h in ('workload', 'status') else ''}'>{html.escape(h)}</th>"
        for h in head) + "</tr></thead><tbody>"]
    for s in summaries:
        heuristic = min((v for v in s.heuristics.values() if v is not None), default=None)
        over = "-" if heuristic is None or not s.objective else f"+{(heuristic / s.objective - 1) * 100:.1f}%"
        css = " class='best'" if s.index in winners else ""
        rows.append(f"<tr{css}>" + _cell(s.index) + "".join(_cell(describe_value(s.values.get(a)), "text")
                                                             for a in axes)
                    + _cell(s.workload, "text") + _cell(s.status, f"text {s.status}") + _cell(f"{s.proved}/{s.distinct}")
                    + _cell(format_quantity(s.objective, s.unit)) + _cell(format_quantity(s.lower_bound, s.unit))
                    + _cell("-" if s.gap is None else f"{s.gap * 100:.1f}%") + _cell(over)
                    + _cell(f"{s.wall_time_s:.1f}") + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _jobs_table(rows: list[dict], axes: list[str]) -> str:
    from .tables import axis_column

    head = ["#", *axes, "layer", "x", "status", "objective", "lower bound", "gap", "solve s", "reason"]
    out = ["<table class='jobs'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for r in rows:
        unit = r.get("unit") or ""
        out.append("<tr>" + _cell(r["point"]) + "".join(_cell(describe_value(r.get(axis_column(a))), "text")
                                                        for a in axes)
                   + _cell(r["part"], "text") + _cell(r["count"]) + _cell(r["status"], f"text {r['status']}")
                   + _cell(format_quantity(r["objective"], unit)) + _cell(format_quantity(r["lower_bound"], unit))
                   + _cell("-" if r["gap"] is None else f"{r['gap'] * 100:.1f}%")
                   + _cell("-" if r["wall_time_s"] is None else f"{r['wall_time_s']:.1f}")
                   + _cell(r.get("reason") or "", "text") + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _best_solution_picture(store: Store, best: PointSummary | None) -> str:
    """The best point's mapping, when it is one instance whose family draws it."""
    from ..formulations import registry
    from ..instances import load_document

    if best is None or len(best.parts) != 1:
        return ""
    row = store.db.execute("SELECT j.instance, j.result FROM point_parts pp JOIN jobs j ON j.key = pp.key "
                           "WHERE pp.sweep = ? AND pp.point = ?", (best.sweep, best.index)).fetchone()
    if row is None or row["result"] is None:
        return ""
    result = json.loads(row["result"])
    if result.get("solution") is None:
        return ""
    try:
        problem = load_document(json.loads(row["instance"]), "stored job")
        family = registry.family_of(problem)
        solution = family.solution_from_dict(problem, result["solution"])
        said = []
        uri = _png(lambda path: said.append(family.draw_solution(problem, solution, path)))
    except (PlotUnsupported, ValueError):
        return ""
    return (f"<h2>The best point's mapping</h2><p>{html.escape(said[0] if said else '')}</p>"
            f"<img class='solution' alt='best mapping' src='{uri}'>")


def write_report(store: Store, sweep: str, output: Path, filters: list[str] | None = None) -> None:
    """Write the HTML report of ``sweep`` to ``output``.

    Parameters
    ----------
    store
        An open results store.
    sweep
        The sweep's name.
    output
        The HTML file to write.
    filters
        ``FIELD=VALUE`` filters on the points (as ``mapcert results --where``).
    """
    plt = pictures._pyplot()
    axes = axes_of(store, sweep)
    summaries = point_summaries(store, sweep, filters)
    rows = job_rows(store, sweep, filters)
    best = best_point(summaries)
    parts = [f"<h1>Sweep {html.escape(sweep)}</h1>",
             f"<p class='meta'>{len(summaries)} points, {len(rows)} layer rows, "
             f"{sum(s.proved for s in summaries)} of {sum(s.distinct for s in summaries)} layer solves proved "
             f"optimal; store {html.escape(str(store.path))}; mapcert {__version__}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>"]
    if axes:
        parts.append("<p>Swept: " + "; ".join(
            f"<code>{html.escape(a)}</code> = " + ", ".join(
                html.escape(describe_value(v)) for v in dict.fromkeys(describe_value(s.values.get(a))
                                                                     for s in summaries))
            for a in axes) + "</p>")
    parts.append("<h2>Points</h2>")
    parts.append("<p>Totals over each point's layers, weighted by how often each repeats; the best point is "
                 "highlighted. <em>gap</em> is the distance from the best proved bound; <em>best heuristic</em> is "
                 "how far the best quick heuristic lies above the optimum.</p>")
    parts.append(_points_table(summaries, axes))
    if summaries:
        parts.append("<h2>Pictures</h2>")
        said = []
        uri = _png(lambda path: said.append(pictures.draw(summaries, axes, path)))
        parts.append(f"<p>{html.escape(said[0])}.</p><img class='main' alt='sweep picture' src='{uri}'>")
        numeric = pictures.numeric_axes(summaries, axes)
        if numeric and max(s.distinct for s in summaries) > 1:
            fig = plt.figure(figsize=(13, 7))
            chosen = pictures.layers(fig, summaries, axes, numeric[0])
            parts.append(f"<p>The {len(chosen)} layers that weigh most in the totals, each against "
                         f"<code>{html.escape(numeric[0])}</code>: the optimum (solid; a filled marker is proved "
                         f"optimal, a hollow one feasible) and the rigorous lower bound (dashed), one colour per "
                         f"value of the other swept fields.</p>"
                         f"<img class='layers' alt='per-layer curves' src='{_figure_uri(fig)}'>")
            plt.close(fig)
        parts.append(_best_solution_picture(store, best))
    parts.append(f"<h2>Jobs</h2><details><summary>{len(rows)} rows (one per point and layer)</summary>"
                 + _jobs_table(rows, axes) + "</details>")
    document = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<title>mapcert sweep {html.escape(sweep)}</title><style>{STYLE}</style></head><body>\n"
                + "\n".join(parts) + "\n</body></html>\n")
    output.write_text(document, encoding="utf-8")
