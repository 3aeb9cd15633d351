"""A ZigZag hardware description -> a mapcert memory hierarchy.

ZigZag lists ``memories`` innermost first; each serves some memory operands
(I1, I2, O), which ``memory_operand_links`` tie to the layer's I, W and O
(by default I -> I1, W -> I2, O -> O), and is shared along its
``served_dimensions`` of the ``operational_array`` (D1, D2, ...): served
along every dimension it is one memory above the array, along none it is
one per MAC unit.

mapcert's hierarchy is a chain of levels, outermost first, with spatial
fan-outs between them.  The memories become the levels in reverse order of
the file, each holding its operands (``holds``; ZigZag fixes what a memory
keeps).  A memory's instances are one per point of the array dimensions it
does not serve; going down the chain these sets must grow, and where one
grows by one or two dimensions a fan-out of those dimensions (rows the
first, columns the second) sits above the memory.  The array dimensions
that no memory leaves unserved spread the MAC units (a fan-out right above
them).  Dimensions of size 1 are nowhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..instances import Located
from .zigzag_common import DEFAULT_LINKS, LAYER_TENSORS

MEMORY_FIELDS = {"size", "r_cost", "w_cost", "area", "latency", "mem_type", "auto_cost_extraction", "operands",
                 "ports", "served_dimensions",
                 # fields of the earlier format (ports as fh/tl/fl/th, bandwidths and port counts per memory)
                 "r_bw", "w_bw", "r_port", "w_port", "rw_port", "min_r_granularity", "min_w_granularity"}
ARRAY_FIELDS = {"dimensions", "sizes", "unit_energy", "unit_area", "is_imc", "input_precision", "imc_type",
                "adc_resolution", "bit_serial_precision", "multiplier_energy", "multiplier_area"}
HARDWARE_FIELDS = {"name", "memories", "operational_array", "dataflows"}
_DIM = re.compile(r"^D\d+$")


@dataclass(frozen=True)
class ZigZagHardware:
    """The ``hardware:`` entry of a mapcert instance and the array's dimensions."""

    name: str
    hardware: dict
    sizes: dict[str, int]


_OPERAND = re.compile(r"^[A-Z][A-Z0-9_]*$")
"""A memory operand's name in ZigZag's files (I1, I2, O, S, ...)."""


def fanout_dims(name: str) -> list[str] | None:
    """The ZigZag array dimensions of a fan-out this importer named (``D1xD2``:
    rows D1, columns D2), or None for another name."""
    parts = name.split("x")
    return parts if 1 <= len(parts) <= 2 and all(_DIM.match(p) for p in parts) else None


def read_hardware(data: Any, where: Located, links: dict[str, str] | None = None) -> ZigZagHardware | None:
    """The hierarchy of ZigZag hardware ``data``; None with every problem on ``where``.

    Parameters
    ----------
    data
        The parsed hardware YAML.
    where
        Lines of the file, and where problems are recorded.
    links
        ``memory_operand_links`` (layer operand -> memory operand) of the
        mapping, ZigZag's default when None.
    """
    if not isinstance(data, dict):
        where.add((), "a ZigZag hardware file is a mapping with name, memories and operational_array")
        return None
    for key in data:
        if key not in HARDWARE_FIELDS:
            where.add((key,), f"unknown field; ZigZag hardware has {', '.join(sorted(HARDWARE_FIELDS))}")
    for key in ("memories", "operational_array"):
        if key not in data:
            where.add((key,), "required field is missing")
    if where.issues:
        return None
    sizes = _array(data["operational_array"], where)
    memories = data["memories"]
    if not isinstance(memories, dict) or not memories:
        where.add(("memories",), "must map memory names to their descriptions, innermost first")
        return None
    if sizes is None:
        return None
    links = dict(DEFAULT_LINKS if links is None else links)
    tensor_of = {mem_op: LAYER_TENSORS[layer_op] for layer_op, mem_op in links.items() if layer_op in LAYER_TENSORS}
    chain = []  # innermost first, as in the file
    unused = []  # memories of operands the layer does not have (TPU-like's rfS_2B of operand S)
    for name, raw in memories.items():
        operands = raw.get("operands") if isinstance(raw, dict) else None
        if (isinstance(operands, list) and operands
                and not any(str(op) in tensor_of for op in operands)
                and all(_OPERAND.match(str(op)) for op in operands)):
            unused.append(f"{name} (operand{'s' if len(operands) > 1 else ''} {', '.join(map(str, operands))})")
            continue
        level = _memory(str(name), raw, sizes, tensor_of, where)
        if level is not None:
            chain.append(level)
    if where.issues:
        return None
    levels, fanouts = _levels_and_fanouts(_nesting_order(chain), sizes, where)
    if levels is None:
        return None
    array = data["operational_array"]
    hardware: dict[str, Any] = {"name": str(data.get("name", "zigzag")),
                                "source": "imported from a ZigZag hardware description"
                                          + (f"; left out, serving no operand of the layer: {', '.join(unused)}"
                                             if unused else ""),
                                "energy_unit": "pJ",
                                "mac_energy": float(array.get("unit_energy", array.get("multiplier_energy", 0)) or 0),
                                # ZigZag's API counts a read of the innermost memory per MAC
                                # (access_same_data_considered_as_no_access=False): no operand latches
                                "latches": False}
    if fanouts:
        hardware["fanouts"] = fanouts
    hardware["levels"] = levels
    constraints = _dataflows(data.get("dataflows"), fanouts, sizes, where)
    if constraints:
        hardware["constraints"] = {"fanouts": constraints}
    if where.issues:
        return None
    return ZigZagHardware(hardware["name"], hardware, sizes)


def _array(raw: Any, where: Located) -> dict[str, int] | None:
    path = ("operational_array",)
    if not isinstance(raw, dict):
        where.add(path, "must give dimensions and sizes")
        return None
    for key in raw:
        if key not in ARRAY_FIELDS:
            where.add(path + (key,), f"unknown field; an operational array has {', '.join(sorted(ARRAY_FIELDS))}")
    if raw.get("is_imc"):
        where.add(path + ("is_imc",), "in-memory computing arrays are not modelled by the tiling family "
                                      "(the crossbar family maps PIM chips)")
    dims, sizes = raw.get("dimensions"), raw.get("sizes")
    if not isinstance(dims, list) or not isinstance(sizes, list) or len(dims) != len(sizes) or not dims:
        where.add(path + ("sizes",), "dimensions and sizes must be lists of the same length")
        return None
    out = {}
    for i, (dim, size) in enumerate(zip(dims, sizes)):
        if not _DIM.match(str(dim)):
            where.add(path + ("dimensions", i), f"{dim!r} is not an array dimension name (D1, D2, ...)")
        elif not isinstance(size, int) or isinstance(size, bool) or size < 1:
            where.add(path + ("sizes", i), f"size of {dim} must be a positive integer, got {size!r}")
        else:
            out[str(dim)] = size
    energy = raw.get("unit_energy", raw.get("multiplier_energy", 0))
    if not isinstance(energy, (int, float)) or isinstance(energy, bool) or energy < 0:
        where.add(path + ("unit_energy",), f"must be a non-negative energy per MAC, got {energy!r}")
    return None if where.issues else out


def _memory(name: str, raw: Any, sizes: dict, tensor_of: dict, where: Located) -> dict | None:
    path = ("memories", name)
    if not isinstance(raw, dict):
        where.add(path, "must give size, r_cost, w_cost, operands and served_dimensions")
        return None
    for key in raw:
        if key not in MEMORY_FIELDS:
            where.add(path + (key,), f"unknown field of memory {name}")
    for key in ("size", "r_cost", "w_cost", "operands", "served_dimensions"):
        if key not in raw:
            where.add(path + (key,), f"required field of memory {name} is missing")
    if where.issues:
        return None
    if raw.get("auto_cost_extraction") and (raw.get("r_cost") is None or raw.get("w_cost") is None):
        where.add(path + ("auto_cost_extraction",), f"memory {name}: costs from CACTI are not estimated here; "
                                                    "give r_cost and w_cost")
    energies = {}
    for key in ("r_cost", "w_cost"):
        value = raw.get(key, 0)
        value = 0 if value is None else value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            where.add(path + (key,), f"memory {name}: must be a non-negative energy, got {value!r}")
        energies[key] = float(value) if isinstance(value, (int, float)) else 0.0
    size = raw["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        where.add(path + ("size",), f"memory {name}: must be a positive number of bits, got {size!r}")
    elif size % 8:
        where.add(path + ("size",), f"memory {name}: {size} bits is not a whole number of bytes; mapcert's "
                                    "capacities are in bytes")
    operands = raw["operands"]
    holds = []
    if not isinstance(operands, list) or not operands:
        where.add(path + ("operands",), f"memory {name}: must list the memory operands it serves (I1, I2, O)")
    else:
        for i, op in enumerate(operands):
            tensor = tensor_of.get(str(op))
            if tensor is None:
                known = ", ".join(sorted(tensor_of))
                where.add(path + ("operands", i), f"memory {name}: unknown operand {op!r}; the layer's operands "
                                                  f"are linked to {known} (memory_operand_links)")
            elif tensor in holds:
                where.add(path + ("operands", i), f"memory {name}: operand {op} is listed twice")
            else:
                holds.append(tensor)
    served = raw["served_dimensions"]
    if not isinstance(served, list):
        where.add(path + ("served_dimensions",), f"memory {name}: must list array dimensions (D1, D2, ...)")
        served = []
    for i, dim in enumerate(served):
        if str(dim) not in sizes:
            where.add(path + ("served_dimensions", i), f"memory {name}: serves {dim}, but the operational array "
                                                       f"has {', '.join(sizes)}")
    if where.issues:
        return None
    unserved = frozenset(d for d, n in sizes.items() if n > 1 and d not in served)
    order = ("inputs", "weights", "outputs")
    return {"name": name, "size": size, "holds": sorted(holds, key=order.index), "unserved": unserved,
            "read_energy": energies["r_cost"], "write_energy": energies["w_cost"]}


def _nesting_order(chain: list[dict]) -> list[dict]:
    """The memories outermost first, from the file's innermost-first list.

    ZigZag lists each operand's memories innermost first; memories of
    different operands at one depth are parallel, and mapcert stacks them.
    Among the stackings that keep every operand's own order, take the one
    whose memories split the array ever further inwards (each shared along
    no dimension its outer neighbour splits), when one exists: a weight
    register shared along the columns goes above a per-PE accumulator, not
    below it. Ties keep the file's order; with no such stacking, the
    file's order is returned (and refused with the memory named)."""
    outer_first = list(reversed(chain))
    placed: list[dict] = []
    seen: frozenset = frozenset()
    remaining = list(outer_first)
    while remaining:
        ready = [m for m in remaining
                 if all(not (set(other["holds"]) & set(m["holds"])) for other in remaining[:remaining.index(m)])]
        fitting = [m for m in ready if seen <= m["unserved"]]
        if not fitting:
            return outer_first
        chosen = min(fitting, key=lambda m: (len(m["unserved"]), remaining.index(m)))
        placed.append(chosen)
        seen = chosen["unserved"]
        remaining.remove(chosen)
    return placed


def _levels_and_fanouts(chain: list[dict], sizes: dict, where: Located):
    """mapcert levels (outermost first) and fan-outs from memories outermost first."""
    top = chain[0]
    dims = list(sizes)
    if set(top["holds"]) != set(LAYER_TENSORS.values()):
        where.add(("memories", top["name"], "operands"),
                  f"memory {top['name']}, the last one listed, is the off-chip memory of mapcert's hierarchy and "
                  "must hold every operand")
    if top["unserved"]:
        where.add(("memories", top["name"], "served_dimensions"),
                  f"memory {top['name']}, the off-chip memory, must serve the whole array "
                  f"({', '.join(d for d in dims if sizes[d] > 1)})")
    if len(chain) < 2:
        where.add(("memories",), "a hierarchy needs an off-chip memory and at least one on-chip memory")
    if where.issues:
        return None, None
    levels = [{"name": top["name"], "read_energy": top["read_energy"], "write_energy": top["write_energy"]}]
    fanouts = []
    seen = frozenset()
    previous = top
    for memory in chain[1:]:
        unserved = memory["unserved"]
        if not seen <= unserved:
            where.add(("memories", memory["name"], "served_dimensions"),
                      f"memory {memory['name']} is shared along {', '.join(sorted(seen - unserved))}, but "
                      f"{previous['name']}, listed after it, has one instance per point of "
                      f"{', '.join(sorted(seen))}; mapcert's fan-outs nest (each memory's instances split the "
                      "ones of the memory above it)")
            return None, None
        new = [d for d in dims if d in unserved - seen]
        if new:
            fanout = _fanout(new, sizes, memory["name"], where)
            if fanout is None:
                return None, None
            fanouts.append(fanout)
        level = {"name": memory["name"], "capacity": memory["size"] // 8, "holds": memory["holds"],
                 "read_energy": memory["read_energy"], "write_energy": memory["write_energy"]}
        levels.append(level)
        seen, previous = unserved, memory
    rest = [d for d in dims if sizes[d] > 1 and d not in seen]
    if rest:
        fanout = _fanout(rest, sizes, "MACs", where)
        if fanout is None:
            return None, None
        fanouts.append(fanout)
    return levels, fanouts


def _fanout(dims: list[str], sizes: dict, above: str, where: Located) -> dict | None:
    if len(dims) > 2:
        where.add(("memories", above) if above != "MACs" else ("operational_array", "dimensions"),
                  f"{' x '.join(dims)} spread {above} at once; a mapcert fan-out has rows and columns, so at most "
                  "two array dimensions may start at one memory (an extra axis would merge two dimensions' limits "
                  "into one and widen the space)")
        return None
    return {"name": "x".join(dims), "above": above, "y": sizes[dims[0]], "x": sizes[dims[1]] if len(dims) > 1 else 1}


def _dataflows(raw: Any, fanouts: list[dict], sizes: dict, where: Located) -> dict:
    """ZigZag's fixed ``dataflows`` (``D1: [K, 32]``) as fan-out constraints."""
    if not raw:
        return {}
    from .zigzag_common import ZIGZAG_DIMS

    if not isinstance(raw, dict):
        where.add(("dataflows",), "must map array dimensions to lists such as 'K, 32'")
        return {}
    place = {}
    for fan in fanouts:
        for axis, dim in zip(("rows", "cols"), fan["name"].split("x")):
            place[dim] = (fan["name"], axis)
    out: dict[str, dict] = {}
    for dim, entries in raw.items():
        if str(dim) not in sizes:
            where.add(("dataflows", dim), f"the operational array has no dimension {dim}")
            continue
        if str(dim) not in place:
            continue  # a dimension of size 1
        name, axis = place[str(dim)]
        spec = out.setdefault(name, {})
        spec[axis] = []
        for i, entry in enumerate(entries or []):
            parts = [p.strip() for p in str(entry).split(",")]
            if len(parts) != 2 or parts[0] not in ZIGZAG_DIMS or not parts[1].isdigit():
                where.add(("dataflows", dim, i), f"not 'DIM, FACTOR' with a ZigZag dimension, got {entry!r}")
                continue
            ours = ZIGZAG_DIMS[parts[0]]
            spec[axis].append(ours)
            spec.setdefault("row_factors" if axis == "rows" else "col_factors", {})[ours] = int(parts[1])
    return out
