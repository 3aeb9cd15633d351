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

from .cost import fits, footprint_bits
from .problem import LOOP_DIMS, TENSORS, TilingProblem
from .space import DimTable, halo_axis_of, stationary_of
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
    """Adds exact linearizations of products of per-dimension values.

    Products are expressed over three *joint blocks*, one per tensor tile
    (outputs: N G M P Q, inputs: N G C P Q, weights: G M C).  Every product
    term of the model involves dims of one block, so terms that share dims
    share variables, and blocks that share two or more dims are tied by the
    marginals of their shared combinations.  Both make the LP relaxation
    much tighter than one independent linearization per term.
    """

    BLOCKS = {
        "outputs": ("N", "G", "M", "P", "Q"),
        "inputs": ("N", "G", "C", "P", "Q"),
        "weights": ("G", "M", "C"),
    }

    def __init__(self, model: pyo.ConcreteModel, tables: dict[str, DimTable], strategy: str = "auto",
                 problem: TilingProblem | None = None):
        self.m = model
        self.tables = tables
        self.strategy = strategy
        self.problem = problem
        self.count = 0
        self.blocks: dict[str, tuple[tuple[str, ...], np.ndarray, object] | None] = {}
        for name, dims in self.BLOCKS.items():
            varying = tuple(d for d in dims if len(tables[d]) > 1)
            joint = prod(len(tables[d]) for d in varying)
            use = len(varying) >= 2 and (
                strategy == "combinations" or (strategy == "auto" and joint <= COMBINATION_LIMIT)
            )
            self.blocks[name] = self._joint_block(name, varying) if use else None
        self._tie_blocks()

    def _joint_block(self, name: str, varying: tuple[str, ...]):
        combos = np.array(list(itertools.product(*(range(len(self.tables[d])) for d in varying))), dtype=np.int64)
        if self.problem is not None:
            combos = combos[self._could_fit(varying, combos)]
        block = pyo.Block()
        self.m.add_component(f"joint_{name}", block)
        block.z = pyo.Var(range(len(combos)), bounds=(0, 1))
        block.marginal = pyo.ConstraintList()
        for i, d in enumerate(varying):
            for k in range(len(self.tables[d])):
                members = np.flatnonzero(combos[:, i] == k)
                block.marginal.add(self.m.zero + sum(block.z[int(c)] for c in members) == self.m.x[d, k])
        return varying, combos, block

    def _could_fit(self, varying: tuple[str, ...], combos: np.ndarray) -> np.ndarray:
        """Combinations that fit the buffer when every other dimension takes
        its smallest candidate.  Footprints only grow with tile sizes, so a
        combination failing this is in no feasible mapping; leaving it out
        is exact and removes most fractional mixtures from the relaxation."""
        tiles = {}
        for d in LOOP_DIMS:
            table = self.tables[d].tiles
            tiles[d] = table[combos[:, varying.index(d)]] if d in varying else np.int64(table.min())
        return np.asarray(fits(self.problem, footprint_bits(self.problem.layer, tiles)), dtype=bool)

    def _tie_blocks(self) -> None:
        """Equal marginals over the joint choices of dims two blocks share."""
        self.m.ties = pyo.ConstraintList()
        names = [n for n, b in self.blocks.items() if b is not None]
        for a, b in itertools.combinations(names, 2):
            dims_a, combos_a, block_a = self.blocks[a]
            dims_b, combos_b, block_b = self.blocks[b]
            shared = [d for d in dims_a if d in dims_b]
            if len(shared) < 2:
                continue
            ia = [dims_a.index(d) for d in shared]
            ib = [dims_b.index(d) for d in shared]
            groups_a: dict[tuple, list[int]] = {}
            groups_b: dict[tuple, list[int]] = {}
            for c, row in enumerate(combos_a[:, ia].tolist()):
                groups_a.setdefault(tuple(row), []).append(c)
            for c, row in enumerate(combos_b[:, ib].tolist()):
                groups_b.setdefault(tuple(row), []).append(c)
            for key in set(groups_a) | set(groups_b):
                self.m.ties.add(self.m.zero + sum(block_a.z[c] for c in groups_a.get(key, []))
                                == sum(block_b.z[c] for c in groups_b.get(key, [])))

    def linear(self, d: str, values: np.ndarray):
        if len(self.tables[d]) == 1:
            return float(values[0])
        return sum(float(v) * self.m.x[d, k] for k, v in enumerate(values))

    def product(self, factors: list[tuple[str, np.ndarray]], block: str):
        """Expression equal to prod_d values_d[k_d] over ``factors``, all of
        whose dims belong to joint block ``block``."""
        constant = 1.0
        varying = []
        for d, values in factors:
            assert d in self.BLOCKS[block], (d, block)
            if len(self.tables[d]) == 1:
                constant *= float(values[0])
            else:
                varying.append((d, np.asarray(values, dtype=float)))
        if not varying:
            return constant
        if len(varying) == 1:
            d, values = varying[0]
            return constant * self.linear(d, values)
        joint = self.blocks[block]
        if joint is None:
            return constant * self._chain(varying)
        dims, combos, var_block = joint
        coeff = np.ones(len(combos))
        for d, values in varying:
            coeff *= values[combos[:, dims.index(d)]]
        return constant * sum(float(coeff[c]) * var_block.z[c] for c in range(len(combos)))

    def _chain(self, varying):
        self.count += 1
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
    problem: TilingProblem, tables: dict[str, DimTable], order_class: str, strategy: str = "auto"
) -> MilpTilingModel:
    """The model of one order class (``space.order_classes``)."""
    layer = problem.layer
    stationary, halo = stationary_of(order_class), halo_axis_of(order_class)
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
    t = {d: tables[d].tiles for d in LOOP_DIMS}
    f = {d: tables[d].input_extent for d in LOOP_DIMS}
    n = {d: tables[d].trips for d in LOOP_DIMS}
    a = {d: tables[d].swept for d in LOOP_DIMS}
    if halo is not None:  # a sweep along the innermost input loop reads what each tile's predecessor lacks
        a[halo] = tables[halo].halo
    tile_factors = {
        "inputs": [("N", t["N"]), ("G", t["G"]), ("C", t["C"]), ("P", f["P"]), ("Q", f["Q"])],
        "weights": [("G", t["G"]), ("M", t["M"]), ("C", t["C"])],
        "outputs": [("N", t["N"]), ("G", t["G"]), ("M", t["M"]), ("P", t["P"]), ("Q", t["Q"])],
    }
    pb = _ProductBuilder(m, tables, strategy, problem=problem)

    bits = {tensor: _bits_per_element(problem, tensor) * pb.product(tile_factors[tensor], tensor)
            for tensor in TENSORS}
    m.capacity = pyo.ConstraintList()
    partition = problem.buffer.partition_bits
    if partition is None:
        m.capacity.add(m.zero + sum(bits.values()) <= problem.buffer.capacity_bits)
    else:
        for tensor in TENSORS:
            m.capacity.add(m.zero + bits[tensor] <= partition[tensor])

    terms = class_terms(layer)
    in_factors = [("P", a["P"]), ("Q", a["Q"])] + ([] if stationary == "inputs" else [("M", n["M"])])
    objective = terms.outputs + terms.inputs * pb.product(in_factors, "outputs")
    if stationary == "weights":
        objective += terms.weights
    else:
        objective += terms.weights * pb.product([("N", n["N"]), ("P", n["P"]), ("Q", n["Q"])], "outputs")
    if stationary != "outputs":
        objective += terms.psums * (pb.linear("C", n["C"]) - 1)
    m.objective = pyo.Objective(expr=m.zero + objective, sense=pyo.minimize)
    return MilpTilingModel(m, tables, order_class, terms.unit)


def _bits_per_element(problem: TilingProblem, tensor: str) -> int:
    """Bits one element of ``tensor``'s tile occupies, counting the R x S
    filter window into each weight element."""
    prec = problem.layer.precision
    if tensor == "weights":
        return prec.weights * problem.layer.R * problem.layer.S
    return prec.inputs if tensor == "inputs" else prec.psums


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
