"""Peers' formats on the command line: ``mapcert import FORMAT ...``, the
peers' files ``solve`` and ``compare`` accept directly, their mappings in
``compare --mapping`` and ``solve --export FORMAT PATH``.

Each format is one entry of three tables: ``EXPORTERS`` (write an optimum
in the format), ``MAPPING_READERS`` (recognise and translate a mapping
file) and ``FILE_KINDS`` (recognise the format's problem files, so that
``mapcert solve arch.yaml problem.yaml`` imports them in memory, as
``import`` would write them). Nothing here knows a format's fields: the
modules of ``interop/`` do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import typer
import yaml

from ..instances import InstanceError, load_text, template_hint
from . import _Exit, _fail_input, _refuse_overwrite, err, out

import_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                         help="Read another mapper's files (Timeloop v0.4 or v0.3, ZigZag) into a mapcert instance "
                              "(docs/interop.md).")


@dataclass
class Loaded:
    """A problem, the file named first, and, when it came from (or was
    imported from) Timeloop files, the names that translate its mappings."""

    problem: object
    path: Path
    names: object | None = None
    """Timeloop's names (``Names``), or a ZigZag workload's own loop names (a dict)."""
    mappings: tuple[Path, ...] = ()
    """Mapping files given among the peer's files: ``compare`` scores them,
    ``solve`` says it does not."""


# ---------------------------------------------------------------- Timeloop

def _timeloop_imported(paths: list[Path]):
    from ..interop.timeloop import import_timeloop

    try:
        imported = import_timeloop(paths)
    except InstanceError as exc:
        _fail_input([str(exc.issues[0])] if exc.issues else ["cannot import the Timeloop files"])
    problem_files = [p for p in paths if _gives_key(p, "problem")]
    arch_files = [p for p in paths if _gives_key(p, "architecture")]

    def locate(field: str) -> str | None:
        """``file:line: problem.instance.NAME`` of a layer dimension mapcert refuses."""
        from ..interop.timeloop.files import read_yaml

        dim = re.fullmatch(r"workload\.dims\.([A-Z])", field)
        name = imported.names.dims.get(dim.group(1)) if dim else None
        for path in problem_files if name else ():
            try:
                data, where = read_yaml(path)
            except Exception:  # noqa: BLE001 (it was read once already; no line is no worse than before)
                return None
            if isinstance(data, dict) and "problem" in data:
                return f"{path}:{where.line(('problem', 'instance', name))}: problem.instance.{name}"
        return None

    return imported, _load_imported(imported.text, " ".join(str(p) for p in paths),
                                    {"workload": " ".join(map(str, problem_files)),
                                     "hardware": " ".join(map(str, arch_files))}, locate)


def _gives_key(path: Path, key: str) -> bool:
    """Whether the YAML file ``path`` has the top-level ``key`` (read loosely: a
    line that starts with it)."""
    try:
        return any(line.startswith(f"{key}:") for line in path.read_text().splitlines())
    except (OSError, UnicodeDecodeError):
        return False


def _load_imported(text: str, files: str, sources: dict[str, str] | None = None, locate=None):
    """The problem of an instance imported in memory. A value the peer's
    files give but mapcert refuses (an absurd size, say) is reported against
    the file it came from (``sources``: the peer's files of the workload
    and of the hardware), naming the field of the mapcert instance and,
    for a level, the level's name in the peer's file."""
    try:
        return load_text(text, "<imported>")
    except InstanceError as exc:
        first = exc.issues[0] if exc.issues else None
        what = f"{first.field}: {first.message}" if first is not None else str(exc)
        level = re.search(r"levels\[(\d+)\]", what)
        if level is not None:  # name the level: the peer's file calls it that
            try:
                name = yaml.safe_load(text)["hardware"]["levels"][int(level.group(1))]["name"]
                what = f"level {name} ({what})"
            except (KeyError, IndexError, TypeError, yaml.YAMLError):
                pass
        field = first.field if first is not None else ""
        located = locate(field) if locate is not None and first is not None else None
        if located is not None:  # the peer's own file, line and field
            _fail_input([f"{located}: {first.message}"])
        where = next((given for section, given in (sources or {}).items() if given and field.startswith(section)),
                     files)
        _fail_input([f"{where}: mapcert cannot take what these files give, at the imported instance's {what}"])


@import_app.command("timeloop")
def import_timeloop_command(
    files: list[Path] = typer.Argument(..., help="ARCH.yaml PROBLEM.yaml (Timeloop v0.4 or v0.3 tree; more files are merged by "
                                                 "top-level key, as Timeloop merges them)."),
    ert: Optional[Path] = typer.Option(None, "--ert", help="Accelergy energy reference table (ERT.yaml); without "
                                                           "it, documented default energies are written."),
    constraints: Optional[list[Path]] = typer.Option(None, "--constraints",
                                                     help="Constraint files (targets lists); repeatable."),
    objective: Optional[str] = typer.Option(None, "--objective",
                                            help="energy, latency, edp or offchip_traffic (default: what a mapper "
                                                 "file's optimization_metrics ask for, else energy)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Instance YAML to write (default: print)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> None:
    """Write the mapcert instance of a Timeloop architecture and problem (commented: where each value came from,
    which are defaults)."""
    if objective is not None:
        _check_objective(objective)
    paths = list(files) + ([ert] if ert else []) + list(constraints or [])
    _refuse_overwrite(output, force, paths)
    imported, _ = _timeloop_imported(paths)  # refuses what mapcert would not load
    text = imported.text if objective is None else re.sub(r"(?m)^objective: .*$", f"objective: {objective}",
                                                          imported.text, count=1)
    _write(output, text, "")
    raise _Exit(0)


def _timeloop_names(loaded: Loaded):
    from ..interop.timeloop import Names

    if loaded.names is not None and not isinstance(loaded.names, dict):  # a dict: a ZigZag workload's names
        return loaded.names
    try:
        found = Names.from_text(loaded.path.read_text())
    except OSError:
        found = None
    if found is not None:
        return found
    names = Names()  # an instance written by hand: Timeloop's CNN-Layer names, levels and fan-outs by their own
    if getattr(getattr(loaded.problem, "layer", None), "groups", 1) > 1:
        names.all_dims = ["G", *names.all_dims]
    hierarchy = getattr(loaded.problem, "hierarchy", None)
    if hierarchy is not None:  # a preset after a Timeloop example: that example's containers
        from ..interop.timeloop.instance import PRESET_CONTAINERS

        containers = PRESET_CONTAINERS.get(hierarchy.name, {})
        names.fanouts = {fan.name: containers[fan.name] for fan in hierarchy.fanouts if fan.name in containers}
    return names


def _timeloop_mapping(loaded: Loaded, path: Path, data):
    """A Timeloop mapping file (a ``mapping:`` list of targets) as a mapping of the loaded problem."""
    if not (isinstance(data, dict) and isinstance(data.get("mapping"), list)):
        return None
    from ..interop.timeloop import Source, TimeloopError, mapping_from_timeloop
    from ..interop.timeloop.files import read_yaml

    if not hasattr(loaded.problem, "hierarchy"):
        _fail_input([f"{path}:1: mapping: a Timeloop mapping maps one layer on a memory hierarchy; this instance "
                     "is of another kind"])
    try:
        document, where = read_yaml(path)
        return mapping_from_timeloop(document, loaded.problem, _timeloop_names(loaded), Source(str(path), where))
    except TimeloopError as exc:
        _fail_input([str(exc.issues[0])])


def _timeloop_export(loaded: Loaded, mapping, objective: str, output: Path) -> str:
    from ..interop.timeloop import mapping_to_timeloop

    try:
        document = mapping_to_timeloop(loaded.problem, mapping, _timeloop_names(loaded))
    except ValueError as exc:
        _fail_input([f"--export timeloop: {output} not written: {exc}"])
    text = ("# Timeloop mapping written by mapcert: data-space targets, then loops innermost first;\n"
            "# permutations list the innermost loop first; spatial dimensions before `split` go on meshX.\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=110))
    _write(output, text, None)
    return f"wrote {output}: the mapping in Timeloop's format"


def _is_timeloop_file(path: Path) -> bool:
    from ..interop.timeloop import is_timeloop_file

    return is_timeloop_file(path)


def _load_timeloop(files: list[Path]) -> Loaded:
    from ..interop.timeloop.files import is_timeloop_mapping_file

    mappings = tuple(f for f in files if is_timeloop_mapping_file(f))
    rest = [f for f in files if f not in mappings]
    if not rest:
        _fail_input([f"{files[0]}:1: mapping: a Timeloop mapping alone; give the architecture and problem too "
                     "(ARCH.yaml PROBLEM.yaml [ERT.yaml] --mapping MAPPING.yaml)"])
    imported, problem = _timeloop_imported(rest)
    return Loaded(problem, rest[0], imported.names, mappings)


# ---------------------------------------------------------------- ZigZag

@import_app.command("zigzag")
def import_zigzag_command(
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
    from ..interop.zigzag import import_instance, instance_text

    _check_objective(objective)
    _refuse_overwrite(output, force, [workload, hardware] + ([mapping] if mapping else []))
    for given, expected in ((workload, "workload"), (hardware, "hardware")):
        kind = _zigzag_kind(given) if given.exists() else None
        if kind is not None and kind != expected:
            _fail_input([f"{given}:1: (document): a ZigZag {kind} file where the {expected} goes; the order is "
                         "WORKLOAD.yaml HARDWARE.yaml [--mapping MAPPING.yaml]"])
    notes: list[str] = []
    names: dict[str, str] = {}
    try:
        instance = import_instance(workload, hardware, mapping, layer, objective, notes, names)
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    sources = [p for p in (workload, hardware, mapping) if p is not None]
    text = instance_text(instance, sources, names, notes)
    _load_imported(text, f"{hardware} (imported with {workload})",  # refuses what mapcert would not load
                   {"workload": str(workload), "hardware": str(hardware)})
    _say_precision_notes(instance)
    for note in notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
    _write(output, text, f": layer {instance['workload']['name']} on {instance['hardware']['name']}")
    raise _Exit(0)


def _say_precision_notes(instance: dict) -> None:
    """Where mapcert's per-element energy charges a ZigZag memory's narrower
    operands more than ZigZag does (``zigzag.precision_notes``)."""
    from ..interop.zigzag import precision_notes

    for note in precision_notes(instance):
        err.print(f"note: {note}", markup=False, soft_wrap=True)


def _zigzag_names(loaded: Loaded) -> dict[str, str] | None:
    """The workload's own loop names: of ZigZag files given directly, or
    kept in the header of an instance the import wrote (None: ZigZag's
    usual names)."""
    from ..interop.zigzag_common import names_from_text

    if isinstance(loaded.names, dict):
        return loaded.names or None
    try:
        return names_from_text(loaded.path.read_text()) or None
    except (OSError, UnicodeDecodeError):
        return None


def _zigzag_mapping(loaded: Loaded, path: Path, data):
    from ..interop.zigzag import is_zigzag_mapping, read_mapping

    if not is_zigzag_mapping(data):
        return None
    if not hasattr(loaded.problem, "hierarchy"):
        _fail_input([f"{path}:1: (document): a ZigZag mapping maps one layer on a memory hierarchy; this instance "
                     "is of another kind"])
    notes: list[str] = []
    try:
        mapping = read_mapping(loaded.problem, path, notes, _zigzag_names(loaded))
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    for note in notes:
        err.print(f"note: {path}: {note}; scored: mapcert's reading (docs/interop.md)", markup=False,
                  soft_wrap=True)
    return mapping


def _zigzag_export(loaded: Loaded, mapping, objective: str, output: Path) -> str:
    from ..interop.zigzag import export_mapping

    try:
        value, same, allocation = export_mapping(loaded.problem, mapping, objective, output, _zigzag_names(loaded))
    except InstanceError as exc:
        _fail_input([str(i) for i in exc.issues])
    note = "" if same else f" (it reads back to {objective} {value:.6g}, not the optimum's)"
    if allocation:
        note += f"; note: {allocation}"
    return f"wrote {output}: the mapping in ZigZag's format{note}"


def _zigzag_kind(path: Path) -> str | None:
    """"workload", "hardware" or "mapping" for a ZigZag file, None otherwise."""
    from ..interop.zigzag import is_zigzag_mapping

    try:
        data = yaml.safe_load(path.read_text())
    except Exception:  # noqa: BLE001 (not readable: the ordinary loader says why)
        return None
    if isinstance(data, dict) and "memories" in data and "operational_array" in data:
        return "hardware"
    if isinstance(data, list) and data and all(isinstance(x, dict) and "equation" in x for x in data):
        return "workload"
    return "mapping" if is_zigzag_mapping(data) else None


def _load_zigzag(files: list[Path]) -> Loaded:
    from ..interop.zigzag import import_instance, instance_text

    kinds: dict[str, Path] = {}
    for f in files:
        kind = _zigzag_kind(f)
        if kind in kinds:
            _fail_input([f"{f}:1: (document): a second ZigZag {kind} file ({kinds[kind]} is the first)"])
        kinds[kind] = f
    if "workload" not in kinds or "hardware" not in kinds:
        _fail_input([f"{files[0]}:1: (document): ZigZag files are read as WORKLOAD.yaml HARDWARE.yaml "
                     "[MAPPING.yaml]; a workload or hardware file is missing"])
    notes: list[str] = []
    names: dict[str, str] = {}
    try:
        instance = import_instance(kinds["workload"], kinds["hardware"], kinds.get("mapping"), notes=notes,
                                   names=names)
    except InstanceError as exc:
        issues = [str(i) for i in exc.issues]
        _fail_input([i.replace("choose one with --layer", "choose one with `mapcert import zigzag ... --layer`")
                     for i in issues])
    problem = _load_imported(instance_text(instance, list(files), names), f"{kinds['hardware']} (imported with "
                             f"{kinds['workload']})", {"workload": str(kinds["workload"]),
                                                       "hardware": str(kinds["hardware"])})
    _say_precision_notes(instance)
    for note in notes:  # what the import leaves out; a mapping file given here is scored, not left out
        if "only the memory_operand_links" not in note:
            err.print(f"note: {note}", markup=False, soft_wrap=True)
    return Loaded(problem, files[0], names=names, mappings=(kinds["mapping"],) if "mapping" in kinds else ())


# ---------------------------------------------------------------- the tables

EXPORTERS: dict[str, Callable] = {"timeloop": _timeloop_export, "zigzag": _zigzag_export}
"""Format name -> ``f(loaded, mapping, objective, output) -> what was written``."""

MAPPING_READERS: dict[str, Callable] = {"timeloop": _timeloop_mapping, "zigzag": _zigzag_mapping}
"""Format name -> ``f(loaded, path, parsed) -> mapping``, or None when the file is not of that format."""

FILE_KINDS: dict[str, tuple[Callable, Callable]] = {"timeloop": (_is_timeloop_file, _load_timeloop),
                                                    "zigzag": (lambda p: _zigzag_kind(p) is not None, _load_zigzag)}
"""Format name -> (whether a file is one of the format's, the problem of a set of them)."""


def _refuse_template(path: Path) -> None:
    """Exit 2 with the YAML error and what to do when ``path`` is a Jinja2
    template that does not parse as YAML (nothing when it is not one)."""
    text = path.read_text(errors="replace")
    if not template_hint(text):
        return
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        try:
            load_text(text, str(path))
        except InstanceError as exc:
            _fail_input([str(i) for i in exc.issues])


def load_files(files: list[Path], load_instance) -> Loaded:
    """The problem of ``solve`` / ``compare``'s files: one mapcert instance,
    or a peer's files (every one of one format) imported in memory."""
    for f in files:
        if not f.exists():
            _fail_input([f"{f}: cannot read: No such file or directory"])  # as an instance's own message
        if f.is_dir():
            _fail_input([f"{f}: is a directory; give an instance file (YAML), or a peer's files"])
    for name, (recognises, load) in FILE_KINDS.items():
        if any(recognises(f) for f in files):
            strangers = [f for f in files if not recognises(f)]
            for stranger in strangers:  # a template among a peer's files: say so, not "another format"
                _refuse_template(stranger)
            if strangers:
                known = next(f for f in files if recognises(f))
                _fail_input([f"{strangers[0]}:1: (document): not a {name} file, while {known} is one; a peer's "
                             "files are all of one format, and a mapcert instance is given alone"])
            return load(files)
    if len(files) > 1:
        _fail_input([f"{files[1]}:1: (document): one mapcert instance at a time; several files are read only as "
                     f"a peer's ({' or '.join(FILE_KINDS)})"])
    return Loaded(load_instance(files[0]), files[0])


def read_peer_mapping(loaded: Loaded, path: Path, data):
    """A peer's mapping file as a mapping of the loaded problem, or None when
    no format recognises it (a recognised but bad one exits 2, one line)."""
    for reader in MAPPING_READERS.values():
        mapping = reader(loaded, path, data)
        if mapping is not None:
            return mapping
    return None


def check_export(fmt: str, family, loaded: Loaded, output: Path, force: bool, inputs: list[Path] = ()) -> None:
    """Refuse an unknown format, an instance that is not one layer on a
    hierarchy, a space whose optimum the format may not hold, or an existing
    file, before anything is solved."""
    problem = loaded.problem
    _refuse_overwrite(output, force, [loaded.path, *loaded.mappings, *inputs])
    if fmt not in EXPORTERS:
        _fail_input([f"--export: unknown format {fmt!r}; one of {', '.join(EXPORTERS)}"])
    if family.parts(problem) is None and hasattr(problem, "buffer") and hasattr(problem, "layer"):
        _fail_input([f"--export {fmt}: this instance is solved by the two-level model (DRAM and one buffer), "
                     "which does not export; add `mac_energy: 1` under hardware: and the same levels and objective "
                     "are solved by the hierarchy model, whose mapping exports"])
    if family.parts(problem) is not None or not hasattr(problem, "hierarchy"):
        _fail_input([f"--export {fmt}: writes the mapping of one layer on a memory hierarchy (a tiling instance "
                     "with levels, or a peer's files); this instance is "
                     + ("a network: give one layer" if family.parts(problem) is not None else f"of the {family.name} "
                        "family")])
    if getattr(problem, "factors", "divisors") != "divisors":
        _fail_input([f"--export {fmt}: a {fmt} mapping takes trip counts that multiply to each dimension's extent, "
                     "and space: {factors: any} allows partial tiles; solve with factors: divisors to export"])
    if fmt == "zigzag":
        from ..interop.zigzag_hardware import fanout_dims

        foreign = [fan.name for fan in problem.hierarchy.fanouts if fanout_dims(fan.name) is None]
        if foreign:
            _fail_input([f"--export zigzag: fan-out {foreign[0]} is not named after ZigZag array dimensions (D1, "
                         "D1xD2), so its unrollings have no place in a ZigZag spatial_mapping; export to ZigZag "
                         "takes an instance imported from ZigZag files (or with fan-outs so named)"])
    if fmt == "timeloop":
        from ..interop.timeloop.mapping import two_axis_fanouts

        both = two_axis_fanouts(problem, _timeloop_names(loaded))
        if both:
            _fail_input([f"--export timeloop: fan-out {both[0]} may unroll one dimension on both its axes, and a "
                         "Timeloop spatial directive gives each dimension one factor on one axis; add `one_axis: "
                         f"true` to constraints.fanouts.{both[0]} (or constraints.spatial) to export, at a cost the "
                         "certificate then proves, or solve without --export"])


def export(fmt: str, loaded: Loaded, mapping, objective: str, output: Path) -> str:
    """Write ``mapping`` of the loaded problem in format ``fmt``; returns what was done."""
    return EXPORTERS[fmt](loaded, mapping, objective, output)


def _check_objective(objective: str) -> None:
    if objective not in ("energy", "latency", "edp", "offchip_traffic"):
        _fail_input([f"--objective: {objective!r} is not one of energy, latency, edp, offchip_traffic"])


def _write(output: Path | None, text: str, what: str | None) -> None:
    """Print ``text``, or write it to ``output`` (and say so unless ``what`` is None)."""
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text)
    except OSError as exc:
        _fail_input([f"{output}: cannot write: {exc.strerror or exc}"])
    if what is not None:
        out.print(f"wrote {output}{what}", markup=False)
