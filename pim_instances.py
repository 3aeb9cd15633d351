"""Instances of the processing-in-memory families (``crossbar``, ``pairing``).

Same conventions as the tiling instances (instances.py): pydantic schemas
with unknown fields forbidden, every problem reported as
``file:line: field: message``.

    family: crossbar
    workload: resnet34                 # a network of workloads/, or a list of layers
    hardware: neurosim-rram            # a PIM preset, or {preset: ..., <field>: value, ...}
    objective: bottleneck              # or latency
    styles: [conventional, split]      # mapping styles a layer may use
    constraints: {budget: 16384, one_layer_per_tile: false, bandwidth: false}
    solver: {method: milp, time_limit: 60}

    family: pairing
    workload: mobilenetv2.block2.expand   # layer shape for generated weights
    weights: {file: w.npy}                # or {generate: {seed: 0}}; default: generated
    hardware: ddc-sram
    solver: {method: milp, time_limit: 60}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from . import workload_library
from .formulations.crossbar.cost import STYLES, CrossbarProblem, layers_from_network
from .formulations.pairing.cost import PairingProblem
from .hardware.pim import PimChip, pim_presets
from .instances import Located, Strict, validate_spec


class ChipSpec(Strict):
    preset: str | None = None
    rows: int | None = Field(None, ge=1)
    columns: int | None = Field(None, ge=1)
    cell_bits: int | None = Field(None, ge=1, le=8)
    weight_bits: int | None = Field(None, ge=1, le=16)
    input_bits: int | None = Field(None, ge=1, le=16)
    dac_bits: int | None = Field(None, ge=1, le=16)
    adc_bits: int | None = Field(None, ge=1, le=32)
    differential: bool | None = None
    crossbars_per_pe: int | None = Field(None, ge=1)
    pes_per_tile: int | None = Field(None, ge=1)
    tiles: int | None = Field(None, ge=1)
    cycles_per_mvm: int | None = Field(None, ge=1)
    bandwidth_bits_per_cycle: int | None = Field(None, ge=1)
    energy_per_activation_pj: float | None = Field(None, ge=0)
    energy_per_input_bit_pj: float | None = Field(None, ge=0)
    source: str = ""


class ConstraintSpec(Strict):
    budget: int | None = Field(None, ge=1)
    one_layer_per_tile: bool = False
    bandwidth: bool = False


class PimSolverSpec(Strict):
    method: str = "milp"
    time_limit: float = Field(60.0, gt=0)
    workers: int = Field(0, ge=0)


class CrossbarSpec(Strict):
    family: Literal["crossbar"]
    workload: Any
    hardware: Any
    objective: Literal["bottleneck", "latency", "energy"] = "bottleneck"
    styles: list[Literal["conventional", "split"]] = Field(default_factory=lambda: list(STYLES), min_length=1)
    constraints: ConstraintSpec = ConstraintSpec()
    solver: PimSolverSpec = PimSolverSpec()


class GenerateSpec(Strict):
    seed: int = 0
    std: float = Field(0.35, gt=0)


class WeightsSpec(Strict):
    file: str | None = None
    key: str | None = None
    generate: GenerateSpec | None = None


class PairingSpec(Strict):
    family: Literal["pairing"]
    workload: str
    hardware: Any = "ddc-sram"
    weights: WeightsSpec = WeightsSpec()
    solver: PimSolverSpec = PimSolverSpec()


@dataclass
class CrossbarInstance:
    problem: CrossbarProblem
    method: str
    time_limit: float
    workers: int
    source: str


@dataclass
class PairingInstance:
    problem: PairingProblem
    chip: PimChip
    method: str
    time_limit: float
    source: str
    weights_origin: str


def _chip(raw: Any, where: Located, path: tuple) -> PimChip | None:
    presets = pim_presets()
    if isinstance(raw, str):
        raw = {"preset": raw}
    spec = validate_spec(ChipSpec, raw, where, path, "a PIM preset name or a mapping of chip fields")
    if spec is None:
        return None
    fields = {}
    name = spec.preset or "custom"
    if spec.preset is not None:
        if spec.preset not in presets:
            where.add(path, f"unknown PIM preset {spec.preset!r}; known: {', '.join(presets)}")
            return None
        fields = {k: v for k, v in presets[spec.preset].items() if k != "source"}
    fields.update({k: v for k, v in spec.model_dump().items() if v is not None and k not in ("preset", "source")})
    missing = [k for k in ("rows", "columns") if k not in fields]
    if missing:
        where.add(path, f"needs {' and '.join(missing)} (or a preset)")
        return None
    return PimChip(name=name, **fields)


def _crossbar_layers(raw: Any, where: Located, path: tuple):
    if isinstance(raw, str):
        if raw not in workload_library.networks():
            where.add(path, f"unknown network {raw!r}; known: {', '.join(workload_library.networks())}")
            return None
        return tuple(layers_from_network(workload_library.network(raw))), raw
    if not isinstance(raw, list) or not raw:
        where.add(path, "must be a network name or a non-empty list of layers")
        return None
    table = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "dims" not in item or not isinstance(item["dims"], dict):
            where.add(path + (i,), "each layer needs dims: {M, C, P, Q, R, S}")
            return None
        bad = [d for d in item["dims"] if d not in ("N", "M", "C", "P", "Q", "R", "S")]
        if bad or any(not isinstance(v, int) or v < 1 for v in item["dims"].values()):
            where.add(path + (i, "dims"), "dimensions are N, M, C, P, Q, R, S, each a positive integer")
            return None
        if "M" not in item["dims"] or "C" not in item["dims"]:
            where.add(path + (i, "dims"), "M and C are required")
            return None
        table[str(item.get("name", f"layer{i}"))] = item
    return tuple(layers_from_network(table)), "inline"


def build_crossbar(data: dict, where: Located, label: str) -> CrossbarInstance | None:
    spec = validate_spec(CrossbarSpec, data, where, (), "a mapping")
    layers = _crossbar_layers(data.get("workload"), where, ("workload",)) if data.get("workload") is not None else None
    chip = _chip(data.get("hardware"), where, ("hardware",)) if data.get("hardware") is not None else None
    if spec is None or layers is None or chip is None:
        return None
    if spec.solver.method not in ("milp", "cpsat", "bisection"):
        where.add(("solver", "method"), "must be one of 'milp', 'cpsat' or 'bisection'")
        return None
    layers, name = layers
    budget = spec.constraints.budget
    if budget is not None and budget > chip.crossbar_budget:
        where.add(("constraints", "budget"), f"{budget} crossbars exceed the chip's {chip.crossbar_budget} "
                  f"({chip.tiles} tiles x {chip.crossbars_per_tile} per tile); raise hardware.tiles or lower the budget")
        return None
    problem = CrossbarProblem(
        layers=layers, chip=chip, objective=spec.objective, styles=tuple(dict.fromkeys(spec.styles)),
        one_layer_per_tile=spec.constraints.one_layer_per_tile, bandwidth=spec.constraints.bandwidth,
        budget=spec.constraints.budget, name=name,
    )
    return CrossbarInstance(problem, spec.solver.method, spec.solver.time_limit, spec.solver.workers, label)


def _filters_of(layer: dict) -> tuple[int, int]:
    d = layer["dims"]
    groups = layer.get("groups", 1)
    return d["M"], (d["C"] // groups) * d.get("R", 1) * d.get("S", 1)


def generated_weights(filters: int, positions: int, bits: int, seed: int = 0, std: float = 0.35) -> np.ndarray:
    """Quantized Gaussian filters: a stand-in for trained weights of a shape."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, std, size=(filters, positions))
    top = 2 ** (bits - 1) - 1
    return np.clip(np.rint(w / np.abs(w).max() * top), -top - 1, top).astype(np.int64)


def _load_weights(spec: WeightsSpec, base: Path, where: Located) -> np.ndarray | None:
    path = Path(spec.file)
    if not path.is_absolute():
        path = base / path
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        where.add(("weights", "file"), f"cannot read {path}: {exc}")
        return None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        key = spec.key or ("weights" if "weights" in keys else (keys[0] if len(keys) == 1 else None))
        if key is None or key not in keys:
            where.add(("weights", "key"), f"name the array to use; the file holds {', '.join(keys)}")
            return None
        loaded = loaded[key]
    array = np.asarray(loaded)
    if array.ndim < 2:
        where.add(("weights", "file"), f"needs one row per filter (2-D or 4-D), got shape {array.shape}")
        return None
    return array.reshape(array.shape[0], -1)


def build_pairing(data: dict, where: Located, label: str, base: Path) -> PairingInstance | None:
    spec = validate_spec(PairingSpec, data, where, (), "a mapping")
    chip = _chip(data.get("hardware", "ddc-sram"), where, ("hardware",))
    if spec is None or chip is None:
        return None
    if spec.solver.method not in ("milp", "cpsat"):
        where.add(("solver", "method"), "must be one of 'milp' or 'cpsat'")
        return None
    try:
        layer = workload_library.layer(spec.workload)
    except KeyError as exc:
        where.add(("workload",), exc.args[0])
        return None
    if layer.get("op") not in workload_library.COMPUTE_OPS:
        where.add(("workload",), f"{spec.workload} is a {layer.get('op')} layer; it has no filters to pair")
        return None
    if spec.weights.file is not None:
        weights = _load_weights(spec.weights, base, where)
        origin = f"file {spec.weights.file}"
        if weights is None:
            return None
    else:
        gen = spec.weights.generate or GenerateSpec()
        filters, positions = _filters_of(layer)
        weights = generated_weights(filters, positions, chip.weight_bits, gen.seed, gen.std)
        origin = f"generated (seed {gen.seed}) for {filters} filters x {positions} weights"
    try:
        problem = PairingProblem(weights, bits=chip.weight_bits, name=spec.workload)
    except ValueError as exc:
        where.add(("weights",), str(exc))
        return None
    return PairingInstance(problem, chip, spec.solver.method, spec.solver.time_limit, label, origin)
