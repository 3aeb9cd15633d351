"""Graph partition: exact solve times, agreement, and heuristic gaps.

    python benchmarks/partition.py                    # ResNet-50, GoogLeNet, MobileNetV2, VGG-16; RandWire 32/64
    python benchmarks/partition.py --networks randwire64 --sizes 256 --time-limit 300 --no-coexplore
    python benchmarks/partition.py --networks resnet50,randwire32 --sizes 512 --time-limit 5   # a quick run

Part 1, fixed buffers: for every network and buffer size, the candidate
count, the median wall time (over ``--repeats`` runs) of the DP, the MILP
and CP-SAT (a method that did not prove its answer shows its status and the
gap to its bound, '-' when it has none), how many of them proved the
optimum (all that finish must agree; "NO" if two disagree), whether the optimal partition passes the functional
model (its seconds, and the share of the modelled row-buffer bytes the run
never held at once), how far the compact model's bound lies below the
optimum (or the best partition found; "*" if it did not converge), and the
gap of every heuristic to the optimum (for the genetic search, the median
and worst gap over ``--ga-seeds`` seeds and its median time).

Part 2, co-exploration (Cocco's shared buffer, 128 KiB to 3 MiB in 64 KiB
steps, alpha = 0.002): the chosen size and cost, and how much cheaper the
design is than the best partition at a fixed small, medium and large
buffer (Cocco reports 1.89% to 50.33%). ``--coexplore-limit`` is the time
of each network's whole search (and of its three baselines together); a
search cut short shows ``feasible``. The search runs twice, with and without
ruling sizes out by their covering-LP bound, and both must agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mapcert.formulations.partition.coexplore import coexplore, fixed_buffers
from mapcert.formulations.partition.cost import evaluate
from mapcert.formulations.partition.exact import candidates, solve_partition
from mapcert.formulations.partition.graph import PartitionGraph, from_layers, from_network
from mapcert.formulations.partition.compact import compact_lower_bound
from mapcert.formulations.partition.schedule import row_schedule
from mapcert.hardware.functional.partition import BufferOverflow, ScheduleError, run_partition
from mapcert.solvers.partition_genetic import genetic
from mapcert.solvers.partition_heuristics import PARTITION_HEURISTICS
from mapcert import workload_library

KIB = 1024
COCCO_SHARED = list(range(128 * KIB, 3072 * KIB + 1, 64 * KIB))


def graphs(names: list[str]) -> list[PartitionGraph]:
    out = []
    for name in names:
        if name.startswith("randwire"):
            n = int(name.removeprefix("randwire"))
            out.append(from_layers(name, workload_library.randwire_layers(n, seed=0)))
        else:
            out.append(from_network(name))
    return out


def gap_text(objective, bound) -> str:
    """(objective - bound) / objective in percent, '-' when either is unknown."""
    if objective is None or bound is None:
        return "-"
    return f"{100 * max(0.0, objective - bound) / objective:.1f}%" if objective else "0.0%"


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def buffer_slack(pg: PartitionGraph, run) -> float:
    """Share of the modelled row-buffer bytes (of tensors read inside a
    subgraph) that the functional run never held at once."""
    modelled = held = 0
    for block in run.blocks:
        schedule = row_schedule(pg, frozenset(block.layers))
        for key, buffer in schedule.buffers.items():
            if buffer.consumers:
                modelled += block.held_rows[key] * buffer.row_bytes
                held += block.peak_rows[key] * buffer.row_bytes
    return 1 - held / modelled if modelled else 0.0


def functional_cell(pg: PartitionGraph, blocks, capacity: int) -> str:
    """'ok' with seconds and buffer slack, or why not."""
    try:
        run = run_partition(pg, blocks, capacity)
    except (BufferOverflow, ScheduleError):
        return "FAIL"
    except ValueError:
        return "not run"
    return f"ok {run.wall_time_s:.1f} {100 * buffer_slack(pg, run):.0f}%" if run.passed else "FAIL"


def fixed(pg: PartitionGraph, capacity: int, limit: float, repeats: int, ga_seeds: int) -> None:
    try:
        n_cands = f"{len(candidates(pg, capacity, deadline=time.perf_counter() + limit)):,}"
    except (OverflowError, TimeoutError):
        n_cands = "too many"
    cells, values, proved, blocks_proved, found = [], set(), 0, None, []
    for method in ("dp", "milp", "cpsat"):
        result, seconds = timed(lambda m=method: solve_partition(pg, capacity, m, limit), repeats)
        cells.append(f"{seconds:6.2f}")
        if result.objective is not None:
            found.append(result.objective)
        if result.status == "optimal":
            values.add(result.objective)
            proved += 1
            blocks_proved = result.blocks
        else:
            cells[-1] += f" ({result.status}, gap {gap_text(result.objective, result.best_bound)})"
    optimum = values.pop() if len(values) == 1 else None  # every method that finished proved this value
    functional = "-" if optimum is None else functional_cell(pg, blocks_proved, capacity)
    bound, converged = compact_lower_bound(pg, capacity, limit)
    reference = optimum if optimum is not None else min(found, default=None)
    compact = "-" if not reference else f"{100 * (reference - bound) / reference:.1f}%" + ("" if converged else "*")
    gaps = []
    for name, fn in PARTITION_HEURISTICS.items():
        blocks = fn(pg, capacity)
        metrics = evaluate(pg, blocks, capacity) if blocks is not None else None
        gaps.append("-" if optimum is None or metrics is None or not metrics.feasible
                    else f"{100 * (metrics.ema_bytes - optimum) / optimum:5.1f}%")
    ga_gaps, ga_times = [], []
    for seed in range(ga_seeds):  # the genetic search's spread over seeds: median and worst gap, median time
        start = time.perf_counter()
        found = genetic(pg, capacity, seed=seed)
        ga_times.append(time.perf_counter() - start)
        metrics = evaluate(pg, found[0], capacity) if found is not None else None
        if optimum is not None and metrics is not None and metrics.feasible:
            ga_gaps.append(100 * (metrics.ema_bytes - optimum) / optimum)
    gaps.append(f"{statistics.median(ga_gaps):.2f}% (worst {max(ga_gaps):.2f}%, {statistics.median(ga_times):.0f} s)"
                if len(ga_gaps) == ga_seeds else "-")
    agree = f"{proved}/3" if optimum is not None else ("NO" if proved else "0/3")
    print(f"{pg.name:12s} {capacity // KIB:6d} {n_cands:>8s} {' '.join(f'{c:>8s}' for c in cells)} {agree:>5s} "
          f"{'-' if optimum is None else f'{optimum:,.0f}':>14s} {functional:>13s} {compact:>8s} " + " ".join(f"{g:>8s}" for g in gaps), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per solve in part 1")
    parser.add_argument("--coexplore-limit", type=float, default=1200.0,
                        help="seconds per network for the whole co-exploration, and for its baselines")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ga-seeds", type=int, default=5, help="seeds of the genetic search (its median and worst gap)")
    parser.add_argument("--sizes", default="256,512,1024", help="fixed buffer sizes in KiB")
    parser.add_argument("--networks", default="resnet50,googlenet,mobilenetv2,vgg16,randwire32,randwire64")
    parser.add_argument("--no-coexplore", action="store_true")
    parser.add_argument("--no-fixed", action="store_true", help="co-exploration only (part 2)")
    args = parser.parse_args()
    sizes = [int(s) * KIB for s in args.sizes.split(",")]
    names = list(PARTITION_HEURISTICS) + ["genetic"]
    all_graphs = graphs(args.networks.split(","))
    if not args.no_fixed:
        print(f"fixed buffers: median seconds over {args.repeats} run(s), {args.time_limit:g} s limit")
        print(f"{'network':12s} {'KiB':>6s} {'cands':>8s} {'dp s':>8s} {'milp s':>8s} {'cpsat s':>8s} {'agree':>5s} "
              f"{'EMA (B)':>14s} {'func s slack':>13s} {'compact':>8s} " + " ".join(f"{n[:8]:>8s}" for n in names))
        for pg in all_graphs:
            for capacity in sizes:
                fixed(pg, capacity, args.time_limit, args.repeats, args.ga_seeds)
    if args.no_coexplore:
        return 0
    print("\nco-exploration over Cocco's shared-buffer sizes (128 KiB - 3 MiB, step 64 KiB), exact by MILP")
    print("s: the whole search; cut: sizes ruled out by their LP bound; full s: the same search solving every "
          "size up to the stop rule (same answer required)")
    print(f"{'network':12s} {'buffer':>8s} {'cost':>12s} {'s':>7s} {'cut':>4s} {'full s':>7s} {'ratio':>6s} "
          f"{'vs small':>9s} {'vs medium':>9s} {'vs large':>9s}")
    for pg in [g for g in all_graphs if not g.name.startswith("randwire")]:
        start = time.perf_counter()
        best = coexplore(pg, COCCO_SHARED, "milp", time_limit=args.coexplore_limit)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        full = coexplore(pg, COCCO_SHARED, "milp", time_limit=args.coexplore_limit, prune=False)
        full_seconds = time.perf_counter() - start
        if (full.capacity, full.ema_bytes) != (best.capacity, best.ema_bytes) and "feasible" not in (
                best.status, full.status):
            print(f"{pg.name:12s} DISAGREE: pruned {best.capacity} {best.ema_bytes}, full {full.capacity} "
                  f"{full.ema_bytes}", flush=True)
        baselines = fixed_buffers(pg, COCCO_SHARED, "milp", time_limit=args.coexplore_limit)
        if best.cost is None:
            print(f"{pg.name:12s} {'-':>8s} {'-':>12s} {seconds:7.1f}  ({best.status})", flush=True)
            continue
        cut = sum(p.status == "cutoff" for p in best.points)
        saving = {k: f"{100 * (p.cost - best.cost) / p.cost:8.2f}%" for k, p in baselines.items()}
        print(f"{pg.name:12s} {best.capacity // KIB:6d} K {best.cost:12,.0f} {seconds:7.1f} {cut:4d} "
              f"{full_seconds:7.1f} {full_seconds / seconds:5.1f}x "
              + " ".join(saving.get(k, f"{'-':>9s}") for k in ("small", "medium", "large")) + f"  ({best.status})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
