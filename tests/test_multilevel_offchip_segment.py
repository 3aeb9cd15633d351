"""The read-segment bounds on a hierarchy's off-chip traffic: all on-chip
storage taken as one buffer, never above a proved optimum."""

from __future__ import annotations

import pytest

from mapcert.formulations.registry import family_of
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.instances import load_text
from mapcert.validation.bounds import tiling_bounds
from mapcert.validation.multilevel_bounds import onchip_bits

LAYERS = [
    "{N: 1, M: 4, C: 4, P: 4, Q: 2, R: 3, S: 1}",
    "{N: 1, M: 8, C: 6, P: 6, Q: 6, R: 3, S: 3}",
    "{N: 2, M: 16, C: 8, P: 4, Q: 4, R: 1, S: 1}",
]


def hierarchy_instance(dims: str, glb: str, objective: str = "offchip_traffic", array: str = "{rows: 2, cols: 2}"):
    return load_text(f"""family: tiling
workload: {{name: small, op: conv2d, dims: {dims}}}
hardware:
  name: small
  energy_unit: MAC
  mac_energy: 1
  array: {array}
  levels:
    - {{name: DRAM, read_energy: 200}}
    - {{name: GLB, capacity: {glb}, read_energy: 6}}
    - {{name: RF, capacity: 8 B, per_pe: true, read_energy: 1}}
objective: {objective}
solver: {{method: cpsat, time_limit: 60}}
""")


@pytest.mark.parametrize("dims", LAYERS)
@pytest.mark.parametrize("glb", ["48 B", "96 B", "256 B"])
def test_the_segment_bounds_never_exceed_the_proved_optimum(dims, glb):
    problem = hierarchy_instance(dims, glb)
    result = solve_multilevel(problem, "cpsat", 60, canonical=False)
    assert result.status == "optimal"
    bounds = {b.name: b for b in family_of(problem).bounds(problem)}
    assert {"compulsory", "read_segment", "capped_segment"} <= set(bounds)
    for bound in bounds.values():
        assert bound.rigorous and bound.value <= result.objective + 1e-9, (bound.name, bound.value, result.objective)


def test_the_bound_binds_on_a_small_buffer_and_matches_the_one_buffer_bound():
    problem = hierarchy_instance(LAYERS[1], "48 B", array="{rows: 1, cols: 1}")
    bounds = {b.name: b.value for b in family_of(problem).bounds(problem)}
    assert bounds["capped_segment"] > bounds["compulsory"]  # more than every element once
    # one buffer of the same total size (the GLB, the RF and the MAC latches) gives the same bound
    two_level = load_text(f"""family: tiling
workload: {{name: small, op: conv2d, dims: {LAYERS[1]}}}
hardware:
  levels: [{{name: DRAM}}, {{name: GLB, capacity: {onchip_bits(problem) // 8} B}}]
objective: offchip_traffic
""")
    assert onchip_bits(problem) % 8 == 0
    assert bounds["capped_segment"] == pytest.approx(tiling_bounds(two_level)["capped_segment"].bytes)


def test_energy_keeps_its_own_bound_only():
    """Each objective's one bound is named by what it bounds, not
    `compulsory`: only off-chip traffic's is every element once."""
    for objective in ("energy", "latency", "edp"):
        problem = hierarchy_instance(LAYERS[0], "96 B", objective=objective)
        assert [b.name for b in family_of(problem).bounds(problem)] == [f"{objective}_floor"]


def test_the_bounds_hold_in_the_widest_space():
    """Partial tiles, and halo reuse: the bounds cover every schedule, these included."""
    from dataclasses import replace

    text = hierarchy_instance(LAYERS[1], "48 B")
    for space in ({"factors": "any"}, {"halo": True}):
        problem = replace(text, **space)
        result = solve_multilevel(problem, "cpsat", 60, canonical=False)
        assert result.status == "optimal"
        for bound in family_of(problem).bounds(problem):
            assert bound.value <= result.objective + 1e-9, bound.name
