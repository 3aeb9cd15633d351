"""Two-level tiling: what halo reuse gains, per layer, and what it costs in solve time.

    python benchmarks/tiling_halo.py                          # ResNet-50, 16/64/256 KiB
    python benchmarks/tiling_halo.py --networks vgg16 --sizes 64KiB --precision 8

For every distinct conv layer and buffer size: the proved optimum without
halo reuse and with it (``space: {halo: true}``), the gain, and the CP-SAT
time of each (wall clock, this machine, one run). A larger space whose
optimum is worse stops the run.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from mapcert import workload_library
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.instances import load_text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=["resnet50"])
    parser.add_argument("--sizes", nargs="+", default=["16KiB", "64KiB", "256KiB"])
    parser.add_argument("--precision", type=int, default=0,
                        help="bits of every tensor, partial sums included (0: the defaults, 8/8/8/24)")
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    for network in args.networks:
        for size in args.sizes:
            print(f"\n{network} at {size}: off-chip bytes without and with halo reuse", flush=True)
            print(f"{'layer':28s} {'plain':>14s} {'s':>6s} {'halo':>14s} {'s':>6s} {'gain':>7s}", flush=True)
            gains, ratios, seen = [], [], set()
            for name in workload_library.compute_layers(network):
                text = (f"family: tiling\nworkload: {network}.{name}\nhardware: glb-{size}\n"
                        f"objective: offchip_traffic\n")
                problem = load_text(text, f"{network}.{name}")
                if args.precision:
                    bits = args.precision
                    layer = replace(problem.layer, precision=replace(problem.layer.precision, inputs=bits,
                                                                     weights=bits, outputs=bits, psums=bits))
                    problem = replace(problem, layer=layer)
                key = (tuple(problem.layer.dims().items()), problem.layer.stride, problem.layer.dilation,
                       problem.layer.groups)
                if key in seen:
                    continue
                seen.add(key)
                plain = solve_tiling(problem, "cpsat", args.time_limit)
                halo = solve_tiling(replace(problem, halo=True), "cpsat", args.time_limit)
                if plain.objective is None or halo.objective is None:
                    print(f"{name:28s} {plain.status:>14s} {'':>6s} {halo.status:>14s}", flush=True)
                    continue
                if plain.status == halo.status == "optimal" and halo.objective > plain.objective:
                    raise SystemExit(f"{name}: the optimum with halo reuse is worse")
                gain = 1 - halo.objective / plain.objective
                gains.append(gain)
                ratios.append(halo.wall_time_s / max(plain.wall_time_s, 1e-3))
                print(f"{name:28s} {plain.objective:14,.0f} {plain.wall_time_s:6.2f} {halo.objective:14,.0f} "
                      f"{halo.wall_time_s:6.2f} {100 * gain:6.2f}%", flush=True)
            if gains:
                print(f"summary {network} {size}: gain median {100 * statistics.median(gains):.2f}%, "
                      f"largest {100 * max(gains):.2f}%; CP-SAT time halo/plain median "
                      f"{statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
