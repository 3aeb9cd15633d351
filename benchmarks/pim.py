"""Complementary filter pairing (DDC-PIM): solve times of the exact methods,
the blossom cross-check, and the distortion of each heuristic against the
proved optimum.

    python benchmarks/pim.py [--repeats 3]

Weights are generated for real layer shapes (MobileNetV2 and
EfficientNet-B0 pointwise and depthwise layers; filters x positions) as
8-bit quantized Gaussians, plus a 1024-filter layer for the scale target.
Times are medians over the repeats; distortions are exact.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from mapcert.formulations.pairing import PairingProblem, evaluate, solve_pairing
from mapcert.solvers.pairing_heuristics import PAIRING_HEURISTICS
from mapcert.validation.matching_check import blossom_pairing

LAYERS = [  # name, filters, positions per filter
    ("mobilenetv2.block2.expand (pointwise)", 96, 16),
    ("mobilenetv2.block2.depthwise", 96, 9),
    ("mobilenetv2.block14.project (pointwise)", 160, 960),
    ("mobilenetv2.conv_last (pointwise)", 1280, 320),
    ("efficientnet_b0.block6.depthwise 5x5", 672, 25),
    ("efficientnet_b0.head (pointwise)", 1280, 320),
    ("synthetic 1024 filters", 1024, 96),
]


def quantized(filters: int, positions: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.0, size=(filters, positions))
    scale = 127 / np.abs(w).max()
    return np.clip(np.rint(w * scale), -128, 127).astype(np.int64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blossom-limit", type=int, default=700, help="skip blossom above this many filters")
    args = parser.parse_args()
    names = list(PAIRING_HEURISTICS)
    print(f"{'layer':42s} {'F':>5s} {'K':>4s} {'milp s':>7s} {'cpsat s':>7s} {'blossom s':>9s} {'kept %':>7s} "
          + " ".join(f"{n + ' gap':>16s}" for n in names if n != "none"))
    for idx, (name, filters, positions) in enumerate(LAYERS):
        problem = PairingProblem(quantized(filters, positions, idx), name=name)
        times = {}
        results = {}
        for method in ("milp", "cpsat"):
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                results[method] = solve_pairing(problem, method, 300)
                runs.append(time.perf_counter() - start)
            times[method] = statistics.median(runs)
        milp, cpsat = results["milp"], results["cpsat"]
        if milp.status != "optimal" or cpsat.status != "optimal" or milp.objective != cpsat.objective:
            print(f"DISAGREEMENT on {name}: milp {milp.status} {milp.objective}, cpsat {cpsat.status} {cpsat.objective}")
            return 1
        if filters <= args.blossom_limit:
            start = time.perf_counter()
            _, blossom = blossom_pairing(problem)
            t_blossom = f"{time.perf_counter() - start:9.2f}"
            if blossom != milp.objective:
                print(f"BLOSSOM DISAGREES on {name}: {blossom} vs {milp.objective}")
                return 1
        else:
            t_blossom = f"{'skipped':>9s}"
        gaps = []
        for h in names:
            if h == "none":
                continue
            value = evaluate(problem, PAIRING_HEURISTICS[h](problem)).distortion
            gaps.append(f"{100 * (value / milp.objective - 1):15.1f}%")
        kept = 100 * milp.edges_kept / milp.edges_total
        print(f"{name:42s} {filters:5d} {positions:4d} {times['milp']:7.2f} {times['cpsat']:7.2f} {t_blossom} "
              f"{kept:6.2f}% " + " ".join(gaps), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
