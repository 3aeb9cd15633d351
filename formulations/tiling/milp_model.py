"""Exact MILP (pyomo) of one stationary class.

Each loop dimension d picks one candidate tile through binaries x[d, k].  A
product of per-dimension quantities (traffic and footprint terms multiply up
to five of them) is made linear exactly in one of two ways, documented in
docs/tiling-milp.md:

* **combination variables** when the dimensions involved have few joint
  candidates: one variable z per combination, tied to the binaries by the
  marginal equalities sum_{combos with k_d = k} z = x[d, k].  With the
  binaries integral these force z to the indicator of the chosen combination,
  so z may stay continuous in [0, 1].
* **a product chain** otherwise: y_1 = v_1(x), and y_i = sum_k v_i[k] w_ik with
  w_ik = x[d_i, k] * y_{i-1} written exactly as
  0 <= w_ik <= U x[d_i, k], sum_k w_ik = y_{i-1}.

No logarithms, no surrogate: the MILP optimum is the true traffic optimum of
the class.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import prod

import numpy as np
import pyomo.environ as pyo

from .problem import LOOP_DIMS, TENSORS, TilingProblem
from .space import DimTable
from .terms import class_terms

COMBINATION_LIMIT = 20000
"""Largest number of joint candidates linearized by combination variables."""


@dataclass
class MilpTilingModel:
    model: pyo.ConcreteModel
    tables: dict[str, DimTable]
    stationary: str
    unit: int


class _ProductBuilder:
    """Adds exact linearizations of products of per-dimension values."""

    def __init__(self, model: pyo.ConcreteModel, tables: dict[str, DimTable], strategy: str = "auto"):
        self.m = model
        self.tables = tables
        self.strategy = strategy
        self.count = 0

    def x(self, d: str, k: int):
        return self.m.x[d, k] if len(self.tables[d]) > 1 else 1

    def linear(self, d: str, values: np.ndarray):
        if len(self.tables[d]) == 1:
            return float(values[0])
        return sum(float(v) * self.m.x[d, k] for k, v in enumerate(values))

    def product(self, factors: list[tuple[str, np.ndarray]]):
        """Expression equal to prod_d values_d[k_d] over ``factors``."""
        constant = 1.0
        varying = []
        for d, values in factors:
            if len(self.tables[d]) == 1:
                constant *= float(values[0])
            else:
                varying.append((d, np.asarray(values, dtype=float)))
        if not varying:
            return constant
        if len(varying) == 1:
            d, values = varying[0]
            return constant * self.linear(d, values)
        joint = prod(len(v) for _, v in varying)
        use_combos = self.strategy == "combinations" or (
            self.strategy == "auto" and joint <= COMBINATION_LIMIT
        )
        self.count += 1
        if use_combos:
            return constant * self._combinations(varying)
        return constant * self._chain(varying)

    def _combinations(self, varying):
        block = pyo.Block()
        self.m.add_component(f"prod{self.count}", block)
        ranges = [range(len(v)) for _, v in varying]
        combos = list(itertools.product(*ranges))
        block.z = pyo.Var(range(len(combos)), bounds=(0, 1))
        block.marginal = pyo.ConstraintList()
        for i, (d, values) in enumerate(varying):
            groups: dict[int, list[int]] = {}
            for c, combo in enumerate(combos):
                groups.setdefault(combo[i], []).append(c)
            for k, members in groups.items():
                block.marginal.add(sum(block.z[c] for c in members) == self.m.x[d, k])
        coeff = [prod(float(values[combo[i]]) for i, (_, values) in enumerate(varying)) for combo in combos]
        return sum(coeff[c] * block.z[c] for c in range(len(combos)))

    def _chain(self, varying):
        block = pyo.Block()
        self.m.add_component(f"chain{self.count}", block)
        d0, v0 = varying[0]
        current = self.linear(d0, v0)
        upper = float(v0.max())
        block.links = pyo.ConstraintList()
        for step, (d, values) in enumerate(varying[1:]):
            w = pyo.Var(range(len(values)), bounds=(0, upper))
            block.add_component(f"w{step}", w)
            for k in range(len(values)):
                block.links.add(w[k] <= upper * self.m.x[d, k])
            block.links.add(sum(w[k] for k in range(len(values))) == current)
            current = sum(float(values[k]) * w[k] for k in range(len(values)))
            upper *= float(values.max())
        return current


def build_milp(
    problem: TilingProblem, tables: dict[str, DimTable], stationary: str, strategy: str = "auto"
) -> MilpTilingModel:
    layer = problem.layer
    prec = layer.precision
    m = pyo.ConcreteModel(name=f"tiling_{stationary}")
    index = [(d, k) for d in LOOP_DIMS if len(tables[d]) > 1 for k in range(len(tables[d]))]
    m.x = pyo.Var(index, domain=pyo.Binary)
    # a variable fixed at zero keeps every expression a pyomo expression even
    # when all dimensions have a single candidate (constant constraints)
    m.zero = pyo.Var(bounds=(0, 0))
    m.one_tile = pyo.ConstraintList()
    for d in LOOP_DIMS:
        if len(tables[d]) > 1:
            m.one_tile.add(sum(m.x[d, k] for k in range(len(tables[d]))) == 1)
    pb = _ProductBuilder(m, tables, strategy)
    t = {d: tables[d].tiles for d in LOOP_DIMS}
    f = {d: tables[d].input_extent for d in LOOP_DIMS}
    n = {d: tables[d].trips for d in LOOP_DIMS}
    a = {d: tables[d].swept for d in LOOP_DIMS}

    bits = {
        "inputs": prec.inputs * pb.product([("N", t["N"]), ("G", t["G"]), ("C", t["C"]), ("P", f["P"]), ("Q", f["Q"])]),
        "weights": prec.weights * layer.R * layer.S * pb.product([("G", t["G"]), ("M", t["M"]), ("C", t["C"])]),
        "outputs": prec.psums * pb.product([("N", t["N"]), ("G", t["G"]), ("M", t["M"]), ("P", t["P"]), ("Q", t["Q"])]),
    }
    m.capacity = pyo.ConstraintList()
    partition = problem.buffer.partition_bits
    if partition is None:
        m.capacity.add(m.zero + sum(bits.values()) <= problem.buffer.capacity_bits)
    else:
        for tensor in TENSORS:
            m.capacity.add(m.zero + bits[tensor] <= partition[tensor])

    terms = class_terms(layer)
    in_factors = [("P", a["P"]), ("Q", a["Q"])] + ([] if stationary == "inputs" else [("M", n["M"])])
    objective = terms.outputs + terms.inputs * pb.product(in_factors)
    if stationary == "weights":
        objective += terms.weights
    else:
        objective += terms.weights * pb.product([("N", n["N"]), ("P", n["P"]), ("Q", n["Q"])])
    if stationary != "outputs":
        objective += terms.psums * (pb.linear("C", n["C"]) - 1)
    m.objective = pyo.Objective(expr=m.zero + objective, sense=pyo.minimize)
    return MilpTilingModel(m, tables, stationary, terms.unit)


def read_choice(handle: MilpTilingModel):
    """Callable for solvers.highs: the chosen candidate index per dim."""

    def read(model: pyo.ConcreteModel) -> dict[str, int]:
        chosen = {}
        for d in LOOP_DIMS:
            size = len(handle.tables[d])
            if size == 1:
                chosen[d] = 0
            else:
                chosen[d] = max(range(size), key=lambda k: pyo.value(model.x[d, k]) or 0.0)
        return chosen

    return read
