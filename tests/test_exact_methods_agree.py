"""Property tests: on random small layers and buffers, exhaustive enumeration
of the whole space, CP-SAT and the MILP find the same optimum; it is never
below the rigorous bound; and the functional model moves exactly the data
the cost model predicts while computing the right outputs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapcert.formulations.tiling.cost import evaluate
from mapcert.formulations.tiling.enumeration import enumerate_space
from mapcert.formulations.tiling.milp_model import build_milp
from mapcert.formulations.tiling.problem import Precision
from mapcert.formulations.tiling.solve import minimal_footprint_bits, solve_tiling
from mapcert.formulations.tiling.space import STATIONARY_CLASSES, dim_tables
from mapcert.hardware.functional.tiling import run_tiling
from mapcert.solvers.highs import solve_highs
from mapcert.formulations.tiling.milp_model import read_choice
from mapcert.validation.bounds import tiling_bounds

from helpers import make_problem

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_problems(draw, space=None):
    groups = draw(st.sampled_from([1, 1, 1, 2]))
    layer = dict(
        N=draw(st.integers(1, 2)),
        M=groups * draw(st.integers(1, 6)),
        C=groups * draw(st.integers(1, 6)),
        P=draw(st.integers(1, 7)),
        Q=draw(st.integers(1, 6)),
        R=draw(st.integers(1, 3)),
        S=draw(st.integers(1, 3)),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 2))),
        dilation=(draw(st.integers(1, 2)), 1),
        groups=groups,
        precision=draw(st.sampled_from([Precision(), Precision(8, 8, 8, 8), Precision(4, 8, 16, 32)])),
    )
    space = space or draw(st.sampled_from(["divisors", "any"]))
    probe = make_problem(1, space=space, **layer)
    smallest = sum(minimal_footprint_bits(probe).values()) // 8 + 1
    capacity = draw(st.integers(smallest, smallest * 40))
    return make_problem(capacity, space=space, **layer)


@PROPERTY
@given(small_problems())
def test_enumeration_cpsat_and_milp_agree(problem):
    full = enumerate_space(problem, reduced=False)
    assert full.mapping is not None
    cpsat = solve_tiling(problem, "cpsat", 30)
    milp = solve_tiling(problem, "milp", 30)
    assert cpsat.status == "optimal" and milp.status == "optimal"
    assert cpsat.objective == milp.objective == full.objective_bits / 8
    assert cpsat.best_bound == cpsat.objective
    bound = tiling_bounds(problem)["rigorous"].bytes
    assert cpsat.objective >= bound - 1e-9


@PROPERTY
@given(small_problems())
def test_functional_counts_equal_the_cost_model(problem):
    mapping = enumerate_space(problem).mapping
    report = run_tiling(problem, mapping, seed=3)
    assert report.outputs_match
    assert report.counted_bits == evaluate(problem, mapping).traffic_bits


@settings(max_examples=10, deadline=None, derandomize=True)
@given(small_problems(space="any"))
def test_milp_product_chain_equals_combinations(problem):
    tables = dim_tables(problem.layer, problem.space)
    for cls in STATIONARY_CLASSES:
        values = []
        for strategy in ("combinations", "chain"):
            handle = build_milp(problem, tables, cls, strategy=strategy)
            outcome = solve_highs(handle.model, read_choice(handle), 30)
            assert outcome.proved or outcome.infeasible
            values.append(None if outcome.infeasible else round(outcome.objective))
        assert values[0] == values[1]
