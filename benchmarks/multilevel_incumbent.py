"""Multi-level tiling: how much coordinate descent (``polish``) lowers the
MILP's starting incumbent, per distinct layer.

    python benchmarks/multilevel_incumbent.py                          # ResNet-18 on simba-like and eyeriss
    python benchmarks/multilevel_incumbent.py --network resnet50 --presets eyeriss-like

For every distinct layer: the best of the paper's dataflow and random
sampling (5,000 samples each), the incumbent the MILP starts from (that
mapping polished), how much lower it is, and the seconds the incumbent took
(sampling included); the median and largest reduction close each preset.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiling_onchip import distinct_layers  # noqa: E402

import mapcert.formulations.tiling.multilevel.milp as milp  # noqa: E402
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel  # noqa: E402
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem, Restriction  # noqa: E402
from mapcert.formulations.tiling.multilevel.schema import preset_constraints  # noqa: E402
from mapcert.hardware.hierarchy import hierarchy_preset  # noqa: E402
from mapcert.solvers.multilevel_heuristics import paper_dataflow, random_sampling  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="resnet18")
    parser.add_argument("--presets", nargs="+", default=["simba-like", "eyeriss"])
    parser.add_argument("--objective", default="energy", choices=list(milp.POLISHED_OBJECTIVES))
    args = parser.parse_args()
    for preset in args.presets:
        hierarchy = hierarchy_preset(preset)
        print(f"\n{args.network} on {preset}, {args.objective}")
        print(f"{'layer':30s} {'sampled':>16s} {'polished':>16s} {'lower':>7s} {'s':>6s}")
        gains = []
        for layer, _ in distinct_layers(args.network):
            problem = MultiLevelProblem(layer, hierarchy, objective=args.objective,
                                        constraints=preset_constraints(preset, hierarchy))
            sampled = [evaluate_multilevel(problem, m) for m in (paper_dataflow(problem, samples=5_000),
                                                                 random_sampling(problem, samples=5_000))
                       if m is not None]
            fitting = [m.objective(args.objective) for m in sampled if m.fits]
            start = time.perf_counter()
            found = milp._incumbent(problem, Restriction())
            seconds = time.perf_counter() - start
            if not fitting or found is None:
                print(f"{layer.name:30s} {'-':>16s} {'-':>16s} {'-':>7s} {seconds:6.1f}", flush=True)
                continue
            gain = 100 * (1 - found[1] / min(fitting))
            gains.append(gain)
            print(f"{layer.name:30s} {min(fitting):16,.0f} {found[1]:16,.0f} {gain:6.1f}% {seconds:6.1f}", flush=True)
        if gains:
            print(f"summary {preset}: median {statistics.median(gains):.1f}% lower, largest {max(gains):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
