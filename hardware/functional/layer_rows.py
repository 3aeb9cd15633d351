"""The numbers of a network's layers, one output row at a time or whole.

The partition's functional model computes every layer row by row from the
rows its buffers hold (``layer_row``); the reference computes every layer
at once from whole tensors (``layer_output``). The two are written
independently (a window of rows gathered by hand against a padded tensor
cut by ``sliding_window_view``), so a row read from the wrong place, or
missing, shows up as a different result.

Tensors are ``(rows, channels, width)``; a row is ``(channels, width)``.
Padding follows ``schedule.top_padding`` on both axes: zeros for
convolutions, nothing (minus infinity) for pooling, which is a max pool.
A fully connected layer flattens its whole input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...formulations.partition.graph import FLATTENING_OPS
from ...formulations.partition.schedule import top_padding

DTYPE = np.float32

@dataclass(frozen=True)
class LayerShape:
    name: str
    op: str
    channels_in: int          # C
    channels_out: int         # M
    rows: int                 # P
    width: int                # Q
    window: tuple[int, int]   # R, S
    stride: tuple[int, int]
    groups: int

    @classmethod
    def of(cls, name: str, raw: dict) -> LayerShape:
        d = raw["dims"]
        if d.get("N", 1) != 1:
            raise ValueError(f"layer {name}: the functional model runs batch 1 (N = {d['N']})")
        op = raw.get("op", "conv2d")
        stride = raw.get("stride", 1)
        stride = (stride, stride) if isinstance(stride, int) else (int(stride[0]), int(stride[-1]))
        windowed = op in ("conv2d", "pool")
        return cls(name, op, d.get("C", d["M"]), d["M"], d.get("P", 1), d.get("Q", 1),
                   (d.get("R", 1), d.get("S", 1)) if windowed else (1, 1), stride if windowed else (1, 1),
                   raw.get("groups", 1))

    def input_width(self) -> int:
        """Width of the network input this layer reads (its windows need no padding)."""
        return (self.width - 1) * self.stride[1] + self.window[1]


def layer_weights(shape: LayerShape, source_shapes: list[tuple[int, int, int]], rng: np.random.Generator):
    """Random weights of a layer with weights (None otherwise), scaled by
    ``1/sqrt(fan-in)`` so that values stay of order one through a deep network."""
    if shape.op == "conv2d":
        per_group = shape.channels_in // shape.groups
        fan_in = per_group * shape.window[0] * shape.window[1]
        size = (shape.channels_out, per_group, *shape.window)
    elif shape.op in FLATTENING_OPS:
        fan_in = sum(h * c * w for h, c, w in source_shapes)
        size = (shape.channels_out, fan_in)
    else:
        return None
    return (rng.standard_normal(size, dtype=DTYPE) / np.sqrt(fan_in)).astype(DTYPE)


def check_sources(shape: LayerShape, source_shapes: list[tuple[int, int, int]]) -> None:
    """A clear error when a layer's inputs do not have the shapes it reads."""
    channels = sum(c for _, c, _ in source_shapes)
    if shape.op in FLATTENING_OPS:
        flat = sum(h * c * w for h, c, w in source_shapes)
        if flat != shape.channels_in:
            raise ValueError(f"layer {shape.name}: reads {shape.channels_in} values, its inputs hold {flat}")
    elif shape.op == "add":
        if any(s != source_shapes[0] for s in source_shapes) or source_shapes[0][1] != shape.channels_out:
            raise ValueError(f"layer {shape.name}: adds tensors of shapes {source_shapes}")
    elif shape.op == "concat":
        if channels != shape.channels_out:
            raise ValueError(f"layer {shape.name}: concatenates {channels} channels into {shape.channels_out}")
    elif shape.op in ("conv2d", "pool"):
        if len(source_shapes) != 1 or channels != shape.channels_in:
            raise ValueError(f"layer {shape.name}: reads {shape.channels_in} channels, its inputs give {source_shapes}")
    else:
        raise ValueError(f"layer {shape.name}: the functional model has no op {shape.op!r}")


def _windows(shape: LayerShape, window_rows: np.ndarray, source_width: int, fill: float) -> np.ndarray:
    """(R, C, Q, S) windows of one output row from its R input rows (R, C, W)."""
    needed = (shape.width - 1) * shape.stride[1] + shape.window[1]
    left = top_padding(shape.width, shape.stride[1], shape.window[1], source_width)
    padded = np.full((*window_rows.shape[:2], max(needed, left + source_width)), fill, dtype=DTYPE)
    padded[:, :, left:left + source_width] = window_rows
    view = sliding_window_view(padded[:, :, :needed], shape.window[1], axis=2)
    return view[:, :, ::shape.stride[1]]


def _conv(shape: LayerShape, windows: np.ndarray, weights: np.ndarray, channels: slice) -> np.ndarray:
    """One output row (M', Q) from windows (R, C, Q, S) (grouped: per group),
    as a matrix product of the weights (M', C*R*S) with the windows laid out
    (C*R*S, Q): BLAS, where a general einsum took most of a network's run."""
    g = shape.groups
    r, c, q, s = windows.shape
    if g == 1:
        w = weights[channels]
        x = windows.transpose(2, 1, 0, 3).reshape(q, c * r * s)  # (Q, C, R, S)
        return w.reshape(w.shape[0], -1) @ x.T
    x = windows.reshape(r, g, c // g, q, s).transpose(1, 3, 2, 0, 4).reshape(g, q, (c // g) * r * s)
    w = weights.reshape(g, shape.channels_out // g, (c // g) * r * s)
    return np.matmul(w, x.transpose(0, 2, 1)).reshape(shape.channels_out, q)[channels]


def layer_row(shape: LayerShape, y: int, sources: list, weights, channels: slice = slice(None)) -> np.ndarray:
    """Output row ``y`` (channels ``channels``) of a layer.

    ``sources`` holds, per input in the layer's order, ``(read, rows,
    width, pad)``: ``read(i)`` returns row ``i`` of that input as held on
    chip; ``rows``/``width`` are its size and ``pad`` its top padding."""
    if shape.op in FLATTENING_OPS:
        flat = np.concatenate([np.stack([read(i) for i in range(rows)]).ravel() for read, rows, _, _ in sources])
        return (weights[channels] @ flat)[:, None]
    if shape.op in ("add", "concat"):
        rows_y = [read(y) for read, _, _, _ in sources]
        out = np.sum(rows_y, axis=0) if shape.op == "add" else np.concatenate(rows_y, axis=0)
        return out[channels]
    (read, rows, width, pad), = sources
    fill = -np.inf if shape.op == "pool" else 0.0
    first = y * shape.stride[0] - pad
    window_rows = np.stack([read(i) if 0 <= i < rows else np.full((shape.channels_in, width), fill, DTYPE)
                            for i in range(first, first + shape.window[0])])
    windows = _windows(shape, window_rows, width, fill)
    if shape.op == "pool":
        return windows.max(axis=(0, 3))[channels]
    return _conv(shape, windows, weights, channels)


def layer_output(shape: LayerShape, inputs: list[np.ndarray], weights) -> np.ndarray:
    """The whole output (P, M, Q) of a layer from its whole inputs (H, C, W)."""
    if shape.op in FLATTENING_OPS:
        flat = np.concatenate([x.ravel() for x in inputs])
        return (weights @ flat).reshape(1, shape.channels_out, 1)
    if shape.op == "add":
        return np.sum(inputs, axis=0).astype(DTYPE)
    if shape.op == "concat":
        return np.concatenate(inputs, axis=1)
    (x,) = inputs
    h, c, w = x.shape
    (r, s), (sv, sh) = shape.window, shape.stride
    top, left = top_padding(shape.rows, sv, r, h), top_padding(shape.width, sh, s, w)
    need_h, need_w = (shape.rows - 1) * sv + r, (shape.width - 1) * sh + s
    fill = -np.inf if shape.op == "pool" else 0.0
    padded = np.full((max(need_h, top + h), c, max(need_w, left + w)), fill, dtype=DTYPE)
    padded[top:top + h, :, left:left + w] = x
    view = sliding_window_view(padded[:need_h, :, :need_w], (r, s), axis=(0, 2))[::sv, :, ::sh]  # (P, C, Q, R, S)
    if shape.op == "pool":
        return view.max(axis=(3, 4))
    g = shape.groups
    p, _, q = view.shape[:3]
    grouped = view.reshape(p, g, c // g, q, r, s)
    wg = weights.reshape(g, shape.channels_out // g, c // g, r, s)
    return np.einsum("pgcqrs,gmcrs->pgmq", grouped, wg, optimize=True).reshape(p, shape.channels_out, q)
