"""Complementary filter pairing: the closed-form distortion, the exact
methods against brute force and blossom, heuristics, and the SRAM macro."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapcert.formulations.pairing import PairingProblem, distortion_matrix, evaluate, solve_pairing
from mapcert.formulations.pairing.cost import Pairing, paired_weights, stored_words
from mapcert.hardware.functional.sram_pim import bit_planes, run_macro
from mapcert.solvers.pairing_heuristics import PAIRING_HEURISTICS
from mapcert.validation.matching_check import blossom_pairing


def test_closed_form_is_the_least_distortion_for_every_4_bit_pair():
    values = np.arange(-8, 8)
    for a, b in itertools.product(values, values):
        best = min((a - u) ** 2 + (b + u + 1) ** 2 for u in values)  # u must stay 4-bit
        u = stored_words(np.array([a]), np.array([b]))[0]
        assert -8 <= u <= 7 and -8 <= -u - 1 <= 7
        assert (a - u) ** 2 + (b + u + 1) ** 2 == best == int(np.ceil((a + b + 1) ** 2 / 2))


def test_complement_is_bitwise_not():
    p = PairingProblem(np.array([[3, -7, 0, 127], [-128, 5, 1, -1]]), bits=8)
    w = paired_weights(p, Pairing([(0, 1)]))
    assert np.array_equal(bit_planes(w[1], 8), 1 - bit_planes(w[0], 8))


def test_distortion_matrix_matches_direct_sums():
    rng = np.random.default_rng(0)
    p = PairingProblem(rng.integers(-128, 128, size=(9, 13)))
    c = distortion_matrix(p)
    for i, j in itertools.combinations(range(9), 2):
        s = p.weights[i] + p.weights[j] + 1
        assert c[i, j] == c[j, i] == int(np.ceil(s ** 2 / 2).sum())


def brute_force(cost: np.ndarray) -> int:
    """Least cost of a maximum matching, by trying every one."""
    n = cost.shape[0]

    def best(nodes: tuple) -> int:
        if len(nodes) < 2:
            return 0
        first, rest = nodes[0], nodes[1:]
        options = [cost[first, other] + best(tuple(x for x in rest if x != other)) for other in rest]
        if len(nodes) % 2:  # the first node may be the one left out
            options.append(best(rest))
        return min(options)

    return best(tuple(range(n)))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 9), st.integers(1, 6), st.sampled_from([4, 8]), st.integers(0, 10**6))
def test_exact_methods_agree_with_brute_force_and_blossom(filters, positions, bits, seed):
    rng = np.random.default_rng(seed)
    half = 2 ** (bits - 1)
    problem = PairingProblem(rng.integers(-half, half, size=(filters, positions)), bits=bits)
    expected = brute_force(distortion_matrix(problem))
    _, blossom_cost = blossom_pairing(problem)
    assert blossom_cost == expected
    for method in ("milp", "cpsat"):
        result = solve_pairing(problem, method)
        assert result.status == "optimal"
        assert result.objective == expected
        assert result.lp_bound <= expected + 1e-6  # the matching LP bound is never above the optimum
        metrics = evaluate(problem, result.pairing)
        assert metrics.distortion == expected
        assert metrics.pairs == filters // 2


@pytest.mark.parametrize("filters", [40, 41])
def test_correlated_filters_match_blossom(filters):
    """Filters drawn as noisy near-complements, the structure pairing exploits."""
    rng = np.random.default_rng(filters)
    base = rng.integers(-100, 100, size=(filters // 2 + 1, 27))
    w = np.concatenate([base, -base - 1 + rng.integers(-3, 4, size=base.shape)])[:filters]
    problem = PairingProblem(np.clip(w, -128, 127)[rng.permutation(filters)])
    _, expected = blossom_pairing(problem)
    for method in ("milp", "cpsat"):
        result = solve_pairing(problem, method)
        assert result.status == "optimal" and result.objective == expected
        assert result.edges_kept < result.edges_total


def test_heuristics_never_beat_the_optimum_and_none_is_the_baseline():
    rng = np.random.default_rng(5)
    problem = PairingProblem(rng.integers(-128, 128, size=(21, 16)))
    optimum = solve_pairing(problem).objective
    for name, heuristic in PAIRING_HEURISTICS.items():
        metrics = evaluate(problem, heuristic(problem))
        if name == "none":
            assert metrics.distortion == 0 and metrics.density_gain == 1.0
        else:
            assert metrics.distortion >= optimum and metrics.pairs == 10


@pytest.mark.parametrize("filters", [6, 7])
def test_sram_macro_computes_both_filters_from_one_word(filters):
    rng = np.random.default_rng(filters)
    problem = PairingProblem(rng.integers(-128, 128, size=(filters, 18)))
    pairing = solve_pairing(problem).pairing
    inputs = rng.integers(0, 256, size=(5, 18))
    outputs, report = run_macro(problem, pairing, inputs)
    assert report.outputs_match
    assert report.rows == filters - filters // 2
    assert np.array_equal(outputs, inputs @ paired_weights(problem, pairing).T)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError):
        PairingProblem(np.array([[300, 1]]), bits=8)
    with pytest.raises(ValueError):
        PairingProblem(np.array([[0.5, 1]]))


@pytest.mark.slow
def test_a_1024_filter_layer_is_proved_by_both_methods():
    rng = np.random.default_rng(0)
    problem = PairingProblem(np.clip(np.rint(rng.normal(0, 20, size=(1024, 96))), -128, 127))
    milp = solve_pairing(problem, "milp")
    cpsat = solve_pairing(problem, "cpsat", time_limit=120)
    assert milp.status == cpsat.status == "optimal" and milp.objective == cpsat.objective
