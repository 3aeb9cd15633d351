"""Rigorous lower bounds of the graph-partition objectives (docs/partition.md, "Bounds").

* **EMA**: the compulsory EMA. Every subgraph's EMA counts its weights,
  the network input its layers read and the network outputs it writes
  (``cost.ema_bytes``, and a lone layer that streams its weights reads
  them all once too), so every partition moves at least every weight,
  the network input and every network output once.
* **Latency**: ``least_latency``. Subgraphs run one after another, each
  at ``max(ceil(MACs / macs_per_cycle), ceil(EMA / dram_bytes_per_cycle))``;
  a sum of maxima is at least the maximum of the sums, a sum of ceilings at
  least the ceiling of the sum, and the EMAs sum to at least the compulsory
  EMA.
* **Design cost** (co-exploration): ``least_design_cost``. A design pays
  its buffer size plus ``alpha * 8 * pj_per_bit`` times its EMA, which is at
  least the compulsory EMA; and its size is a candidate in which every
  layer can run at all (``least_feasible_capacity``).
"""

from __future__ import annotations

from ..formulations.family import Bound
from ..formulations.partition.coexplore import design_cost
from ..formulations.partition.cost import compulsory_ema, least_memory, memory_parts
from ..formulations.partition.graph import PartitionGraph
from ..formulations.partition.problem import PartitionProblem


def least_latency(problem: PartitionProblem) -> int:
    """Cycles no partition beats: all MACs at full rate, or the compulsory
    EMA at full DRAM bandwidth, whichever takes longer."""
    pg = problem.graph
    return problem.machine.latency(sum(pg.node(v).macs for v in pg.order), compulsory_ema(pg))


def layer_floor(pg: PartitionGraph, v: str) -> int:
    """Bytes of one shared buffer without which layer ``v`` runs in no
    subgraph: alone it needs ``least_memory`` (its weights streamed in the
    most groups), and in any larger subgraph at least its weights plus its
    row-buffer lower bound, which never shrinks as layers join
    (``cost.memory_parts``)."""
    alone = frozenset([v])
    weights, _, buffers = memory_parts(pg, alone)
    return min(least_memory(pg, alone), weights + buffers)


def least_feasible_capacity(problem: PartitionProblem) -> int | None:
    """The smallest candidate size in which every layer can run at all
    (None: none is; then no design exists)."""
    pg = problem.graph
    need = max(layer_floor(pg, v) for v in pg.order)
    return next((c for c in sorted(problem.capacities) if c >= need), None)


def least_design_cost(problem: PartitionProblem) -> float:
    """``size + alpha * 8 * pj_per_bit * compulsory EMA`` at the least
    feasible candidate size (the smallest candidate when none is)."""
    size = least_feasible_capacity(problem)
    if size is None:
        size = min(problem.capacities)
    return design_cost(size, compulsory_ema(problem.graph), problem.alpha, problem.pj_per_bit)


def partition_bounds(problem: PartitionProblem) -> list[Bound]:
    """The rigorous bound of the problem's objective."""
    pg = problem.graph
    if problem.coexplore:
        return [Bound("least_design_cost", least_design_cost(problem), True,
                      "the least candidate size every layer can run in, plus alpha times the energy of the "
                      "compulsory EMA")]
    if problem.objective == "latency":
        return [Bound("least_latency", float(least_latency(problem)), True,
                      "all MACs at full rate, or the compulsory EMA at full DRAM bandwidth, whichever is longer")]
    return [Bound("compulsory_ema", float(compulsory_ema(pg)), True,
                  "every weight, the network input and every network output cross the chip boundary "
                  "once")]
