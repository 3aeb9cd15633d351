"""A ZigZag workload layer -> a mapcert ``workload:`` entry.

A ZigZag workload file is a list of layers, each with an ``equation``
(``O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]``), ``loop_dims`` and
``loop_sizes``, ``dimension_relations`` (``ix=2*ox+1*fx``: stride 2,
dilation 1) and ``operand_precision``.  The loop dimensions are read by the
operands they index, not by their names, so a layer that calls its loops
``D0, D1, D2`` reads as one that calls them ``B, K, C``:

- indexes O, W and I: the group G;
- O and I: the batch N, or an output row / column (P, Q) when it enters a
  dimension relation of I;
- O and W: the output channels M;
- W and I: the input channels C, or a filter row / column (R, S) when it
  enters a relation.

Rows are the first relation in I's indices, columns the second (NCHW, as
the ONNX reader takes them); a layer with one relation has one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..instances import Located
from .zigzag_common import LAYER_TENSORS

LAYER_FIELDS = {"id", "name", "operator_type", "equation", "dimension_relations", "loop_dims", "loop_sizes",
                "operand_precision", "operand_source", "pr_loop_dims", "pr_loop_sizes", "padding", "time_dim",
                "core_allocation"}
"""Every field of ZigZag's layer schema (``WorkloadValidator.LAYER_SCHEMA``)."""

NO_WEIGHTS = {"Pooling", "Pool", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Max"}
"""ZigZag operator types that multiply by no weights."""

_EQUATION = re.compile(r"^\s*(\w+)((?:\[\w*\])+)\s*(\+?=)\s*(\w+)((?:\[\w*\])*)\s*([*+])\s*(\w+)((?:\[\w*\])*)\s*$")
_RELATION = re.compile(r"^\s*(\w+)\s*=\s*(?:(\d+)\s*\*\s*)?(\w+)\s*\+\s*(?:(\d+)\s*\*\s*)?(\w+)\s*$")


@dataclass(frozen=True)
class ZigZagLayer:
    """One layer read: its mapcert workload entry and how its loops are named."""

    name: str
    operator_type: str
    workload: dict
    dims: dict[str, str] = field(default_factory=dict)
    """ZigZag loop name -> mapcert dimension."""
    notes: tuple[str, ...] = ()
    """What the import reads otherwise than ZigZag (its padding)."""


def _indices(text: str) -> list[str]:
    return [part for part in re.findall(r"\[(\w*)\]", text)]


def pick_layer(data: Any, where: Located, choice: str | None) -> tuple[int, dict] | None:
    """The layer to import: ``choice`` (a name or an id), or the only layer
    with weights; None with the problem recorded."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(x, dict) for x in data):
        where.add((), "a ZigZag workload is a list of layers, each with id, operator_type, equation, loop_dims, "
                      "loop_sizes and operand_precision")
        return None
    if choice is not None:
        for i, layer in enumerate(data):
            if str(layer.get("name")) == choice or str(layer.get("id")) == choice:
                return i, layer
        known = ", ".join(str(x.get("name") or x.get("id")) for x in data)
        where.add((), f"--layer {choice}: no layer has this name or id; the layers are {known}")
        return None
    weighted = [(i, x) for i, x in enumerate(data) if x.get("operator_type") not in NO_WEIGHTS]
    if len(weighted) == 1:
        return weighted[0]
    names = ", ".join(str(x.get("name") or x.get("id")) for _, x in weighted)
    where.add((), f"{len(weighted)} layers with weights ({names}); choose one with --layer NAME_OR_ID"
              if weighted else "no layer with weights (Conv, Gemm, ...); the tiling family maps layers with weights")
    return None


def read_layer(raw: dict, where: Located, path: tuple) -> ZigZagLayer | None:
    """The layer ``raw`` (at ``path`` of the file) as a mapcert workload; None
    with every problem recorded on ``where``."""
    for key in raw:
        if key not in LAYER_FIELDS:
            where.add(path + (key,), f"unknown field; a ZigZag layer has {', '.join(sorted(LAYER_FIELDS))}")
    op_type = str(raw.get("operator_type", ""))
    label = raw.get("name") if raw.get("name") is not None else f"layer{raw.get('id', '')}"
    if op_type in NO_WEIGHTS:
        where.add(path + ("operator_type",), f"layer {label} is a {op_type} layer without weights; the tiling "
                                             "family maps layers that multiply inputs by weights (Conv, Gemm)")
        return None
    for key in ("equation", "loop_dims", "loop_sizes", "operand_precision"):
        if key not in raw:
            where.add(path + (key,), "required field is missing")
    if where.issues:
        return None
    dims, sizes = raw["loop_dims"], raw["loop_sizes"]
    if not isinstance(dims, list) or not isinstance(sizes, list) or len(dims) != len(sizes):
        where.add(path + ("loop_sizes",), "loop_dims and loop_sizes must be lists of the same length")
        return None
    size = {}
    for i, (dim, value) in enumerate(zip(dims, sizes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            where.add(path + ("loop_sizes", i), f"size of {dim} must be a positive integer, got {value!r}")
        if str(dim) in size:
            where.add(path + ("loop_dims", i), f"{dim} is listed twice")
        size[str(dim)] = value
    if where.issues:
        return None
    roles = _roles(raw, size, where, path)
    if roles is None:
        return None
    assigned, stride, dilation = roles
    extent = {d: 1 for d in ("N", "G", "M", "C", "P", "Q", "R", "S")}
    for zz, ours in assigned.items():
        extent[ours] = size[zz]
    groups = extent["G"]
    conv = any(extent[d] > 1 for d in "PQRS") or stride != [1, 1] or dilation != [1, 1] or groups > 1
    precision = _precision(raw.get("operand_precision"), where, path + ("operand_precision",))
    padded = _padding(raw, extent, stride, dilation, where, path)
    if precision is None or where.issues:
        return None
    workload: dict[str, Any] = {"name": str(label), "op": "conv2d" if conv else "matmul"}
    if conv:
        workload["dims"] = {"N": extent["N"], "M": extent["M"] * groups, "C": extent["C"] * groups,
                            "P": extent["P"], "Q": extent["Q"], "R": extent["R"], "S": extent["S"]}
        if stride != [1, 1]:
            workload["stride"] = stride if stride[0] != stride[1] else stride[0]
        if dilation != [1, 1]:
            workload["dilation"] = dilation if dilation[0] != dilation[1] else dilation[0]
        if groups > 1:
            workload["groups"] = groups
    else:
        workload["dims"] = {"N": extent["N"], "M": extent["M"], "C": extent["C"]}
    workload["precision"] = precision
    return ZigZagLayer(str(label), op_type, workload, assigned, tuple(n for n in [padded] if n))


def _roles(raw: dict, size: dict, where: Located, path: tuple):
    """ZigZag loop name -> mapcert dimension, stride and dilation (rows, columns)."""
    match = _EQUATION.match(str(raw["equation"]))
    if match is None:
        where.add(path + ("equation",), "not a ZigZag equation such as O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]")
        return None
    out, out_idx, assign, a, a_idx, operator, b, b_idx = match.groups()
    if operator != "*":  # O=W*I and O+=W*I are both products summed over the loops O lacks, as ZigZag reads them
        where.add(path + ("equation",), "an element-wise sum (+ between the operands); the tiling family maps "
                                        "layers that multiply inputs by weights")
        return None
    operands = {out: _indices(out_idx), a: _indices(a_idx), b: _indices(b_idx)}
    if out != "O" or {a, b} != {"I", "W"}:
        bad = [x for x in (out, a, b) if x not in LAYER_TENSORS] or [out]
        where.add(path + ("equation",), f"unknown operand {bad[0]}: a layer computes O from I and W "
                                        "(the operands of memory_operand_links)")
        return None
    lower = {d.lower(): d for d in size}
    relations = {}
    for i, text in enumerate(raw.get("dimension_relations") or []):
        rel = _RELATION.match(str(text))
        if rel is None:
            where.add(path + ("dimension_relations", i), f"not a relation such as ix=2*ox+1*fx, got {text!r}")
            continue
        target, c1, x1, c2, x2 = rel.groups()
        terms = [(x1, int(c1 or 1)), (x2, int(c2 or 1))]
        for name, _ in terms:
            if name.lower() not in lower:
                where.add(path + ("dimension_relations", i), f"{name} is not one of loop_dims")
        relations[target.lower()] = (terms, i)
    if where.issues:
        return None
    index = {t: [x.lower() for x in operands[t]] for t in ("O", "W", "I")}
    in_relation: dict[str, tuple[str, int, int]] = {}  # loop -> (I's index, coefficient, relation number)
    spatial = []  # I's indices that are relations, in order
    for idx in index["I"]:
        if idx in relations:
            terms, number = relations[idx]
            spatial.append((idx, terms, number))
            for name, coef in terms:
                in_relation[name.lower()] = (idx, coef, number)
        elif idx not in lower:
            where.add(path + ("equation",), f"I's index {idx} is neither a loop dimension nor given by a "
                                            "dimension relation")
    for t in ("O", "W"):
        for idx in index[t]:
            if idx not in lower:
                where.add(path + ("equation",), f"{t}'s index {idx} is not one of loop_dims")
    if where.issues:
        return None
    if len(spatial) > 2:
        where.add(path + ("dimension_relations",), f"{len(spatial)} sliding windows; layers have at most two "
                                                   "spatial axes (rows and columns)")
        return None
    axes = [("P", "R"), ("Q", "S")] if len(spatial) == 2 else [("Q", "S")]
    assigned: dict[str, str] = {}
    stride, dilation = [1, 1], [1, 1]
    for k, (idx, terms, number) in enumerate(spatial):
        out_axis, tap_axis = axes[k]
        outs = [(n, c) for n, c in terms if n.lower() in index["O"]]
        taps = [(n, c) for n, c in terms if n.lower() in index["W"]]
        if len(outs) != 1 or len(taps) != 1:
            where.add(path + ("dimension_relations", number), f"{idx} must sum one output index (of O) and one "
                                                              "filter index (of W)")
            return None
        assigned[lower[outs[0][0].lower()]] = out_axis
        assigned[lower[taps[0][0].lower()]] = tap_axis
        axis = 0 if out_axis == "P" else 1
        stride[axis], dilation[axis] = outs[0][1], taps[0][1]
    taken: dict[str, str] = {v: k for k, v in assigned.items()}
    batch_like = []
    for low, name in lower.items():
        if name in assigned:
            continue
        o, w, i = (low in index["O"]), (low in index["W"]), (low in index["I"])
        role = {(True, True, True): "G", (True, False, True): "N", (True, True, False): "M",
                (False, True, True): "C"}.get((o, w, i))
        if role is None:
            used = [t for t, flag in (("O", o), ("W", w), ("I", i)) if flag]
            if size[name] == 1:
                continue  # a loop of one trip changes nothing
            where.add(path + ("loop_dims",), f"{name} indexes {' and '.join(used) or 'no operand'}; every loop "
                                             "of a layer indexes two or three of O, W and I")
            return None
        if role == "N":
            batch_like.append(name)
            continue
        if role in taken:
            where.add(path + ("loop_dims",), f"{name} and {taken[role]} both index the same operands; a layer has "
                                             "one loop of each kind (B, K, C, G)")
            return None
        taken[role], assigned[name] = name, role
    # loops that index O and I but no window: the batch, and output rows/columns without a relation
    free_axes = [ax for ax in ("P", "Q") if ax not in taken]
    batch_like.sort(key=lambda n: (n.upper() not in ("B", "N"), index["O"].index(n.lower())))
    for name in batch_like:
        if "N" not in taken:
            taken["N"], assigned[name] = name, "N"
        elif free_axes:
            axis = free_axes.pop(0) if len(free_axes) == 1 or name.upper() != "OX" else free_axes.pop()
            taken[axis], assigned[name] = name, axis
        else:
            where.add(path + ("loop_dims",), f"{name} indexes O and I like {taken['N']}; a layer has one batch "
                                             "and two output axes")
            return None
    return assigned, stride, dilation


def _precision(raw: Any, where: Located, path: tuple) -> dict | None:
    if not isinstance(raw, dict):
        where.add(path, "must map I, W, O (and O_final) to bits")
        return None
    for key in raw:
        if key not in ("I", "W", "O", "O_final"):
            where.add(path + (key,), f"unknown operand {key}; a layer has I, W, O and O_final")
    for key in ("I", "W", "O"):
        value = raw.get(key)
        if key not in raw:
            where.add(path + (key,), "required field is missing")
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            where.add(path + (key,), f"must be a positive number of bits, got {value!r}")
    if where.issues:
        return None
    final = raw.get("O_final", raw["O"])
    return {"inputs": raw["I"], "weights": raw["W"], "outputs": final, "psums": raw["O"]}


def _padding(raw: dict, extent: dict, stride: list, dilation: list, where: Located, path: tuple) -> str | None:
    """Read a layer's padding: mapcert's input is the padded one ((P-1) *
    stride + (R-1) * dilation + 1 rows), so its zero borders count as input
    words, which ZigZag does not move. Returns the note that says how many
    more (None without padding); the input sizes given (``pr_loop_sizes``)
    must be the padded or the unpadded extent."""
    full = {"P": (extent["P"] - 1) * stride[0] + (extent["R"] - 1) * dilation[0] + 1,
            "Q": (extent["Q"] - 1) * stride[1] + (extent["S"] - 1) * dilation[1] + 1}
    pads = _pads(raw.get("padding"), where, path + ("padding",))
    if pads is None:
        return None
    sizes, dims = raw.get("pr_loop_sizes"), raw.get("pr_loop_dims")
    if sizes and dims:
        for i, (dim, value) in enumerate(zip(dims, sizes)):
            axis = "P" if str(dim).upper() in ("IY", "Y") else "Q" if str(dim).upper() in ("IX", "X") else None
            if axis is not None and value not in (full[axis], full[axis] - pads[axis]):
                where.add(path + ("pr_loop_sizes", i),
                          f"{dim} = {value}, but the outputs and the window read {full[axis]} rows (with the "
                          f"padding, {full[axis] - pads[axis]} of them data)")
    if not any(pads.values()):
        return None
    inner = (full["P"] - pads["P"]) * (full["Q"] - pads["Q"])
    if inner < 1:
        where.add(path + ("padding",), f"pads {pads['P']} rows and {pads['Q']} columns of a "
                                       f"{full['P']} x {full['Q']} input: no data left")
        return None
    more = full["P"] * full["Q"] / inner - 1
    return (f"padding: mapcert reads the padded input, {full['P']} x {full['Q']} per channel where ZigZag moves the "
            f"{full['P'] - pads['P']} x {full['Q'] - pads['Q']} of data, so its input words include the zero borders "
            f"({100 * more:.1f}% more inputs than ZigZag counts; docs/interop.md)")


def _pads(padding, where: Located, path: tuple) -> dict[str, int] | None:
    """Rows (P) and columns (Q) of padding, both sides added: ZigZag 3's
    ``[[top, bottom], [left, right]]`` or the older ``{IY: (top, bottom),
    IX: (left, right)}``; None when absent or malformed (then recorded)."""
    if padding is None:
        return None
    if isinstance(padding, dict):
        keys = {str(k).upper(): v for k, v in padding.items()}
        pairs = [keys.get("IY", [0, 0]), keys.get("IX", [0, 0])]
        unknown = [k for k in keys if k not in ("IY", "IX")]
        if unknown:
            where.add(path + (unknown[0],), "padding names IY (rows) and IX (columns)")
            return None
    elif isinstance(padding, list) and len(padding) == 2:
        pairs = padding
    else:
        where.add(path, f"must be [[top, bottom], [left, right]] or {{IY: [top, bottom], IX: [left, right]}}, "
                        f"got {padding!r}")
        return None
    out = {}
    for axis, pair in zip("PQ", pairs):
        pair = list(pair) if isinstance(pair, (list, tuple)) else [pair, pair]
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair):
            where.add(path, f"each side's padding is a whole number of zero or more, got {padding!r}")
            return None
        out[axis] = pair[0] + pair[1]
    return out
