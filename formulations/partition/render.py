"""Tables of a solved graph-partition result for the terminal.

The CLI prints what every family shares (status, objective, bounds,
heuristics, checks); this module adds the partition's own view: the
EMA against the compulsory and the layer-by-layer EMA, the subgraphs in
execution order, and for a co-exploration the cost at every buffer size
it looked at.
"""

from __future__ import annotations

from ...units import format_bytes
from .cost import SplitCapacity, compulsory_ema, evaluate
from .graph import PartitionGraph
from .problem import PartitionProblem


def describe_capacity(capacity) -> str:
    """One shared buffer, or separate activation and weight buffers, in words."""
    if isinstance(capacity, SplitCapacity):
        return f"activation buffer {format_bytes(capacity.activations)}, weight buffer {format_bytes(capacity.weights)}"
    return f"buffer {format_bytes(capacity)}"


def describe_buffers(problem: PartitionProblem) -> str:
    """The buffer of a fixed-buffer instance, or the sizes a co-exploration chooses from."""
    if problem.coexplore:
        return (f"co-exploring {len(problem.capacities)} buffer sizes ({format_bytes(problem.capacities[0])} to "
                f"{format_bytes(problem.capacities[-1])}), alpha {problem.alpha:g}")
    return describe_capacity(problem.capacity)


def layer_by_layer_ema(pg: PartitionGraph, capacity) -> int | None:
    """EMA without fusion: every layer alone (the reference for fusion's
    saving), or None when some layer does not fit alone."""
    metrics = evaluate(pg, [frozenset([v]) for v in pg.order], capacity)
    return metrics.ema_bytes if metrics.feasible else None


def fusion_summary(pg: PartitionGraph, capacity, ema: int) -> dict:
    """The compulsory EMA, the layer-by-layer EMA at ``capacity`` and the
    share of the latter that fusion saves (JSON-ready)."""
    alone = layer_by_layer_ema(pg, capacity)
    return {"compulsory_ema_bytes": compulsory_ema(pg), "layer_by_layer_ema_bytes": alone,
            "fusion_saving": None if not alone else round(1 - ema / alone, 4)}


def render_partition(problem: PartitionProblem, result, solution, console, table) -> None:
    """Summary, the subgraphs in execution order (``result.solution``), and
    for a co-exploration the buffer sizes explored (``result.details``)."""
    metrics = result.metrics or {}
    capacity = solution.capacity
    fusion = fusion_summary(problem.graph, capacity, metrics["ema_bytes"])
    summary = table(show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    if problem.coexplore:
        summary.add_row("chosen buffer", format_bytes(capacity))
    summary.add_row("EMA", format_bytes(metrics["ema_bytes"]))
    summary.add_row("compulsory EMA (lower bound)", format_bytes(fusion["compulsory_ema_bytes"]))
    if fusion["layer_by_layer_ema_bytes"] is not None:
        summary.add_row("EMA layer by layer", format_bytes(fusion["layer_by_layer_ema_bytes"]))
        summary.add_row("saved by fusion", f"{100 * fusion['fusion_saving']:.1f}%")
    peak = metrics["peak_memory_bytes"]
    summary.add_row("peak on-chip memory", format_bytes(peak) + (f" ({peak:,} B)" if peak >= 1024 else ""))
    m = problem.machine
    summary.add_row("latency", f"{metrics['latency_cycles']:,} cycles at {m.macs_per_cycle} MACs and "
                               f"{m.dram_bytes_per_cycle:g} DRAM bytes per cycle")
    summary.add_row("subgraphs", str(len(result.solution["subgraphs"])))
    console.print()
    console.print(summary)
    streamed = metrics.get("streamed_weight_groups", {})
    subgraphs = table(title="subgraphs in execution order", title_justify="left")
    for col in ("#", "layers", "first", "last", "note"):
        subgraphs.add_column(col, justify="right" if col in ("#", "layers") else "left")
    for i, layers in enumerate(result.solution["subgraphs"]):
        groups = streamed.get(layers[0]) if len(layers) == 1 else None
        note = f"weights streamed in {groups} groups" if groups else ""
        subgraphs.add_row(str(i + 1), str(len(layers)), layers[0], layers[-1] if len(layers) > 1 else "", note)
    console.print()
    console.print(subgraphs)
    points = result.details.get("capacities") if problem.coexplore else None
    if points:
        explored = table(title="buffer sizes explored", title_justify="left")
        for col in ("buffer", "status", "EMA", "cost"):
            explored.add_column(col, justify="left" if col == "status" else "right")
        for p in points:
            explored.add_row(format_bytes(p["capacity_bytes"]), p["status"],
                             "-" if p["ema_bytes"] is None else format_bytes(p["ema_bytes"]),
                             "-" if p["cost"] is None else f"{p['cost']:,.0f}")
        console.print()
        console.print(explored)
        if any(p["status"] == "cutoff" for p in points):
            console.print("cutoff: not solved, the covering LP's bound on the EMA already makes the size cost "
                          "at least the best design")
        if len(points) < len(problem.capacities):
            first = format_bytes(sorted(problem.capacities)[len(points)])
            if result.status.value == "optimal":
                console.print(f"sizes from {first} on not solved: each costs at least its size plus the energy of "
                              "the compulsory EMA, already more than the best design")
            else:
                console.print(f"sizes from {first} on not solved: the time limit ran out first")
