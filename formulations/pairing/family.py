"""Complementary filter pairing for SRAM PIM (DDC-PIM), as a registered
family.

The problem and the one cost model live in ``cost.py``, the exact models in
``exact.py``, the bounds in ``bounds.py``, the schema in ``schema.py``;
heuristics in ``solvers/pairing_heuristics.py``; the blossom reference in
``validation/matching_check.py``; the SRAM macro model in
``hardware/functional/sram_pim.py``.  This module connects them to the
family contract (``formulations/family.py``).
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...hardware.functional.sram_pim import read_back, run_macro
from ...solvers.pairing_heuristics import PAIRING_HEURISTICS
from ...validation.matching_check import blossom_pairing
from ..family import Attempt, Bound, Evaluation, ExactMethod, Family, FunctionalRun, Heuristic, Status
from ..registry import register
from ...validation.pairing_bounds import pairing_bounds
from .cost import Pairing, PairingProblem, evaluate
from .exact import solve_pairing
from .schema import build_pairing, dump_pairing

BLOSSOM_LIMIT = 400
"""Filters above which the pure-Python blossom reference is not run (it
takes about a minute at 600 filters)."""
FUNCTIONAL_VECTORS = 8
"""Random input vectors the SRAM macro model multiplies."""
BRUTE_FORCE_LIMIT = 14
"""Filters :meth:`PairingFamily.brute_force` pairs at most (2^14 subsets)."""


def _attempt(problem: PairingProblem, method: str, time_limit: float | None) -> Attempt:
    limit = problem.solver.time_limit if time_limit is None else time_limit
    r = solve_pairing(problem, method, limit)
    details = {"edges_kept": r.edges_kept, "edges_total": r.edges_total, "lp_bound": r.lp_bound,
               "greedy_cost": r.details.get("greedy_cost"), "solver_status": r.details.get("solver_status", "")}
    return Attempt(Status(r.status), r.pairing, r.objective, r.best_bound, r.wall_time_s, r.message, r.method, details)


def _blossom(problem: PairingProblem, time_limit: float | None) -> Attempt:
    start = time.perf_counter()
    pairing, cost = blossom_pairing(problem)
    return Attempt(Status.OPTIMAL, pairing, cost, float(cost), time.perf_counter() - start,
                   "Edmonds' blossom (networkx min_weight_matching)", "blossom")


def blossom_refusal(problem: PairingProblem) -> str | None:
    """Why the blossom reference is not run on ``problem`` (None: it is)."""
    if problem.filters > BLOSSOM_LIMIT:
        return (f"pure-Python blossom takes minutes above {BLOSSOM_LIMIT} filters; this layer has "
                f"{problem.filters}")
    return None


def space_violation(problem: PairingProblem, pairing: Pairing) -> str | None:
    """Why ``pairing`` is not a perfect matching of the filters (None: it is)."""
    extra = len(pairing.unpaired) - problem.filters % 2
    if extra > 0:
        return (f"{len(pairing.unpaired)} filters left unpaired; a pairing pairs every filter "
                f"(but one of an odd count)")
    return None


class PairingFamily(Family):
    """Which filters share a row of 6T cells (one in Q, the other read from
    Q-bar) with the least total squared change of the weights."""

    name = "pairing"
    second_opinion = True
    key = "pairing"
    summary = "complementary filter pairs for SRAM PIM (DDC-PIM) with least weight distortion"
    infeasible_field = ("workload",)

    # -- instances ---------------------------------------------------------

    def build(self, data: dict, where, label: str, base: Path):
        return build_pairing(data, where, label, base)

    def dump(self, problem: PairingProblem) -> dict:
        return dump_pairing(problem)

    def editable_dump(self, problem: PairingProblem) -> dict:
        """Generated weights follow the seed, spread and weight bits: an edit of
        any of them makes other weights, which their checksum would refuse."""
        document = dump_pairing(problem)
        weights = document.get("weights")
        if isinstance(weights, dict) and "generate" in weights:
            weights.pop("sha256", None)
        return document

    def owns(self, problem) -> bool:
        return isinstance(problem, PairingProblem)

    def time_limit(self, problem: PairingProblem) -> float:
        return problem.solver.time_limit

    # -- the one cost model -----------------------------------------------

    def objective_name(self, problem) -> str:
        return "distortion"

    def unit(self, problem) -> str:
        return "LSB^2"

    def space(self, problem: PairingProblem) -> str:
        odd = ", one filter alone" if problem.filters % 2 else ""
        return (f"perfect matchings of the {problem.filters} filters{odd}; each pair stores its least-distortion "
                f"{problem.bits}-bit word u in Q and reads -u - 1 from Q-bar")

    def evaluate(self, problem: PairingProblem, solution: Pairing) -> Evaluation:
        try:
            metrics = evaluate(problem, solution)
        except ValueError as exc:
            return Evaluation(None, False, {}, [str(exc)])
        outside = space_violation(problem, solution)
        if outside is not None:
            return Evaluation(None, False, metrics.to_dict(), [outside])
        return Evaluation(float(metrics.distortion), True, metrics.to_dict(), [])

    def solution_to_dict(self, problem: PairingProblem, solution: Pairing) -> dict:
        return {"pairs": [[int(i), int(j)] for i, j in solution.pairs], "unpaired": [int(i) for i in solution.unpaired]}

    def solution_from_dict(self, problem: PairingProblem, data) -> Pairing:
        if not isinstance(data, dict) or set(data) != {"pairs", "unpaired"}:
            said = ""
            if isinstance(data, dict):
                missing = sorted({"pairs", "unpaired"} - set(data))
                extra = sorted(str(k) for k in set(data) - {"pairs", "unpaired"})
                said = "; " + "; ".join(([f"missing {', '.join(missing)} (give unpaired: [] when every filter is "
                                          f"paired)"] if missing else [])
                                        + ([f"unknown {', '.join(extra)}"] if extra else []))
            raise ValueError("a pairing is {pairs: [[i, j], ...], unpaired: [k, ...]}" + said)
        pairs, unpaired = data["pairs"], data["unpaired"]
        if not isinstance(pairs, list) or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in pairs):
            raise ValueError("pairs must be a list of [i, j]")
        if not isinstance(unpaired, list):
            raise ValueError("unpaired must be a list of filter indices")
        f = problem.filters
        flat = [i for p in pairs for i in p] + list(unpaired)
        bad = [i for i in flat if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < f]
        if bad:
            raise ValueError(f"filter index {bad[0]!r} outside 0..{f - 1}")
        if sorted(flat) != list(range(f)):
            raise ValueError(f"a pairing uses each of the {f} filters exactly once")
        pairing = Pairing([(int(i), int(j)) for i, j in pairs], [int(i) for i in unpaired])
        outside = space_violation(problem, pairing)
        if outside is not None:
            raise ValueError(outside)
        return pairing

    # -- methods ------------------------------------------------------------

    def methods(self, problem) -> list[ExactMethod]:
        return [
            ExactMethod("milp", lambda p, t: _attempt(p, "milp", t),
                        summary="MILP (pyomo + HiGHS) on the edges LP reduced-cost fixing keeps"),
            ExactMethod("cpsat", lambda p, t: _attempt(p, "cpsat", t),
                        summary="CP-SAT on the same edges, objective in reduced-cost form"),
            ExactMethod("blossom", _blossom, why_not=blossom_refusal, solves=False,
                        summary="Edmonds' blossom (networkx), an independent reference"),
        ]

    def default_method(self, problem: PairingProblem) -> str:
        return problem.solver.method

    def heuristics(self, problem: PairingProblem) -> list[Heuristic]:
        return [Heuristic(name, (lambda fn=fn: fn(problem))) for name, fn in PAIRING_HEURISTICS.items()]

    # -- certificate --------------------------------------------------------

    def bounds(self, problem: PairingProblem) -> list[Bound]:
        return [Bound(b.name, b.value, True, b.meaning) for b in pairing_bounds(problem)]

    def functional(self, problem: PairingProblem, solution: Pairing, seed: int = 0) -> FunctionalRun:
        start = time.perf_counter()
        metrics = evaluate(problem, solution)
        chip_bits = problem.chip.input_bits if problem.chip is not None else 8
        rng = np.random.default_rng(seed)
        inputs = rng.integers(0, 2 ** chip_bits, size=(FUNCTIONAL_VECTORS, problem.positions))
        _, macro = run_macro(problem, solution, inputs)
        held = read_back(problem, solution)
        distortion = int(((held - problem.weights) ** 2).sum())
        failures = []
        if not macro.outputs_match:
            failures.append("the macro's outputs differ from the inputs times the paired weights")
        if distortion != metrics.distortion:
            failures.append(f"the weights read back from the cells are {distortion:,} from the originals; "
                            f"evaluate says {metrics.distortion:,}")
        if macro.rows != metrics.rows:
            failures.append(f"the macro stores {macro.rows} rows; evaluate says {metrics.rows}")
        counts = {**macro.to_dict(), "vectors": FUNCTIONAL_VECTORS, "distortion_read_back": distortion}
        reason = "; ".join(failures) if failures else (
            f"{macro.rows} stored filters hold {problem.filters} filter{'s' if problem.filters != 1 else ''}; both "
            f"filters of every pair computed from one stored word")
        return FunctionalRun(True, not failures, reason, counts, time.perf_counter() - start)

    # -- presentation ---------------------------------------------------------

    def describe(self, problem: PairingProblem) -> str:
        chip = problem.chip
        where = f" on {chip.name} ({chip.rows}x{chip.columns})" if chip is not None else ""
        origin = (f"generated (seed {problem.generated[0]})" if problem.generated is not None else "given")
        groups = problem.layer.groups if problem.layer is not None else 1
        note = (f"\nnote: groups = {groups}: pairs may join filters of different groups, which read different "
                "input channels; to keep each pair within a group, solve each group as a layer of its own "
                "(docs/pairing.md)" if groups > 1 else "")
        return (f"[bold]{problem.name}[/]: {problem.filters} filters x {problem.positions} weights, "
                f"{problem.bits}-bit, weights {origin}{where}; objective: distortion (sum of squared weight changes)"
                + note)

    def render(self, problem: PairingProblem, result, console, table) -> None:
        if result.solution is None:
            return
        pairing = self.solution_from_dict(problem, result.solution)
        metrics = evaluate(problem, pairing)
        details = result.details or {}
        console.print()
        console.print(f"distortion {metrics.distortion:,} (sum of squared weight changes)"
                      + (f"; {details['edges_kept']:,} of {details['edges_total']:,} pairs kept after LP "
                         f"reduced-cost fixing" if "edges_kept" in details else ""))
        console.print(f"{metrics.pairs:,} pairs, {len(pairing.unpaired):,} unpaired: {metrics.rows:,} stored filters "
                      f"instead of {metrics.rows_unpaired:,} ({metrics.density_gain:.2f}x weight density)")
        if metrics.arrays is not None:
            console.print(f"arrays of {problem.chip.name} ({problem.chip.rows}x{problem.chip.columns}): "
                          f"{metrics.arrays_unpaired:,} without pairing, {metrics.arrays:,} with pairing")
        console.print(f"without pairing (the baseline): distortion 0, {metrics.rows_unpaired:,} stored filters")
        shown = ", ".join(f"{i}+{j}" for i, j in pairing.pairs[:12])
        console.print(f"pairs: {shown}{', ...' if len(pairing.pairs) > 12 else ''}")

    # -- tests ----------------------------------------------------------------

    def examples(self) -> list[str]:
        chip = "hardware: {preset: ddc-sram, rows: 16, columns: 64}\n"
        return [
            "family: pairing\nworkload: {name: tiny, dims: {M: 6, C: 3}}\n" + chip
            + "weights: {values: [[3, -4, 0], [-4, 3, 1], [100, -7, 12], [-100, 6, -13], [5, 5, 5], [-6, -6, -5]]}\n",
            "family: pairing\nworkload: {name: odd, dims: {M: 7, C: 2, R: 2}}\n" + chip
            + "weights: {generate: {seed: 3}}\nsolver: {method: cpsat}\n",
            "family: pairing\nworkload: {name: four-bit, dims: {M: 8, C: 4}}\n"
            "hardware: {preset: ddc-sram, weight_bits: 4}\nweights: {generate: {seed: 1, std: 1.0}}\n",
        ]

    def brute_force(self, problem: PairingProblem) -> float | None:
        """Every perfect matching (one filter alone for an odd count), each
        pair's distortion found by trying every stored word u."""
        f = problem.filters
        if f > BRUTE_FORCE_LIMIT:
            raise NotImplementedError(f"{f} filters; exhaustive search pairs at most {BRUTE_FORCE_LIMIT}")
        lo, hi = -(2 ** (problem.bits - 1)), 2 ** (problem.bits - 1)
        u = np.arange(lo, hi)[:, None]
        w = problem.weights
        cost = np.zeros((f, f), dtype=np.int64)
        for i in range(f):
            for j in range(f):
                if i != j:
                    cost[i, j] = int(((w[i] - u) ** 2 + (w[j] + u + 1) ** 2).min(axis=0).sum())

        @lru_cache(maxsize=None)
        def best(left: frozenset) -> int:
            if len(left) < 2:
                return 0
            first = min(left)
            rest = left - {first}
            options = [cost[first, other] + best(rest - {other}) for other in rest]
            if len(left) % 2:
                options.append(best(rest))  # the one filter of an odd count left alone
            return int(min(options))

        return float(best(frozenset(range(f))))


register(PairingFamily())
