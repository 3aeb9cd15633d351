"""Timeloop v0.4 files in and out (interop/timeloop, ``mapcert import timeloop``).

From a Timeloop architecture, problem and mapper-style mapping: the
instance imports, solves to a proved optimum, the mapping is scored against
it with a passing functional check, and the exported optimum re-imports to
the same mapping and objective. Malformed files exit 2 with one line naming
the node or target. The fixtures under tests/fixtures/timeloop follow the
published examples (eyeriss_like, simple_weight_stationary).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.hardware.hierarchy import hierarchy_preset
from mapcert.instances import InstanceError, load, load_text
from mapcert.interop.timeloop import Names, Source, import_timeloop, mapping_from_timeloop, mapping_to_timeloop
from mapcert.interop.timeloop.files import evaluate, read_yaml

from .helpers import run_mapcert

FIXTURES = Path(__file__).parent / "fixtures" / "timeloop"
EYERISS = FIXTURES / "eyeriss_like"
SWS = FIXTURES / "simple_weight_stationary"


MATMUL_ARCH = """
architecture:
  version: 0.4
  nodes:
  - !Container {name: system}
  - !Component {name: MainMemory, class: DRAM, attributes: {width: 64, datawidth: 8}}
  - !Component {name: Buffer, class: SRAM, attributes: {depth: 64, width: 8, datawidth: 8}}
  - !Container {name: lanes, spatial: {meshX: 4}}
  - !Component {name: Reg, class: regfile, attributes: {entries: 2}}
  - !Component {name: MAC, class: intmac}
"""
MATMUL_PROBLEM = """
problem:
  version: 0.4
  shape:
    name: MatrixMultiply
    dimensions: [M, N, K]
    data_spaces:
    - {name: A, projection: [[[M]], [[K]]]}
    - {name: B, projection: [[[N]], [[K]]]}
    - {name: Z, projection: [[[M]], [[N]]], read_write: true}
  instance: {M: 4, N: 6, K: 8}
"""


def _json(*args: str) -> dict:
    done = run_mapcert(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _refused(*args: str) -> str:
    """The one line of a refusal (exit 2)."""
    done = run_mapcert(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_eyeriss_import_solve_score_export_and_reimport(tmp_path):
    instance = tmp_path / "eyeriss.yaml"
    done = run_mapcert("import", "timeloop", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"),
                       "--ert", str(EYERISS / "ERT.yaml"), "-o", str(instance))
    assert done.returncode == 0, done.stderr
    text = instance.read_text()
    assert text.startswith("# mapcert instance imported from Timeloop files")
    assert "DEFAULT" not in text and "energy_unit: pJ" in text
    exported = tmp_path / "optimum.map.yaml"
    result = _json("solve", str(instance), "-t", "20", "--no-heuristics", "--json",
                   "--export", "timeloop", str(exported))
    assert result["status"] == "optimal"
    optimum = result["objective"]
    # the mapper-style mapping, scored against the proved optimum, runs correctly
    scored = _json("compare", str(instance), "--mapping", str(EYERISS / "mapper.map.yaml"),
                   "--mapping", str(exported), "--methods", "cpsat", "-t", "20", "--json")
    rows = {row["method"]: row for row in scored["rows"]}
    assert scored["optimum"] == pytest.approx(optimum)
    mapper = rows["mapping: mapper.map.yaml"]
    assert mapper["functional"] == "passed" and mapper["objective"] >= optimum and mapper["gap"] >= 0
    again = rows["mapping: optimum.map.yaml"]
    assert again["functional"] == "passed" and again["objective"] == pytest.approx(optimum)
    # import, export and import again: the same mapping
    problem = load(instance)
    names = Names.from_text(text)
    data, where = read_yaml(exported)
    first = mapping_from_timeloop(data, problem, names, Source(str(exported), where))
    second = mapping_from_timeloop(mapping_to_timeloop(problem, first, names), problem, names,
                                   Source(str(exported), where))
    assert second == first
    assert evaluate_multilevel(problem, first).energy == pytest.approx(optimum)


def test_timeloop_files_solve_directly_and_match_the_imported_instance(tmp_path):
    files = [str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml")]
    direct = _json("solve", *files, "-t", "20", "--no-heuristics", "--no-functional", "--json")
    imported = import_timeloop([Path(f) for f in files])
    assert "DEFAULT" in imported.text and "energy_unit: MAC" in imported.text  # defaults are marked
    path = tmp_path / "i.yaml"
    path.write_text(imported.text)
    via_file = _json("solve", str(path), "-t", "20", "--no-heuristics", "--no-functional", "--json")
    assert direct["status"] == via_file["status"] == "optimal"
    assert direct["objective"] == via_file["objective"]


def test_eyeriss_like_matches_the_preset_modelled_on_it():
    """Timeloop's eyeriss_like gives the levels, keep sets, array and constraints of the preset."""
    problem = load_text(import_timeloop([EYERISS / "arch.yaml", EYERISS / "problem.yaml"]).text, "<eyeriss>")
    preset = hierarchy_preset("eyeriss-like")
    ours = problem.hierarchy
    assert [lv.name for lv in ours.levels] == [lv.name for lv in preset.levels]
    assert [lv.holds for lv in ours.levels] == [lv.holds for lv in preset.levels]
    assert [lv.per_pe for lv in ours.levels] == [lv.per_pe for lv in preset.levels]
    assert (ours.fanouts[0].rows, ours.fanouts[0].cols, ours.fanouts[0].level) == (12, 14, preset.pe_level)
    assert ours.levels[1].capacity_bits == 128 * 1024 * 8  # 16384 x 64 bit
    spatial = problem.constraints.fanouts[0][1]
    assert set(spatial.rows) == {"C", "M", "S"} and set(spatial.cols) == {"Q", "M"}
    fixed = {problem.hierarchy.levels[i].name: dict(c.factors) for i, c in problem.constraints.levels}
    assert fixed["weights_spad"] == {"N": 1, "M": 1, "P": 1, "Q": 1, "S": 1}
    # the loops a scratchpad may have keep the example's order: C inside R at the weight scratchpad
    from mapcert.formulations.tiling.multilevel.schema import preset_constraints

    ours_orders = {problem.hierarchy.levels[i].name: c.order for i, c in problem.constraints.levels}
    preset_orders = {preset.levels[i].name: c.order for i, c in preset_constraints("eyeriss-like", preset).levels}
    for level, order in preset_orders.items():
        free = [d for d in ours_orders[level] if d not in fixed[level] or fixed[level][d] != 1]
        if len(free) > 1:  # one loop that may be there needs no order
            assert [d for d in order if d in free] == free, (level, order, ours_orders[level])
    assert preset_orders["weights_spad"] == ("R", "C")


def test_second_published_example_with_variables_and_old_attribute_names():
    imported = import_timeloop([SWS / "arch.yaml", SWS / "problem.yaml"])
    doc = yaml.safe_load(imported.text)
    levels = {lv["name"]: lv for lv in doc["hardware"]["levels"]}
    assert levels["shared_glb"]["capacity"] == 16384 * 64 // 16  # memory_depth: GLB_DEPTH, word_bits: WORD
    assert levels["pe_spad"]["holds"] == ["weights"] and levels["weight_reg"]["capacity"] == 1
    assert doc["workload"]["stride"] == 2 and doc["workload"]["dims"]["C"] == 3
    assert doc["hardware"]["fanouts"] == [{"name": "PE", "above": "pe_spad", "x": 16, "y": 16}]
    scored = _json("compare", str(SWS / "arch.yaml"), str(SWS / "problem.yaml"),
                   "--mapping", str(SWS / "mapper.map.yaml"), "--methods", "cpsat", "-t", "20", "--json")
    assert scored["status"] == "optimal"
    row = {r["method"]: r for r in scored["rows"]}["mapping: mapper.map.yaml"]
    assert row["functional"] == "passed" and row["gap"] >= 0


def test_matrix_multiply_shape_with_its_own_names(tmp_path):
    """Roles come from the projections: A[M,K] x B[K,N] -> Z[M,N] is a matmul whatever the names."""
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    imported = import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"])
    doc = yaml.safe_load(imported.text)
    assert doc["workload"]["op"] == "matmul"
    assert doc["workload"]["dims"] == {"N": 4, "M": 6, "C": 8}  # A's rows, B's columns, the shared K
    assert imported.names.dims == {"N": "M", "M": "N", "C": "K"}
    out = tmp_path / "opt.map.yaml"
    result = _json("solve", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"), "-t", "20",
                   "--no-heuristics", "--json", "--export", "timeloop", str(out))
    assert result["status"] == "optimal"
    assert "K" in out.read_text() and "inter_lanes_spatial" in out.read_text()
    scored = _json("compare", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"), "--mapping", str(out),
                   "--methods", "cpsat", "-t", "20", "--json")
    row = {r["method"]: r for r in scored["rows"]}["mapping: opt.map.yaml"]
    assert row["objective"] == pytest.approx(result["objective"]) and row["functional"] == "passed"


def test_constraint_files_are_read_target_by_target(tmp_path):
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    (tmp_path / "constraints.yaml").write_text("""
constraints:
  version: 0.4
  targets:
  - {target: Buffer, type: dataspace, keep: [A, Z], bypass: [B]}
  - {target: inter_lanes_spatial, type: spatial, factors: [M=1, K=1]}
  - {target: Reg, type: temporal, factors: N=1}
""")
    done = run_mapcert("import", "timeloop", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"),
                       "--constraints", str(tmp_path / "constraints.yaml"))
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    buffer = doc["hardware"]["levels"][1]
    assert buffer["holds"] == ["inputs", "outputs"]
    assert doc["hardware"]["constraints"]["fanouts"]["lanes"]["cols"] == ["M"]  # only Timeloop's N spreads
    assert doc["hardware"]["constraints"]["levels"]["Reg"] == {"factors": {"M": 1}}
    (tmp_path / "bad.yaml").write_text("constraints:\n  targets:\n  - {target: GLB, type: temporal}\n")
    line = _refused("import", "timeloop", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"),
                    "--constraints", str(tmp_path / "bad.yaml"))
    assert "bad.yaml:3" in line and "GLB is not a component or spatial container" in line
    # a refusal about a constraint names the constraint's file and line, not the architecture's
    (tmp_path / "window.yaml").write_text("constraints:\n  targets:\n  - {target: DRAM, type: temporal, "
                                          "factors: R=3}\n")
    line = _refused("import", "timeloop", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"),
                    "--constraints", str(tmp_path / "window.yaml"))
    assert "window.yaml:3" in line and "filter window" in line
    (tmp_path / "clash.yaml").write_text("constraints:\n  targets:\n  - {target: Buffer, type: dataspace, "
                                         "bypass: [B]}\n  - {target: Buffer, type: dataspace, keep: [B]}\n")
    line = _refused("import", "timeloop", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"),
                    "--constraints", str(tmp_path / "clash.yaml"))
    assert "clash.yaml:4" in line and "already given bypass B" in line


def test_a_mapping_of_another_architecture_is_refused():
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"),
                    "--mapping", str(SWS / "mapper.map.yaml"))
    assert "mapper.map.yaml:" in line and "is not in the architecture" in line


def _edited(tmp_path: Path, source: Path, old: str, new: str, name: str) -> str:
    text = source.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return str(path)


def test_unknown_component_class_is_refused_with_the_node(tmp_path):
    arch = _edited(tmp_path, EYERISS / "arch.yaml", "class: smartbuffer_RF", "class: fancy_RF", "arch.yaml")
    line = _refused("import", "timeloop", arch, str(EYERISS / "problem.yaml"))
    assert "arch.yaml:" in line and "ifmap_spad" in line and "unknown class 'fancy_RF'" in line


def test_a_target_the_architecture_lacks_is_refused_with_the_target(tmp_path):
    other = _edited(tmp_path, EYERISS / "mapper.map.yaml", "target: shared_glb\n    type: temporal",
                    "target: global_buffer\n    type: temporal", "other.map.yaml")
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), "--mapping", other)
    assert "other.map.yaml:" in line and "global_buffer is not in the architecture" in line


def test_factors_that_do_not_multiply_out_are_refused_with_target_and_dimension(tmp_path):
    bad = _edited(tmp_path, EYERISS / "mapper.map.yaml", "factors: C1 M1 R1 S1 N1 P6 Q1",
                  "factors: C1 M1 R1 S1 N1 P3 Q1", "bad.map.yaml")
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), "--mapping", bad)
    assert "bad.map.yaml:" in line and "factors of P multiply to 3 (shared_glb 3), its extent is 6" in line


def test_a_tile_that_overflows_a_level_is_refused_with_the_level(tmp_path):
    """64 output channels: keeping C3 M16 R3 S3 = 432 weights at pe_spad overflows its 192 words."""
    problem = _edited(tmp_path, SWS / "problem.yaml", "M: 8,", "M: 64,", "problem.yaml")
    bad = _edited(tmp_path, SWS / "mapper.map.yaml", "C3 M4 R1 S1 N1 P1 Q1", "C1 M4 R1 S1 N1 P1 Q1", "over.map.yaml")
    Path(bad).write_text(Path(bad).read_text().replace("factors: C1 M2 R3 S3", "factors: C3 M16 R3 S3"))
    line = _refused("compare", str(SWS / "arch.yaml"), problem, "--mapping", bad)
    assert "over.map.yaml:" in line and "pe_spad" in line and "overflow" in line and "432" in line


def test_a_filter_loop_at_the_backing_store_is_refused_at_its_target(tmp_path):
    """R3 moved from pe_spad to DRAM: refused at the DRAM target's line, saying where R may go."""
    bad = _edited(tmp_path, SWS / "mapper.map.yaml", "factors: C1 M2 R3 S3", "factors: C1 M2 R1 S3", "r.map.yaml")
    text = Path(bad).read_text() + "  - {target: DRAM, type: temporal, factors: C1 M1 R3 S1 N1 P1 Q1}\n"
    Path(bad).write_text(text)
    line = _refused("compare", str(SWS / "arch.yaml"), str(SWS / "problem.yaml"), "--mapping", bad)
    assert line.startswith(f"{bad}:{len(text.splitlines())}: mapping (DRAM): DRAM cannot split the filter window (R)")
    assert "give that loop to a level below it" in line


def test_a_shape_named_cnn_layer_without_its_body_is_the_built_in_shape(tmp_path):
    """``shape: {name: CNN-Layer}`` with no dimensions: Timeloop loads its built-in shape, and so does the import."""
    full = import_timeloop([EYERISS / "arch.yaml", EYERISS / "problem.yaml"])
    text = (EYERISS / "problem.yaml").read_text()
    body = text[text.index("  shape:"):text.index("  instance:")]
    named = tmp_path / "named.yaml"
    named.write_text(text.replace(body, "  shape:\n    name: CNN-Layer\n"))
    short = import_timeloop([EYERISS / "arch.yaml", named])
    assert yaml.safe_load(short.text)["workload"] == yaml.safe_load(full.text)["workload"]
    assert short.names.all_dims == full.names.all_dims == ["C", "M", "R", "S", "N", "P", "Q"]
    other = tmp_path / "other.yaml"
    other.write_text(text.replace(body, "  shape:\n    name: Transformer-Block\n"))
    message = _refused("import", "timeloop", str(EYERISS / "arch.yaml"), str(other))
    assert "Transformer-Block" in message and "give the shape itself" in message


def test_other_refusals_are_one_line(tmp_path):
    sparse = _edited(tmp_path, EYERISS / "problem.yaml", "densities: {}", "densities: {Inputs: 0.5}", "p.yaml")
    assert "densities.Inputs" in _refused("import", "timeloop", str(EYERISS / "arch.yaml"), sparse)
    bound = _edited(tmp_path, EYERISS / "arch.yaml", "factors: [N=1, P=1, Q=1, R=1]",
                    "factors: [N=1, P=1, Q=1, R<=2]", "bound.yaml")
    assert "R<=2" in _refused("import", "timeloop", bound, str(EYERISS / "problem.yaml"))
    mapping_only = _refused("import", "timeloop", str(EYERISS / "arch.yaml"))
    assert "problem" in mapping_only
    out = tmp_path / "exists.yaml"
    out.write_text("keep me")
    assert "not overwritten" in _refused("import", "timeloop", str(EYERISS / "arch.yaml"),
                                         str(EYERISS / "problem.yaml"), "-o", str(out))
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("file, old, new, where, says", [
    ("problem.yaml", "  instance:", "  instanse:", "problem.instanse", "did you mean 'instance'?"),
    ("problem.yaml", "    M: 8", "    K: 8", "problem.instance.K", "neither a dimension nor a coefficient"),
    ("problem.yaml", "    Wstride: 1", "    Wstrid: 2", "problem.instance.Wstrid", "did you mean 'Wstride'?"),
    ("arch.yaml", "spatial: {meshX: 14}", "spatial: {meshx: 14}", "spatial.meshx", "did you mean 'meshX'?"),
    ("arch.yaml", "    constraints:", "    constraint:", ".constraint", "did you mean 'constraints'?"),
    ("arch.yaml", "permutation: [N, M, C, P, Q, R, S]", "permutaton: [N, M, C, P, Q, R, S]", ".permutaton",
     "did you mean 'permutation'?"),
], ids=["instance", "dimension", "coefficient", "mesh", "constraints", "permutation"])
def test_a_misspelt_field_in_timeloop_files_is_refused_not_dropped(tmp_path, file, old, new, where, says):
    """Read on, each of these would solve another layer or another array
    (every dimension 1, M 1, stride 1, a 1-wide mesh, no constraints) and
    call it optimal: the field is refused at its line, with the name meant."""
    edited = _edited(tmp_path, EYERISS / file, old, new, file)
    files = [edited, str(EYERISS / "problem.yaml")] if file == "arch.yaml" else [str(EYERISS / "arch.yaml"), edited]
    line = _refused("import", "timeloop", *files)
    assert where in line and says in line, line


def test_expressions_are_arithmetic_only():
    assert evaluate("depth * 2", {"depth": "DEPTH", "DEPTH": 8}) == 16
    assert evaluate("LPDDR4", {}) == "LPDDR4"
    assert evaluate("ceil(log2(depth))", {"depth": 12}) == 4
    with pytest.raises(ValueError):
        evaluate("__import__('os')", {})
    with pytest.raises(InstanceError):
        import_timeloop([FIXTURES / "missing.yaml"])


def test_depthwise_shape_reads_groups_and_dilation(tmp_path):
    """dw-cnn-layer: C indexes all three data spaces, so it is the groups (M = C per group = 1)."""
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text("""
problem:
  shape:
    name: dw-cnn-layer
    dimensions: [R, S, P, Q, C, N]
    coefficients: [{name: Wstride, default: 1}, {name: Hstride, default: 1},
                   {name: Wdilation, default: 1}, {name: Hdilation, default: 1}]
    data-spaces:
    - {name: Weights, projection: [[[C]], [[R]], [[S]]]}
    - {name: Inputs, projection: [[[N]], [[C]], [[R, Wdilation], [P, Wstride]], [[S, Hdilation], [Q, Hstride]]]}
    - {name: Outputs, projection: [[[N]], [[C]], [[Q]], [[P]]], read-write: true}
  instance: {C: 8, R: 3, S: 3, P: 4, Q: 4, N: 1, Wdilation: 2, Hdilation: 1}
""")
    imported = import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"])
    workload = yaml.safe_load(imported.text)["workload"]
    assert workload["groups"] == 8 and workload["dims"]["M"] == workload["dims"]["C"] == 8
    assert workload["dilation"] == [2, 1]
    problem = load_text(imported.text, "<dw>")
    assert problem.layer.groups == 8 and problem.layer.dilation == (2, 1)


def test_multiple_buffering_halves_a_level_and_overbooking_is_refused(tmp_path):
    arch = _edited(tmp_path, SWS / "arch.yaml", "      depth: 192\n", "      depth: 192\n      multiple_buffering: 2\n",
                   "arch.yaml")
    doc = yaml.safe_load(import_timeloop([Path(arch), SWS / "problem.yaml"]).text)
    assert {lv["name"]: lv.get("capacity") for lv in doc["hardware"]["levels"]}["pe_spad"] == 96
    over = _edited(tmp_path, SWS / "arch.yaml", "      depth: 192\n", "      depth: 192\n      allow_overbooking: true\n",
                   "over.yaml")
    line = _refused("import", "timeloop", over, str(SWS / "problem.yaml"))
    assert "pe_spad" in line and "allow_overbooking" in line


def test_files_given_together_as_timeloop_takes_them(tmp_path):
    """A constraints file and a mapping given among the files: the
    constraints apply, ``compare`` scores the mapping, ``solve`` says it
    does not; a container's datawidth sizes the storages below it."""
    arch = MATMUL_ARCH.replace("- !Container {name: system}", "- !Container {name: system, attributes: {datawidth: 4}}")
    arch = arch.replace("attributes: {depth: 64, width: 8, datawidth: 8}", "attributes: {depth: 64, width: 8}")
    (tmp_path / "arch.yaml").write_text(arch)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    doc = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"]).text)
    assert doc["hardware"]["levels"][1]["capacity"] == 128  # 64 x 8 bits / 4-bit words
    (tmp_path / "c.yaml").write_text("mapspace_constraints:\n  targets:\n"
                                     "  - {target: inter_lanes_spatial, type: spatial, factors: [M=1, K=1]}\n")
    files = [str(tmp_path / n) for n in ("arch.yaml", "problem.yaml", "c.yaml")]
    out = tmp_path / "opt.map.yaml"
    result = _json("solve", *files, "-t", "20", "--no-heuristics", "--json", "--export", "timeloop", str(out))
    assert result["instance"]["constraints"]["spatial"]["cols"] == ["M"]  # the constraints file applied
    scored = _json("compare", *files, str(out), "--methods", "cpsat", "-t", "20", "--json")
    row = {r["method"]: r for r in scored["rows"]}["mapping: opt.map.yaml"]
    assert row["objective"] == pytest.approx(result["objective"])
    done = run_mapcert("solve", *files, str(out), "-t", "20", "--no-heuristics", "--no-functional")
    assert done.returncode == 0 and "is a mapping; `solve` finds the optimum and does not score it" in done.stderr


def test_an_absurd_size_is_refused_naming_the_level(tmp_path):
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH.replace("depth: 64,", "depth: 1e30,"))
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    for command in (("import", "timeloop"), ("solve",)):
        line = _refused(*command, str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"))
        assert "arch.yaml" in line and "level Buffer (hardware.levels[1].capacity" in line, line
    # a size of the problem names the problem's file, not the architecture's
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM.replace("N: 6", "N: 100000000"))
    line = _refused("import", "timeloop", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"))
    assert line.startswith(str(tmp_path / "problem.yaml") + ":11: problem.instance.N:") and "100,000,000" in line


def test_a_nothing_branch_of_a_parallel_is_skipped(tmp_path):
    """Simba-like's !Parallel gives the inputs a !Nothing branch: no storage."""
    arch = MATMUL_ARCH.replace("  - !Component {name: Reg, class: regfile, attributes: {entries: 2}}\n",
                               "  - !Parallel\n    nodes:\n    - !Nothing {constraints: {dataspace: {keep: [A]}}}\n"
                               "    - !Component {name: Reg, class: regfile, attributes: {entries: 2}}\n")
    (tmp_path / "arch.yaml").write_text(arch)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    doc = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"]).text)
    assert [level["name"] for level in doc["hardware"]["levels"]] == ["MainMemory", "Buffer", "Reg"]
    (tmp_path / "arch.yaml").write_text(arch.replace("!Nothing {constraints: {dataspace: {keep: [A]}}}", "!Nothing"))
    bare = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"]).text)  # a bare tag
    assert [level["name"] for level in bare["hardware"]["levels"]] == ["MainMemory", "Buffer", "Reg"]


def test_the_mappers_optimization_metric_is_the_objective(tmp_path):
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    (tmp_path / "mapper.yaml").write_text("mapper:\n  optimization_metrics: [edp]\n  num_threads: 8\n")
    files = [tmp_path / "arch.yaml", tmp_path / "problem.yaml", tmp_path / "mapper.yaml"]
    text = import_timeloop(files).text
    assert "objective: edp" in text and "# objective: from mapper.optimization_metrics ['edp']" in text
    done = run_mapcert("import", "timeloop", *map(str, files), "--objective", "energy")
    assert done.returncode == 0 and "\nobjective: energy" in done.stdout
    # timeloopfe's processed file spells it in the singular; Timeloop ranks ties by the next metrics
    (tmp_path / "mapper.yaml").write_text("mapper:\n  optimization_metric: [delay, edp, energy]\n")
    text = import_timeloop(files).text
    assert "\nobjective: [latency, energy]\n" in text and "edp left out" in text
    path = tmp_path / "ranked.yaml"
    path.write_text(text)
    assert load(path).secondary == ("energy",)


def test_a_dimension_on_both_axes_of_one_container_has_no_timeloop_form():
    """Timeloop's spatial directive gives each dimension one factor on one
    axis: a mapping that unrolls M on meshX and on meshY of one container
    is refused, not written as a file that needs more instances than exist."""
    from dataclasses import replace

    from mapcert.formulations.tiling.multilevel.problem import SpatialLoops

    imported = import_timeloop([SWS / "arch.yaml", SWS / "problem.yaml"])
    problem = load_text(imported.text, "sws")
    mapping = mapping_from_timeloop(yaml.safe_load((SWS / "mapper.map.yaml").read_text()), problem, imported.names,
                                    Source(str(SWS / "mapper.map.yaml"), None))
    both = replace(mapping, fanouts=(SpatialLoops({"M": 2}, {"M": 2}),))
    with pytest.raises(ValueError, match="M 2 on meshX and 2 on meshY.*one_axis: true"):
        mapping_to_timeloop(problem, both, imported.names)


def test_the_import_keeps_each_dimension_on_one_axis_of_a_container(tmp_path):
    """A container that spreads both mesh axes gets ``one_axis: true``, so
    no optimum unrolls one dimension on both and every optimum exports; the
    same hardware without it finds a mapping that does (M on both axes of a
    4 x 4 array, the layer's other dimensions too small to fill it)."""
    arch = tmp_path / "arch.yaml"
    arch.write_text(MATMUL_ARCH.replace("spatial: {meshX: 4}", "spatial: {meshX: 4, meshY: 4}"))
    problem = tmp_path / "problem.yaml"
    problem.write_text(MATMUL_PROBLEM.replace("instance: {M: 4, N: 6, K: 8}", "instance: {M: 16, N: 1, K: 1}"))
    instance = tmp_path / "mm.yaml"
    assert run_mapcert("import", "timeloop", str(arch), str(problem), "-o", str(instance)).returncode == 0
    text = instance.read_text()
    assert "one_axis: true" in text
    exported = tmp_path / "optimum.map.yaml"
    result = _json("solve", str(instance), "-t", "20", "--no-heuristics", "--json", "--export", "timeloop",
                   str(exported))
    assert result["status"] == "optimal" and exported.exists()
    spatial = load(instance).constraints.fanouts[0][1]
    assert spatial.one_axis
    assert "\nobjective: energy\n" in text
    fast, free = tmp_path / "fast.yaml", tmp_path / "free.yaml"
    fast.write_text(text.replace("\nobjective: energy\n", "\nobjective: latency\n"))
    free.write_text(fast.read_text().replace("one_axis: true", "one_axis: false"))
    unconstrained = _json("solve", str(free), "-t", "20", "--no-heuristics", "--json")
    constrained = _json("solve", str(fast), "-t", "20", "--no-heuristics", "--json")
    assert unconstrained["objective"] == 1 < constrained["objective"]  # M16 on 4 x 4 takes one cycle


def test_a_cluster_shares_its_row_so_each_instance_holds_width_over_cluster_words(tmp_path):
    """Timeloop sizes a storage at ``depth * block_size`` words per
    instance, ``block_size = width / (cluster_size * datawidth)``: Simba's
    weight registers (depth 1, width 512, datawidth 8, cluster_size 64)
    hold one weight each, not 64. A given ``block_size`` is the row's
    words per instance; without a cluster the whole row is one instance's."""
    def capacity(attributes: str) -> int:
        arch = MATMUL_ARCH.replace("{entries: 2}", attributes)
        (tmp_path / "arch.yaml").write_text(arch)
        (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
        doc = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"]).text)
        return {lv["name"]: lv.get("capacity") for lv in doc["hardware"]["levels"]}["Reg"]

    assert capacity("{depth: 1, width: 512, datawidth: 8, cluster_size: 64}") == 1
    assert capacity("{depth: 4, width: 512, datawidth: 8, cluster-size: 16}") == 16
    assert capacity("{depth: 4, width: 512, datawidth: 8}") == 256
    assert capacity("{depth: 4, width: 512, datawidth: 8, block_size: 2, cluster_size: 32}") == 8
    assert capacity("{depth: 3, block_size: 4}") == 12
    # an ERT action pays for a whole row, spread over the cluster: a word's share is width / datawidth
    (tmp_path / "ert.yaml").write_text("ERT:\n  tables:\n  - name: system.Reg[1..4]\n    actions:\n"
                                       "    - {name: read, energy: 6.4}\n    - {name: write, energy: 3.2}\n"
                                       "  - name: system.MainMemory[1..1]\n    actions:\n"
                                       "    - {name: read, energy: 64}\n    - {name: write, energy: 64}\n"
                                       "  - name: system.Buffer[1..1]\n    actions:\n"
                                       "    - {name: read, energy: 2}\n    - {name: write, energy: 2}\n"
                                       "  - name: system.MAC[1..4]\n    actions:\n    - {name: compute, energy: 1}\n")
    for attributes in ("{depth: 4, width: 512, datawidth: 8, block_size: 2, cluster_size: 32}",
                       "{depth: 4, datawidth: 8, block_size: 2, cluster_size: 32}"):
        (tmp_path / "arch.yaml").write_text(MATMUL_ARCH.replace("{entries: 2}", attributes))
        doc = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml",
                                              tmp_path / "ert.yaml"]).text)
        reg = {lv["name"]: lv for lv in doc["hardware"]["levels"]}["Reg"]
        assert (reg["capacity"], reg["read_energy"], reg["write_energy"]) == (8, 0.1, 0.05), attributes
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH.replace("{entries: 2}", "{depth: 1, width: 512, datawidth: 8, "
                                                                            "cluster_size: 3}"))
    line = _refused("import", "timeloop", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"))
    assert "Reg" in line and "cluster_size 3" in line and "not a whole number of 8-bit words" in line


def test_small_energies_keep_three_significant_digits():
    """A thousandth of a pJ would turn a register's 0.00125 pJ per word into
    0.001 (20% less); energies that small keep three significant digits,
    the others a thousandth, so the exact models' integer scale stays small."""
    from mapcert.interop.timeloop.instance import written_energy

    assert written_energy(0.00125) == 0.00125 and written_energy(0.259899 / 64) == 0.00406
    assert written_energy(30.26049) == 30.26 and written_energy(64.0) == 64.0 and written_energy(0.0) == 0.0
    assert written_energy(1.2e-9) == 0.0  # below a millionth: nothing left to keep


def test_a_permutation_with_blanks_and_a_factor_of_zero_read_as_timeloop_reads_them(tmp_path):
    """Timeloop reads a permutation letter by letter, skipping blanks (the
    published Eyeriss constraints write ``NCPQRS M``), and a factor of 0
    as the whole problem dimension (``R=0``, a factor beyond it is cut to
    it); a mapping, which gives trip counts, may not say 0."""
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    (tmp_path / "c.yaml").write_text("mapspace_constraints:\n  targets:\n"
                                     "  - {target: Buffer, type: temporal, permutation: 'M N K', factors: K=0 N=1}\n"
                                     "  - {target: Reg, type: temporal, permutation: MN K, factors: M=99}\n")
    doc = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml", tmp_path / "c.yaml"]).text)
    levels = doc["hardware"]["constraints"]["levels"]
    assert levels["Buffer"]["factors"]["C"] == 8 and levels["Buffer"]["order"][0] == "C"  # K is mapcert's C
    assert levels["Reg"]["factors"]["N"] == 4 and levels["Reg"]["order"] == levels["Buffer"]["order"]  # M is N
    (tmp_path / "m.yaml").write_text("mapping:\n  - {target: MainMemory, type: temporal, factors: M=0 N=6 K=8, "
                                     "permutation: MNK}\n")
    line = _refused("compare", str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml"), str(tmp_path / "m.yaml"))
    assert "M=0" in line and "extent instead of 0" in line


def test_a_constraints_file_adds_to_the_architectures_own_spatial_constraint(tmp_path):
    """A spatial target in a constraints file over a container that has its
    own constraint keeps what it leaves out: factors add up (C=1 M=1 takes
    C and M off the rows that the inline permutation allowed), and the
    inline permutation and split stay."""
    base = yaml.safe_load(import_timeloop([EYERISS / "arch.yaml", EYERISS / "problem.yaml"]).text)
    rows = base["hardware"]["constraints"]["fanouts"]
    (tmp_path / "c.yaml").write_text("architecture_constraints:\n  targets:\n"
                                     "  - {target: inter_PE_spatial, type: spatial, factors: C=1 M=1}\n")
    doc = yaml.safe_load(import_timeloop([EYERISS / "arch.yaml", EYERISS / "problem.yaml", tmp_path / "c.yaml"]).text)
    fan, = doc["hardware"]["constraints"]["fanouts"]
    before = rows[fan]["rows"]
    assert "C" in before and "M" in before
    assert doc["hardware"]["constraints"]["fanouts"][fan]["rows"] == [d for d in before if d not in ("C", "M")]
    assert doc["hardware"]["constraints"]["fanouts"][fan]["cols"] == rows[fan]["cols"]


def test_a_mapping_refused_for_its_mesh_or_its_keep_names_the_targets_line(tmp_path):
    """A spatial target that needs more instances than the mesh has, and a
    keep the architecture does not allow, point at their own lines."""
    source = EYERISS / "mapper.map.yaml"
    mesh = _edited(tmp_path, source, "factors: C4 M1 R1 S3 N1 P1 Q1", "factors: C8 M1 R1 S3 N1 P1 Q1", "mesh.yaml")
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), mesh, "--methods", "cpsat")
    assert line.startswith(f"{mesh}:47:") and "needs 24 instances; it has 12" in line, line
    keep = _edited(tmp_path, source, "keep: [Inputs, Outputs]\n    bypass: [Weights]",
                   "keep: [Inputs, Outputs, Weights]\n    bypass: []", "keep.yaml")
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), keep, "--methods", "cpsat")
    assert line.startswith(f"{keep}:27:") and "shared_glb" in line and "Weights" in line, line


def test_a_target_or_a_factor_given_twice_is_refused(tmp_path):
    """Timeloop keeps one entry per target and one factor per dimension:
    a second one is a mistake to name, not a value to take silently."""
    text = (EYERISS / "mapper.map.yaml").read_text()
    entry = "  - target: psum_spad\n    type: temporal\n    factors: C1 M2 R1 S1 N1 P1 Q1\n    permutation: MCRSNPQ\n"
    assert entry in text
    twice = tmp_path / "twice.map.yaml"
    twice.write_text(text.replace(entry, entry + entry.replace("M2", "M1")))
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), "--mapping", str(twice))
    assert "second temporal entry for psum_spad" in line and "twice.map.yaml:" in line
    doubled = tmp_path / "doubled.map.yaml"
    doubled.write_text(text.replace("factors: C1 M2 R1 S1 N1 P1 Q1", "factors: C1 M2 R1 S1 N1 P1 Q1 M1"))
    line = _refused("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), "--mapping", str(doubled))
    assert "M is given twice (M=2 and M1)" in line


def test_timeloopfe_idioms_read_or_are_said_plainly(tmp_path):
    """``depth: INF`` on the backing store (its size is never read) imports;
    on an on-chip level it is refused as unbounded; a key given twice and a
    Jinja2 template are one line each, at their place."""
    problem = str(EYERISS / "problem.yaml")
    unbounded = _edited(tmp_path, EYERISS / "arch.yaml", "width: 64\n      datawidth: 8",
                        "width: 64\n      depth: INF\n      datawidth: 8", "inf.yaml")
    assert run_mapcert("import", "timeloop", unbounded, problem, "-o", str(tmp_path / "i.yaml")).returncode == 0
    on_chip = _edited(tmp_path, EYERISS / "arch.yaml", "depth: 16384", "depth: INF", "inf_glb.yaml")
    line = _refused("import", "timeloop", on_chip, problem)
    assert "depth INF: an on-chip storage needs a finite size" in line and "shared_glb" in line, line
    twice = _edited(tmp_path, EYERISS / "arch.yaml", "width: 64\n      datawidth: 8",
                    "width: 64\n      width: 32\n      datawidth: 8", "twice.yaml")
    assert "twice.yaml:16: " in (line := _refused("import", "timeloop", twice, problem)) and "duplicate key" in line
    template = tmp_path / "arch.jinja.yaml"
    template.write_text("{% set N = 4 %}\narchitecture:\n  nodes: {{ nodes }}\n")
    for command in (("import", "timeloop", str(template), problem), ("solve", str(template), problem),
                    ("solve", str(template))):
        line = _refused(*command)
        assert "not valid YAML" in line and "a Jinja2 template" in line and "render it first" in line, line


def test_a_factor_on_a_dimension_of_extent_one_says_so(tmp_path):
    """A dimension of extent 1 that mapcert's loop nest leaves out (a head
    count H = 1 beside M) given a larger factor by a mapping of another
    problem names the extent, not a missing dimension."""
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH)
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM.replace("dimensions: [M, N, K]", "dimensions: [H, M, N, K]")
                                           .replace("[[[M]], [[K]]]", "[[[H]], [[M]], [[K]]]")
                                           .replace("[[[M]], [[N]]]", "[[[H]], [[M]], [[N]]]")
                                           .replace("{M: 4,", "{H: 1, M: 4,"))
    files = [str(tmp_path / "arch.yaml"), str(tmp_path / "problem.yaml")]
    out = tmp_path / "opt.map.yaml"
    assert run_mapcert("solve", *files, "-t", "20", "--no-heuristics", "--export", "timeloop", str(out)).returncode == 0
    text = out.read_text()
    assert "target: MainMemory, type: temporal, factors: H1 " in text
    other = tmp_path / "other.map.yaml"
    other.write_text(text.replace("target: MainMemory, type: temporal, factors: H1 ",
                                  "target: MainMemory, type: temporal, factors: H2 "))
    line = _refused("compare", *files, "--mapping", str(other), "--methods", "cpsat", "-t", "10")
    assert "H=2, but H has extent 1 in the problem" in line and "not a dimension" not in line, line


def test_a_container_without_a_mesh_may_be_a_target(tmp_path):
    """timeloopfe lets a constraints file name a container of meshX =
    meshY = 1 (CiMLoop's CiMBank): factors of 1 there are read and
    ignored, a larger factor is refused at its line."""
    constraints = tmp_path / "c.yaml"
    constraints.write_text("constraints:\n  targets:\n  - {target: eyeriss, type: spatial, factors: [N=1, M=1]}\n"
                           "  - {target: eyeriss, type: temporal, factors: [N=1]}\n")
    files = [str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), str(constraints)]
    assert run_mapcert("import", "timeloop", *files, "-o", str(tmp_path / "i.yaml")).returncode == 0
    constraints.write_text("constraints:\n  targets:\n  - {target: eyeriss, type: spatial, factors: [M=2]}\n")
    line = _refused("import", "timeloop", *files)
    assert "c.yaml:3:" in line and "eyeriss spreads no mesh (meshX = meshY = 1)" in line, line


def test_an_export_that_may_need_two_axes_is_refused_before_the_solve(tmp_path, monkeypatch):
    """A hand-written instance on a 2D array whose axes may unroll the same
    dimension (`eyeriss`: M on rows and columns) could have an optimum with
    no Timeloop form: `--export timeloop` says so before solving and writes
    nothing; with `one_axis: true` the same command solves and exports."""
    def never(*args, **kwargs):
        raise AssertionError("solved before the export was checked")

    instance = tmp_path / "eyeriss.yaml"
    instance.write_text("family: tiling\nworkload: resnet18.layer4.0.conv2\nhardware: eyeriss\n")
    out = tmp_path / "optimum.map.yaml"
    with monkeypatch.context() as patch:
        patch.setattr("mapcert.cli.run_solve", never)
        done = run_mapcert("solve", str(instance), "--export", "timeloop", str(out))
    assert done.returncode == 2 and not out.exists()
    assert "fan-out array may unroll one dimension on both its axes" in done.stderr
    assert "one_axis: true" in done.stderr and "Traceback" not in done.stderr
    instance.write_text(instance.read_text() + "constraints:\n  spatial: {one_axis: true}\n")
    done = run_mapcert("solve", str(instance), "-t", "20", "--no-heuristics", "--export", "timeloop", str(out))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(out.read_text())["mapping"]


def test_a_two_level_instance_says_how_to_export_it(tmp_path):
    """The README's two-level instance has levels but is solved by the
    two-level model: `--export` says so and what to add, before solving;
    with `mac_energy: 1` the hierarchy model solves and exports it."""
    source = Path(__file__).parent.parent / "examples" / "vgg16_conv3_2_64KiB.yaml"
    out = tmp_path / "optimum.map.yaml"
    line = _refused("solve", str(source), "--export", "timeloop", str(out))
    assert "two-level model" in line and "mac_energy: 1" in line and not out.exists()
    instance = tmp_path / "vgg.yaml"
    instance.write_text(source.read_text().replace("hardware:\n", "hardware:\n  mac_energy: 1\n", 1))
    done = run_mapcert("solve", str(instance), "-t", "30", "--no-heuristics", "--export", "timeloop", str(out))
    assert done.returncode == 0, done.stderr
    # no array, so no spatial target: a Timeloop architecture of DRAM and a buffer has no container to name
    assert [e["type"] for e in yaml.safe_load(out.read_text())["mapping"] if e["type"] == "spatial"] == []


def test_the_eyeriss_like_preset_exports_onto_the_timeloop_example_it_follows(tmp_path):
    """A layer solved on the `eyeriss-like` preset exports to the containers
    of Timeloop's eyeriss_like (PE_column on meshX, PE on meshY), and the
    example architecture takes the mapping under its own constraints."""
    instance = tmp_path / "layer.yaml"
    instance.write_text("family: tiling\nworkload: {name: l, op: conv2d, dims: {M: 8, C: 4, P: 6, Q: 6, R: 3, S: 3}}\n"
                        "hardware: eyeriss-like\n")
    out = tmp_path / "optimum.map.yaml"
    done = run_mapcert("solve", str(instance), "-t", "20", "--no-heuristics", "--export", "timeloop", str(out))
    assert done.returncode == 0, done.stderr
    targets = {entry["target"] for entry in yaml.safe_load(out.read_text())["mapping"] if entry["type"] == "spatial"}
    assert targets <= {"inter_PE_column_spatial", "inter_PE_spatial"}, targets
    scored = _json("compare", str(EYERISS / "arch.yaml"), str(EYERISS / "problem.yaml"), "--mapping", str(out),
                   "--methods", "cpsat", "-t", "20", "--json")
    row = {r["method"]: r for r in scored["rows"]}[f"mapping: {out.name}"]
    assert row["status"] == "feasible" and row["functional"] == "passed", row


@pytest.mark.parametrize("spatial, expected", [
    ("spatial: {meshX: 4, meshY: 4}, constraints: {spatial: {permutation: [K, M], split: 1}}",
     {"cols": ["C"], "rows": ["N", "M"]}),
    ("spatial: {meshX: 4}, constraints: {spatial: {permutation: [K]}}", None),
    ("spatial: {meshX: 4, meshY: 4}, constraints: {spatial: {permutation: [K], split: 3}}", {"rows": ["N", "M"]}),
], ids=["split-inside", "order-only", "split-beyond"])
def test_a_partial_spatial_permutation_reads_as_timeloop_reads_it(tmp_path, spatial, expected):
    """Timeloop's spatial permutation may be partial: the dimensions it
    leaves out follow it and take the positions after `split` (meshY), or
    either axis when `split` lies beyond the list; the order alone limits
    no dimension. (K is the matmul's reduction, mapcert's C.)"""
    (tmp_path / "arch.yaml").write_text(MATMUL_ARCH.replace("spatial: {meshX: 4}", spatial))
    (tmp_path / "problem.yaml").write_text(MATMUL_PROBLEM)
    doc = yaml.safe_load(import_timeloop([tmp_path / "arch.yaml", tmp_path / "problem.yaml"]).text)
    fanouts = doc["hardware"].get("constraints", {}).get("fanouts")
    got = None if fanouts is None else {k: v for k, v in fanouts["lanes"].items() if k in ("rows", "cols")}
    assert (got or None) == expected, got


def test_a_scratchpad_too_small_is_said_in_words(tmp_path):
    """Timeloop counts a memory in words: a weight scratchpad of 4 words that
    the constraints make hold a 4 x 3 weight tile is refused in words."""
    arch = _edited(tmp_path, EYERISS / "arch.yaml", "factors: [N=1, M=1, P=1, Q=1, S=1]",
                   "factors: [N=1, M=1, P=1, Q=1, S=1, C=4, R=3]", "arch.yaml")
    Path(arch).write_text(Path(arch).read_text().replace("depth: 192", "depth: 2", 1))
    done = run_mapcert("solve", arch, str(EYERISS / "problem.yaml"), "-t", "10")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "weights_spad holds 4 words of 8 bits" in done.stderr and "need 12 words of 8 bits" in done.stderr
