"""Crossbar allocation with weight duplication on a PIM chip, as a registered
family.

The problem and the one cost model live in ``cost.py``, the exact models in
``exact.py``, the schema in ``schema.py``; heuristics in
``solvers/crossbar_heuristics.py``; bounds in
``validation/crossbar_bounds.py``; the functional model in
``hardware/functional/crossbar.py``.  This module connects them to the
family contract (``formulations/family.py``).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from ...hardware.functional.crossbar import AllocationRun, run_allocation
from ...hardware.pim import pim_presets
from ...solvers.crossbar_heuristics import CROSSBAR_HEURISTICS
from ...validation.crossbar_bounds import crossbar_bounds
from ..family import Attempt, Bound, Evaluation, ExactMethod, Family, FunctionalRun, Heuristic, Status
from ..registry import register
from .cost import STYLES, Allocation, CrossbarProblem, evaluate
from .exact import bisection_refusal, solve_crossbar
from .schema import build_crossbar, dump_crossbar

UNITS = {"bottleneck": "cycles", "latency": "cycles", "energy": "pJ"}
OBJECTIVE_WORDS = {"bottleneck": "pipeline period (cycles per image)", "latency": "latency (sum of stage cycles)",
                   "energy": "energy per image (pJ)"}
BRUTE_FORCE_LIMIT = 2_000_000
"""Allocations :meth:`CrossbarFamily.brute_force` tries at most."""


def _attempt(problem: CrossbarProblem, method: str, time_limit: float | None) -> Attempt:
    limit = problem.solver.time_limit if time_limit is None else time_limit
    r = solve_crossbar(problem, method, limit, problem.solver.workers)
    return Attempt(Status(r.status), r.allocation, r.objective, r.best_bound, r.wall_time_s, r.message, r.method,
                   {"solver_status": r.details.get("solver_status", "")} if r.details else {})


def _single_style(problem: CrossbarProblem, style: str) -> Allocation | None:
    """The optimum with every layer in ``style`` (None: nothing fits or none
    proved in the time limit)."""
    single = replace(problem, styles=(style,))  # the same constraints: the instance's method applies
    r = solve_crossbar(single, problem.solver.method, problem.solver.time_limit, problem.solver.workers)
    return r.allocation if r.status == "optimal" else None


class CrossbarFamily(Family):
    """Copies and mapping style of every layer of a network on a PIM chip,
    under the crossbar (and tile) budget and the buffer bandwidth, minimizing
    the pipeline period, the latency or the energy."""

    name = "crossbar"
    second_opinion = True
    key = "crossbar"
    summary = "crossbars, mapping style and weight duplication per layer on a PIM chip (period, latency, energy)"
    infeasible_field = ("constraints",)

    # -- instances ---------------------------------------------------------

    def build(self, data: dict, where, label: str, base: Path):
        return build_crossbar(data, where, label, base)

    def dump(self, problem: CrossbarProblem) -> dict:
        return dump_crossbar(problem)

    def owns(self, problem) -> bool:
        return isinstance(problem, CrossbarProblem)

    def time_limit(self, problem: CrossbarProblem) -> float:
        return problem.solver.time_limit

    # -- the one cost model -----------------------------------------------

    def objective_name(self, problem: CrossbarProblem) -> str:
        return problem.objective

    def unit(self, problem: CrossbarProblem) -> str:
        return UNITS[problem.objective]

    def space(self, problem: CrossbarProblem) -> str:
        constraints = [f"at most {problem.crossbar_budget:,} crossbars"]
        if problem.one_layer_per_tile:
            constraints.append(f"each layer on tiles of its own, at most {problem.chip.tiles:,} tiles")
        if problem.bandwidth:
            constraints.append(f"buffer bandwidth {problem.chip.bandwidth_bits_per_cycle:,} bits per cycle"
                               + (" (the period, reported: the energy objective does not depend on it)"
                                  if problem.objective == "energy" else ""))
        return (f"per layer of {problem.name} ({len(problem.layers)} pipeline stages): a mapping style among "
                f"{{{', '.join(problem.styles)}}} and 1..N*P*Q weight copies; " + "; ".join(constraints))

    def evaluate(self, problem: CrossbarProblem, solution: Allocation) -> Evaluation:
        try:
            metrics = evaluate(problem, solution)
        except ValueError as exc:
            return Evaluation(None, False, {}, [str(exc)])
        value = metrics.objective(problem.objective) if metrics.feasible else None
        return Evaluation(value, metrics.feasible, metrics.to_dict(), list(metrics.violations))

    def solution_to_dict(self, problem: CrossbarProblem, solution: Allocation) -> dict:
        return {"layers": solution.to_dict(problem)}

    def solution_from_dict(self, problem: CrossbarProblem, data) -> Allocation:
        rows = data.get("layers") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ValueError("a crossbar allocation is {layers: [{layer, style, copies}, ...]}")
        if len(rows) != len(problem.layers):
            raise ValueError(f"the allocation has {len(rows)} layers; the instance has {len(problem.layers)}")
        styles, copies = [], []
        for layer, row in zip(problem.layers, rows):
            if not isinstance(row, dict) or set(row) != {"layer", "style", "copies"}:
                raise ValueError(f"layer {layer.name}: expected {{layer, style, copies}}, got {row!r}")
            if row["layer"] != layer.name:
                raise ValueError(f"layer {row['layer']!r} where the instance has {layer.name!r}")
            if row["style"] not in problem.styles:
                raise ValueError(f"layer {layer.name}: style {row['style']!r} is not among the instance's styles "
                                 f"{', '.join(problem.styles)}")
            r = row["copies"]
            if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= layer.outputs:
                raise ValueError(f"layer {layer.name}: copies {r!r} outside 1..{layer.outputs}")
            styles.append(row["style"])
            copies.append(r)
        return Allocation(styles, copies)

    # -- methods ------------------------------------------------------------

    def methods(self, problem) -> list[ExactMethod]:
        return [
            ExactMethod("milp", lambda p, t: _attempt(p, "milp", t),
                        summary="MILP (pyomo + HiGHS), one binary per layer option"),
            ExactMethod("cpsat", lambda p, t: _attempt(p, "cpsat", t),
                        summary="CP-SAT on the same option model"),
            ExactMethod("bisection", lambda p, t: _attempt(p, "bisection", t), why_not=bisection_refusal,
                        summary="bisection over candidate periods (bottleneck, crossbar budget only)"),
        ]

    def default_method(self, problem: CrossbarProblem) -> str:
        return problem.solver.method

    def heuristics(self, problem: CrossbarProblem) -> list[Heuristic]:
        out = [Heuristic(name, (lambda fn=fn: fn(problem))) for name, fn in CROSSBAR_HEURISTICS.items()]
        if len(problem.styles) > 1:
            out += [Heuristic(f"{style}-only", (lambda s=style: _single_style(problem, s)),
                              summary=f"the optimum with every layer in the {style} layout")
                    for style in problem.styles]
        return out

    # -- certificate --------------------------------------------------------

    def bounds(self, problem: CrossbarProblem) -> list[Bound]:
        return [Bound(b.name, b.value, True, b.meaning) for b in crossbar_bounds(problem)]

    def functional(self, problem: CrossbarProblem, solution: Allocation, seed: int = 0) -> FunctionalRun:
        metrics = evaluate(problem, solution)
        run = run_allocation(problem, solution, seed=seed)
        return functional_verdict(problem, metrics, run)

    # -- presentation ---------------------------------------------------------

    def describe(self, problem: CrossbarProblem) -> str:
        chip = problem.chip
        extras = [w for w, on in (("one layer per tile", problem.one_layer_per_tile),
                                  ("buffer bandwidth", problem.bandwidth)) if on]
        return (f"[bold]{problem.name}[/] ({len(problem.layers)} layers) on {chip.name}: {chip.rows}x{chip.columns} "
                f"crossbars, budget {problem.crossbar_budget:,} crossbars, {chip.tiles:,} tiles; objective "
                f"{OBJECTIVE_WORDS[problem.objective]}; styles {', '.join(problem.styles)}"
                + (f"; {', '.join(extras)}" if extras else ""))

    def render(self, problem: CrossbarProblem, result, console, table) -> None:
        if result.solution is None:
            return
        allocation = self.solution_from_dict(problem, result.solution)
        metrics = evaluate(problem, allocation)
        t = table(title="allocation", title_justify="left")
        input_bound = metrics.stage_times != metrics.stage_cycles  # a stage waits for its own input bits
        columns = ("layer", "style", "copies", "crossbars", "stage cycles") + (("stage time",) if input_bound else ())
        for col in columns:
            t.add_column(col, justify="left" if col in ("layer", "style") else "right")
        slowest = max(metrics.stage_cycles)
        for layer, style, copies, xb, cyc, time in zip(problem.layers, allocation.styles, allocation.copies,
                                                       metrics.crossbars, metrics.stage_cycles, metrics.stage_times):
            row = [layer.name, style, str(copies), f"{xb:,}", f"{cyc:,}" + (" <" if cyc == slowest else "")]
            t.add_row(*row, *([f"{time:,}" + (" (input bits)" if time > cyc else "")] if input_bound else []))
        console.print()
        console.print(t)
        if input_bound:
            console.print("stage time: the stage's cycles, or the cycles its own input bits take through the "
                          "buffer when more; the latency adds them up")
        console.print("<: the slowest stage, which sets the pipeline period")
        console.print(f"pipeline period {metrics.period:,} cycles (slowest stage {slowest:,}"
                      + (f", bandwidth {metrics.bandwidth_cycles:,}" if problem.bandwidth else "")
                      + f"); latency {metrics.latency:,} cycles; energy {metrics.energy_pj / 1e6:,.3f} uJ per image; "
                      f"{metrics.crossbars_used:,} of {problem.crossbar_budget:,} crossbars, "
                      f"{metrics.tiles_used:,} tiles")
        alone = {h.method.removesuffix("-only"): h.objective for h in result.heuristics
                 if h.method.endswith("-only") and h.method.removesuffix("-only") in STYLES}
        conv, split = alone.get("conventional"), alone.get("split")
        if conv and split and problem.objective != "energy":
            console.print(f"styles alone: conventional {conv:,.0f}, split {split:,.0f} {UNITS[problem.objective]}: "
                          f"kernel split is {conv / split:.2f}x the speed of conventional "
                          "(the paper reports 2.03x on ResNet-34 without bandwidth or tile limits)")

    def presets(self, table) -> list:
        """The PIM chips (the pairing family reads the same presets)."""
        t = table(title="processing-in-memory chips (crossbar, pairing)", title_justify="left")
        for col in ("preset", "crossbar", "cells", "ADC", "budget", "source"):
            t.add_column(col)
        for name, chip in pim_presets().items():
            budget = chip["crossbars_per_pe"] * chip["pes_per_tile"] * chip["tiles"]
            t.add_row(name, f"{chip['rows']}x{chip['columns']}", f"{chip['cell_bits']} bit",
                      f"{chip['adc_bits']} bit", f"{budget:,} crossbars", " ".join(str(chip.get("source", "")).split()))
        return [t]

    # -- tests ----------------------------------------------------------------

    def examples(self) -> list[str]:
        chip = ("hardware: {preset: neurosim-rram, rows: 16, columns: 16, crossbars_per_pe: 2, pes_per_tile: 2, "
                "tiles: 12, bandwidth_bits_per_cycle: 64}\n")
        layers = ("workload:\n"
                  "  - {name: a, dims: {M: 4, C: 6, P: 3, Q: 2, R: 3, S: 3}}\n"
                  "  - {name: b, dims: {M: 3, C: 20, P: 2, Q: 2}, stride: 2}\n")
        return [
            "family: crossbar\n" + layers + chip + "constraints: {budget: 30}\n",
            "family: crossbar\n" + layers + chip + "objective: latency\n"
            "constraints: {budget: 40, one_layer_per_tile: true, bandwidth: true}\nsolver: {method: cpsat}\n",
            "family: crossbar\n" + layers + chip + "objective: energy\nstyles: [conventional, split]\n"
            "constraints: {budget: 24}\n",
        ]

    def brute_force(self, problem: CrossbarProblem) -> float | None:
        """Every style and every copy count 1..N*P*Q of every layer."""
        choices = [[(s, r) for s in problem.styles for r in range(1, layer.outputs + 1)] for layer in problem.layers]
        size = 1
        for c in choices:
            size *= len(c)
        if size > BRUTE_FORCE_LIMIT:
            raise NotImplementedError(f"{size:,} allocations; exhaustive search tries at most {BRUTE_FORCE_LIMIT:,}")
        best = None
        for combo in itertools.product(*choices):
            metrics = evaluate(problem, Allocation([s for s, _ in combo], [r for _, r in combo]))
            if metrics.feasible:
                value = metrics.objective(problem.objective)
                best = value if best is None or value < best else best
        return best


def functional_verdict(problem: CrossbarProblem, metrics, run: AllocationRun) -> FunctionalRun:
    """Compare what the functional model counted, layer by layer, with the
    cost model's crossbars, activations, input bits and stage cycles."""
    index = {layer.name: i for i, layer in enumerate(problem.layers)}
    total = len(problem.layers)
    if not run.reports:
        return FunctionalRun(False, reason=f"every layer is beyond the functional model's limits "
                                           f"(skipped {', '.join(run.skipped[:3])}...)", wall_time_s=run.wall_time_s)
    rows, failures = [], []
    for report in run.reports:
        i = index[report.layer]
        expected = {"crossbars": metrics.crossbars[i], "activations": metrics.activations[i],
                    "input_bits": metrics.input_bits[i], "cycles": metrics.stage_cycles[i]}
        counted = {k: getattr(report, k) for k in expected}
        wrong = [k for k in expected if counted[k] != expected[k]]
        if not report.outputs_match:
            failures.append(f"{report.layer}: outputs differ from the direct convolution "
                            f"(max error {report.max_abs_error})")
        if not report.bit_planes_match:
            failures.append(f"{report.layer}: the plane-by-plane execution differs")
        failures.extend(f"{report.layer}: counted {k} {counted[k]:,}, evaluate {expected[k]:,}" for k in wrong)
        rows.append({"layer": report.layer, "stands_for": run.covered[report.layer], "style": report.style,
                     "copies": report.copies, "outputs_match": report.outputs_match,
                     "bit_planes_match": report.bit_planes_match, **counted,
                     "sampled_pixels": report.sampled_pixels, "saturated_at_chip_adc": report.saturated,
                     "chip_adc_max_abs_error": report.chip_adc_max_abs_error})
    covered = sum(len(r["stands_for"]) for r in rows)
    scope = (f"all {total} layers ({len(rows)} distinct runs)" if covered == total else
             f"a sample of {covered} of {total} layers ({len(rows)} distinct runs, within the work budget), "
             f"including the bottleneck layer {run.bottleneck}" if run.bottleneck not in run.skipped else
             f"a sample of {covered} of {total} layers; the bottleneck layer {run.bottleneck} is beyond the "
             f"model's limits")
    clipped = [r for r in rows if r["saturated_at_chip_adc"]]
    adc = (f"; the chip's {problem.chip.adc_bits}-bit ADC clips column sums of {len(clipped)} of {len(rows)} runs "
           f"(the mapping is checked with ADCs that never clip)" if clipped else "")
    passed = not failures
    reason = ("; ".join(failures[:4]) + f" (ran {scope})") if failures else f"ran {scope}{adc}"
    if not failures and run.bottleneck in run.skipped:
        reason = f"ran {scope}: the bottleneck layer is not checked{adc}"
    counts = {"layers": total, "layers_run": covered, "runs": rows, "bottleneck_layer": run.bottleneck,
              "skipped": run.skipped}
    return FunctionalRun(True, passed, reason, counts, run.wall_time_s)


register(CrossbarFamily())
