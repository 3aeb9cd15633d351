"""ZigZag files in and out: the stages, in order.

1. ``import_instance``: a workload file (one layer chosen), a hardware file
   and optionally a mapping file (for its ``memory_operand_links``) become
   a mapcert multi-level tiling instance (``zigzag_workload``,
   ``zigzag_hardware``), written as YAML a person can read and edit.
2. ``read_mapping``: a ZigZag mapping file becomes a mapcert mapping of an
   imported problem (``zigzag_mapping``), for ``mapcert compare --mapping``.
3. ``export_mapping``: a mapcert mapping becomes a ZigZag mapping file, for
   ``mapcert solve --export zigzag``.

Every problem is an input error ``file:line: field: what is wrong``
(``InstanceError``), naming the layer, memory, array dimension or loop.
docs/interop.md lists every field read and what is refused.
"""

from __future__ import annotations

import math

from pathlib import Path
from typing import Any

import yaml

from ..instances import InstanceError, Issue
from .zigzag_common import DEFAULT_LINKS, LAYER_TENSORS, ZIGZAG_DIMS, fail, names_comment, read
from .zigzag_hardware import read_hardware
from .zigzag_mapping import MappingError, export, is_zigzag_mapping, mapping_from_zigzag, pick_entry
from .zigzag_workload import pick_layer, read_layer

__all__ = ["import_instance", "read_mapping", "export_mapping", "is_zigzag_mapping", "instance_text",
           "precision_notes"]


def _links(mapping: Path | None, layer_name: str, operator_type: str,
           notes: list[str] | None = None) -> dict[str, str]:
    """The ``memory_operand_links`` ZigZag would use for the layer. The
    entry's loops are not part of an instance; when it gives some, a note
    (in ``notes``) says how to score them instead of dropping them unsaid."""
    if mapping is None:
        return dict(DEFAULT_LINKS)
    data, where = read(mapping)
    if not is_zigzag_mapping(data):
        where.add((), "not a ZigZag mapping (a list of entries with name, spatial_mapping, temporal_ordering "
                      "and memory_operand_links)")
        fail(where)
    try:
        index, entry = pick_entry(data, layer_name, (operator_type,))
    except MappingError as exc:
        where.add(exc.path, str(exc))
        fail(where)
    links = entry.get("memory_operand_links") or DEFAULT_LINKS
    loops = [key for key in ("spatial_mapping", "temporal_ordering") if entry.get(key)]
    if loops and notes is not None:
        ordering = entry.get("temporal_ordering")
        partial = isinstance(ordering, list) and any(isinstance(loop, (list, tuple)) and loop
                                                     and str(loop[0]).strip() == "*" for loop in ordering)
        notes.append(f"{mapping}: only the memory_operand_links of entry {entry.get('name', index)!r} are read; "
                     f"its {' and '.join(loops)} are not part of the instance"
                     + (" (its '*' loops make it a partial mapping, a constraint mapcert does not read)" if partial
                        else f": `mapcert compare INSTANCE.yaml --mapping {mapping}` scores that mapping against "
                             "the optimum"))
    path = (index, "memory_operand_links")
    if not isinstance(links, dict):
        where.add(path, "must map the layer operands O, W, I to memory operands")
        fail(where)
    for key, value in links.items():
        if key not in LAYER_TENSORS:
            where.add(path + (key,), f"unknown layer operand {key}; a layer has O, W and I")
        if str(value) not in ("I1", "I2", "O"):
            where.add(path + (key,), f"unknown memory operand {value!r}; memories serve I1, I2 and O")
    if len(set(map(str, links.values()))) != len(links):
        where.add(path, "two layer operands share one memory operand")
    fail(where)
    return {str(k): str(v) for k, v in links.items()}


def import_instance(workload: str | Path, hardware: str | Path, mapping: str | Path | None = None,
                    layer: str | None = None, objective: str = "energy", notes: list[str] | None = None,
                    names: dict[str, str] | None = None) -> dict:
    """A mapcert tiling instance from ZigZag files.

    Parameters
    ----------
    workload, hardware
        ZigZag's workload and hardware YAML.
    mapping
        A ZigZag mapping file; only its ``memory_operand_links`` are read here.
    layer
        The layer's name or id (needed when the workload has several layers
        with weights).
    objective
        ``energy`` (ZigZag's), ``latency``, ``edp`` or ``offchip_traffic``.
    notes
        When given, a note is appended for what of the files the instance
        leaves out (the mapping's loops).
    names
        When given, filled with the workload's loop names (ZigZag name ->
        mapcert dimension), which :func:`instance_text` keeps in the header
        so that mappings written with them can be read.

    Returns
    -------
    dict
        The instance (``mapcert.instances.load_document`` reads it).

    Raises
    ------
    InstanceError
        One line per problem, naming the file, line and field.
    """
    data, where = read(workload)
    picked = pick_layer(data, where, layer)
    fail(where)
    index, raw = picked
    path = (index,) if isinstance(data, list) else ()
    zz_layer = read_layer(raw, where, path)
    fail(where)
    if names is not None:
        names.update(zz_layer.dims)
    if notes is not None:
        notes.extend(zz_layer.notes)
    links = _links(Path(mapping) if mapping is not None else None, zz_layer.name, zz_layer.operator_type, notes)
    hw_data, hw_where = read(hardware)
    hw = read_hardware(hw_data, hw_where, links)
    fail(hw_where)
    _energies_per_element(hw.hardware, hw_data["memories"], zz_layer.workload.get("precision", {}))
    outer = hw.hardware["levels"][0]
    size = hw_data["memories"].get(outer["name"], {}).get("size")
    if isinstance(size, (int, float)) and not isinstance(size, bool) and 0 < size < OFF_CHIP_BITS:
        said = (f"the last memory, {outer['name']} ({size / 8 / 1024:,.0f} KiB), is the off-chip level: its size is "
                "not read (mapcert's outermost level holds every tensor whole), its energies are")
        hw.hardware["source"] += f"; {said} ZigZag's"
        if notes is not None:
            notes.append(f"{said} ZigZag's; add a larger memory above it to bound it")
    return {"family": "tiling", "workload": zz_layer.workload, "hardware": hw.hardware, "objective": objective,
            "solver": {"method": "cpsat", "time_limit": 60}}


OFF_CHIP_BITS = 2**30
"""A last memory smaller than this many bits (128 MiB) is likely on chip
(ZigZag's ``gemm_l1``: a 512 KiB L1 holds everything), and the import
says that it becomes the unbounded off-chip level."""


def _energies_per_element(hardware: dict, memories: dict, precision: dict) -> None:
    """ZigZag charges ``r_cost`` (``w_cost``) per access of ``r_bw``
    (``w_bw``) bits (ZigZag 3: of its port's ``bandwidth_max``, :func:`port_width`);
    mapcert charges a level per element moved. An element
    of ``b`` bits is ``b / bw`` of an access when an access carries several
    (``ceil(b / bw)`` accesses when it needs several), ``b`` being the
    widest of the operands the level holds (partial sums at their
    precision): docs/interop.md. A memory without a bandwidth keeps its cost
    per element."""
    bits = {"inputs": precision.get("inputs", 8), "weights": precision.get("weights", 8),
            "outputs": precision.get("psums", precision.get("outputs", 8))}
    for level in hardware["levels"]:
        raw = memories.get(level["name"], {})
        held = level.get("holds", ("inputs", "weights", "outputs"))
        width = max(bits[t] for t in held)
        for energy, bandwidth in (("read_energy", "r_bw"), ("write_energy", "w_bw")):
            bw = raw.get(bandwidth, port_width(raw.get("ports"), "read" if bandwidth == "r_bw" else "write"))
            if isinstance(bw, (int, float)) and not isinstance(bw, bool) and bw > 0:
                share = width / bw if width <= bw else math.ceil(width / bw)
                level[energy] = round(level[energy] * share, 9)


def port_width(ports, direction: str) -> float | None:
    """The bits one access moves, in ZigZag 3's format (``ports:`` with
    ``type`` and ``bandwidth_max``, no ``r_bw``): ZigZag charges ``r_cost``
    per ``bandwidth_max`` bits read (its ``ceil(bits / bandwidth_min) *
    bandwidth_min / bandwidth_max`` accesses). The widest port that reads
    (``read``, ``read_write``) or writes; None without one."""
    if not isinstance(ports, list):
        return None
    widths = [port.get("bandwidth_max") for port in ports
              if isinstance(port, dict) and port.get("type") in (direction, "read_write")]
    widths = [w for w in widths if isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0]
    return max(widths) if widths else None


def precision_notes(instance: dict) -> list[str]:
    """What the per-element energies leave out: ZigZag charges each operand
    of a shared memory at its own precision, mapcert one energy per element
    of a level, set by its widest operand (``_energies_per_element``). One
    sentence per level whose operands differ in width, saying how much more
    than ZigZag the narrower ones are charged there."""
    precision = instance["workload"].get("precision", {})
    bits = {"inputs": precision.get("inputs", 8), "weights": precision.get("weights", 8),
            "outputs": precision.get("psums", precision.get("outputs", 8))}
    notes = []
    for level in instance["hardware"]["levels"]:
        held = level.get("holds", ("inputs", "weights", "outputs"))
        widest = max(bits[t] for t in held)
        narrow = {t: bits[t] for t in held if bits[t] < widest}
        final = precision.get("outputs", bits["outputs"])
        if "outputs" in held and final < widest:  # a final output is written at its own precision in ZigZag
            narrow["final outputs"] = final
        if narrow and (level.get("read_energy") or level.get("write_energy")):
            what = " and ".join(f"{t} ({b} bits, {widest / b:g}x)" for t, b in narrow.items())
            notes.append(f"{level['name']} charges every element as {widest} bits, its widest operand: {what} "
                         "cost more there than ZigZag charges them, so energies and the optimum are mapcert's "
                         "for these per-element prices (docs/interop.md)")
    return notes


def instance_text(instance: dict, sources: list[Path], names: dict[str, str] | None = None,
                  notes: list[str] = ()) -> str:
    """The instance as YAML with a header naming the files it came from (and
    the workload's loop names, when they are not ZigZag's usual ones), and
    the import's ``notes`` (what it reads otherwise than ZigZag)."""
    head = "# Imported from ZigZag: " + ", ".join(str(p) for p in sources) + "\n"
    comment = names_comment(names or {})
    head += f"{comment}\n" if comment else ""
    head += "# Fan-outs are named after ZigZag's array dimensions (rows x columns); docs/interop.md\n"
    head += ("# model: latches: false, as ZigZag's API counts (access_same_data_considered_as_no_access: false): "
             "every MAC reads its input and weight from the innermost memory that holds them and updates its "
             "partial sum there (true: each MAC unit holds its last operands and reads a memory only when one "
             "changes, as ZigZag counts with that flag true)\n")
    head += "".join(f"# note: {note}\n" for note in [*precision_notes(instance), *notes])
    return head + yaml.safe_dump(instance, sort_keys=False, default_flow_style=None, width=110)


def read_mapping(problem, path: str | Path, notes: list[str] | None = None, names: dict[str, str] | None = None):
    """The mapcert mapping a ZigZag mapping file gives ``problem`` (``notes``
    receives a sentence when ZigZag's own allocator would place its loops
    otherwise; ``names``: the workload's own loop names, when it has them).

    Raises
    ------
    InstanceError
        One line naming the file, the line and the field at fault.
    """
    data, where = read(path)
    try:
        return mapping_from_zigzag(problem, data, notes, names)
    except MappingError as exc:
        where.add(exc.path, str(exc))
        raise InstanceError(where.issues) from None


def export_mapping(problem, mapping, objective: str, output: str | Path,
                   names: dict[str, str] | None = None) -> tuple[float, bool, str | None]:
    """Write ``mapping`` as a ZigZag mapping file; returns the objective it
    reads back to, whether that equals the mapping's own, and why ZigZag's
    own allocator would place the loops otherwise (None when it agrees).
    With ``names`` (the workload's own loop names) the loops are written
    with them, so that ZigZag reads the file with that workload.

    Raises
    ------
    InstanceError
        The problem's hierarchy was not imported from ZigZag (its fan-outs
        are not named after array dimensions).
    """
    try:
        exported = export(problem, mapping, objective)
    except MappingError as exc:
        raise InstanceError([Issue(str(output), 1, "(export)", str(exc))]) from None
    head = (f"# The mapping mapcert found for layer {problem.layer.name} on {problem.hierarchy.name} "
            f"({objective} {exported.objective:.6g}).\n"
            "# temporal_ordering lists the loops innermost first, memory by memory from the innermost.\n")
    body: Any = _renamed(exported.entries, names) if names else exported.entries
    Path(output).write_text(head + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110))
    return exported.objective, exported.reads_back, exported.note



def _renamed(entries: list[dict], names: dict[str, str]) -> list[dict]:
    """``entries`` (written with ZigZag's usual loop names) with the
    workload's own names instead: each mapcert dimension takes the name the
    workload gives it."""
    own = {ZIGZAG_DIMS[usual]: usual for usual in ZIGZAG_DIMS}
    own.update({dim: name for name, dim in names.items()})
    rename = {usual: own[dim] for usual, dim in ZIGZAG_DIMS.items()}
    out = []
    for entry in entries:
        entry = dict(entry)
        entry["spatial_mapping"] = {axis: [f"{rename[u.split(',')[0].strip()]}, {u.split(',')[1].strip()}"
                                           for u in unrolls]
                                    for axis, unrolls in (entry.get("spatial_mapping") or {}).items()}
        entry["temporal_ordering"] = [[rename[str(d)], size] for d, size in entry.get("temporal_ordering") or []]
        out.append(entry)
    return out
