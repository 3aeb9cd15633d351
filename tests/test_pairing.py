"""Complementary filter pairing: the closed-form distortion, the exact
methods against brute force and blossom, the bounds, heuristics, the SRAM
macro, the family through solve and verify, and the instance schema (layer
shapes, weights files, input limits)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapcert.formulations import registry
from mapcert.formulations.pairing import PairingProblem, distortion_matrix, evaluate, solve_pairing
from mapcert.validation.pairing_bounds import pairing_bounds
from mapcert.formulations.pairing.cost import Pairing, paired_weights, stored_words
from mapcert.hardware.functional.sram_pim import bit_planes, read_back, run_macro
from mapcert.instances import InstanceError, load, load_document, load_text
from mapcert.pipeline import MethodError, solve
from mapcert.solvers.pairing_heuristics import PAIRING_HEURISTICS, no_pairing
from mapcert.validation.matching_check import blossom_pairing
from mapcert.validation.verify import verify

FAMILY = registry.get("pairing")


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
    for bound in pairing_bounds(problem):
        assert bound.value <= expected, bound
    if filters <= 7:
        assert FAMILY.brute_force(problem) == expected  # every stored word tried, not the closed form


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


def test_heuristics_never_beat_the_optimum_and_no_pairing_is_only_the_baseline():
    rng = np.random.default_rng(5)
    problem = PairingProblem(rng.integers(-128, 128, size=(21, 16)))
    optimum = solve_pairing(problem).objective
    for heuristic in PAIRING_HEURISTICS.values():
        metrics = evaluate(problem, heuristic(problem))
        assert metrics.distortion >= optimum and metrics.pairs == 10
    baseline = evaluate(problem, no_pairing(problem))
    assert baseline.distortion == 0 and baseline.density_gain == 1.0
    assert "none" not in [h.name for h in FAMILY.heuristics(problem)]
    outside = FAMILY.evaluate(problem, no_pairing(problem))
    assert not outside.feasible and "unpaired" in outside.violations[0]


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
    assert np.array_equal(read_back(problem, pairing), paired_weights(problem, pairing))


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


# --------------------------------------------------------------------------
# the family through solve and verify


TINY = ("family: pairing\nworkload: {name: t, dims: {M: 9, C: 2, R: 2}}\n"
        "hardware: {preset: ddc-sram, rows: 16, columns: 64}\nweights: {generate: {seed: 4}}\n")


def test_solve_then_verify_and_a_tampered_objective_fails():
    result = solve(load_text(TINY), time_limit=30)
    assert result.status == "optimal" and result.lower_bound <= result.objective
    functional = result.certificate.functional
    assert functional.ran and functional.passed and functional.counts["distortion_read_back"] == result.objective
    names = [c.name for c in result.certificate.checks if c.passed]
    assert "cpsat agrees" in names and "blossom agrees" in names
    assert [h.method for h in result.heuristics] == list(PAIRING_HEURISTICS)
    data = result.to_dict()
    assert verify(data, time_limit=30).passed
    data["objective"] += 1
    failed = [c.name for c in verify(data, time_limit=30).checks if not c.passed]
    assert "objective: equals evaluate of the solution" in failed


def test_the_dumped_instance_is_self_contained_and_equal(tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "w.npy", rng.integers(-128, 128, size=(6, 4, 1, 1)))
    (tmp_path / "i.yaml").write_text("family: pairing\nweights: {file: w.npy}\nsolver: {method: cpsat}\n")
    problem = load(tmp_path / "i.yaml")
    assert problem.layer.shape == (6, 4, 1, 1) and problem.name == "w"
    document = FAMILY.dump(problem)
    assert "file" not in document["weights"] and len(document["weights"]["values"]) == 6
    assert load_document(document) == problem
    generated = load_text(TINY)
    assert FAMILY.dump(generated)["weights"]["generate"] == {"seed": 4, "std": 0.35}
    assert load_document(FAMILY.dump(generated)) == generated
    changed = FAMILY.dump(generated)
    changed["weights"]["generate"]["seed"] = 5
    with pytest.raises(InstanceError, match="weights.sha256"):
        load_document(changed)


def test_a_weights_file_whose_shape_disagrees_with_the_layer_names_both_shapes(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "w.npy", rng.integers(-128, 128, size=(12, 3, 3, 3)))
    (tmp_path / "i.yaml").write_text("family: pairing\nworkload: vgg16.conv1_1\nweights: {file: w.npy}\n")
    with pytest.raises(InstanceError) as err:
        load(tmp_path / "i.yaml")
    [issue] = err.value.issues
    assert issue.field == "weights.file" and issue.line == 3
    assert "(12, 3, 3, 3)" in issue.message and "(64, 3, 3, 3)" in issue.message


def test_a_layer_of_its_own_and_its_given_values():
    problem = load_text("family: pairing\nworkload: {name: mine, dims: {M: 4, C: 2, R: 1, S: 1}}\n"
                        "weights: {values: [[1, 2], [-2, -3], [5, 5], [-6, -6]]}\n")
    assert problem.weights.tolist() == [[1, 2], [-2, -3], [5, 5], [-6, -6]]
    assert solve(problem, functional=False).objective == 0
    with pytest.raises(InstanceError, match="weights.values: needs 4 lists"):
        load_text("family: pairing\nworkload: {name: mine, dims: {M: 4, C: 2}}\nweights: {values: [[1, 2]]}\n")


def test_blossom_is_a_reference_for_small_layers_only():
    small = load_text(TINY)
    assert FAMILY.default_method(small) == "milp"
    with pytest.raises(MethodError, match="cross-check"):
        solve(small, "blossom")
    big = PairingProblem(np.zeros((401, 2), dtype=np.int64))
    blossom = next(m for m in FAMILY.methods(big) if m.name == "blossom")
    assert not blossom.solves and "400" in blossom.why_not(big)


def _issues(text: str) -> list[str]:
    with pytest.raises(InstanceError) as err:
        load_text(text, "i.yaml")
    return [str(i) for i in err.value.issues]


def test_absurd_sizes_are_refused_naming_the_field_and_the_range(tmp_path):
    [issue] = _issues("family: pairing\nworkload: {name: wide, dims: {M: 10000000, C: 8}}\n")
    assert ": workload.dims.M: " in issue and "1..4,096" in issue
    [issue] = _issues("family: pairing\nworkload: {name: deep, dims: {M: 4000, C: 100000}}\n")
    assert ": workload: " in issue and "33,554,432" in issue
    # a file whose header promises more than memory: refused before a byte of it is read
    with open(tmp_path / "huge.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<i8", "fortran_order": False, "shape": (4096, 1_000_000)})
    with pytest.raises(InstanceError) as err:
        load_text("family: pairing\nweights: {file: huge.npy}\n", "i.yaml", base=tmp_path)
    [issue] = err.value.issues
    assert issue.field == "weights.file" and "(4096, 1000000)" in issue.message and "33,554,432" in issue.message


def test_bad_pairing_instances_say_what_is_wrong(tmp_path):
    assert any("solver.method: must be one of 'milp' or 'cpsat'" in i
               for i in _issues("family: pairing\nworkload: mobilenetv2.block2.expand\nsolver: {method: blossom}\n"))
    assert any("workload: required field is missing" in i for i in _issues("family: pairing\n"))
    assert any("give one of file, generate or values" in i
               for i in _issues("family: pairing\nworkload: {name: x, dims: {M: 2, C: 1}}\n"
                                "weights: {generate: {seed: 1}, values: [[1], [2]]}\n"))
    assert any("weights.file: cannot read" in i
               for i in _issues("family: pairing\nworkload: vgg16.conv1_1\nweights: {file: nope.npy}\n"))
    assert any("has no filters to pair" in i for i in _issues("family: pairing\nworkload: resnet50.layer1.0.add\n"))
    assert any("-128, 127" in i for i in _issues("family: pairing\nworkload: {name: x, dims: {M: 2, C: 1}}\n"
                                                 "weights: {values: [[300], [2]]}\n"))


def test_the_mobilenetv2_example_is_certified():
    result = solve(load("examples/mobilenetv2_pairing.yaml"), time_limit=60)
    assert result.status == "optimal" and result.certificate.functional.passed
    assert result.metrics["arrays"] < result.metrics["arrays_without_pairing"]


def test_values_without_a_workload_give_the_shape():
    """`weights: {values: ...}` names its own shape, as a weights file does; the instance
    written back reads to the same weights."""
    problem = load_text("family: pairing\nweights: {values: [[1, 2, 3], [-2, -3, -4], [0, 1, 1], [3, 3, 3]]}\n")
    assert (problem.filters, problem.positions) == (4, 3)
    again = load_document(FAMILY.dump(problem))
    assert (again.weights == problem.weights).all()
    with pytest.raises(Exception, match="all of one length"):
        load_text("family: pairing\nweights: {values: [[1, 2, 3], [-2, -3]]}\n")


def test_a_better_optimum_proved_by_the_second_opinion_is_the_answer(monkeypatch):
    """When the instance's method stops short with a worse pairing and the
    other exact method, run as the second opinion, proves a better optimum,
    the result is that optimum (status optimal, by that method), not the
    worse pairing called feasible with a gap; the stopped method's answer
    is a check of its own, and the result verifies."""
    from mapcert.formulations.family import Attempt, Status
    from mapcert.formulations.pairing import family as pairing_family

    real = pairing_family._attempt
    problem = load_text(TINY)
    worse = PAIRING_HEURISTICS["sort-by-norm"](problem)

    def stopped_short(p, method, time_limit):
        if method != "milp":
            return real(p, method, time_limit)
        return Attempt(Status.FEASIBLE, worse, float(evaluate(p, worse).distortion), None, 0.1,
                       "time limit reached", "milp")

    monkeypatch.setattr(pairing_family, "_attempt", stopped_short)
    result = solve(problem, method="milp", time_limit=30)
    assert result.status == "optimal" and result.method == "cpsat", (result.status, result.method)
    assert result.message.startswith("milp") and "stopped at" in result.message and result.gap == 0.0
    assert result.objective < float(evaluate(problem, worse).distortion)
    stopped = [c for c in result.certificate.checks if c.name.startswith("milp") and c.name.endswith("agrees")]
    assert len(stopped) == 1 and stopped[0].passed, result.certificate.checks
    monkeypatch.setattr(pairing_family, "_attempt", real)
    assert verify(result.to_dict(), time_limit=30).passed


def test_an_unproved_optimum_that_the_second_opinion_proves_is_optimal(monkeypatch):
    """The method stops with the optimal pairing but no proof; the other
    exact method proves that value optimal: the status is optimal, said so,
    and a method that proves nothing in time is a check with no answer."""
    from mapcert.cli.render import check_word
    from mapcert.formulations.family import Attempt, Check, Status
    from mapcert.formulations.pairing import family as pairing_family
    from mapcert.validation.certificate import NO_CONCLUSION

    real = pairing_family._attempt
    problem = load_text(TINY)
    best = real(problem, "cpsat", 30)

    def unproved(p, method, time_limit):
        if method != "milp":
            return real(p, method, time_limit)
        return Attempt(Status.FEASIBLE, best.solution, best.objective, None, 0.1, "time limit reached", "milp")

    monkeypatch.setattr(pairing_family, "_attempt", unproved)
    result = solve(problem, method="milp", time_limit=30, heuristics=False)
    assert result.status == "optimal" and result.method == "milp"
    assert "optimal: cpsat proves the optimum" in result.message
    assert "no answer" in check_word(Check("cpsat agrees", True, f"cpsat: feasible within the time limit, {NO_CONCLUSION}"))
    assert "pass" in check_word(Check("cpsat agrees", True, "cpsat proves 1"))


def test_a_grouped_layer_says_its_pairs_may_cross_groups():
    from mapcert.instances import load_text

    text = "family: pairing\nworkload: {name: gl, dims: {M: 8, C: 8, R: 1, S: 1}, groups: GROUPS}\n" \
           "weights: {generate: {seed: 3}}\nhardware: ddc-sram\n"
    grouped = load_text(text.replace("GROUPS", "2"), "g.yaml")
    assert "note: groups = 2: pairs may join filters of different groups" in registry.family_of(grouped).describe(grouped)
    plain = load_text(text.replace("GROUPS", "1"), "g.yaml")
    assert "note:" not in registry.family_of(plain).describe(plain)
