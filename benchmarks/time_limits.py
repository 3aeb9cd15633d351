"""How well every exact method keeps its time limit (model builds and pieces
included): the wall time of one call with a limit too small to finish,
against the promise of 10% plus one second.

    python benchmarks/time_limits.py [--limits 1,2] [--repeats 3]

One row per method and instance: the limit, the median wall time over the
repeats, the overrun beyond the limit, whether it is within the promise, and
the answer's status and bound.  Run it on a quiet machine: another process
on the same cores slows every step, the uninterruptible ones included.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from mapcert import workload_library
from mapcert.formulations.partition.exact import solve_partition
from mapcert.formulations.partition.graph import from_layers
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.instances import load, load_text

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def cases():
    """(label, call(limit)) of methods on instances they cannot finish in a second or two."""
    big = load_text("family: tiling\nworkload: vgg16.conv1_2\nhardware: glb-256KiB\nspace: {tiles: any}\n")
    conv1 = load_text("family: tiling\nworkload: resnet18.conv1\nhardware: eyeriss\nobjective: energy\n")
    layer4 = load(EXAMPLES / "resnet18_layer4_eyeriss.yaml")
    edp = load(EXAMPLES / "resnet18_layer4_eyeriss_edp.yaml")
    small = load(EXAMPLES / "small_three_level.yaml")
    randwire = from_layers("randwire32", workload_library.randwire_layers(nodes=32, seed=0))
    return [
        ("two-level milp, vgg16.conv1_2 any tiles", lambda t: solve_tiling(big, "milp", t)),
        ("two-level enumerate, vgg16.conv1_2 any tiles", lambda t: solve_tiling(big, "enumerate", t)),
        ("hierarchy milp, resnet18.conv1 eyeriss", lambda t: solve_multilevel(conv1, "milp", t)),
        ("hierarchy cpsat, resnet18.conv1 eyeriss", lambda t: solve_multilevel(conv1, "cpsat", t)),
        ("hierarchy milp, resnet18 layer4 example", lambda t: solve_multilevel(layer4, "milp", t)),
        ("hierarchy milp EDP, layer4 EDP example", lambda t: solve_multilevel(edp, "milp", t)),
        ("hierarchy enumerate, small example", lambda t: solve_multilevel(small, "enumerate", t)),
        ("partition milp, randwire-32 512 KiB", lambda t: solve_partition(randwire, 512 * 1024, "milp", t)),
        ("partition cpsat, randwire-32 512 KiB", lambda t: solve_partition(randwire, 512 * 1024, "cpsat", t)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", default="1,2", help="comma-separated time limits in seconds")
    parser.add_argument("--repeats", type=int, default=3, help="calls per row (median reported)")
    args = parser.parse_args()
    limits = [float(x) for x in args.limits.split(",")]
    print(f"{'method and instance':46s} {'limit s':>7s} {'wall s':>7s} {'overrun s':>9s} {'promise':>8s} "
          f"{'status':9s} bound")
    worst = 0.0
    for label, call in cases():
        for limit in limits:
            walls, result = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = call(limit)
                walls.append(time.perf_counter() - start)
            wall = statistics.median(walls)
            over = wall - limit
            worst = max(worst, over - 0.1 * limit)
            kept = "kept" if wall <= 1.1 * limit + 1.0 else "MISSED"
            bound = "-" if result.best_bound is None else f"{result.best_bound:,.0f}"
            print(f"{label:46s} {limit:7.2f} {wall:7.2f} {over:9.2f} {kept:>8s} {result.status:9s} {bound}")
    print(f"worst overrun beyond 10% of the limit: {worst:.2f} s (the promise allows 1 s)")


if __name__ == "__main__":
    main()
