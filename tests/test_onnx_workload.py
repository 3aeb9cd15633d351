"""ONNX models as workloads: a model built with onnx.helper reads as the
same layer table as its network written in YAML, so tiling, crossbar and
partition instances give the same problems and the same answers; every
model that cannot be read is one line naming why (and the nodes)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper, save

import mapcert
from mapcert.formulations.registry import family_of
from mapcert.instances import InstanceError, load_document, load_text
from mapcert.workload_onnx import OnnxWorkloadError, onnx_layers


class Model:
    """A network under construction: ``x`` is its input (NCHW, batch symbolic)."""

    def __init__(self, channels: int, size: int, batch="batch"):
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, size, size])]
        self.nodes, self.weights = [], []

    def constant(self, name: str, shape, values=None) -> str:
        array = np.zeros(shape, np.float32) if values is None else np.array(values, np.int64)
        self.weights.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attributes) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name + ":out"], name=name, **attributes))
        return name + ":out"

    def conv(self, x: str, name: str, c: int, m: int, k: int, stride=1, groups=1, dilation=1, pad=None,
             bn=True, act="Relu") -> str:
        pad = (k // 2) * dilation if pad is None else pad
        w = self.constant(name + ".w", [m, c // groups, k, k])
        y = self.node("Conv", [x, w, self.constant(name + ".b", [m])], name, kernel_shape=[k, k],
                      strides=[stride, stride], pads=[pad] * 4, group=groups, dilations=[dilation, dilation])
        if bn:
            stats = [self.constant(f"{name}.bn.{s}", [m]) for s in ("scale", "bias", "mean", "var")]
            y = self.node("BatchNormalization", [y, *stats], name + ".bn")
        if act == "Relu6":
            y = self.node("Clip", [y, self.constant(name + ".lo", []), self.constant(name + ".hi", [])], name + ".clip")
        elif act:
            y = self.node(act, [y], name + "." + act.lower())
        return y

    def save(self, path, output: str, rank: int = 4, opset: int = 17, **options):
        out = helper.make_tensor_value_info(output, TensorProto.FLOAT, [None] * rank)  # sizes left to inference
        graph = helper.make_graph(self.nodes, path.stem, self.inputs, [out], self.weights)
        save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path, **options)
        return path


def residual_block(path):
    net = Model(3, 16)
    stem = net.conv("x", "stem", 3, 8, 3)
    a = net.conv(stem, "block1.conv1", 8, 16, 3, stride=2)
    a = net.conv(a, "block1.conv2", 16, 16, 3, act=None)
    down = net.conv(stem, "block1.downsample", 8, 16, 1, stride=2, act=None)
    y = net.node("Relu", [net.node("Add", [a, down], "block1.add")], "block1.relu")
    b = net.conv(y, "block2.conv1", 16, 16, 3)
    b = net.conv(b, "block2.conv2", 16, 16, 3, act=None)
    return net.save(path, net.node("Relu", [net.node("Add", [b, y], "block2.add")], "block2.relu"))


RESIDUAL = """
stem: {op: conv2d, dims: {N: 1, M: 8, C: 3, P: 16, Q: 16, R: 3, S: 3}, inputs: [input]}
block1.conv1: {op: conv2d, dims: {N: 1, M: 16, C: 8, P: 8, Q: 8, R: 3, S: 3}, stride: 2, inputs: [stem]}
block1.conv2: {op: conv2d, dims: {N: 1, M: 16, C: 16, P: 8, Q: 8, R: 3, S: 3}, inputs: [block1.conv1]}
block1.downsample: {op: conv2d, dims: {N: 1, M: 16, C: 8, P: 8, Q: 8, R: 1, S: 1}, stride: 2, inputs: [stem]}
block1.add: {op: add, dims: {N: 1, M: 16, C: 16, P: 8, Q: 8}, inputs: [block1.conv2, block1.downsample]}
block2.conv1: {op: conv2d, dims: {N: 1, M: 16, C: 16, P: 8, Q: 8, R: 3, S: 3}, inputs: [block1.add]}
block2.conv2: {op: conv2d, dims: {N: 1, M: 16, C: 16, P: 8, Q: 8, R: 3, S: 3}, inputs: [block2.conv1]}
block2.add: {op: add, dims: {N: 1, M: 16, C: 16, P: 8, Q: 8}, inputs: [block2.conv2, block1.add]}
"""


def depthwise_separable(path):
    net = Model(3, 16)
    y = net.conv("x", "stem", 3, 8, 3, stride=2, act="Relu6")
    y = net.conv(y, "dw", 8, 8, 3, groups=8, act="Relu6")
    y = net.conv(y, "pw", 8, 16, 1, act="HardSwish")
    y = net.node("Mul", [y, net.constant("scale", [1])], "scaled")  # by a constant: folded
    y = net.conv(y, "dw2", 16, 16, 3, stride=2, groups=16, act="Sigmoid")
    y = net.conv(y, "pw2", 16, 8, 1, act="LeakyRelu")
    return net.save(path, y)


DEPTHWISE = """
stem: {op: conv2d, dims: {N: 1, M: 8, C: 3, P: 8, Q: 8, R: 3, S: 3}, stride: 2, inputs: [input]}
dw: {op: conv2d, dims: {N: 1, M: 8, C: 8, P: 8, Q: 8, R: 3, S: 3}, groups: 8, inputs: [stem]}
pw: {op: conv2d, dims: {N: 1, M: 16, C: 8, P: 8, Q: 8, R: 1, S: 1}, inputs: [dw]}
dw2: {op: conv2d, dims: {N: 1, M: 16, C: 16, P: 4, Q: 4, R: 3, S: 3}, stride: 2, groups: 16, inputs: [pw]}
pw2: {op: conv2d, dims: {N: 1, M: 8, C: 16, P: 4, Q: 4, R: 1, S: 1}, inputs: [dw2]}
"""


def inception(path):
    net = Model(3, 16)
    stem = net.conv("x", "stem", 3, 8, 3)
    b1 = net.conv(stem, "mix.1x1", 8, 4, 1)
    b2 = net.conv(net.conv(stem, "mix.3x3_reduce", 8, 4, 1), "mix.3x3", 4, 6, 3)
    pooled = net.node("MaxPool", [stem], "mix.pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b3 = net.conv(pooled, "mix.pool_proj", 8, 2, 1)
    y = net.node("Concat", [b1, b2, b3], "mix.concat", axis=1)
    return net.save(path, net.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2]))


INCEPTION = """
stem: {op: conv2d, dims: {N: 1, M: 8, C: 3, P: 16, Q: 16, R: 3, S: 3}, inputs: [input]}
mix.1x1: {op: conv2d, dims: {N: 1, M: 4, C: 8, P: 16, Q: 16, R: 1, S: 1}, inputs: [stem]}
mix.3x3_reduce: {op: conv2d, dims: {N: 1, M: 4, C: 8, P: 16, Q: 16, R: 1, S: 1}, inputs: [stem]}
mix.3x3: {op: conv2d, dims: {N: 1, M: 6, C: 4, P: 16, Q: 16, R: 3, S: 3}, inputs: [mix.3x3_reduce]}
mix.pool: {op: pool, dims: {N: 1, M: 8, C: 8, P: 16, Q: 16, R: 3, S: 3}, inputs: [stem]}
mix.pool_proj: {op: conv2d, dims: {N: 1, M: 2, C: 8, P: 16, Q: 16, R: 1, S: 1}, inputs: [mix.pool]}
mix.concat: {op: concat, dims: {N: 1, M: 12, C: 12, P: 16, Q: 16}, inputs: [mix.1x1, mix.3x3, mix.pool_proj]}
pool: {op: pool, dims: {N: 1, M: 12, C: 12, P: 8, Q: 8, R: 2, S: 2}, stride: 2, inputs: [mix.concat]}
"""


def gemm_head(path):
    net = Model(3, 8)
    y = net.conv("x", "conv", 3, 8, 3, bn=False)
    gap = net.node("GlobalAveragePool", [y], "gap")
    fc = net.node("Gemm", [net.node("Flatten", [gap], "flatten"), net.constant("fc.w", [10, 8]),
                           net.constant("fc.b", [10])], "fc", transB=1)
    pooled = net.node("AveragePool", [y], "avg", kernel_shape=[2, 2], strides=[2, 2])
    flat = net.node("Reshape", [pooled, net.constant("shape", [2], values=[0, -1])], "reshape")
    hidden = net.node("Dropout", [net.node("Gemm", [flat, net.constant("hidden.w", [128, 32])], "hidden")], "drop")
    logits = net.node("MatMul", [hidden, net.constant("logits.w", [32, 10])], "logits")
    logits = net.node("Add", [logits, net.constant("logits.b", [10])], "logits.bias")
    return net.save(path, net.node("Softmax", [net.node("Add", [fc, logits], "sum")], "softmax"), rank=2)


GEMM_HEAD = """
conv: {op: conv2d, dims: {N: 1, M: 8, C: 3, P: 8, Q: 8, R: 3, S: 3}, inputs: [input]}
gap: {op: pool, dims: {N: 1, M: 8, C: 8, P: 1, Q: 1, R: 8, S: 8}, stride: 8, inputs: [conv]}
fc: {op: fc, dims: {N: 1, M: 10, C: 8}, inputs: [gap]}
avg: {op: pool, dims: {N: 1, M: 8, C: 8, P: 4, Q: 4, R: 2, S: 2}, stride: 2, inputs: [conv]}
hidden: {op: fc, dims: {N: 1, M: 32, C: 128}, inputs: [avg]}
logits: {op: matmul, dims: {N: 1, M: 10, C: 32}, inputs: [hidden]}
sum: {op: add, dims: {N: 1, M: 10, C: 10}, inputs: [fc, logits]}
"""

FIXTURES = {"residual": (residual_block, RESIDUAL), "depthwise": (depthwise_separable, DEPTHWISE),
            "inception": (inception, INCEPTION), "gemm_head": (gemm_head, GEMM_HEAD)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each fixture's model file and the layers of its YAML network."""
    folder = tmp_path_factory.mktemp("onnx")
    return {name: (build(folder / f"{name}.onnx"), yaml.safe_load(text))
            for name, (build, text) in FIXTURES.items()}


def instance(family_text: str, workload) -> dict:
    return dict(yaml.safe_load(family_text), workload=workload)


@pytest.mark.parametrize("name", FIXTURES)
def test_a_model_reads_as_the_layers_of_its_yaml_network(models, name):
    path, layers = models[name]
    assert onnx_layers(path) == layers


@pytest.mark.parametrize("name", FIXTURES)
def test_partition_of_a_model_equals_partition_of_its_yaml_graph(models, name):
    path, layers = models[name]
    text = "family: partition\nbuffer: 6 KiB\nsolver: {method: dp}\n"
    from_onnx = load_document(instance(text, {"onnx": path.name}), base=path.parent)
    from_yaml = load_document(instance(text, {"name": path.stem, "layers": layers}))
    family = family_of(from_onnx)
    assert family.dump(from_onnx) == family.dump(from_yaml)
    assert from_onnx.graph.order == from_yaml.graph.order
    assert [from_onnx.graph.node(v) for v in from_onnx.graph.order] == [from_yaml.graph.node(v)
                                                                        for v in from_yaml.graph.order]
    assert set(from_onnx.graph.graph.edges) == set(from_yaml.graph.graph.edges)
    a = mapcert.solve(from_onnx, functional=False, heuristics=False)
    b = mapcert.solve(from_yaml, functional=False, heuristics=False)
    assert a.status == b.status == mapcert.Status.OPTIMAL
    assert (a.objective, a.solution) == (b.objective, b.solution)
    assert family.dump(load_document(family.dump(from_onnx))) == family.dump(from_onnx)  # a result needs no file


def test_a_model_tiled_layer_by_layer_gives_the_results_of_its_yaml_network(models):
    path, layers = models["residual"]
    text = ("family: tiling\nhardware: {levels: [{name: DRAM}, {name: GLB, capacity: 2 KiB}]}\n"
            "objective: offchip_traffic\nsolver: {method: cpsat, time_limit: 30}\n")
    from_onnx = load_document(instance(text, {"onnx": str(path)}))
    from_yaml = load_document(instance(text, {"name": "residual", "layers": layers}))
    assert from_onnx == from_yaml
    family = family_of(from_onnx)
    assert [part.same_shape for part in family.parts(from_onnx)] == [
        ("residual.stem",), ("residual.block1.conv1",), ("residual.block1.conv2", "residual.block2.conv1",
                                                         "residual.block2.conv2"), ("residual.block1.downsample",)]
    a = mapcert.solve(from_onnx, heuristics=False)
    b = mapcert.solve(from_yaml, functional=False, heuristics=False)
    assert a.status == b.status == mapcert.Status.OPTIMAL
    assert [(p.name, p.result.objective) for p in a.parts] == [(p.name, p.result.objective) for p in b.parts]
    assert a.certificate.functional.ran and a.certificate.functional.passed
    assert load_document(family.dump(from_onnx)) == from_onnx


def test_crossbar_instances_read_a_model_as_its_layers(models):
    path, layers = models["gemm_head"]
    text = "family: crossbar\nhardware: neurosim-rram\n"
    from_onnx = load_document(instance(text, {"onnx": path.name, "name": "head"}), base=path.parent)
    weighted = [dict(name=k, op=v["op"], dims=v["dims"], stride=v.get("stride", 1)) for k, v in layers.items()
                if v["op"] in ("conv2d", "fc", "matmul")]
    assert from_onnx == load_document(instance(text, {"name": "head", "layers": weighted}))


def test_a_symbolic_batch_is_one_unless_the_instance_gives_it(tmp_path):
    path = residual_block(tmp_path / "r.onnx")
    assert onnx_layers(path)["stem"]["dims"]["N"] == 1
    problem = load_text(f"family: partition\nbuffer: 1 MiB\nworkload: {{onnx: {path}, batch: 4}}\n")
    assert all(layer["dims"]["N"] == 4 for layer in problem.workload["layers"].values())
    fixed = Model(3, 8, batch=2)
    fixed.conv("x", "c", 3, 4, 3)
    fixed_path = fixed.save(tmp_path / "fixed.onnx", "c.relu:out")
    assert onnx_layers(fixed_path)["c"]["dims"]["N"] == 2
    with pytest.raises(OnnxWorkloadError, match="fixes the batch at 2; remove batch: 4"):
        onnx_layers(fixed_path, batch=4)


def test_dilated_convolutions_are_read_and_refused_where_unmodelled(tmp_path):
    net = Model(3, 16)
    net.conv("x", "atrous", 3, 4, 3, dilation=2)
    path = net.save(tmp_path / "atrous.onnx", "atrous.relu:out")
    assert onnx_layers(path)["atrous"] == {"op": "conv2d", "dims": {"N": 1, "M": 4, "C": 3, "P": 16, "Q": 16,
                                                                    "R": 3, "S": 3}, "dilation": 2, "inputs": ["input"]}
    with pytest.raises(InstanceError, match="atrous.onnx: dilated convolutions .atrous.; the partition family"):
        load_text(f"family: partition\nbuffer: 1 MiB\nworkload: {{onnx: {path}}}\n")


def test_unsupported_operators_are_all_named_in_one_line(tmp_path, cli):
    net = Model(3, 8)
    y = net.conv("x", "c", 3, 4, 3)
    y = net.node("Transpose", [y], "swap", perm=[0, 1, 3, 2])
    y = net.conv(y, "after", 4, 4, 3)  # reads a refused node, and is read on
    y = net.node("Mul", [y, net.conv("x", "gate", 3, 4, 3)], "gating")
    net.save(tmp_path / "odd.onnx", net.node("LpNormalization", [y], "norm"))
    file = tmp_path / "odd.yaml"
    file.write_text("family: tiling\nworkload: {onnx: odd.onnx}\nhardware: eyeriss\n")
    code, stdout, stderr = cli("solve", str(file))
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in stdout + stderr, stderr
    assert lines[0] == (f"{file}:2: workload.onnx: odd.onnx: unsupported ONNX nodes: 'swap' (Transpose: a "
                        "permutation of axes; layers read NCHW tensors in place), "
                        "'gating' (Mul: combines after, gate; only Add joins two layers' outputs), "
                        "'norm' (LpNormalization); docs/interop.md lists what is read"), lines[0]


def test_reductions_over_the_map_are_global_pools(tmp_path):
    """PyTorch exports AdaptiveAvgPool2d(1) and x.mean([2, 3]) as a
    ReduceMean: axes as an attribute up to opset 17, as a constant input
    from opset 18; either is a pool whose one window covers the map. A
    reduction over the channels is refused, saying why."""
    for opset in (17, 18):
        net = Model(3, 8)
        y = net.conv("x", "c", 3, 4, 3)
        if opset == 17:
            y = net.node("ReduceMean", [y], "gap", axes=[-2, -1], keepdims=0)
        else:
            y = net.node("ReduceMean", [y, net.constant("axes", [2], [2, 3])], "gap", keepdims=0)
        y = net.node("Gemm", [y, net.constant("fc.w", [5, 4])], "fc", transB=1)
        layers = onnx_layers(net.save(tmp_path / f"gap{opset}.onnx", y, rank=2, opset=opset))
        assert layers["gap"] == {"op": "pool", "dims": {"N": 1, "M": 4, "C": 4, "P": 1, "Q": 1, "R": 8, "S": 8},
                                 "stride": 8, "inputs": ["c"]}
        assert layers["fc"]["inputs"] == ["gap"] and layers["fc"]["dims"] == {"N": 1, "M": 5, "C": 4}
    net = Model(3, 8)
    y = net.node("ReduceMax", [net.conv("x", "c", 3, 4, 3)], "across", axes=[1])
    with pytest.raises(OnnxWorkloadError, match=r"'across' \(ReduceMax: reduces axes \[1\]; a pool reduces the "
                                                r"spatial axes \[2, 3\]"):
        onnx_layers(net.save(tmp_path / "across.onnx", y))


def test_weights_on_the_left_of_a_matmul_are_a_layer(tmp_path):
    """``W @ x`` (a Parameter times an activation): on an (N, C, L) tensor a
    1 x 1 convolution along L (M rows of W, C its columns), which every
    family reads, a partition's row schedule included; on a (C, L) matrix
    a matmul whose N is every other output element."""
    net = Model(3, 8)
    y = net.node("Reshape", [net.conv("x", "c", 3, 4, 3), net.constant("shape", [3], [1, 4, 64])], "flat")
    y = net.node("MatMul", [net.constant("w", [6, 4]), y], "mix")
    path = net.save(tmp_path / "left.onnx", y, rank=3)
    layers = onnx_layers(path)
    assert layers["mix"] == {"op": "conv2d", "dims": {"N": 1, "M": 6, "C": 4, "P": 1, "Q": 64, "R": 1, "S": 1},
                             "inputs": ["c"]}
    partition = load_text(f"family: partition\nbuffer: 1 MiB\nworkload: {{onnx: {path}}}\n")
    assert "mix" in partition.workload["layers"]
    net = Model(3, 8)
    y = net.node("Reshape", [net.conv("x", "c", 3, 4, 3), net.constant("shape", [2], [4, 64])], "flat")
    y = net.node("MatMul", [net.constant("w", [6, 4]), y], "mix")
    layers = onnx_layers(net.save(tmp_path / "left2.onnx", y, rank=2))
    assert layers["mix"] == {"op": "matmul", "dims": {"N": 64, "M": 6, "C": 4}, "inputs": ["c"]}


def test_weights_in_a_data_file_need_not_be_there(tmp_path, monkeypatch):
    """PyTorch's exporter writes the weights to ``model.onnx.data``; only
    shapes are read, so the model reads from any folder, with or without
    that file."""
    net = Model(3, 8)
    path = net.save(tmp_path / "ext.onnx", net.conv("x", "c", 3, 4, 3), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    expected = {"op": "conv2d", "dims": {"N": 1, "M": 4, "C": 3, "P": 8, "Q": 8, "R": 3, "S": 3}, "inputs": ["input"]}
    monkeypatch.chdir(tmp_path.parent)
    assert onnx_layers(path)["c"] == expected
    (tmp_path / "ext.onnx.data").unlink()
    assert onnx_layers(path)["c"] == expected


def test_layers_of_pytorch_exports_are_named_after_their_modules(tmp_path):
    """The dynamo exporter names nodes ``node_Conv_12`` and records the
    module path of each; a layer takes its module's name, a join the
    module's and the operation's."""
    net = Model(3, 8)
    a = net.conv("x", "node_Conv_12", 3, 4, 3, bn=False, act=None)
    b = net.conv(a, "node_Conv_15", 4, 4, 3, bn=False, act=None)
    y = net.node("Add", [a, b], "node_add_3")
    scopes = {"node_Conv_12": "['', 'stem', 'stem.conv', 'conv2d']",
              "node_Conv_15": "['', 'block', 'block.conv1', 'conv2d_1']",
              "node_add_3": "['', 'block', 'add_3']"}
    for node in net.nodes:
        helper.set_metadata_props(node, {"pkg.torch.onnx.name_scopes": scopes[node.name]})
    layers = onnx_layers(net.save(tmp_path / "named.onnx", y))
    assert list(layers) == ["stem.conv", "block.conv1", "block.add_3"]
    assert layers["block.add_3"]["inputs"] == ["stem.conv", "block.conv1"]


def broken_models(tmp_path):
    """(file name, how it is broken, words of the one-line message)."""
    (tmp_path / "text.onnx").write_text("not a model")
    channels = Model(3, 8)
    channels.conv("x", "c", 4, 4, 3)  # weights for 4 input channels, the input has 3
    channels.save(tmp_path / "channels.onnx", "c.relu:out")
    mismatch = Model(3, 8)
    flat = mismatch.node("Flatten", [mismatch.conv("x", "c", 3, 4, 3)], "flat")
    mismatch.save(tmp_path / "mismatch.onnx", mismatch.node("Gemm", [flat, mismatch.constant("w", [5, 10])], "fc"),
                  rank=2)  # 4 x 8 x 8 features into a 5 x 10 matrix
    sized = Model(3, "height")
    sized.conv("x", "c", 3, 4, 3)
    sized.save(tmp_path / "sized.onnx", "c.relu:out")
    plain = Model(3, 8)
    plain.node("Relu", ["x"], "r")
    plain.save(tmp_path / "plain.onnx", "r:out")
    (tmp_path / "models").mkdir()
    return [("missing.onnx", f"no such file: {tmp_path.resolve() / 'missing.onnx'} (relative to the instance's folder"),
            ("models", f"is a folder ({tmp_path.resolve() / 'models'}); give the .onnx file"),
            ("text.onnx", "not an ONNX model"),
            ("channels.onnx", "unsupported ONNX node: 'c' (Conv: weights for 4 input channels, its input has 3)"),
            ("mismatch.onnx", "shapes cannot be inferred: [ShapeInferenceError]"),
            ("sized.onnx", "input 'x' has 'height' on axis 2; mappings are found for fixed shapes"),
            ("plain.onnx", "no Conv, Gemm or MatMul node")]


def test_unreadable_models_are_one_line_each(tmp_path):
    for name, words in broken_models(tmp_path):
        for family in ("family: tiling\nhardware: eyeriss\n", "family: crossbar\nhardware: neurosim-rram\n",
                       "family: partition\nbuffer: 1 MiB\n"):
            with pytest.raises(InstanceError) as info:
                load_text(f"{family}workload: {{onnx: {name}}}\n", "i.yaml", base=tmp_path)
            assert len(info.value.issues) == 1, info.value
            assert str(info.value).startswith(f"i.yaml:3: workload.onnx: {name}: {words}"), str(info.value)


@pytest.mark.parametrize("workload, words", [
    ("{name: n, layers: []}", "workload: a whole network is {name: ..., layers:"),
    ("{name: n, layers: {c: {op: conv2d, dims: {M: 0, C: 3, P: 4, Q: 4}}}}", "workload.layers.c.dims.M"),
])
def test_an_inline_network_to_tile_is_checked_layer_by_layer(workload, words):
    with pytest.raises(InstanceError, match=words):
        load_text(f"family: tiling\nhardware: eyeriss\nworkload: {workload}\n")


def test_a_partition_refusal_names_the_model_and_its_node(tmp_path):
    """A graph the partition family cannot cut (an Add of the network
    input itself) is said of the model's node, at the instance's onnx
    line, not of a field the instance does not have."""
    net = Model(3, 8)
    y = net.node("Add", ["x", net.conv("x", "c", 3, 3, 3)], "skip")
    net.save(tmp_path / "skip.onnx", y)
    with pytest.raises(InstanceError) as info:
        load_text("family: partition\nbuffer: 1 MiB\nworkload: {onnx: skip.onnx}\n", "i.yaml", base=tmp_path)
    assert str(info.value) == ("i.yaml:3: workload.onnx: skip.onnx: layer 'skip' (inputs): only a conv2d, pool, fc "
                               "or matmul layer may read the network input, and then nothing else"), str(info.value)


def test_one_layer_of_a_model_is_an_instance_of_its_own(tmp_path, cli):
    """``layer:`` picks one layer with weights: a one-layer tiling instance
    (two-level or on a hierarchy) that ``compare`` takes; a wrong name, a
    layer without weights, or ``layer`` where the whole model is read,
    is one line naming the choices."""
    path = residual_block(tmp_path / "r.onnx")
    two = load_text(f"family: tiling\nworkload: {{onnx: {path}, layer: block1.conv1}}\nhardware: glb-64KiB\n")
    assert two.layer.name == "r.block1.conv1" and (two.layer.M, two.layer.C, two.layer.P) == (16, 8, 8)
    assert two.layer.stride == (2, 2)
    multi = load_text(f"family: tiling\nworkload: {{onnx: {path}, layer: block1.conv1, name: net}}\n"
                      "hardware: eyeriss\n")
    assert multi.layer.name == "net.block1.conv1" and multi.layer.dims() == two.layer.dims()
    file = tmp_path / "one.yaml"
    file.write_text("family: tiling\nworkload: {onnx: r.onnx, layer: stem}\nhardware: glb-64KiB\n")
    code, stdout, stderr = cli("compare", str(file), "--methods", "cpsat", "-t", "20")
    assert code == 0 and "certified optimum" in stdout, stderr
    for workload, words in [("layer: stem.conv", "'stem.conv' is no layer of the model; its layers with weights "
                                                 "are stem, block1.conv1"),
                            ("layer: block1.add", "'block1.add' is an add layer without weights"),
                            ("batch: 2", "or tile one layer of the model: workload: {onnx: ..., layer: NAME}"),
                            ("layer: null", "one layer is tiled here: give layer: NAME, one of stem, block1.conv1")]:
        with pytest.raises(InstanceError, match=re.escape(words)):
            load_text(f"family: tiling\nworkload: {{onnx: r.onnx, {workload}}}\nhardware: glb-64KiB\n", "i.yaml",
                      base=tmp_path)
    with pytest.raises(InstanceError, match="workload.layer: picks one layer of the model to tile; this instance "
                                            "reads the whole model"):
        load_text("family: partition\nbuffer: 1 MiB\nworkload: {onnx: r.onnx, layer: stem}\n", "i.yaml",
                  base=tmp_path)


def test_one_layer_of_a_model_with_attention_is_read(tmp_path):
    """A transformer block's attention (a MatMul of two activations) stops
    the whole model from being read, but not one of its projections:
    ``layer:`` tiles the query projection; naming the attention itself says
    why it is not a layer."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 64])
    weights = [numpy_helper.from_array(np.zeros((64, 64), np.float32), name) for name in ("wq", "wk", "wo")]
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"], name="query"),
             helper.make_node("MatMul", ["x", "wk"], ["k"], name="key"),
             helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
             helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
             helper.make_node("MatMul", ["p", "x"], ["a"], name="mix"),
             helper.make_node("MatMul", ["a", "wo"], ["y"], name="out")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 3)
    save(helper.make_model(helper.make_graph(nodes, "block", [x], [y], weights),
                           opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "block.onnx")
    with pytest.raises(InstanceError, match="unsupported ONNX nodes: 'kt' .Transpose"):
        load_text("family: tiling\nworkload: {onnx: block.onnx}\nhardware: eyeriss\n", "i.yaml", base=tmp_path)
    one = load_text("family: tiling\nworkload: {onnx: block.onnx, layer: out}\nhardware: eyeriss\n", "i.yaml",
                    base=tmp_path)
    assert (one.layer.op, one.layer.N, one.layer.M, one.layer.C) == ("matmul", 16, 64, 64)
    with pytest.raises(InstanceError, match="'scores' is an unsupported node: 'scores' .MatMul: multiplies two "
                                            "activations"):
        load_text("family: tiling\nworkload: {onnx: block.onnx, layer: scores}\nhardware: glb-64KiB\n", "i.yaml",
                  base=tmp_path)
