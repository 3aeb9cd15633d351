"""What the three ZigZag readers share: reading a file with the line of
every field, and ZigZag's names for the loop dimensions and operands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..instances import InstanceError, Located, read_document

ZIGZAG_DIMS = {"B": "N", "G": "G", "K": "M", "C": "C", "OY": "P", "OX": "Q", "FY": "R", "FX": "S"}
"""ZigZag's usual loop dimension names and the mapcert dimensions they are (a
workload may name its loops otherwise: its importer reads them by role)."""

MAPCERT_TO_ZIGZAG = {v: k for k, v in ZIGZAG_DIMS.items()}

LAYER_TENSORS = {"I": "inputs", "W": "weights", "O": "outputs"}
"""ZigZag's layer operands (the keys of ``memory_operand_links``)."""

DEFAULT_LINKS = {"O": "O", "I": "I1", "W": "I2"}
"""ZigZag's default ``memory_operand_links``: layer operand -> memory operand."""


def read(path: str | Path) -> tuple[Any, Located]:
    """A ZigZag YAML file and the line of every field.

    Raises
    ------
    InstanceError
        The file cannot be read or is not YAML.
    """
    return read_document(path)


def fail(where: Located) -> None:
    """Raise the problems recorded on ``where`` (one line each)."""
    if where.issues:
        raise InstanceError(where.issues)


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


NAMES_PREFIX = "# zigzag-names: "
"""The header line of an imported instance that keeps the workload's own
loop names (``D`` for a sequence, say), so that a ZigZag mapping written
with them can be read against the instance."""


def names_comment(dims: dict[str, str]) -> str:
    """The header line for a workload's loop names (ZigZag name -> mapcert
    dimension); empty when they are ZigZag's usual ones."""
    if all(ZIGZAG_DIMS.get(name) == dim for name, dim in dims.items()):
        return ""
    return NAMES_PREFIX + json.dumps(dims, separators=(",", ":"))


def names_from_text(text: str) -> dict[str, str]:
    """The loop names an imported instance's header keeps ({} without one)."""
    for line in text.splitlines():
        if line.startswith(NAMES_PREFIX):
            try:
                found = json.loads(line[len(NAMES_PREFIX):])
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
    return {}
