"""Heuristic crossbar allocations from the PIM literature, scored by
``formulations.crossbar.evaluate``.  Each layer uses the style with the
fewest crossbars per copy among those the problem allows.

* ``no-duplication``: one copy of every layer.
* ``uniform``: the same number of copies for every layer, as many as fit.
* ``neurosim``: NeuroSim's pipeline ``speedUpDegree``, one global
  duplication degree for every layer; the largest power of two that fits.
* ``proportional``: copies proportional to the layer's output pixels
  (ISAAC, PipeLayer), scaled as far as the budget allows.
* ``greedy-bottleneck``: give the slowest stage its next useful copy count
  while the budget allows (exact for the pure min-max case with one style).
* ``genetic``: a seeded genetic algorithm over copy counts (tournament
  selection, uniform crossover, +-1 candidate mutation, repair by removing
  copies from the largest consumer).
"""

from __future__ import annotations

import numpy as np

from ..formulations.crossbar.cost import Allocation, CrossbarProblem, evaluate
from ..formulations.crossbar.exact import copy_candidates


def _styles(problem: CrossbarProblem) -> list[str]:
    return [min(problem.styles, key=lambda s: problem.crossbars_per_copy(layer, s)) for layer in problem.layers]


def _fits(problem: CrossbarProblem, allocation: Allocation) -> bool:
    return evaluate(problem, allocation).feasible


def no_duplication(problem: CrossbarProblem) -> Allocation:
    return Allocation(_styles(problem), [1] * len(problem.layers))


def uniform(problem: CrossbarProblem) -> Allocation:
    styles = _styles(problem)
    best = Allocation(styles, [1] * len(problem.layers))
    r = 2
    while True:
        trial = Allocation(styles, [min(r, layer.outputs) for layer in problem.layers])
        if not _fits(problem, trial) or trial.copies == best.copies:
            return best
        best, r = trial, r * 2 if r < 8 else r + 1


def neurosim(problem: CrossbarProblem) -> Allocation:
    styles = _styles(problem)
    best = Allocation(styles, [1] * len(problem.layers))
    degree = 2
    while degree <= 1024:
        trial = Allocation(styles, [min(degree, layer.outputs) for layer in problem.layers])
        if not _fits(problem, trial):
            break
        best, degree = trial, degree * 2
    return best


def proportional(problem: CrossbarProblem) -> Allocation:
    styles = _styles(problem)
    best = Allocation(styles, [1] * len(problem.layers))
    lo, hi = 0.0, 1.0  # copies = scale * output pixels, at least one
    for _ in range(40):
        scale = (lo + hi) / 2
        copies = [max(1, min(layer.outputs, int(scale * layer.outputs))) for layer in problem.layers]
        trial = Allocation(styles, copies)
        if _fits(problem, trial):
            best, lo = trial, scale
        else:
            hi = scale
    return best


def greedy_bottleneck(problem: CrossbarProblem) -> Allocation:
    styles = _styles(problem)
    candidates = [copy_candidates(layer).tolist() for layer in problem.layers]
    index = [0] * len(problem.layers)
    allocation = Allocation(styles, [1] * len(problem.layers))
    blocked: set[int] = set()
    while True:
        stages = evaluate(problem, allocation).stage_cycles
        open_layers = [l for l in range(len(stages)) if l not in blocked]
        if not open_layers:
            return allocation
        worst = max(open_layers, key=lambda l: stages[l])
        if stages[worst] < max(stages):
            return allocation  # the true bottleneck cannot improve
        if index[worst] + 1 >= len(candidates[worst]):
            return allocation
        trial = Allocation(styles, list(allocation.copies))
        trial.copies[worst] = candidates[worst][index[worst] + 1]
        if _fits(problem, trial):
            allocation = trial
            index[worst] += 1
        else:
            return allocation


class GenomeTable:
    """Per layer and candidate copy count: crossbars, tiles and stage
    cycles, padded into arrays, so that a genome (one candidate index per
    layer) is scored and checked with a few array operations instead of a
    full ``evaluate``.  It follows ``evaluate`` exactly (the test suite
    compares them); the allocation returned is scored by ``evaluate``."""

    def __init__(self, problem: CrossbarProblem, styles: list[str]):
        self.problem = problem
        self.candidates = [copy_candidates(layer) for layer in problem.layers]
        self.sizes = np.array([len(c) for c in self.candidates])
        width = int(self.sizes.max())
        copies = np.ones((len(self.candidates), width), dtype=np.int64)
        for l, c in enumerate(self.candidates):
            copies[l, :len(c)] = c
        per_copy = np.array([problem.crossbars_per_copy(l, s) for l, s in zip(problem.layers, styles)])
        outputs = np.array([layer.outputs for layer in problem.layers])
        self.crossbars = copies * per_copy[:, None]
        self.tiles = -(-self.crossbars // problem.chip.crossbars_per_tile)
        self.cycles = problem.chip.cycles_per_mvm * -(-outputs[:, None] // copies)
        layer_bits = np.array([problem.input_bits(l, s) for l, s in zip(problem.layers, styles)])
        bits = int(layer_bits.sum())
        # a stage's time for the latency: at least its own input bits through the buffer (CrossbarProblem.stage_time)
        own = -(-layer_bits // problem.chip.bandwidth_bits_per_cycle) if problem.bandwidth else np.zeros_like(layer_bits)
        self.times = np.maximum(self.cycles, own[:, None])
        self.bandwidth = -(-bits // problem.chip.bandwidth_bits_per_cycle) if problem.bandwidth else 0
        self.energy = sum(problem.energy_pj(l, s) for l, s in zip(problem.layers, styles))
        self.rows = np.arange(len(self.candidates))

    def used(self, genome: np.ndarray) -> np.ndarray:
        return self.crossbars[self.rows, genome]

    def fits(self, genome: np.ndarray) -> bool:
        p = self.problem
        if self.used(genome).sum() > p.crossbar_budget:
            return False
        return not p.one_layer_per_tile or self.tiles[self.rows, genome].sum() <= p.chip.tiles

    def score(self, genome: np.ndarray) -> float:
        if not self.fits(genome):
            return float("inf")
        stages = self.cycles[self.rows, genome]
        objective = self.problem.objective
        if objective == "bottleneck":
            return float(max(stages.max(), self.bandwidth))
        return float(self.times[self.rows, genome].sum()) if objective == "latency" else self.energy


def genetic(problem: CrossbarProblem, population: int = 40, generations: int = 60, seed: int = 0) -> Allocation:
    rng = np.random.default_rng(seed)
    styles = _styles(problem)
    table = GenomeTable(problem, styles)
    sizes = table.sizes

    def decode(genome: np.ndarray) -> Allocation:
        return Allocation(styles, [int(table.candidates[l][g]) for l, g in enumerate(genome)])

    def repair(genome: np.ndarray) -> np.ndarray:
        genome = genome.copy()
        while not table.fits(genome) and genome.any():
            used = table.used(genome).copy()
            used[genome == 0] = -1
            genome[int(np.argmax(used))] -= 1
        return genome

    pop = [repair(rng.integers(0, sizes)) for _ in range(population)]
    pop[0] = np.zeros(len(sizes), dtype=np.int64)
    scores = [table.score(g) for g in pop]
    for _ in range(generations):
        children = []
        for _ in range(population):
            a, b = (min(rng.choice(population, 3, replace=False), key=lambda i: scores[i]) for _ in range(2))
            mask = rng.random(len(sizes)) < 0.5
            child = np.where(mask, pop[a], pop[b])
            flip = rng.random(len(sizes)) < 1.0 / len(sizes)
            child = np.clip(child + flip * rng.choice([-1, 1], len(sizes)), 0, sizes - 1)
            children.append(repair(child))
        merged = pop + children
        merged_scores = scores + [table.score(g) for g in children]
        keep = np.argsort(merged_scores, kind="stable")[:population]
        pop, scores = [merged[i] for i in keep], [merged_scores[i] for i in keep]
    return decode(pop[0])


CROSSBAR_HEURISTICS = {
    "no-duplication": no_duplication,
    "uniform": uniform,
    "neurosim": neurosim,
    "proportional": proportional,
    "greedy-bottleneck": greedy_bottleneck,
    "genetic": genetic,
}
