"""What two choices of the multi-level CP-SAT model are worth: leaving out
the factor rows that cannot fit (``fitting.py``) and turning presolve
probing off (``CPSAT_PARAMETERS``).

Every distinct layer of a network is proved three ways, one after another
and in a rotating order, so that the variants share the machine's drift:
as shipped, with every row kept, and with CP-SAT's default probing. One
search worker (the proof is then the canonical run itself, as when a
network's layers run side by side). The table gives, per preset, the
seconds in all (median over ``--repeats``), the slowest layer, each
variant's time over the shipped model's, and whether every optimum agrees.

    python benchmarks/multilevel_model_options.py --presets tpu-like eyeriss simba-pe
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from mapcert.formulations.tiling.multilevel import cpsat as cpsat_model
from mapcert.formulations.tiling.multilevel.problem import DIMS, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.schema import preset_constraints
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.multilevel.space import dim_choices
from mapcert.hardware.hierarchy import hierarchy_preset

from tiling_onchip import distinct_layers


@contextlib.contextmanager
def every_row_kept():
    """The CP-SAT model over ``space.dim_choices`` itself."""
    shipped = cpsat_model.fitting_choices
    cpsat_model.fitting_choices = lambda problem: {d: dim_choices(problem, d) for d in DIMS}
    try:
        yield
    finally:
        cpsat_model.fitting_choices = shipped


@contextlib.contextmanager
def default_probing():
    """CP-SAT's own presolve probing (the proofs and the canonical run share the dict)."""
    saved = dict(cpsat_model.CPSAT_PARAMETERS)
    cpsat_model.CPSAT_PARAMETERS.pop("cp_model_probing_level", None)
    try:
        yield
    finally:
        cpsat_model.CPSAT_PARAMETERS.update(saved)


VARIANTS = {"shipped": contextlib.nullcontext, "all rows": every_row_kept, "probing": default_probing}


def measure(problem: MultiLevelProblem, variant: str, time_limit: float) -> tuple[str, float | None, float]:
    with VARIANTS[variant]():
        start = time.perf_counter()
        result = solve_multilevel(problem, "cpsat", time_limit=time_limit, workers=1)
        return result.status, result.objective, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="resnet50")
    parser.add_argument("--presets", nargs="+", default=["tpu-like", "eyeriss", "simba-pe"])
    parser.add_argument("--objective", default="energy", choices=["energy", "offchip_traffic", "latency"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=600.0)
    args = parser.parse_args()
    names = list(VARIANTS)
    print(f"{args.network}, {args.objective}, one CP-SAT worker, {args.repeats} repeat(s): seconds over the "
          f"distinct layers (slowest layer)", flush=True)
    print(f"{'preset':14s}" + "".join(f"{name:>18s}" for name in names)
          + "".join(f"{name + ' / shipped':>20s}" for name in names[1:]) + f"{'optima agree':>14s}", flush=True)
    for preset in args.presets:
        hierarchy = hierarchy_preset(preset)
        constraints = preset_constraints(preset, hierarchy)
        totals = {name: [] for name in names}
        slowest = {name: 0.0 for name in names}
        agree = True
        for repeat in range(args.repeats):
            seconds = dict.fromkeys(names, 0.0)
            for index, (layer, _) in enumerate(distinct_layers(args.network)):
                problem = MultiLevelProblem(layer, hierarchy, objective=args.objective, constraints=constraints)
                shift = (index + repeat) % len(names)
                outcomes = {}
                for name in names[shift:] + names[:shift]:
                    outcomes[name] = measure(problem, name, args.time_limit)
                    seconds[name] += outcomes[name][2]
                    slowest[name] = max(slowest[name], outcomes[name][2])
                statuses = {status for status, _, _ in outcomes.values()}
                values = {round(value, 6) for _, value, _ in outcomes.values() if value is not None}
                agree &= statuses == {"optimal"} and len(values) == 1
            for name in names:
                totals[name].append(seconds[name])
        median = {name: statistics.median(totals[name]) for name in names}
        print(f"{preset:14s}" + "".join(f"{median[n]:10.1f} ({slowest[n]:4.1f})" for n in names)
              + "".join(f"{median[n] / median['shipped']:19.2f}x" for n in names[1:])
              + f"{'yes' if agree else 'NO':>14s}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
