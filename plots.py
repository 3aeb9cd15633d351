"""Pictures for multi-level tiling (``mapcert plot``).

* For one layer: the objective against the size of one on-chip level. The
  curves are the certified optimum at each size, every heuristic mapper,
  and the rigorous lower bound, so one can see where a heuristic loses and
  how much a larger buffer would buy.
* For a network: per layer, the gap of every heuristic to the optimum (bar
  chart), so one can see which layers a mapper handles badly.

Files are PNG (or anything matplotlib writes, by the file's suffix).
"""

from __future__ import annotations

from dataclasses import replace
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


def plot_sweep(problem: MultiLevelProblem, level: int, rows, unit: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    kib = [bits / 8 / 1024 for bits, *_ in rows]
    ax.plot(kib, [r[1] for r in rows], "o-", color="black", linewidth=2, label="optimum (CP-SAT)")
    unproved = [(k, r[1]) for k, r in zip(kib, rows, strict=True) if r[1] is not None and not r[2]]
    if unproved:
        ax.plot(*zip(*unproved, strict=True), "o", mfc="white", color="black", label="best found, not proved")
    for name in HEURISTICS:
        ax.plot(kib, [r[4][name] for r in rows], ".--", label=name)
    ax.plot(kib, [r[3] for r in rows], ":", color="grey", label="rigorous lower bound")
    ax.set_xscale("log", base=2)
    ax.set_xticks(kib)
    ax.set_xticklabels([format_bytes(bits / 8) for bits, *_ in rows], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(f"{problem.hierarchy.levels[level].name} capacity")
    ax.set_ylabel(f"{problem.objective} ({unit})")
    ax.set_title(f"{problem.layer.name} on {problem.hierarchy.name}")
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


def plot_partition(pg, blocks: list[frozenset], path: Path, title: str) -> None:
    """The network as a layered DAG (one column per topological generation),
    each subgraph of the partition in its own colour, so fused regions and
    the tensors that cross them (the edges between colours) are visible."""
    import networkx as nx

    g = pg.graph.copy()
    for depth, generation in enumerate(nx.topological_generations(g)):
        for v in generation:
            g.nodes[v]["depth"] = depth
    pos = nx.multipartite_layout(g, subset_key="depth")
    owner = {v: i for i, block in enumerate(sorted(blocks, key=lambda b: min(pg.position[v] for v in b)))
             for v in block}
    cmap = plt.get_cmap("tab20")
    colours = [cmap(owner[v] % 20) for v in g.nodes]
    depth = max(nx.get_node_attributes(g, "depth").values()) + 1
    fig, ax = plt.subplots(figsize=(max(8.0, 0.35 * depth), 6))
    crossing = [(u, v) for u, v in g.edges if owner[u] != owner[v]]
    inside = [(u, v) for u, v in g.edges if owner[u] == owner[v]]
    nx.draw_networkx_edges(g, pos, edgelist=inside, ax=ax, width=1.5, edge_color="0.35", arrowsize=6)
    nx.draw_networkx_edges(g, pos, edgelist=crossing, ax=ax, width=0.8, edge_color="tab:red", style="dashed",
                           arrowsize=6)
    nx.draw_networkx_nodes(g, pos, node_color=colours, node_size=60, ax=ax, edgecolors="black", linewidths=0.4)
    ax.set_title(title, fontsize=10)
    ax.text(0.01, 0.01, f"{len(blocks)} subgraphs; dashed red: tensors through DRAM", transform=ax.transAxes,
            fontsize=8)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
