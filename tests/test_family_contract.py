"""One contract suite, run on every registered family and on a toy family
that only this test module registers (tests/toy_family.py).

For each family's tiny example instances: the instance round-trips through
``dump``; every exact method proves the same optimum, equal to brute force;
the optimum is at or above every rigorous bound; ``evaluate`` of the decoded
solution equals the objective; every heuristic is at or above the optimum;
the result validates against the JSON Schema and passes ``verify``; every
tampered copy of the result fails ``verify`` on a check naming the field;
``mapcert solve --json`` exits 0; a functional run happened.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache

import jsonschema
import pytest
import yaml

import toy_family  # noqa: F401  (registers the toy family)
from helpers import run_cli
from mapcert.formulations import registry
from mapcert.formulations.family import Status
from mapcert.instances import load_document, load_text
from mapcert.pipeline import solve
from mapcert.result import json_schema
from mapcert.validation.certificate import at_least, close
from mapcert.validation.verify import verify

CASES = [(family.key or family.name, i) for family in registry.families() for i in range(len(family.examples()))]


def test_every_family_supplies_examples():
    keys = {family.key or family.name for family in registry.families()}
    assert {"tiling", "tiling-hierarchy", "crossbar", "pairing", "partition", "knapsack"} <= keys
    for family in registry.families():
        assert family.examples(), f"{family.key} has no example instances"


@lru_cache(maxsize=None)
def _problem(key: str, index: int):
    family = registry.get(key)
    return family, load_text(family.examples()[index], f"{key}-example-{index}")


@lru_cache(maxsize=None)
def _solved(key: str, index: int):
    family, problem = _problem(key, index)
    return solve(problem, time_limit=30)


def _label(case):
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_instance_round_trips_and_belongs_to_its_family(case):
    family, problem = _problem(*case)
    assert registry.family_of(problem) is family
    again = load_document(family.dump(problem), "dumped")
    assert family.dump(again) == family.dump(problem)


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_exact_methods_agree_with_each_other_and_brute_force(case):
    family, problem = _problem(*case)
    values = {}
    for method in family.methods(problem):
        if method.why_not(problem) is not None:
            continue
        attempt = method.run(problem, 30)
        assert attempt.status == Status.OPTIMAL, f"{method.name}: {attempt.status} {attempt.message}"
        if attempt.solution is not None:
            evaluation = family.evaluate(problem, attempt.solution)
            assert evaluation.feasible
            values[method.name] = evaluation.objective
        else:
            values[method.name] = attempt.objective
    assert len(values) >= 1
    first = next(iter(values.values()))
    assert all(close(v, first) for v in values.values()), values
    try:
        brute = family.brute_force(problem)
    except NotImplementedError:
        return
    assert close(brute, first), (brute, values)


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_solved_result_keeps_the_contract(case):
    family, problem = _problem(*case)
    result = _solved(*case)
    assert result.status == Status.OPTIMAL, result.message
    data = result.to_dict()
    jsonschema.validate(json.loads(json.dumps(data)), json_schema())
    assert data["format"] == "mapcert-result/2" and data["family"] == family.name
    for bound in result.bounds:
        if bound.rigorous:
            assert at_least(result.objective, bound.value), bound
    assert result.lower_bound is not None
    assert at_least(result.objective, result.lower_bound)
    assert result.gap == 0.0 and close(result.best_bound, result.objective)
    decoded = family.solution_from_dict(problem, data["solution"])
    assert close(family.evaluate(problem, decoded).objective, result.objective)
    for h in result.heuristics:
        if h.objective is not None:
            assert at_least(h.objective, result.objective), h
    assert result.certificate.functional.ran and result.certificate.functional.passed
    assert all(c.passed for c in result.certificate.checks)


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_fresh_result_verifies(case):
    result = _solved(*case)
    verification = verify(result.to_dict(), time_limit=30)
    failed = [(c.name, c.detail) for c in verification.checks if not c.passed]
    assert verification.passed, failed


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_a_re_proof_that_does_not_finish_is_inconclusive_not_a_failure(case, monkeypatch, tmp_path):
    """When no exact method finishes in the time limit, the checks that
    needed a proof are undecided: the verdict is INCONCLUSIVE (exit 3),
    unless a check that time does not excuse fails too (a tampered field)."""
    from mapcert.formulations.family import Attempt
    from mapcert.validation import verify as verify_module

    def timed_out(family, problem, ctx):
        return [("cpsat", Attempt(Status.ERROR, message="time limit reached while building the model"), None)]

    monkeypatch.setattr(verify_module, "_reprove", timed_out)
    data = _solved(*case).to_dict()
    verification = verify(data, time_limit=30)
    failed = [c for c in verification.checks if not c.passed]
    assert verification.passed or (verification.inconclusive and all(c.undecided for c in failed)), \
        [(c.name, c.detail) for c in failed]
    tampered = copy.deepcopy(data)
    tampered["gap"] = 0.5
    assert not verify(tampered, time_limit=30).inconclusive
    if not verification.passed:  # the command says so and exits 3
        saved = tmp_path / "result.yaml"
        saved.write_text(yaml.safe_dump(data, sort_keys=False))
        code, stdout, _ = run_cli("verify", str(saved))
        assert code == 3 and "INCONCLUSIVE" in stdout and "undecided" in stdout


def _first_number(node, path=()):
    """Path of the first int/float leaf (not bool) in a JSON tree, or None."""
    if isinstance(node, dict):
        for key, value in node.items():
            found = _first_number(value, path + (key,))
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _first_number(value, path + (i,))
            if found is not None:
                return found
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        return path
    return None


def _first_list(node, path=()):
    if isinstance(node, list) and node:
        return path
    if isinstance(node, dict):
        for key, value in node.items():
            found = _first_list(value, path + (key,))
            if found is not None:
                return found
    return None


def _get(node, path):
    for key in path:
        node = node[key]
    return node


def _set(node, path, value):
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _tamper_solution(data):
    path = _first_number(data["solution"])
    if path is not None:
        _set(data["solution"], path, _get(data["solution"], path) * 7 + 1)
    else:
        _set(data["solution"], _first_list(data["solution"]), [])


def _tamper_instance(data):
    """Change the workload (the first number of the first part that describes it)."""
    instance = data["instance"]
    for key in ("workload", "capacity", "buffer", "items", "layers", "graph", "hardware"):
        if key in instance and _first_number(instance[key]) is not None:
            path = (key,) + _first_number(instance[key])
            if isinstance(instance[key], (int, float)):
                path = (key,)
            value = _get(instance, path)
            _set(instance, path, value * 2 + 1 if isinstance(value, int) else value * 2.5 + 1)
            return
    raise AssertionError("no number to change in the instance")


def _tampers(data: dict) -> dict:
    """name -> (edit, field the failed check must name)."""
    out = {
        "status infeasible": (lambda d: d.update(status="infeasible"), "status"),
        "status error": (lambda d: d.update(status="error"), "status"),
        "objective": (lambda d: d.update(objective=d["objective"] * 1.1 + 1), "objective"),
        "best_bound above the optimum": (lambda d: d.update(best_bound=d["objective"] * 1.5 + 1), "best_bound"),
        "gap": (lambda d: d.update(gap=0.5), "gap"),
        "lower_bound": (lambda d: d.update(lower_bound=d["lower_bound"] * 2 + 1), "lower_bound"),
        "bound value": (lambda d: d["bounds"][0].update(value=d["bounds"][0]["value"] * 3 + 1), "bounds"),
        "bound rigour": (lambda d: d["bounds"][0].update(rigorous=not d["bounds"][0]["rigorous"]), "bounds"),
        "a failed check": (lambda d: d["certificate"]["checks"][0].update(passed=False), "certificate.checks"),
        "functional run": (lambda d: d["certificate"]["functional"].update(passed=False), "certificate.functional"),
        "family": (lambda d: d.update(family="no-such-family"), "family"),
        "method": (lambda d: d.update(method="a-heuristic"), "method"),
        "checks removed": (lambda d: d["certificate"].update(checks=[]), "certificate.checks"),
        "functional run left out": (lambda d: d["certificate"].update(
            functional={"ran": False, "passed": None, "reason": "skipped", "counts": {}, "wall_time_s": 0.0}),
            "certificate.functional"),
        "solution": (_tamper_solution, ""),
        "instance": (_tamper_instance, ""),
    }
    if _first_number(data.get("metrics") or {}) is not None:
        def edit_metrics(d):
            path = _first_number(d["metrics"])
            _set(d["metrics"], path, _get(d["metrics"], path) * 3 + 1)
        out["metrics"] = (edit_metrics, "metrics")
    if any(h["objective"] is not None for h in data["heuristics"]):
        i = next(i for i, h in enumerate(data["heuristics"]) if h["objective"] is not None)
        out["heuristic objective"] = (
            lambda d: d["heuristics"][i].update(objective=d["heuristics"][i]["objective"] * 0.5 - 1),
            f"heuristics[{i}]")
        out["heuristic status"] = (lambda d: d["heuristics"][i].update(status="optimal"), f"heuristics[{i}]")
        out["heuristic renamed"] = (lambda d: d["heuristics"][i].update(method=d["heuristics"][i]["method"] + "z"),
                                    f"heuristics[{i}]")
    if len(data["heuristics"]) >= 2:  # none at all is a solve with --no-heuristics
        out["heuristic row removed"] = (lambda d: d["heuristics"].pop(), "heuristics")
    worse = [i for i, h in enumerate(data["heuristics"])
             if h["objective"] is not None and data["solution"] is not None and h["objective"] != data["objective"]]
    if worse:  # a heuristic credited with the optimum: its own solution, value and gap, all consistent
        j = worse[0]
        out["heuristic credited with the optimum"] = (
            lambda d: d["heuristics"][j].update(solution=copy.deepcopy(d["solution"]), objective=d["objective"],
                                                gap=0.0), f"heuristics[{j}]")
    return out


TAMPER_NAMES = ["status infeasible", "status error", "objective", "best_bound above the optimum", "gap",
                "lower_bound", "bound value", "bound rigour", "a failed check", "functional run", "family",
                "method", "checks removed", "functional run left out", "solution", "instance", "metrics",
                "heuristic objective", "heuristic status", "heuristic renamed",
                "heuristic credited with the optimum", "heuristic row removed"]


@pytest.mark.parametrize("tamper", TAMPER_NAMES)
@pytest.mark.parametrize("case", CASES, ids=_label)
def test_tampered_result_fails_verify_naming_the_field(case, tamper):
    family, problem = _problem(*case)
    data = _solved(*case).to_dict()
    tampers = _tampers(data)
    if tamper not in tampers:
        pytest.skip(f"{case[0]}'s example has no {tamper} to change")
    edit, field = tampers[tamper]
    changed = copy.deepcopy(data)
    edit(changed)
    assert changed != data
    fast = [family.default_method(problem)]
    verification = verify(changed, time_limit=30, methods=fast)
    failed = [c.name for c in verification.checks if not c.passed]
    assert failed, f"tampering with {tamper} went unnoticed"
    assert any(name.startswith(field) for name in failed), (field, failed)
    if tamper.startswith("status ") and data["status"] == "optimal" and data["solution"] is not None:
        # the check says what the re-derivation supports, and nothing else is blamed
        status = next(c for c in verification.checks if c.name == "status: re-derived")
        assert status.detail.endswith("re-derived optimal"), status.detail
        assert not any(name.startswith("gap") for name in failed), failed


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_solve_json_through_the_cli(case, tmp_path):
    family, _ = _problem(*case)
    path = tmp_path / "instance.yaml"
    path.write_text(family.examples()[case[1]])
    code, stdout, stderr = run_cli("solve", str(path), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["status"] == "optimal"
    code, stdout, stderr = run_cli("solve", str(path))
    assert code == 0 and "OPTIMAL" in stdout, stderr
    saved = tmp_path / "result.yaml"
    assert run_cli("solve", str(path), "-o", str(saved), "--no-heuristics")[0] == 0
    assert yaml.safe_load(saved.read_text())["format"] == "mapcert-result/2"
    code, stdout, stderr = run_cli("verify", str(saved), "--json")
    assert code == 0 and json.loads(stdout)["verified"], stdout + stderr


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_compare_scores_every_method_against_the_optimum(case):
    from mapcert.pipeline import compare

    family, problem = _problem(*case)
    comparison = compare(problem, time_limit=30)
    assert comparison.status == Status.OPTIMAL, comparison.message
    assert close(comparison.optimum, _solved(*case).objective)
    for row in comparison.rows:
        if row.kind in ("exact", "check"):
            assert row.status == Status.OPTIMAL and close(row.objective, comparison.optimum), row
        elif row.objective is not None:
            assert at_least(row.objective, comparison.optimum) and row.gap >= -1e-9, row
        assert row.functional in ("passed", "-") or row.functional.startswith("not run"), row


def test_a_bound_from_another_version_says_so():
    """Bounds get tighter between versions: a result whose bound differs
    from this version's fails ``verify``, and when another version wrote
    it the check says which one and what to do, rather than leaving the
    user to suspect tampering."""
    case = CASES[0]
    family, problem = _problem(*case)
    data = _solved(*case).to_dict()
    for version, hint in (("0.0.1", True), (data["mapcert_version"], False)):
        older = copy.deepcopy(data)
        older["mapcert_version"] = version
        older["bounds"][0]["value"] = older["bounds"][0]["value"] * 0.5
        verification = verify(older, time_limit=30, methods=[family.default_method(problem)])
        failed = {c.name: c.detail for c in verification.checks if not c.passed}
        assert any(name.startswith("bounds") for name in failed), failed
        detail = next(d for name, d in failed.items() if name.startswith("bounds"))
        assert ("written by mapcert 0.0.1" in detail and "solve the instance again" in detail) == hint, detail


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(objective=float("inf")), "objective"),
    (lambda d: d.update(lower_bound=float("inf")), "lower_bound"),
    (lambda d: d.update(lower_bound=float("-inf")), "lower_bound"),
    (lambda d: d["bounds"][0].update(value=float("inf")), "bounds"),
    (lambda d: d.update(gap=float("inf")), "gap"),
], ids=["objective inf", "lower_bound inf", "lower_bound -inf", "bound inf", "gap inf"])
def test_an_infinite_value_is_no_match_for_a_finite_one(edit, field):
    """A relative tolerance scaled by the larger value lets an infinity
    pass as any number: ``verify`` must catch a result edited to one."""
    case = CASES[0]
    family, problem = _problem(*case)
    changed = copy.deepcopy(_solved(*case).to_dict())
    edit(changed)
    verification = verify(changed, time_limit=30, methods=[family.default_method(problem)])
    failed = [c.name for c in verification.checks if not c.passed]
    assert any(name.startswith(field) for name in failed), (field, failed)


def test_a_changed_bound_is_named_by_its_field():
    """A result whose bounds list differs names the bound and the field,
    not the whole list with every bound's long meaning."""
    case = CASES[0]
    family, problem = _problem(*case)
    changed = copy.deepcopy(_solved(*case).to_dict())
    changed["bounds"][0]["value"] = changed["bounds"][0]["value"] * 2 + 1
    verification = verify(changed, time_limit=30, methods=[family.default_method(problem)])
    detail = next(c.detail for c in verification.checks if c.name.startswith("bounds") and not c.passed)
    assert detail.startswith("[0].value: stored ") and "meaning" not in detail, detail


LARGE_OBJECTIVE = """family: tiling
workload: {name: pw_conv, op: conv2d, dims: {N: 1, M: 24, C: 20, P: 14, Q: 14, R: 1, S: 1}}
hardware: simba-pe
objective: energy
"""
"""A pointwise layer on ``simba-pe``: its optimum is 2,199,136 units, where
one unit is below a relative 1e-6."""


@pytest.mark.parametrize("case", [*CASES, ("large objective", 0)], ids=_label)
def test_an_optimum_claimed_one_unit_lower_fails_verify(case):
    """The objective and the best bound both lowered by one unit claim a
    proved optimum that does not exist; however large the objective, the
    tolerance must not let one unit pass (a relative 1e-6 let -1 pass on
    the large objective, and -250 on 3e8)."""
    if case[0] == "large objective":
        problem = load_text(LARGE_OBJECTIVE, "large-objective")
        family, data = registry.family_of(problem), solve(problem, time_limit=60).to_dict()
        assert data["objective"] > 1e6
    else:
        family, problem = _problem(*case)
        data = _solved(*case).to_dict()
    if data["objective"] is None or data["status"] != "optimal":
        pytest.skip(f"{case[0]}'s example has no proved optimum")
    changed = copy.deepcopy(data)
    changed["objective"] -= 1
    changed["best_bound"] -= 1
    verification = verify(changed, time_limit=30, methods=[family.default_method(problem)])
    failed = [c.name for c in verification.checks if not c.passed]
    assert any(name.startswith("objective") for name in failed), failed


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_method_check_knows_what_applies_and_a_heuristic_after_a_time_out(case):
    """verify's method check: an exact method that does not apply to the instance fails it
    (naming why); "M (then heuristic H)", a time-out's answer a heuristic bettered, passes."""
    from mapcert.validation.verify import _method_check
    from mapcert.result import Result

    family, problem = _problem(*case)
    data = _solved(*case).to_dict()
    heuristics = [h.name for h in family.heuristics(problem)]
    if heuristics:
        data["method"] = f"{family.default_method(problem)} (then heuristic {heuristics[0]})"
        assert _method_check(family, problem, Result.from_dict(data)).passed
        data["method"] = f"{family.default_method(problem)} (then heuristic no-such-heuristic)"
        assert not _method_check(family, problem, Result.from_dict(data)).passed
    refused = [m for m in family.methods(problem) if m.solves and m.why_not(problem) is not None]
    for method in refused:
        data["method"] = method.name
        check = _method_check(family, problem, Result.from_dict(data))
        assert not check.passed and "does not apply" in check.detail
