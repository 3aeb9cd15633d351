"""Multi-level tiling: CP-SAT solve time per layer and the gap of every
heuristic mapper to the certified optimum, for a network on several presets.

    python benchmarks/tiling_onchip.py                        # ResNet-50, eyeriss and simba-pe, energy
    python benchmarks/tiling_onchip.py --network resnet18 --presets eyeriss --time-limit 60
    python benchmarks/tiling_onchip.py --network resnet18 --presets eyeriss --objective edp --bandwidth DRAM=2
    python benchmarks/tiling_onchip.py --gains bypass --presets eyeriss tpu-like
    python benchmarks/tiling_onchip.py --gains fanouts --presets simba-like
    python benchmarks/tiling_onchip.py --gains factors --network awkward --presets eyeriss-like --objective latency
    python benchmarks/tiling_onchip.py --gains halo --network resnet50 --presets eyeriss-like simba-like
    python benchmarks/tiling_onchip.py --gains latches --network resnet18 --presets eyeriss-like
    python benchmarks/tiling_onchip.py --whole --presets eyeriss     # `mapcert solve` on the network, 1 vs N jobs
    python benchmarks/tiling_onchip.py --breakdown --presets eyeriss simba-pe   # where the bound's gap lies

``--gains`` prints what a larger mapping space gains instead, per layer,
with both solve times: ``bypass``, the optimum with the preset's fixed keep
sets against the optimum when every on-chip level keeps or bypasses each
tensor as the solver chooses (same capacities); ``fanouts``, the optimum
with only the outermost fan-out against the optimum with all of them (a
space that contains the first: an inner fan-out unrolling nothing);
``factors``, the optimum over divisor trip counts against the one with
partial last tiles (``space: {factors: any}``); ``halo``, the optimum
without halo reuse against the one with it (``space: {halo: true}``);
``latches``, the optimum of MAC units without operand latches (every MAC
fetches its operands, as Timeloop counts: ``latches: false``) against the
preset's units with them, and each one's optimum / rigorous bound.
``--whole`` times what a user waits for: ``mapcert solve`` on the whole
network (every distinct layer proved, bounds, heuristics and functional
runs included), with its distinct layers solved one after another (each
with every core) and side by side (one per core), and the ratio.
``--breakdown`` sets the energy of each proved optimum, level by level,
against the terms of the rigorous energy bound that count the same
events: DRAM against the DRAM term (the compulsory accesses, or the room
segment bound when more), the on-chip levels
against each word's writes and reads on its way in, the final reads and
the operand-latch changes.
It says which part of the gap between optimum and bound lies off chip and
which on chip. ``--network awkward`` is a
set of layers whose sizes do not factor onto a 12 x 14 array (7 x 7 and
13 x 13 outputs, 3 input channels, prime channel counts).

Each distinct layer shape is solved once. Times are wall clock on this
machine. Gaps are measured against the proved optimum; when the time limit
is reached first, they are measured against the best mapping found, and
the row is marked "best".
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from mapcert import workload_library
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.schema import preset_constraints
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.hardware.hierarchy import hierarchy_preset
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.formulations.tiling.schema import build_layer
from mapcert.instances import Located
from mapcert.solvers.multilevel_heuristics import HEURISTICS
from mapcert.validation.multilevel_bounds import energy_bound_terms, multilevel_bounds


AWKWARD = [  # (name, N, M, C, P, Q, R, S, stride)
    ("conv1-3ch-7x7s2", 1, 64, 3, 56, 56, 7, 7, 2),
    ("alexnet-conv3-13x13", 1, 384, 256, 13, 13, 3, 3, 1),
    ("resnet-layer4-7x7", 1, 512, 512, 7, 7, 3, 3, 1),
    ("prime-61x37-14x14", 1, 61, 37, 14, 14, 3, 3, 1),
    ("prime-13x3-13x13", 1, 13, 3, 13, 13, 3, 3, 1),
    ("fc-1000x4096", 1, 1000, 4096, 1, 1, 1, 1, 1),
]
"""Layers whose sizes do not factor onto a 12 x 14 array."""


def distinct_layers(network: str):
    if network == "awkward":
        return [[ConvLayer(name, n, m, c, p, q, r, t, stride=(st, st)), 1] for name, n, m, c, p, q, r, t, st in AWKWARD]
    seen = {}
    for name in workload_library.compute_layers(network):
        layer = build_layer(f"{network}.{name}", Located(network), ())
        key = (layer.N, layer.M, layer.C, layer.P, layer.Q, layer.R, layer.S, layer.stride, layer.groups)
        if key in seen:
            seen[key][1] += 1
        else:
            seen[key] = [layer, 1]
    return list(seen.values())


def with_bandwidths(hierarchy, settings: list[str]):
    """The hierarchy with ``LEVEL=WORDS`` bandwidths set."""
    wanted = dict(item.split("=", 1) for item in settings)
    unknown = set(wanted) - {level.name for level in hierarchy.levels}
    if unknown:
        raise SystemExit(f"no level {', '.join(sorted(unknown))} in {hierarchy.name}")
    levels = tuple(replace(level, bandwidth=float(wanted[level.name])) if level.name in wanted else level
                   for level in hierarchy.levels)
    return replace(hierarchy, levels=levels)


def bypass_chosen(hierarchy):
    """The hierarchy with every on-chip level's keep set left to the mapping
    (the tensors of its partition, or all three, each kept or bypassed)."""
    levels = [hierarchy.levels[0]]
    for level in hierarchy.levels[1:]:
        may = frozenset(level.partition_bits) if level.partition_bits is not None else frozenset(
            ("inputs", "weights", "outputs"))
        levels.append(replace(level, holds=may, chosen=may))
    return replace(hierarchy, levels=tuple(levels))


def outermost_fanout(hierarchy, constraints):
    """The hierarchy with only its outermost fan-out (the others unroll
    nothing), and the constraints that remain."""
    kept = replace(constraints, fanouts=tuple((f, c) for f, c in constraints.fanouts if f == 0))
    return replace(hierarchy, fanouts=hierarchy.fanouts[:1]), kept


def gain_table(network: str, hierarchy, objective: str, time_limit: float, constraints, gains_of: str) -> None:
    """Per distinct layer: the proved optimum in the smaller space and in the
    larger one (``gains_of``: bypass, fanouts, factors or halo), the gain, and the CP-SAT
    time of each."""
    factors, halo = ("divisors", "divisors"), (False, False)
    if gains_of == "halo":
        small, small_constraints, larger = hierarchy, constraints, hierarchy
        halo = (False, True)
        labels = ("no halo", "halo", "without vs with halo reuse", "bypassed")
    elif gains_of == "bypass":
        small, small_constraints, larger = hierarchy, constraints, bypass_chosen(hierarchy)
        labels = ("fixed", "chosen", "fixed keep sets vs bypass chosen", "bypassed")
    elif gains_of == "latches":
        small, small_constraints, larger = replace(hierarchy, latches=False), constraints, hierarchy
        labels = ("no latches", "latches", "MACs without operand latches (Timeloop's count) vs with", "bypassed")
    elif gains_of == "factors":
        small, small_constraints, larger = hierarchy, constraints, hierarchy
        factors = ("divisors", "any")
        labels = ("divisors", "any", "divisor trip counts vs partial last tiles", "bypassed")
    else:
        if len(hierarchy.fanouts) < 2:
            print(f"\n{hierarchy.name} has one fan-out; nothing to compare", flush=True)
            return
        (small, small_constraints), larger = outermost_fanout(hierarchy, constraints), hierarchy
        labels = ("one", "all", f"the outermost fan-out vs all {len(hierarchy.fanouts)}", "bypassed")
    print(f"\n{network} on {hierarchy.name}, objective {objective}: {labels[2]} (limit {time_limit:g} s)", flush=True)
    print(f"{'layer':30s} {labels[0]:>14s} {'s':>7s} {labels[1]:>14s} {'s':>7s} {'gain':>7s}  {labels[3]}", flush=True)
    gains, slow, tightness = [], [], ([], [])
    for layer, _ in distinct_layers(network):
        problems = (MultiLevelProblem(layer, small, objective=objective, constraints=small_constraints,
                                      factors=factors[0], halo=halo[0]),
                    MultiLevelProblem(layer, larger, objective=objective, constraints=constraints,
                                      factors=factors[1], halo=halo[1]))
        base, wide = (solve_multilevel(problem, "cpsat", time_limit) for problem in problems)
        for problem, result, ratios in zip(problems, (base, wide), tightness):
            if result.status == "optimal":
                ratios.append(result.objective / multilevel_bounds(problem).objective)
        if base.objective is None or wide.objective is None:
            print(f"{layer.name:30s} {base.status:>14s} {'':>7s} {wide.status:>14s}", flush=True)
            continue
        if base.status == wide.status == "optimal" and wide.objective > base.objective * (1 + 1e-9):
            raise SystemExit(f"{layer.name}: the larger space's optimum is worse")
        gain = 1 - wide.objective / base.objective
        gains.append(gain)
        slow.append(wide.wall_time_s / max(base.wall_time_s, 1e-3))
        keep = wide.mapping.keep_sets(larger)
        bypassed = "; ".join(f"{level.name}: {', '.join(sorted(level.holds - kept))}"
                             for level, kept in zip(larger.levels, keep) if level.holds - kept)
        marks = "" if base.status == wide.status == "optimal" else " (not all proved)"
        print(f"{layer.name:30s} {base.objective:14,.0f} {base.wall_time_s:7.2f} {wide.objective:14,.0f} "
              f"{wide.wall_time_s:7.2f} {100 * gain:6.1f}%  {bypassed or '-'}{marks}", flush=True)
    if gains:
        print(f"summary {hierarchy.name}: gain median {100 * statistics.median(gains):.1f}%, "
              f"largest {100 * max(gains):.1f}%; solve time {labels[1]}/{labels[0]} median "
              f"{statistics.median(slow):.2f}x, "
              f"worst {max(slow):.2f}x; optimum / rigorous bound median {labels[0]} "
              f"{statistics.median(tightness[0]) if tightness[0] else float('nan'):.3f}, {labels[1]} "
              f"{statistics.median(tightness[1]) if tightness[1] else float('nan'):.3f}")


def whole_network(network: str, preset: str, objective: str, time_limit: float) -> None:
    """Wall time of the pipeline's solve on the network, ``jobs=1`` against one job per core."""
    import os
    import time

    from mapcert import pipeline
    from mapcert.instances import load_text
    from mapcert.part_pool import part_jobs

    problem = load_text(f"family: tiling\nworkload: {network}\nhardware: {preset}\nobjective: {objective}\n"
                        f"solver: {{method: cpsat, time_limit: {time_limit:g}}}\n", f"{network}-{preset}.yaml")
    cores = part_jobs(10**6)
    print(f"\n`mapcert solve` on {network}, {preset}, {objective} ({os.cpu_count()} cores): wall seconds", flush=True)
    print(f"{'jobs':>5s} {'status':>8s} {'proved':>7s} {'objective':>16s} {'s':>8s}", flush=True)
    seconds = {}
    for jobs in (1, cores):
        start = time.perf_counter()
        result = pipeline.solve(problem, jobs=jobs)
        seconds[jobs] = time.perf_counter() - start
        print(f"{jobs:5d} {result.status.value:>8s} {result.metrics.get('proved', 0):3d}/{len(result.parts):<3d} "
              f"{result.objective:16,.1f} {seconds[jobs]:8.1f}", flush=True)
    print(f"summary: side by side {seconds[1] / seconds[cores]:.2f}x faster than one by one")


def gap_breakdown(network: str, preset: str, time_limit: float) -> None:
    """Per layer, the proved energy optimum beside the energy bound, split
    into off-chip (DRAM's accesses against the DRAM term) and on-chip
    (the other levels' accesses against the writes and reads of each word on its way, final reads and
    latch changes); the MACs are the same in both and leave no gap."""
    hierarchy = hierarchy_preset(preset)
    constraints = preset_constraints(preset, hierarchy)
    print(f"\n{network} on {preset}, energy: where the optimum exceeds the rigorous bound", flush=True)
    print(f"{'layer':30s} {'optimum':>12s} {'bound':>12s} {'/bound':>7s} {'DRAM opt':>11s} {'DRAM bnd':>11s} "
          f"{'chip opt':>11s} {'chip bnd':>11s} {'off-chip share':>14s}", flush=True)
    ratios, shares, chip_ratios, dram_ratios = [], [], [], []
    for layer, _count in distinct_layers(network):
        problem = MultiLevelProblem(layer, hierarchy, objective="energy", constraints=constraints)
        result = solve_multilevel(problem, "cpsat", time_limit)
        if result.status != "optimal":
            print(f"{layer.name:30s} {result.status:>12s}", flush=True)
            continue
        metrics = evaluate_multilevel(problem, result.mapping)
        per_level = [sum(r.values()) * level.read_energy + sum(w.values()) * level.write_energy
                     for level, r, w in zip(hierarchy.levels, metrics.reads, metrics.writes, strict=True)]
        terms = energy_bound_terms(problem)
        dram_opt, chip_opt = per_level[0], sum(per_level[1:])
        dram_bound = terms["dram"]
        chip_bound = terms["holders"] + terms["final_reads"] + terms["latches"]
        bound = multilevel_bounds(problem).objective
        gap = metrics.energy - bound
        share = (dram_opt - dram_bound) / gap if gap > 0 else float("nan")
        ratios.append(metrics.energy / bound)
        chip_ratios.append(chip_opt / chip_bound if chip_bound > 0 else float("inf"))
        dram_ratios.append(dram_opt / dram_bound)
        if gap > 0:
            shares.append(share)
        print(f"{layer.name:30s} {metrics.energy:12.4g} {bound:12.4g} {metrics.energy / bound:7.2f} "
              f"{dram_opt:11.4g} {dram_bound:11.4g} {chip_opt:11.4g} {chip_bound:11.4g} "
              f"{100 * share:13.0f}%", flush=True)
    if ratios:
        print(f"summary {preset}: optimum / bound median {statistics.median(ratios):.3f}; DRAM optimum / "
              f"DRAM term median {statistics.median(dram_ratios):.2f}; on-chip optimum / on-chip terms median "
              f"{statistics.median(chip_ratios):.2f}; off-chip share of the gap median "
              f"{100 * statistics.median(shares) if shares else float('nan'):.0f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="resnet50")
    parser.add_argument("--presets", nargs="+", default=["eyeriss", "simba-pe"])
    parser.add_argument("--objective", default="energy", choices=["energy", "offchip_traffic", "latency", "edp"])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--bandwidth", action="append", default=[], metavar="LEVEL=WORDS",
                        help="words per cycle of a level (per PE for a per-PE level); repeatable, "
                             "e.g. --bandwidth DRAM=2 for latency or edp")
    parser.add_argument("--gains", choices=["bypass", "fanouts", "factors", "halo", "latches"],
                        help="print the gain of a larger mapping space instead")
    parser.add_argument("--breakdown", action="store_true",
                        help="energy only: split each optimum's gap to the rigorous bound into off chip and on chip")
    parser.add_argument("--whole", action="store_true",
                        help="time `mapcert solve` on the whole network, parts one by one and side by side")
    args = parser.parse_args()
    if args.breakdown:
        for preset in args.presets:
            gap_breakdown(args.network, preset, args.time_limit)
        return 0
    if args.whole:
        for preset in args.presets:
            whole_network(args.network, preset, args.objective, args.time_limit)
        return 0
    if args.gains:
        for preset in args.presets:
            hierarchy = with_bandwidths(hierarchy_preset(preset), args.bandwidth)
            gain_table(args.network, hierarchy, args.objective, args.time_limit, preset_constraints(preset, hierarchy),
                       args.gains)
        return 0
    names = list(HEURISTICS)
    for preset in args.presets:
        hierarchy = with_bandwidths(hierarchy_preset(preset), args.bandwidth)
        constraints = preset_constraints(preset, hierarchy)
        print(f"\n{args.network} on {preset}, objective {args.objective}, limit {args.time_limit:g} s", flush=True)
        print(f"{'layer':30s} {'x':>3s} {'status':>8s} {'objective':>14s} {'cpsat s':>8s} {'/bound':>7s} "
              + " ".join(f"{n[:14]:>14s}" for n in names), flush=True)
        times, gaps, proved, total, once = [], {n: [] for n in names}, 0, 0.0, 0.0
        ratios = []  # proved optimum / rigorous bound
        for layer, count in distinct_layers(args.network):
            problem = MultiLevelProblem(layer, hierarchy, objective=args.objective, constraints=constraints)
            result = solve_multilevel(problem, "cpsat", args.time_limit)
            total += result.wall_time_s * count
            once += result.wall_time_s
            if result.objective is None:
                print(f"{layer.name:30s} {count:3d} {result.status:>8s} {'-':>14s} {result.wall_time_s:8.2f}", flush=True)
                continue
            proved += result.status == "optimal"
            times.append(result.wall_time_s)
            bound = multilevel_bounds(problem).objective
            if result.objective < bound * (1 - 1e-9):
                raise SystemExit(f"{layer.name}: objective below the rigorous bound")
            if result.status == "optimal":
                ratios.append(result.objective / bound)
            cells = []
            for name in names:
                mapping = HEURISTICS[name](problem)
                value = evaluate_multilevel(problem, mapping).objective(args.objective) if mapping else None
                if value is None:
                    cells.append(f"{'-':>14s}")
                    continue
                gap = (value - result.objective) / result.objective
                gaps[name].append(gap)
                cells.append(f"{100 * gap:13.1f}%")
            status = "optimal" if result.status == "optimal" else "best"
            print(f"{layer.name:30s} {count:3d} {status:>8s} {result.objective:14,.0f} {result.wall_time_s:8.2f} "
                  f"{result.objective / bound:7.2f} " + " ".join(cells), flush=True)
        layers = len(distinct_layers(args.network))
        print(f"summary {preset}: {proved}/{layers} distinct layers proved; CP-SAT median "
              f"{statistics.median(times):.2f} s; whole network {once:.0f} s solving each distinct layer once "
              f"(as `mapcert solve` does), {total:.0f} s solving every layer")
        if ratios:
            print(f"  optimum / rigorous bound over {len(ratios)} proved layers: median "
                  f"{statistics.median(ratios):.3f}, worst {max(ratios):.3f}")
        for name in names:
            if gaps[name]:
                print(f"  {name:20s} gap median {100 * statistics.median(gaps[name]):6.1f}%  "
                      f"worst {100 * max(gaps[name]):6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
