"""Multi-level tiling: the vectorized functional model on every distinct layer
of a network at its CP-SAT energy optimum.

    python benchmarks/functional_multilevel.py                     # ResNet-50, eyeriss and simba-pe
    python benchmarks/functional_multilevel.py --network resnet18 --presets eyeriss --time-limit 30

Each distinct layer shape is solved once with CP-SAT (energy), then its
mapping is executed by ``run_multilevel_vectorized``: the outputs are
compared with a direct convolution and the reads and writes of every level
with ``evaluate_multilevel``. The table gives the DRAM-level tiles (the
iterations of the DRAM loops, which the model used to cap at 100,000), the
functional model's wall time on this machine, and both checks; the median
and the worst time close each preset. A mapping found at the time limit
(not proved optimal) is still checked, and marked "best".
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiling_onchip import distinct_layers  # noqa: E402

from mapcert.formulations.tiling.multilevel.problem import DIMS, MultiLevelProblem  # noqa: E402
from mapcert.formulations.tiling.multilevel.schema import preset_constraints  # noqa: E402
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel  # noqa: E402
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized  # noqa: E402
from mapcert.hardware.hierarchy import hierarchy_preset  # noqa: E402


def functional_check(problem: MultiLevelProblem, mapping, metrics) -> tuple[bool, bool]:
    """Run ``mapping`` in the vectorized functional model: (outputs equal a
    direct convolution, every level's reads and writes and the cycles equal
    ``metrics``, evaluate's). Raises ValueError past the memory guard."""
    run = run_multilevel_vectorized(problem, mapping)
    counts = run.reads == metrics.reads and run.writes == metrics.writes and run.cycles == metrics.compute_cycles
    return run.outputs_match, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="resnet50")
    parser.add_argument("--presets", nargs="+", default=["eyeriss", "simba-pe"])
    parser.add_argument("--time-limit", type=float, default=60.0, help="CP-SAT seconds per layer")
    args = parser.parse_args()
    failures = 0
    for preset in args.presets:
        hierarchy = hierarchy_preset(preset)
        print(f"\n{args.network} on {preset}, CP-SAT energy optimum (limit {args.time_limit:g} s)", flush=True)
        print(f"{'layer':30s} {'preset':>9s} {'solve':>8s} {'DRAM tiles':>12s} {'cycles':>12s} "
              f"{'functional s':>12s} {'outputs':>8s} {'counts':>7s}", flush=True)
        times = []
        for layer, _ in distinct_layers(args.network):
            problem = MultiLevelProblem(layer, hierarchy, objective="energy",
                                        constraints=preset_constraints(preset, hierarchy))
            result = solve_multilevel(problem, "cpsat", args.time_limit)
            if result.mapping is None:
                print(f"{layer.name:30s} {preset:>9s} {result.status:>8s}  no mapping: {result.message}", flush=True)
                failures += 1
                continue
            tiles = math.prod(result.mapping.factor(0, d) for d in DIMS)  # iterations of the DRAM loops
            start = time.perf_counter()
            try:
                outputs_match, counts = functional_check(problem, result.mapping, result.metrics)
            except ValueError as exc:  # the memory guard
                print(f"{layer.name:30s} {preset:>9s} {'':>8s} {tiles:12,d}  not run: {exc}", flush=True)
                failures += 1
                continue
            seconds = time.perf_counter() - start
            failures += not (outputs_match and counts)
            times.append((seconds, layer.name))
            status = "optimal" if result.status == "optimal" else "best"
            print(f"{layer.name:30s} {preset:>9s} {status:>8s} {tiles:12,d} {result.metrics.compute_cycles:12,d} "
                  f"{seconds:12.2f} {'yes' if outputs_match else 'NO':>8s} {'yes' if counts else 'NO':>7s}", flush=True)
        if times:
            worst = max(times)
            print(f"summary {preset}: {len(times)} layers run; functional median "
                  f"{statistics.median(t for t, _ in times):.2f} s, worst {worst[0]:.2f} s ({worst[1]})", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
