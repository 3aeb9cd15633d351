"""Timeloop's ``problem:`` -> one mapcert layer, read from its data spaces.

A Timeloop problem is a ``shape`` (dimension names, coefficients with
defaults, and data spaces, each a projection of the dimensions) and an
``instance`` (the extent of every dimension and the coefficients' values).
Rather than recognising shapes by name, the reader finds each dimension's
role from the projections, so that ``CNN-Layer``, ``conv2D``, a grouped or
depthwise layer and a matrix multiply written with any dimension names are
read the same way:

- the output is the data space with ``read_write: true`` (``read-write``);
  the inputs are the data space with a sliding window (a projection entry
  that sums two dimensions, ``[[R, Wdilation], [P, Wstride]]``), else the
  first other one; the weights are the remaining one;
- a dimension in all three tensors is G (groups); in outputs and inputs
  only, it is N, or P / Q when it is the output side of a window; in
  outputs and weights only, M; in inputs and weights only, C, or R / S when
  it is the filter side of a window;
- the first window (in the inputs' projection order) is P with R, the
  second Q with S; the coefficient of the output term is the stride and
  that of the filter term the dilation.

Dimensions of extent 1 that fit no role are dropped; anything else that
does not fit a convolution is refused with the dimension named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .files import ExpressionError, Files, Part, evaluate

TENSOR_WORDS = {"inputs": ("input", "ifmap", "activation", "a"), "weights": ("weight", "filter", "b"),
                "outputs": ("output", "ofmap", "psum", "z", "c")}

CNN_LAYER = {
    "name": "CNN-Layer",
    "dimensions": ["C", "M", "R", "S", "N", "P", "Q"],
    "coefficients": [{"name": "Wstride", "default": 1}, {"name": "Hstride", "default": 1},
                     {"name": "Wdilation", "default": 1}, {"name": "Hdilation", "default": 1}],
    "data_spaces": [
        {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
        {"name": "Inputs", "projection": [[["N"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                                          [["S", "Hdilation"], ["Q", "Hstride"]]]},
        {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]], "read_write": True},
    ],
}
"""Timeloop's built-in convolution shape, for a problem that names no shape."""


@dataclass
class ProblemRead:
    """A Timeloop problem as a mapcert layer, and the names that translate between them."""

    workload: dict
    """The mapcert ``workload`` entry (op, dims, stride, dilation, groups, precision)."""
    dims: dict[str, str]
    """mapcert dimension -> the problem's dimension name."""
    dataspaces: dict[str, str]
    """mapcert tensor (inputs, weights, outputs) -> the problem's data-space name."""
    shape_name: str = ""
    dropped: list[str] = field(default_factory=list)
    """Problem dimensions of extent 1 that play no role (kept out of the layer)."""
    dimension_names: list[str] = field(default_factory=list)
    """Every dimension of the shape, in the shape's order (built-in shape included)."""

    def tensor_of(self, name: str) -> str | None:
        """The mapcert tensor of data space ``name`` (None when unknown)."""
        for tensor, space in self.dataspaces.items():
            if space == name:
                return tensor
        return None

    def dim_of(self, name: str) -> str | None:
        for dim, own in self.dims.items():
            if own == name:
                return dim
        return None


def _terms(entry, part: Part, path: tuple) -> list[tuple[str, object]]:
    """A projection entry as (dimension, coefficient) terms."""
    if isinstance(entry, str):
        return [(entry, 1)]
    if not isinstance(entry, list):
        part.fail(path, "a projection entry is a list of terms such as [[R, Wdilation], [P, Wstride]]")
    out = []
    for i, term in enumerate(entry):
        if isinstance(term, str):
            out.append((term, 1))
        elif isinstance(term, list) and 1 <= len(term) <= 2 and isinstance(term[0], str):
            out.append((term[0], term[1] if len(term) == 2 else 1))
        else:
            part.fail(path + (i,), "a term is [DIMENSION] or [DIMENSION, COEFFICIENT]")
    return out


def _names_cnn_layer(name: str) -> bool:
    """Whether ``name`` is Timeloop's built-in convolution shape (its spellings)."""
    return name.lower().replace("_", "-") in ("cnn-layer", "conv2d")


def read_problem(files: Files) -> ProblemRead:
    """The layer of the merged files' ``problem``; refuses what is not a convolution or matrix multiply."""
    part = files.get("problem")
    if part is None:
        raise_missing(files, "problem", "no file gives 'problem:' (the layer's shape and instance)")
    raw = part.value
    if not isinstance(raw, dict):
        part.fail((), "must be a mapping with 'shape' and 'instance'")
    shape = raw.get("shape", CNN_LAYER)
    shape_path: tuple = ("shape",)
    if isinstance(shape, str):
        if not _names_cnn_layer(shape):
            part.fail(shape_path, f"names the shape {shape!r}; give the shape itself (dimensions, data_spaces), "
                                  "or cnn-layer")
        shape = CNN_LAYER
    elif isinstance(shape, dict) and not ({"dimensions", "data_spaces", "data-spaces"} & set(shape)):
        # ``shape: {name: CNN-Layer}``: Timeloop then loads its built-in shape of that name
        name = shape.get("name")
        if not (isinstance(name, str) and _names_cnn_layer(name)):
            part.fail(shape_path, f"names the shape {name!r} without its dimensions and data_spaces; mapcert "
                                  "knows only Timeloop's built-in CNN-Layer, so give the shape itself")
        shape = {**CNN_LAYER, "name": name}
    if not isinstance(shape, dict):
        part.fail(shape_path, "must be a mapping with dimensions and data_spaces")
    dimensions = shape.get("dimensions")
    if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
        part.fail(shape_path + ("dimensions",), "must list the problem's dimension names")
    coefficients = {}
    for i, c in enumerate(shape.get("coefficients") or []):
        if not isinstance(c, dict) or "name" not in c:
            part.fail(shape_path + ("coefficients", i), "a coefficient is {name, default}")
        coefficients[str(c["name"])] = c.get("default", 1)
    instance = raw.get("instance")
    older = instance is None  # Timeloop's older form: the extents beside the shape, as it still reads them
    if older:
        instance = {k: v for k, v in raw.items() if k not in PROBLEM_FIELDS} or None
    if not isinstance(instance, dict):
        part.fail(("instance",), "must map each dimension (and coefficient) to its value (under instance:, or "
                                 "beside shape: as older files give them)")
    _refuse_unknown_names(part, instance, dimensions, coefficients, older)
    variables = dict((files.get("variables").value or {}) if files.get("variables") else {})
    scope = {**variables, **coefficients, **{k: v for k, v in instance.items() if isinstance(k, str)}}

    def number(name: str, path: tuple, allow_missing: bool = True) -> int:
        if name not in scope:
            if allow_missing:
                return 1
            part.fail(path, f"{name} has no value")
        try:
            value = evaluate(scope[name], scope)
        except ExpressionError as exc:
            part.fail(("instance", name), str(exc))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            part.fail(("instance", name) if name in instance else path,
                      f"{name} must be a positive whole number, got {value!r}")
        return int(value)

    densities = instance.get("densities")
    if isinstance(densities, dict):
        for space, density in densities.items():
            value = density.get("density", 1) if isinstance(density, dict) else density
            if value not in (1, 1.0, "1"):
                part.fail(("instance", "densities", space),
                          "a density below 1 is sparse data; mapcert maps dense tensors")

    spaces = shape.get("data_spaces", shape.get("data-spaces"))
    key = "data_spaces" if "data_spaces" in shape else "data-spaces"
    if not isinstance(spaces, list) or len(spaces) != 3:
        part.fail(shape_path + (key,), "mapcert maps layers with three data spaces (inputs, weights, outputs); "
                                       f"this shape has {len(spaces) if isinstance(spaces, list) else 'no list of'}")
    read = []  # (name, [[terms] per entry], is_output)
    for i, space in enumerate(spaces):
        if not isinstance(space, dict) or "name" not in space or not isinstance(space.get("projection"), list):
            part.fail(shape_path + (key, i), "a data space is {name, projection, read_write}")
        entries = [_terms(e, part, shape_path + (key, i, "projection", j)) for j, e in enumerate(space["projection"])]
        for j, entry in enumerate(entries):
            for dim, _ in entry:
                if dim not in dimensions:
                    part.fail(shape_path + (key, i, "projection", j), f"{dim} is not one of the shape's dimensions")
        output = bool(space.get("read_write", space.get("read-write", False)))
        read.append((str(space["name"]), entries, output))
    outputs = [r for r in read if r[2]]
    if len(outputs) != 1:
        part.fail(shape_path + (key,), f"{len(outputs)} data spaces are read_write; mapcert needs exactly one "
                                       "output (read_write: true)")
    out_space = outputs[0]
    others = [r for r in read if not r[2]]
    windowed = [r for r in others if any(len(e) > 1 for e in r[1])]
    if len(windowed) > 1:
        part.fail(shape_path + (key,), "two data spaces have sliding windows; only the inputs may")
    if windowed:
        in_space = windowed[0]
    else:  # a matrix multiply: the data space named like weights is the weights, else the second one
        named = [r for r in others if any(w == r[0].lower() or r[0].lower().startswith(w)
                                          for w in TENSOR_WORDS["weights"] if len(w) > 1)]
        in_space = others[0] if not named or named[0] is others[1] else others[1]
    w_space = others[1] if in_space is others[0] else others[0]
    for entry_index, entry in enumerate(out_space[1] + w_space[1]):
        if len(entry) > 1:
            part.fail(shape_path + (key,), f"{out_space[0] if entry in out_space[1] else w_space[0]} sums "
                                           "dimensions in one projection entry; only the inputs have windows")

    def dims_of(space) -> set[str]:
        return {d for e in space[1] for d, _ in e}

    in_dims, w_dims, out_dims = dims_of(in_space), dims_of(w_space), dims_of(out_space)
    windows = []  # (output dim, filter dim, stride, dilation)
    for j, entry in enumerate(in_space[1]):
        if len(entry) == 1:
            continue
        path = shape_path + (key, read.index(in_space), "projection", j)
        if len(entry) != 2:
            part.fail(path, "a window sums two dimensions (an output position and a filter tap)")
        (a, ca), (b, cb) = entry
        if a in out_dims and b in w_dims:
            a, ca, b, cb = b, cb, a, ca
        if not (a in w_dims and a not in out_dims and b in out_dims and b not in w_dims):
            part.fail(path, f"the window {a} + {b} does not pair a filter dimension with an output dimension")
        coef = {}
        for name, c in (("dilation", ca), ("stride", cb)):
            if isinstance(c, str):
                coef[name] = number(c, path)
            elif isinstance(c, int) and not isinstance(c, bool) and c >= 1:
                coef[name] = c
            else:
                part.fail(path, f"the {name} coefficient must be a positive whole number or a coefficient's "
                                f"name, got {c!r}")
        windows.append((b, a, coef["stride"], coef["dilation"]))
    if len(windows) > 2:
        part.fail(shape_path + (key, read.index(in_space)), "more than two sliding windows; mapcert layers "
                                                            "have two (P with R, Q with S)")
    in_window = {w[0] for w in windows} | {w[1] for w in windows}
    roles: dict[str, list[str]] = {}
    dropped = []
    for name in dimensions:
        extent = number(name, shape_path + ("dimensions",))
        where = (name in in_dims, name in w_dims, name in out_dims)
        if name in in_window:
            continue
        role = {(True, True, True): "G", (True, False, True): "N", (False, True, True): "M",
                (True, True, False): "C"}.get(where)
        if role is None:
            if extent == 1:
                dropped.append(name)
                continue
            part.fail(("instance", name) if name in instance else shape_path + ("dimensions",),
                      f"dimension {name} (extent {extent}) indexes "
                      f"{', '.join(s for s, f in zip(('inputs', 'weights', 'outputs'), where) if f) or 'no data space'}"
                      "; a convolution's dimensions index two or three of them")
        roles.setdefault(role, []).append(name)
    dims: dict[str, str] = {}
    for role, names in roles.items():
        big = [n for n in names if number(n, ()) > 1]
        if len(big) > 1:
            part.fail(("instance", big[1]), f"dimensions {', '.join(big)} play the same role ({role}); "
                                            "mapcert's layer has one dimension per role")
        chosen = big[0] if big else names[0]
        dims[role] = chosen
        dropped.extend(n for n in names if n != chosen)
    for axis, (out_dim, filt_dim, _, _) in zip(("PR", "QS"), windows):
        dims[axis[0]], dims[axis[1]] = out_dim, filt_dim
    ext = {d: number(n, ()) for d, n in dims.items()}
    groups = ext.get("G", 1)
    conv = bool(windows)
    workload: dict = {"name": str(shape.get("name", "layer")),
                      "op": "conv2d" if conv else "matmul"}
    wdims = {"N": ext.get("N", 1), "M": ext.get("M", 1) * groups, "C": ext.get("C", 1) * groups}
    if conv:
        wdims.update({"P": ext.get("P", 1), "Q": ext.get("Q", 1), "R": ext.get("R", 1), "S": ext.get("S", 1)})
        strides = [w[2] for w in windows] + [1] * (2 - len(windows))
        dilations = [w[3] for w in windows] + [1] * (2 - len(windows))
        if strides != [1, 1]:
            workload["stride"] = strides if strides[0] != strides[1] else strides[0]
        if dilations != [1, 1]:
            workload["dilation"] = dilations if dilations[0] != dilations[1] else dilations[0]
    workload["dims"] = wdims
    if groups > 1:
        if not conv:
            part.fail(shape_path, "a batched (grouped) matrix multiply is not a mapcert layer")
        workload["groups"] = groups
    workload["precision"] = {"inputs": 8, "weights": 8, "outputs": 8, "psums": 8}
    return ProblemRead(workload=workload, dims=dims,
                       dataspaces={"inputs": in_space[0], "weights": w_space[0], "outputs": out_space[0]},
                       shape_name=str(shape.get("name", "")), dropped=dropped,
                       dimension_names=list(dimensions))


PROBLEM_FIELDS = ("version", "shape", "instance", "name")
"""The fields of a Timeloop ``problem`` that are not an extent."""


def _refuse_unknown_names(part: Part, instance: dict, dimensions: list[str], coefficients: dict, older: bool) -> None:
    """Refuse a name in the instance that is neither a dimension, a
    coefficient nor ``densities``: Timeloop would stop on it, and reading
    on would solve a layer whose misspelt dimension is silently 1 (``K``
    for CNN-Layer's ``M``, ``Wstrid`` for ``Wstride``). In the older form,
    where the extents sit beside the shape, a misspelt ``instance`` is
    such a name."""
    from ...instances import field_hint

    known = list(dimensions) + list(coefficients) + ["densities"]
    for name in instance:
        if isinstance(name, str) and name in known:
            continue
        text = str(name)
        if older:
            hint = field_hint(text, list(PROBLEM_FIELDS) + known)
            part.fail((text,), f"unknown field {text!r}{hint} (a problem gives shape and instance; an older file "
                               f"gives the extents beside the shape: {', '.join(known[:-1])})")
        hint = field_hint(text, known)
        part.fail(("instance", text), f"{text!r} is neither a dimension nor a coefficient of the shape"
                                      f"{hint if 'did you mean' in hint else ''} (dimensions: {', '.join(dimensions)}; "
                                      f"coefficients: {', '.join(coefficients) or 'none'})")


def raise_missing(files: Files, key: str, message: str):
    from ...instances import Issue

    from .files import TimeloopError
    first = files.paths[0] if files.paths else "<files>"
    raise TimeloopError([Issue(first, 1, key, message)])
