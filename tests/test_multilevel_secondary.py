"""Secondary objectives on a hierarchy: ``objective: [energy, latency]``.

The primary is proved by any exact method, then each secondary objective
is minimized by CP-SAT among the optima of the ones before it, and the
canonical search holds all of them: the answer is the lexicographic
optimum of brute force, the same mapping whatever the method and workers,
and it survives a round trip through ``solve -o`` and ``verify``.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import numpy as np
import pytest
import yaml

from helpers import run_cli
from mapcert.formulations.registry import family_of
from mapcert.formulations.tiling.multilevel import solve as multilevel_solve
from mapcert.formulations.tiling.multilevel.cost import link_words, objective_values
from mapcert.formulations.tiling.multilevel.problem import DIMS
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.multilevel.space import dim_choices, level_orders
from mapcert.instances import load_text
from mapcert.pipeline import solve
from mapcert.validation.verify import verify

# Energy counts DRAM accesses only (the on-chip levels cost nothing), so thousands of mappings
# share the least energy; the GLB's bandwidth makes their latencies differ (132 to 300 cycles).
HARDWARE = """\
hardware:
  name: tiny
  energy_unit: MAC
  mac_energy: 1
  array: {rows: 2, cols: 2}
  levels:
    - {name: DRAM, read_energy: 100}
    - {name: GLB, capacity: 64, holds: [inputs, outputs], read_energy: 0, bandwidth: 1}
    - {name: RF, capacity: 8, per_pe: true, holds: [inputs, weights, outputs], read_energy: 0}
"""
LAYER = "workload: {name: tiny, dims: {M: 4, C: 2, P: 4, Q: 1, R: 3, S: 1}}\n"


def instance(objective: str, workload: str = LAYER) -> str:
    return f"family: tiling\n{workload}{HARDWARE}objective: {objective}\nsolver: {{time_limit: 30}}\n"


def problem_of(objective: str, workload: str = LAYER):
    return load_text(instance(objective, workload), "<secondary>")


def scores(problem, names: tuple[str, ...]) -> list[np.ndarray]:
    """Every mapping of the space scored on each of ``names`` (fitting mappings only)."""
    choices = {d: dim_choices(problem, d) for d in DIMS}
    grids = np.meshgrid(*(np.arange(len(choices[d])) for d in DIMS), indexing="ij")
    table = {d: np.asfortranarray(choices[d][g.ravel()]) for d, g in zip(DIMS, grids, strict=True)}
    words = link_words(problem, table)
    columns = [[] for _ in names]
    for orders in itertools.product(*level_orders(problem)):
        scored = [objective_values(replace(problem, objective=name), table, list(orders), None, words)
                  for name in names]
        fits = np.broadcast_to(scored[0][1], np.shape(scored[0][0]))
        for column, (value, _) in zip(columns, scored, strict=True):
            column.append(np.broadcast_to(value, fits.shape)[fits])
    return [np.concatenate(column) for column in columns]


def lexicographic_optimum(problem) -> list[float]:
    """Brute force: the least of each objective among the optima of the ones before it."""
    values = scores(problem, problem.objectives)
    chosen = np.ones(len(values[0]), dtype=bool)
    best = []
    for value in values:
        least = float(value[chosen].min())
        best.append(least)
        chosen &= np.isclose(value, least, rtol=1e-12, atol=1e-9)
    return best


def test_the_instance_has_ties_the_secondary_objective_breaks():
    energy, latency = scores(problem_of("energy"), ("energy", "latency"))
    optima = np.isclose(energy, energy.min())
    assert optima.sum() > 1000 and latency[optima].min() < latency[optima].max()


@pytest.mark.parametrize("objectives", ["[energy, latency]", "[offchip_traffic, latency, energy]",
                                        "[edp, energy]"])
def test_each_secondary_objective_is_least_among_the_earlier_optima(objectives):
    problem = problem_of(objectives)
    result = solve_multilevel(problem, "cpsat", 30)
    assert result.status == "optimal", result.message
    expected = lexicographic_optimum(problem)
    assert [result.objective, *(s.value for s in result.secondary)] == pytest.approx(expected)
    assert [s.objective for s in result.secondary] == list(problem.secondary)
    assert all(s.proved for s in result.secondary)
    assert [result.metrics.objective(name) for name in problem.objectives] == pytest.approx(expected)


def test_the_same_mapping_whatever_the_primary_method_and_workers():
    problem = problem_of("[energy, latency]")
    family = family_of(problem)
    texts = set()
    for method, workers in (("cpsat", 1), ("cpsat", 2), ("milp", 0), ("enumerate", 0), ("cpsat", 1)):
        result = solve_multilevel(problem, method, 30, workers)
        assert result.status == "optimal" and all(s.proved for s in result.secondary), (method, result.message)
        texts.add(yaml.safe_dump(family.solution_to_dict(problem, result.mapping)))
    assert len(texts) == 1, texts


def test_partial_tiles_work_the_same():
    """``factors: any``: the CP-SAT model of the secondary steps covers partial tiles."""
    text = instance("[energy, latency]") + "space: {factors: any}\n"
    problem = load_text(text, "<any>")
    family = family_of(problem)
    answers = set()
    for method, workers in (("cpsat", 1), ("cpsat", 2), ("enumerate", 0)):
        result = solve_multilevel(problem, method, 30, workers)
        assert result.status == "optimal" and result.secondary[0].proved, (method, result.message)
        answers.add((result.objective, result.secondary[0].value,
                     yaml.safe_dump(family.solution_to_dict(problem, result.mapping))))
    assert len(answers) == 1, answers
    (energy, latency, _), = answers
    assert energy == lexicographic_optimum(problem_of("energy"))[0]  # partial tiles do not beat this energy
    assert latency < lexicographic_optimum(problem_of("[energy, latency]"))[1]  # but reach a smaller latency


def test_a_secondary_objective_not_proved_is_never_claimed(monkeypatch):
    """A secondary step that stops short leaves a primary optimum, named unproved in the message."""
    real = multilevel_solve.solve_cpsat

    def cut_short(model, read, time_limit, *args):
        return replace(real(model, read, time_limit, *args), proved=False, message="FEASIBLE")

    monkeypatch.setattr(multilevel_solve, "solve_cpsat", cut_short)
    problem = problem_of("[energy, latency, offchip_traffic]")
    result = solve_multilevel(problem, "enumerate", 30)
    assert result.status == "optimal" and result.objective == pytest.approx(lexicographic_optimum(problem)[0])
    assert [(s.objective, s.proved) for s in result.secondary] == [("latency", False), ("offchip_traffic", False)]
    assert "secondary objective latency was not proved" in result.message
    assert "offchip_traffic was not minimized" in result.message


def test_round_trip_through_solve_and_verify(tmp_path):
    path, saved = tmp_path / "instance.yaml", tmp_path / "result.yaml"
    path.write_text(instance("[energy, latency]"))
    code, stdout, _ = run_cli("solve", str(path), "-o", str(saved))
    assert code == 0
    words = " ".join(stdout.split())  # the header wraps at the terminal's width
    assert "then: latency (cycles)" in words and "objective energy (MAC), then latency" in words
    data = yaml.safe_load(saved.read_text())
    assert data["instance"]["objective"] == ["energy", "latency"] and data["objective_name"] == "energy"
    assert data["secondary"] == [{"objective": "latency", "unit": "cycles", "value": 132.0, "proved": True}]
    assert any(c["name"] == "evaluate agrees on the secondary objective 'latency'" and c["passed"]
               for c in data["certificate"]["checks"])
    code, stdout, _ = run_cli("verify", str(saved), "--methods", "cpsat")
    assert code == 0, stdout
    tampered = copy.deepcopy(data)
    tampered["secondary"][0]["value"] = 140.0  # the latency of another energy optimum
    verification = verify(tampered, time_limit=30, methods=["cpsat"])
    failed = [c.name for c in verification.checks if not c.passed]
    assert "secondary: equals evaluate of the solution" in failed and "secondary[latency]: re-proved" in failed


def test_edp_after_the_first_objective_is_refused_in_one_line(tmp_path):
    path = tmp_path / "instance.yaml"
    path.write_text(instance("[latency, edp]"))
    code, stdout, stderr = run_cli("solve", str(path))
    assert code == 2
    lines = (stdout + stderr).strip().splitlines()
    assert len(lines) == 1 and "objective[1]: edp can only come first" in lines[0], lines


def test_a_network_passes_the_secondary_objectives_to_every_layer():
    network = ("workload:\n  name: two\n  layers:\n"
               "    a: {op: conv2d, dims: {M: 4, C: 2, P: 4, Q: 1, R: 3, S: 1}}\n"
               "    b: {op: conv2d, dims: {M: 2, C: 4, P: 2, Q: 2, R: 1, S: 1}}\n")
    problem = problem_of("[energy, latency]", network)
    assert [item.problem.secondary for item in problem.layers] == [("latency",), ("latency",)]
    family = family_of(problem)
    assert family.dump(problem)["objective"] == ["energy", "latency"]
    result = solve(problem, functional=False, heuristics=False)
    assert result.status.value == "optimal"
    assert [(s.objective, s.proved) for s in result.secondary] == [("latency", True)]
    assert result.secondary[0].value == sum(part.result.secondary[0].value for part in result.parts)


PRICED_ON_CHIP = HARDWARE.replace("holds: [inputs, outputs], read_energy: 0, bandwidth: 1",
                                  "holds: [inputs, outputs], read_energy: 6")


@pytest.mark.parametrize(("objective", "hardware", "secondary"), [
    ("latency", PRICED_ON_CHIP, ("energy",)),
    ("offchip_traffic", PRICED_ON_CHIP, ("energy",)),
    ("[latency]", PRICED_ON_CHIP, ()),
    ("latency", HARDWARE, ()),       # only DRAM prices its accesses: energy follows the traffic
    ("energy", PRICED_ON_CHIP, ()),
    ("edp", HARDWARE, ("energy",)),  # makes an EDP optimum canonical, whatever is priced
    ("[edp]", HARDWARE, ()),
])
def test_latency_or_traffic_alone_is_followed_by_energy(objective, hardware, secondary):
    """Many mappings share the least latency and differ in energy by
    several times: named alone, latency (or traffic) is followed by energy
    when an on-chip level prices its accesses, and the answer is the least
    energy among them; edp always is, since only that search makes an EDP
    optimum canonical; a one-element list asks for the first alone."""
    problem = load_text(f"family: tiling\n{LAYER}{hardware}objective: {objective}\nsolver: {{time_limit: 30}}\n",
                        "<ties>")
    assert problem.secondary == secondary
    if secondary:
        result = solve_multilevel(problem, "cpsat", 30)
        assert result.status == "optimal" and all(s.proved for s in result.secondary)
        first, energy = scores(problem, (problem.objective, "energy"))
        least = np.isclose(first, first.min())
        assert least.sum() > 1                               # the tie is real
        assert result.secondary[0].value == pytest.approx(energy[least].min())
        if problem.objective == "edp":                       # one answer, whatever the workers
            other = solve_multilevel(replace(problem, solver=replace(problem.solver, workers=2)), "cpsat", 30)
            assert other.mapping == result.mapping
        else:
            assert energy[least].min() < energy[least].max()
