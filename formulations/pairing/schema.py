"""The pairing instance schema: a layer, its integer weights, the SRAM chip
and the solver.

Same conventions as every instance (instances.py); the chip and solver
parts are the crossbar family's (``formulations/crossbar/schema.py``)::

    family: pairing
    workload: mobilenetv2.block2.expand   # a layer name, or {name, dims: {M, C, R, S}, groups};
                                          # may be left out when the weights (a file or values) give the shape
    weights: {file: w.npy}                # .npy / .npz (key: ...); or {generate: {seed: 0, std: 0.35}};
                                          # or {values: [[...], ...]} one list per filter; default: generated
    hardware: ddc-sram
    solver: {method: milp, time_limit: 60}

A weights file is checked against the layer (4-D ``(M, C / groups, R, S)``
or 2-D ``(M, C / groups * R * S)``), and its size is read from the file's
header and refused beyond :data:`LIMITS` before the array is loaded.  An
optional ``sha256`` of the weights (what :func:`dump_pairing` writes) makes
a result's instance refuse weights that differ from the ones it was solved
for.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ... import workload_library
from ...units import article
from ...hardware.pim import PimChip
from ...instances import Located, Strict, validate_spec
from ..crossbar.schema import SolverSpec, build_chip, build_solver, dump_chip, dump_solver
from .cost import PairingLayer, PairingProblem

LIMITS = {"filters": 4_096, "positions": 1_048_576, "weights": 2 ** 25, "M": 4_096, "C": 1_048_576, "R": 1_024,
          "S": 1_024}
"""Largest sizes a pairing instance may have.  ``filters``: the exact
methods and bounds hold filters x filters matrices (4,096 filters: 128 MiB
each); ``weights``: filters x positions integers held in memory (2^25: 256
MiB as int64)."""

PAIRING_METHODS = ("milp", "cpsat")


class GenerateSpec(Strict):
    seed: int = 0
    std: float = Field(0.35, gt=0)


class WeightsSpec(Strict):
    file: str | None = None
    key: str | None = None
    generate: GenerateSpec | None = None
    values: list[list[int]] | None = None
    sha256: str | None = None


class LayerSpec(Strict):
    name: str = "layer"
    dims: dict[str, int]
    groups: int = Field(1, ge=1)


class PairingSpec(Strict):
    family: Literal["pairing"]
    workload: Any = None
    hardware: Any = "ddc-sram"
    weights: WeightsSpec = WeightsSpec()
    solver: SolverSpec = SolverSpec()


def generated_weights(filters: int, positions: int, bits: int, seed: int = 0, std: float = 0.35) -> np.ndarray:
    """Quantized Gaussian filters: a stand-in for trained weights of a shape.

    Examples
    --------
    >>> generated_weights(3, 4, 8, seed=1).shape
    (3, 4)
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, std, size=(filters, positions))
    top = 2 ** (bits - 1) - 1
    return np.clip(np.rint(w / np.abs(w).max() * top), -top - 1, top).astype(np.int64)


def weights_digest(weights: np.ndarray) -> str:
    """SHA-256 of the weights (shape and little-endian int64 values)."""
    w = np.ascontiguousarray(weights, dtype="<i8")
    return hashlib.sha256(repr(w.shape).encode() + w.tobytes()).hexdigest()


# --------------------------------------------------------------------------
# the layer


def _check_size(layer: PairingLayer, where: Located, path: tuple) -> bool:
    ok = True
    for dim in ("M", "C", "R", "S"):
        value = getattr(layer, dim)
        if not 1 <= value <= LIMITS[dim]:
            where.add(path + ("dims", dim), f"{value:,} is outside the supported range 1..{LIMITS[dim]:,}")
            ok = False
    if ok and (layer.C % layer.groups or layer.M % layer.groups):
        where.add(path + ("groups",), f"groups = {layer.groups} must divide both C = {layer.C} and M = {layer.M}")
        return False
    if ok:
        ok = _check_counts(layer.M, layer.positions, where, path, f"layer {layer.name}")
    return ok


def _check_counts(filters: int, positions: int, where: Located, path: tuple, what: str) -> bool:
    if filters > LIMITS["filters"]:
        where.add(path, f"{what} has {filters:,} filters; the supported range is 1..{LIMITS['filters']:,}")
        return False
    if positions > LIMITS["positions"] or filters * positions > LIMITS["weights"]:
        where.add(path, f"{what} has {filters:,} x {positions:,} weights; the supported range is up to "
                        f"{LIMITS['positions']:,} per filter and {LIMITS['weights']:,} in all")
        return False
    return True


def build_layer(raw: Any, where: Located, path: tuple) -> PairingLayer | None:
    """The layer named or described by ``workload``."""
    if isinstance(raw, str):
        try:
            found = workload_library.layer(raw)
        except KeyError as exc:
            where.add(path, exc.args[0] if exc.args else str(exc))
            return None
        if found.get("op") not in workload_library.COMPUTE_OPS:
            where.add(path, f"{raw} is {article(found.get('op'))} layer; it has no filters to pair")
            return None
        d = found["dims"]
        layer = PairingLayer(raw, d["M"], d["C"], d.get("R", 1), d.get("S", 1), found.get("groups", 1))
        return layer if _check_size(layer, where, path) else None
    spec = validate_spec(LayerSpec, raw, where, path, "a layer name such as mobilenetv2.block2.expand or "
                                                     "{name, dims: {M, C, R, S}, groups}")
    if spec is None:
        return None
    bad = [d for d in spec.dims if d not in ("M", "C", "R", "S")]
    if bad:
        where.add(path + ("dims", bad[0]), "unknown dimension; a pairing layer has M, C, R and S")
        return None
    if "M" not in spec.dims or "C" not in spec.dims:
        where.add(path + ("dims",), "M and C are required")
        return None
    d = spec.dims
    layer = PairingLayer(spec.name, d["M"], d["C"], d.get("R", 1), d.get("S", 1), spec.groups)
    return layer if _check_size(layer, where, path) else None


def _layer_from_shape(shape: tuple[int, ...], name: str) -> PairingLayer:
    if len(shape) == 4:
        return PairingLayer(name, shape[0], shape[1], shape[2], shape[3])
    return PairingLayer(name, shape[0], int(np.prod(shape[1:])))


def _same_shape(layer: PairingLayer, shape: tuple[int, ...]) -> bool:
    if len(shape) == 4:
        return tuple(shape) == layer.shape
    return len(shape) >= 2 and shape[0] == layer.M and int(np.prod(shape[1:])) == layer.positions


# --------------------------------------------------------------------------
# the weights


def _file_shape(path: Path, key: str | None, where: Located) -> tuple[tuple[int, ...], str | None] | None:
    """Shape (and the .npz member) of the array a weights file holds, from
    its header only: nothing is loaded yet."""
    fpath = ("weights", "file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
                chosen = key or ("weights" if "weights" in names else (names[0] if len(names) == 1 else None))
                if chosen is None or chosen not in names:
                    where.add(("weights", "key"), f"name the array to use; the file holds {', '.join(names)}")
                    return None
                with archive.open(chosen + ".npy") as member:
                    return _header_shape(member), chosen
        with open(path, "rb") as handle:
            return _header_shape(handle), None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        where.add(fpath, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
        return None


def _header_shape(handle) -> tuple[int, ...]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"a .npy file of format version {version[0]}.{version[1]}; save it with numpy.save")
    if dtype.hasobject:
        raise ValueError("holds Python objects, not numbers")
    return tuple(int(s) for s in shape)


def _load_file(spec: WeightsSpec, layer: PairingLayer | None, base: Path,
               where: Located) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """The weights of a file (one row per filter) and the file's shape."""
    path = Path(spec.file)
    if not path.is_absolute():
        path = base / path
    found = _file_shape(path, spec.key, where)
    if found is None:
        return None
    shape, member = found
    fpath = ("weights", "file")
    if len(shape) < 2:
        where.add(fpath, f"needs one row per filter (2-D or 4-D), got shape {shape}")
        return None
    if layer is not None and not _same_shape(layer, shape):
        where.add(fpath, f"the file's weights have shape {shape}; layer {layer.name} has "
                         f"{layer.shape} (M, C / groups, R, S), i.e. {layer.M} filters x {layer.positions} weights")
        return None
    positions = int(np.prod(shape[1:]))
    if not _check_counts(shape[0], positions, where, fpath, f"the file's array {shape}"):
        return None
    try:
        loaded = np.load(path, allow_pickle=False)
        array = np.asarray(loaded[member] if member is not None else loaded)
    except (OSError, ValueError) as exc:
        where.add(fpath, f"cannot read {path}: {exc}")
        return None
    return array.reshape(array.shape[0], -1), shape


def build_pairing(data: dict, where: Located, label: str, base: Path) -> PairingProblem | None:
    """The pairing problem of an instance document (None with the problems
    recorded on ``where``)."""
    spec = validate_spec(PairingSpec, data, where, (), "a mapping")
    chip = build_chip(data.get("hardware", "ddc-sram"), where, ("hardware",))
    if spec is None or chip is None:
        return None
    solver = build_solver(spec.solver, PAIRING_METHODS, where)
    if solver is None:
        return None
    w = spec.weights
    given = [k for k in ("file", "generate", "values") if getattr(w, k) is not None]
    if len(given) > 1:
        where.add(("weights",), f"give one of file, generate or values, not {' and '.join(given)}")
        return None
    layer = build_layer(spec.workload, where, ("workload",)) if spec.workload is not None else None
    if spec.workload is not None and layer is None:
        return None
    if layer is None and w.file is None and w.values is None:
        where.add(("workload",), "required field is missing: name the layer (or give the weights as a file or "
                                 "as values, whose shape names it)")
        return None
    generated = None
    if w.file is not None:
        loaded = _load_file(w, layer, base, where)
        if loaded is None:
            return None
        weights, shape = loaded
        layer = layer or _layer_from_shape(shape, Path(w.file).stem)
    elif w.values is not None:
        rows = len(w.values)
        lengths = {len(r) for r in w.values}
        if layer is None:  # the values give the shape: one list per filter
            if len(lengths) != 1 or 0 in lengths:
                where.add(("weights", "values"), f"needs one list per filter, all of one length; got {rows} lists of "
                                                f"{', '.join(str(n) for n in sorted(lengths)) or 'no'} integers")
                return None
            layer = _layer_from_shape((rows, next(iter(lengths))), "weights")
        if len(lengths) != 1 or rows != layer.M or lengths != {layer.positions}:
            where.add(("weights", "values"), f"needs {layer.M} lists (one per filter) of {layer.positions} integers "
                                            f"for layer {layer.name}; got {rows} lists of "
                                            f"{', '.join(str(n) for n in sorted(lengths)) or 'no'} integers")
            return None
        weights = np.array(w.values, dtype=np.int64)
    else:
        gen = w.generate or GenerateSpec()
        weights = generated_weights(layer.M, layer.positions, chip.weight_bits, gen.seed, gen.std)
        generated = (gen.seed, gen.std)
    if w.sha256 is not None and w.sha256 != weights_digest(weights):
        where.add(("weights", "sha256"), "the weights differ from the ones this instance was written for "
                                         "(a changed file, or a numpy that generates other numbers)")
        return None
    try:
        return PairingProblem(weights, bits=chip.weight_bits, name=layer.name, chip=chip, layer=layer,
                              generated=generated, solver=solver)
    except ValueError as exc:
        where.add(("weights",), str(exc))
        return None


def dump_pairing(problem: PairingProblem) -> dict:
    """A self-contained instance document: generated weights as their seed,
    given ones as integer lists, either with their SHA-256."""
    layer = problem.layer or PairingLayer(problem.name, problem.filters, problem.positions)
    if problem.generated is not None:
        weights: dict = {"generate": {"seed": problem.generated[0], "std": problem.generated[1]}}
    else:
        weights = {"values": problem.weights.tolist()}
    weights["sha256"] = weights_digest(problem.weights)
    chip = problem.chip or PimChip(name="custom", rows=256, columns=512, weight_bits=problem.bits)
    return {
        "family": "pairing",
        "workload": {"name": layer.name, "dims": {"M": layer.M, "C": layer.C, "R": layer.R, "S": layer.S},
                     "groups": layer.groups},
        "hardware": dump_chip(chip),
        "weights": weights,
        "solver": dump_solver(problem.solver),
    }
