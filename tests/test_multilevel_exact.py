"""Exact multi-level methods agree with enumeration on small instances."""

from __future__ import annotations

import json

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Hierarchy, MemoryLevel


@st.composite
def instances(draw):
    layer = ConvLayer(
        name="t", N=1, M=draw(st.sampled_from([2, 4])), C=draw(st.sampled_from([1, 2, 4])),
        P=draw(st.sampled_from([2, 4])), Q=draw(st.sampled_from([1, 2])),
        R=draw(st.sampled_from([1, 3])), S=1, stride=(draw(st.sampled_from([1, 2])), 1),
    )
    glb_holds = draw(st.sampled_from([("inputs", "weights", "outputs"), ("inputs", "outputs"), ("inputs", "weights")]))
    rf_private = draw(st.booleans())
    hier = Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=8 * draw(st.sampled_from([32, 64, 128])), holds=frozenset(glb_holds),
                    read_energy=6, write_energy=draw(st.sampled_from([6, 7.5])), bandwidth=draw(st.sampled_from([None, 2]))),
        MemoryLevel("RF", capacity_bits=8 * draw(st.sampled_from([8, 16])), per_pe=rf_private, read_energy=1, write_energy=1,
                    bandwidth=draw(st.sampled_from([None, 3]))),
    ), rows=draw(st.sampled_from([1, 2])), cols=2, mac_energy=1)
    objective = draw(st.sampled_from(["energy", "offchip_traffic", "latency", "edp"]))
    return MultiLevelProblem(layer, hier, objective=objective)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(instances())
def test_exact_methods_agree_with_enumeration(problem):
    exact_methods_agree_with_enumeration(problem)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, derandomize=True)
@given(instances())
def test_exact_methods_agree_with_enumeration_on_many_instances(problem):
    exact_methods_agree_with_enumeration(problem)


def exact_methods_agree_with_enumeration(problem) -> None:
    reference = solve_multilevel(problem, "enumerate")
    assert reference.status in ("optimal", "infeasible")
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        if reference.status == "infeasible":
            assert got.status == "infeasible", method
            continue
        assert got.status == "optimal", (method, got.message)
        assert got.objective == pytest.approx(reference.objective), method


@settings(max_examples=15, deadline=None, derandomize=True)
@given(instances())
def test_optimum_never_below_the_bounds(problem):
    from mapcert.validation.multilevel_bounds import multilevel_bounds

    result = solve_multilevel(problem, "enumerate")
    if result.status != "optimal":
        return
    bounds = multilevel_bounds(problem)
    assert result.objective >= bounds.objective - 1e-9
    assert result.metrics.array_boundary_words >= bounds.array_boundary_words


def two_by_two_hierarchy(rf: MemoryLevel | None = None) -> Hierarchy:
    """DRAM, a 64 B buffer and a per-PE register file on 2 x 2 PEs."""
    return Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=8 * 64, read_energy=6, write_energy=6),
        rf or MemoryLevel("RF", capacity_bits=8 * 12, per_pe=True, read_energy=1, write_energy=1),
    ), rows=2, cols=2, mac_energy=1)


def test_axis_symmetry_breaking_keeps_the_optimum():
    """P/Q and R/S interchangeable: CP-SAT keeps one of each mirrored pair and
    still finds the enumerated optimum (the mirror of a rectangular case too)."""
    hier = two_by_two_hierarchy()
    square = MultiLevelProblem(ConvLayer(name="sq", N=1, M=2, C=2, P=4, Q=4, R=3, S=3), hier)
    reference = solve_multilevel(square, "enumerate")
    got = solve_multilevel(square, "cpsat", time_limit=60)
    assert got.status == "optimal" and got.objective == pytest.approx(reference.objective)


@settings(max_examples=3, deadline=None, derandomize=True)
@given(instances(), st.sampled_from([None, 1, 3]))
def test_edp_search_agrees_with_enumeration(problem, rf_bandwidth):
    edp_search_agrees_with_enumeration(problem, rf_bandwidth)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True)
@given(instances(), st.sampled_from([None, 1, 3]))
def test_edp_search_agrees_with_enumeration_on_many_instances(problem, rf_bandwidth):
    edp_search_agrees_with_enumeration(problem, rf_bandwidth)


def edp_search_agrees_with_enumeration(problem, rf_bandwidth) -> None:
    """EDP with and without bandwidth limits, a per-PE one included: both
    exact methods walk the pieces to the enumerated optimum."""
    hier = problem.hierarchy
    levels = (*hier.levels[:2], replace(hier.levels[2], bandwidth=rf_bandwidth))
    problem = replace(problem, hierarchy=replace(hier, levels=levels), objective="edp")
    reference = solve_multilevel(problem, "enumerate")
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        if reference.status == "infeasible":
            assert got.status == "infeasible" and got.mapping is None, method
            continue
        assert got.status == "optimal", (method, got.message)
        assert got.objective == pytest.approx(reference.objective), method


@settings(max_examples=10, deadline=None, derandomize=True)
@given(instances())
def test_milp_decomposition_over_stationary_tensors_agrees_with_enumeration(problem):
    """With no time for the whole model, every instance goes through the
    3^K pieces with cutoffs; the result must still be the enumerated optimum."""
    import mapcert.formulations.tiling.multilevel.milp as milp

    if problem.objective == "edp":  # a search over pieces (test_edp_search_agrees_with_enumeration)
        return
    reference = solve_multilevel(problem, "enumerate")
    saved = milp.WHOLE_MODEL_SECONDS
    milp.WHOLE_MODEL_SECONDS = 0.0
    try:
        got = solve_multilevel(problem, "milp", time_limit=60, workers=1)
    finally:
        milp.WHOLE_MODEL_SECONDS = saved
    if reference.status == "infeasible":
        assert got.status == "infeasible"
        return
    assert got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective)
    # a per-PE bandwidth makes latency a search whose pieces are decomposed in turn
    assert "pieces finished" in got.message or "per number of busy PEs" in got.message


def test_prime_exponents_identify_values():
    from math import prod

    from mapcert.formulations.tiling.multilevel.milp import factorize

    for n in (1, 2, 12, 56, 97, 224, 3 * 3 * 7 * 7 * 64):
        assert prod(p**e for p, e in factorize(n)) == n
    assert len({factorize(n) for n in range(1, 500)}) == 499


def test_milp_refuses_instances_it_cannot_list(monkeypatch):
    import mapcert.formulations.tiling.multilevel.milp as milp

    monkeypatch.setattr(milp, "MAX_VALUES", 5)
    hier = two_by_two_hierarchy()
    problem = MultiLevelProblem(ConvLayer(name="sq", N=1, M=4, C=4, P=4, Q=4, R=3, S=3), hier)
    for objective in ("energy", "edp"):
        got = solve_multilevel(replace(problem, objective=objective), "milp", time_limit=30)
        assert got.status == "error" and "use cpsat" in got.message, objective


def test_milp_pieces_in_a_pool_of_processes_find_the_optimum(monkeypatch):
    """Pieces sent to two processes, each with its own copy of the model and
    the cutoff of the moment: the same optimum as the enumeration, and the
    message says the pool solved them."""
    import mapcert.formulations.tiling.multilevel.milp as milp
    import mapcert.formulations.tiling.multilevel.milp_pieces as pieces

    monkeypatch.setattr(milp, "WHOLE_MODEL_SECONDS", 0.0)
    monkeypatch.setattr(pieces, "MIN_POOL_SECONDS", 0.0)
    layer = ConvLayer(name="a", N=1, M=4, C=2, P=4, Q=2, R=3, S=1, stride=(2, 1))
    for objective in ("energy", "offchip_traffic"):
        problem = MultiLevelProblem(layer, two_by_two_hierarchy(), objective=objective)
        reference = solve_multilevel(problem, "enumerate")
        got = solve_multilevel(problem, "milp", time_limit=60, workers=2, canonical=False)
        assert reference.status == got.status == "optimal", got.message
        assert got.objective == pytest.approx(reference.objective)
        assert "in 2 processes" in got.message, got.message


def test_a_piece_unfinished_without_probing_is_solved_again_with_it(monkeypatch):
    """Every first attempt (no probing) runs out of time, the second one
    (with probing) settles the piece, whatever the first found: the
    enumerated optimum, and the time of a probing attempt is kept as the
    next first attempt's budget."""
    import mapcert.formulations.tiling.multilevel.milp as milp
    import mapcert.formulations.tiling.multilevel.milp_pieces as pieces
    from mapcert.solvers.outcome import SolverOutcome

    real = pieces.run_highs
    attempts = []

    def first_attempts_run_out(model, read_values, limit, **kwargs):
        if kwargs.get("relaxation"):  # a piece's relaxation, which orders the pieces
            return real(model, read_values, limit, **kwargs)
        probing = kwargs["extra_options"]["presolve_rule_off"] == 0
        attempts.append(probing)
        if probing:
            return real(model, read_values, limit, **kwargs)
        return SolverOutcome("highs", False, False, None, None, limit)

    monkeypatch.setattr(milp, "WHOLE_MODEL_SECONDS", 0.0)
    monkeypatch.setattr(pieces, "run_highs", first_attempts_run_out)
    models = []
    real_model = pieces.PieceModel.__init__
    monkeypatch.setattr(pieces.PieceModel, "__init__",
                        lambda self, *a, **k: (real_model(self, *a, **k), models.append(self))[0])
    layer = ConvLayer(name="a", N=1, M=4, C=2, P=4, Q=2, R=3, S=1, stride=(2, 1))
    problem = MultiLevelProblem(layer, two_by_two_hierarchy(), objective="energy")
    reference = solve_multilevel(problem, "enumerate")
    got = solve_multilevel(problem, "milp", time_limit=60, workers=1, canonical=False)
    assert reference.status == got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective)
    assert True in attempts and False in attempts
    assert all(a != b for a, b in zip(attempts[::2], attempts[1::2]))  # each unfinished first one is followed
    assert models and models[-1].probing_seconds is not None


def test_milp_pieces_are_solved_best_first_and_refuted_by_their_relaxations():
    """Pieces in the order of their relaxations' optima (ties in the given
    order); a piece whose relaxation is infeasible, or above the cutoff
    when its turn comes, is refuted without a solve, and one whose
    relaxation is unknown is solved last."""
    from mapcert.formulations.tiling.multilevel.milp_pieces import PieceResult, Relaxation, solve_pieces
    from mapcert.solvers.outcome import SolverOutcome

    relaxations = {"a": Relaxation(False, 50.0), "b": Relaxation(False, 10.0), "c": Relaxation(True, None),
                   "d": Relaxation(False, None), "e": Relaxation(False, 30.0), "f": Relaxation(False, 10.0)}
    optima = {"a": 60, "b": 40, "d": 35, "e": 30, "f": 45}
    solved, recorded, best = [], [], [100.0]

    class Local:
        def relaxation(self, combo, seconds):
            return relaxations[combo[0]]

        def solve(self, combo, cutoff, refuting, seconds, relaxed=None):
            if relaxed is not None and relaxed.refutes(cutoff):
                return PieceResult(combo, True, refuted_by_relaxation=True)
            solved.append(combo[0])
            value = optima[combo[0]]
            outcome = SolverOutcome("highs", value <= cutoff, value > cutoff, value if value <= cutoff else None,
                                    None, 0.0)
            return PieceResult(combo, True, outcome=outcome)

    def record(piece):
        recorded.append(piece.combo[0])
        if piece.outcome is not None and piece.outcome.objective is not None:
            best[0] = min(best[0], piece.outcome.objective)

    import time

    combos = [(name,) for name in "abcdef"]
    solve_pieces(Local(), combos, lambda: best[0] - 0.5, lambda: True, record, time.perf_counter() + 60, 1, ())
    assert sorted(recorded) == list("abcdef")
    assert solved == ["b", "f", "e", "d"]  # c infeasible; a's relaxation (50) is above the cutoff (29.5) by then
    assert best[0] == 30
    assert Relaxation(False, 100.0).refutes(99.0) and not Relaxation(False, 100.0).refutes(99.99999)
    assert not Relaxation(False, None).refutes(1.0) and Relaxation(True, None).refutes(None)


def test_milp_pieces_stay_in_this_process_where_a_pool_cannot_help(monkeypatch):
    """One worker, one piece, too little time, or a daemonic process (a Dask
    worker's, which may not have children): no pool."""
    import multiprocessing

    from mapcert.formulations.tiling.multilevel.milp_pieces import MIN_POOL_SECONDS, piece_processes

    assert piece_processes(2, 27, 60.0) == 2
    assert piece_processes(4, 3, 60.0) == 3
    assert piece_processes(1, 27, 60.0) == 1
    assert piece_processes(2, 1, 60.0) == 1
    assert piece_processes(2, 27, MIN_POOL_SECONDS / 2) == 1
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert piece_processes(2, 27, 60.0) == 1


@pytest.mark.parametrize("whole_model_seconds", [30.0, 0.0])
def test_milp_holds_a_capacity_that_leaves_a_single_tile(monkeypatch, whole_model_seconds):
    """A register file of one word per tensor leaves one tile size (1): the
    MILP must still force every loop out of it, not drop the constraint. No
    heuristic incumbent: the MILP has to find the optimum itself."""
    import mapcert.formulations.tiling.multilevel.milp as milp

    monkeypatch.setattr(milp, "_incumbent", lambda problem, restriction: None)
    monkeypatch.setattr(milp, "WHOLE_MODEL_SECONDS", whole_model_seconds)
    layer = ConvLayer(name="one", N=1, M=2, C=2, P=4, Q=2, R=3, S=1)
    words = {"inputs": layer.precision.inputs, "weights": layer.precision.weights, "outputs": layer.precision.psums}
    rf = MemoryLevel("RF", partition_bits=words, per_pe=True, read_energy=1, write_energy=1)
    problem = MultiLevelProblem(layer, two_by_two_hierarchy(rf))
    reference = solve_multilevel(problem, "enumerate")
    got = solve_multilevel(problem, "milp", time_limit=60)
    assert reference.status == got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective)


def test_latency_with_per_pe_bandwidth_can_need_fewer_pes():
    """A per-PE bandwidth limit makes the MILP search over busy PEs. Here the
    fastest mapping keeps one of the three PEs idle (68 cycles, against 86
    with all three busy): the search must not stop at the fullest array."""
    from mapcert.formulations.tiling.multilevel.parametric import achievable_pe_counts

    layer = ConvLayer(name="lat", N=1, M=4, C=3, P=4, Q=2, R=1, S=1, stride=(2, 1))
    hier = Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=8 * 64, read_energy=6, write_energy=6, bandwidth=2),
        MemoryLevel("RF", capacity_bits=8 * 16, per_pe=True, read_energy=1, write_energy=1, bandwidth=3),
    ), rows=3, cols=1, mac_energy=1)
    problem = MultiLevelProblem(layer, hier, objective="latency")
    reference = solve_multilevel(problem, "enumerate")
    assert reference.objective == 68
    assert reference.metrics.macs // reference.metrics.compute_cycles < achievable_pe_counts(problem)[0]
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        assert got.status == "optimal" and got.objective == reference.objective, (method, got.message)


def test_the_optimum_is_the_same_mapping_whatever_the_method_and_workers():
    """Optima tie (loop orders of trivial loops, keep choices that move
    nothing); the canonical optimum makes the answer one mapping, byte for
    byte, for CP-SAT with one or two workers and for the MILP."""
    import yaml

    from mapcert.formulations.registry import family_of
    from mapcert.instances import load

    problem = load(Path(__file__).resolve().parents[1] / "examples" / "small_three_level.yaml")
    family = family_of(problem)
    texts = set()
    for method, workers in (("cpsat", 1), ("cpsat", 2), ("milp", 0), ("cpsat", 2)):
        result = solve_multilevel(problem, method, 60, workers)
        assert result.status == "optimal", result.message
        texts.add(yaml.safe_dump(family.solution_to_dict(problem, result.mapping)))
    assert len(texts) == 1, texts


DEPTHWISE = """family: tiling
workload: {name: dw, op: conv2d, dims: {N: 1, M: 32, C: 32, P: 14, Q: 14, R: 3, S: 3}, groups: 32, stride: 2}
hardware: eyeriss
objective: energy
"""
"""Optima that tie by transposition (P on the rows and Q on the columns, or
the reverse): the hash order of a set of names once chose between them."""


@pytest.mark.slow  # 16 s: three processes; the canonical mapping in one process is tested by default
def test_the_optimum_is_the_same_mapping_in_processes_with_other_hash_seeds(tmp_path):
    """Python orders a set of strings by hashes that change from one process
    to the next (``PYTHONHASHSEED``); the models must not, or the canonical
    run differs and so does the mapping: one solution, byte for byte, for
    CP-SAT and the MILP in processes with three seeds."""
    import os
    import subprocess
    import sys

    path = tmp_path / "dw.yaml"
    path.write_text(DEPTHWISE)
    solutions = set()
    for seed, method in (("0", "cpsat"), ("1", "cpsat"), ("2", "milp"), ("3", "cpsat")):
        done = subprocess.run([sys.executable, "-m", "mapcert", "solve", str(path), "--method", method, "--json",
                               "--no-functional", "--no-heuristics"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["status"] == "optimal"
        solutions.add(json.dumps(data["solution"], sort_keys=True))
    assert len(solutions) == 1, solutions


def test_pieces_cut_short_are_bounded_by_their_relaxations(monkeypatch):
    """No piece's MIP solve ends (each one times out at once), and no whole
    model runs: the bound comes from the pieces' LP relaxations, less their
    margin, and lies between zero and the enumerated optimum."""
    import mapcert.formulations.tiling.multilevel.milp_pieces as pieces
    from mapcert.solvers.outcome import SolverOutcome

    real = pieces.run_highs

    def only_relaxations(highs, read_values, limit, **kwargs):
        if kwargs.get("relaxation"):
            return real(highs, read_values, limit, **kwargs)
        return SolverOutcome("highs", False, False, None, None, 0.0, message="Time limit reached")

    monkeypatch.setattr(pieces, "run_highs", only_relaxations)
    layer = ConvLayer(name="a", N=1, M=4, C=2, P=4, Q=2, R=3, S=1, stride=(2, 1))
    problem = MultiLevelProblem(layer, two_by_two_hierarchy(), objective="energy")
    reference = solve_multilevel(problem, "enumerate")
    got = solve_multilevel(problem, "milp", time_limit=30, workers=1, canonical=False)
    assert reference.status == "optimal" and got.status == "feasible", got.message
    assert got.best_bound is not None and 0 < got.best_bound <= reference.objective
    assert "started but not finished" in got.message


def test_a_solve_highs_reports_as_an_error_is_run_again():
    """An EDP search on a shared register file: HiGHS' presolve reduces one
    piece (its stationary tensors fixed by column bounds) to nothing and
    postsolves a point that breaks a row, which HiGHS reports as a solve
    error. The piece must be solved again, not left unfinished: the MILP
    proves the enumerated optimum (it returned "feasible" before)."""
    hier = Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=512, holds=frozenset({"inputs", "outputs"}), read_energy=6,
                    write_energy=6, bandwidth=2),
        MemoryLevel("RF", capacity_bits=64, read_energy=1, write_energy=1, bandwidth=3),
    ), rows=1, cols=2, mac_energy=1)
    layer = ConvLayer(name="t", N=1, M=4, C=4, P=4, Q=2, R=3, S=1, stride=(2, 1))
    problem = MultiLevelProblem(layer, hier, objective="edp")
    reference = solve_multilevel(problem, "enumerate")
    got = solve_multilevel(problem, "milp", time_limit=60, workers=1)
    assert reference.status == got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective)
