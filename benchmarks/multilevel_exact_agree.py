"""Multi-level tiling: do the two exact methods prove the same optimum?

    python benchmarks/multilevel_exact_agree.py                       # ResNet-18 on eyeriss, energy
    python benchmarks/multilevel_exact_agree.py --network resnet50 --preset simba-pe --time-limit 300
    python benchmarks/multilevel_exact_agree.py --halo --layers 4        # with halo reuse (space: {halo: true})
    python benchmarks/multilevel_exact_agree.py --factors any --network awkward --objective latency --preset eyeriss-like
    python benchmarks/multilevel_exact_agree.py --only layer4.0.conv2,fc --whole-model-seconds 30   # the MILP's first phase

For every distinct layer shape: CP-SAT and the prime-exponent MILP (the
decomposition over stationary tensors, after the whole model when
``--whole-model-seconds`` gives it time), each with the same time limit; the MILP's pieces are solved side by side, one process
per core, unless ``--milp-workers 1``. Prints both objectives, statuses, bounds and wall times,
whether they agree, and whether the MILP's mapping passes the functional
model (outputs and every level's counts); medians at the end. Times are wall clock on this
machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from functional_multilevel import functional_check  # noqa: E402
from tiling_onchip import distinct_layers, with_bandwidths  # noqa: E402

from mapcert.formulations.tiling.multilevel import milp as milp_module  # noqa: E402
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem  # noqa: E402
from mapcert.formulations.tiling.multilevel.schema import preset_constraints  # noqa: E402
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel  # noqa: E402
from mapcert.hardware.hierarchy import hierarchy_preset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="resnet18", help="a network of the library, or awkward (odd and prime sizes)")
    parser.add_argument("--preset", default="eyeriss")
    parser.add_argument("--objective", default="energy", choices=["energy", "offchip_traffic", "latency", "edp"])
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--layers", type=int, default=0, help="only the first N distinct layers (0: all)")
    parser.add_argument("--bandwidth", action="append", default=[], metavar="LEVEL=WORDS",
                        help="words per cycle of a level (per PE for a per-PE level); repeatable")
    parser.add_argument("--halo", action="store_true", help="the space with halo reuse (space: {halo: true})")
    parser.add_argument("--milp-workers", type=int, default=0,
                        help="processes that solve the MILP's pieces side by side (0: one per core, 1: one after another)")
    parser.add_argument("--factors", default="divisors", choices=["divisors", "any"],
                        help="trip counts that divide each dimension, or any that cover it (partial last tiles)")
    parser.add_argument("--only", default="", help="comma-separated layer names (without the network's prefix)")
    parser.add_argument("--whole-model-seconds", type=float, default=None,
                        help="the MILP's whole-model phase before its pieces, at most this long (default: "
                             f"{milp_module.WHOLE_MODEL_SECONDS:g} s)")
    args = parser.parse_args()
    if args.whole_model_seconds is not None:
        milp_module.WHOLE_MODEL_SECONDS = args.whole_model_seconds
    hierarchy = with_bandwidths(hierarchy_preset(args.preset), args.bandwidth)
    constraints = preset_constraints(args.preset, hierarchy)  # what an instance naming the preset obeys
    layers = distinct_layers(args.network)
    if args.only:
        wanted = set(args.only.split(","))
        layers = [entry for entry in layers if entry[0].name.split(".", 1)[-1] in wanted]
    if args.layers:
        layers = layers[: args.layers]
    print(f"{args.network} on {args.preset}, {args.objective}{', halo reuse' if args.halo else ''}, factors: {args.factors}, "
          f"{args.time_limit:g} s per method and layer, MILP pieces in "
          f"{'one process per core' if args.milp_workers == 0 else f'{args.milp_workers} process(es)'}, whole model at most "
          f"{milp_module.WHOLE_MODEL_SECONDS:g} s")
    header = f"{'layer':30s} {'CP-SAT':>16s} {'s':>6s} {'MILP':>16s} {'s':>7s} {'MILP gap':>8s} {'functional':>10s}  agree"
    print(header)
    print("-" * len(header))
    cp_times, milp_times, agreed, passed = [], [], 0, 0
    for layer, _ in layers:
        problem = MultiLevelProblem(layer, hierarchy, objective=args.objective, constraints=constraints,
                                   halo=args.halo, factors=args.factors)
        cp = solve_multilevel(problem, "cpsat", args.time_limit)
        milp = solve_multilevel(problem, "milp", args.time_limit, workers=args.milp_workers)
        both = cp.status == milp.status == "optimal"
        agree = both and cp.objective == milp.objective
        agreed += agree
        cp_times.append(cp.wall_time_s)
        milp_times.append(milp.wall_time_s)
        gap = "-" if milp.gap is None else f"{100 * milp.gap:.1f}%"
        functional = "-"
        if milp.mapping is not None:
            try:
                functional = {(True, True): "yes", (True, False): "NO counts", (False, True): "NO outputs",
                              (False, False): "NO"}[functional_check(problem, milp.mapping, milp.metrics)]
            except ValueError:  # the memory guard
                functional = "not run"
        passed += functional == "yes"
        print(f"{layer.name:30s} {cp.objective or 0:16,.0f} {cp.wall_time_s:6.1f} {milp.objective or 0:16,.0f} "
              f"{milp.wall_time_s:7.1f} {gap:>8s} {functional:>10s}  "
              f"{'yes' if agree else 'NO (' + cp.status + '/' + milp.status + ')'}", flush=True)
    print(f"\nboth proved and equal: {agreed}/{len(layers)}; functional model passed: {passed}/{len(layers)}; median CP-SAT {statistics.median(cp_times):.1f} s, "
          f"median MILP {statistics.median(milp_times):.1f} s, MILP / CP-SAT {statistics.median(milp_times) / statistics.median(cp_times):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
