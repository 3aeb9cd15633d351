"""The canonical optimum against the proof it follows, per layer.

    python benchmarks/canonical.py                                  # ResNet-50 on eyeriss, energy
    python benchmarks/canonical.py --network resnet18 --presets simba-pe tpu-like
    python benchmarks/canonical.py --network awkward --presets eyeriss-like --objective latency

For each distinct layer it times the one-worker CP-SAT proof (the run
whose trajectory defines the canonical optimum) and the canonical search
that repeats that run up to the proved value, and checks that both end
with the same mapping (``docs/tiling-multilevel.md``, "The canonical
optimum"). Divisor factors only: with ``factors: any`` the proof starts
from the divisor space's optimum as a hint, so it is not the canonical run.
A layer whose mapping differs would mean the trajectory is not
deterministic; the summary counts them. Times are wall clock, one run.
"""

from __future__ import annotations

import argparse
import time

from mapcert.formulations.tiling.multilevel.canonical import canonical_optimum
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.schema import preset_constraints
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.hardware.hierarchy import hierarchy_preset
from tiling_onchip import distinct_layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="resnet50")
    parser.add_argument("--presets", nargs="+", default=["eyeriss"])
    parser.add_argument("--objective", default="energy", choices=["energy", "offchip_traffic", "latency"])
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per solve")
    args = parser.parse_args()
    for preset in args.presets:
        hierarchy = hierarchy_preset(preset)
        constraints = preset_constraints(preset, hierarchy)
        print(f"\n{args.network} on {preset}, {args.objective}: seconds, one worker",
              flush=True)
        print(f"{'layer':30s} {'proof':>8s} {'to V':>8s} {'to V/proof':>10s} {'same mapping':>13s}", flush=True)
        proofs, searches, differ = 0.0, 0.0, 0
        for layer, _count in distinct_layers(args.network):
            problem = MultiLevelProblem(layer, hierarchy, objective=args.objective, constraints=constraints)
            start = time.perf_counter()
            proof = solve_multilevel(problem, "cpsat", args.time_limit, workers=1, canonical=False)
            proof_s = time.perf_counter() - start
            if proof.status != "optimal":
                print(f"{layer.name:30s} {proof.status:>8s}", flush=True)
                continue
            start = time.perf_counter()
            mapping = canonical_optimum(problem, proof.objective, args.time_limit)
            search_s = time.perf_counter() - start
            same = mapping == proof.mapping
            proofs, searches, differ = proofs + proof_s, searches + search_s, differ + (not same)
            print(f"{layer.name:30s} {proof_s:8.2f} {search_s:8.2f} {search_s / proof_s:10.2f} "
                  f"{'yes' if same else 'NO':>13s}", flush=True)
        print(f"{'all':30s} {proofs:8.1f} {searches:8.1f} {searches / max(proofs, 1e-9):10.2f} "
              f"{differ} differ", flush=True)


if __name__ == "__main__":
    main()
