"""Per-word energies from an Accelergy ERT, or the documented defaults.

An ERT (``ERT: {tables: [{name, actions: [{name, energy}]}]}``) gives the
energy of each action of each component, in pJ. A storage action moves one
block of ``width`` bits, ``width / datawidth`` words (``block_size`` when
given), as Timeloop charges it; mapcert charges per word, so a level's
read energy is the ``read`` action's energy divided by its block, and its
write energy the ``write`` action's (``update`` when there is no
``write``). An action listed several times, once per argument set
(``data_delta``, ``address_delta`` of v0.3 ERTs), costs its dearest entry,
as Timeloop reads it (``Topology::Specs::ParseAccelergyERT``). The MAC energy is the compute unit's ``compute`` action (or
its first action other than ``leak``). Table names are matched on their
last dotted part without the instance range: ``system_top_level.DRAM[1..1]``
is DRAM.

Without an ERT every level gets :func:`arch.default_energy` and the MAC 1,
in the Eyeriss normalisation (unit ``MAC``); the written instance marks
each such value as a default. An ERT that lacks a component mapcert needs
is refused: mixing its pJ with normalised defaults would compare apples and
pears.
"""

from __future__ import annotations

import re

from .arch import ArchRead, default_energy
from .files import Files, Part

_RANGE = re.compile(r"\[[^\]]*\]")


def _short(name: str) -> str:
    return _RANGE.sub("", str(name)).split(".")[-1]


def _tables(part: Part) -> dict[str, tuple[int, dict[str, float]]]:
    raw = part.value
    tables = raw.get("tables") if isinstance(raw, dict) else None
    if not isinstance(tables, list):
        part.fail(("tables",), "an ERT lists tables: [{name, actions: [{name, energy}]}]")
    out = {}
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or "name" not in table or not isinstance(table.get("actions"), list):
            part.fail(("tables", i), "a table is {name, actions: [{name, energy}]}")
        actions = {}
        for j, action in enumerate(table["actions"]):
            if not isinstance(action, dict) or "name" not in action:
                part.fail(("tables", i, "actions", j), "an action is {name, energy}")
            energy = action.get("energy")
            if isinstance(energy, bool) or not isinstance(energy, (int, float)) or energy < 0:
                part.fail(("tables", i, "actions", j, "energy"), f"must be a non-negative number, got {energy!r}")
            name = str(action["name"])  # listed once per argument set: Timeloop charges the dearest
            actions[name] = max(actions.get(name, 0.0), float(energy))
        out[_short(table["name"])] = (i, actions)
    return out


def apply_energies(arch: ArchRead, files: Files) -> None:
    """Fill in every level's read and write energy and the MAC energy."""
    part = files.get("ERT")
    if part is None:
        given = [level.name for level in arch.levels if "vector-access-energy" in level.attributes]
        if given:  # Timeloop's own energy per access: not read, since the MAC and the other levels lack one
            arch.notes.append(f"vector-access-energy of {', '.join(given)} is not read (mapcert takes energies "
                              "from an ERT, or uses its defaults for every level); give an Accelergy ERT")
        for level in arch.levels:
            level.read_energy = level.write_energy = default_energy(level.cls.split("/")[0], level.words)
            level.energy_note = "default"
        arch.mac_energy, arch.energy_unit = 1.0, "MAC"
        arch.notes.append("energies are mapcert's defaults in the Eyeriss normalisation (DRAM 200, buffers of "
                          "8192 words or more 6, of 512 words or more 2, smaller 1, MAC 1); give an Accelergy "
                          "ERT (--ert) for the architecture's own")
        return
    tables = _tables(part)
    for level in arch.levels:
        found = tables.get(level.name)
        if found is None:
            part.fail(("tables",), f"has no table for component {level.name}; mapcert needs the energy of every "
                                   "storage level and of the compute unit")
        index, actions = found
        access = actions.get("access")  # one action for both, as some v0.3 ERTs give a register
        read = actions.get("read", actions.get("random_read", access))
        write = actions.get("write", actions.get("update", actions.get("random_write", access)))
        if read is None or write is None:
            part.fail(("tables", index), f"{level.name}: needs read and write (or update, or one access) actions; "
                                         f"it has {', '.join(actions) or 'none'}")
        block = level.block or 1.0
        level.read_energy, level.write_energy = read / block, write / block
        level.energy_note = "ERT" if block == 1 else f"ERT / {block:g} words per access"
    found = tables.get(arch.compute)
    if found is None:
        part.fail(("tables",), f"has no table for the compute unit {arch.compute}")
    index, actions = found
    compute = actions.get("compute", next((e for a, e in actions.items() if a != "leak"), None))
    if compute is None:
        part.fail(("tables", index), f"{arch.compute}: needs a compute action")
    arch.mac_energy, arch.energy_unit = compute, "pJ"
