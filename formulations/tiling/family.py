"""Two-level loop tiling (DRAM and one on-chip buffer) as a registered family.

The problem, cost model and exact models live beside this file
(``problem.py``, ``cost.py``, ``solve.py``); heuristics in
``solvers/tiling_heuristics.py``; bounds in ``validation/bounds.py``; the
functional model in ``hardware/functional/tiling.py``.  This module only
connects them to the family contract.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...hardware.functional.tiling import run_tiling, too_many_macs
from ...hardware.hierarchy import overflow
from ...solvers.tiling_heuristics import HEURISTICS
from ...units import format_bytes
from ...validation.bounds import tiling_bounds
from ..family import (Attempt, Bound, Evaluation, ExactMethod, Family, FunctionalRun, Heuristic,
                      PlotUnsupported, Status)
from ..registry import register
from .cost import evaluate
from .enumeration import enumerate_space
from .problem import LOOP_DIMS, TENSORS, Mapping, TilingProblem
from .schema import build_two_level, dump_two_level
from .solve import solve_tiling
from .space import CANONICAL_ORDER, stationary_of

FUNCTIONAL_MEMORY_BYTES = 4 * 2**30
"""The most memory the functional run may take (operands, outputs and
partial sums in float64, each about twice for working copies)."""

STATIONARY = {
    "inputs": "the input tile stays on chip across M (innermost)",
    "weights": "the weight tile stays on chip across N, P, Q (innermost)",
    "outputs": "the output tile stays on chip across C (innermost): no partial-sum spills",
}


def _from_levels(problem: TilingProblem, data: dict) -> dict:
    """A mapping written for the hierarchy model on the same DRAM and buffer
    (a network's layer is solved there): the buffer's factors are the tile,
    DRAM's loop order the order. Raises ValueError for what the two-level
    model cannot hold (another number of levels, a tensor the buffer
    bypasses, spatial unrolling)."""
    levels = data.get("levels")
    if not isinstance(levels, list) or len(levels) != 2 or not all(isinstance(lv, dict) for lv in levels):
        raise ValueError(f"a mapping of DRAM and {problem.buffer.name} gives tiles: and order: (or, as the hierarchy "
                         "model writes it, levels: with DRAM's and the buffer's loops)")
    dram, buffer = levels
    kept = buffer.get("keep")
    if kept is not None and set(kept) != set(TENSORS):
        raise ValueError(f"{problem.buffer.name} keeps only {', '.join(kept) or 'nothing'}; the two-level model keeps "
                         f"every tensor in it (solve with keep: [] on the buffer for the hierarchy model)")
    spatial = data.get("spatial") or {}
    if any((spatial.get(axis) or {}) for axis in ("rows", "cols")):
        raise ValueError("spatial unrolling needs an array; DRAM and one buffer have none")
    factors, trips = buffer.get("factors") or {}, dram.get("factors") or {}
    tiles = {d: factors.get(d, 1) for d in LOOP_DIMS}
    for d, tile in tiles.items():
        extent = problem.layer.extent(d)
        if isinstance(tile, int) and tile >= 1 and trips.get(d, 1) != -(-extent // tile):
            raise ValueError(f"{d}: DRAM's {trips.get(d, 1)} trips of {problem.buffer.name}'s {tile} do not "
                             f"cover its extent {extent} once")
    tiles["R"], tiles["S"] = factors.get("R", problem.layer.R), factors.get("S", problem.layer.S)
    order = [d for d in dram.get("order", LOOP_DIMS) if d in LOOP_DIMS]
    return {"tiles": tiles, "order": order}


def _attempt(problem: TilingProblem, method: str, time_limit: float | None) -> Attempt:
    r = solve_tiling(problem, method, time_limit)
    return Attempt(Status(r.status), r.mapping, r.solver_objective if r.solver_objective is not None else r.objective,
                   r.best_bound, r.wall_time_s, r.message, r.method, {"classes": r.classes} if r.classes else {})


class TwoLevelTiling(Family):
    """Loop tiling and DRAM loop order of one layer on DRAM + one buffer,
    minimizing off-chip traffic (bytes)."""

    name = "tiling"
    key = "tiling"
    summary = "loop tiling and loop order of one layer on DRAM and one on-chip buffer (off-chip traffic)"

    def claims(self, data: dict) -> bool:
        from .multilevel.schema import is_multilevel

        return not is_multilevel(data)

    def build(self, data: dict, where, label: str, base: Path):
        return build_two_level(data, where, label, base)

    def dump(self, problem: TilingProblem) -> dict:
        return dump_two_level(problem)

    def owns(self, problem) -> bool:
        return isinstance(problem, TilingProblem)

    def time_limit(self, problem: TilingProblem) -> float:
        return problem.solver.time_limit

    def objective_name(self, problem) -> str:
        return "offchip_traffic"

    def unit(self, problem) -> str:
        return "bytes"

    def space(self, problem: TilingProblem) -> str:
        return problem.space_description

    def evaluate(self, problem: TilingProblem, solution: Mapping) -> Evaluation:
        # a partial tile in the divisors space is scored as the cost model counts it, and lies outside the space
        outside = [f"tile of {d} = {solution.tiles[d]} does not divide {problem.layer.extent(d)}: a partial tile, "
                   "outside the divisors space (space: {tiles: any} allows it)"
                   for d in LOOP_DIMS if problem.space == "divisors" and problem.layer.extent(d) % solution.tiles[d]]
        metrics = evaluate(replace(problem, space="any") if outside else problem, solution)
        buffer = problem.buffer
        violations = outside + ([] if metrics.fits else [
            overflow(buffer.name, buffer.capacity_bits, buffer.partition_bits, metrics.footprint_bits, TENSORS)
            or f"the footprint does not fit {buffer.name}"])
        feasible = metrics.fits and not outside
        return Evaluation(metrics.objective if feasible else None, feasible, metrics.to_dict(), violations)

    def solution_to_dict(self, problem: TilingProblem, solution: Mapping) -> dict:
        return solution.to_dict(problem.layer)

    def solution_from_dict(self, problem: TilingProblem, data) -> Mapping:
        if isinstance(data, dict) and "levels" in data and "tiles" not in data:
            data = _from_levels(problem, data)
        try:
            return Mapping.from_dict(data, problem.layer)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a tiling mapping: {exc}") from None

    def methods(self, problem) -> list[ExactMethod]:
        return [
            ExactMethod("cpsat", lambda p, t: _attempt(p, "cpsat", t),
                        summary="CP-SAT with integer products, one model per stationary class"),
            ExactMethod("milp", lambda p, t: _attempt(p, "milp", t),
                        summary="MILP (pyomo + HiGHS), exact discrete reformulation per class"),
            ExactMethod("enumerate", lambda p, t: _attempt(p, "enumerate", t),
                        summary="exhaustive enumeration of the declared space"),
        ]

    def default_method(self, problem: TilingProblem) -> str:
        return problem.solver.method

    def heuristics(self, problem: TilingProblem) -> list[Heuristic]:
        return [Heuristic(name, (lambda fn=fn: fn(problem)),
                          summary="output-stationary, input channels streamed one at a time"
                          if name == "paper-dataflow" else "") for name, fn in HEURISTICS.items()]

    def plot(self, problem: TilingProblem, output: Path, options: dict, progress) -> str:
        """Off-chip traffic against the buffer's size: the optimum, the
        heuristics and the rigorous bound (the lower-bound paper's picture)."""
        from ... import plots

        if options.get("level") not in (None, problem.buffer.name):
            raise PlotUnsupported(f"--level: {options['level']!r} is not the buffer; DRAM and one buffer have only "
                                  f"{problem.buffer.name}")
        buffer = problem.buffer
        current = buffer.capacity_bits
        sizes = plots.sizes_option(options["sizes"]) if options.get("sizes") else plots.default_sizes(current)
        time_limit = options.get("time_limit") or 30.0
        advance = progress(f"sweeping {buffer.name}", len(sizes))
        rows = []
        for bits in sizes:
            parts = None if buffer.partition_bits is None else {
                t: max(1, b * bits // current) for t, b in buffer.partition_bits.items()}
            p = replace(problem, buffer=replace(buffer, capacity_bits=bits, partition_bits=parts))
            result = solve_tiling(p, "cpsat", time_limit)
            values = {}
            for heuristic in self.heuristics(p):
                mapping = heuristic.run()
                scored = self.evaluate(p, mapping) if mapping is not None else None
                values[heuristic.name] = scored.objective if scored is not None and scored.feasible else None
            bound = max(b.value for b in self.bounds(p) if b.rigorous)
            rows.append((bits, result.objective, result.status == "optimal", bound, values))
            advance()
        plots.plot_sweep(rows, list(HEURISTICS), buffer.name, "off-chip traffic (bytes)",
                         f"{problem.layer.name} on DRAM and {buffer.name}", output)
        return f"off-chip traffic against {buffer.name} size ({plots.sweep_text(rows)})"

    def bounds(self, problem: TilingProblem) -> list[Bound]:
        return [Bound(b.name, b.bytes, b.rigorous, b.meaning)
                for name, b in tiling_bounds(problem).items() if name != "rigorous"]

    def functional(self, problem: TilingProblem, solution: Mapping, seed: int = 0) -> FunctionalRun:
        layer = problem.layer
        need = 2 * 8 * (layer.input_elements + layer.weight_elements + 2 * layer.output_elements)
        too_large = too_many_macs(layer)
        if too_large:
            return FunctionalRun(False, reason=too_large)
        if need > FUNCTIONAL_MEMORY_BYTES:
            return FunctionalRun(False, reason=f"the layer's tensors need {format_bytes(need)} in the functional "
                                               f"model, more than its {format_bytes(FUNCTIONAL_MEMORY_BYTES)} limit")
        report = run_tiling(problem, solution, seed=seed)
        metrics = evaluate(problem, solution)
        diffs = [k for k, v in metrics.traffic_bits.items() if report.counted_bits[k] != v]
        reason = ""
        if not report.outputs_match:
            reason = "outputs differ from the direct convolution"
        elif diffs:
            reason = "transfer counts differ from evaluate in " + ", ".join(diffs)
        elif report.notes:
            reason = "; ".join(report.notes)
        return FunctionalRun(True, report.outputs_match and not diffs, reason, report.to_dict(), report.wall_time_s)

    def describe(self, problem: TilingProblem) -> str:
        layer = problem.layer
        hw = f"{problem.buffer.name} {format_bytes(problem.buffer.capacity_bytes)}"
        if problem.buffer.partition_bits:
            hw += " (partitioned: " + ", ".join(
                f"{t} {format_bytes(b / 8)}" for t, b in problem.buffer.partition_bits.items()) + ")"
        note = "" if not problem.buffer.partition_bits else (
            f"\nnote: every tensor keeps a tile in {problem.buffer.name}'s part for it (the two-level model); a "
            f"small part forces small tiles. To let the mapping bypass {problem.buffer.name} for a tensor instead, "
            f"add 'keep: []' to the level (the solver then keeps or bypasses each tensor)")
        return (f"[bold]{layer.name}[/] ({layer.shape_text()}) on {hw}; "
                "objective: off-chip traffic (bytes)" + note)

    def render(self, problem: TilingProblem, result, console, table) -> None:
        if result.solution is None:
            return
        layer = problem.layer
        mapping = self.solution_from_dict(problem, result.solution)
        metrics = evaluate(problem, mapping)
        shown = [d for d in LOOP_DIMS if d != "G" or layer.groups > 1]
        t = table(title="mapping", title_justify="left")
        t.add_column("")
        for d in shown + ["R", "S"]:
            t.add_column(d, justify="right")
        t.add_row("extent", *[str(layer.extent(d)) for d in shown], str(layer.R), str(layer.S))
        t.add_row("on-chip tile", *[str(mapping.tiles[d]) for d in shown], str(layer.R), str(layer.S))
        t.add_row("DRAM trips", *[str(metrics.trips[d]) for d in shown], "1", "1")
        console.print()
        console.print(t)
        order = " > ".join(d for d in mapping.order if d != "G" or layer.groups > 1)
        def loops(o):  # G is a loop only with groups
            return tuple(d for d in o if d != "G" or layer.groups > 1)

        stationary = next((STATIONARY[stationary_of(c)] for c, o in CANONICAL_ORDER.items()
                           if loops(mapping.order) == loops(o)), "no canonical stationary order")
        console.print(f"DRAM loop order (outer > inner): {order}; {stationary}")
        t = table(title="off-chip traffic", title_justify="left")
        for col in ("term", "bytes", "share"):
            t.add_column(col, justify="right" if col != "term" else "left")
        total = metrics.objective or 1
        for term, bits in metrics.traffic_bits.items():
            t.add_row(term.replace("_", " "), f"{bits / 8:,.0f}", f"{100 * bits / 8 / total:.1f}%")
        t.add_row("[bold]total[/]", f"[bold]{metrics.objective:,.0f}[/]", "100%")
        console.print()
        console.print(t)
        foot = ", ".join(f"{k} {format_bytes(b / 8)}" for k, b in metrics.footprint_bits.items())
        console.print(f"buffer footprint: {foot} = {format_bytes(sum(metrics.footprint_bits.values()) / 8)} "
                      f"of {format_bytes(problem.buffer.capacity_bytes)}")

    def presets(self, table) -> list:
        from ...hardware.presets import hardware_presets

        t = table(title="two-level hardware (tiling)", title_justify="left")
        for col in ("preset", "levels", "source"):
            t.add_column(col)
        for name, hw in hardware_presets().items():
            levels = " > ".join(lv["name"] + (f" {lv['capacity']}" if "capacity" in lv else "") for lv in hw["levels"])
            t.add_row(name, levels, hw.get("source", ""))
        return [t]

    def examples(self) -> list[str]:
        return [
            "family: tiling\nworkload: {name: tiny, dims: {M: 4, C: 4, P: 4, Q: 4, R: 3, S: 3}}\n"
            "hardware: {levels: [{name: DRAM}, {name: GLB, capacity: 256}]}\n",
            "family: tiling\nworkload: {name: fc, op: matmul, dims: {N: 2, M: 6, C: 8}}\n"
            "hardware: {levels: [{name: DRAM}, {name: GLB, capacity: 40}]}\nspace: {tiles: any}\n",
        ]

    def brute_force(self, problem: TilingProblem) -> float | None:
        outcome = enumerate_space(problem)
        return None if outcome.mapping is None else outcome.objective_bits / 8


register(TwoLevelTiling())
