"""MAC units without operand latches (``hardware: {latches: false}``), as
Timeloop counts: every MAC reads its input and weight at the innermost level
that keeps them and reads and updates its partial sum there.

The cost model is checked against Timeloop's published counts for its own
mapping of AlexNet's first layer on eyeriss_like, against both functional
models and the exact models' term structure on random mappings, and the
exact methods against the enumeration."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mapcert.cli.peers import load_files, read_peer_mapping
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.enumeration import enumerate_multilevel
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.instances import load
from mapcert.validation.multilevel_bounds import multilevel_bounds
from mapcert.interop.timeloop import import_timeloop

from .helpers import random_multilevel_mapping, run_mapcert, term_counts, with_random_keep
from .test_functional_imperfect import LAYERS, one_fanout, partial, random_imperfect_mapping
from .test_multilevel_fanouts import two_fanouts

EYERISS = Path(__file__).parent / "fixtures" / "timeloop" / "eyeriss_like"
PES = 132  # the mapping's busy PEs: S11 down the rows, M12 across the columns


@pytest.fixture(scope="module")
def alexnet(tmp_path_factory):
    """The imported eyeriss_like design on AlexNet's first layer and Timeloop's mapping of it."""
    path = tmp_path_factory.mktemp("alexnet") / "alexnet.yaml"
    path.write_text(import_timeloop([EYERISS / "arch.yaml", EYERISS / "alexnet_conv1.problem.yaml",
                                     EYERISS / "ERT.yaml"]).text)
    loaded = load_files([path], load)
    mapping_file = EYERISS / "alexnet_conv1.map.yaml"
    mapping = read_peer_mapping(loaded, mapping_file, yaml.safe_load(mapping_file.read_text()))
    return loaded.problem, mapping


def test_the_import_counts_every_mac_as_timeloop_does(alexnet):
    """Timeloop's stats for this mapping, per instance times the 132 busy
    PEs: ifmap_spad 798,600 reads and 37,455 fills; weights_spad 798,600
    reads and 14,520 fills; psum_spad 774,400 reads and 798,600 updates (one
    read and one update per MAC, less the first MAC of each of its 24,200
    outputs); shared_glb 412,005 input reads and fills, and 580,800 reads,
    871,200 updates and 290,400 fills of outputs; DRAM 412,005 input and
    1,916,640 weight reads and 290,400 output updates."""
    problem, mapping = alexnet
    assert problem.hierarchy.latches is False
    m = evaluate_multilevel(problem, mapping)
    level = {name: i for i, name in enumerate(m.level_names)}
    reads, writes = m.reads, m.writes
    assert m.macs == 798_600 * PES and m.compute_cycles == 798_600
    assert reads[level["ifmap_spad"]]["inputs"] == 798_600 * PES
    assert writes[level["ifmap_spad"]]["inputs"] == 37_455 * PES
    assert reads[level["weights_spad"]]["weights"] == 798_600 * PES
    assert writes[level["weights_spad"]]["weights"] == 14_520 * PES
    # the MACs' reads and updates of partial sums; mapcert also counts the 72,600 drains per
    # instance to the buffer as reads and writes only the partial sums the buffer sends back
    # (580,800 of them), where Timeloop counts its 72,600 fills per instance, zeros included
    psum = level["psum_spad"]
    assert reads[psum]["outputs"] == (774_400 + 72_600) * PES
    assert writes[psum]["outputs"] == 798_600 * PES + 580_800
    glb = level["shared_glb"]
    assert reads[glb]["inputs"] == writes[glb]["inputs"] == 412_005
    assert writes[glb]["outputs"] == 871_200
    assert reads[glb]["outputs"] == 580_800 + 290_400  # reads back, and the final drain to DRAM
    assert reads[0]["inputs"] == 412_005 and reads[0]["weights"] == 1_916_640 and writes[0]["outputs"] == 290_400


def test_latches_save_the_reads_of_operands_consecutive_macs_share(alexnet):
    problem, mapping = alexnet
    latched = replace(problem, hierarchy=replace(problem.hierarchy, latches=True))
    without, with_latches = evaluate_multilevel(problem, mapping), evaluate_multilevel(latched, mapping)
    ifmap = without.level_names.index("ifmap_spad")
    weights = without.level_names.index("weights_spad")
    # psum_spad's M8 loop, innermost, keeps the input and changes the weight and the output at every MAC
    assert with_latches.reads[ifmap]["inputs"] == without.reads[ifmap]["inputs"] // 8
    assert with_latches.reads[weights]["weights"] == without.reads[weights]["weights"]
    assert with_latches.reads[0] == without.reads[0] and with_latches.writes[0] == without.writes[0]
    assert with_latches.energy < without.energy


@pytest.mark.parametrize("multicast,reduction", [((True, True), (True, True)), ((False, True), (True, False))])
def test_cost_model_matches_both_functional_models_and_the_terms(multicast, reduction):
    problem = MultiLevelProblem(LAYER, replace(two_fanouts(multicast, reduction, chosen=True), latches=False))
    rnd = random.Random(f"{multicast}{reduction}")
    for _ in range(4):
        mapping = with_random_keep(problem, random_multilevel_mapping(problem, rnd, full_orders=True), rnd)
        metrics = evaluate_multilevel(problem, mapping)
        cycle, vectorized = run_multilevel(problem, mapping), run_multilevel_vectorized(problem, mapping)
        assert cycle.outputs_match and vectorized.outputs_match
        assert metrics.reads == cycle.reads == vectorized.reads
        assert metrics.writes == cycle.writes == vectorized.writes
        assert term_counts(problem, mapping) == (metrics.reads, metrics.writes)
        latched = evaluate_multilevel(replace(problem, hierarchy=replace(problem.hierarchy, latches=True)), mapping)
        assert metrics.energy >= latched.energy  # every count only grows without latches


LAYER = ConvLayer(name="t", N=1, M=6, C=4, P=4, Q=3, R=3, S=2, stride=(2, 1))


def test_partial_tiles_count_the_same_in_every_model():
    """Mappings with partial last tiles: the cycle-level and vectorized
    models (whose clipped path follows each instance's own fills) agree,
    and with the cost model where it scores the mapping."""
    problem = MultiLevelProblem(LAYERS[1], replace(one_fanout(), latches=False), factors="any")
    rnd = random.Random(5)
    scored = 0
    for _ in range(8):
        mapping = random_imperfect_mapping(problem, rnd)
        cycle = run_multilevel(problem, mapping, max_steps=400_000)
        vectorized = run_multilevel_vectorized(problem, mapping)
        assert cycle.outputs_match and vectorized.outputs_match
        assert cycle.reads == vectorized.reads and cycle.writes == vectorized.writes
        try:
            metrics = evaluate_multilevel(problem, mapping)
        except ValueError:  # a partial tile mapcert's space does not count
            continue
        scored += partial(problem, mapping)
        assert metrics.reads == cycle.reads and metrics.writes == cycle.writes
    assert scored


@pytest.mark.parametrize("objective,sharing,halo", [("energy", True, False), ("offchip_traffic", True, False),
                                                    ("energy", False, False),
                                                    pytest.param("energy", True, True, marks=pytest.mark.slow)])
def test_exact_methods_agree_with_the_enumeration(objective, sharing, halo):
    hier = two_fanouts(multicast=(sharing, sharing), reduction=(sharing, sharing), glb=256, pe_buffer=32,
                       lanes=(1, 2))
    hier = replace(hier, levels=hier.levels[:3], latches=False)  # the lanes sit right above the MACs
    layer = ConvLayer(name="t", N=1, M=2 if halo else 4, C=1 if halo else 2, P=4, Q=2, R=3, S=1)
    problem = MultiLevelProblem(layer, hier, objective, halo=halo)
    enumerated = enumerate_multilevel(problem)
    with_latches = replace(problem, hierarchy=replace(hier, latches=True))
    assert enumerated.objective >= enumerate_multilevel(with_latches).objective
    if objective == "energy":  # the fetch term: three fetches per MAC, the first ones included
        bound = multilevel_bounds(problem).objective
        assert multilevel_bounds(with_latches).objective < bound <= enumerated.objective
    for method in ("cpsat", "milp"):
        result = solve_multilevel(problem, method, time_limit=60)
        assert result.status == "optimal", (method, result.message)
        assert result.objective == pytest.approx(enumerated.objective), method
        assert evaluate_multilevel(problem, result.mapping).objective(objective) == pytest.approx(result.objective)


def test_an_instance_without_latches_solves_certifies_and_verifies(tmp_path):
    instance = tmp_path / "nolatch.yaml"
    instance.write_text("""family: tiling
workload: {dims: {N: 1, M: 8, C: 4, P: 6, Q: 6, R: 3, S: 3}}
hardware:
  latches: false
  mac_energy: 1
  array: {rows: 2, cols: 4}
  levels:
    - {name: DRAM, read_energy: 200}
    - {name: GLB, capacity: 2 KiB, read_energy: 6}
    - {name: RF, per_pe: true, capacity: 32 B, read_energy: 1}
objective: energy
solver: {method: cpsat, time_limit: 30}
""")
    result = tmp_path / "r.yaml"
    done = run_mapcert("solve", str(instance), "-o", str(result), "--no-heuristics")
    assert done.returncode == 0, done.stderr
    assert "(no latches)" in done.stdout
    saved = yaml.safe_load(result.read_text())
    assert saved["status"] == "optimal" and saved["instance"]["hardware"]["latches"] is False
    verified = run_mapcert("verify", str(result), "--methods", "cpsat")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    compared = yaml.safe_load(run_mapcert("compare", str(instance), "--mapping", str(result), "--methods", "cpsat",
                                          "--json").stdout)
    mine = next(row for row in compared["rows"] if row["kind"] == "user")
    assert mine["objective"] == pytest.approx(saved["objective"])  # its metrics give every level's accesses
    assert [level["name"] for level in mine["metrics"]["levels"]] == ["DRAM", "GLB", "RF"]
    assert mine["metrics"]["levels"] == saved["metrics"]["levels"]
    with_latches = tmp_path / "latch.yaml"
    with_latches.write_text(instance.read_text().replace("latches: false", "latches: true"))
    latched = yaml.safe_load(run_mapcert("solve", str(with_latches), "--no-heuristics", "--json").stdout)
    assert saved["objective"] > latched["objective"]


def test_latches_must_be_true_or_false(tmp_path):
    instance = tmp_path / "bad.yaml"
    instance.write_text("family: tiling\nworkload: {dims: {N: 1, M: 8, C: 4, P: 6, Q: 6, R: 3, S: 3}}\nhardware:\n"
                        "  latches: sometimes\n  levels:\n    - {name: DRAM, read_energy: 200}\n"
                        "    - {name: GLB, capacity: 2 KiB, read_energy: 6}\n")
    done = run_mapcert("solve", str(instance))
    assert done.returncode == 2
    assert "latches" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["!!bool maybe", "!!int 3"])
def test_a_value_its_yaml_tag_cannot_build_is_one_line(tmp_path, value):
    """PyYAML raises a bare KeyError or ValueError for ``!!bool maybe``; the
    instance, a Timeloop file and a mapping given to compare name the line."""
    instance = tmp_path / "tagged.yaml"
    instance.write_text("family: tiling\nworkload: {dims: {N: 1, M: 8, C: 4, P: 6, Q: 6, R: 3, S: 3}}\nhardware:\n"
                        f"  latches: {value}\n  levels:\n    - {{name: DRAM, read_energy: 200}}\n"
                        "    - {name: GLB, capacity: 2 KiB, read_energy: 6}\n")
    done = run_mapcert("solve", str(instance))
    if value == "!!int 3":  # a tag its value fits is read as YAML reads it: 3 is not a Boolean
        assert done.returncode == 2 and "hardware.latches" in done.stderr
        return
    assert done.returncode == 2 and "tagged.yaml:4" in done.stderr and "!!bool cannot read 'maybe'" in done.stderr
    arch = tmp_path / "arch.yaml"
    arch.write_text("architecture:\n  version: !!float zero\n")
    done = run_mapcert("import", "timeloop", str(arch), str(EYERISS / "problem.yaml"))
    assert done.returncode == 2 and "arch.yaml:2" in done.stderr and "!!float cannot read 'zero'" in done.stderr
    good = tmp_path / "good.yaml"
    good.write_text(instance.read_text().replace(value, "false"))
    done = run_mapcert("compare", str(good), "--mapping", str(instance))
    assert done.returncode == 2 and "tagged.yaml:4" in done.stderr and "Traceback" not in done.stderr
