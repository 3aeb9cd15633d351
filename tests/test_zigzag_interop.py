"""ZigZag files in and out: a ZigZag workload, hardware and mapping import,
solve to a proved optimum, the mapping is scored against it with a passing
functional check, and the exported optimum reads back to the same
objective; malformed files exit 2 with one line naming the memory, array
dimension or loop at fault.  The fixtures follow ZigZag's published files
(zigzag/inputs/{workload,hardware,mapping}), scaled down to solve in a
second."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.instances import InstanceError, load, load_document
from mapcert.interop.zigzag import import_instance, read_mapping
from mapcert.interop.zigzag_mapping import export, mapping_to_zigzag
from mapcert.pipeline import solve

from .helpers import run_mapcert

FIX = Path(__file__).resolve().parent / "fixtures" / "zigzag"
CONV = FIX / "conv_small.yaml"
TPU, TPU_MAPPING = FIX / "tpu_small.yaml", FIX / "tpu_small_mapping.yaml"
EYERISS, EYERISS_MAPPING = FIX / "eyeriss_small.yaml", FIX / "eyeriss_small_mapping.yaml"


@pytest.fixture(scope="module")
def tpu_instance(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zigzag") / "instance.yaml"
    from tests.helpers import run_cli

    code, _, stderr = run_cli("import", "zigzag", str(CONV), str(TPU), "--mapping", str(TPU_MAPPING), "-o", str(path))
    assert code == 0, stderr
    return path


def test_import_reads_the_layer_and_the_hierarchy(tpu_instance):
    data = yaml.safe_load(tpu_instance.read_text())
    assert data["workload"]["dims"] == {"N": 1, "M": 8, "C": 4, "P": 4, "Q": 4, "R": 3, "S": 3}
    assert data["workload"]["precision"] == {"inputs": 8, "weights": 8, "outputs": 8, "psums": 16}
    hw = data["hardware"]
    assert [level["name"] for level in hw["levels"]] == ["dram", "sram_512B", "rf_4B", "rf_16B"]
    assert hw["levels"][1]["holds"] == ["inputs", "outputs"] and hw["levels"][1]["capacity"] == 512
    assert hw["fanouts"] == [{"name": "D1xD2", "above": "rf_4B", "y": 4, "x": 4}]
    assert hw["mac_energy"] == 0.04
    # ZigZag 3's ports: r_cost per access of the port's bandwidth_max bits (64), 16-bit elements
    energies = {level["name"]: (level["read_energy"], level["write_energy"]) for level in hw["levels"]}
    assert energies == {"dram": (175.0, 187.5), "sram_512B": (10.4, 9.45), "rf_4B": (0.021, 0.021),
                        "rf_16B": (0.095, 0.095)}
    problem = load(tpu_instance)
    assert problem.hierarchy.levels[3].per_pe and not problem.hierarchy.levels[1].per_pe


def test_memories_with_operands_of_several_widths_are_named(cli, tpu_instance):
    """mapcert prices a level per element, at its widest operand; where
    ZigZag would charge a narrower operand less, the import says so, on
    standard error and in the written instance (a final output, written at
    its own precision, included), and a memory with one operand width is
    not named."""
    code, _, stderr = cli("import", "zigzag", str(CONV), str(TPU), "--mapping", str(TPU_MAPPING))
    assert code == 0
    notes = [line for line in stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 4 and "dram charges every element as 16 bits" in notes[0]
    assert "only the memory_operand_links of entry 'conv1' are read" in notes[3] and "compare INSTANCE.yaml --mapping" in notes[3]
    assert "inputs (8 bits, 2x) and weights (8 bits, 2x) and final outputs (8 bits, 2x)" in notes[0]
    assert notes[1].startswith("note: sram_512B") and notes[2].startswith("note: rf_4B")  # 16-bit psums, 8-bit finals
    assert "rf_16B" not in stderr  # weights alone: one width
    assert "# note: dram charges every element as 16 bits" in tpu_instance.read_text()


def test_cli_solves_scores_the_mapping_and_exports(cli, tpu_instance, tmp_path):
    exported = tmp_path / "optimum.yaml"
    code, stdout, stderr = cli("solve", str(tpu_instance), "-t", "20", "--no-heuristics", "--no-functional",
                               "--export", "zigzag", str(exported))
    assert code == 0, stderr
    assert "wrote" in stdout and "not the optimum" not in stdout
    code, stdout, stderr = cli("compare", str(tpu_instance), "--methods", "cpsat", "-t", "20", "--json",
                               "--mapping", str(TPU_MAPPING), "--mapping", str(exported))
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["status"] == "optimal"
    rows = {row["method"]: row for row in data["rows"]}
    theirs, ours = rows[f"mapping: {TPU_MAPPING.name}"], rows[f"mapping: {exported.name}"]
    assert theirs["functional"] == "passed" and ours["functional"] == "passed"
    assert theirs["objective"] >= data["optimum"] and theirs["gap"] > 0
    assert ours["objective"] == pytest.approx(data["optimum"], rel=1e-12)
    # the exported file is ZigZag's format: a default entry, 'DIM, FACTOR' unrollings, loops innermost first
    entry = yaml.safe_load(exported.read_text())[0]
    assert entry["name"] == "default" and set(entry) == {"name", "spatial_mapping", "temporal_ordering",
                                                        "memory_operand_links"}
    assert all(isinstance(s, str) and ", " in s for v in entry["spatial_mapping"].values() for s in v)


def test_eyeriss_round_trip_gives_the_same_mapping_and_objective():
    """A second published hardware (per-operand memories at three depths):
    import, solve, export, import again, export again."""
    problem = load_document(import_instance(CONV, EYERISS, layer="conv1"))
    assert [lvl.name for lvl in problem.hierarchy.levels] == [
        "dram", "sram_2KB", "sram_512B", "sram_256B", "rf_8B_O", "rf_16B_W", "rf_8B_A"]
    theirs = read_mapping(problem, EYERISS_MAPPING)
    metrics = evaluate_multilevel(problem, theirs)
    assert metrics.fits
    # row-stationary-like: output columns on D1 (rows of the fan-out), filter rows on D2
    assert theirs.fanouts[0].rows == {"Q": 4} and theirs.fanouts[0].cols == {"R": 3}
    result = solve(problem, "cpsat", 30, functional=True, heuristics=False)
    assert result.status.value == "optimal"
    assert result.certificate.functional.passed
    assert metrics.energy >= result.objective
    first = export(problem, result.solution_object, "energy")
    assert first.reads_back and first.objective == pytest.approx(result.objective, rel=1e-12)
    again = read_mapping_from(problem, first.entries)
    assert mapping_to_zigzag(problem, again) == first.entries
    assert evaluate_multilevel(problem, again).energy == pytest.approx(result.objective, rel=1e-12)


def read_mapping_from(problem, entries):
    from mapcert.interop.zigzag_mapping import mapping_from_zigzag

    return mapping_from_zigzag(problem, entries)


def test_a_gemm_reads_its_operands_by_role():
    problem = load_document(import_instance(FIX / "gemm_small.yaml", TPU))
    layer = problem.layer
    assert (layer.op, layer.N, layer.M, layer.C) == ("matmul", 8, 8, 16)
    assert layer.precision.psums == 32


def test_a_strided_layer_with_other_loop_names():
    text = """
- id: 3
  name: odd
  operator_type: Conv
  equation: O[n][m][y][x]+=W[m][ch][ky][kx]*I[n][ch][iy][ix]
  dimension_relations: [iy=2*y+1*ky, ix=2*x+2*kx]
  loop_dims: [N, M, CH, Y, X, KY, KX]
  loop_sizes: [2, 4, 3, 5, 6, 3, 2]
  operand_precision: {I: 8, W: 4, O: 24}
"""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        wl = Path(folder) / "odd.yaml"
        wl.write_text(text)
        workload = import_instance(wl, TPU)["workload"]
    assert workload["dims"] == {"N": 2, "M": 4, "C": 3, "P": 5, "Q": 6, "R": 3, "S": 2}
    assert workload["stride"] == 2 and workload["dilation"] == [1, 2]
    assert workload["precision"] == {"inputs": 8, "weights": 4, "outputs": 24, "psums": 24}
    # '=' of a product is a product summed over the loops O lacks, as ZigZag reads it (zigzag-llm's matmuls)
    with tempfile.TemporaryDirectory() as folder:
        wl = Path(folder) / "mm.yaml"
        wl.write_text(text.replace("+=", "="))
        assert import_instance(wl, TPU)["workload"] == workload
        wl.write_text(text.replace("*I[", "+I["))
        with pytest.raises(InstanceError, match="an element-wise sum"):
            import_instance(wl, TPU)


def _one_line(cli, *args) -> str:
    code, _, stderr = cli(*args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    return lines[0]


def test_malformed_hardware_and_workload_are_refused(cli, tmp_path):
    bad = tmp_path / "unknown_operand.yaml"
    bad.write_text(TPU.read_text().replace("operands: [I1, O]", "operands: [I3, O]"))
    line = _one_line(cli, "import", "zigzag", str(CONV), str(bad))
    assert line.startswith(f"{bad}:") and "sram_512B" in line and "I3" in line
    edge = tmp_path / "edge.yaml"
    edge.write_text((FIX / "edge_tpu_small.yaml").read_text().replace("sizes: [2, 2, 2, 2]", "sizes: [1, 2, 2, 2]"))
    line = _one_line(cli, "import", "zigzag", str(CONV), str(edge))
    assert "rf_1B" in line and "nest" in line
    line = _one_line(cli, "import", "zigzag", str(CONV), str(FIX / "edge_tpu_small.yaml"))
    assert "rf_2B" in line and "D1 x D3 x D4" in line
    line = _one_line(cli, "import", "zigzag", str(CONV), str(TPU), "--layer", "pool0")
    assert "pool0" in line and "without weights" in line
    two = tmp_path / "two_convs.yaml"
    layers = yaml.safe_load(CONV.read_text())
    two.write_text(yaml.safe_dump(layers + [dict(layers[1], id=2, name="conv2")]))
    line = _one_line(cli, "import", "zigzag", str(two), str(TPU))
    assert "conv1, conv2" in line and "--layer" in line


def test_malformed_mappings_are_refused(cli, tpu_instance, tmp_path):
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text(TPU_MAPPING.read_text().replace("- K, 4", "- K, 3"))
    line = _one_line(cli, "compare", str(tpu_instance), "--methods", "cpsat", "--mapping", str(sizes))
    assert line.startswith(f"{sizes}:") and "K multiply to" in line
    other = tmp_path / "other.yaml"
    other.write_text('- name: default\n  spatial_mapping: {D1: ["K, 4"], D3: ["OX, 4"]}\n'
                     "  temporal_ordering: [[FX, 3], [FY, 3], [OY, 4], [C, 4], [K, 2]]\n")
    line = _one_line(cli, "compare", str(tpu_instance), "--methods", "cpsat", "--mapping", str(other))
    assert "D3" in line and "another hardware" in line and ":2:" in line
    wide = tmp_path / "wide.yaml"
    wide.write_text('- name: default\n  spatial_mapping: {D1: ["K, 8"]}\n'
                    "  temporal_ordering: [[FX, 3], [FY, 3], [OY, 4], [OX, 4], [C, 4]]\n")
    line = _one_line(cli, "compare", str(tpu_instance), "--methods", "cpsat", "--mapping", str(wide))
    assert "D1" in line and "unrolls 8" in line
    nothing = tmp_path / "spatial_only.yaml"
    nothing.write_text('- name: default\n  spatial_mapping: {D1: ["K, 4"]}\n')
    line = _one_line(cli, "compare", str(tpu_instance), "--methods", "cpsat", "--mapping", str(nothing))
    assert "temporal_ordering" in line
    partial = tmp_path / "constrained.yaml"  # ZigZag's published constrained mappings leave loops to its mapper
    partial.write_text('- name: default\n  spatial_mapping: {D1: ["K, 4"]}\n'
                       "  temporal_ordering:\n    - [OY, '*']\n    - ['*', '*']\n")
    line = _one_line(cli, "compare", str(tpu_instance), "--methods", "cpsat", "--mapping", str(partial))
    assert "partial (constrained) mapping" in line and "mapcert solve" in line


def test_a_tile_that_overflows_is_refused_with_its_memory(tmp_path):
    small = tmp_path / "tpu_tiny_sram.yaml"
    small.write_text(TPU.read_text().replace("size: 4096", "size: 1024"))
    problem = load_document(import_instance(CONV, small, layer="conv1"))
    mapping = tmp_path / "window_outside.yaml"
    mapping.write_text('- name: conv1\n  spatial_mapping: {D1: ["K, 4"], D2: ["C, 4"]}\n'
                       "  temporal_ordering: [[OX, 4], [OY, 4], [K, 2], [FX, 3], [FY, 3]]\n")
    with pytest.raises(InstanceError) as caught:
        read_mapping(problem, mapping)
    text = str(caught.value)
    assert len(text.splitlines()) == 1 and "sram_512B overflows" in text and text.startswith(f"{mapping}:")


def test_import_does_not_overwrite(cli, tpu_instance):
    before = tpu_instance.read_text()
    line = _one_line(cli, "import", "zigzag", str(CONV), str(TPU), "--layer", "conv1", "-o", str(tpu_instance))
    assert "--force" in line and tpu_instance.read_text() == before


def _random_mappings(problem, count: int, seed: int):
    """Random fitting mappings of ``problem``: each dimension's divisors spread
    over the levels and the fan-out, random orders."""
    import random

    from mapcert.formulations.tiling.multilevel.problem import (DIMS, LevelLoops, MultiLevelMapping, SpatialLoops,
                                                                layer_extent)

    rnd = random.Random(seed)
    hier = problem.hierarchy
    K = len(hier.levels)
    found, tries = [], 0
    while len(found) < count and tries < 20_000:
        tries += 1
        factors = [{d: 1 for d in DIMS} for _ in range(K)]
        rows, cols = {}, {}
        for d in DIMS:
            rest = layer_extent(problem.layer, d)
            primes = []
            p = 2
            while rest > 1:
                while rest % p == 0:
                    primes.append(p)
                    rest //= p
                p += 1
            for prime in primes:
                where = rnd.randrange(K + 2)
                if where == K:
                    rows[d] = rows.get(d, 1) * prime
                elif where == K + 1:
                    cols[d] = cols.get(d, 1) * prime
                elif where == 0 and d in "RS":
                    factors[K - 1][d] *= prime
                else:
                    factors[where][d] *= prime
        fan = hier.fanouts[0]
        if prod_of(rows) > fan.rows or prod_of(cols) > fan.cols:
            continue
        levels = []
        for f in factors:
            order = list(DIMS)
            rnd.shuffle(order)
            levels.append(LevelLoops(factors=f, order=tuple(order)))
        mapping = MultiLevelMapping(levels=tuple(levels), fanouts=(SpatialLoops(rows, cols),))
        if evaluate_multilevel(problem, mapping).fits:
            found.append(mapping)
    return found


def prod_of(values: dict) -> int:
    out = 1
    for v in values.values():
        out *= v
    return out


@pytest.mark.parametrize("hardware", [TPU, EYERISS], ids=["tpu", "eyeriss"])
def test_an_export_reads_back_to_what_it_says(hardware):
    """The file gives no memory per loop: reading it lets each memory from the
    bottom take every loop that still fits.  For any mapping, the exported
    entries read back to the objective the export reports, and exporting
    what was read back writes the same entries (a fixed point); the optimum
    reads back to itself."""
    from mapcert.interop.zigzag_mapping import export as export_entries

    problem = load_document(import_instance(CONV, hardware, layer="conv1"))
    mappings = _random_mappings(problem, 30, seed=1)
    assert len(mappings) >= 20
    for mapping in mappings:
        exported = export_entries(problem, mapping, "energy")
        back = read_mapping_from(problem, exported.entries)
        assert evaluate_multilevel(problem, back).fits
        assert evaluate_multilevel(problem, back).energy == pytest.approx(exported.objective, rel=1e-12)
        assert export_entries(problem, back, "energy").entries == exported.entries


def test_a_note_says_when_zigzags_allocator_would_differ():
    """mapcert cuts every operand of a memory at one loop, inside every memory
    above; ZigZag's allocator cuts each operand on its own.  Reading a file
    says when the two differ (and scores mapcert's reading)."""
    tpu = load_document(import_instance(CONV, TPU, layer="conv1"))
    notes: list[str] = []
    read_mapping(tpu, TPU_MAPPING, notes)
    assert len(notes) == 1 and "rf_16B" in notes[0] and "of W" in notes[0]
    eyeriss = load_document(import_instance(CONV, EYERISS, layer="conv1"))
    notes = []
    read_mapping(eyeriss, EYERISS_MAPPING, notes)
    assert notes == []


def test_parallel_memories_are_stacked_so_that_the_array_splits_inwards(tmp_path):
    """Tesla's weight register (shared along D2 and D3) is listed before its
    per-PE accumulator: stacked above it, the 3-D array becomes two nested
    fan-outs. Its many levels and fractional pJ energies also make a large
    CP-SAT model, which must stay valid (every domain within int64)."""
    from mapcert.formulations.tiling.multilevel.cpsat import build_multilevel_cpsat
    from mapcert.instances import load_text

    instance = import_instance(CONV, FIX / "tesla_npu_like.yaml")
    hw = instance["hardware"]
    assert [level["name"] for level in hw["levels"]][-2:] == ["rf_1B", "rf_4B"]
    assert hw["fanouts"] == [{"name": "D1", "above": "rf_1B", "y": 32, "x": 1},
                             {"name": "D2xD3", "above": "rf_4B", "y": 32, "x": 4}]
    instance["workload"]["dims"] = {"N": 1, "M": 64, "C": 64, "P": 56, "Q": 56, "R": 3, "S": 3}
    problem = load_text(yaml.safe_dump(instance, sort_keys=False))
    builder = build_multilevel_cpsat(problem)[0]
    assert builder.m.Validate() == ""


def test_solve_and_compare_take_the_zigzag_files_directly(cli):
    code, stdout, stderr = cli("compare", str(CONV), str(TPU), "--methods", "cpsat", "-t", "20", "--json",
                               "--mapping", str(TPU_MAPPING))
    assert code == 0, stderr
    data = json.loads(stdout)
    user = next(r for r in data["rows"] if r["kind"] == "user")
    assert data["status"] == "optimal" and user["gap"] >= 0 and user["functional"] == "passed"
    imported = load_document(import_instance(CONV, TPU, TPU_MAPPING))
    assert data["optimum"] == solve(imported, "cpsat", 20, functional=False, heuristics=False).objective
    code, _, stderr = cli("solve", str(CONV), str(FIX.parent / "timeloop" / "eyeriss_like" / "arch.yaml"))
    assert code == 2 and "conv_small.yaml:1: (document): not a timeloop file, while" in stderr
    code, _, stderr = cli("solve", str(TPU))
    assert code == 2 and "a workload or hardware file is missing" in stderr


def test_energies_are_per_element_and_costs_are_required(tmp_path):
    """ZigZag charges r_cost per port word of r_bw bits; mapcert per element."""
    hw = yaml.safe_load(TPU.read_text())
    name, memory = next((n, m) for n, m in hw["memories"].items() if "I2" in m["operands"])
    memory["r_bw"], memory["r_cost"] = 64, 8.0  # eight 8-bit weights per access
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hw, sort_keys=False))
    levels = {lv["name"]: lv for lv in import_instance(CONV, tmp_path / "hw.yaml")["hardware"]["levels"]}
    assert levels[name]["read_energy"] == pytest.approx(1.0)
    del memory["r_cost"]
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hw, sort_keys=False))
    with pytest.raises(InstanceError, match=f"memories.{name}.r_cost: required field"):
        import_instance(CONV, tmp_path / "hw.yaml")


def test_an_absurd_size_and_a_foreign_export_are_refused(cli, tmp_path):
    hw = yaml.safe_load(TPU.read_text())
    big = next(n for n, m in hw["memories"].items() if m["operands"] != ["I1", "I2", "O"] and m["size"] > 64)
    hw["memories"][big]["size"] = 8 * 10**22
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hw, sort_keys=False))
    for command in (("import", "zigzag"), ("solve",)):
        code, _, stderr = cli(*command, str(CONV), str(tmp_path / "hw.yaml"))
        assert code == 2 and f"level {big} (hardware.levels" in stderr and "Traceback" not in stderr, stderr
    code, _, stderr = cli("solve", str(Path(__file__).resolve().parents[1] / "examples" / "small_three_level.yaml"),
                          "--export", "zigzag", str(tmp_path / "out.yaml"))
    assert code == 2 and "fan-out array is not named after ZigZag array dimensions" in stderr
    assert not (tmp_path / "out.yaml").exists()


def test_published_quirks_are_read_and_mistakes_named(cli, tmp_path):
    """A memory of an operand the layer lacks (TPU-like's rfS_2B of S) is left
    out; files given in the wrong order, or a Timeloop map.txt as a mapping,
    are named for what they are."""
    hw = yaml.safe_load(TPU.read_text())
    hw["memories"] = {"rfS_2B": {**next(iter(hw["memories"].values())), "operands": ["S"]}, **hw["memories"]}
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hw, sort_keys=False))
    instance = import_instance(CONV, tmp_path / "hw.yaml")
    assert "rfS_2B" not in [lv["name"] for lv in instance["hardware"]["levels"]]
    assert "left out, serving no operand of the layer: rfS_2B (operand S)" in instance["hardware"]["source"]
    code, _, stderr = cli("import", "zigzag", str(TPU), str(CONV))
    assert code == 2 and "a ZigZag hardware file where the workload goes" in stderr
    (tmp_path / "map.txt").write_text("DRAM [ Weights:9216 ]\n| for M in [0:4)\n")
    code, _, stderr = cli("compare", str(CONV), str(TPU), "--methods", "cpsat", "--mapping", str(tmp_path / "map.txt"))
    assert code == 2 and "not the map.txt summary" in stderr


def test_innermost_memories_count_as_zigzag_does():
    """ZigZag's API evaluates with ``access_same_data_considered_as_no_access``
    false: the innermost memory of an input operand is read once per MAC
    (divided by the MACs under one instance that share the element; none on
    per-PE registers), and the output's is written once per MAC and read
    for every MAC but each output's first, plus the drains to the memory
    above. The import writes ``latches: false`` so that a ZigZag mapping is
    scored in that count; with latches the same mapping reads less."""
    instance = import_instance(CONV, EYERISS, layer="conv1")
    assert instance["hardware"]["latches"] is False
    problem = load_document(instance)
    metrics = evaluate_multilevel(problem, read_mapping(problem, EYERISS_MAPPING))
    levels = {level["name"]: level for level in metrics.to_dict()["levels"]}
    macs, outputs = metrics.macs, 8 * 4 * 4
    assert levels["rf_8B_A"]["reads"]["inputs"] == macs and levels["rf_16B_W"]["reads"]["weights"] == macs
    assert levels["rf_8B_O"]["writes"]["outputs"] == macs
    drains = levels["sram_256B"]["writes"]["outputs"]
    assert levels["rf_8B_O"]["reads"]["outputs"] == macs - outputs + drains
    instance["hardware"]["latches"] = True
    latched = load_document(instance)
    with_latches = evaluate_multilevel(latched, read_mapping(latched, EYERISS_MAPPING))
    assert with_latches.to_dict()["levels"][4]["reads"]["outputs"] < macs  # rf_8B_O: the latch accumulates
    assert with_latches.energy < metrics.energy
    # a memory shared by the array: one read per MAC, multicast to the 4 MACs of D1 (K) that share the input
    tpu = load_document(import_instance(CONV, TPU, layer="conv1"))
    shared = evaluate_multilevel(tpu, read_mapping(tpu, TPU_MAPPING)).to_dict()["levels"]
    assert shared[1]["name"] == "sram_512B" and shared[1]["reads"]["inputs"] == macs // 4
    assert shared[3]["name"] == "rf_16B" and shared[3]["reads"]["weights"] == macs


def test_an_on_chip_last_memory_is_said_to_become_the_off_chip_level(tmp_path):
    """ZigZag's gemm_l1 ends its hierarchy at a 512 KiB L1; mapcert's
    outermost level is unbounded, and the import says so."""
    hardware = tmp_path / "l1.yaml"
    hardware.write_text(TPU.read_text().replace("size: 10000000000", "size: 4194304"))
    notes: list[str] = []
    instance = import_instance(CONV, hardware, layer="conv1", notes=notes)
    said = "the last memory, dram (512 KiB), is the off-chip level: its size is not read"
    assert any(said in note for note in notes) and said in instance["hardware"]["source"]
    notes.clear()
    import_instance(CONV, TPU, layer="conv1", notes=notes)
    assert not any("last memory" in note for note in notes)


def test_a_workloads_own_loop_names_read_and_write_its_mappings(cli, tmp_path):
    """A workload that calls its loops N, M, CH, Y, X, KY, KX: the import
    keeps the names in the instance's header, the export writes them, and
    the exported mapping is read back, against the instance and against
    the ZigZag files given directly."""
    workload = tmp_path / "odd.yaml"
    workload.write_text("""
- id: 3
  name: odd
  operator_type: Conv
  equation: O[n][m][y][x]=W[m][ch][ky][kx]*I[n][ch][iy][ix]
  dimension_relations: [iy=1*y+1*ky, ix=1*x+1*kx]
  loop_dims: [N, M, CH, Y, X, KY, KX]
  loop_sizes: [1, 8, 4, 4, 4, 3, 3]
  operand_precision: {I: 8, W: 8, O: 16, O_final: 8}
""")
    instance, exported = tmp_path / "i.yaml", tmp_path / "opt.yaml"
    code, _, stderr = cli("import", "zigzag", str(workload), str(TPU), "-o", str(instance))
    assert code == 0, stderr
    header = next(line for line in instance.read_text().splitlines() if line.startswith("# zigzag-names: "))
    assert json.loads(header.split(": ", 1)[1]) == {"N": "N", "M": "M", "CH": "C", "Y": "P", "X": "Q", "KY": "R",
                                                    "KX": "S"}
    code, stdout, stderr = cli("solve", str(instance), "-t", "20", "--no-heuristics", "--no-functional",
                               "--export", "zigzag", str(exported))
    assert code == 0 and "not the optimum" not in stdout, stderr
    loops = {loop[0] for loop in yaml.safe_load(exported.read_text())[0]["temporal_ordering"]}
    spatial = {u.split(",")[0] for unrolls in yaml.safe_load(exported.read_text())[0]["spatial_mapping"].values()
               for u in unrolls}
    assert loops | spatial <= {"N", "M", "CH", "Y", "X", "KY", "KX"} and "CH" in loops | spatial, (loops, spatial)
    for files in ([str(instance)], [str(workload), str(TPU)]):
        code, stdout, stderr = cli("compare", *files, "--methods", "cpsat", "-t", "20", "--json",
                                   "--mapping", str(exported), "--no-functional")
        assert code == 0, stderr
        data = json.loads(stdout)
        row = {r["method"]: r for r in data["rows"]}[f"mapping: {exported.name}"]
        assert row["objective"] == pytest.approx(data["optimum"], rel=1e-12)


@pytest.mark.parametrize("padding", ["[[1, 1], [1, 1]]", "{IY: [1, 1], IX: [1, 1]}"], ids=["zigzag3", "older"])
def test_a_padded_layer_is_read_as_its_padded_input_with_a_note(tmp_path, padding):
    """ZigZag's published workloads pad their convolutions. mapcert's input
    is the padded one, so the layer imports with a note of how many more
    input words that is (6 x 6 read per channel where ZigZag moves 4 x 4:
    125% more); the given input sizes may be either; a malformed padding is
    refused at its line."""
    text = CONV.read_text().replace("  operand_source:\n    I: 0\n    W: 1",
                                    f"  operand_source:\n    I: 0\n    W: 1\n  padding: {padding}\n"
                                    "  pr_loop_dims: [IY, IX]\n  pr_loop_sizes: [4, 6]")
    workload = tmp_path / "padded.yaml"
    workload.write_text(text)
    notes: list[str] = []
    instance = import_instance(workload, TPU, notes=notes)
    assert instance["workload"]["dims"] == {"N": 1, "M": 8, "C": 4, "P": 4, "Q": 4, "R": 3, "S": 3}
    assert any("6 x 6 per channel where ZigZag moves the 4 x 4" in n and "125.0% more" in n for n in notes), notes
    done = run_mapcert("import", "zigzag", str(workload), str(TPU), "-o", str(tmp_path / "i.yaml"))
    assert done.returncode == 0 and "note: padding" in done.stderr, done.stderr
    assert "# note: padding: mapcert reads the padded input" in (tmp_path / "i.yaml").read_text()
    workload.write_text(text.replace("pr_loop_sizes: [4, 6]", "pr_loop_sizes: [5, 6]"))
    done = run_mapcert("import", "zigzag", str(workload), str(TPU))
    assert done.returncode == 2 and "pr_loop_sizes" in done.stderr and "Traceback" not in done.stderr
    workload.write_text(text.replace(f"padding: {padding}", "padding: [1, 2, 3]"))
    done = run_mapcert("import", "zigzag", str(workload), str(TPU))
    assert done.returncode == 2 and "padding" in done.stderr and "Traceback" not in done.stderr
