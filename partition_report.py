"""Solve a graph-partition instance and check the answer (``mapcert solve``).

With one buffer size the objective is the external memory access (EMA,
bytes); with several it is Cocco's design cost, size + alpha * EMA energy,
over the sizes (co-exploration). The status is ``optimal`` only when the
exact method proved it, ``evaluate`` confirms the partition runs (covering,
connected, convex, fitting, orderable) with the claimed EMA, and the EMA is
not below the compulsory traffic (every weight, network input and network
output once), and the functional model runs it with the model's buffers,
moves the bytes ``evaluate`` counts and computes what the layers computed
one after another compute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .formulations.partition.coexplore import coexplore, design_cost
from .formulations.partition.cost import (DEFAULT_MACHINE, Machine, PartitionMetrics, SplitCapacity, compulsory_ema,
                                          evaluate, total_bytes)
from .formulations.partition.exact import solve_partition
from .formulations.partition.graph import PartitionGraph
from .partition_instances import PartitionInstance


def layer_by_layer_ema(pg: PartitionGraph, capacity: int) -> int | None:
    """EMA without fusion: every layer alone (the reference for fusion's saving)."""
    metrics = evaluate(pg, [frozenset([v]) for v in pg.graph.nodes], capacity)
    return metrics.ema_bytes if metrics.feasible else None


@dataclass
class PartitionReport:
    instance: PartitionInstance
    method: str
    status: str
    objective: float | None          # EMA bytes, or the design cost when co-exploring
    best_bound: float | None
    capacity: int | None
    blocks: list[frozenset] | None
    metrics: PartitionMetrics | None
    wall_time_s: float
    message: str = ""
    points: list = field(default_factory=list)  # co-exploration: per capacity (size, status, EMA, cost)
    functional: dict = field(default_factory=lambda: {"ran": False, "reason": "no partition"})

    @property
    def unit(self) -> str:
        if self.instance.coexplore:
            return "design cost (B + alpha * pJ)"
        return "cycles of latency" if self.instance.objective == "latency" else "bytes of EMA"

    def to_dict(self) -> dict:
        inst, pg = self.instance, self.instance.graph
        alone = layer_by_layer_ema(pg, self.capacity) if self.capacity else None
        ema = self.metrics.ema_bytes if self.metrics else None
        return {
            "status": self.status, "family": "partition", "network": pg.name, "method": self.method,
            "objective_name": "design_cost" if inst.coexplore else inst.objective, "unit": self.unit,
            "objective": self.objective, "best_bound": self.best_bound,
            "capacity_bytes": None if self.capacity is None else total_bytes(self.capacity),
            "buffers": {"activations_bytes": self.capacity.activations, "weights_bytes": self.capacity.weights}
            if isinstance(self.capacity, SplitCapacity) else None,
            "ema_bytes": ema,
            "compulsory_ema_bytes": compulsory_ema(pg), "layer_by_layer_ema_bytes": alone,
            "fusion_saving": None if not (alone and ema is not None) else round(1 - ema / alone, 4),
            "subgraphs": None if self.blocks is None else [
                {"layers": [v for v in pg.order if v in block],
                 "streamed_weight_groups": self.metrics.streamed.get(next(iter(block))) if len(block) == 1 else None}
                for block in sorted(self.blocks, key=lambda b: min(pg.position[v] for v in b))],
            "peak_memory_bytes": self.metrics.peak_memory_bytes if self.metrics else None,
            "latency_cycles": self.metrics.latency_cycles if self.metrics else None,
            "wall_time_s": round(self.wall_time_s, 3), "message": self.message,
            "capacities": [{"capacity_bytes": p.capacity, "status": p.status, "ema_bytes": p.ema_bytes,
                            "cost": p.cost} for p in self.points],
            "alpha": inst.alpha, "pj_per_bit": inst.pj_per_bit, "functional": self.functional,
        }


def solve_partition_instance(instance: PartitionInstance, method: str | None = None,
                             time_limit: float | None = None, functional: bool = True) -> PartitionReport:
    method = method or instance.method
    time_limit = time_limit or instance.time_limit
    pg = instance.graph
    if instance.coexplore:
        start = time.perf_counter()
        result = coexplore(pg, list(instance.capacities), method, instance.alpha, instance.pj_per_bit, time_limit)
        wall = time.perf_counter() - start
        report = PartitionReport(instance, method, result.status, result.cost, result.cost if result.status == "optimal"
                                 else None, result.capacity, result.blocks, None, wall, points=result.points)
        if result.status == "infeasible":
            report.message = f"no partition fits even {max(instance.capacities):,} B"
        elif result.status == "error":
            report.message = ("no buffer size was solved within the limits (too many candidate subgraphs, "
                              "or the time limit); try smaller sizes or a longer --time-limit")
    else:
        result = solve_partition(pg, instance.capacity, method, time_limit, instance.workers,
                                 objective=instance.objective, machine=instance.machine)
        report = PartitionReport(instance, method, result.status, result.objective, result.best_bound,
                                 instance.capacity, result.blocks, None, result.wall_time_s, result.message)
    _check(report)
    if report.blocks is not None and report.status in ("optimal", "feasible"):
        if functional:
            report.functional = functional_check(instance.graph, report.blocks, report.capacity,
                                                 instance.objective, instance.machine)
            if not functional_passed(report.functional):
                report.status = "error"
                report.message = "the functional model disagrees with the cost model: " + \
                    report.functional.get("reason", "outputs or counts differ")
        else:
            report.functional = {"ran": False, "reason": "not requested"}
    return report


def functional_check(pg: PartitionGraph, blocks: list[frozenset], capacity: int, objective: str = "ema",
                     machine: Machine = DEFAULT_MACHINE) -> dict:
    """Run the partition in the functional model: whether it ran in the
    model's buffers, computed the network and moved the bytes ``evaluate``
    counts, or why not."""
    from .hardware.functional.partition import BufferOverflow, ScheduleError, run_partition

    try:
        run = run_partition(pg, blocks, capacity, objective=objective, machine=machine)
    except (BufferOverflow, ScheduleError) as exc:
        return {"ran": True, "outputs_match": False, "counts_match": False, "reason": str(exc)}
    except ValueError as exc:  # a layer the functional model does not compute
        return {"ran": False, "reason": str(exc)}
    check = {"ran": True, "outputs_match": not run.mismatched, "counts_match": run.counts_match,
             "counted_ema_bytes": run.counted_ema, "max_relative_error": run.max_relative_error,
             "wall_time_s": round(run.wall_time_s, 3)}
    if run.mismatched:
        check["reason"] = f"outputs of {', '.join(run.mismatched[:3])} differ from layer-by-layer execution"
    elif not run.counts_match:
        check["reason"] = f"it counted {run.counted_ema:,} B of EMA, the cost model {sum(b.model_ema for b in run.blocks):,} B"
    return check


def functional_passed(check: dict) -> bool:
    """A check that ran and agreed; one that could not run is not a failure."""
    return not check.get("ran") or (check["outputs_match"] and check["counts_match"])


def _check(report: PartitionReport) -> None:
    """Confirm the partition with ``evaluate``; a claim it does not confirm is an error."""
    if report.blocks is None:
        return
    inst = report.instance
    metrics = evaluate(inst.graph, report.blocks, report.capacity, inst.objective, inst.machine)
    report.metrics = metrics
    value = design_cost(report.capacity, metrics.ema_bytes, inst.alpha, inst.pj_per_bit) if inst.coexplore \
        else metrics.value
    if not metrics.feasible:
        report.status, report.message = "error", "the partition does not run: " + "; ".join(metrics.violations[:3])
    elif abs(value - report.objective) > 1e-6 * max(1.0, abs(value)):
        report.status, report.message = "error", f"evaluate gives {value:,.0f}, the method claimed {report.objective:,.0f}"
    elif metrics.ema_bytes < compulsory_ema(inst.graph):
        report.status, report.message = "error", "the EMA lies below the compulsory traffic: a bug, please report it"
    elif metrics.latency_cycles < least_latency(inst):
        report.status, report.message = "error", "the latency lies below all compute or the compulsory traffic: a bug"


def least_latency(inst: PartitionInstance) -> int:
    """No partition runs faster than all its MACs, or all its compulsory
    traffic (subgraphs run one after another, each at the pace of the slower)."""
    pg = inst.graph
    return inst.machine.latency(sum(pg.node(v).macs for v in pg.order), compulsory_ema(pg))


def partition_heuristics(instance: PartitionInstance) -> dict:
    """Heuristic methods of the family: name -> callable returning (blocks,
    capacity) or None. Build the dictionary once per comparison: the three
    fixed-buffer baselines share one sweep over the sizes. At one buffer size they partition for it; when
    co-exploring, the genetic search evolves the size with the partition,
    the other partitioners are run at every size and the best design kept,
    and ``fixed-small/medium/large`` are the optimal partitions at the
    smallest feasible, median and largest size (Cocco's fixed-buffer
    baselines)."""
    from .solvers.partition_genetic import genetic
    from .solvers.partition_heuristics import PARTITION_HEURISTICS

    pg, caps = instance.graph, list(instance.capacities)

    def swept(partitioner):
        def run():
            best = None
            for capacity in caps:
                blocks = partitioner(pg, capacity)
                if blocks is None:
                    continue
                metrics = evaluate(pg, blocks, capacity)
                if metrics.feasible:
                    cost = design_cost(capacity, metrics.ema_bytes, instance.alpha, instance.pj_per_bit)
                    if best is None or cost < best[0]:
                        best = (cost, blocks, capacity)
            return None if best is None else best[1:]
        return run

    methods = {name: swept(fn) for name, fn in PARTITION_HEURISTICS.items()}
    methods["genetic"] = lambda: genetic(pg, caps, alpha=instance.alpha, pj_per_bit=instance.pj_per_bit)
    if instance.coexplore:
        from functools import cache

        from .formulations.partition.coexplore import fixed_buffers

        @cache
        def baselines() -> dict:
            return fixed_buffers(pg, caps, "dp", instance.alpha, instance.pj_per_bit, instance.time_limit)

        def fixed(which: str):
            def run():
                point = baselines().get(which)
                return None if point is None else (point.blocks, point.capacity)
            return run

        methods.update({f"fixed-{w}": fixed(w) for w in ("small", "medium", "large")})
    return methods


def score_partition(instance: PartitionInstance, found) -> tuple[str, float | None, str]:
    """(status, objective, note) of a heuristic's (blocks, capacity), by ``evaluate``."""
    if found is None:
        return "infeasible", None, "found no partition that fits"
    blocks, capacity = found
    metrics = evaluate(instance.graph, blocks, capacity, instance.objective, instance.machine)
    if not metrics.feasible:
        return "infeasible", None, "; ".join(metrics.violations[:2])
    if instance.coexplore:
        from .units import format_bytes

        value = design_cost(capacity, metrics.ema_bytes, instance.alpha, instance.pj_per_bit)
        return "feasible", value, f"buffer {format_bytes(capacity)}, {len(blocks)} subgraphs"
    return "feasible", float(metrics.value), f"{len(blocks)} subgraphs"
