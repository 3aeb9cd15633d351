"""Tiling on a memory hierarchy with a PE array, as a registered family.

It shares ``family: tiling`` with the two-level family: an instance with a
hierarchy (a preset such as ``eyeriss``, an ``array``, more than two levels,
per-level energies) or an energy, latency or EDP objective is this family's
(``multilevel_schema.is_multilevel``).  A ``workload`` naming a whole
network expands to its distinct layers (:meth:`MultiLevelTiling.parts`).
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape as _escape

from ....hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from ....hardware.hierarchy import ARRAY, MACS, Fanout, overflow
from ....solvers.multilevel_heuristics import HEURISTICS
from ....units import format_bytes, format_count, format_number
from ....validation.multilevel_bounds import multilevel_bounds, offchip_segment_bytes
from ...family import (Attempt, Bound, Check, Evaluation, ExactMethod, Family, FunctionalRun, Heuristic, Part,
                      PlotUnsupported, Status)
from ...registry import register
from .problem import MultiLevelMapping, MultiLevelProblem, uncountable
from .constraints import violations as violations_of
from .cost import evaluate_multilevel
from .enumeration import enumerate_multilevel
from .schema import MultiLevelNetwork, build_multilevel, is_multilevel
from .solve import milp_refusal, solve_multilevel
from .space import outside_space
from ..schema import dump_two_level

UNITS = {"offchip_traffic": "bytes", "latency": "cycles"}
TENSORS = ("inputs", "weights", "outputs")
HEURISTIC_SUMMARIES = {
    "random": "Timeloop-style random mapper: uniform factorizations, any loop orders",
    "paper-dataflow": "output-stationary at every level, output dimensions on the array",
    "greedy-largest-tile": "grows the innermost level's tile first, one prime factor at a time",
    "zigzag-orders": "ZigZag LOMA-style: orderings of the loops' prime factors",
}
QUICK_HEURISTICS = ("paper-dataflow", "greedy-largest-tile")
"""Heuristics every ``solve`` scores; the others (random sampling, ZigZag's
loop orders) take seconds per layer and run in ``compare``."""


OBJECTIVE_BOUND_NAMES = {"energy": "energy_floor", "latency": "latency_floor", "edp": "edp_floor",
                         "offchip_traffic": "compulsory"}
"""The name of the objective's rigorous bound in a result: off-chip traffic's
is every element crossing once; the others add up the events every
schedule needs (their meaning says which bind)."""


def unit_of(problem: MultiLevelProblem, objective: str | None = None) -> str:
    """Unit of ``objective`` (default: the objective) of a multi-level problem."""
    objective = objective or problem.objective
    if objective in ("energy", "edp"):
        unit = problem.hierarchy.energy_unit
        return unit if objective == "energy" else f"{unit} x cycles"
    return UNITS[objective]


def objective_field(problem: MultiLevelProblem) -> str | list[str]:
    """``objective:`` as an instance gives it: a name, or the list of the
    primary and the secondary objectives."""
    return list(problem.objectives) if problem.secondary else problem.objective


def _as_array(hier) -> bool:
    """Whether the hierarchy's fan-outs are the plain ``array`` shorthand."""
    return len(hier.fanouts) == 1 and hier.fanouts[0] == Fanout(ARRAY, hier.pe_level, hier.fanouts[0].rows,
                                                                hier.fanouts[0].cols)


def dump_hierarchy(hier) -> dict:
    """A hierarchy as the instance schema reads it (capacities in bytes)."""
    levels = []
    for level in hier.levels:
        entry: dict = {"name": level.name}
        if level.capacity_bits is not None:
            entry["capacity"] = level.capacity_bits // 8
        if level.partition_bits is not None:
            entry["partition"] = {t: b // 8 for t, b in level.partition_bits.items()}
        if not level.chosen:
            entry["holds"] = [t for t in TENSORS if t in level.holds]
        else:  # keep or bypass is the mapping's decision, within what the hardware allows
            candidates = set(TENSORS) if level.partition_bits is None else set(level.partition_bits)
            if level.always_holds:
                entry["keep"] = [t for t in TENSORS if t in level.always_holds]
            if candidates - level.holds:
                entry["bypass"] = [t for t in TENSORS if t in candidates - level.holds]
        if _as_array(hier):  # named fan-outs place the private levels themselves
            entry["per_pe"] = level.per_pe
        entry["read_energy"] = level.read_energy
        entry["write_energy"] = level.write_energy
        if level.bandwidth is not None:
            entry["bandwidth"] = level.bandwidth
        levels.append(entry)
    out = {"name": hier.name, "source": hier.source, "energy_unit": hier.energy_unit, "mac_energy": hier.mac_energy}
    if not hier.latches:
        out["latches"] = False
    if _as_array(hier):
        out["array"] = {"rows": hier.fanouts[0].rows, "cols": hier.fanouts[0].cols}
    else:
        out["fanouts"] = [{"name": fan.name, "above": hier.levels[fan.level].name if fan.level < len(hier.levels)
                           else MACS, "x": fan.cols, "y": fan.rows, "multicast": fan.multicast,
                           "reduction": fan.reduction} for fan in hier.fanouts]
    out["levels"] = levels
    return out


def unpriced_levels(problem: MultiLevelProblem) -> list[str]:
    """Names of the levels whose accesses cost nothing in an energy or EDP
    objective while another level's do: legal (a level may be negligible),
    but more often a forgotten ``read_energy``, so the output says it. (When
    no level prices an access the instance is refused: ``schema.py``.)"""
    if not {"energy", "edp"} & set(problem.objectives):
        return []
    levels = problem.hierarchy.levels
    if not any(level.read_energy or level.write_energy for level in levels):
        return []
    return [level.name for level in levels if not (level.read_energy or level.write_energy)]


def _attempt(problem: MultiLevelProblem, method: str, time_limit: float | None) -> Attempt:
    r = solve_multilevel(problem, method, time_limit, problem.solver.workers)
    return Attempt(Status(r.status), r.mapping, r.objective, r.best_bound, r.wall_time_s, r.message, r.method,
                   secondary=list(r.secondary))


class MultiLevelTiling(Family):
    """Per-level loop tiling, loop orders and spatial unrolling of one layer
    (or each distinct layer of a network) on a memory hierarchy with a PE
    array, minimizing energy, latency, EDP or off-chip traffic."""

    name = "tiling"
    key = "tiling-hierarchy"
    summary = "tiling on a memory hierarchy with a PE array (energy, latency, EDP, off-chip traffic)"

    def claims(self, data: dict) -> bool:
        return is_multilevel(data)

    def build(self, data: dict, where, label: str, base: Path):
        return build_multilevel(data, where, label, base)

    def dump(self, problem) -> dict:
        if isinstance(problem, MultiLevelNetwork):
            first = problem.layers[0].problem
            return {"family": "tiling", "workload": problem.workload, "hardware": dump_hierarchy(first.hierarchy),
                    "objective": objective_field(first), **self._constraints(first), **self._space(first),
                    "solver": self._solver(first)}
        workload = dump_two_level_workload(problem)
        return {"family": "tiling", "workload": workload, "hardware": dump_hierarchy(problem.hierarchy),
                "objective": objective_field(problem), **self._constraints(problem), **self._space(problem),
                "solver": self._solver(problem)}

    @staticmethod
    def _space(problem: MultiLevelProblem) -> dict:
        space = {} if problem.factors == "divisors" else {"factors": problem.factors}
        if problem.halo:
            space["halo"] = True
        return {"space": space} if space else {}

    @staticmethod
    def _constraints(problem: MultiLevelProblem) -> dict:
        if problem.constraints.empty:
            return {}
        return {"constraints": problem.constraints.to_dict(problem.hierarchy)}

    @staticmethod
    def _solver(problem: MultiLevelProblem) -> dict:
        s = problem.solver
        return {"method": s.method, "time_limit": s.time_limit, "workers": s.workers}

    def owns(self, problem) -> bool:
        return isinstance(problem, (MultiLevelProblem, MultiLevelNetwork))

    def parts(self, problem) -> list[Part] | None:
        if not isinstance(problem, MultiLevelNetwork):
            return None
        return [Part(item.problem.layer.name, item.problem, len(item.names), tuple(item.names))
                for item in problem.layers]

    def time_limit(self, problem) -> float:
        return self._first(problem).solver.time_limit

    @staticmethod
    def _first(problem) -> MultiLevelProblem:
        return problem.layers[0].problem if isinstance(problem, MultiLevelNetwork) else problem

    def objective_name(self, problem) -> str:
        return self._first(problem).objective

    def unit(self, problem) -> str:
        return unit_of(self._first(problem))

    def secondary_objectives(self, problem) -> list[tuple[str, str]]:
        first = self._first(problem)
        return [(name, unit_of(first, name)) for name in first.secondary]

    def space(self, problem) -> str:
        return self._first(problem).space_description

    def evaluate(self, problem: MultiLevelProblem, solution: MultiLevelMapping) -> Evaluation:
        cannot = uncountable(problem.layer, problem.hierarchy, solution)
        if cannot:  # a partial tile the cost model cannot count: outside every space, and not scored
            return Evaluation(None, False, {}, [f"outside every space: {why}" for why in cannot])
        metrics = evaluate_multilevel(problem, solution)
        violations = []
        if not metrics.fits:
            kept = problem.hierarchy.kept(solution.keep_sets(problem.hierarchy))
            for level, tiles in zip(kept.levels, metrics.tile_bits, strict=True):
                why = overflow(level.name, level.capacity_bits, level.partition_bits, tiles, sorted(level.holds))
                if why is not None:
                    violations.append(why)
            violations = violations or ["the mapping does not fit the hierarchy or the array"]
        broken = violations_of(problem.constraints, problem.hierarchy, solution) \
            if not problem.constraints.empty else []
        broken += outside_space(problem, solution)
        feasible = metrics.fits and not broken
        value = metrics.objective(problem.objective) if feasible else None
        secondary = {name: metrics.objective(name) for name in problem.secondary} if feasible else {}
        return Evaluation(value, feasible, metrics.to_dict(), violations + broken, secondary)

    def solution_to_dict(self, problem: MultiLevelProblem, solution: MultiLevelMapping) -> dict:
        return solution.to_dict(problem.hierarchy)

    def solution_from_dict(self, problem: MultiLevelProblem, data) -> MultiLevelMapping:
        try:
            return MultiLevelMapping.from_dict(data, problem.hierarchy, problem.layer)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a multi-level mapping: {exc}") from None

    def methods(self, problem) -> list[ExactMethod]:
        return [
            ExactMethod("cpsat", lambda p, t: _attempt(p, "cpsat", t),
                        summary="CP-SAT, one model (keep or bypass decided inside it)"),
            ExactMethod("milp", lambda p, t: _attempt(p, "milp", t), why_not=_milp_refused,
                        summary="MILP in prime exponents (pyomo + HiGHS): one model per keep set, solved whole, "
                                "then one piece per stationary tensor at each level"),
            ExactMethod("enumerate", lambda p, t: _attempt(p, "enumerate", t), why_not=_enumeration_refused,
                        summary="exhaustive enumeration (small layers only)"),
        ]

    def default_method(self, problem) -> str:
        return self._first(problem).solver.method

    def heuristics(self, problem: MultiLevelProblem) -> list[Heuristic]:
        return [Heuristic(name, (lambda fn=fn: fn(problem)), in_solve=name in QUICK_HEURISTICS,
                          summary=HEURISTIC_SUMMARIES.get(name, "")) for name, fn in HEURISTICS.items()]

    def bounds(self, problem: MultiLevelProblem) -> list[Bound]:
        """The rigorous bound on the objective (named by what it bounds; its
        meaning says what binds it), and for off-chip traffic the segment
        bounds beside the compulsory one."""
        b = multilevel_bounds(problem)
        out = [Bound(OBJECTIVE_BOUND_NAMES[problem.objective], b.objective, True, b.objective_meaning)]
        if problem.objective == "offchip_traffic":
            segment = offchip_segment_bytes(problem)
            out += [Bound("read_segment", segment["read_segment"], True,
                          "segment argument over reads and output creations, all on-chip storage as one buffer"),
                    Bound("capped_segment", segment["capped_segment"], True,
                          "read-segment argument with per-element MAC caps, all on-chip storage as one buffer"),
                    Bound("room_segment", segment["room_segment"], True,
                          "capped segment argument with each tensor's room on chip (its partitions and the "
                          "levels that may keep it), spills of partial sums counted")]
        return out

    def cross_checks(self, problem: MultiLevelProblem, solution, evaluation: Evaluation) -> list[Check]:
        b = multilevel_bounds(problem)
        words = evaluation.metrics["array_boundary_words"]
        return [Check("array-boundary words at or above their bound", words >= b.array_boundary_words - 1e-6,
                      f"{words:,} >= {b.array_boundary_words:,.0f} ({b.array_boundary_meaning})")]

    def functional(self, problem: MultiLevelProblem, solution: MultiLevelMapping, seed: int = 0) -> FunctionalRun:
        metrics = evaluate_multilevel(problem, solution)
        try:
            run = run_multilevel_vectorized(problem, solution, seed=seed)
        except ValueError as exc:  # beyond the model's memory guard
            return FunctionalRun(False, reason=str(exc))
        counts_match = (run.reads == metrics.reads and run.writes == metrics.writes
                        and run.cycles == metrics.compute_cycles)
        reason = "" if run.outputs_match and counts_match else (
            "outputs differ from the direct convolution" if not run.outputs_match
            else "counted reads, writes or cycles differ from evaluate")
        return FunctionalRun(True, run.outputs_match and counts_match, reason,
                             {"outputs_match": run.outputs_match, "counts_match": counts_match, "cycles": run.cycles,
                              "reads": run.reads, "writes": run.writes}, run.wall_time_s)

    def describe(self, problem) -> str:
        first = self._first(problem)
        hier = first.hierarchy
        what = (f"[bold]network {problem.network}[/]" if isinstance(problem, MultiLevelNetwork)
                else f"[bold]{first.layer.name}[/] ({first.layer.shape_text()})")
        unpriced = unpriced_levels(first)
        note = "" if not unpriced else (
            f"\nnote: {', '.join(unpriced)} {'has' if len(unpriced) == 1 else 'have'} no access energy (read_energy "
            f"and write_energy 0), so the {'energy' if 'energy' in first.objectives else 'EDP'} counts no access "
            f"there; give {'it' if len(unpriced) == 1 else 'them'} read_energy if accesses there cost energy")
        return (f"{what} on [bold]{hier.name}[/] ({_escape(hier.chain_text)}), objective {first.objective} ({unit_of(first)})"
                + "".join(f", then {name}" for name in first.secondary) + note)

    def render(self, problem: MultiLevelProblem, result, console, table) -> None:
        if result.solution is None:
            return
        hier = problem.hierarchy
        mapping = self.solution_from_dict(problem, result.solution)
        m = evaluate_multilevel(problem, mapping)
        summary = table(show_header=False)
        summary.add_column("what")
        summary.add_column("value", justify="right")
        priced = hier.mac_energy > 0 or any(lv.read_energy > 0 or lv.write_energy > 0 for lv in hier.levels)
        if priced:  # a hierarchy given without energies (a traffic instance) has no energy to show
            summary.add_row(f"energy ({hier.energy_unit})", format_number(m.energy))
        summary.add_row("latency (cycles)", f"{m.latency:,.0f} (compute {m.compute_cycles:,})")
        summary.add_row("off-chip traffic", format_bytes(m.offchip_bytes))
        has_array = any(fan.size > 1 for fan in hier.fanouts)  # DRAM and buffers over one MAC unit have none
        if has_array:
            summary.add_row("PE utilization", f"{100 * m.utilization:.1f}%")
            summary.add_row("array boundary (words in and out of the PEs)", f"{m.array_boundary_words:,}")
        console.print()
        console.print(summary)
        free = [lv.name for lv in hier.levels if not (lv.read_energy or lv.write_energy)]
        if priced and free and not {"energy", "edp"} & set(problem.objectives):  # describe() says it otherwise
            names = free[0] if len(free) == 1 else f"{', '.join(free[:-1])} and {free[-1]}"
            console.print(f"note: {names} {'has' if len(free) == 1 else 'have'} no access energy, so the "
                          f"energy shown counts no access there", markup=False)
        if (has_array and m.utilization < 0.5 and not problem.secondary and result.status == Status.OPTIMAL
                and problem.objective in ("offchip_traffic", "energy")):
            console.print(f"note: this optimum keeps {100 * m.utilization:.1f}% of the MAC units busy; other mappings "
                          f"may have the same {problem.objective} and run faster. To pick the fastest of them, "
                          f"give objective: [{problem.objective}, latency]", markup=False)
        loops = table(title="loops per level (outermost first)", title_justify="left")
        loops.add_column("level")
        loops.add_column("loops")
        loops.add_column("keeps")
        for level, block, kept in zip(hier.levels, mapping.levels, mapping.keep_sets(hier), strict=True):
            text = " ".join(f"{d}{block.factors[d]}" for d in block.order if block.factors.get(d, 1) > 1) or "-"
            keeps = ", ".join(t for t in TENSORS if t in kept) or "-"
            if level.chosen:
                bypassed = [t for t in TENSORS if t in level.chosen - kept]
                keeps += " (chosen" + (f": bypasses {', '.join(bypassed)})" if bypassed else ")")
            loops.add_row(level.name, text, keeps)
        for f, fan in enumerate(hier.fanouts):
            if fan.size <= 1:
                continue
            spread = mapping.fanout(f)
            spatial = " ".join(f"{d}{v}" for d, v in spread.rows.items()) or "-"
            spatial += " | " + (" ".join(f"{d}{v}" for d, v in spread.cols.items()) or "-")
            label = ARRAY if fan.is_array else f"fan-out {fan.name}"
            sharing = "" if fan.multicast and fan.reduction else " (no " + " or ".join(
                w for w, on in (("multicast", fan.multicast), ("reduction", fan.reduction)) if not on) + ")"
            loops.add_row(f"{label} (rows | cols)", spatial, sharing)
        console.print()
        console.print(loops)
        access = table(title="accesses (words; exact counts in the result's metrics, --json)", title_justify="left")
        access.add_column("level")
        for col in ("inputs r/w", "weights r/w", "outputs r/w") + ((f"energy ({hier.energy_unit})",) if priced else ()):
            access.add_column(col, justify="right")
        for i, level in enumerate(hier.levels):
            cells = [f"{format_count(m.reads[i][t])} / {format_count(m.writes[i][t])}" for t in TENSORS]
            energy = sum(m.reads[i][t] * level.read_energy + m.writes[i][t] * level.write_energy for t in TENSORS)
            access.add_row(level.name, *cells, *([format_number(energy)] if priced else []))
        mac = f"{format_count(m.macs)} MACs" + ("" if hier.latches else " (no latches)")
        access.add_row("MAC", "", "", mac, *([format_number(m.macs * hier.mac_energy)] if priced else []))
        console.print()
        console.print(access)

    def plot(self, problem, output: Path, options: dict, progress) -> str:
        from .... import plots
        from ....pipeline import compare

        time_limit = options.get("time_limit") or 30.0
        if isinstance(problem, MultiLevelNetwork):
            names, gaps, unproved = [], {name: [] for name in HEURISTICS}, []
            advance = progress("solving", len(problem.layers))
            for item in problem.layers:
                p = item.problem
                comparison = compare(p, ["cpsat", *HEURISTICS], time_limit, functional=False)
                names.append(p.layer.name)
                proved = comparison.optimum is not None
                if not proved:
                    unproved.append(p.layer.name)
                for row in comparison.rows:
                    if row.method in gaps:
                        gaps[row.method].append(row.gap if proved else None)
                advance()
            first = problem.layers[0].problem
            plots.plot_network_gaps(problem.network, names, gaps, output,
                                    f"{problem.network} on {first.hierarchy.name}: heuristic gap to the optimum "
                                    f"({first.objective})")
            said = (f"; {len(unproved)} not proved within the limit, without bars: {', '.join(unproved)}"
                    if unproved else "; every one proved")
            return f"{len(names)} distinct layers{said} (a heuristic at the optimum has a bar of zero height)"
        hier = problem.hierarchy
        level = options.get("level")
        shared = [i for i, lv in enumerate(hier.levels) if i > 0 and not lv.per_pe]
        candidates = {lv.name: i for i, lv in enumerate(hier.levels) if i > 0}
        if level is not None and level not in candidates:
            raise PlotUnsupported(f"--level: {level!r} is not an on-chip level; choose one of {', '.join(candidates)}")
        if level is None and not shared:
            raise PlotUnsupported("--level: the hierarchy has no shared on-chip level; name one with --level")
        index = candidates[level] if level is not None else max(
            shared, key=lambda i: hier.levels[i].capacity_bits or sum((hier.levels[i].partition_bits or {}).values()))
        chosen = hier.levels[index]
        current = chosen.capacity_bits or sum(chosen.partition_bits.values())
        sizes = options.get("sizes")
        if sizes:
            sizes_bits = plots.sizes_option(sizes)
        else:
            sizes_bits = plots.default_sizes(current)
        advance = progress(f"sweeping {chosen.name}", len(sizes_bits))
        rows = plots.sweep(problem, index, sizes_bits, time_limit, progress=advance)
        plots.plot_sweep(rows, HEURISTICS, chosen.name, f"{problem.objective} ({unit_of(problem)})",
                         f"{problem.layer.name} on {problem.hierarchy.name}", output)
        return f"objective against {chosen.name} size ({plots.sweep_text(rows)})"

    def infeasible_fields(self, problem, message: str) -> list[tuple]:
        """The constraints an infeasible answer names (a level's, a
        fan-out's, in the instance or in its hardware), else the hardware."""
        first = self._first(problem)
        hier = first.hierarchy
        if message.startswith("no mapping fits the hierarchy"):  # the capacities, whatever the constraints
            return [("hardware", "levels"), ("hardware",)]
        named = [("levels", level.name) for level in hier.levels if f"{level.name}:" in message]
        named += [("fanouts", fan.name) for fan in hier.fanouts if f"fan-out {fan.name}" in message]
        if len(hier.fanouts) == 1 and any(w in message for w in ("spatial", "array", "PEs")):
            named += [("spatial",), ("fanouts", hier.fanouts[0].name)]
        out = [(*base, *path) for path in named for base in (("constraints",), ("hardware", "constraints"))]
        if "constraint" in message:
            out += [("constraints",), ("hardware", "constraints")]
        return out + [("hardware",)]

    def presets(self, table) -> list:
        from rich.markup import escape

        from ....hardware.hierarchy import hierarchy_preset, hierarchy_presets
        from .schema import preset_constraints

        t = table(title="memory hierarchies with spatial fan-outs (tiling)", title_justify="left",
                  caption="\\[..] a spatial fan-out (rows x cols); * private to each PE; {..} the tensors a level "
                          "holds, the others bypass it; {chosen}: each mapping keeps or bypasses each tensor")
        for col in ("preset", "levels and fan-outs", "constraints", "source"):
            t.add_column(col)
        for name, raw in hierarchy_presets().items():
            hier = hierarchy_preset(name)
            parts = []
            for index, level in enumerate([*hier.levels, None]):
                parts += [escape(f"[{fan.name} {fan.rows}x{fan.cols}]") for fan in hier.fanouts
                          if fan.level == index and fan.size > 1]
                if level is None:
                    break
                size = next((str(v["capacity"]) for v in raw["levels"] if v["name"] == level.name and "capacity" in v),
                            "")
                held = ", ".join(x for x in TENSORS if x in level.holds)
                parts.append(level.name + ("*" if level.per_pe else "") + (f" {size}" if size else "")
                             + ("" if index == 0 else " {chosen}" if level.chosen else f" {{{held}}}"))
            described = preset_constraints(name, hier).describe(hier)
            t.add_row(name, " > ".join(parts), described or "-", " ".join(str(hier.source).split()))
        return [t]

    def examples(self) -> list[str]:
        hierarchy = ("hardware: {name: tiny, mac_energy: 1, array: {rows: 2, cols: 2}, levels: ["
                     "{name: DRAM, read_energy: 100, write_energy: 100}, "
                     "{name: GLB, capacity: 64, holds: [inputs, outputs], read_energy: 6, write_energy: 6}, "
                     "{name: RF, capacity: 8, per_pe: true, holds: [inputs, weights, outputs], read_energy: 1, "
                     "write_energy: 1}]}\n")
        return [
            "family: tiling\nworkload: {name: tiny, dims: {M: 2, C: 2, P: 4, Q: 1, R: 3, S: 1}}\n" + hierarchy
            + "objective: energy\n",
            "family: tiling\nworkload: {name: fc, op: matmul, dims: {N: 2, M: 4, C: 4}}\n" + hierarchy
            + "objective: latency\n",
        ]

    def brute_force(self, problem: MultiLevelProblem) -> float | None:
        found = enumerate_multilevel(problem)
        return None if found.mapping is None else found.objective


def dump_two_level_workload(problem: MultiLevelProblem) -> dict:
    """The layer of a multi-level problem as the instance schema reads it."""
    from ..problem import Buffer, TilingProblem

    shim = TilingProblem(layer=problem.layer, buffer=Buffer("GLB", 8))
    return dump_two_level(shim)["workload"]


def _milp_refused(problem) -> str | None:
    """Latency under a per-PE bandwidth limit with partial tiles: its search fixes the busy PEs."""
    first = problem.layers[0].problem if isinstance(problem, MultiLevelNetwork) else problem
    return milp_refusal(first)


def _enumeration_refused(problem) -> str | None:
    """Enumeration applies to small layers; the enumerator says when it
    refuses (of an ordered problem, the split one it enumerates)."""
    from .enumeration import enumeration_size_reason
    from .ordered import split_ordered

    split = split_ordered(problem) if isinstance(problem, MultiLevelProblem) else None
    return enumeration_size_reason(problem if split is None else split.problem)


register(MultiLevelTiling())
