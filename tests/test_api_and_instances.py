"""Python API, instance loading, presets and the round trip of results."""

from __future__ import annotations

from pathlib import Path

import pytest

import mapcert
from mapcert import workload_library
from mapcert.formulations.registry import family_of
from mapcert.instances import load_text
from mapcert.units import parse_bytes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text,expected", [
    ("64 KiB", 65536), ("100 KB", 100000), (4096, 4096), ("4096", 4096), ("1.5 KiB", 1536),
    ("2 MiB", 2 * 1024 ** 2), ("512 B", 512), ("3 TB", 3 * 10 ** 12), ("1 PiB", 2 ** 50),
    ("64 KIB", 65536), ("1e3", 1000), ("1.5e3 B", 1500), ("64 kB", 64000),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["64 K", "lots", "-1", 0, "1.3 B", True, "64 kb", "4096 b", "1e-3"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_a_negative_size_is_told_to_be_positive():
    with pytest.raises(ValueError, match="must be positive, got '-4 KiB'"):
        parse_bytes("-4 KiB")


@pytest.mark.parametrize("text", ["2 PiB", "5000 TiB", "1 EiB", "3 YB", 2 ** 50 + 1])
def test_a_size_past_the_range_is_told_so_not_called_unreadable(text):
    with pytest.raises(ValueError, match="beyond the supported range"):
        parse_bytes(text)


def test_a_thousands_comma_inside_braces_is_explained():
    """YAML reads ``{capacity: 1,024}`` as capacity 1 and a key ``024``
    (octal 20); the message says why, not just that keys must be strings."""
    from mapcert.instances import InstanceError, load_text

    text = """family: tiling
workload: vgg16.conv3_2
hardware:
  name: mine
  levels:
    - {name: DRAM, read_energy: 200}
    - {name: GLB, capacity: 1,024, read_energy: 6}
objective: energy
"""
    with pytest.raises(InstanceError) as caught:
        load_text(text, "mine.yaml")
    message = str(caught.value)
    assert "mine.yaml:7: hardware.levels[1]: holds the key 20" in message
    assert "thousands comma" in message and "Keys should be strings" not in message


@pytest.mark.parametrize("objective,workload", [("energy", "lenet5.conv1"), ("edp", "lenet5.conv1"),
                                                ("[latency, energy]", "lenet5.conv1"), ("energy", "lenet5")])
def test_energy_without_access_energies_is_refused(objective, workload):
    """A hierarchy whose levels give no access energy costs every mapping
    the same energy: minimizing it would call an arbitrary mapping optimal."""
    from mapcert.instances import InstanceError, load_text

    text = f"""family: tiling
workload: {workload}
hardware:
  name: mine
  array: {{rows: 4, cols: 4}}
  levels:
    - {{name: DRAM}}
    - {{name: GLB, capacity: 8 KiB}}
    - {{name: RF, capacity: 64 B, per_pe: true}}
objective: {objective}
"""
    with pytest.raises(InstanceError, match="read_energy and write_energy is 0"):
        load_text(text, "mine.yaml")
    assert load_text(text.replace(f"objective: {objective}", "objective: latency"), "mine.yaml")


@pytest.mark.parametrize("objective,named", [("energy", "GLB, RF have"), ("[edp, latency]", "GLB, RF have"),
                                             ("offchip_traffic", None)])
def test_levels_without_access_energy_are_named(objective, named):
    """When DRAM prices its accesses but the on-chip levels give none, the
    instance is legal (a level may be negligible) but its energy counts no
    on-chip access: the header of every command says which levels, since a
    forgotten read_energy would otherwise pass unnoticed."""
    from mapcert.formulations import registry
    from mapcert.instances import load_text

    problem = load_text(f"""family: tiling
workload: lenet5.conv1
hardware:
  array: {{rows: 4, cols: 4}}
  levels:
    - {{name: DRAM, read_energy: 200}}
    - {{name: GLB, capacity: 8 KiB}}
    - {{name: RF, capacity: 64 B, per_pe: true}}
objective: {objective}
""", "mine.yaml")
    header = registry.family_of(problem).describe(problem)
    layer = problem.layer  # the extents as read, so that a dimension read wrong shows in every header
    assert f"(conv2d N=1 M={layer.M} C={layer.C} P={layer.P} Q={layer.Q} R={layer.R} S={layer.S})" in header
    if named is None:
        assert "note:" not in header
    else:
        assert f"note: {named} no access energy" in header and "DRAM" not in header.split("note:")[1]


def test_minimal_design_instance_loads():
    problem = mapcert.load(ROOT / "examples" / "vgg16_conv3_2_64KiB.yaml")
    assert problem.layer.M == 256 and problem.buffer.capacity_bits == 64 * 1024 * 8
    assert problem.space == "divisors" and problem.solver.method == "cpsat"


def test_pim_instances_load_and_solve():
    crossbar = load_text("family: crossbar\nworkload: resnet18\nhardware: {preset: neurosim-rram, tiles: 128}\n"
                         "constraints: {budget: 8192}\n")
    assert crossbar.crossbar_budget == 8192 and crossbar.chip.tiles == 128
    result = mapcert.solve(crossbar, functional=False, heuristics=False)  # both: tests/test_crossbar*.py
    assert result.status == "optimal" and all(c.passed for c in result.certificate.checks)
    pairing = load_text("family: pairing\nworkload: mobilenetv2.block3.depthwise\n")
    assert pairing.filters == 144 and pairing.positions == 9
    assert mapcert.solve(pairing).status == "optimal"


def test_pairing_weights_from_npz(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", weights=rng.integers(-128, 128, size=(64, 3, 3, 3)))
    (tmp_path / "i.yaml").write_text("family: pairing\nworkload: vgg16.conv1_1\nweights: {file: w.npz}\n")
    problem = mapcert.load(tmp_path / "i.yaml")
    assert problem.weights.shape == (64, 27)
    assert mapcert.solve(problem).status == "optimal"


def test_every_preset_layer_loads():
    for net in workload_library.networks():
        for name in workload_library.compute_layers(net):
            problem = load_text(f"family: tiling\nworkload: {net}.{name}\nhardware: glb-64KiB\n")
            assert problem.layer.macs > 0


def test_depthwise_matmul_and_partitioned_presets_solve():
    dw = load_text("family: tiling\nworkload: mobilenetv2.block3.depthwise\nhardware: eyeriss-glb-partitioned\n")
    assert dw.layer.groups == dw.layer.C == dw.layer.M
    fc = load_text("family: tiling\nworkload: alexnet.fc6\nhardware: eyeriss-glb\n")
    for problem in (dw, fc):
        report = mapcert.solve(problem)
        assert report.status == "optimal"
    # depthwise: no cross-channel reduction, so the compulsory traffic is reachable
    result = mapcert.solve(dw)
    compulsory = next(b for b in result.bounds if b.name == "compulsory")
    assert result.objective == pytest.approx(compulsory.value)


def test_dumped_instance_round_trips():
    import yaml

    problem = load_text("family: tiling\nworkload: resnet50.layer2.0.conv2\nhardware: eyeriss-glb-partitioned\n"
                        "space: {tiles: any}\n")
    again = load_text(yaml.safe_dump(family_of(problem).dump(problem)))
    assert again.layer == problem.layer and again.buffer == problem.buffer and again.space == "any"


def test_a_partial_partition_is_read_the_same_way_by_both_tiling_models():
    """A two-level buffer whose partition leaves out a tensor lets that
    tensor bypass it, as a hierarchy level does: the instance goes to the
    multi-level model (the two-level one keeps every tensor in its buffer),
    which solves it; a partition of all three tensors stays two-level."""
    import mapcert
    from mapcert.formulations import registry
    from mapcert.instances import load_text

    text = """family: tiling
workload: {name: small, dims: {N: 1, M: 16, C: 8, P: 8, Q: 8, R: 3, S: 3}}
hardware:
  levels:
    - {name: DRAM}
    - {name: GLB, partition: {inputs: 1 KiB, weights: 1 KiB}}
objective: offchip_traffic
solver: {time_limit: 30}
"""
    problem = load_text(text, "partial.yaml")
    assert registry.family_of(problem).key == "tiling-hierarchy"
    assert problem.hierarchy.levels[1].holds == {"inputs", "weights"}
    result = mapcert.solve(problem)
    assert result.status.value == "optimal"
    whole = load_text(text.replace("weights: 1 KiB}", "weights: 1 KiB, outputs: 1 KiB}"), "whole.yaml")
    assert registry.family_of(whole).key != "tiling-hierarchy"
    # without an objective, DRAM and one buffer without energies keep the two-level default
    assert load_text(text.replace("objective: offchip_traffic\n", ""), "default.yaml").objective == "offchip_traffic"
