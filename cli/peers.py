"""Peers' formats: ``mapcert import FORMAT ...`` and ``solve --export FORMAT``.

Each format registers an exporter in ``EXPORTERS`` (format name -> function
writing a mapping in that format) and, where its files can be recognised,
a mapping reader in ``MAPPING_READERS`` (used by ``compare --mapping``);
its import command is one command of the ``import`` sub-app.  Nothing here
knows a format's fields: the modules of ``interop/`` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from ..instances import InstanceError

import_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Write a mapcert instance from a peer's files (ZigZag, ...).")


def _zigzag_export(problem, mapping, objective: str, output: Path) -> str:
    from ..interop.zigzag import export_mapping

    value, same, allocation = export_mapping(problem, mapping, objective, output)
    note = "" if same else f" (it reads back to {objective} {value:.6g}, not the optimum's)"
    if allocation:
        note += f"; note: {allocation}"
    return f"wrote {output}: the mapping in ZigZag's format{note}"


def _zigzag_mapping(problem, path: Path, data):
    from ..formulations.tiling.multilevel.problem import MultiLevelProblem
    from ..instances import Issue
    from ..interop.zigzag import is_zigzag_mapping, read_mapping

    if not is_zigzag_mapping(data):
        return None
    if not isinstance(problem, MultiLevelProblem):
        raise InstanceError([Issue(str(path), 1, "(document)", "a ZigZag mapping maps one layer on a memory "
                                                               "hierarchy; this instance is of another kind")])
    from . import err

    notes: list[str] = []
    mapping = read_mapping(problem, path, notes)
    for note in notes:
        err.print(f"note: {path}: {note}; scored: mapcert's reading (docs/interop.md)", markup=False,
                  soft_wrap=True)
    return mapping


EXPORTERS: dict[str, Callable] = {"zigzag": _zigzag_export}
"""Format name -> ``f(problem, mapping, objective, output) -> message``."""

MAPPING_READERS: dict[str, Callable] = {"zigzag": _zigzag_mapping}
"""Format name -> ``f(problem, path, parsed) -> mapping``, or None when the file is not of that format."""


def read_peer_mapping(problem, path: Path, data):
    """A peer's mapping file as a mapping of ``problem``, or None when no
    format recognises it (raises InstanceError for a recognised but bad one)."""
    for reader in MAPPING_READERS.values():
        mapping = reader(problem, path, data)
        if mapping is not None:
            return mapping
    return None


def export(fmt: str, problem, mapping, objective: str, output: Path) -> str:
    """Write ``mapping`` of ``problem`` in format ``fmt``; returns what was done."""
    return EXPORTERS[fmt](problem, mapping, objective, output)


@import_app.command("zigzag")
def zigzag(
    workload: Path = typer.Argument(..., help="ZigZag workload YAML (a list of layers)."),
    hardware: Path = typer.Argument(..., help="ZigZag hardware YAML (memories and operational_array)."),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="ZigZag mapping YAML: its memory_operand_links "
                                                                   "tie the layer's operands to the memories'."),
    layer: Optional[str] = typer.Option(None, "--layer", help="The layer's name or id (when the workload has "
                                                              "several layers with weights)."),
    objective: str = typer.Option("energy", "--objective", help="energy (ZigZag's), latency, edp or "
                                                                "offchip_traffic."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Instance YAML to write (default: print)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> None:
    """A mapcert tiling instance from ZigZag's workload and hardware files (docs/interop.md)."""
    from . import EXIT_OK, _Exit, _fail_input, _refuse_overwrite, out
    from ..interop.zigzag import import_instance, instance_text

    if objective not in ("energy", "latency", "edp", "offchip_traffic"):
        _fail_input([f"--objective: {objective!r} is not one of energy, latency, edp, offchip_traffic"])
    _refuse_overwrite(output, force)
    try:
        instance = import_instance(workload, hardware, mapping, layer, objective)
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    sources = [p for p in (workload, hardware, mapping) if p is not None]
    text = instance_text(instance, sources)
    if output is None:
        print(text, end="")
    else:
        try:
            output.write_text(text)
        except OSError as exc:
            _fail_input([f"{output}: cannot write: {exc.strerror or exc}"])
        out.print(f"wrote {output}: layer {instance['workload']['name']} on {instance['hardware']['name']}",
                  markup=False)
    raise _Exit(EXIT_OK)
