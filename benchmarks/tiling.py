"""Solve time of each exact method and the optimum's ratio to each bound,
for every conv layer of VGG-16 and ResNet-50 at several buffer sizes.

    python benchmarks/tiling.py                 # all layers, 16/64/256 KiB, 3 repeats
    python benchmarks/tiling.py --repeats 1 --networks resnet50 --sizes 64KiB

Times are medians over the repeats (wall clock, this machine); ratios and the
heuristic gap are exact and measured once. A layer that a method did not
prove in time is a row with both statuses and gaps ('-' without a bound),
left out of the medians; only answers that contradict each other stop the
run.  The final table gives medians per
network and buffer size, and the total CP-SAT time to prove a whole network,
then the tightness of the rigorous bound: median and worst of optimum /
best rigorous bound, and the same for the optima of two wider spaces: with
halo reuse (``space: {halo: true}``) and with halo reuse and partial last
tiles (``space: {halo: true, factors: any}``). Those say how much of the gap
the declared space explains rather than the bound.

    python benchmarks/tiling.py --repeats 1 --quick   # CP-SAT only: the bound table in about a minute
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

from mapcert import workload_library
from mapcert.formulations.tiling.cost import evaluate
from mapcert.formulations.tiling.enumeration import ENUMERATION_LIMIT
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.formulations.tiling.space import space_size
from mapcert.instances import load_text
from mapcert.solvers.tiling_heuristics import paper_dataflow
from mapcert.validation.bounds import tiling_bounds
from mapcert.validation.certificate import answers_contradict


def gap_text(result) -> str:
    """A result's gap to its own bound in percent, '-' when it has no bound."""
    return "-" if result.gap is None else f"{100 * result.gap:.1f}%"


def timed(problem, method, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = solve_tiling(problem, method, 600)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=["vgg16", "resnet50"])
    parser.add_argument("--sizes", nargs="+", default=["16KiB", "64KiB", "256KiB"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CP-SAT only (no MILP, no enumeration)")
    args = parser.parse_args()

    header = (f"{'layer':28s} {'size':>7s} {'optimum B':>13s} {'cpsat s':>8s} {'milp s':>8s} {'milp/cp':>7s} "
              f"{'enum s':>8s} {'/compul':>8s} {'/rigor':>7s} {'/seed':>6s} {'paper gap':>9s}")
    summary = []
    for net in args.networks:
        for size in args.sizes:
            print(f"\n{net} at {size}", flush=True)
            print(header)
            rows = []
            for name, layer in workload_library.network(net).items():
                if layer["op"] != "conv2d":
                    continue
                problem = load_text(f"family: tiling\nworkload: {net}.{name}\nhardware: glb-{size}\n")
                cp, t_cp = timed(problem, "cpsat", args.repeats)
                mi, t_mi = (cp, t_cp) if args.quick else timed(problem, "milp", args.repeats)
                full_points = space_size(problem.layer, problem.space)
                if full_points <= ENUMERATION_LIMIT and not args.quick:
                    en, t_en = timed(problem, "enumerate", args.repeats)
                else:
                    en, t_en = None, None
                if answers_contradict(cp, mi):
                    print(f"DISAGREEMENT on {name}: cpsat {cp.status} {cp.objective}, milp {mi.status} {mi.objective}")
                    return 1
                if cp.status != "optimal" or mi.status != "optimal":
                    # a time-out: no ratios without the optimum, but the row is kept
                    print(f"{name:28s} {size:>7s} time-out: cpsat {cp.status} (gap {gap_text(cp)}, {t_cp:.1f} s), "
                          f"milp {mi.status} (gap {gap_text(mi)}, {t_mi:.1f} s)", flush=True)
                    continue
                if en is not None and en.objective != cp.objective:
                    print(f"DISAGREEMENT on {name}: enumeration {en.objective}")
                    return 1
                bounds = tiling_bounds(problem)
                if cp.objective < bounds["rigorous"].bytes:
                    print(f"BOUND VIOLATED on {name}")
                    return 1
                halo = solve_tiling(replace(problem, halo=True), "cpsat", 600)
                widest = solve_tiling(replace(problem, halo=True, space="any"), "cpsat", 600)
                for wider, what in ((halo, "halo reuse"), (widest, "halo reuse and partial tiles")):
                    if wider.status == "optimal" and wider.objective < bounds["rigorous"].bytes:
                        print(f"BOUND VIOLATED on {name} with {what}")
                        return 1
                heuristic = paper_dataflow(problem)
                gap = evaluate(problem, heuristic).objective / cp.objective - 1
                row = dict(
                    cpsat=t_cp, milp=t_mi, enum=t_en, ratio=t_mi / t_cp,
                    compulsory=cp.objective / bounds["compulsory"].bytes,
                    rigorous=cp.objective / bounds["rigorous"].bytes,
                    seed=cp.objective / bounds["seed"].bytes, gap=gap,
                    halo=halo.objective / bounds["rigorous"].bytes if halo.status == "optimal" else None,
                    widest=widest.objective / bounds["rigorous"].bytes if widest.status == "optimal" else None,
                    binding=max((b for b in bounds.values() if b.rigorous and b.name != "rigorous"),
                                key=lambda b: b.bytes).name,
                )
                rows.append(row)
                enum_text = f"{t_en:8.3f}" if t_en is not None else f"{'>1e7':>8s}"
                print(f"{name:28s} {size:>7s} {cp.objective:13,.0f} {t_cp:8.3f} {t_mi:8.3f} {row['ratio']:7.1f} "
                      f"{enum_text} {row['compulsory']:8.3f} {row['rigorous']:7.3f} {row['seed']:6.3f} "
                      f"{100 * gap:8.1f}%", flush=True)
            summary.append((net, size, rows))

    print("\nmedians per network and buffer size (times in seconds)")
    print(f"{'network':10s} {'size':>7s} {'layers':>6s} {'cpsat':>7s} {'cpsat tot':>9s} {'milp':>7s} "
          f"{'milp/cp':>7s} {'enum':>7s} {'/compul':>8s} {'/rigor':>7s} {'/seed':>6s} {'paper gap':>9s} {'worst gap':>9s}")
    for net, size, rows in summary:
        if not rows:  # every layer timed out
            print(f"{net:10s} {size:>7s} {0:6d}  (no layer proved)")
            continue
        med = lambda key, rows=rows: statistics.median(r[key] for r in rows if r[key] is not None)  # noqa: E731
        enum = [r["enum"] for r in rows if r["enum"] is not None]
        print(f"{net:10s} {size:>7s} {len(rows):6d} {med('cpsat'):7.3f} {sum(r['cpsat'] for r in rows):9.2f} "
              f"{med('milp'):7.3f} {med('ratio'):7.1f} {statistics.median(enum) if enum else float('nan'):7.3f} "
              f"{med('compulsory'):8.3f} {med('rigorous'):7.3f} {med('seed'):6.3f} {100 * med('gap'):8.1f}% "
              f"{100 * max(r['gap'] for r in rows):8.1f}%")

    print("\noptimum / best rigorous bound per network and buffer size (halo: the optimum with halo reuse; "
          "any+halo: with halo reuse and partial last tiles)")
    print(f"{'network':10s} {'size':>7s} {'layers':>6s} {'median':>7s} {'worst':>7s} {'halo med':>8s} "
          f"{'halo worst':>10s} {'any+halo med':>12s} {'any+halo worst':>14s}  binding bounds")
    for net, size, rows in summary:
        if not rows:
            continue
        ratios = [r["rigorous"] for r in rows]
        halos = [r["halo"] for r in rows if r["halo"] is not None]
        widest = [r["widest"] for r in rows if r["widest"] is not None]
        binding = {}
        for r in rows:
            binding[r["binding"]] = binding.get(r["binding"], 0) + 1
        print(f"{net:10s} {size:>7s} {len(rows):6d} {statistics.median(ratios):7.3f} {max(ratios):7.3f} "
              f"{statistics.median(halos) if halos else float('nan'):8.3f} {max(halos) if halos else float('nan'):10.3f} "
              f"{statistics.median(widest) if widest else float('nan'):12.3f} "
              f"{max(widest) if widest else float('nan'):14.3f}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(binding.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
