"""`mapcert solve` and `compare` on multi-level instances."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from helpers import mapcert_json, run_mapcert as run

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "small_three_level.yaml"


def test_solve_proves_and_checks_the_small_example():
    data = mapcert_json("solve", str(EXAMPLE), "--json")
    assert data["status"] == "optimal"
    assert data["objective"] >= data["lower_bound"]
    functional = data["certificate"]["functional"]
    assert functional["ran"] and functional["passed"] is True
    assert functional["counts"]["outputs_match"] and functional["counts"]["counts_match"]
    again = run("solve", str(EXAMPLE), "--json", "--method", "enumerate")
    assert json.loads(again.stdout)["objective"] == data["objective"]


@pytest.mark.slow  # the contract suite compares every family on tiny instances in the default run
def test_compare_scores_heuristics_against_the_optimum():
    data = mapcert_json("compare", str(EXAMPLE), "--json")
    assert data["status"] == "optimal"
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["cpsat"]["objective"] == rows["enumerate"]["objective"] == data["optimum"]
    for name in ("random", "paper-dataflow", "greedy-largest-tile", "zigzag-orders"):
        assert rows[name]["objective"] >= data["optimum"]
    assert all(row["functional"] == "passed" for row in rows.values())


def test_every_bad_size_and_a_missing_on_chip_level_are_said_plainly(tmp_path):
    """A negative size, a fractional one and a Boolean in the same layer are
    all named (not only the one a type check meets first), and a hierarchy
    with DRAM alone says what a hierarchy needs."""
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text("family: tiling\nworkload: {name: bad, dims: {N: true, M: 8, C: -3, P: 4, Q: 4, R: 1.5, S: 1}}\n"
                     "hardware: eyeriss\nobjective: energy\n")
    done = run("solve", str(sizes))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "workload.dims.C: must be a positive integer, got -3" in done.stderr
    assert "workload.dims.R: must be a whole number, got 1.5" in done.stderr
    assert "workload.dims.N: must be a positive integer, got True" in done.stderr  # not read as 1
    alone = tmp_path / "alone.yaml"
    alone.write_text("family: tiling\nworkload: {name: ok, dims: {N: 1, M: 8, C: 8, P: 4, Q: 4, R: 1, S: 1}}\n"
                     "hardware:\n  name: h\n  levels:\n    - {name: DRAM, read_energy: 200, write_energy: 200}\n"
                     "objective: energy\n")
    done = run("solve", str(alone))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "hardware.levels: needs at least 2 entries, got 1 (DRAM first, then at least one on-chip level" \
        in done.stderr


def test_bad_hierarchy_is_reported_with_lines(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("per_pe: true", "per_pe: true, colour: red")
                   .replace("rows: 2", "rows: 0"))
    done = run("solve", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "colour: unknown field" in done.stderr and "array.rows" in done.stderr


@pytest.mark.slow
def test_whole_network_solves_each_distinct_layer_once(tmp_path):
    instance = tmp_path / "net.yaml"
    instance.write_text("family: tiling\nworkload: lenet5\nhardware: chen2020-3level\n"
                        "objective: offchip_traffic\nsolver: {method: cpsat, time_limit: 10}\n")
    result = tmp_path / "out.yaml"
    data = mapcert_json("solve", str(instance), "--json", "-o", str(result))
    assert data["format"] == "mapcert-result/2" and data["family"] == "tiling"
    names = [n for part in data["parts"] for n in part["same_shape"]]
    assert len(names) == len(set(names)) == sum(part["count"] for part in data["parts"])
    assert data["objective"] == sum(part["result"]["objective"] * part["count"] for part in data["parts"])
    assert data["lower_bound"] == sum(part["result"]["lower_bound"] * part["count"] for part in data["parts"])
    assert all(part["result"]["objective"] >= part["result"]["lower_bound"] for part in data["parts"])
    assert data["certificate"]["functional"]["ran"]
    assert result.exists()
    verified = run("verify", str(result), "--methods", "cpsat", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["verified"], verified.stdout[-2000:]
    saved = yaml.safe_load(result.read_text())
    for field, edit in (("metrics", lambda d: d["metrics"].update(proved=d["metrics"]["proved"] - 1)),
                        ("heuristics", lambda d: d["heuristics"][0].update(objective=1.0)),
                        ("certificate.checks", lambda d: d["certificate"]["checks"][0].update(passed=False)),
                        ("parts", lambda d: d["parts"][0].update(count=2))):
        tampered = copy.deepcopy(saved)
        edit(tampered)
        result.write_text(yaml.safe_dump(tampered))
        done = run("verify", str(result), "--methods", "cpsat", "--json")
        failed = [c["name"] for c in json.loads(done.stdout)["checks"] if not c["passed"]]
        assert done.returncode == 1 and any(name.startswith(field) for name in failed), (field, failed)
    unknown = run("verify", str(result), "--methods", "nosuch")
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr
    again = run("solve", str(instance), "-o", str(result))
    assert again.returncode == 2 and "not overwritten" in again.stderr


def test_compare_scores_a_users_mapping(tmp_path):
    saved = tmp_path / "result.yaml"
    assert run("solve", str(EXAMPLE), "-o", str(saved)).returncode == 0
    data = mapcert_json("compare", str(EXAMPLE), "--methods", "cpsat", "--mapping", str(saved), "--json")
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["mapping: result.yaml"]["kind"] == "user"
    assert rows["mapping: result.yaml"]["gap"] == 0.0
    broken = tmp_path / "broken.yaml"
    broken.write_text("levels: [1, 2]\n")
    bad = run("compare", str(EXAMPLE), "--mapping", str(broken))
    assert bad.returncode == 2 and "3 levels" in bad.stderr and "Traceback" not in bad.stderr


def test_a_hand_written_mapping_error_points_at_its_line(tmp_path):
    """An error in a mapping file names the line of the entry it is about:
    the level with the short factor, an unknown level, the spatial block."""
    cases = {
        "short": ("solution:\n  levels:\n  - {name: DRAM, factors: {M: 4}}\n  - {name: GLB, factors: {C: 4, P: 2}}\n"
                  "  - {name: RF, factors: {Q: 2, R: 3}}\n", ":4: solution.levels[1].factors.P: factors of P multiply to 2"),
        "unknown": ("levels:\n- {name: DRAM, factors: {M: 4}}\n- {name: SRAM}\n- {name: RF}\n",
                    ":3: levels[1]: mapping level 'SRAM' where the hierarchy has 'GLB'"),
        "wide": ("levels:\n- {name: DRAM, factors: {M: 4, C: 4, P: 4, Q: 2}}\n- {name: GLB}\n- {name: RF, factors: {R: 3}}\n"
                 "spatial: {rows: {M: 4}}\n", ":5: spatial: spatial unrolling uses 4 x 1 PEs"),
    }
    for name, (text, expected) in cases.items():
        mine = tmp_path / f"{name}.yaml"
        mine.write_text(text)
        done = run("compare", str(EXAMPLE), "--mapping", str(mine))
        assert done.returncode == 2 and f"{mine}{expected}" in " ".join(done.stderr.split()), done.stderr


def test_every_problem_of_a_hand_written_mapping_is_reported_at_once(tmp_path):
    """Several problems in one mapping file: each is reported, at its own
    line, in one run (the user fixes them all, not one per run)."""
    structural = tmp_path / "structural.yaml"
    structural.write_text("levels:\n- {name: DRAM, factors: {M: 4}}\n- {name: SRAM}\n"
                          "- {name: RF, factors: {X: 3}}\nspatial: {rows: {Z: 2}}\n")
    done = run("compare", str(EXAMPLE), "--mapping", str(structural))
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    for expected in (":3: levels[1]: mapping level 'SRAM' where the hierarchy has 'GLB'",
                     ":4: levels[2]: level RF: unknown dimension(s) ['X']",
                     ":5: spatial: spatial: unknown dimension(s) ['Z'] on the rows"):
        assert f"{structural}{expected}" in said, done.stderr
    short = tmp_path / "short.yaml"
    short.write_text("levels:\n- {name: DRAM}\n- {name: GLB, factors: {P: 2}}\n- {name: RF, factors: {C: 2}}\n")
    done = run("compare", str(EXAMPLE), "--mapping", str(short))
    said = " ".join(done.stderr.split())
    assert f"{short}:3: levels[1].factors.P: factors of P multiply to 2" in said, done.stderr
    assert f"{short}:4: levels[2].factors.C: factors of C multiply to 2" in said, done.stderr


def test_bound_compare_and_verify_say_what_they_do_with_hierarchies(tmp_path):
    assert mapcert_json("bound", str(EXAMPLE), "--json")["bounds"][0]["value"] > 0
    network = tmp_path / "net.yaml"
    network.write_text("family: tiling\nworkload: resnet18\nhardware: eyeriss\n")
    refused = run("compare", str(network))
    assert refused.returncode == 2 and "mapcert plot" in refused.stderr
    saved = tmp_path / "r.yaml"
    assert run("solve", str(EXAMPLE), "-o", str(saved)).returncode == 0
    verify = mapcert_json("verify", str(saved), "--json")
    assert verify["verified"], [c for c in verify["checks"] if not c["passed"]]


def test_usage_errors_exit_2_without_a_traceback():
    for args in (("solve",), ("solve", str(EXAMPLE), "--no-such-option")):
        done = run(*args)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr and "solve --help' for help" in done.stderr


def test_a_hierarchy_without_energies_shows_no_energy_and_idle_bounds_say_so(tmp_path):
    """A traffic instance whose levels carry no energy has no energy row or
    column (rather than zeros), and a segment bound that gives nothing
    because every tensor fits says it is not binding."""
    instance = tmp_path / "traffic.yaml"
    instance.write_text("family: tiling\nworkload: {name: c, op: conv2d, dims: {N: 1, M: 16, C: 16, P: 7, Q: 7, "
                        "R: 3, S: 3}}\nhardware:\n  array: {rows: 2, cols: 2}\n  levels:\n    - {name: DRAM}\n"
                        "    - {name: GLB, capacity: 1 MiB}\n    - {name: RF, per_pe: true, capacity: 64 B}\n"
                        "objective: offchip_traffic\nsolver: {time_limit: 20}\n")
    solved = run("solve", str(instance))
    assert solved.returncode == 0, solved.stderr
    assert "energy (" not in solved.stdout and "accesses (words;" in solved.stdout
    assert "(not binding here)" in solved.stdout
    bounded = run("bound", str(instance))
    assert bounded.returncode == 0 and "(not binding here)" in bounded.stdout
    priced = run("solve", str(EXAMPLE))
    assert "energy (" in priced.stdout
    assert "no access energy" not in priced.stdout
    # energies on DRAM alone: the energy shown says which levels it leaves out
    instance.write_text(instance.read_text().replace("{name: DRAM}", "{name: DRAM, read_energy: 200}"))
    partly = run("solve", str(instance))
    assert partly.returncode == 0 and "energy (" in partly.stdout
    assert "note: GLB and RF have no access energy, so the energy shown counts no access there" in partly.stdout


def test_a_buffer_without_an_array_shows_no_array_and_a_directory_is_no_output(tmp_path):
    """DRAM and one buffer split per tensor (two parts only) is a hierarchy
    over one MAC unit: no array row, utilization or spatial factors are
    shown. An output path that is a directory is refused, --force or not."""
    instance = tmp_path / "one_unit.yaml"
    instance.write_text("family: tiling\nworkload: {name: x, op: conv2d, dims: {M: 32, C: 16, P: 8, Q: 8, R: 3, "
                        "S: 3}}\nhardware:\n  levels:\n    - {name: DRAM}\n"
                        "    - {name: GLB, partition: {inputs: 4 KiB, weights: 4 KiB}}\nobjective: offchip_traffic\n")
    solved = run("solve", str(instance))
    assert solved.returncode == 0, solved.stderr
    assert "array (rows" not in solved.stdout and "PE utilization" not in solved.stdout
    assert "spatial factors" not in solved.stdout
    for extra in ([], ["--force"]):
        refused = run("solve", str(instance), "-o", str(tmp_path), *extra)
        assert refused.returncode == 2 and "is a directory" in refused.stderr and "Traceback" not in refused.stderr


def test_an_optimum_that_leaves_most_units_idle_says_how_to_pick_a_faster_one(tmp_path):
    instance = tmp_path / "idle.yaml"
    instance.write_text("family: tiling\nworkload: {name: pw, op: conv2d, dims: {N: 4, M: 128, C: 64, P: 16, "
                        "Q: 16}, precision: {inputs: 8, weights: 4, outputs: 8, psums: 16}}\nhardware:\n  array: {rows: 16, cols: 4}\n  levels:\n    - {name: DRAM}\n"
                        "    - {name: GB, capacity: 32 KiB}\n"
                        "    - {name: LB, per_pe: true, partition: {weights: 32 B, outputs: 32 B}}\n"
                        "objective: offchip_traffic\nsolver: {time_limit: 30}\n")
    solved = run("solve", str(instance))
    assert solved.returncode == 0, solved.stderr
    data = mapcert_json("solve", str(instance), "--json")
    assert data["metrics"]["pe_utilization"] < 0.5  # the canonical optimum of this traffic tie uses one column
    assert "objective: [offchip_traffic, latency]" in solved.stdout
    faster = tmp_path / "faster.yaml"
    faster.write_text(instance.read_text().replace("objective: offchip_traffic", "objective: [offchip_traffic, latency]"))
    both = mapcert_json("solve", str(faster), "--json")
    assert both["objective"] == data["objective"] and both["metrics"]["latency_cycles"] <= data["metrics"]["latency_cycles"]
    assert "objective: [offchip_traffic, latency]" not in run("solve", str(faster)).stdout


def test_a_directory_given_as_the_instance_is_said_plainly(tmp_path):
    done = run("solve", str(tmp_path))
    assert done.returncode == 2 and "is a directory" in done.stderr and ":0:" not in done.stderr


def test_a_mapping_short_of_a_dimension_or_of_another_layer_says_which(tmp_path):
    """A hand mapping whose factors fall short says so (with the levels they
    sit at, tests/test_multilevel_imperfect.py); a saved result of another layer is named as such,
    not as one short product per dimension."""
    mapping = tmp_path / "short.yaml"
    mapping.write_text("levels:\n  - {name: DRAM, factors: {M: 2}}\n  - {name: GLB, factors: {C: 4, P: 2}}\n"
                       "  - {name: RF, factors: {M: 2, Q: 2, R: 3}}\nspatial: {rows: {}, cols: {}}\n")
    short = run("compare", str(EXAMPLE), "--methods", "cpsat", "--mapping", str(mapping))
    assert short.returncode == 2
    assert "factors of P multiply to 2, less than its extent 4: part of the layer would never be computed" \
        in short.stderr
    wider = tmp_path / "wider.yaml"
    wider.write_text(EXAMPLE.read_text().replace("M: 4, C: 4", "M: 8, C: 4"))
    saved = tmp_path / "wider.result.yaml"
    assert run("solve", str(wider), "--no-heuristics", "-o", str(saved)).returncode == 0
    other = run("compare", str(EXAMPLE), "--methods", "cpsat", "--mapping", str(saved))
    assert other.returncode == 2, other.stdout
    assert ("this result solves conv2d N=1 M=8 C=4 P=4 Q=2 R=3 S=1; the instance is conv2d N=1 M=4 C=4 P=4 Q=2 "
            "R=3 S=1: a mapping of one layer cannot be scored on another") in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_enumeration_is_not_offered_where_it_could_not_finish(tmp_path):
    """Few factor combinations can still be too many mappings once the loop
    orders of four levels and the keep sets multiply them: `methods` says
    how many, rather than offer a search that runs for half an hour."""
    instance = tmp_path / "tiny.yaml"
    instance.write_text("""family: tiling
workload: {name: tiny, dims: {M: 4, C: 6, P: 4, Q: 2, R: 3}, stride: [2, 1]}
hardware:
  mac_energy: 0.25
  array: {rows: 2, cols: 3}
  levels:
    - {name: DRAM, read_energy: 100, write_energy: 120}
    - {name: GLB, capacity: 96 B, bypass: [weights], read_energy: 5, write_energy: 6}
    - {name: SPAD, capacity: 24 B, per_pe: true, keep: [weights], read_energy: 1}
    - {name: REG, capacity: 4 B, per_pe: true, bypass: [inputs], read_energy: 0.1}
""")
    from mapcert.formulations.registry import family_of
    from mapcert.instances import load

    problem = load(instance)
    why = {m.name: m.why_not(problem) for m in family_of(problem).methods(problem)}
    assert why["enumerate"].startswith("251,256 factor combinations x 1,296 loop orders x 64 keep sets = 2.1e+10 "
                                       "mappings to score")
    assert why["cpsat"] is None and why["milp"] is None
    assert "enumerate" in run("methods", str(instance)).stdout
    small = load(EXAMPLE)
    assert next(m for m in family_of(small).methods(small) if m.name == "enumerate").why_not(small) is None


def test_compare_keeps_to_the_threads_it_is_given(monkeypatch):
    """--jobs sets the solvers' thread count (MAPCERT_SOLVER_THREADS, which
    every back-end reads) for the run, and puts it back."""
    import os

    import mapcert.cli as cli
    from mapcert.solvers.threads import ENVIRONMENT_VARIABLE, solver_threads

    seen = []
    original = cli.run_compare

    def watched(*args, **kwargs):
        seen.append(solver_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(cli, "run_compare", watched)
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    done = run("compare", str(EXAMPLE), "--methods", "cpsat", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert seen == [1] and ENVIRONMENT_VARIABLE not in os.environ
