"""Instances of the graph-partition family (``family: partition``): schema,
input limits, and the instance written back (:func:`dump_partition`).

Same conventions as every family (instances.py): pydantic schemas with
unknown fields forbidden, every problem reported as ``file:line: field:
message``, and sizes beyond what a machine can hold refused before anything
is allocated (the limits below, each message naming the supported range).

    family: partition
    workload: resnet50                 # a network of workloads/, or
                                       # {onnx: model.onnx} (docs/interop.md), or
                                       # {randwire: {nodes: 32, k: 4, p: 0.75, seed: 0}}, or
                                       # {name: tiny, layers: {conv1: {op: conv2d, dims: {...}, inputs: [input]}, ...}}
    buffer: 512 KiB                    # one shared on-chip buffer: least EMA, or
    buffer: {from: 128 KiB, to: 3072 KiB, step: 64 KiB}   # co-explore the size
                                       # (or a list of sizes); least BUF_SIZE + alpha * EMA energy
    buffer: {activations: 512 KiB, weights: 576 KiB}   # or separate buffers (one size each)
    precision: {activations: 8, weights: 8}
    cost: {alpha: 0.002, pj_per_bit: 12.5}   # Cocco's defaults
    objective: ema                     # or latency (one buffer size): cycles of max(compute, DRAM transfer)
    accelerator: {macs_per_cycle: 1024, dram_bytes_per_cycle: 16}   # for latency
    solver: {method: milp, time_limit: 60}   # dp | milp | cpsat

An inline graph lists its layers in execution order, in the format of
``workloads/``: ``op`` (conv2d, pool, add, concat, fc, matmul), ``dims``
(N, M, C, P, Q, R, S; M and C required), ``stride``, ``groups`` and
``inputs`` (earlier layers, or ``input`` for the network input; default:
the layer before, the network input for the first).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ... import workload_library
from ...instances import Located, Seconds, Strict, validate_spec
from ...units import parse_bytes
from ...workload_onnx import is_onnx, onnx_workload
from .coexplore import ALPHA, PJ_PER_BIT
from .cost import Machine, SplitCapacity
from .graph import FLATTENING_OPS, PartitionGraph, from_layers, from_network, input_conflict
from .problem import PartitionProblem

# --------------------------------------------------------------------------
# input limits

MAX_LAYERS = 1000
"""Most layers of an inline graph: ten times the largest network of
workloads/, far beyond what the exact methods prove (their candidate
subgraphs grow exponentially with the graph's width)."""
MAX_RANDWIRE_NODES = 512
"""Most nodes of a generated RandWire graph (each node a convolution, plus
the adds that join several inputs)."""
MAX_CHANNELS = 4096
MAX_MAP = 1024
"""Largest channel count and feature-map side of a generated RandWire graph."""
MAX_DIM = 2**20
"""Largest extent of N, M, P or Q of an inline layer."""
MAX_FLAT = 2**24
"""Largest C of an inline layer (a fully connected layer reads its whole
flattened input, which may be larger than any one dimension)."""
MAX_WINDOW = 1024
"""Largest filter extent and stride of an inline layer."""
MAX_BUFFER_BYTES = 2**40
"""Largest buffer (1 TiB): the exact models' coefficients are sums of such
sizes and must stay exact in double precision."""
MAX_TENSOR_BYTES = 2**40
"""Largest output tensor or weight tensor of one layer (1 TiB)."""
MAX_CAPACITIES = 200
"""Most buffer sizes a co-exploration sweeps (each is one exact solve)."""

OPS = ("conv2d", "pool", "add", "concat", "fc", "matmul")
"""Layer kinds of an inline graph (those of workloads/)."""
WINDOWED_OPS = ("conv2d", "pool")
READS_INPUT_OPS = ("conv2d", "pool", "fc", "matmul")
"""Layers that may read the network input (its shape then follows from theirs)."""


def bounded(low: float, high: float):
    """A validator refusing values outside ``[low, high]``, naming the range."""
    def check(value):
        if not low <= value <= high:
            raise ValueError(f"must lie in the supported range {low:,} to {high:,}")  # pydantic adds the value
        return value
    return AfterValidator(check)


def finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# --------------------------------------------------------------------------
# schema


class RandWireSpec(Strict):
    nodes: Annotated[int, bounded(2, MAX_RANDWIRE_NODES)] = 32
    k: Annotated[int, bounded(2, MAX_RANDWIRE_NODES - 1)] = 4
    p: Annotated[float, AfterValidator(finite), bounded(0, 1)] = 0.75
    seed: Annotated[int, bounded(0, 2**32 - 1)] = 0
    channels: Annotated[int, bounded(1, MAX_CHANNELS)] = 78
    size: Annotated[int, bounded(1, MAX_MAP)] = 28


class GeneratedWorkload(Strict):
    randwire: RandWireSpec


class LayerSpec(Strict):
    op: Literal[OPS] = "conv2d"
    dims: dict[str, int]
    stride: int | list[int] = 1
    groups: Annotated[int, bounded(1, MAX_DIM)] = 1
    inputs: list[str] | None = None


class InlineWorkload(Strict):
    name: str = "graph"
    layers: dict[str, Any]


class BufferRange(Strict):
    from_: Any = Field(alias="from")
    to: Any
    step: Any


class SplitBuffer(Strict):
    activations: Any
    weights: Any


class GraphPrecision(Strict):
    activations: Annotated[int, bounded(1, 32)] = 8
    weights: Annotated[int, bounded(1, 32)] = 8


class CostSpec(Strict):
    alpha: Annotated[float, AfterValidator(finite), bounded(0, 1e6)] = ALPHA
    pj_per_bit: Annotated[float, AfterValidator(finite), bounded(1e-6, 1e6)] = PJ_PER_BIT


class AcceleratorSpec(Strict):
    macs_per_cycle: Annotated[int, bounded(1, 2**40)] = 1024
    dram_bytes_per_cycle: Annotated[float, AfterValidator(finite), bounded(1e-6, 2**40)] = 16.0


class PartitionSolverSpec(Strict):
    method: Literal["dp", "milp", "cpsat"] = "milp"
    time_limit: Seconds = 60.0
    workers: Annotated[int, bounded(0, 1024)] = 0


class GraphPartitionSpec(Strict):
    family: Literal["partition"]
    workload: Any
    buffer: Any
    precision: GraphPrecision = GraphPrecision()
    cost: CostSpec = CostSpec()
    objective: Literal["ema", "latency"] = "ema"
    accelerator: AcceleratorSpec = AcceleratorSpec()
    solver: PartitionSolverSpec = PartitionSolverSpec()


# --------------------------------------------------------------------------
# the graph


def _preset(name: str, where: Located, precision: GraphPrecision) -> PartitionGraph | None:
    if name not in workload_library.networks():
        where.add(("workload",), f"unknown network {name!r}; choose one of {', '.join(workload_library.networks())}, "
                  "{onnx: model.onnx}, {randwire: {nodes: 32}} or {name: ..., layers: {...}}")
        return None
    problems = library_graph_problems(name)
    if problems:
        complete = [n for n in workload_library.networks() if not library_graph_problems(n)]
        where.add(("workload",), f"the library lists {name}'s layer shapes but not all of its graph "
                                 f"({problems[0]}), so its partitions would be of another network; give "
                                 f"{{onnx: {name}.onnx}} (an export of the model) or {{name: ..., layers: {{...}}}} "
                                 f"with each layer's inputs, or one of {', '.join(complete)}")
        return None
    return from_network(name, precision.activations, precision.weights)


@lru_cache(maxsize=None)
def library_graph_problems(name: str) -> tuple[str, ...]:
    """What the checks of an inline graph find in the library network
    ``name``: a network listed as a chain of layer shapes, without the
    pools, joins and branches between them, fails them."""
    found = Located(Path(f"{name}.yaml"))
    _inline({"name": name, "layers": workload_library.network(name)}, found, GraphPrecision())
    return tuple(f"{issue.field.removeprefix('workload.layers.')}: {issue.message}" for issue in found.issues)


def _randwire(raw: dict, where: Located, precision: GraphPrecision) -> tuple[PartitionGraph, dict] | None:
    spec = validate_spec(GeneratedWorkload, raw, where, ("workload",), "a network name, {randwire: {...}} or "
                         "{name: ..., layers: {...}}")
    if spec is None:
        return None
    rw = spec.randwire
    if rw.k >= rw.nodes:
        where.add(("workload", "randwire", "k"), f"must be below nodes ({rw.nodes}), got {rw.k}")
        return None
    try:
        layers = workload_library.randwire_layers(rw.nodes, rw.k, rw.p, rw.seed, rw.channels, rw.size)
    except Exception as exc:  # networkx gives up on some (nodes, k, p): say which, not a traceback
        where.add(("workload", "randwire"), f"cannot generate this random graph: {exc}")
        return None
    name = f"randwire{rw.nodes}-k{rw.k}-p{rw.p:g}-s{rw.seed}"
    return from_layers(name, layers, precision.activations, precision.weights), {"randwire": rw.model_dump()}


def _layer(name: str, raw: Any, where: Located, path: tuple) -> dict | None:
    """One inline layer, checked on its own and normalized (the dictionary
    ``graph.from_layers`` reads and :func:`dump_partition` writes)."""
    spec = validate_spec(LayerSpec, raw, where, path, "a mapping with op, dims and inputs")
    if spec is None:
        return None
    ok = True
    windowed = spec.op in WINDOWED_OPS
    allowed = ("N", "M", "C", "P", "Q", "R", "S") if windowed else ("N", "M", "C", "P", "Q") \
        if spec.op in ("add", "concat") else ("N", "M", "C")
    for dim, value in spec.dims.items():
        limit = MAX_WINDOW if dim in ("R", "S") else MAX_FLAT if dim == "C" else MAX_DIM
        if dim not in allowed:
            where.add(path + ("dims", dim), f"unknown dimension for a {spec.op} layer; expected one of "
                                            f"{', '.join(allowed)}")
            ok = False
        elif not 1 <= value <= limit:
            where.add(path + ("dims", dim), f"{value:,} is beyond the supported range (1 to {limit:,})")
            ok = False
    for dim in ("M", "C"):
        if dim not in spec.dims:
            meaning = {"M": "output channels", "C": "input channels"}[dim]
            same = {"pool": "; a pool layer keeps its channels: C equals M",
                    "add": "; an add layer keeps its channels: C equals M",
                    "concat": "; a concat layer's C and M are both the channels of its inputs together"}
            where.add(path + ("dims",), f"dimension {dim} ({meaning}) is missing{same.get(spec.op, '')}")
            ok = False
    stride = spec.stride if isinstance(spec.stride, list) else [spec.stride]
    if not 1 <= len(stride) <= 2 or any(not 1 <= s <= MAX_WINDOW for s in stride):
        where.add(path + ("stride",), f"must be an integer or [vertical, horizontal] in the supported range "
                                      f"(1 to {MAX_WINDOW:,}), got {spec.stride!r}")
        ok = False
    elif not windowed and max(stride) > 1:
        where.add(path + ("stride",), f"a {spec.op} layer has no window to stride")
        ok = False
    if not ok:
        return None
    dims = {d: spec.dims[d] for d in allowed if d in spec.dims}
    if spec.groups != 1:
        if spec.op != "conv2d" or dims["C"] % spec.groups or dims["M"] % spec.groups:
            where.add(path + ("groups",), f"must divide C ({dims['C']}) and M ({dims['M']}) of a conv2d layer, "
                                          f"got {spec.groups}")
            return None
    if spec.op in ("pool", "add") and dims["C"] != dims["M"]:
        where.add(path + ("dims",), f"a {spec.op} layer keeps its channels: C ({dims['C']}) must equal M ({dims['M']})")
        return None
    act_values = dims.get("N", 1) * dims["M"] * dims.get("P", 1) * dims.get("Q", 1)
    weight_values = (dims["M"] * (dims["C"] // spec.groups) * dims.get("R", 1) * dims.get("S", 1)
                     if spec.op in workload_library.COMPUTE_OPS else 0)
    for what, values in (("output tensor", act_values), ("weights", weight_values)):
        if values * 4 > MAX_TENSOR_BYTES:  # at the widest precision, 32 bits
            where.add(path + ("dims",), f"its {what} hold {values:,} values, beyond the supported range "
                                        f"(up to {MAX_TENSOR_BYTES // 4:,})")
            return None
    layer: dict = {"op": spec.op, "dims": dims}
    if max(stride) > 1:
        layer["stride"] = stride[0] if len(stride) == 1 else list(stride)
    if spec.groups != 1:
        layer["groups"] = spec.groups
    if spec.inputs is not None:
        layer["inputs"] = list(spec.inputs)
    return layer


def _output_shape(layer: dict) -> tuple[int, int, int]:
    d = layer["dims"]
    return d.get("P", 1), d["M"], d.get("Q", 1)


def _window_fits(layer: dict, given: tuple[int, int, int], source: str, where: Located, path: tuple) -> bool:
    """A windowed layer's output size follows from the map it reads: it
    reads ``(P - 1) * stride + R`` rows of its (padded) input, which may
    pad the map by at most ``R - 1`` rows on each side and may leave out up
    to ``stride - 1`` rows at the end (likewise for the width), unless it
    reads the same number of positions laid out otherwise (a reshape).
    Beyond that the layers do not form a network, and a partition of them
    would be another network's."""
    d = layer["dims"]
    stride = layer.get("stride", 1)
    strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
    rows, _, width = given
    reads = [(d.get("P", 1) - 1) * strides[0] + d.get("R", 1), (d.get("Q", 1) - 1) * strides[1] + d.get("S", 1)]
    if reads[0] * reads[1] == rows * width:  # the same map reshaped (an ONNX Reshape between them)
        return True
    for axis, have, out, window, step in (("P", rows, d.get("P", 1), d.get("R", 1), strides[0]),
                                          ("Q", width, d.get("Q", 1), d.get("S", 1), strides[1])):
        read = (out - 1) * step + window
        if not have - (step - 1) <= read <= have + 2 * (window - 1):
            side = "rows" if axis == "P" else "columns"
            where.add(path + ("dims", axis), f"{axis} = {out} reads {read} {side} of its input (stride {step}, window "
                                             f"{window}), but {source} gives {have}: a window of {window} pads at "
                                             f"most {window - 1} on each side; check {axis} or the layer it reads")
            return False
    return True


def _check_inputs(name: str, layer: dict, earlier: list[str], shapes: dict, where: Located, path: tuple) -> bool:
    """The layer reads earlier layers (or the network input) of the shapes it
    needs, so that the cost model's sizes and the functional model agree.
    ``earlier`` names every layer before it, ``shapes`` the valid ones."""
    op, d = layer["op"], layer["dims"]
    sources = layer.get("inputs", [earlier[-1]] if earlier else ["input"])
    if not sources:
        where.add(path + ("inputs",), "must name at least one earlier layer or input")
        return False
    for source in sources:
        if source != "input" and source not in earlier:
            where.add(path + ("inputs",), f"reads {source!r}, which is not a layer before {name}")
            return False
        if source != "input" and source not in shapes:
            return False  # an invalid layer: its own problem is reported
    if "input" in sources and (op not in READS_INPUT_OPS or len(sources) > 1):
        where.add(path + ("inputs",), "only a conv2d, pool, fc or matmul layer may read the network input, "
                                      "and then nothing else")
        return False
    if "input" in sources:
        return True
    given = [shapes[s] for s in sources]
    channels = sum(c for _, c, _ in given)
    if op in FLATTENING_OPS:
        flat = sum(r * c * w for r, c, w in given)
        if flat != d["C"]:
            where.add(path + ("dims", "C"), f"a {op} layer reads its whole input: C must be {flat:,} "
                                            f"(rows x channels x width of {', '.join(sources)}), got {d['C']:,}")
            return False
        return True
    if op in WINDOWED_OPS:
        if len(sources) != 1:
            where.add(path + ("inputs",), f"a {op} layer reads one tensor, got {len(sources)}")
            return False
        if channels != d["C"]:
            where.add(path + ("dims", "C"), f"must equal the channels of {sources[0]} ({channels:,}), got {d['C']:,}")
            return False
        return _window_fits(layer, given[0], sources[0], where, path)
    out = _output_shape(layer)
    if any((r, w) != (out[0], out[2]) for r, _, w in given):
        where.add(path + ("inputs",), f"a {op} layer joins tensors of its own rows and width ({out[0]} x {out[2]}); "
                                      f"got {', '.join(f'{r} x {w}' for r, _, w in given)}")
        return False
    if op == "add" and any(c != d["M"] for _, c, _ in given):
        where.add(path + ("inputs",), f"an add layer adds tensors of its {d['M']} channels; got "
                                      f"{', '.join(str(c) for _, c, _ in given)}")
        return False
    if op == "concat" and (channels != d["M"] or d["C"] != d["M"]):
        where.add(path + ("dims",), f"a concat layer joins {channels:,} channels: C and M must both be {channels:,}")
        return False
    return True


def _inline(raw: dict, where: Located, precision: GraphPrecision) -> tuple[PartitionGraph, dict] | None:
    path = ("workload",)
    layers_raw = raw.get("layers")
    if isinstance(layers_raw, dict) and not 1 <= len(layers_raw) <= MAX_LAYERS:  # before validating each
        where.add(path + ("layers",), f"{len(layers_raw):,} layers; the supported range is 1 to {MAX_LAYERS:,}")
        return None
    spec = validate_spec(InlineWorkload, raw, where, path, "a network name, {randwire: {...}} or "
                         "{name: ..., layers: {...}}")
    if spec is None:
        return None
    layers: dict[str, dict] = {}
    shapes: dict[str, tuple[int, int, int]] = {}
    ok = True
    earlier: list[str] = []
    for name, raw_layer in spec.layers.items():
        name = str(name)
        at = path + ("layers", name)
        if name == "input":
            where.add(at, "'input' names the network input; give the layer another name")
            ok = False
            continue
        layer = _layer(name, raw_layer, where, at)
        valid = layer is not None and _check_inputs(name, layer, earlier, shapes, where, at)
        earlier.append(name)
        if not valid:
            ok = False
            continue
        layers[name] = layer
        shapes[name] = _output_shape(layer)
    if not ok:
        return None
    names = list(layers)
    for i, (v, layer) in enumerate(layers.items()):  # one batch flows through the network
        batch = layer["dims"].get("N", 1)
        for u in layer.get("inputs") or names[i - 1:i]:  # a layer without inputs reads the one before it
            if u in layers and layers[u]["dims"].get("N", 1) != batch:
                where.add(path + ("layers", v, "dims", "N"), f"must equal the batch of {u} "
                                                             f"({layers[u]['dims'].get('N', 1)}), got {batch}")
                ok = False
    if not ok:
        return None
    readers = {v: layer for i, (v, layer) in enumerate(layers.items())
               if "input" in layer.get("inputs", []) or (i == 0 and "inputs" not in layer)}
    conflict = input_conflict(readers)
    if conflict is not None:
        where.add(path + ("layers", next(iter(readers)), "inputs"),
                  f"{', '.join(readers)} read the network input, but {conflict}")
        return None
    return from_layers(spec.name, layers, precision.activations, precision.weights), {"name": spec.name,
                                                                                       "layers": layers}


def _onnx(raw: dict, where: Located, precision: GraphPrecision, base: Path) -> tuple[PartitionGraph, dict] | None:
    """An ONNX model's graph, checked as an inline graph of its layers (and
    written back as one, so a result does not depend on the file)."""
    found = onnx_workload(raw, where, ("workload",), base)
    if found is None:
        return None
    name, layers = found
    dilated = [layer for layer, spec in layers.items() if "dilation" in spec]
    if dilated:
        where.add(("workload", "onnx"), f"{raw['onnx']}: dilated convolutions ({', '.join(dilated)}); the "
                                        "partition family models undilated windows")
        return None
    inner = Located(where.file)  # the layers' problems, said of the model's nodes, not of fields the file lacks
    built = _inline({"name": name, "layers": layers}, inner, precision)
    for issue in inner.issues:
        field = issue.field.removeprefix("workload.layers.")
        layer = max((n for n in layers if field == n or field.startswith(n + ".")), key=len, default=None)
        rest = field[len(layer) + 1:] if layer else ""
        what = (f"layer {layer!r}" + (f" ({rest})" if rest else "")) if layer else field
        where.add(("workload", "onnx"), f"{raw['onnx']}: {what}: {issue.message}")
    return None if inner.issues else built


def build_graph(raw: Any, where: Located, precision: GraphPrecision,
                base: Path = Path(".")) -> tuple[PartitionGraph, str | dict] | None:
    """(graph, workload as :func:`dump_partition` writes it), or None with the
    problems recorded; an ONNX file is looked up relative to ``base``."""
    if isinstance(raw, str):
        graph = _preset(raw, where, precision)
        return None if graph is None else (graph, raw)
    if isinstance(raw, dict) and "randwire" in raw:
        return _randwire(raw, where, precision)
    if isinstance(raw, dict) and "layers" in raw:
        return _inline(raw, where, precision)
    if is_onnx(raw):
        return _onnx(raw, where, precision, base)
    where.add(("workload",), "must be a network name (e.g. resnet50), {onnx: model.onnx}, {randwire: {nodes: 32}} "
                             "or {name: ..., layers: {...}}")
    return None


# --------------------------------------------------------------------------
# the buffer


def _size(raw: Any, where: Located, path: tuple) -> int | None:
    try:
        return parse_bytes(raw, MAX_BUFFER_BYTES)
    except ValueError as exc:
        where.add(path, str(exc))
        return None


def build_capacities(raw: Any, where: Located) -> tuple[tuple, bool] | None:
    """(capacities, co-explore?) from one size, a list, a range or separate
    buffers; the number of sizes is checked before any list is made."""
    path = ("buffer",)
    if isinstance(raw, list):
        if not raw:
            where.add(path, "an empty list; give one size or several")
            return None
        if len(raw) > MAX_CAPACITIES:
            where.add(path, f"{len(raw):,} sizes; the supported range is 1 to {MAX_CAPACITIES} (one exact solve each)")
            return None
        sizes = [_size(x, where, path + (i,)) for i, x in enumerate(raw)]
        if any(s is None for s in sizes):
            return None
        unique = tuple(sorted(set(sizes)))
        return unique, len(unique) > 1
    if isinstance(raw, dict) and ("activations" in raw or "weights" in raw):
        split = validate_spec(SplitBuffer, raw, where, path, "{activations: size, weights: size}")
        if split is None:
            return None
        activations = _size(split.activations, where, path + ("activations",))
        weights = _size(split.weights, where, path + ("weights",))
        if activations is None or weights is None:
            return None
        return (SplitCapacity(activations, weights),), False
    if isinstance(raw, dict):
        spec = validate_spec(BufferRange, raw, where, path, "a size, a list of sizes, {from, to, step} "
                             "or {activations: size, weights: size}")
        if spec is None:
            return None
        low, high = _size(spec.from_, where, path + ("from",)), _size(spec.to, where, path + ("to",))
        step = _size(spec.step, where, path + ("step",))
        if low is None or high is None or step is None:
            return None
        if high < low:
            where.add(path + ("to",), f"must not be below from ({low:,} B), got {high:,} B")
            return None
        count = (high - low) // step + 1
        if count > MAX_CAPACITIES:
            where.add(path + ("step",), f"{count:,} sizes; the supported range is 1 to {MAX_CAPACITIES} "
                                        "(one exact solve each): raise the step")
            return None
        sizes = tuple(range(low, high + 1, step))
        return sizes, len(sizes) > 1
    size = _size(raw, where, path)
    return None if size is None else ((size,), False)


# --------------------------------------------------------------------------
# instance <-> document


def build_partition(data: dict, where: Located, label: str, base: Path = Path(".")) -> PartitionProblem | None:
    """The problem of an instance document, or None with every problem recorded
    on ``where`` (``base``: the folder of the instance, for an ONNX file)."""
    spec = validate_spec(GraphPartitionSpec, data, where, (), "a mapping")
    if spec is None:
        return None
    capacities = build_capacities(spec.buffer, where)
    built = build_graph(spec.workload, where, spec.precision, base)
    if built is None or capacities is None:
        return None
    graph, workload = built
    sizes, coexplore = capacities
    if coexplore and spec.objective != "ema":
        where.add(("objective",), "co-exploring buffer sizes scores designs by Cocco's cost (size + alpha * EMA "
                  "energy); give one buffer size for latency, or objective: ema")
        return None
    machine = Machine(spec.accelerator.macs_per_cycle, spec.accelerator.dram_bytes_per_cycle)
    return PartitionProblem(graph, workload, sizes, coexplore, spec.cost.alpha, spec.cost.pj_per_bit,
                            spec.solver.method, spec.solver.time_limit, spec.solver.workers, label,
                            spec.objective, machine, spec.precision.activations, spec.precision.weights)


def dump_capacities(problem: PartitionProblem):
    """The ``buffer`` field of a problem: one size, the list of candidate
    sizes, or the separate buffers (bytes)."""
    if problem.coexplore:
        return list(problem.capacities)
    capacity = problem.capacity
    if isinstance(capacity, SplitCapacity):
        return {"activations": capacity.activations, "weights": capacity.weights}
    return capacity


def dump_partition(problem: PartitionProblem) -> dict:
    """A self-contained instance document that :func:`build_partition` reads
    back to an equal problem (a preset network by name, a RandWire graph by
    its generator's arguments, an inline graph layer by layer)."""
    return {
        "family": "partition",
        "workload": problem.workload,
        "buffer": dump_capacities(problem),
        "precision": {"activations": problem.activation_bits, "weights": problem.weight_bits},
        "cost": {"alpha": problem.alpha, "pj_per_bit": problem.pj_per_bit},
        "objective": problem.objective,
        "accelerator": {"macs_per_cycle": problem.machine.macs_per_cycle,
                        "dram_bytes_per_cycle": problem.machine.dram_bytes_per_cycle},
        "solver": {"method": problem.method, "time_limit": problem.time_limit, "workers": problem.workers},
    }
