"""A toy family, 0/1 knapsack as a minimization: the proof that adding a
family is one module and one ``register`` call.

The problem: choose items to *leave out* of a bag so that the rest fits the
capacity, minimizing the value left out (equivalently, maximizing the value
packed).  One exact method (CP-SAT), one heuristic (greedy by value
density), a rigorous bound (the fractional relaxation), and a "functional
model" that packs the bag item by item and counts its weight.  Nothing in
mapcert's CLI or API knows this module; tests/test_family_contract.py
registers it and runs the same suite as for the built-in families.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

from ortools.sat.python import cp_model
from pydantic import Field

from mapcert.formulations.family import (Attempt, Bound, Evaluation, ExactMethod, Family, FunctionalRun, Heuristic,
                                         Status)
from mapcert.formulations.registry import register
from mapcert.instances import Strict, validate_spec


class ItemSpec(Strict):
    name: str
    weight: int = Field(ge=1, le=10**6)
    value: int = Field(ge=0, le=10**6)


class KnapsackSpec(Strict):
    family: str
    name: str = "bag"
    capacity: int = Field(ge=0, le=10**9)
    items: list[ItemSpec] = Field(min_length=1, max_length=200)


@dataclass(frozen=True)
class Knapsack:
    name: str
    capacity: int
    items: tuple[ItemSpec, ...]


def _cpsat(problem: Knapsack, time_limit: float | None) -> Attempt:
    start = time.perf_counter()
    model = cp_model.CpModel()
    leave = [model.NewBoolVar(item.name) for item in problem.items]
    model.Add(sum(item.weight * (1 - x) for item, x in zip(problem.items, leave)) <= problem.capacity)
    model.Minimize(sum(item.value * x for item, x in zip(problem.items, leave)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit or 10.0
    solver.parameters.num_workers = 1
    code = solver.Solve(model)
    wall = time.perf_counter() - start
    if code == cp_model.INFEASIBLE:
        return Attempt(Status.INFEASIBLE, wall_time_s=wall, message="nothing fits")
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Attempt(Status.ERROR, wall_time_s=wall, message="no solution in time")
    out = frozenset(item.name for item, x in zip(problem.items, leave) if solver.Value(x))
    status = Status.OPTIMAL if code == cp_model.OPTIMAL else Status.FEASIBLE
    return Attempt(status, out, solver.ObjectiveValue(), solver.BestObjectiveBound(), wall)


def _greedy(problem: Knapsack) -> frozenset:
    packed, weight = [], 0
    for item in sorted(problem.items, key=lambda i: -i.value / i.weight):
        if weight + item.weight <= problem.capacity:
            packed.append(item.name)
            weight += item.weight
    return frozenset(i.name for i in problem.items) - frozenset(packed)


class KnapsackFamily(Family):
    """0/1 knapsack (value left out, minimized)."""

    name = "knapsack"
    summary = "toy family of the contract tests: 0/1 knapsack"

    def build(self, data: dict, where, label: str, base: Path):
        spec = validate_spec(KnapsackSpec, data, where, (), "a knapsack instance")
        if spec is None:
            return None
        names = [i.name for i in spec.items]
        if len(set(names)) != len(names):
            where.add(("items",), "item names must be distinct")
            return None
        return Knapsack(spec.name, spec.capacity, tuple(spec.items))

    def dump(self, problem: Knapsack) -> dict:
        return {"family": "knapsack", "name": problem.name, "capacity": problem.capacity,
                "items": [i.model_dump() for i in problem.items]}

    def owns(self, problem) -> bool:
        return isinstance(problem, Knapsack)

    def objective_name(self, problem) -> str:
        return "value_left_out"

    def unit(self, problem) -> str:
        return "value"

    def space(self, problem) -> str:
        return "every subset of the items"

    def evaluate(self, problem: Knapsack, solution: frozenset) -> Evaluation:
        weight = sum(i.weight for i in problem.items if i.name not in solution)
        left = sum(i.value for i in problem.items if i.name in solution)
        fits = weight <= problem.capacity
        return Evaluation(float(left) if fits else None, fits, {"packed_weight": weight, "value_left_out": left},
                          [] if fits else [f"packed weight {weight} exceeds the capacity {problem.capacity}"])

    def solution_to_dict(self, problem, solution: frozenset) -> dict:
        return {"left_out": sorted(solution)}

    def solution_from_dict(self, problem: Knapsack, data) -> frozenset:
        if not isinstance(data, dict) or not isinstance(data.get("left_out"), list):
            raise ValueError("a knapsack solution is {left_out: [item names]}")
        names = {i.name for i in problem.items}
        unknown = [n for n in data["left_out"] if n not in names]
        if unknown:
            raise ValueError(f"unknown item(s) {unknown}")
        return frozenset(data["left_out"])

    def methods(self, problem) -> list[ExactMethod]:
        return [ExactMethod("cpsat", _cpsat, summary="CP-SAT")]

    def heuristics(self, problem) -> list[Heuristic]:
        return [Heuristic("greedy", lambda: _greedy(problem), summary="by value density")]

    def bounds(self, problem: Knapsack) -> list[Bound]:
        # the fractional knapsack packs at least as much value as any 0/1 packing
        packed, room = 0.0, problem.capacity
        for item in sorted(problem.items, key=lambda i: -i.value / i.weight):
            take = min(1.0, room / item.weight)
            packed += take * item.value
            room -= take * item.weight
            if room <= 0:
                break
        total = sum(i.value for i in problem.items)
        return [Bound("fractional", max(0.0, total - packed), True, "total value minus the fractional packing")]

    def functional(self, problem: Knapsack, solution: frozenset, seed: int = 0) -> FunctionalRun:
        start = time.perf_counter()
        bag = []
        for item in problem.items:
            if item.name not in solution:
                bag.append(item.weight)
        counted = sum(bag)
        expected = self.evaluate(problem, solution).metrics["packed_weight"]
        return FunctionalRun(True, counted == expected and counted <= problem.capacity, "",
                             {"packed_weight": counted}, time.perf_counter() - start)

    def examples(self) -> list[str]:
        return [
            "family: knapsack\ncapacity: 10\nitems:\n"
            "  - {name: a, weight: 5, value: 10}\n  - {name: b, weight: 4, value: 40}\n"
            "  - {name: c, weight: 6, value: 30}\n  - {name: d, weight: 3, value: 50}\n",
        ]

    def brute_force(self, problem: Knapsack) -> float | None:
        best = None
        names = [i.name for i in problem.items]
        for r in range(len(names) + 1):
            for out in itertools.combinations(names, r):
                e = self.evaluate(problem, frozenset(out))
                if e.feasible and (best is None or e.objective < best):
                    best = e.objective
        return best


FAMILY = register(KnapsackFamily())
