"""Processing-in-memory benchmarks.

Crossbar allocation: solve times of MILP, CP-SAT and bisection on ResNet-34
at several budgets (with and without tiles and bandwidth) and on a synthetic
100-layer network, each heuristic's gap, and the kernel-split speed-up.

Complementary filter pairing (DDC-PIM): solve times of the exact methods,
the blossom cross-check, and the distortion of each heuristic against the
proved optimum.

    python benchmarks/pim.py [--repeats 3] [--family crossbar|pairing|all]

Weights are generated for real layer shapes (MobileNetV2 and
EfficientNet-B0 pointwise and depthwise layers; filters x positions) as
8-bit quantized Gaussians, plus a 1024-filter layer for the scale target.
Times are medians over the repeats; distortions are exact. A case that a
method did not prove in time is a row with both statuses and gaps ('-'
without a bound); only answers that contradict each other stop the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from mapcert import workload_library
from mapcert.formulations.crossbar import CrossbarLayer, CrossbarProblem, layers_from_network, solve_crossbar
from mapcert.formulations.crossbar import evaluate as evaluate_allocation
from mapcert.formulations.pairing import PairingProblem, evaluate, solve_pairing
from mapcert.hardware.pim import pim_chip
from mapcert.solvers.crossbar_heuristics import CROSSBAR_HEURISTICS
from mapcert.solvers.pairing_heuristics import PAIRING_HEURISTICS
from mapcert.validation.crossbar_bounds import best_bound
from mapcert.validation.matching_check import blossom_pairing
from mapcert.validation.certificate import answers_contradict

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


def gap_text(objective, bound) -> str:
    """(objective - bound) / objective in percent, '-' when either is unknown."""
    if objective is None or bound is None:
        return "-"
    return f"{100 * max(0.0, objective - bound) / objective:.1f}%" if objective else "0.0%"


def median_time(fn, repeats):
    runs, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return result, statistics.median(runs)


def synthetic_network(layers: int, seed: int = 0) -> tuple[CrossbarLayer, ...]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(layers):
        size = int(rng.choice([7, 14, 28, 56]))
        out.append(CrossbarLayer(f"s{i}", C=int(rng.choice([64, 128, 256])), M=int(rng.choice([64, 128, 256])),
                                 P=size, Q=size, R=3, S=3))
    return tuple(out)


def crossbar_section(repeats: int) -> int:
    chip = pim_chip("neurosim-rram")
    resnet34 = tuple(layers_from_network(workload_library.network("resnet34")))
    cases = [("resnet34", resnet34, budget, extra) for budget in (12000, 16384, 32768)
             for extra in ({}, {"one_layer_per_tile": True, "bandwidth": True})]
    big_chip = pim_chip("neurosim-rram", tiles=2048)
    cases += [("synthetic-100", synthetic_network(100), 120000, {"one_layer_per_tile": True, "bandwidth": True})]
    heuristics = list(CROSSBAR_HEURISTICS)
    print(f"{'network':14s} {'budget':>7s} {'tiles+bw':>8s} {'period':>8s} {'bound':>8s} {'milp s':>7s} "
          f"{'cpsat s':>7s} {'bisect s':>8s} {'split x':>8s} " + " ".join(f"{h[:12]:>12s}" for h in heuristics))
    for name, layers, budget, extra in cases:
        use_chip = big_chip if name.startswith("synthetic") else chip
        problem = CrossbarProblem(layers, use_chip, budget=budget, **extra)
        milp, t_milp = median_time(lambda p=problem: solve_crossbar(p, "milp", 300), repeats)
        cpsat, t_cp = median_time(lambda p=problem: solve_crossbar(p, "cpsat", 300), repeats)
        if answers_contradict(milp, cpsat):
            print(f"DISAGREEMENT on {name} {budget}: milp {milp.status} {milp.objective}, cpsat {cpsat.status} {cpsat.objective}")
            return 1
        if milp.status != "optimal" or cpsat.status != "optimal":
            print(f"{name:14s} {budget:7d} {'yes' if extra else 'no':>8s} time-out: milp {milp.status} "
                  f"(gap {gap_text(milp.objective, milp.best_bound)}, {t_milp:.1f} s), cpsat {cpsat.status} "
                  f"(gap {gap_text(cpsat.objective, cpsat.best_bound)}, {t_cp:.1f} s)", flush=True)
            continue
        t_bis = "-"
        if not extra:
            bis, t = median_time(lambda p=problem: solve_crossbar(p, "bisection"), repeats)
            if bis.objective != milp.objective:
                print(f"BISECTION DISAGREES on {name} {budget}")
                return 1
            t_bis = f"{t:.3f}"
        bound = best_bound(problem)
        styles = {}
        for style in ("conventional", "split"):
            single = CrossbarProblem(layers, use_chip, styles=(style,), budget=budget, **extra)
            styles[style] = solve_crossbar(single, "milp", 300).objective
        speedup = (styles["conventional"] / styles["split"]) if styles["split"] and styles["conventional"] else float("nan")
        gaps = []
        for h in heuristics:
            m = evaluate_allocation(problem, CROSSBAR_HEURISTICS[h](problem))
            gaps.append(f"{100 * (m.period / milp.objective - 1):11.1f}%" if m.feasible else f"{'no fit':>12s}")
        print(f"{name:14s} {budget:7d} {'yes' if extra else 'no':>8s} {milp.objective:8,d} {bound:8,.0f} {t_milp:7.3f} "
              f"{t_cp:7.3f} {t_bis:>8s} {speedup:8.2f} " + " ".join(gaps), flush=True)
    return 0


def ddc_section(blossom_limit: int) -> int:
    """Pointwise and depthwise layers of MobileNetV2 and EfficientNet-B0 on
    the DDC preset: each layer's pairing proved by MILP (and blossom where
    it is quick), and what doubled capacity saves over the network."""
    from mapcert.formulations.pairing.schema import generated_weights

    chip = pim_chip("ddc-sram")
    words_per_macro = chip.rows * chip.columns // chip.weight_bits
    paper = {"mobilenetv2": 2.84, "efficientnet_b0": 2.69}
    print(f"{'network':16s} {'layers':>6s} {'proved':>6s} {'blossom ok':>10s} {'words':>10s} {'paired words':>12s} "
          f"{'macro loads':>11s} {'paired loads':>12s} {'speed-up':>8s} {'paper':>6s} {'solve s':>7s}")
    for net in ("mobilenetv2", "efficientnet_b0"):
        layers = workload_library.network(net)
        chosen = {k: v for k, v in layers.items() if v["op"] == "conv2d" and
                  (v.get("groups", 1) > 1 or (v["dims"]["R"] == 1 and v["dims"]["S"] == 1))}
        words = paired_words = proved = blossom_ok = blossom_run = 0
        loads = paired_loads = 0
        start = time.perf_counter()
        for i, (name, layer) in enumerate(chosen.items()):
            d = layer["dims"]
            filters, positions = d["M"], (d["C"] // layer.get("groups", 1)) * d["R"] * d["S"]
            problem = PairingProblem(generated_weights(filters, positions, chip.weight_bits, seed=i), name=name)
            result = solve_pairing(problem, "milp", 300)
            proved += result.status == "optimal"
            if filters <= blossom_limit:
                blossom_run += 1
                blossom_ok += blossom_pairing(problem)[1] == result.objective
            rows = evaluate(problem, result.pairing).rows
            words += filters * positions
            paired_words += rows * positions
            loads += -(-filters * positions // words_per_macro)
            paired_loads += -(-rows * positions // words_per_macro)
        elapsed = time.perf_counter() - start
        # each layer's weights are streamed through the macros one load at a
        # time; doubled capacity cuts the loads per image
        speedup = loads / paired_loads
        print(f"{net:16s} {len(chosen):6d} {proved:6d} {f'{blossom_ok}/{blossom_run}':>10s} {words:10,d} "
              f"{paired_words:12,d} {loads:11,d} {paired_loads:12,d} {speedup:7.2f}x {paper[net]:5.2f}x {elapsed:7.1f}",
              flush=True)
        if proved != len(chosen) or blossom_ok != blossom_run:
            return 1
    print("(speed-up here counts capacity alone: a macro load serves two filters; the paper's figure also"
          " includes dual-broadcast inputs and its reconfigurable unit)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--family", choices=["crossbar", "pairing", "ddc", "all"], default="all")
    parser.add_argument("--blossom-limit", type=int, default=400,
                        help="skip the pure-Python blossom check above this many filters (it needs ~2 min at 672)")
    args = parser.parse_args()
    if args.family in ("crossbar", "all"):
        print("crossbar allocation (period in cycles; gaps relative to the optimum)")
        if crossbar_section(args.repeats):
            return 1
        print()
    if args.family in ("ddc", "all"):
        print("DDC-PIM: pairing of every pointwise and depthwise layer")
        if ddc_section(args.blossom_limit):
            return 1
        print()
    if args.family in ("crossbar", "ddc"):
        return 0
    print("complementary filter pairing (gaps: distortion relative to the optimum)")
    names = list(PAIRING_HEURISTICS)
    print(f"{'layer':42s} {'F':>5s} {'K':>4s} {'milp s':>7s} {'cpsat s':>7s} {'blossom s':>9s} {'kept %':>7s} "
          + " ".join(f"{n + ' gap':>16s}" for n in names))
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
        if answers_contradict(milp, cpsat):
            print(f"DISAGREEMENT on {name}: milp {milp.status} {milp.objective}, cpsat {cpsat.status} {cpsat.objective}")
            return 1
        if milp.status != "optimal" or cpsat.status != "optimal":
            print(f"{name:42s} {filters:5d} {positions:4d} time-out: milp {milp.status} "
                  f"(gap {gap_text(milp.objective, milp.best_bound)}, {times['milp']:.1f} s), cpsat {cpsat.status} "
                  f"(gap {gap_text(cpsat.objective, cpsat.best_bound)}, {times['cpsat']:.1f} s)", flush=True)
            continue
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
            value = evaluate(problem, PAIRING_HEURISTICS[h](problem)).distortion
            gaps.append(f"{100 * (value / milp.objective - 1):15.1f}%")
        kept = 100 * milp.edges_kept / milp.edges_total
        print(f"{name:42s} {filters:5d} {positions:4d} {times['milp']:7.2f} {times['cpsat']:7.2f} {t_blossom} "
              f"{kept:6.2f}% " + " ".join(gaps), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
