"""Write tiny_resnet.onnx next to this script: a small ResNet (a stem, two
basic blocks, a classifier) built with onnx.helper, for the instances of
this folder.

    python examples/onnx/make_model.py
    mapcert solve examples/onnx/tiny_resnet_partition.yaml
    mapcert solve examples/onnx/tiny_resnet_tiling.yaml

A model exported from PyTorch (``torch.onnx.export``) or any other
framework is read the same way; docs/interop.md lists the operators.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper, save

rng = np.random.default_rng(0)
nodes: list = []
weights: list = []


def tensor(name: str, *shape: int) -> str:
    weights.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
    return name


def conv_bn(x: str, name: str, c: int, m: int, k: int, stride: int = 1, relu: bool = True) -> str:
    """Conv, BatchNormalization and (optionally) Relu, as frameworks export a convolution block."""
    nodes.append(helper.make_node("Conv", [x, tensor(f"{name}.weight", m, c, k, k)], [f"{name}.conv"], name=name,
                                  kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
    stats = [tensor(f"{name}.bn.{s}", m) for s in ("scale", "bias", "mean", "var")]
    nodes.append(helper.make_node("BatchNormalization", [f"{name}.conv", *stats], [f"{name}.bn"], name=f"{name}.bn"))
    if not relu:
        return f"{name}.bn"
    nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.relu"], name=f"{name}.relu"))
    return f"{name}.relu"


def basic_block(x: str, name: str, c: int, m: int, stride: int) -> str:
    """Two 3x3 convolutions and the shortcut (a 1x1 convolution when the shape changes), added."""
    y = conv_bn(conv_bn(x, f"{name}.conv1", c, m, 3, stride), f"{name}.conv2", m, m, 3, relu=False)
    shortcut = x if (c, stride) == (m, 1) else conv_bn(x, f"{name}.downsample", c, m, 1, stride, relu=False)
    nodes.append(helper.make_node("Add", [y, shortcut], [f"{name}.add"], name=f"{name}.add"))
    nodes.append(helper.make_node("Relu", [f"{name}.add"], [f"{name}.out"], name=f"{name}.relu"))
    return f"{name}.out"


def tiny_resnet():
    x = conv_bn("image", "stem", 3, 16, 3)
    nodes.append(helper.make_node("MaxPool", [x], ["maxpool"], name="maxpool", kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[1, 1, 1, 1]))
    x = basic_block("maxpool", "layer1", 16, 16, 1)
    x = basic_block(x, "layer2", 16, 32, 2)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="avgpool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    nodes.append(helper.make_node("Gemm", ["flat", tensor("fc.weight", 10, 32), tensor("fc.bias", 10)], ["logits"],
                                  name="fc", transB=1))
    graph = helper.make_graph(
        nodes, "tiny_resnet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    checker.check_model(model)
    return model


if __name__ == "__main__":
    out = Path(__file__).with_name("tiny_resnet.onnx")
    save(tiny_resnet(), out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
