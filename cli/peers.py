"""``mapcert import FORMAT ...`` and the peers' files ``solve`` and ``compare`` accept directly.

One sub-command per format of ``interop.FORMATS``; each writes an ordinary
mapcert instance. ``solve`` and ``compare`` also take the peer's files in
place of an instance (``mapcert solve arch.yaml problem.yaml``): they are
imported in memory, as ``import`` would write them. Timeloop mappings are
recognised by their ``mapping:`` list of targets wherever ``compare
--mapping`` takes a solution, and ``solve --export timeloop FILE`` writes the
optimum as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
import yaml

from ..instances import InstanceError, load_text
from . import _Exit, _fail_input, _refuse_overwrite, out

import_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Read another mapper's files into a mapcert instance (docs/interop.md).")


@dataclass
class Loaded:
    """A problem and, when it came from (or was imported from) Timeloop files, the names that translate."""

    problem: object
    names: object | None
    timeloop: bool


def _imported(paths: list[Path]):
    from ..interop.timeloop import import_timeloop

    try:
        imported = import_timeloop(paths)
        problem = load_text(imported.text, imported.label)
    except InstanceError as exc:
        _fail_input([str(exc.issues[0])] if exc.issues else ["cannot import the Timeloop files"])
    return imported, problem


@import_app.command("timeloop")
def import_timeloop_command(
    files: list[Path] = typer.Argument(..., help="ARCH.yaml PROBLEM.yaml (Timeloop v0.4; more files are merged by "
                                                 "top-level key, as Timeloop merges them)."),
    ert: Optional[Path] = typer.Option(None, "--ert", help="Accelergy energy reference table (ERT.yaml); without "
                                                           "it, documented default energies are written."),
    constraints: Optional[list[Path]] = typer.Option(None, "--constraints",
                                                     help="Constraint files (targets lists); repeatable."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Instance YAML to write (default: print)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> None:
    """Write the mapcert instance of a Timeloop architecture and problem (commented: where each value came from,
    which are defaults)."""
    _refuse_overwrite(output, force)
    paths = list(files) + ([ert] if ert else []) + list(constraints or [])
    imported, _ = _imported(paths)
    if output is None:
        print(imported.text, end="")
        raise _Exit(0)
    try:
        output.write_text(imported.text)
    except OSError as exc:
        _fail_input([f"{output}: cannot write: {exc.strerror or exc}"])
    out.print(f"wrote {output}", markup=False)
    raise _Exit(0)


def is_peer_input(files: list[Path]) -> bool:
    """Whether the files of ``solve`` / ``compare`` are a peer's rather than one mapcert instance."""
    from ..interop.timeloop import is_timeloop_file

    return len(files) > 1 or any(is_timeloop_file(f) for f in files)


def load_files(files: list[Path], load_instance) -> Loaded:
    """The problem of ``solve`` / ``compare``'s files: one mapcert instance, or Timeloop files imported."""
    if not is_peer_input(files):
        return Loaded(load_instance(files[0]), None, False)
    from ..interop.timeloop import is_timeloop_file

    for f in files:
        if not f.exists():
            _fail_input([f"{f}: cannot read: no such file"])
        if not is_timeloop_file(f):
            _fail_input([f"{f}:1: (document): several files are read as Timeloop files (architecture, problem, "
                         "ERT, constraints); this one is none (a mapcert instance is given alone)"])
    imported, problem = _imported(files)
    return Loaded(problem, imported.names, True)


def _names_of(loaded: Loaded, instance: Path):
    from ..interop.timeloop import Names

    if loaded.names is not None:
        return loaded.names
    try:
        found = Names.from_text(instance.read_text())
    except OSError:
        found = None
    if found is not None:
        return found
    names = Names()  # an instance written by hand: Timeloop's CNN-Layer names, levels and fan-outs by their own
    if getattr(getattr(loaded.problem, "layer", None), "groups", 1) > 1:
        names.all_dims = ["G", *names.all_dims]
    return names


def is_timeloop_mapping(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("mapping"), list)


def read_timeloop_mapping(path: Path, loaded: Loaded, instance: Path):
    """A Timeloop mapping file as a mapping of the loaded problem, or a one-line exit 2."""
    from ..interop.timeloop import Source, TimeloopError, mapping_from_timeloop
    from ..interop.timeloop.files import read_yaml

    try:
        data, where = read_yaml(path)
        return mapping_from_timeloop(data, loaded.problem, _names_of(loaded, instance), Source(str(path), where))
    except TimeloopError as exc:
        _fail_input([str(exc.issues[0])])


def export_timeloop(path: Path, loaded: Loaded, instance: Path, problem, mapping) -> None:
    """Write ``mapping`` as a Timeloop mapping file."""
    from ..interop.timeloop import mapping_to_timeloop

    document = mapping_to_timeloop(problem, mapping, _names_of(loaded, instance))
    text = ("# Timeloop mapping written by mapcert: data-space targets, then loops innermost first;\n"
            "# permutations list the innermost loop first; spatial dimensions before `split` go on meshX.\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=110))
    try:
        path.write_text(text)
    except OSError as exc:
        _fail_input([f"{path}: cannot write: {exc.strerror or exc}"])
