"""Graph partition into fused subgraphs, with the on-chip buffer size, as a
registered family (Cocco; docs/partition.md).

The pieces live beside this file: the graph (``graph.py``), the cost model
(``cost.py``, ``schedule.py``), the exact methods (``exact.py``; the
co-exploration of the buffer size in ``coexplore.py``), the bounds
(``bounds.py``), the schema (``schema.py``), brute force
(``brute_force.py``) and the terminal tables (``render.py``); heuristics in
``solvers/partition_heuristics.py`` and ``solvers/partition_genetic.py``;
the functional model in ``hardware/functional/partition.py``.  This module
only connects them to the family contract.
"""

from __future__ import annotations

import math
import time
from functools import cache
from pathlib import Path

from rich.markup import escape

from ...hardware.functional.partition import BufferOverflow, ScheduleError, run_partition
from ...solvers.partition_genetic import genetic
from ...solvers.partition_heuristics import PARTITION_HEURISTICS
from ...units import format_bytes, parse_bytes
from ..family import (Attempt, Bound, Check, Evaluation, ExactMethod, Family, FunctionalRun, Heuristic,
                      PlotUnsupported, Status)
from ..registry import register
from ...validation.partition_bounds import least_latency, partition_bounds
from .brute_force import brute_force_optimum
from .coexplore import coexplore, design_cost, fixed_buffers
from .cost import SplitCapacity, compulsory_ema, evaluate, total_bytes
from .exact import solve_partition
from .problem import PartitionProblem, PartitionSolution, execution_order
from .render import describe_buffers, describe_capacity, fusion_summary, render_partition
from .schema import build_partition, dump_partition

UNITS = {"ema": "bytes", "latency": "cycles", "design_cost": "B + alpha * pJ"}
QUICK_HEURISTICS = ("greedy-merge", "depth-dp")
"""Heuristics every ``solve`` scores (about a second on a network of 80
layers; the best of them is the answer when an exact method runs out of
time).  Annealing, the genetic search and the fixed-buffer baselines take
tens of seconds on such a network and run in ``compare``."""
HEURISTIC_SUMMARIES = {
    "greedy-merge": "Halide-style merging of the adjacent pair that saves the most EMA",
    "depth-dp": "the best cut of the topological order into segments (Irregular-NN)",
    "annealing": "simulated annealing from the greedy partition",
}


# --------------------------------------------------------------------------
# exact methods


def _details(problem: PartitionProblem, solution: PartitionSolution | None) -> dict:
    """Compulsory EMA, layer-by-layer EMA and fusion's saving of a solution."""
    if solution is None:
        return {"compulsory_ema_bytes": compulsory_ema(problem.graph)}
    metrics = evaluate(problem.graph, list(solution.blocks), solution.capacity, problem.objective, problem.machine)
    return fusion_summary(problem.graph, solution.capacity, metrics.ema_bytes) if metrics.feasible else {}


def solve_fixed(problem: PartitionProblem, method: str, time_limit: float | None) -> Attempt:
    """One buffer: the least-EMA (or least-latency) partition by ``method``."""
    limit = problem.time_limit if time_limit is None else time_limit
    r = solve_partition(problem.graph, problem.capacity, method, limit, problem.workers,
                        objective=problem.objective, machine=problem.machine)
    solution = None if r.blocks is None else PartitionSolution(tuple(r.blocks), problem.capacity)
    details = {"candidates": r.candidates, **r.details, **_details(problem, solution)}
    message = r.message
    if r.status == "infeasible" and not message:
        message = f"no partition fits {describe_capacity(problem.capacity)}"
    return Attempt(Status(r.status), solution, None if r.objective is None else float(r.objective),
                   r.best_bound, r.wall_time_s, message, method, details)


def solve_coexplored(problem: PartitionProblem, method: str, time_limit: float | None) -> Attempt:
    """Several sizes: the least design cost over every candidate size and partition."""
    limit = problem.time_limit if time_limit is None else time_limit
    start = time.perf_counter()
    r = coexplore(problem.graph, list(problem.capacities), method=method, alpha=problem.alpha,
                  pj_per_bit=problem.pj_per_bit, time_limit=limit)
    wall = time.perf_counter() - start
    solution = None if r.blocks is None else PartitionSolution(tuple(r.blocks), r.capacity)
    message = ""
    if r.status == "infeasible":
        message = f"no partition fits even the largest candidate, {format_bytes(max(problem.capacities))}"
    elif r.status == "error":
        message = ("no buffer size was solved within the limits (too many candidate subgraphs, or the time "
                   "limit); try smaller sizes or a longer --time-limit")
    points = [{"capacity_bytes": p.capacity, "status": p.status, "ema_bytes": p.ema_bytes, "cost": p.cost}
              for p in r.points]
    details = {"capacities": points, **_details(problem, solution)}
    return Attempt(Status(r.status), solution, r.cost, r.cost if r.status == "optimal" else None, wall, message,
                   method, details)


def solve_partition_problem(problem: PartitionProblem, method: str, time_limit: float | None) -> Attempt:
    """The exact method ``method`` (dp, milp, cpsat) on a fixed buffer or a co-exploration."""
    if problem.coexplore:
        return solve_coexplored(problem, method, time_limit)
    return solve_fixed(problem, method, time_limit)


# --------------------------------------------------------------------------
# heuristics


def partition_heuristics(problem: PartitionProblem) -> list[Heuristic]:
    """Heuristics of ``problem``, built together so that the fixed-buffer
    baselines share one sweep over the sizes.

    At one buffer size each partitioner runs at it.  When co-exploring, each
    partitioner runs at every candidate size in increasing order (stopping
    once a size alone, plus the energy of the compulsory EMA, costs more
    than the best design found) and the best design is kept; the genetic
    search evolves the size with the partition; ``fixed-small``,
    ``fixed-medium`` and ``fixed-large`` are the optimal partitions at the
    smallest feasible, the median and the largest size (Cocco's
    fixed-buffer baselines)."""
    pg, caps = problem.graph, list(problem.capacities)
    floor = compulsory_ema(pg)

    def swept(partitioner):
        def run():
            best = None
            for capacity in caps:
                if best is not None and design_cost(capacity, floor, problem.alpha, problem.pj_per_bit) >= best[0]:
                    break
                blocks = partitioner(pg, capacity)
                if blocks is None:
                    continue
                metrics = evaluate(pg, blocks, capacity, problem.objective, problem.machine)
                if metrics.feasible:
                    cost = design_cost(capacity, metrics.ema_bytes, problem.alpha, problem.pj_per_bit) \
                        if problem.coexplore else metrics.value
                    if best is None or cost < best[0]:
                        best = (cost, blocks, capacity)
            return None if best is None else PartitionSolution(tuple(best[1]), best[2])
        return run

    def evolved():
        found = genetic(pg, caps, alpha=problem.alpha, pj_per_bit=problem.pj_per_bit)
        return None if found is None else PartitionSolution(tuple(found[0]), found[1])

    out = [Heuristic(name, swept(fn), in_solve=name in QUICK_HEURISTICS, summary=HEURISTIC_SUMMARIES.get(name, ""))
           for name, fn in PARTITION_HEURISTICS.items()]
    out.append(Heuristic("genetic", evolved, in_solve=False,
                         summary="Cocco-style genetic search over partition and buffer size"))
    if problem.coexplore:
        @cache
        def baselines() -> dict:
            return fixed_buffers(pg, caps, "dp", problem.alpha, problem.pj_per_bit, problem.time_limit)

        def fixed(which: str):
            def run():
                point = baselines().get(which)
                return None if point is None else PartitionSolution(tuple(point.blocks), point.capacity)
            return run

        out.extend(Heuristic(f"fixed-{w}", fixed(w), in_solve=False,
                             summary=f"the optimal partition at the {w} buffer size")
                   for w in ("small", "medium", "large"))
    return out


# --------------------------------------------------------------------------
# solutions


def _capacity_from(problem: PartitionProblem, raw):
    """The buffer a stored solution names, checked against the instance's candidates."""
    if raw is None:
        if problem.coexplore:
            raise ValueError("capacity: required when the instance co-explores the buffer size; choose one of "
                             + ", ".join(f"{c:,}" for c in problem.capacities[:8])
                             + (", ..." if len(problem.capacities) > 8 else ""))
        return problem.capacity
    if isinstance(problem.capacity, SplitCapacity):
        if not isinstance(raw, dict) or set(raw) != {"activations", "weights"}:
            raise ValueError(f"capacity: the instance has separate buffers; give {{activations: "
                             f"{problem.capacity.activations}, weights: {problem.capacity.weights}}}")
        capacity = SplitCapacity(parse_bytes(raw["activations"]), parse_bytes(raw["weights"]))
    else:
        if isinstance(raw, dict):
            raise ValueError("capacity: the instance has one shared buffer; give its size in bytes")
        capacity = parse_bytes(raw)
    if capacity not in problem.capacities:
        shown = ", ".join(f"{c:,}" for c in problem.capacities[:8]) + (", ..." if len(problem.capacities) > 8 else "")
        raise ValueError(f"capacity: {capacity:,} B is not among the instance's buffer sizes ({shown} B)")
    return capacity


def partition_from_dict(problem: PartitionProblem, data) -> PartitionSolution:
    """A solution from its stored form ``{subgraphs: [[layer, ...], ...], capacity}``.

    Raises
    ------
    ValueError
        Naming an unknown layer, a layer given twice, a layer in no
        subgraph, an empty subgraph, or a capacity that is not a candidate.
    """
    if not isinstance(data, dict):
        raise ValueError("a partition is a mapping with subgraphs (lists of layer names) and capacity")
    unknown = sorted(set(data) - {"subgraphs", "capacity"})
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(str, unknown))}; a partition has subgraphs and capacity")
    subgraphs = data.get("subgraphs")
    if not isinstance(subgraphs, list) or not all(isinstance(s, list) for s in subgraphs):
        raise ValueError("subgraphs: must be a list of lists of layer names")
    pg = problem.graph
    seen: dict[str, int] = {}
    blocks = []
    for i, layers in enumerate(subgraphs):
        if not layers:
            raise ValueError(f"subgraphs[{i}]: empty")
        for name in layers:
            if not isinstance(name, str) or name not in pg.graph:
                raise ValueError(f"subgraphs[{i}]: {name!r} is not a layer of {pg.name}")
            if name in seen:
                raise ValueError(f"subgraphs[{i}]: layer {name!r} is already in subgraphs[{seen[name]}]")
            seen[name] = i
        blocks.append(frozenset(layers))
    missing = [v for v in pg.order if v not in seen]
    if missing:
        raise ValueError(f"subgraphs: {len(missing)} layer(s) in no subgraph: {', '.join(missing[:5])}"
                         + (", ..." if len(missing) > 5 else ""))
    return PartitionSolution(tuple(blocks), _capacity_from(problem, data.get("capacity")))


def capacity_to_dict(capacity):
    """A capacity as a solution stores it: bytes, or ``{activations, weights}``."""
    if isinstance(capacity, SplitCapacity):
        return {"activations": capacity.activations, "weights": capacity.weights}
    return int(capacity)


def partition_evaluation(problem: PartitionProblem, solution: PartitionSolution) -> Evaluation:
    """The cost model's verdict: EMA, latency or design cost, and why a partition does not run."""
    pg = problem.graph
    m = evaluate(pg, list(solution.blocks), solution.capacity, problem.objective, problem.machine)
    violations = list(m.violations)
    if solution.capacity not in problem.capacities:
        violations.append(f"the buffer {describe_capacity(solution.capacity)} is not among the instance's sizes")
    metrics = {"ema_bytes": m.ema_bytes, "latency_cycles": m.latency_cycles, "peak_memory_bytes": m.peak_memory_bytes,
               "subgraphs": m.subgraphs, "capacity_bytes": total_bytes(solution.capacity),
               "streamed_weight_groups": dict(sorted(m.streamed.items()))}
    value: float = m.value
    if problem.coexplore:
        value = design_cost(solution.capacity, m.ema_bytes, problem.alpha, problem.pj_per_bit)
        metrics["design_cost"] = value
    feasible = not violations
    return Evaluation(float(value) if feasible else None, feasible, metrics, violations)


# --------------------------------------------------------------------------
# the family


class GraphPartition(Family):
    """Partition of a network's layer graph into fused subgraphs that fit an
    on-chip buffer (and the buffer size, when co-exploring), minimizing
    external memory access, latency or Cocco's design cost."""

    name = "partition"
    key = "partition"
    summary = "graph partition into fused subgraphs and on-chip buffer size (EMA, latency or design cost)"
    infeasible_field = ("buffer",)

    def build(self, data: dict, where, label: str, base: Path):
        return build_partition(data, where, label, base)

    def dump(self, problem: PartitionProblem) -> dict:
        return dump_partition(problem)

    def owns(self, problem) -> bool:
        return isinstance(problem, PartitionProblem)

    def time_limit(self, problem: PartitionProblem) -> float:
        return problem.time_limit

    def objective_name(self, problem: PartitionProblem) -> str:
        return problem.objective_name

    def unit(self, problem: PartitionProblem) -> str:
        return UNITS[problem.objective_name]

    def space(self, problem: PartitionProblem) -> str:
        n = problem.graph.graph.number_of_nodes()
        where = (f"one shared buffer of one of {len(problem.capacities)} candidate sizes "
                 f"({format_bytes(problem.capacities[0])} to {format_bytes(problem.capacities[-1])})"
                 if problem.coexplore else f"the {describe_capacity(problem.capacity)}")
        return (f"partitions of the {n} layers into connected, convex subgraphs that fit {where} and run one "
                "after another, each fused subgraph on its row schedule with all its weights on chip, a lone "
                "layer optionally streaming its weights in groups of output channels")

    def evaluate(self, problem: PartitionProblem, solution: PartitionSolution) -> Evaluation:
        return partition_evaluation(problem, solution)

    def solution_to_dict(self, problem: PartitionProblem, solution: PartitionSolution) -> dict:
        return {"subgraphs": execution_order(problem.graph, solution.blocks),
                "capacity": capacity_to_dict(solution.capacity)}

    def solution_from_dict(self, problem: PartitionProblem, data) -> PartitionSolution:
        return partition_from_dict(problem, data)

    def methods(self, problem) -> list[ExactMethod]:
        return [
            ExactMethod("dp", lambda p, t: solve_partition_problem(p, "dp", t),
                        summary="DP over downward-closed sets of layers (the independent reference)"),
            ExactMethod("milp", lambda p, t: solve_partition_problem(p, "milp", t),
                        summary="set partitioning with order potentials, MILP (pyomo + HiGHS)"),
            ExactMethod("cpsat", lambda p, t: solve_partition_problem(p, "cpsat", t),
                        summary="set partitioning with order potentials, CP-SAT"),
        ]

    def default_method(self, problem: PartitionProblem) -> str:
        return problem.method

    def heuristics(self, problem: PartitionProblem) -> list[Heuristic]:
        return partition_heuristics(problem)

    def bounds(self, problem: PartitionProblem) -> list[Bound]:
        return partition_bounds(problem)

    def cross_checks(self, problem: PartitionProblem, solution: PartitionSolution,
                     evaluation: Evaluation) -> list[Check]:
        metrics = evaluation.metrics
        pg = problem.graph
        checks = [Check("peak on-chip memory within the buffer",
                        metrics["peak_memory_bytes"] <= total_bytes(solution.capacity),
                        f"{metrics['peak_memory_bytes']:,} B <= {total_bytes(solution.capacity):,} B")]
        if problem.objective_name != "ema":
            floor = compulsory_ema(pg)
            checks.append(Check("EMA at or above the compulsory EMA", metrics["ema_bytes"] >= floor,
                                f"{metrics['ema_bytes']:,} B >= {floor:,} B"))
        if problem.objective_name != "latency":
            floor = least_latency(problem)
            checks.append(Check("latency at or above the least latency", metrics["latency_cycles"] >= floor,
                                f"{metrics['latency_cycles']:,} >= {floor:,} cycles"))
        return checks

    def functional(self, problem: PartitionProblem, solution: PartitionSolution, seed: int = 0) -> FunctionalRun:
        pg = problem.graph
        start = time.perf_counter()
        try:
            run = run_partition(pg, list(solution.blocks), solution.capacity, seed=seed, objective=problem.objective,
                                machine=problem.machine)
        except (BufferOverflow, ScheduleError) as exc:
            return FunctionalRun(True, False, str(exc), {}, time.perf_counter() - start)
        except ValueError as exc:  # a layer the model does not compute, or a graph beyond its size limits
            return FunctionalRun(False, reason=str(exc), wall_time_s=time.perf_counter() - start)
        ema = evaluate(pg, list(solution.blocks), solution.capacity, problem.objective, problem.machine).ema_bytes
        counts = {"counted_ema_bytes": run.counted_ema, "evaluated_ema_bytes": ema,
                  "max_relative_error": run.max_relative_error if math.isfinite(run.max_relative_error) else None,
                  "subgraphs": len(run.blocks)}
        reason = ""
        if run.mismatched:
            reason = f"outputs of {', '.join(run.mismatched[:3])} differ from layer-by-layer execution"
        elif not run.counts_match or run.counted_ema != ema:
            reason = f"it counted {run.counted_ema:,} B of EMA, evaluate {ema:,} B"
        passed = not run.mismatched and run.counts_match and run.counted_ema == ema
        return FunctionalRun(True, passed, reason, counts, run.wall_time_s)

    def describe(self, problem: PartitionProblem) -> str:
        pg = problem.graph
        return (f"[bold]{escape(pg.name)}[/] ({pg.graph.number_of_nodes()} layers), graph partition, "
                f"{describe_buffers(problem)}; objective: {problem.objective_name} ({self.unit(problem)})")

    def render(self, problem: PartitionProblem, result, console, table) -> None:
        if result.solution is None or not result.metrics:
            return
        render_partition(problem, result, self.solution_from_dict(problem, result.solution), console, table)

    def plot(self, problem: PartitionProblem, output: Path, options: dict, progress) -> str:
        from ...pipeline import solve

        advance = progress("solving", 1)
        result = solve(problem, time_limit=options.get("time_limit"), functional=False, heuristics=False)
        advance()
        if result.solution is None:
            raise PlotUnsupported(f"buffer: nothing to draw: {result.message or result.status.value}")
        solution = self.solution_from_dict(problem, result.solution)
        self.draw_solution(problem, solution, output, f"{result.status.value} partition")
        return f"the {result.status.value} partition, {len(solution.blocks)} subgraphs"

    def draw_solution(self, problem: PartitionProblem, solution, output: Path, what: str = "partition") -> str:
        from ... import plots

        evaluation = self.evaluate(problem, solution)
        size = describe_capacity(solution.capacity) + (" (co-explored)" if problem.coexplore else "")
        metrics = evaluation.metrics if evaluation.feasible else {}
        figures = ([f"latency {metrics['latency_cycles']:,} cycles"] if problem.objective_name == "latency" else []) \
            + ([f"EMA {format_bytes(metrics['ema_bytes'])}"] if metrics.get("ema_bytes") is not None else [])
        plots.plot_partition(problem.graph, list(solution.blocks), output,
                             f"{problem.graph.name}: {what}, {size}" + "".join(f", {f}" for f in figures))
        return f"the {what} of {problem.graph.name} into {len(solution.blocks)} subgraph{'s' * (len(solution.blocks) != 1)}"

    def examples(self) -> list[str]:
        return EXAMPLES

    def brute_force(self, problem: PartitionProblem) -> float | None:
        return brute_force_optimum(problem)


TINY_RESIDUAL = """\
  name: tiny-residual
  layers:
    conv1: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8, R: 3, S: 3}, inputs: [input]}
    conv2: {op: conv2d, dims: {M: 4, C: 4, P: 8, Q: 8, R: 3, S: 3}, inputs: [conv1]}
    conv3: {op: conv2d, dims: {M: 4, C: 4, P: 8, Q: 8, R: 3, S: 3}, inputs: [conv2]}
    add: {op: add, dims: {M: 4, C: 4, P: 8, Q: 8}, inputs: [conv1, conv3]}
    pool: {op: pool, dims: {M: 4, C: 4, P: 4, Q: 4, R: 2, S: 2}, stride: 2, inputs: [add]}
    fc: {op: fc, dims: {M: 3, C: 64}, inputs: [pool]}
"""

EXAMPLES = [
    "family: partition\nworkload:\n" + TINY_RESIDUAL + "buffer: 600\nsolver: {method: dp}\n",
    "family: partition\nworkload: {randwire: {nodes: 4, k: 2, seed: 2, channels: 4, size: 6}}\n"
    "buffer: [250, 400, 600, 1000, 1600]\ncost: {alpha: 0.01}\nsolver: {method: dp}\n",
    "family: partition\nworkload:\n" + TINY_RESIDUAL + "buffer: {activations: 400, weights: 400}\n"
    "objective: latency\naccelerator: {macs_per_cycle: 64, dram_bytes_per_cycle: 2}\nsolver: {method: dp}\n",
]
"""Tiny instances for the contract suite, each solved by every method and by
brute force in well under a second: a residual block at a buffer that
fuses part of it (least EMA); a RandWire graph whose design cost is least
at the fourth of five sizes (co-exploration); the residual block on
separate buffers, least latency."""


register(GraphPartition())
