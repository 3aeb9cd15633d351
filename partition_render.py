"""Tables of a graph-partition result for the terminal (``mapcert solve``)."""

from __future__ import annotations

from .formulations.partition.cost import SplitCapacity
from .partition_report import PartitionReport
from .units import format_bytes


def render_partition(report: PartitionReport, data: dict, out, table_factory, show) -> None:
    """Summary, the subgraphs in execution order, and for a co-exploration
    the cost at every buffer size it looked at (``data``: ``report.to_dict()``)."""
    inst = report.instance
    pg = inst.graph
    what = (f"co-exploring {len(inst.capacities)} buffer sizes ({format_bytes(inst.capacities[0])} to "
            f"{format_bytes(inst.capacities[-1])}), alpha {inst.alpha:g}" if inst.coexplore
            else describe_capacity(inst.capacity))
    out.print(f"[bold]{pg.name}[/] ({pg.graph.number_of_nodes()} layers), partition, {what}")
    summary = table_factory(show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    if report.objective is not None:
        summary.add_row(f"objective ({report.unit})", f"{report.objective:,.0f}")
    if report.best_bound is not None:
        summary.add_row("solver's bound", f"{report.best_bound:,.0f}")
    if report.capacity is not None and inst.coexplore:
        summary.add_row("chosen buffer", format_bytes(report.capacity))
    if data["ema_bytes"] is not None:
        summary.add_row("EMA", format_bytes(data["ema_bytes"]))
        summary.add_row("compulsory EMA (lower bound)", format_bytes(data["compulsory_ema_bytes"]))
    if data["layer_by_layer_ema_bytes"] is not None:
        summary.add_row("EMA layer by layer", format_bytes(data["layer_by_layer_ema_bytes"]))
    if data["fusion_saving"] is not None:
        summary.add_row("saved by fusion", f"{100 * data['fusion_saving']:.1f}%")
    if data["peak_memory_bytes"] is not None:
        summary.add_row("peak on-chip memory", format_bytes(data["peak_memory_bytes"]))
    if data["latency_cycles"] is not None:
        m = inst.machine
        summary.add_row("latency", f"{data['latency_cycles']:,} cycles at {m.macs_per_cycle} MACs and "
                                   f"{m.dram_bytes_per_cycle:g} DRAM bytes per cycle")
    if data["subgraphs"] is not None:
        summary.add_row("subgraphs", str(len(data["subgraphs"])))
        summary.add_row("functional model", _functional_summary(data["functional"]))
    show(summary)
    if data["subgraphs"]:
        table = table_factory(title="subgraphs in execution order", title_justify="left")
        for col in ("#", "layers", "first", "last", "note"):
            table.add_column(col, justify="right" if col in ("#", "layers") else "left")
        for i, sub in enumerate(data["subgraphs"]):
            layers = sub["layers"]
            groups = sub["streamed_weight_groups"]
            note = f"weights streamed in {groups} groups" if groups else ""
            table.add_row(str(i + 1), str(len(layers)), layers[0], layers[-1] if len(layers) > 1 else "", note)
        show(table)
    if data["capacities"] and inst.coexplore:
        table = table_factory(title="buffer sizes explored", title_justify="left")
        for col in ("buffer", "status", "EMA", "cost"):
            table.add_column(col, justify="left" if col == "status" else "right")
        for p in data["capacities"]:
            table.add_row(format_bytes(p["capacity_bytes"]), p["status"],
                          "-" if p["ema_bytes"] is None else format_bytes(p["ema_bytes"]),
                          "-" if p["cost"] is None else f"{p['cost']:,.0f}")
        show(table)
        if len(data["capacities"]) < len(inst.capacities):
            out.print("larger sizes skipped: their size alone already costs more than the best design")


def _functional_summary(check: dict) -> str:
    if not check.get("ran"):
        return f"not run ({check.get('reason', 'no partition')})"
    if not (check["outputs_match"] and check["counts_match"]):
        return f"FAILED: {check.get('reason', 'outputs or counts differ')}"
    return (f"passed: {format_bytes(check['counted_ema_bytes'])} counted, outputs within "
            f"{check['max_relative_error']:.0e} of layer-by-layer, {check['wall_time_s']:.1f} s")


def describe_capacity(capacity) -> str:
    """One shared buffer, or separate activation and weight buffers, in words."""
    if isinstance(capacity, SplitCapacity):
        return f"activation buffer {format_bytes(capacity.activations)}, weight buffer {format_bytes(capacity.weights)}"
    return f"buffer {format_bytes(capacity)}"
