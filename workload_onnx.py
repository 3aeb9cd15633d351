"""ONNX models as networks: the layer table of workloads/ read from a model file.

An instance may give ``workload: {onnx: model.onnx}`` wherever it may name
a network of workloads/ (tiling on a memory hierarchy, crossbar, partition).
The model becomes the same layer dictionary a named network has (``op``,
``dims``, ``stride``, ``groups``, ``inputs``), so every family reads it
through the code that reads named networks and nothing downstream knows
where the layers came from.

What becomes what (docs/interop.md has the full table):

- Conv, Gemm and MatMul with a constant weight operand are the layers with
  weights (``conv2d``, ``fc``, ``matmul``); MaxPool, AveragePool, the
  global pools and reductions over the spatial axes are ``pool`` layers;
  an Add of two layers' outputs is an ``add`` layer and a channel Concat a
  ``concat`` layer, so residual and inception joins stay nodes of the
  graph the partition family cuts.
- Element-wise nodes on one layer's output (BatchNormalization, Relu,
  Clip, Sigmoid, a Mul by a constant, ...) fold into that layer: they move
  no data of their own across a memory boundary a mapping chooses.
- Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout and Pad pass
  their input through: they rename a tensor without computing on it.
- Nodes that compute only on constants and shapes (Constant, Shape, the
  Gather and Concat of a Reshape's target shape) are not part of the
  network.

Shapes come from ONNX shape inference; precisions never come from the
model (an instance gives them, as for named networks). Everything else is
refused, every unsupported node named in one message.
"""

from __future__ import annotations

import ast
from math import prod
from pathlib import Path
from typing import Any

from pydantic import Field

from .instances import Located, Strict, validate_spec
from .units import article
from .workload_library import COMPUTE_OPS

MAX_BATCH = 2**20
"""Largest batch an instance may ask for (the largest extent of one dimension)."""

POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
REDUCTIONS = ("ReduceMean", "ReduceMax", "ReduceSum")
"""Reductions: a global pool when they reduce exactly the spatial axes
(PyTorch exports ``AdaptiveAvgPool2d(1)`` and ``x.mean([2, 3])`` as a
ReduceMean)."""
JOINS = ("Add", "Sum")
"""Element-wise sums: a layer of its own when they add two layers' outputs."""
ELEMENTWISE = frozenset({
    "Abs", "BatchNormalization", "Cast", "Celu", "Clip", "DequantizeLinear", "Div", "Elu", "Erf", "Exp", "Gelu",
    "HardSigmoid", "HardSwish", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax",
    "LRN", "Max", "Min", "Mish", "Mul", "Neg", "Pow", "PRelu", "QuantizeLinear", "Reciprocal", "Relu", "Selu",
    "Sigmoid", "Softmax", "Softplus", "Softsign", "Sqrt", "Sub", "Tanh", "ThresholdedRelu",
})
"""Nodes folded into the layer whose output they transform (with constants
as their other operands)."""
PASSED = frozenset({"Dropout", "Flatten", "Identity", "Pad", "Reshape", "Squeeze", "Unsqueeze"})
"""Nodes whose output is their first input under another shape."""
SHAPE_SOURCES = frozenset({"Constant", "Shape", "Size"})
"""Nodes whose outputs are known before the network runs."""
UNSUPPORTED_REASONS = {
    "ConvTranspose": "a transposed convolution scatters each input into a window of outputs; the layer table has "
                     "no such layer",
    "Resize": "upsampling moves data without weights and changes the map's size; the layer table has no such layer",
    "Upsample": "upsampling moves data without weights and changes the map's size; the layer table has no such "
                "layer",
    "Transpose": "a permutation of axes; layers read NCHW tensors in place",
    "Slice": "a part of a tensor; layers read whole tensors",
    "Split": "parts of a tensor; layers read whole tensors",
    "Gather": "an indexed part of a tensor; layers read whole tensors",
}
"""Why common operators on activations are refused, for the one message."""


class OnnxWorkloadError(ValueError):
    """An ONNX model that cannot be read as a network; ``str`` is one line."""


class OnnxWorkloadSpec(Strict):
    onnx: str = Field(min_length=1)
    name: str | None = None
    batch: int | None = Field(None, ge=1, le=MAX_BATCH)
    layer: str | int | None = None


def is_onnx(raw: Any) -> bool:
    """Whether an instance's ``workload`` names an ONNX model."""
    return isinstance(raw, dict) and "onnx" in raw


def onnx_workload(raw: Any, where: Located, path: tuple, base: Path, one_layer: bool = False,
                  refused: list[str] | None = None) -> tuple[str, dict[str, dict]] | None:
    """``(network name, layers)`` of a ``workload: {onnx: file, name, batch}``,
    or None with the problem recorded on ``where`` (one line, at ``onnx``).

    The file is looked up relative to ``base`` (the instance's folder); the
    network is named ``name``, else after the file. ``layer`` (one layer
    to tile, :func:`onnx_layer`) is refused unless ``one_layer``; then
    unsupported nodes elsewhere in the model do not stop the reading, and
    ``refused`` (when given) receives them.
    """
    spec = validate_spec(OnnxWorkloadSpec, raw, where, path, "{onnx: model.onnx}")
    if spec is None:
        return None
    file = Path(spec.onnx)
    if not file.is_absolute():
        file = base / file
    if file.is_dir():
        where.add(path + ("onnx",), f"{spec.onnx}: is a folder ({file.resolve()}); give the .onnx file")
        return None
    if not file.is_file():
        relative = "" if Path(spec.onnx).is_absolute() else f" (relative to the instance's folder {base.resolve()})"
        where.add(path + ("onnx",), f"{spec.onnx}: no such file: {file.resolve()}{relative}")
        return None
    if spec.layer is not None and not one_layer:
        where.add(path + ("layer",), "picks one layer of the model to tile; this instance reads the whole model: "
                                     "remove it")
        return None
    try:
        layers = onnx_layers(file, spec.batch, whole=not one_layer, refused=refused)
    except OnnxWorkloadError as exc:
        where.add(path + ("onnx",), f"{spec.onnx}: {exc}")
        return None
    return spec.name or file.stem, layers


def onnx_layer(raw: Any, where: Located, path: tuple, base: Path) -> dict | None:
    """The layer ``layer:`` picks of a ``workload: {onnx: file, layer: name}``,
    as the layer mapping of one-layer tiling instances (``name`` the
    network's name and the layer's, as in ``resnet18.conv1``), or None with
    the problem recorded on ``where``. Without ``layer`` it is recorded
    that one layer is needed, naming the model's layers with weights."""
    refused: list[str] = []
    found = onnx_workload(raw, where, path, base, one_layer=True, refused=refused)
    if found is None:
        return None
    network, layers = found
    weighted = [name for name, layer in layers.items() if layer["op"] in COMPUTE_OPS]
    wanted = raw.get("layer")
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        wanted = str(wanted)  # layer: 123, a node ONNX named 123
    if isinstance(wanted, str) and wanted not in layers and wanted.startswith(f"{network}."):
        wanted = wanted[len(network) + 1:]  # as reports print it, after the network's name
    if wanted in weighted:
        return {"name": f"{network}.{wanted}", **{k: v for k, v in layers[wanted].items() if k != "inputs"}}
    shown = ", ".join(weighted[:12]) + (f", ... ({len(weighted)} in all)" if len(weighted) > 12 else "")
    if wanted is None:
        where.add(path, f"one layer is tiled here: give layer: NAME, one of {shown} (or a hierarchy, to tile "
                        "every layer)")
    elif wanted in layers:
        where.add(path + ("layer",), f"{wanted!r} is {article(layers[wanted]['op'])} layer without weights; the tiling "
                                     f"family maps {shown}")
    else:
        unsupported = next((r for r in refused if r.startswith(f"{wanted!r} (")), None)
        where.add(path + ("layer",), f"{wanted!r} is an unsupported node: {unsupported}; the model's layers with "
                                     f"weights are {shown}" if unsupported else
                                     f"{wanted!r} is no layer of the model; its layers with weights are {shown}")
    return None


def onnx_layers(path: str | Path, batch: int | None = None, whole: bool = True,
                refused: list[str] | None = None) -> dict[str, dict]:
    """The layers of an ONNX model in the format of workloads/.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    batch
        The batch of the network input when the model leaves it symbolic
        (default 1, the batch of the networks of workloads/); a model that
        fixes its batch keeps it, and a different ``batch`` is refused.
    whole
        Whether the whole network is read: then an unsupported node is an
        error. When one layer is wanted, the layers around unsupported
        nodes (a transformer's projections around its attention) are read
        all the same, their shapes coming from shape inference.
    refused
        When given, receives each unsupported node with the reason.

    Returns
    -------
    dict
        Layer name (the ONNX node's name) -> ``{op, dims, stride, groups,
        dilation, inputs}`` in execution order, ``stride``, ``groups`` and
        ``dilation`` given only when not 1, ``inputs`` naming earlier layers
        or ``input`` (the network input).

    Raises
    ------
    OnnxWorkloadError
        The file is missing or not a valid ONNX model, its shapes cannot be
        inferred, an input has a symbolic size other than the batch, or
        nodes are not supported (all of them named in the one message).

    Examples
    --------
    >>> from onnx import TensorProto, helper, save
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 8, 8])
    >>> w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.0] * 108)
    >>> conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    >>> model = helper.make_model(helper.make_graph([conv], "g", [x], [y], [w]))
    >>> import os, tempfile
    >>> file = os.path.join(tempfile.mkdtemp(), "conv.onnx")
    >>> save(model, file)
    >>> onnx_layers(file)
    {'conv': {'op': 'conv2d', 'dims': {'N': 1, 'M': 4, 'C': 3, 'P': 8, 'Q': 8, 'R': 3, 'S': 3}, 'inputs': ['input']}}
    """
    import onnx  # only instances with an ONNX workload pay for importing it

    model = _read(onnx, Path(path))
    _fix_batch(model.graph, batch)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError) as exc:  # RuntimeError: onnx before 1.16
        raise OnnxWorkloadError(f"shapes cannot be inferred: {_first_line(exc)}") from None
    reader = _Reader(onnx, model.graph)
    table = reader.layers(whole)
    if refused is not None:
        refused.extend(reader.refused)
    return table


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _read(onnx, path: Path):
    """The model of ``path``, checked against the ONNX specification."""
    try:
        model = onnx.load(str(path), load_external_data=False)  # shapes only: weights may stay on disk
    except OSError as exc:
        raise OnnxWorkloadError(f"cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # the protobuf parser's errors differ between versions
        raise OnnxWorkloadError(f"not an ONNX model ({_first_line(exc)})") from None
    try:
        onnx.checker.check_model(_without_external_data(onnx, model))
    except onnx.checker.ValidationError as exc:
        raise OnnxWorkloadError(f"not a valid ONNX model: {_first_line(exc)}") from None
    return model


def _without_external_data(onnx, model):
    """``model`` with its externally stored weights as graph inputs of the
    same type, for the checker: it would open their data file (PyTorch's
    exporter writes ``model.onnx.data``), relative to the working folder,
    and only their shapes are read here."""
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    names = {t.name for t in external}
    kept = [t for t in copy.graph.initializer if t.name not in names]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    declared = {v.name for v in copy.graph.input}
    copy.graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                            for t in external if t.name not in declared)
    return copy


def _fix_batch(graph, batch: int | None) -> None:
    """Give every network input a fixed size: a symbolic batch (axis 0)
    becomes ``batch`` (default 1); any other symbolic size is refused, as
    mapping spaces are drawn for fixed layer shapes."""
    constants = {t.name for t in graph.initializer}
    for value in graph.input:
        if value.name in constants:
            continue
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            raise OnnxWorkloadError(f"input {value.name!r} has no shape; export the model with its input shape")
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                if axis == 0 and batch is not None and dim.dim_value != batch:
                    raise OnnxWorkloadError(f"input {value.name!r} fixes the batch at {dim.dim_value}; remove "
                                            f"batch: {batch} or export the model with a symbolic batch")
                continue
            if axis != 0:
                size = repr(dim.dim_param) if dim.dim_param else "an unknown size"
                raise OnnxWorkloadError(f"input {value.name!r} has {size} on axis {axis}; mappings are found for "
                                        "fixed shapes: export the model with a fixed input size")
            dim.Clear()
            dim.dim_value = batch or 1
    del graph.value_info[:]  # sizes recorded by the exporter, possibly symbolic: inference recomputes them


def _module_name(node, op: str) -> str | None:
    """The PyTorch module a node of ``torch.onnx.export`` (dynamo) computes,
    from the scopes the exporter records (``pkg.torch.onnx.name_scopes``:
    the module paths from the root, then the traced operation), for nodes
    it names ``node_Conv_292``: a layer is named after its innermost module
    (``layer1.0.conv1``; a Conv the exporter fused with its BatchNorm after
    the BatchNorm, whose output it computes), a join or a root-level
    operation after the module and the operation (``layer1.0.add_3``).
    None when the node has no such record or a name of its own."""
    if not node.name.startswith("node_"):
        return None
    scopes = next((p.value for p in getattr(node, "metadata_props", ()) if p.key == "pkg.torch.onnx.name_scopes"),
                  None)
    try:
        scopes = ast.literal_eval(scopes) if scopes else None
    except (ValueError, SyntaxError):
        return None
    if not isinstance(scopes, list) or len(scopes) < 2 or not all(isinstance(x, str) for x in scopes):
        return None
    module, operation = scopes[-2], scopes[-1]
    if module and op in COMPUTE_OPS + ("pool",):
        return module
    return f"{module}.{operation}" if module else operation or None


class _Refused(Exception):
    """A node that cannot be read: why, for the one message that lists them all."""


def _pair(values: list[int]) -> int | list[int]:
    return values[0] if values[0] == values[1] else list(values)


def _spatial(values, rank: int, default: int = 1) -> list[int]:
    """Per-axis attribute of a node over 1 or 2 spatial axes as (vertical, horizontal)."""
    values = list(values) or [default] * rank
    return [default] * (2 - rank) + values


class _Reader:
    """One pass over the nodes in their (topological) order.

    ``source`` maps each activation tensor to the layer that produced it
    (``input`` for the network input, the node's name for a refused node);
    ``constant`` holds the tensors known before the network runs.
    """

    def __init__(self, onnx, graph):
        self.onnx = onnx
        self.shapes: dict[str, list] = {}
        for value in list(graph.input) + list(graph.value_info) + list(graph.output):
            if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
                self.shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None
                                           for d in value.type.tensor_type.shape.dim]
        self.constant = {t.name for t in graph.initializer}
        self.values: dict[str, list[int]] = {}  # small integer constants: the axes a reduction reads as an input
        for t in graph.initializer:
            self.shapes[t.name] = list(t.dims)
            self._keep_value(t.name, t)
        self.source: dict[str, str] = {v.name: "input" for v in graph.input if v.name not in self.constant}
        self.graph = graph
        self.table: dict[str, dict] = {}
        self.refused: list[str] = []

    def layers(self, whole: bool = True) -> dict[str, dict]:
        for index, node in enumerate(self.graph.node):
            activations = [t for t in node.input if t and t not in self.constant]
            if node.op_type in SHAPE_SOURCES or not activations:
                self.constant.update(node.output)
                if node.op_type == "Constant":
                    for attribute in node.attribute:
                        if attribute.name == "value":
                            self._keep_value(node.output[0], attribute.t)
                        elif attribute.name in ("value_ints", "value_int"):
                            self.values[node.output[0]] = list(self.onnx.helper.get_attribute_value(attribute)) \
                                if attribute.name == "value_ints" else [attribute.i]
                continue
            producers = [self.source[t] for t in activations]
            try:
                self._node(node, index, activations, producers)
            except _Refused as exc:
                label = node.name or node.output[0]
                self.refused.append(f"{label!r} ({node.op_type}{': ' + str(exc) if str(exc) else ''})")
                self._alias(node, label)  # its consumers are read on, to name every refused node at once
        if self.refused and whole:
            raise OnnxWorkloadError(f"unsupported ONNX node{'s' if len(self.refused) > 1 else ''}: "
                                    f"{', '.join(self.refused)}; docs/interop.md lists what is read")
        if not any(layer["op"] in COMPUTE_OPS for layer in self.table.values()):
            raise OnnxWorkloadError("no Conv, Gemm or MatMul node with constant weights: no layer to map")
        return self.table

    def _keep_value(self, name: str, tensor) -> None:
        """Record an integer tensor of a few elements stored in the model
        (never one whose data lies in an external file)."""
        integers = (self.onnx.TensorProto.INT64, self.onnx.TensorProto.INT32)
        if (tensor.data_type in integers and prod(tensor.dims) <= 8
                and tensor.data_location != self.onnx.TensorProto.EXTERNAL):
            self.values[name] = [int(v) for v in self.onnx.numpy_helper.to_array(tensor).reshape(-1)]

    def _alias(self, node, producer: str) -> None:
        self.source[node.output[0]] = producer
        self.constant.update(node.output[1:])  # masks, indices, statistics: nothing consumes them as data

    def _node(self, node, index: int, activations: list[str], producers: list[str]) -> None:
        op = node.op_type
        distinct = list(dict.fromkeys(producers))
        if op in PASSED:
            return self._alias(node, producers[0])
        if op in ELEMENTWISE or op in JOINS:
            if len(distinct) == 1:
                return self._alias(node, distinct[0])
            if op not in JOINS:
                raise _Refused(f"combines {', '.join(distinct)}; only Add joins two layers' outputs")
            return self._add(node, index, self._activation(node.output[0]) | {"op": "add"}, distinct)
        if op == "Concat":
            return self._concat(node, index, activations, producers)
        if op in POOLS:
            return self._add(node, index, self._pool(node), producers[:1])
        if op in REDUCTIONS:
            noop = any(a.name == "noop_with_empty_axes" and a.i for a in node.attribute)
            no_axes = not any(a.name == "axes" for a in node.attribute) and (len(node.input) < 2 or not node.input[1])
            if noop and no_axes:
                return self._alias(node, producers[0])  # no axes and noop_with_empty_axes: the identity
            return self._add(node, index, self._reduction(node), producers[:1])
        if op == "Conv":
            return self._add(node, index, self._conv(node), producers[:1])
        if op in ("Gemm", "MatMul"):
            return self._add(node, index, self._product(node), producers[:1])
        raise _Refused(UNSUPPORTED_REASONS.get(op, ""))

    def _add(self, node, index: int, layer: dict, inputs: list[str]) -> None:
        op = layer.pop("op")
        name = _module_name(node, op) or node.name or node.output[0] or f"{node.op_type}_{index}"
        unique, k = name, 1
        while unique in self.table or unique == "input":
            unique, k = f"{name}.{k}", k + 1
        self.table[unique] = {"op": op, **layer, "inputs": inputs}
        self._alias(node, unique)

    # ----------------------------------------------------------------- shapes

    def _shape(self, tensor: str) -> list[int]:
        shape = self.shapes.get(tensor)
        if shape is None or any(d is None or d < 1 for d in shape):
            raise _Refused(f"the shape of {tensor!r} is unknown after shape inference (a size computed at run time "
                           "by nodes ONNX cannot fold, such as the pads of a reflect padding exported with "
                           "dynamo=False); export with the default exporter (dynamo=True) or fold the "
                           "constants first (onnxsim)")
        return shape

    def _activation(self, tensor: str) -> dict:
        """``{"dims": {N, M, C, P, Q}}`` of an NCHW (or NCL, or NC) tensor."""
        shape = self._shape(tensor)
        if not 2 <= len(shape) <= 4:
            raise _Refused(f"a tensor of rank {len(shape)}; layers read NC, NCL or NCHW tensors")
        n, c, *spatial = shape
        p, q = ([1] * (2 - len(spatial)) + spatial)
        dims = {"N": n, "M": c, "C": c}
        return {"dims": dims | ({"P": p, "Q": q} if spatial else {})}

    def _windowed(self, node, kind: str, kernel: list[int], out: dict, channels: int) -> dict:
        """A conv2d or pool layer from its output's dims, the input channels and its window."""
        rank = len(kernel)
        attributes = {a.name: a for a in node.attribute}
        get = self.onnx.helper.get_attribute_value
        strides = _spatial(get(attributes["strides"]) if "strides" in attributes else [], rank)
        dilations = _spatial(get(attributes["dilations"]) if "dilations" in attributes else [], rank)
        r, s = _spatial(kernel, rank)
        dims = out["dims"]
        layer = {"op": kind, "dims": {"N": dims["N"], "M": dims["M"], "C": channels, "P": dims.get("P", 1),
                                      "Q": dims.get("Q", 1), "R": r, "S": s}}
        if strides != [1, 1]:
            layer["stride"] = _pair(strides)
        if dilations != [1, 1]:
            if kind != "conv2d":
                raise _Refused(f"dilations {dilations}; pools are read without dilation")
            layer["dilation"] = _pair(dilations)
        return layer

    @staticmethod
    def _spatial_rank(shape: list[int]) -> None:
        if len(shape) not in (3, 4):
            raise _Refused(f"over {len(shape) - 2} spatial axes; layers have one or two")

    # ----------------------------------------------------------------- layers

    def _conv(self, node) -> dict:
        if node.input[1] not in self.constant:
            raise _Refused("its weights are not constant")
        out = self._shape(node.output[0])
        self._spatial_rank(out)
        weights = self._shape(node.input[1])
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        channels = self._shape(node.input[0])[1]
        if weights[1] * groups != channels:
            raise _Refused(f"weights for {weights[1] * groups} input channels, its input has {channels}")
        layer = self._windowed(node, "conv2d", weights[2:], self._activation(node.output[0]), channels)
        if groups != 1:
            layer["groups"] = groups
        return layer

    def _pool(self, node) -> dict:
        given = self._shape(node.input[0])
        self._spatial_rank(given)
        out = self._activation(node.output[0])
        if node.op_type.startswith("Global"):
            layer = self._windowed(node, "pool", given[2:], out, given[1])
            layer["stride"] = _pair(_spatial(given[2:], len(given) - 2))  # one window covers the map
            return layer
        kernel = next(a.ints for a in node.attribute if a.name == "kernel_shape")
        return self._windowed(node, "pool", list(kernel), out, given[1])

    def _reduction(self, node) -> dict:
        """A ReduceMean, ReduceMax or ReduceSum over exactly the spatial axes:
        a pool whose one window covers the map, as a global pool is."""
        given = self._shape(node.input[0])
        self._spatial_rank(given)
        attributes = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        if "axes" in attributes:
            axes = list(attributes["axes"])
        elif len(node.input) > 1 and node.input[1]:
            if node.input[1] not in self.values:
                raise _Refused("its axes are computed at run time; a pool reduces fixed spatial axes")
            axes = self.values[node.input[1]]
        else:
            axes = []
        spatial = list(range(2, len(given)))
        if sorted(a % len(given) for a in axes) != spatial:
            what = f"axes {axes}" if axes else "every axis"
            raise _Refused(f"reduces {what}; a pool reduces the spatial axes {spatial} of an NCHW (NCL) tensor")
        out = self._activation(node.output[0])
        layer = self._windowed(node, "pool", given[2:], out, given[1])
        layer["stride"] = _pair(_spatial(given[2:], len(given) - 2))  # one window covers the map
        return layer

    def _product(self, node) -> dict:
        """A Gemm (``fc``) or a MatMul (``matmul``) by a constant weight matrix."""
        a, b = node.input[0], node.input[1]
        out = self._shape(node.output[0])
        if node.op_type == "MatMul" and a in self.constant and b not in self.constant:
            weights = self._shape(a)  # W @ x: the weights on the left, (M, C) by (..., C, L) to (..., M, L)
            if len(weights) != 2:
                raise _Refused(f"weights of rank {len(weights)}; a layer's weight matrix has rank 2")
            if len(out) == 3:  # (N, C, L) to (N, M, L): a 1 x 1 convolution along L, channels on axis 1 as NCL
                return {"op": "conv2d", "dims": {"N": out[0], "M": weights[0], "C": weights[1], "P": 1, "Q": out[2],
                                                 "R": 1, "S": 1}}
            return {"op": "matmul", "dims": {"N": prod(out) // weights[0], "M": weights[0], "C": weights[1]}}
        if b not in self.constant or a in self.constant:
            raise _Refused("multiplies two activations; a layer multiplies its input by constant weights")
        weights = self._shape(b)
        if node.op_type == "Gemm":
            trans_b = next((x.i for x in node.attribute if x.name == "transB"), 0)
            return {"op": "fc", "dims": {"N": out[0], "M": out[1], "C": weights[1] if trans_b else weights[0]}}
        if len(weights) != 2:
            raise _Refused(f"weights of rank {len(weights)}; a layer's weight matrix has rank 2")
        return {"op": "matmul", "dims": {"N": prod(out[:-1]), "M": out[-1], "C": weights[0]}}

    def _concat(self, node, index: int, activations: list[str], producers: list[str]) -> None:
        out = self._shape(node.output[0])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if axis % len(out) != 1 or len(activations) != len([t for t in node.input if t]):
            raise _Refused(f"on axis {axis} or with constants; a concat layer joins layers' channels")
        self._add(node, index, self._activation(node.output[0]) | {"op": "concat"}, producers)
