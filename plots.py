"""Pictures for multi-level tiling (``mapcert plot``).

* For one layer (on a hierarchy, or on DRAM and one buffer): the objective
  against the size of one on-chip level. The
  curves are the certified optimum at each size, every heuristic mapper,
  and the rigorous lower bound, so one can see where a heuristic loses and
  how much a larger buffer would buy.
* For a network: per layer, the gap of every heuristic to the optimum (bar
  chart), so one can see which layers a mapper handles badly.
* For a graph partition: the network's layers, each named, in the colour and
  with the number of the subgraph it is fused into, with a legend of the
  subgraphs and the tensors through DRAM dashed (``plot_partition``).

Files are PNG (or anything matplotlib writes, by the file's suffix).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .formulations.tiling.multilevel.problem import MultiLevelProblem  # noqa: E402
from .formulations.tiling.multilevel.cost import evaluate_multilevel  # noqa: E402
from .formulations.tiling.multilevel.solve import solve_multilevel  # noqa: E402
from .solvers.multilevel_heuristics import HEURISTICS  # noqa: E402
from .units import format_bytes  # noqa: E402
from .validation.multilevel_bounds import multilevel_bounds  # noqa: E402


def resized(problem: MultiLevelProblem, level: int, capacity_bits: int) -> MultiLevelProblem:
    """``problem`` with on-chip level ``level`` given ``capacity_bits`` (a
    partitioned level is scaled in proportion)."""
    hier = problem.hierarchy
    old = hier.levels[level]
    if old.partition_bits is not None:
        total = sum(old.partition_bits.values())
        partition = {t: max(1, b * capacity_bits // total) for t, b in old.partition_bits.items()}
        new = replace(old, partition_bits=partition, capacity_bits=None)
    else:
        new = replace(old, capacity_bits=capacity_bits)
    levels = tuple(new if i == level else lv for i, lv in enumerate(hier.levels))
    return replace(problem, hierarchy=replace(hier, levels=levels))


def sweep(problem: MultiLevelProblem, level: int, sizes_bits: list[int], time_limit: float, progress=None):
    """Rows of (size bits, optimum or None, proved, bound, {heuristic: value})."""
    rows = []
    for bits in sizes_bits:
        p = resized(problem, level, bits)
        result = solve_multilevel(p, "cpsat", time_limit)
        values = {}
        for name, heuristic in HEURISTICS.items():
            mapping = heuristic(p)
            metrics = evaluate_multilevel(p, mapping) if mapping is not None else None
            values[name] = metrics.objective(p.objective) if metrics is not None and metrics.fits else None
        rows.append((bits, result.objective, result.status == "optimal", multilevel_bounds(p).objective, values))
        if progress:
            progress()
    return rows


def default_sizes(current_bits: int) -> list[int]:
    """The sizes a plot sweeps when none are given: an eighth of the level's
    to four times it, doubling."""
    return [max(8, int(current_bits * f)) for f in (0.125, 0.25, 0.5, 1, 2, 4)]


def sizes_option(text: str) -> list[int]:
    """``--sizes 16KiB,64KiB`` in bits; PlotUnsupported names a bad size."""
    from .formulations.family import PlotUnsupported
    from .units import parse_bytes

    try:
        return [parse_bytes(x.strip()) * 8 for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise PlotUnsupported(f"--sizes: {exc}") from None


def sweep_text(rows) -> str:
    """The swept values in one line, as the command reports them."""
    return ", ".join(f"{format_bytes(bits / 8)}: " + ("-" if value is None else f"{value:,.0f}")
                     + ("" if proved or value is None else " (best)") for bits, value, proved, _, _ in rows)


def plot_sweep(rows, heuristics, level_name: str, objective: str, title: str, path: Path) -> None:
    """One layer's objective against a level's size (rows of ``sweep``):
    the optimum, each of ``heuristics`` and the rigorous lower bound."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    kib = [bits / 8 / 1024 for bits, *_ in rows]
    ax.plot(kib, [r[1] for r in rows], "o-", color="black", linewidth=2, label="optimum (CP-SAT)")
    unproved = [(k, r[1]) for k, r in zip(kib, rows, strict=True) if r[1] is not None and not r[2]]
    if unproved:
        ax.plot(*zip(*unproved, strict=True), "o", mfc="white", color="black", label="best found, not proved")
    for name in heuristics:
        ax.plot(kib, [r[4].get(name) for r in rows], ".--", label=name)
    ax.plot(kib, [r[3] for r in rows], ":", color="grey", label="rigorous lower bound")
    ax.set_xscale("log", base=2)
    ax.set_xticks(kib)
    ax.set_xticklabels([format_bytes(bits / 8) for bits, *_ in rows], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(f"{level_name} capacity")
    ax.set_ylabel(objective)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_network_gaps(network: str, layer_names: list[str], gaps: dict[str, list], path: Path, title: str) -> None:
    """``gaps[method][i]``: the gap (fraction, or None) of a method on layer i."""
    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(layer_names) + 2), 4.5))
    width = 0.8 / max(1, len(gaps))
    for k, (method, values) in enumerate(gaps.items()):
        xs = [i + (k - (len(gaps) - 1) / 2) * width for i in range(len(layer_names))]
        ax.bar(xs, [100 * v if v is not None else 0 for v in values], width, label=method)
    ax.set_xticks(range(len(layer_names)))
    ax.set_xticklabels([n.removeprefix(network + ".") for n in layer_names], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("gap to optimum (%)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- The partition picture ---------------------------------------------------
#
# A layered drawing: one column per topological generation, read left to
# right, wrapped into bands like lines of text when the network is long.  An
# edge that skips generations runs through "lanes" (reserved points in the
# generations it passes), so it goes around layers instead of through them; an
# edge from the end of one band to the next runs through the gap between them.
# All lengths below are inches: the axes are laid out so that one data unit is
# one inch, which keeps fonts, nodes and gaps in proportion at any size.

_TAB20 = (0, 3, 4, 7, 8, 11, 12, 15, 16, 19, 1, 2, 5, 6, 9, 10, 13, 14, 17, 18)
PARTITION_PALETTE = tuple(plt.get_cmap("tab20")(k) for k in _TAB20)
"""tab20 (ten hues, each strong and light), ordered so that strong and light
alternate and the hue changes at each step."""
PARTITION_HUES = tuple(k // 2 for k in _TAB20)
"""The hue of each colour of ``PARTITION_PALETTE``."""

NAME_LIMIT = 22
"""Characters of a layer name before it is shortened (ResNet's and
GoogLeNet's names all fit)."""

LEGEND_LIMIT = 96
"""Subgraphs listed in the legend at most; the rest are counted."""

_LABEL_PT = 6.0      # layer names
_LEGEND_PT = 6.5
_RADIUS = 0.085      # a node
_SLOT = 0.38         # height one layer takes in its generation: node and name below
_LANE = 0.11         # height an edge passing a generation takes
_COLUMN_GAP = 0.22   # between the names of two generations
_BAND_GAP = 0.26     # between two bands, plus _WRAP per edge running in it
_WRAP = 0.05
_MAX_WIDTH = 16.0    # the widest band, unless one generation is wider
_MIN_WIDTH = 8.0     # a band wraps only when the next is as wide
_ASPECT = 1.6        # width / height the bands aim at


def short_name(name: str, limit: int = NAME_LIMIT) -> str:
    """``name``, or its start and end around an ellipsis when it is longer than
    ``limit`` characters (the end, which names the layer within its block,
    keeps more)."""
    if len(name) <= limit:
        return name
    head = max(1, (limit - 1) * 2 // 5)
    return name[:head] + "\u2026" + name[len(name) - (limit - 1 - head):]


def _text_inches(text: str, points: float) -> float:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(size=points), ismath=False)
    return width / 72


def subgraph_neighbours(pg, ordered: list[list[str]]) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of subgraphs (indices into ``ordered``,
    the subgraphs in execution order) that a reader sees side by side: one
    after the other in execution order, or joined by a tensor."""
    owner = {v: i for i, layers in enumerate(ordered) for v in layers}
    pairs = {(i, i + 1) for i in range(len(ordered) - 1)}
    for u, v in pg.graph.edges:
        if u in owner and v in owner and owner[u] != owner[v]:
            pairs.add((min(owner[u], owner[v]), max(owner[u], owner[v])))
    return pairs


def _lab(colour) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour: distances there are perceived ones."""
    from matplotlib.colors import to_rgb

    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


CLOSE_COLOURS = 35.0
"""CIELAB distance below which two colours pass for alike (tab20's light
blue and light purple are 17 apart, its cyan and light blue 32, its blue
and orange 75)."""


def subgraph_colours(count: int, neighbours, palette=PARTITION_PALETTE, hues=PARTITION_HUES) -> list[int]:
    """A colour (index into ``palette``) for each of ``count`` subgraphs such
    that neighbours (pairs of indices) get different colours, and where
    possible clearly different ones: not two tints of one hue (``hues``: of
    each colour) nor colours closer than ``CLOSE_COLOURS``.

    A greedy colouring in order: each subgraph takes, among the colours
    unlike those of its earlier neighbours, the one used least recently, so
    the colours cycle through the whole palette instead of repeating a few."""
    import math

    size = len(palette)
    lab = [_lab(c) for c in palette]
    alike = [{d for d in range(size) if hues[d] == hues[c] or math.dist(lab[c], lab[d]) < CLOSE_COLOURS}
             for c in range(size)]
    adjacent: dict[int, set[int]] = {i: set() for i in range(count)}
    for i, j in neighbours:
        if i != j:
            adjacent[i].add(j)
            adjacent[j].add(i)
    colours: list[int] = []
    last_used = [-1] * size
    for i in range(count):
        taken = {colours[j] for j in adjacent[i] if j < i}
        unlike = set(range(size)).difference(*(alike[c] for c in taken))
        free = unlike or set(range(size)) - taken or set(range(size))
        pick = min(free, key=lambda c: (last_used[c], c))
        colours.append(pick)
        last_used[pick] = i
    return colours


def _layered(pg):
    """The drawing's skeleton: generations of items (layer names, and lanes
    ``(u, v, generation)`` of edges skipping generations), each generation
    ordered to keep edges short and straight; and each edge's chain of
    items."""
    import networkx as nx

    g = pg.graph
    key = pg.position
    depth = {v: d for d, gen in enumerate(nx.topological_generations(g)) for v in gen}
    # a layer with more outputs than inputs (a source above all) moves right,
    # next to its first consumer: its edges get shorter
    for v in reversed(pg.order):
        if g.out_degree(v) > g.in_degree(v):
            depth[v] = max(depth[v], min(depth[s] for s in g.successors(v)) - 1)
    used = sorted(set(depth.values()))
    generations = [[] for _ in used]
    depth = {v: used.index(d) for v, d in depth.items()}
    for v in pg.order:
        generations[depth[v]].append(v)
    chains = {}
    for u, v in sorted(g.edges, key=lambda e: (key[e[0]], key[e[1]])):
        lanes = [(u, v, d) for d in range(depth[u] + 1, depth[v])]
        for lane in lanes:
            generations[lane[2]].append(lane)
        chains[(u, v)] = [u, *lanes, v]
    before: dict = {}
    after: dict = {}
    for chain in chains.values():
        for a, b in pairwise(chain):
            after.setdefault(a, []).append(b)
            before.setdefault(b, []).append(a)
    # barycentre sweeps (down, up, down): an item moves towards the mean slot
    # of its neighbours in the previous (next) generation; ties keep layers
    # above lanes, then the current order
    for sweep in (1, -1, 1):
        slot = {item: i for gen in generations for i, item in enumerate(gen)}
        sequence = range(1, len(generations)) if sweep == 1 else range(len(generations) - 2, -1, -1)
        links = before if sweep == 1 else after
        for d in sequence:
            keyed = []
            for item in generations[d]:
                near = links.get(item)
                centre = sum(slot[n] for n in near) / len(near) if near else slot[item]
                keyed.append((centre, isinstance(item, tuple), slot[item], item))
            generations[d] = [item for *_, item in sorted(keyed, key=lambda k: k[:3])]
            slot.update({item: i for i, item in enumerate(generations[d])})
    return generations, chains


def _bands(widths: list[float], height: float, cost: list) -> list[range]:
    """Generations cut into bands (rows) of about equal width, as many as make
    the drawing about ``_ASPECT`` times as wide as high (a band is up to
    ``height`` high) and at most ``_MAX_WIDTH`` wide where one can; each cut
    near its ideal place where it costs least (``cost[d]``: of a cut between
    generations ``d`` and ``d + 1``)."""
    import math

    total = sum(widths)

    def badness(count):
        width = max(total / count, max(widths))
        high = count * height + (count - 1) * _BAND_GAP
        return (width > _MAX_WIDTH, abs(math.log(width / high / _ASPECT)))

    counts = [n for n in range(1, len(widths) + 1) if n == 1 or total / n >= _MIN_WIDTH]
    count = min(counts, key=badness)
    right = [sum(widths[:d + 1]) for d in range(len(widths))]  # of generation d
    cuts, start = [], 0
    for k in range(1, count):
        ideal, share = k * total / count, total / count
        near = [d for d in range(start, len(widths) - 1) if ideal - 0.2 * share <= right[d] <= ideal + 0.1 * share]
        if near:
            last = min(near, key=lambda d: (cost[d], abs(right[d] - ideal)))
            cuts.append(last + 1)
            start = last + 1
    return [range(a, b) for a, b in zip([0, *cuts], [*cuts, len(widths)], strict=True)]


def draw_partition(pg, blocks, title: str):
    """The figure of ``plot_partition`` (the caller saves and closes it)."""
    from matplotlib.colors import to_rgb
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch

    from .formulations.partition.problem import execution_order

    if not pg.graph:
        fig = plt.figure(figsize=(4.0, 1.0))
        fig.text(0.5, 0.5, f"{title}\n(no layers)", ha="center", va="center", fontsize=10)
        return fig
    ordered = execution_order(pg, blocks)
    owner = {v: i for i, layers in enumerate(ordered) for v in layers}
    names = {v: short_name(str(v)) for v in pg.graph.nodes}
    generations, chains = _layered(pg)

    # geometry: column widths, bands, and every item's centre
    widths = [max([2 * _RADIUS + 0.06] + [_text_inches(names[i], _LABEL_PT) for i in gen if not isinstance(i, tuple)])
              + _COLUMN_GAP for gen in generations]
    depth_of = {item: d for d, gen in enumerate(generations) for item in gen}
    # edges from generation d to d + 1: those inside a subgraph, and their
    # sources (edges wrapped to the next band share a route per source)
    on_chip = [0] * len(generations)
    sources = [set() for _ in generations]
    for (u, v), chain in chains.items():
        for a in chain[:-1]:
            on_chip[depth_of[a]] += u in owner and owner.get(u) == owner.get(v)
            sources[depth_of[a]].add(a)
    # wrap between subgraphs where possible, with few routes
    heights = [sum(_LANE if isinstance(item, tuple) else _SLOT for item in gen) for gen in generations]
    bands = _bands(widths, max(heights) + 0.1, [len(sources[d]) + on_chip[d] for d in range(len(generations))])
    band_of = {d: b for b, band in enumerate(bands) for d in band}
    pos: dict = {}
    band_bottom, band_right = [], []
    top = 0.0
    for b, band in enumerate(bands):
        x, lowest = 0.0, 0.0
        for d in band:
            y = top - 0.04
            for item in generations[d]:
                if isinstance(item, tuple):
                    pos[item] = (x + widths[d] / 2, y - _LANE / 2)
                    y -= _LANE
                else:
                    pos[item] = (x + widths[d] / 2, y - _RADIUS - 0.02)
                    y -= _SLOT
            lowest = min(lowest, y - top)
            x += widths[d]
        band_bottom.append(top + lowest)
        band_right.append(x)
        top += lowest - _BAND_GAP - _WRAP * len(sources[band[-1]]) if b + 1 < len(bands) else lowest

    # colours: neighbours in execution order, joined by a tensor, or stacked
    # in one generation differ
    neighbours = subgraph_neighbours(pg, ordered)
    for gen in generations:
        stacked = [owner[i] for i in gen if not isinstance(i, tuple) and i in owner]
        neighbours |= {(min(a, b), max(a, b)) for a, b in pairwise(stacked) if a != b}
    colour_of = [PARTITION_PALETTE[c] for c in subgraph_colours(len(ordered), neighbours)]

    most_wrapped = max([len(sources[band[-1]]) for band in bands[:-1]] or [0])
    margin = 0.12 + _WRAP * most_wrapped
    graph_w = max(band_right) + 2 * margin
    graph_h = -top + 0.1
    shown = ordered if len(ordered) <= LEGEND_LIMIT else ordered[:LEGEND_LIMIT - 1]

    def entry(i, layers):
        span = names[layers[0]] if len(layers) == 1 else f"{names[layers[0]]} \u2013 {names[layers[-1]]}"
        return f"S{i + 1}: {span} ({len(layers)} layer{'s' if len(layers) != 1 else ''})"

    labels = [entry(i, layers) for i, layers in enumerate(shown)]
    if len(shown) < len(ordered):
        labels.append(f"\u2026 and {len(ordered) - len(shown)} more subgraphs (numbered on the nodes)")
    column = max([_text_inches(text, _LEGEND_PT) for text in labels] or [1.0]) + 0.45
    fig_w = max(graph_w, _text_inches(title, 10) + 0.4, 4.0)
    ncol = max(1, min(len(labels), int(fig_w // column)))
    legend_h = 0.35 + 0.145 * -(-len(labels) // ncol)
    head_h = 0.55
    fig_h = head_h + graph_h + legend_h
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes(((fig_w - graph_w) / 2 / fig_w, legend_h / fig_h, graph_w / fig_w, graph_h / fig_h))
    ax.set_xlim(-margin, graph_w - margin)
    ax.set_ylim(top - 0.05, 0.05)
    ax.set_axis_off()

    # edges: solid in the subgraph's colour when the tensor stays on chip,
    # dashed grey when it goes through DRAM.  An edge from the end of a band
    # to the next runs right, back through the gap below the band, and in
    # from the left; edges from one source share the route, and a higher
    # source takes the outer one.
    rank = {}
    for band in bands[:-1]:
        for r, a in enumerate(sorted(sources[band[-1]], key=lambda item: pos[item][1])):
            rank[a] = r
    for (u, v), chain in chains.items():
        points = [pos[chain[0]]]
        for a, b in pairwise(chain):
            if band_of[depth_of[a]] != band_of[depth_of[b]]:
                r, band = rank[a], band_of[depth_of[a]]
                right = band_right[band] + 0.06 + _WRAP * r
                gap = band_bottom[band] - 0.08 - _WRAP * r
                left = -0.06 - _WRAP * r
                points += [(right, pos[a][1]), (right, gap), (left, gap), (left, pos[b][1])]
            points.append(pos[b])
        (x0, y0), (x1, y1) = points[-2], points[-1]
        length = max(1e-9, ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        end = (x1 - ux * _RADIUS, y1 - uy * _RADIUS)
        points[-1] = end
        inside = u in owner and v in owner and owner[u] == owner[v]
        colour = tuple(0.7 * c for c in to_rgb(colour_of[owner[u]])) if inside else "0.35"
        ax.plot(*zip(*points, strict=True), color=colour, linewidth=1.8 if inside else 0.8,
                linestyle="-" if inside else (0, (3, 2)), solid_joinstyle="round", zorder=1 if inside else 0.5)
        ax.add_patch(FancyArrowPatch((end[0] - ux * 0.07, end[1] - uy * 0.07), end, arrowstyle="-|>",
                                     mutation_scale=6, linewidth=0, color=colour, shrinkA=0, shrinkB=0, zorder=2))

    # layers: the subgraph's colour, its number inside, the layer's name below
    for v in pg.graph.nodes:
        x, y = pos[v]
        k = owner.get(v)
        fill = colour_of[k] if k is not None else (0.85, 0.85, 0.85, 1.0)
        ax.add_patch(Circle((x, y), _RADIUS, facecolor=fill, edgecolor="black", linewidth=0.6, zorder=3))
        red, green, blue = to_rgb(fill)
        number = str(k + 1) if k is not None else "?"
        ax.text(x, y, number, ha="center", va="center_baseline", fontsize=5.5 if len(number) < 3 else 4.3,
                color="white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.55 else "black", zorder=4)
        ax.text(x, y - _RADIUS - 0.025, names[v], ha="center", va="top", fontsize=_LABEL_PT, zorder=5,
                bbox={"boxstyle": "round,pad=0.08", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})

    fig.text(0.5, 1 - 0.1 / fig_h, title, ha="center", va="top", fontsize=10)
    fig.text(0.5, 1 - 0.32 / fig_h,
             f"{len(pg.graph)} layers in {len(ordered)} subgraph{'s' * (len(ordered) != 1)} (numbered in execution order); "
             "solid coloured edge: tensor kept on chip; dashed grey edge: tensor through DRAM",
             ha="center", va="top", fontsize=7, color="0.25")
    handles = [Line2D([], [], linestyle="", marker="o", markersize=7, markerfacecolor=colour_of[i],
                      markeredgecolor="black", markeredgewidth=0.6) for i in range(len(shown))]
    if len(shown) < len(ordered):
        handles.append(Line2D([], [], linestyle="", marker=""))
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(max(0.0, (fig_w - ncol * column) / 2 / fig_w),
                   (legend_h - 0.08) / fig_h), ncol=ncol, fontsize=_LEGEND_PT, frameon=False, handletextpad=0.3,
                   columnspacing=0.8, labelspacing=0.35, borderaxespad=0, title="subgraphs",
                   title_fontsize=7, alignment="left")
    return fig


def plot_partition(pg, blocks: list[frozenset], path: Path, title: str) -> None:
    """The network as a layered DAG (one column per topological generation,
    wrapped into bands when long), every layer named, each subgraph of the
    partition in its own colour and numbered on its layers, neighbouring
    subgraphs in clearly different colours, a legend of the subgraphs, and
    the tensors that go through DRAM (the edges between subgraphs) dashed.
    The file's suffix picks the format (PNG, SVG, PDF)."""
    fig = draw_partition(pg, blocks, title)
    fig.savefig(path, dpi=150, bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)
