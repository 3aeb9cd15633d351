"""The pictures architects read from a sweep.

- :func:`curve`: the proved objective against a numeric swept field (a
  level's size, a crossbar budget, a partition buffer), one line per
  combination of the other swept fields, with the rigorous lower bound
  (dashed) and each heuristic (dotted) in the same colour: the curve the
  Orojenesis work calls a ski slope, with every point proved optimal
  (filled marker) or honestly feasible (hollow marker);
- :func:`totals`: every point's total (a network's energy, latency, EDP or
  EMA) as a bar, with its lower bound marked and the best point
  highlighted;
- :func:`layers`: one small curve per layer, for the layers that weigh
  most in the total.

:func:`draw` picks what a sweep supports and writes one picture.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..units import format_quantity
from .spec import describe_value, numeric_value
from .tables import PointSummary, best_point, best_points

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
HEURISTIC_MARKERS = ("^", "v", "s", "D", "P", "X")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def numeric_axes(summaries: list[PointSummary], axes: list[str]) -> list[str]:
    """Swept fields whose values are all numbers, with more than one value."""
    found = []
    for axis in axes:
        values = [numeric_value(s.values.get(axis)) for s in summaries]
        if all(v is not None for v in values) and len(set(values)) > 1:
            found.append(axis)
    return found


def _is_size(summaries: list[PointSummary], axis: str) -> bool:
    values = [s.values.get(axis) for s in summaries]
    return any(isinstance(v, str) and numeric_value(v) is not None and not _plain_number(v) for v in values) or \
        axis.endswith(("capacity", "buffer", "budget_bytes"))


def _plain_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _varying(summaries: list[PointSummary], axes: list[str], skip: str | None) -> list[str]:
    return [a for a in axes if a != skip and len({describe_value(s.values.get(a)) for s in summaries}) > 1]


def _value_formatter(unit: str):
    from matplotlib.ticker import FuncFormatter

    def label(value, _position=None) -> str:
        if not value:
            return "0"
        if unit == "bytes":
            for power, name in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
                if abs(value) >= 1024 ** power:
                    return f"{value / 1024 ** power:.3g} {name}"
            return f"{value:.3g} B"
        return format_quantity(value, unit).removesuffix(unit).strip()

    return FuncFormatter(label)


def _series(summaries: list[PointSummary], layer: str | None):
    """(summary, objective, lower bound, status, heuristics) per point, for a
    layer or the whole point."""
    rows = []
    for s in summaries:
        if layer is None:
            rows.append((s, s.objective, s.lower_bound, s.status, s.heuristics))
            continue
        part = next((p for p in s.parts if p["part"] == layer or p["part"].endswith("." + layer)), None)
        if part is not None:
            rows.append((s, part["objective"], part["lower_bound"], part["status"], part["heuristics"]))
    return rows


def curve(ax, summaries: list[PointSummary], axes: list[str], x_axis: str, layer: str | None = None,
          heuristics: bool = True, legend: bool = True) -> int:
    """Draw the objective against ``x_axis`` on ``ax``; returns the number of lines."""
    groups: dict[tuple, list] = {}
    others = _varying(summaries, axes, x_axis)
    for row in _series(summaries, layer):
        key = tuple(describe_value(row[0].values.get(a)) for a in others)
        groups.setdefault(key, []).append(row)
    unit = summaries[0].unit
    for g, (key, rows) in enumerate(groups.items()):
        rows.sort(key=lambda r: numeric_value(r[0].values.get(x_axis)))
        colour = PALETTE[g % len(PALETTE)]
        xs = [numeric_value(r[0].values.get(x_axis)) for r in rows]
        # a lone value says what it is ("64 KiB", "eyeriss") unless it is a bare flag or number
        bare = [isinstance(rows[0][0].values.get(a), (bool, int, float)) for a in others]
        name = ", ".join(f"{_short(a)}={v}" if len(others) > 1 or plain else v
                         for a, v, plain in zip(others, key, bare))
        prefix = f"{name}: " if name else ""
        solved = [(x, r[1]) for x, r in zip(xs, rows) if r[1] is not None]
        if solved:
            proved = all(r[3] == "optimal" for r in rows if r[1] is not None)
            ax.plot(*zip(*solved), "-", color=colour, linewidth=2, zorder=3,
                    label=f"{prefix}{'optimum' if proved else 'best found (not all proved)'}")
        for x, r in zip(xs, rows):
            if r[1] is not None:
                proved = r[3] == "optimal"
                ax.plot([x], [r[1]], "o", markersize=7, color=colour, markerfacecolor=colour if proved else "white",
                        markeredgewidth=1.5, zorder=4)
        lows = [(x, r[2]) for x, r in zip(xs, rows) if r[2] is not None]
        if lows:
            ax.plot(*zip(*lows), "--", color=colour, linewidth=1.2, alpha=0.8, label=f"{prefix}rigorous lower bound")
        if heuristics:
            names = sorted({h for r in rows for h in (r[4] or {})})
            for h, hname in enumerate(names):
                pts = [(x, r[4].get(hname)) for x, r in zip(xs, rows) if (r[4] or {}).get(hname) is not None]
                if pts:
                    ax.plot(*zip(*pts), ":", marker=HEURISTIC_MARKERS[h % len(HEURISTIC_MARKERS)], markersize=4,
                            color=colour, alpha=0.6, linewidth=1, label=f"{prefix}{hname}")
    xs_all = [numeric_value(s.values.get(x_axis)) for s in summaries]
    if min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 4:
        ax.set_xscale("log", base=2)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = sorted(set(xs_all))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    if _is_size(summaries, x_axis):
        ax.xaxis.set_major_formatter(_value_formatter("bytes"))
    elif x_axis.endswith("scale"):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"x{v:g}"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    values = [v for r in _series(summaries, layer) for v in (r[1], r[2], *((r[4] or {}).values() if heuristics
                                                                            else ())) if v]
    if values and min(values) > 0 and max(values) / min(values) > 4:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_value_formatter(unit))
    if ax.get_yscale() == "log":
        from matplotlib.ticker import LogLocator, NullFormatter

        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(x_axis)
    ax.set_ylabel(_ylabel(summaries[0]))
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        from matplotlib.lines import Line2D

        handles, labels = ax.get_legend_handles_labels()
        handles += [Line2D([0], [0], marker="o", color="grey", linestyle="", markersize=6, label="proved optimal"),
                    Line2D([0], [0], marker="o", color="grey", markerfacecolor="white", linestyle="", markersize=6,
                           label="feasible (time-out)")]
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(4, max(2, len(groups))), frameon=False)
    return len(groups)


def _short(axis: str) -> str:
    """``hardware.levels[GLB].capacity`` -> ``GLB capacity`` for a legend."""
    import re

    parts = [re.sub(r"^\w+\[(.+)\]$", r"\1", p) for p in axis.split(".")]
    return " ".join(parts[-2:]) if len(parts) > 1 else parts[0]


def _ylabel(s: PointSummary) -> str:
    return f"{s.objective_name.replace('_', ' ')} ({s.unit})" if s.unit else s.objective_name.replace("_", " ")


def point_name(s: PointSummary, axes: list[str]) -> str:
    varying = [a for a in axes]
    return ", ".join(describe_value(s.values.get(a)) for a in varying) or f"#{s.index}"


def totals(ax, summaries: list[PointSummary], axes: list[str]) -> PointSummary | None:
    """Each point's total as a horizontal bar, lower bound marked, best highlighted."""
    best = best_point(summaries)
    winners = {s.index for s in best_points(summaries).values()}
    shown = [s for s in summaries]
    names = [point_name(s, _varying(summaries, axes, None) or axes) for s in shown]
    ys = list(range(len(shown)))[::-1]
    for y, s in zip(ys, shown):
        colour = "#2ca02c" if s.index in winners else (
            "#1f77b4" if s.status == "optimal" else "#9ecae1")
        if s.objective is not None:
            ax.barh(y, s.objective, color=colour, edgecolor="black", linewidth=0.5,
                    hatch="" if s.status == "optimal" else "//")
        else:
            ax.text(0, y, f"  {s.status}", va="center", fontsize=8, color="#d62728")
        if s.lower_bound is not None:
            ax.plot([s.lower_bound, s.lower_bound], [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylabel(", ".join(_varying(summaries, axes, None) or axes), fontsize=8)
    ax.xaxis.set_major_formatter(_value_formatter(summaries[0].unit))
    ax.set_xlabel(f"total {_ylabel(summaries[0])}")
    ax.grid(True, axis="x", alpha=0.3)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#1f77b4", edgecolor="black", label="proved optimal"),
               Patch(facecolor="#9ecae1", edgecolor="black", hatch="//", label="feasible (time-out)"),
               Line2D([0], [0], color="black", linewidth=2, label="rigorous lower bound")]
    if winners:
        handles.insert(0, Patch(facecolor="#2ca02c", edgecolor="black",
                                label="best point" if best is not None else "best point of its workload"))
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=len(handles),
              frameon=False)
    return best


def layers(fig, summaries: list[PointSummary], axes: list[str], x_axis: str, count: int = 6) -> list[str]:
    """Small curves for the ``count`` layers that weigh most in the totals."""
    weight: dict[str, float] = {}
    for s in summaries:
        for p in s.parts:
            if p["objective"] is not None:
                weight[p["part"]] = weight.get(p["part"], 0.0) + p["objective"] * p["count"]
    chosen = sorted(weight, key=weight.get, reverse=True)[:count]
    columns = min(3, max(1, len(chosen)))
    rows = max(1, math.ceil(len(chosen) / columns))
    for i, name in enumerate(chosen):
        ax = fig.add_subplot(rows, columns, i + 1)
        curve(ax, summaries, axes, x_axis, layer=name, heuristics=False, legend=False)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(x_axis, fontsize=8)
        ax.tick_params(labelsize=7)
    return chosen


def _slant_crowded_ticks(fig) -> None:
    """Slant the x tick labels of every panel whose labels would run into
    each other (sizes such as "128 KiB" on a log axis, totals in MiB)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        if any(a.x1 + 2 > b.x0 for a, b in zip(boxes, boxes[1:])):
            for t in labels:
                t.set_rotation(30)
                t.set_horizontalalignment("right")


def _legends_below_labels(fig) -> None:
    """Put a legend anchored below its panel under the panel's tick labels and
    axis label (slanted labels take more room than the anchor allowed);
    after ``tight_layout``, which moves the panels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
        if anchor.y0 >= 0:
            continue
        bottom = (ax.xaxis.get_tightbbox(renderer).y0 - ax.bbox.y0) / ax.bbox.height
        legend.set_bbox_to_anchor((anchor.x0, bottom - 0.02), transform=ax.transAxes)


def draw(summaries: list[PointSummary], axes: list[str], output: Path, x_axis: str | None = None,
         layer: str | None = None) -> str:
    """Write the sweep's main picture to ``output``; returns what was drawn.

    With a numeric swept field: the objective against it (left) and every
    point's total (right); otherwise the totals alone.
    """
    plt = _pyplot()
    candidates = numeric_axes(summaries, axes)
    if x_axis is not None and x_axis not in axes:
        raise ValueError(f"--x {x_axis}: not a swept field; the sweep's fields are {', '.join(axes)}")
    if x_axis is not None and x_axis not in candidates:
        raise ValueError(f"--x {x_axis}: its values are not numbers that vary; numeric fields: "
                         f"{', '.join(candidates) or 'none'}")
    x_axis = x_axis or (candidates[0] if candidates else None)
    if layer is not None:
        known = sorted({p["part"] for s in summaries for p in s.parts})
        if not any(p == layer or p.endswith("." + layer) for p in known):
            raise ValueError(f"--layer {layer}: no such layer in this sweep; layers: {', '.join(known[:12])}"
                             + (", ..." if len(known) > 12 else ""))
    groups: dict[str, list[PointSummary]] = {}
    for s in summaries:  # points of different objectives (a swept objective) get their own row
        groups.setdefault(s.objective_name or "objective", []).append(s)
    rows = len(groups)
    height = max(4.8, 0.28 * max(len(g) for g in groups.values()) + 1.5)
    said = []
    if x_axis is not None:
        fig, grid = plt.subplots(rows, 2, figsize=(13, height * rows), squeeze=False,
                                 gridspec_kw={"width_ratios": [1.25, 1]})
    else:
        fig, grid = plt.subplots(rows, 1, figsize=(8, height * rows), squeeze=False)
    for row, (objective, group) in enumerate(groups.items()):
        what = layer or group[0].workload
        if x_axis is not None:
            left, right = grid[row]
            lines = curve(left, group, axes, x_axis, layer=layer)
            left.set_title(f"{what}: {objective.replace('_', ' ')} against {x_axis}", fontsize=10)
            said.append(f"{objective} against {x_axis} ({lines} line{'s' * (lines != 1)})")
        else:
            right = grid[row][0]
        best = totals(right, group, axes)
        whole = group[0].workload
        right.set_title(f"{whole}: every point's total" + (f" (best: #{best.index})" if best else ""), fontsize=10)
        said.append(f"the {objective} totals of {len(group)} points" + (f" (best #{best.index})" if best else ""))
    _slant_crowded_ticks(fig)
    fig.tight_layout()
    _legends_below_labels(fig)
    fig.savefig(output, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return "; ".join(said)
