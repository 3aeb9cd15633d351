"""Timeloop's v0.3 tree (``subtree`` / ``local``) read as Timeloop reads it.

Two fixtures describe the hardware of ``eyeriss_like`` (v0.4) in the older
tree: ``eyeriss_v03`` as a hand-written v0.3 design (instance ranges in
names, meshX on components, a DummyBuffer level for the PE columns,
constraints on the levels above each fan-out), and ``eyeriss_processed`` as
timeloopfe hands it to Timeloop (one flat local list, ``inter_*_spatial``
placeholders carrying the containers' constraints). Both import to the
levels, capacities and fan-outs Timeloop builds from them and reach the
v0.4 design's proved optimum; broken trees are refused at their line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.instances import load_text
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.interop.timeloop import Source, TimeloopError, import_timeloop, mapping_from_timeloop, mapping_to_timeloop

FIXTURES = Path(__file__).parent / "fixtures" / "timeloop"
V04, V03, PROCESSED = FIXTURES / "eyeriss_like", FIXTURES / "eyeriss_v03", FIXTURES / "eyeriss_processed"
V03_FILES = [V03 / "arch.yaml", V03 / "problem.yaml", V03 / "constraints.yaml"]


def _instance(paths: list[Path]) -> dict:
    return yaml.safe_load(import_timeloop(paths).text)


def _optimum(paths: list[Path]) -> float:
    imported = import_timeloop(paths)
    result = solve_multilevel(load_text(imported.text, "imported"), "cpsat", 60)
    assert result.status == "optimal"
    return result.objective


def test_a_v03_tree_becomes_timeloops_levels_and_fanouts():
    hardware = _instance(V03_FILES)["hardware"]
    assert hardware["source"].startswith("Timeloop files (a v0.3 subtree architecture)")
    levels = {level["name"]: level for level in hardware["levels"]}
    assert list(levels) == ["DRAM", "shared_glb", "DummyBuffer", "ifmap_spad", "weights_spad", "psum_spad"]
    # memory_depth x memory_width / word-bits, per instance
    assert [levels[n]["capacity"] for n in list(levels)[1:]] == [131072, 16, 24, 384, 16]
    assert levels["DummyBuffer"]["holds"] == []
    # 14 DummyBuffers (meshX 14), then 168 PEs as 14 columns of 12: the second fan-out is the 12 rows
    assert hardware["fanouts"] == [{"name": "DummyBuffer_array", "above": "DummyBuffer", "x": 14, "y": 1},
                                   {"name": "PE", "above": "ifmap_spad", "x": 1, "y": 12}]
    # a spatial constraint acts on the fan-out below its target: Q and M across the columns, S, C, M down
    fanouts = hardware["constraints"]["fanouts"]
    assert fanouts["DummyBuffer_array"]["cols"] == ["Q", "M"]
    assert set(fanouts["PE"]["rows"]) == {"S", "C", "M"}


def test_the_v03_and_processed_trees_reach_the_v04_designs_optimum():
    v04 = _optimum([V04 / "arch.yaml", V04 / "problem.yaml"])
    assert _optimum(V03_FILES) == v04 == 226_592  # halo reuse and no operand latches, as Timeloop counts
    processed = _instance([PROCESSED / "parsed-processed-input.yaml"])
    hardware = processed["hardware"]
    assert [level["name"] for level in hardware["levels"]] == ["DRAM", "shared_glb", "ifmap_spad", "weights_spad",
                                                                 "psum_spad"]
    # the placeholders name the containers, so their targets reach the right axis
    assert hardware["fanouts"] == [{"name": "PE_column+PE", "above": "ifmap_spad", "x": 14, "y": 12}]
    fan = hardware["constraints"]["fanouts"]["PE_column+PE"]
    assert fan["cols"] == ["Q", "M"] and set(fan["rows"]) == {"S", "C", "M"}
    assert _optimum([PROCESSED / "parsed-processed-input.yaml"]) == v04


def _refusal(tmp_path: Path, old: str, new: str) -> str:
    arch = tmp_path / "arch.yaml"
    text = (V03 / "arch.yaml").read_text()
    assert old in text
    arch.write_text(text.replace(old, new))
    with pytest.raises(TimeloopError) as caught:
        import_timeloop([arch, V03 / "problem.yaml"])
    (issue,) = caught.value.issues
    return str(issue)


@pytest.mark.parametrize("old, new, line, words", [
    ("  - name: PE[0..167]", "  - name: PE[167..0]", 38, "ends before it starts"),
    ("                  meshX: 14\n                  read_bandwidth: 2", "                  meshX: 5\n"
     "                  read_bandwidth: 2", 46, "meshX 5 does not divide its 168 instances"),
    ("DummyBuffer[0..13]     # one per PE column: a mesh of 14 columns\n              class: regfile\n"
     "              attributes:\n                depth: 16\n                width: 8\n                word-bits: 8\n"
     "                meshX: 14", "DummyBuffer[0..15]\n              class: regfile\n              attributes:\n"
     "                depth: 16\n                width: 8\n                word-bits: 8\n                meshX: 16",
     40, "its mesh 14 x 12 is not a whole number of copies of the level above (16 x 1)"),
    ("          subtree:\n          - name: PE[0..167]", "          subtree:\n          - name: other\n"
     "          - name: PE[0..167]", 39, "one subtree per level"),
])
def test_a_broken_v03_tree_is_refused_at_its_line(tmp_path, old, new, line, words):
    issue = _refusal(tmp_path, old, new)
    assert f"arch.yaml:{line}:" in issue and words in issue, issue


def test_an_ert_action_listed_per_argument_costs_its_dearest(tmp_path):
    """A v0.3 ERT lists ``read`` once per (data_delta, address_delta); Timeloop charges the largest."""
    tables = []
    for path, energy in (("system.DRAM", 512.0), ("system.eyeriss.shared_glb", 16.0),
                         ("system.eyeriss.DummyBuffer[0..13]", 0.5), ("system.eyeriss.PE[0..167].ifmap_spad", 1.0),
                         ("system.eyeriss.PE[0..167].weights_spad", 1.0),
                         ("system.eyeriss.PE[0..167].psum_spad", 1.0)):
        actions = [{"name": name, "arguments": {"data_delta": delta, "address_delta": delta},
                    "energy": energy * delta} for name in ("read", "write") for delta in (0, 1)]
        tables.append({"name": path, "actions": actions})
    tables.append({"name": "system.eyeriss.PE[0..167].mac", "actions": [
        {"name": "compute", "arguments": {"operand_delta": 0}, "energy": 0.1},
        {"name": "compute", "arguments": {"operand_delta": 1}, "energy": 2.0}]})
    ert = tmp_path / "ERT.yaml"
    ert.write_text(yaml.safe_dump({"ERT": {"version": 0.3, "tables": tables}}))
    hardware = _instance(V03_FILES + [ert])["hardware"]
    levels = {level["name"]: level for level in hardware["levels"]}
    assert levels["DRAM"]["read_energy"] == 64.0  # 512 pJ for a 64-bit row of 8 words
    assert levels["ifmap_spad"]["read_energy"] == 0.5  # 1 pJ for a 16-bit row of 2 words
    assert hardware["mac_energy"] == 2.0


def test_a_v03_optimum_exports_with_the_levels_as_spatial_targets():
    """A v0.3 tree has no containers: Timeloop gives a fan-out's spatial loops to the
    storage level above it, and the exported optimum reads back to the same energy."""
    imported = import_timeloop(V03_FILES)
    problem = load_text(imported.text, "imported")
    result = solve_multilevel(problem, "cpsat", 60)
    exported = mapping_to_timeloop(problem, result.mapping, imported.names)
    spatial = [t["target"] for t in exported["mapping"] if t["type"] == "spatial"]
    assert spatial == ["DummyBuffer", "shared_glb"]  # the 12 rows below DummyBuffer, the 14 columns below the GLB
    back = mapping_from_timeloop(exported, problem, imported.names, Source("opt.map.yaml", None))
    assert evaluate_multilevel(problem, back).energy == result.objective


def test_timeloops_first_format_is_named_and_refused(tmp_path):
    """``arch: {arithmetic, storage}`` (Timeloop's 2019 configs) is not read; the refusal says what is."""
    old = tmp_path / "sample.yaml"
    old.write_text("arch:\n  arithmetic: {instances: 16, meshX: 4, word-bits: 8}\n  storage:\n"
                   "  - {name: Registers, entries: 1, instances: 16, meshX: 4, word-bits: 8}\n"
                   "  - {name: DRAM, technology: DRAM, instances: 1, word-bits: 8}\n")
    with pytest.raises(TimeloopError) as caught:
        import_timeloop([old, V03 / "problem.yaml"])
    (issue,) = caught.value.issues
    assert str(issue).startswith(f"{old}:1: arch: Timeloop's first format") and "version: 0.3" in str(issue)


def test_older_spellings_timeloop_reads_are_read(tmp_path):
    """What published v0.3 files write and Timeloop reads: constraints as mapspace:
    {constraints: [...]}, the mapper's optimization-metrics, multiple-buffering, sizeKB, a
    class named by a word (reg_storage), the compute unit anywhere in its local list."""
    text = (V03 / "arch.yaml").read_text()
    text = text.replace("""              - name: mac
                class: intmac
                attributes:
                  datawidth: 8
                  meshX: 14
""", "").replace("""            local:
              - name: ifmap_spad""", """            local:
              - name: mac
                class: intmac
                attributes: {datawidth: 8, meshX: 14}
              - name: ifmap_spad""")
    text = text.replace("""                memory_depth: 16384
                memory_width: 64""", """                sizeKB: 128""").replace("class: smartbuffer_RF\n                attributes:\n"
                                                                        "                  memory_depth: 16",
                                                                        "class: reg_storage\n                attributes:\n"
                                                                        "                  multiple-buffering: 2\n"
                                                                        "                  memory_depth: 16")
    arch = tmp_path / "arch.yaml"
    arch.write_text(text)
    constraints = yaml.safe_load((V03 / "constraints.yaml").read_text())["architecture_constraints"]["targets"]
    extra = tmp_path / "more.yaml"
    extra.write_text(yaml.safe_dump({"mapspace": {"constraints": constraints},
                                     "mapper": {"optimization-metrics": ["delay", "energy"]}}))
    instance = _instance([arch, V03 / "problem.yaml", extra])
    levels = {level["name"]: level for level in instance["hardware"]["levels"]}
    assert levels["shared_glb"]["capacity"] == 131072  # 128 KB of 8-bit words
    assert levels["psum_spad"]["capacity"] == 8  # 16 x 16 / 16 bits, double-buffered
    assert set(instance["hardware"]["constraints"]["fanouts"]["PE"]["rows"]) == {"S", "C", "M"}
    assert instance["objective"] == ["latency", "energy"]  # ties ranked by the next metric, as Timeloop does
    assert instance["hardware"]["fanouts"][-1] == {"name": "PE", "above": "ifmap_spad", "x": 1, "y": 12}
    ert = tmp_path / "ERT.yaml"
    tables = [{"name": n, "actions": [{"name": "access", "energy": 2.0}]}
              for n in ("DRAM", "shared_glb", "DummyBuffer", "ifmap_spad", "weights_spad", "psum_spad")]
    ert.write_text(yaml.safe_dump({"ERT": {"version": 0.3, "tables": tables + [
        {"name": "mac", "actions": [{"name": "compute", "energy": 1.0}]}]}}))
    assert _instance(V03_FILES + [ert])["hardware"]["levels"][3]["read_energy"] == 1.0  # 2 pJ, 2 words a row


def test_extents_beside_the_shape_are_the_instance(tmp_path):
    """Older problem files give the extents beside ``shape:``, with no ``instance:``; Timeloop reads them."""
    problem = yaml.safe_load((V03 / "problem.yaml").read_text())
    older = {**{k: v for k, v in problem["problem"].items() if k != "instance"}, **problem["problem"]["instance"]}
    path = tmp_path / "older.prob.yaml"
    path.write_text(yaml.safe_dump({"problem": older}))
    assert _instance([V03 / "arch.yaml", path])["workload"] == _instance(V03_FILES[:2])["workload"]
