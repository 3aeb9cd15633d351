"""Loop-order constraints: what a fixed dataflow costs, and what its proof costs.

    python benchmarks/order_constraints.py                      # ResNet-18 on eyeriss
    python benchmarks/order_constraints.py --network resnet50 --preset eyeriss-like --methods cpsat

Per distinct conv layer: the proved energy optimum with free loop orders,
and with the loop order of every level fixed to one of three full orders
(``constraints.levels.NAME.order``): weight stationary, output stationary,
and one that interleaves the reuse groups. Each constrained optimum is
never below the free one (the run stops if it is); the table gives it as a ratio, and the
solve time of each method (wall clock, this machine, one run) beside the
free solve's. Medians at the end.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from mapcert.formulations.tiling.multilevel.constraints import LevelConstraint, MappingConstraints
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.instances import load_text

DATAFLOWS = {"weight-stationary": ("G", "M", "C", "R", "S", "N", "P", "Q"),
             "output-stationary": ("G", "N", "M", "P", "Q", "C", "R", "S"),
             "interleaved": ("G", "C", "P", "M", "Q", "N", "R", "S")}
"""Full loop orders (outermost first), as a fixed-dataflow accelerator's
controller runs them: the first two keep one reuse group innermost (the
weights' tile, the outputs' tile stays resident), the third interleaves
the groups, which no search over the six group orders alone would find."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="resnet18")
    parser.add_argument("--preset", default="eyeriss")
    parser.add_argument("--methods", nargs="+", default=["cpsat"])
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--limit", type=int, default=0, help="first N distinct layers only (0: all)")
    args = parser.parse_args()
    text = f"family: tiling\nworkload: {args.network}\nhardware: {args.preset}\nobjective: energy\n"
    network = load_text(text, args.network)
    layers = [(item.problem.layer.name, item.problem) for item in network.layers]
    if args.limit:
        layers = layers[:args.limit]
    levels = [level.name for level in layers[0][1].hierarchy.levels]
    print(f"{args.network} on {args.preset}: energy, free loop orders against one order at every level "
          f"({', '.join(levels)}; ratio to the free optimum; seconds per method)", flush=True)
    head = f"{'layer':22s} {'free':>12s} " + " ".join(f"{m + ' s':>8s}" for m in args.methods)
    for name in DATAFLOWS:
        head += f" {name[:17]:>17s} " + " ".join(f"{m + ' s':>8s}" for m in args.methods)
    print(head, flush=True)
    ratios: dict[str, list[float]] = {name: [] for name in DATAFLOWS}
    slowdown: dict[str, list[float]] = {m: [] for m in args.methods}
    for name, problem in layers:
        free = {m: solve_multilevel(problem, m, args.time_limit) for m in args.methods}
        values = {r.objective for r in free.values() if r.status == "optimal"}
        if len(values) != 1:
            print(f"{name:22s} not proved by every method: {[r.status for r in free.values()]}", flush=True)
            continue
        base = values.pop()
        row = f"{name:22s} {base:12,.0f} " + " ".join(f"{free[m].wall_time_s:8.1f}" for m in args.methods)
        for flow, inner in DATAFLOWS.items():
            given = dict(problem.constraints.levels)
            constraints = MappingConstraints(
                levels=tuple((i, replace(given.get(i, LevelConstraint()), order=inner)) for i in range(len(levels))),
                fanouts=problem.constraints.fanouts)
            fixed = replace(problem, constraints=constraints)
            results = {m: solve_multilevel(fixed, m, args.time_limit) for m in args.methods}
            proved = {r.objective for r in results.values() if r.status == "optimal"}
            if len(proved) != 1 or any(r.status != "optimal" for r in results.values()):
                row += f" {'/'.join(r.status for r in results.values()):>17s} " + " ".join(
                    f"{r.wall_time_s:8.1f}" for r in results.values())
                continue
            value = proved.pop()
            if value < base * (1 - 1e-12):
                raise SystemExit(f"{name}: the {flow} optimum {value} is below the free optimum {base}")
            ratios[flow].append(value / base)
            for m in args.methods:
                slowdown[m].append(results[m].wall_time_s / max(free[m].wall_time_s, 1e-3))
            row += f" {value / base:17.3f} " + " ".join(f"{results[m].wall_time_s:8.1f}" for m in args.methods)
        print(row, flush=True)
    print()
    for flow, values in ratios.items():
        if values:
            print(f"{flow}: median optimum / free optimum {statistics.median(values):.3f} "
                  f"(worst {max(values):.3f}, {len(values)} layers)")
    for m, values in slowdown.items():
        if values:
            print(f"{m}: median solve time with a fixed order / free {statistics.median(values):.2f}x "
                  f"(worst {max(values):.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
