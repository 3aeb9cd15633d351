"""The crossbar instance schema, and the PIM chip and solver parts that the
pairing family shares.

Same conventions as every instance (instances.py): pydantic schemas with
unknown fields forbidden, every problem reported as ``file:line: field:
message``, and sizes beyond what the models and a machine can hold refused
here, before anything is allocated (:data:`LIMITS`)::

    family: crossbar
    workload: resnet34                 # a network of workloads/, {onnx: model.onnx},
                                       # a list of layers, or {name: ..., layers: [...]}
    hardware: neurosim-rram            # a PIM preset, or {preset: ..., <field>: value, ...}
    objective: bottleneck              # or latency, energy
    styles: [conventional, split]      # mapping styles a layer may use
    constraints: {budget: 16384, one_layer_per_tile: false, bandwidth: false}
    solver: {method: milp, time_limit: 60}

A layer of a list is ``{name, op, dims: {N, M, C, P, Q, R, S}, stride,
groups}`` (op conv2d, fc or matmul; M and C required).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool

from ... import workload_library
from ...hardware.pim import PimChip, pim_presets
from ...instances import Located, Seconds, Strict, validate_spec
from ...workload_onnx import is_onnx, onnx_workload
from .cost import STYLES, CrossbarLayer, CrossbarProblem, SolverSettings, layers_from_network

LIMITS = {
    "rows": 65_536, "columns": 65_536,
    "crossbars_per_pe": 65_536, "pes_per_tile": 65_536, "tiles": 1_000_000,
    "crossbars": 1_000_000_000,
    "cycles_per_mvm": 1_000_000, "bandwidth_bits_per_cycle": 2 ** 40, "energy_pj": 1e9,
    "layers": 10_000,
    "N": 1_024, "M": 1_048_576, "C": 1_048_576, "P": 65_536, "Q": 65_536, "R": 1_024, "S": 1_024,
    "output_pixels": 2 ** 24, "groups": 1_048_576, "stride": 1_024,
}
"""Largest values an instance may give (the supported range starts at 1).

``crossbars`` caps the chip's crossbars (crossbars_per_pe x pes_per_tile x
tiles) and the budget; ``output_pixels`` caps N*P*Q of one layer, the copy
counts the models choose from (about 2 sqrt(N*P*Q) candidates each)."""


def up_to(limit: int | float):
    """A pydantic check that a number lies in 1..``limit`` (or 0..limit for
    energies), with the supported range in the message."""
    low = 0 if isinstance(limit, float) else 1

    def check(value):
        if not low <= value <= limit:
            raise ValueError(f"must lie in the supported range {low:,}..{limit:,}")
        return value

    return AfterValidator(check)


class ChipSpec(Strict):
    preset: str | None = None
    name: str | None = None
    rows: Annotated[int, up_to(LIMITS["rows"])] | None = None
    columns: Annotated[int, up_to(LIMITS["columns"])] | None = None
    cell_bits: int | None = Field(None, ge=1, le=8)
    weight_bits: int | None = Field(None, ge=1, le=16)
    input_bits: int | None = Field(None, ge=1, le=16)
    dac_bits: int | None = Field(None, ge=1, le=16)
    adc_bits: int | None = Field(None, ge=1, le=32)
    differential: StrictBool | None = None
    crossbars_per_pe: Annotated[int, up_to(LIMITS["crossbars_per_pe"])] | None = None
    pes_per_tile: Annotated[int, up_to(LIMITS["pes_per_tile"])] | None = None
    tiles: Annotated[int, up_to(LIMITS["tiles"])] | None = None
    cycles_per_mvm: Annotated[int, up_to(LIMITS["cycles_per_mvm"])] | None = None
    bandwidth_bits_per_cycle: Annotated[int, up_to(LIMITS["bandwidth_bits_per_cycle"])] | None = None
    energy_per_activation_pj: Annotated[float, up_to(LIMITS["energy_pj"])] | None = None
    energy_per_input_bit_pj: Annotated[float, up_to(LIMITS["energy_pj"])] | None = None
    source: str = ""


class ConstraintSpec(Strict):
    budget: Annotated[int, up_to(LIMITS["crossbars"])] | None = None
    one_layer_per_tile: StrictBool = False
    bandwidth: StrictBool = False


class SolverSpec(Strict):
    method: str = "milp"
    time_limit: Seconds = 60.0
    workers: int = Field(0, ge=0)


class LayerSpec(Strict):
    name: str | None = None
    op: Literal["conv2d", "fc", "matmul"] = "conv2d"
    dims: dict[str, int]
    stride: int | list[int] = 1
    groups: int = 1


class CrossbarSpec(Strict):
    family: Literal["crossbar"]
    workload: Any
    hardware: Any
    objective: Literal["bottleneck", "latency", "energy"] = "bottleneck"
    styles: list[Literal["conventional", "split"]] = Field(default_factory=lambda: list(STYLES), min_length=1)
    constraints: ConstraintSpec = ConstraintSpec()
    solver: SolverSpec = SolverSpec()


CROSSBAR_METHODS = ("milp", "cpsat", "bisection")


# --------------------------------------------------------------------------
# shared by the PIM families


def build_chip(raw: Any, where: Located, path: tuple) -> PimChip | None:
    """A chip from a preset name or a mapping of chip fields (a ``preset``
    among them fills the rest); None with the problems recorded."""
    presets = pim_presets()
    preset_path = path + ("preset",) if isinstance(raw, dict) else path
    if isinstance(raw, str):
        raw = {"preset": raw}
    spec = validate_spec(ChipSpec, raw, where, path, "a PIM preset name or a mapping of chip fields")
    if spec is None:
        return None
    values: dict = {}
    name = spec.name or spec.preset or "custom"
    if spec.preset is not None:
        if spec.preset not in presets:
            where.add(preset_path, f"unknown PIM preset {spec.preset!r}; known: {', '.join(presets)}")
            return None
        values = {k: v for k, v in presets[spec.preset].items() if k != "source"}
    values.update({k: v for k, v in spec.model_dump().items()
                   if v is not None and k not in ("preset", "name", "source")})
    missing = [k for k in ("rows", "columns") if k not in values]
    if missing:
        where.add(path, f"needs {' and '.join(missing)} (or a preset)")
        return None
    if spec.cycles_per_mvm is None:  # bit-serial inputs: one cycle per DAC chunk, as the energy counts them
        values["cycles_per_mvm"] = -(-values.get("input_bits", 8) // values.get("dac_bits", 1))
    chip = PimChip(name=name, **values)
    if chip.crossbar_budget > LIMITS["crossbars"]:
        where.add(path + ("tiles",), f"crossbars_per_pe x pes_per_tile x tiles = {chip.crossbar_budget:,} crossbars; "
                                     f"the supported range is 1..{LIMITS['crossbars']:,}")
        return None
    return chip


def dump_chip(chip: PimChip) -> dict:
    """Every field of ``chip``, as :func:`build_chip` reads it back."""
    return {f.name: getattr(chip, f.name) for f in fields(PimChip)}


def build_solver(spec: SolverSpec, methods: tuple[str, ...], where: Located) -> SolverSettings | None:
    """The solver settings, the method among ``methods``."""
    if spec.method not in methods:
        quoted = [f"'{m}'" for m in methods]
        where.add(("solver", "method"), f"must be one of {', '.join(quoted[:-1])} or {quoted[-1]}")
        return None
    return SolverSettings(spec.method, spec.time_limit, spec.workers)


def dump_solver(solver: SolverSettings) -> dict:
    return {"method": solver.method, "time_limit": solver.time_limit, "workers": solver.workers}


# --------------------------------------------------------------------------
# crossbar


def _check_layer(layer: CrossbarLayer, where: Located, path: tuple) -> bool:
    """The size limits of one layer (true when it is within them)."""
    ok = True
    for dim in ("N", "M", "C", "P", "Q", "R", "S"):
        value = getattr(layer, dim)
        if not 1 <= value <= LIMITS[dim]:
            where.add(path + ("dims", dim), f"{value:,} is outside the supported range 1..{LIMITS[dim]:,}")
            ok = False
    if ok and layer.outputs > LIMITS["output_pixels"]:
        where.add(path + ("dims",), f"N*P*Q = {layer.outputs:,} output pixels; the supported range is "
                                    f"1..{LIMITS['output_pixels']:,}")
        ok = False
    for axis, value in zip(("vertical", "horizontal"), layer.stride):
        if not 1 <= value <= LIMITS["stride"]:
            where.add(path + ("stride",), f"{axis} stride {value:,} is outside the supported range "
                                          f"1..{LIMITS['stride']:,}")
            ok = False
    if not 1 <= layer.groups <= LIMITS["groups"] or layer.M % layer.groups or layer.C % layer.groups:
        where.add(path + ("groups",), f"groups = {layer.groups} must be a positive divisor of both C = {layer.C} "
                                      f"and M = {layer.M}")
        ok = False
    return ok


def _inline_layers(raw: list, where: Located, path: tuple) -> tuple[CrossbarLayer, ...] | None:
    if len(raw) > LIMITS["layers"]:
        where.add(path, f"{len(raw):,} layers; the supported range is 1..{LIMITS['layers']:,}")
        return None
    layers, seen, ok = [], {}, True
    for i, item in enumerate(raw):
        spec = validate_spec(LayerSpec, item, where, path + (i,), "a layer {name, dims: {M, C, P, Q, R, S}}")
        if spec is None:
            ok = False
            continue
        bad = [d for d in spec.dims if d not in ("N", "M", "C", "P", "Q", "R", "S")]
        if bad:
            where.add(path + (i, "dims", bad[0]), "unknown dimension; expected N, M, C, P, Q, R or S")
            ok = False
            continue
        if "M" not in spec.dims or "C" not in spec.dims:
            where.add(path + (i, "dims"), "M and C are required")
            ok = False
            continue
        stride = spec.stride if isinstance(spec.stride, list) else [spec.stride, spec.stride]
        if len(stride) != 2:
            where.add(path + (i, "stride"), f"must be a positive integer or [vertical, horizontal], got {spec.stride}")
            ok = False
            continue
        name = spec.name if spec.name is not None else f"layer{i}"
        if name in seen:
            where.add(path + (i, "name"), f"{name!r} is also layer {seen[name]}; layer names must differ")
            ok = False
            continue
        seen[name] = i
        d = spec.dims
        layer = CrossbarLayer(name=name, C=d["C"], M=d["M"], P=d.get("P", 1), Q=d.get("Q", 1), R=d.get("R", 1),
                              S=d.get("S", 1), N=d.get("N", 1), groups=spec.groups, stride=(stride[0], stride[1]))
        if spec.op != "conv2d" and (layer.P, layer.Q, layer.R, layer.S, layer.stride) != (1, 1, 1, 1, (1, 1)):
            where.add(path + (i, "op"), f"a {spec.op} layer has N, M and C only (no P, Q, R, S or stride)")
            ok = False
            continue
        ok = _check_layer(layer, where, path + (i,)) and ok
        layers.append(layer)
    return tuple(layers) if ok else None


def _network(name: str, table: dict[str, dict], where: Located, path: tuple
             ) -> tuple[tuple[CrossbarLayer, ...], str] | None:
    """The layers with weights of a network's layer table (workloads/ format)."""
    layers = tuple(layers_from_network(table))
    return (layers, name) if all(_check_layer(l, where, path) for l in layers) else None


def build_layers(raw: Any, where: Located, path: tuple,
                 base: Path = Path(".")) -> tuple[tuple[CrossbarLayer, ...], str] | None:
    """The layers of ``workload`` and the network's name (an ONNX file is
    looked up relative to ``base``)."""
    if isinstance(raw, str):
        if raw not in workload_library.networks():
            where.add(path, f"unknown network {raw!r}; known: {', '.join(workload_library.networks())}")
            return None
        return _network(raw, workload_library.network(raw), where, path)
    if is_onnx(raw):
        found = onnx_workload(raw, where, path, base)
        return None if found is None else _network(*found, where, path)
    name = "inline"
    if isinstance(raw, dict) and set(raw) <= {"name", "layers"} and "layers" in raw:
        name = str(raw.get("name", name))
        raw, path = raw["layers"], path + ("layers",)
    if not isinstance(raw, list) or not raw:
        where.add(path, "must be a network name, {onnx: model.onnx}, a non-empty list of layers, or {name, layers}")
        return None
    layers = _inline_layers(raw, where, path)
    return None if layers is None else (layers, name)


def build_crossbar(data: dict, where: Located, label: str, base: Path = Path(".")) -> CrossbarProblem | None:
    """The crossbar problem of an instance document (None with the problems
    recorded on ``where``; ``base``: the folder of the instance)."""
    spec = validate_spec(CrossbarSpec, data, where, (), "a mapping")
    workload = data.get("workload")
    layers = build_layers(workload, where, ("workload",), base) if workload is not None else None
    chip = build_chip(data.get("hardware"), where, ("hardware",)) if data.get("hardware") is not None else None
    if spec is None or layers is None or chip is None:
        return None
    solver = build_solver(spec.solver, CROSSBAR_METHODS, where)
    if solver is None:
        return None
    layers, name = layers
    budget = spec.constraints.budget
    if budget is not None and budget > chip.crossbar_budget:
        where.add(("constraints", "budget"), f"{budget} crossbars exceed the chip's {chip.crossbar_budget} "
                  f"({chip.tiles} tiles x {chip.crossbars_per_tile} per tile); raise hardware.tiles or lower the budget")
        return None
    return CrossbarProblem(
        layers=layers, chip=chip, objective=spec.objective, styles=tuple(dict.fromkeys(spec.styles)),
        one_layer_per_tile=spec.constraints.one_layer_per_tile, bandwidth=spec.constraints.bandwidth,
        budget=budget, name=name, solver=solver,
    )


def dump_layer(layer: CrossbarLayer) -> dict:
    """One layer as the schema reads it."""
    return {"name": layer.name,
            "dims": {"N": layer.N, "M": layer.M, "C": layer.C, "P": layer.P, "Q": layer.Q, "R": layer.R,
                     "S": layer.S},
            "stride": list(layer.stride), "groups": layer.groups}


def dump_crossbar(problem: CrossbarProblem) -> dict:
    """A self-contained instance document (layers inline) that
    :func:`build_crossbar` reads back to an equal problem."""
    constraints: dict = {"one_layer_per_tile": problem.one_layer_per_tile, "bandwidth": problem.bandwidth}
    if problem.budget is not None:
        constraints["budget"] = problem.budget
    return {
        "family": "crossbar",
        "workload": {"name": problem.name, "layers": [dump_layer(l) for l in problem.layers]},
        "hardware": dump_chip(problem.chip),
        "objective": problem.objective,
        "styles": list(problem.styles),
        "constraints": constraints,
        "solver": dump_solver(problem.solver),
    }
