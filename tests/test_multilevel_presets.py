"""Hierarchy presets that carry their own mapping constraints (Timeloop's
Eyeriss-like example, a TPU-like systolic array): the constraints bind
every instance on them, add up with the instance's, and a contradiction is
refused with its place named."""

from __future__ import annotations

import pytest
import yaml

from mapcert.formulations.tiling.multilevel.constraints import violations
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.instances import load

from helpers import run_mapcert

LAYER = {"name": "small", "dims": {"N": 1, "M": 16, "C": 8, "P": 7, "Q": 7, "R": 3, "S": 3}}


def instance(tmp_path, hardware: str, **extra):
    path = tmp_path / f"{hardware}.yaml"
    path.write_text(yaml.safe_dump({"family": "tiling", "workload": LAYER, "hardware": hardware,
                                    "objective": "energy", **extra}, sort_keys=False))
    return path


def test_the_eyeriss_like_preset_carries_timeloops_constraints(tmp_path):
    problem = load(str(instance(tmp_path, "eyeriss-like")))
    described = problem.constraints.describe(problem.hierarchy)
    assert "ifmap_spad: C=1, M=1, N=1, P=1, Q=1, R=1, S=1" in described
    assert "array rows: only C/M/S" in described and "array cols: only M/Q" in described
    result = solve_multilevel(problem, "cpsat", time_limit=60)
    assert result.status == "optimal"
    assert not violations(problem.constraints, problem.hierarchy, result.mapping)
    loops = {name: level for name, level in zip(problem.level_names, result.mapping.levels)}
    assert all(f == 1 for f in loops["ifmap_spad"].factors.values())  # no temporal loops in the ifmap scratchpad
    array = result.mapping.fanout(0)
    assert set(array.cols) <= {"Q", "M"} and set(array.rows) <= {"C", "M", "S"}


def test_instance_constraints_add_to_the_presets(tmp_path):
    path = instance(tmp_path, "tpu-like", constraints={"spatial": {"rows": ["C", "M"], "min_utilization": 0.1}})
    problem = load(str(path))
    described = problem.constraints.describe(problem.hierarchy)
    assert "array rows: only C" in described and "array cols: only M" in described  # rows: C/R/S and C/M meet at C
    assert "at least 10% of the PEs busy" in described


def test_a_constraint_that_contradicts_the_hardware_is_refused(tmp_path):
    path = instance(tmp_path, "eyeriss-like", constraints={"levels": {"psum_spad": {"factors": {"C": 2}}}})
    done = run_mapcert("solve", str(path))
    assert done.returncode == 2
    assert "constraints.levels.psum_spad.factors.C" in done.stderr
    assert "the hardware fixes C = 1 at psum_spad" in done.stderr


def _agree(layer_name: str):
    """CP-SAT and the MILP on one ResNet-18 layer on eyeriss-like, under the preset's constraints."""
    from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
    from mapcert.formulations.tiling.multilevel.schema import preset_constraints
    from mapcert.hardware.hierarchy import hierarchy_preset
    from mapcert.instances import Located
    from mapcert.formulations.tiling.schema import build_layer

    hier = hierarchy_preset("eyeriss-like")
    layer = build_layer(layer_name, Located(layer_name), ())
    problem = MultiLevelProblem(layer, hier, objective="energy", constraints=preset_constraints("eyeriss-like", hier))
    cpsat = solve_multilevel(problem, "cpsat", time_limit=120)
    milp = solve_multilevel(problem, "milp", time_limit=300)
    assert cpsat.status == milp.status == "optimal", (cpsat.message, milp.message)
    assert cpsat.objective == milp.objective
    assert cpsat.mapping == milp.mapping  # the canonical optimum, whichever method proved it
    assert not violations(problem.constraints, hier, milp.mapping)


def test_both_exact_methods_prove_a_resnet18_layer_on_eyeriss_like():
    _agree("resnet18.layer4.0.downsample")


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["resnet18.conv1", "resnet18.layer1.0.conv1", "resnet18.layer2.0.conv2",
                                   "resnet18.layer4.0.conv2", "resnet18.fc"])
def test_both_exact_methods_prove_resnet18_on_eyeriss_like(layer):
    _agree(layer)


def test_the_heading_places_each_fan_out_between_its_levels():
    from mapcert.hardware.hierarchy import hierarchy_preset

    assert hierarchy_preset("simba-like").chain_text == \
        "DRAM > GlobalBuffer > [PEs 4 x 4] > PEBuffer > [lanes 8 x 8] > WeightReg"
    assert hierarchy_preset("eyeriss").chain_text.endswith("[12 x 14 PEs] > RF")
