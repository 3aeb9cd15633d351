"""Co-exploration's pruning: the covering LP bound is a lower bound, and the
sizes it rules out change nothing in the answer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from mapcert.formulations.partition.coexplore import coexplore
from mapcert.formulations.partition.exact import candidates, solve_partition
from mapcert.formulations.partition.graph import from_network
from mapcert.formulations.partition.relaxation import covering_lp_bound

from test_partition import small_dags

KIB = 1024


@settings(max_examples=30, deadline=None, derandomize=True)
@given(small_dags())
def test_the_covering_lp_bound_never_exceeds_the_optimum(case):
    pg, capacity = case
    exact = solve_partition(pg, capacity, "dp")
    if exact.status != "optimal":
        return
    bound = covering_lp_bound(pg, candidates(pg, capacity))
    assert bound <= exact.objective + 1e-6


def test_the_bound_is_close_to_the_optimum_on_a_real_network():
    pg = from_network("resnet18")
    exact = solve_partition(pg, 256 * KIB, "milp")
    bound = covering_lp_bound(pg, candidates(pg, 256 * KIB))
    assert exact.status == "optimal"
    assert 0.95 * exact.objective <= bound <= exact.objective + 1e-6


def test_a_cutoff_below_the_bound_skips_the_solve_and_one_above_the_optimum_does_not():
    pg = from_network("resnet18")
    exact = solve_partition(pg, 256 * KIB, "milp")
    bound = covering_lp_bound(pg, candidates(pg, 256 * KIB))
    skipped = solve_partition(pg, 256 * KIB, "milp", cutoff=bound * (1 - 1e-6))  # just below the bound
    assert skipped.status == "cutoff" and skipped.blocks is None and skipped.best_bound == pytest.approx(bound)
    solved = solve_partition(pg, 256 * KIB, "milp", cutoff=exact.objective + 1)
    assert solved.status == "optimal" and solved.objective == exact.objective


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_dags())
def test_pruning_changes_nothing_in_the_answer(case):
    pg, capacity = case
    capacities = [capacity // 4, capacity // 2, capacity, 3 * capacity // 2, 2 * capacity, 4 * capacity]
    for alpha in (0.05, 0.5, 5.0):
        pruned = coexplore(pg, capacities, alpha=alpha)
        full = coexplore(pg, capacities, alpha=alpha, prune=False)
        assert pruned.status == full.status
        assert (pruned.capacity, pruned.ema_bytes) == (full.capacity, full.ema_bytes)
        if full.cost is not None:
            assert pruned.cost == pytest.approx(full.cost)


@pytest.mark.parametrize("network", ["resnet18", "vgg16"])
def test_cocco_sizes_are_pruned_on_real_networks_with_the_same_answer(network):
    pg = from_network(network)
    capacities = list(range(128 * KIB, 3072 * KIB + 1, 64 * KIB))
    pruned = coexplore(pg, capacities, "milp", time_limit=120)
    full = coexplore(pg, capacities, "milp", time_limit=120, prune=False)
    assert pruned.status == full.status == "optimal"
    assert (pruned.capacity, pruned.ema_bytes) == (full.capacity, full.ema_bytes)
    assert any(p.status == "cutoff" for p in pruned.points)
    assert not any(p.status == "cutoff" for p in full.points)


@pytest.mark.slow
def test_googlenet_prunes_sizes_and_keeps_the_optimum():
    """Cocco's shared-buffer list on GoogLeNet: the sizes between the best one
    and the stop rule are ruled out by their LP bound, not solved."""
    pg = from_network("googlenet")
    capacities = list(range(128 * KIB, 1024 * KIB + 1, 64 * KIB))
    result = coexplore(pg, capacities, "milp", time_limit=300)
    assert result.status == "optimal"
    assert (result.capacity, result.ema_bytes) == (448 * KIB, 9_472_851)
    statuses = {p.capacity // KIB: p.status for p in result.points}
    assert statuses[448] == "optimal" and statuses[512] == "cutoff"
    assert all(s in ("optimal", "cutoff") for s in statuses.values())
