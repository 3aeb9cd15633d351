"""CP-SAT model of one stationary class, with exact integer products.

Each loop dimension picks one candidate tile through one Boolean per
candidate; trips, swept input extents and tile extents are integer variables
tied to those Booleans linearly.  Traffic and footprint are products of a few
of them, which CP-SAT represents exactly (``AddMultiplicationEquality``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ortools.sat.python import cp_model

from ...solvers.cpsat import solve_cpsat

from .problem import LOOP_DIMS, TENSORS, TilingProblem
from .space import DimTable, halo_axis_of, stationary_of
from .terms import class_terms


@dataclass
class CpsatTilingModel:
    model: cp_model.CpModel
    choice: dict[str, list]  # dim -> Booleans, or [] when the dim has one candidate
    tables: dict[str, DimTable]
    stationary: str
    unit: int
    objective: object = None  # the linear expression minimized (in ``unit`` bits)


def _feature(model, table: DimTable, choice: list, values, name: str):
    values = [int(v) for v in values]
    if len(set(values)) == 1:  # the same whatever the choice: a constant
        return values[0]
    var = model.NewIntVarFromDomain(cp_model.Domain.FromValues(sorted(set(values))), name)
    model.Add(var == sum(v * b for v, b in zip(values, choice)))
    return var


def _product(model, factors: list, upper: int, name: str):
    """An integer variable equal to the product of ``factors`` (ints or vars)."""
    constant = 1
    variables = []
    for f in factors:
        if isinstance(f, int):
            constant *= f
        else:
            variables.append(f)
    if not variables:
        return constant
    current = variables[0]
    for i, other in enumerate(variables[1:]):
        nxt = model.NewIntVar(0, upper, f"{name}_{i}")
        model.AddMultiplicationEquality(nxt, [current, other])
        current = nxt
    if constant == 1:
        return current
    return constant * current


def build_cpsat(problem: TilingProblem, tables: dict[str, DimTable], order_class: str) -> CpsatTilingModel:
    """The model of one order class (``space.order_classes``)."""
    layer = problem.layer
    stationary, halo = stationary_of(order_class), halo_axis_of(order_class)
    model = cp_model.CpModel()
    choice: dict[str, list] = {}
    trips, tile, in_extent, swept = {}, {}, {}, {}
    for d in LOOP_DIMS:
        table = tables[d]
        bools = [model.NewBoolVar(f"x_{d}_{int(t)}") for t in table.tiles] if len(table) > 1 else []
        if bools:
            model.AddExactlyOne(bools)
        choice[d] = bools
        trips[d] = _feature(model, table, bools, table.trips, f"n_{d}")
        tile[d] = _feature(model, table, bools, table.tiles, f"t_{d}")
        in_extent[d] = _feature(model, table, bools, table.input_extent, f"f_{d}")
        swept[d] = _feature(model, table, bools, table.swept, f"A_{d}")
    if halo is not None:  # a sweep along the innermost input loop reads what each tile's predecessor lacks
        swept[halo] = _feature(model, tables[halo], choice[halo], tables[halo].halo, f"H_{halo}")

    # capacity: products are bounded by what may fit
    prec = layer.precision
    cap = problem.buffer.capacity_bits
    limits = problem.buffer.partition_bits or {t: cap for t in TENSORS}
    foot_in = _product(model, [tile["N"], tile["G"], tile["C"], in_extent["P"], in_extent["Q"]],
                       limits["inputs"] // prec.inputs, "fin")
    foot_w = _product(model, [tile["G"], tile["M"], tile["C"]], limits["weights"] // prec.weights, "fw")
    foot_o = _product(model, [tile["N"], tile["G"], tile["M"], tile["P"], tile["Q"]],
                      limits["outputs"] // prec.psums, "fo")
    rs = layer.R * layer.S
    bits = {
        "inputs": prec.inputs * foot_in,
        "weights": prec.weights * rs * foot_w,
        "outputs": prec.psums * foot_o,
    }
    if problem.buffer.partition_bits is None:
        model.Add(sum(bits.values()) <= cap)
    else:
        for t in TENSORS:
            model.Add(bits[t] <= limits[t])

    terms = class_terms(layer)
    objective = terms.outputs
    in_factors = [swept["P"], swept["Q"]] + ([] if stationary == "inputs" else [trips["M"]])
    top = {d: (int(tables[d].trips.max()), int(tables[d].swept.max())) for d in LOOP_DIMS}
    in_upper = top["P"][1] * top["Q"][1] * top["M"][0]
    objective += terms.inputs * _product(model, in_factors, in_upper, "traffic_in")
    if stationary == "weights":
        objective += terms.weights
    else:
        w_upper = top["N"][0] * top["P"][0] * top["Q"][0]
        objective += terms.weights * _product(model, [trips["N"], trips["P"], trips["Q"]], w_upper, "traffic_w")
    if stationary != "outputs":
        objective += terms.psums * (trips["C"] - 1)
    model.Minimize(objective)
    return CpsatTilingModel(model, choice, tables, order_class, terms.unit, objective)


def canonical_choice(handle: CpsatTilingModel, optimum: int, time_limit: float, workers: int = 0):
    """The optimal mapping of this class that is least in a fixed order:
    with the objective held at ``optimum`` (in ``unit`` bits), the smallest
    tile of N, then of G, M, C, P, Q, R, S, each minimized and fixed in
    turn. Every optimum of the class competes, so the answer does not
    depend on the solver's search, its workers or which method proved the
    optimum (docs/tiling-exact-models.md, "The canonical optimum").

    Returns ``("found", index per dim)``, ``("infeasible", None)`` when no
    mapping of the class reaches ``optimum``, or ``("unknown", None)`` when
    a step is not proved within ``time_limit`` seconds."""
    deadline = time.perf_counter() + time_limit
    model = handle.model
    model.Add(handle.objective == optimum)
    read = read_choice(handle)
    chosen = None
    steps = [d for d in LOOP_DIMS if handle.choice[d]] or [None]
    for d in steps:
        bools = handle.choice[d] if d is not None else []
        model.Minimize(sum(k * b for k, b in enumerate(bools)))
        outcome = solve_cpsat(model, read, deadline - time.perf_counter(), workers)
        if outcome.infeasible:
            return "infeasible", None
        if not outcome.proved or outcome.values is None:
            return "unknown", None
        chosen = outcome.values
        if d is not None:
            model.Add(bools[chosen[d]] == 1)
    return "found", chosen


def read_choice(handle: CpsatTilingModel):
    """Callable for solvers.cpsat: the chosen candidate index per dim."""

    def read(solver: cp_model.CpSolver) -> dict[str, int]:
        chosen = {}
        for d in LOOP_DIMS:
            bools = handle.choice[d]
            chosen[d] = next((k for k, b in enumerate(bools) if solver.BooleanValue(b)), 0)
        return chosen

    return read


def add_hint(handle: CpsatTilingModel, tiles: dict[str, int]) -> None:
    """Warm start from a known mapping (ignored for tiles not in the tables)."""
    for d in LOOP_DIMS:
        for k, b in enumerate(handle.choice[d]):
            handle.model.AddHint(b, int(handle.tables[d].tiles[k]) == tiles[d])
