"""Timeloop files -> a mapcert instance (a dict, and YAML text with comments).

The instance names levels after Timeloop's storage components and fan-outs
after its spatial containers (two consecutive containers that spread
different axes become one fan-out named ``X+Y``), so that a mapping
translates name for name. What cannot be carried by the instance's schema
(the problem's own dimension and data-space names, which container gives
which axis) is recorded in :class:`Names`, which the written file keeps in
one comment line (``# timeloop-names: {...}``) for reading and writing
Timeloop mappings later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .arch import ArchRead, read_architecture
from .energy import apply_energies
from .files import Files, Part, read_files
from .legacy_tree import is_container_free
from .problem import ProblemRead, read_problem

MAPCERT_DIMS = ("N", "M", "C", "P", "Q", "R", "S")
NAMES_PREFIX = "# timeloop-names: "
ENERGY_DIGITS = 3
"""Energies are written to a thousandth of their unit (1 fJ for an ERT's pJ): the exact
models scale energies to integers, and a common denominator of 1000 keeps them small.
An energy so small that a thousandth would move it by more than half a percent keeps
three significant digits (at most six decimals) instead: see :func:`written_energy`."""


def written_energy(value: float) -> float:
    """``value`` to a thousandth, or to three significant digits when a thousandth
    would move it by more than 0.5% (a register's 0.00125 pJ per word stays 0.00125,
    not 0.001); never beyond six decimals, so the exact models' integer scale stays
    at most 10**6."""
    rounded = round(value, ENERGY_DIGITS)
    if value and abs(rounded - value) > 0.005 * abs(value):
        rounded = round(float(f"{value:.3g}"), 6)
    return rounded


PRESET_CONTAINERS = {"eyeriss-like": {"array": ["PE_column", "PE"]}}
"""Presets modelled on a Timeloop example architecture: per fan-out, the
example's containers that spread meshX and meshY, so that an exported
mapping targets the example's own containers (its columns, meshX, are the
fan-out's columns; its rows, meshY, the fan-out's rows)."""


@dataclass
class Names:
    """How mapcert's names translate to the Timeloop files'."""

    dims: dict[str, str] = field(default_factory=lambda: {d: d for d in ("N", "G", *MAPCERT_DIMS)})
    """mapcert dimension -> Timeloop dimension."""
    all_dims: list[str] = field(default_factory=lambda: ["C", "M", "R", "S", "N", "P", "Q"])
    """Every dimension of the Timeloop problem, in its order (those of extent 1 included)."""
    dataspaces: dict[str, str] = field(default_factory=lambda: {"inputs": "Inputs", "weights": "Weights",
                                                                "outputs": "Outputs"})
    fanouts: dict[str, list] = field(default_factory=dict)
    """mapcert fan-out -> [container spreading meshX, container spreading meshY] (None: no such axis)."""
    compute: str = "mac"
    level_targets: bool = False
    """A v0.3 tree without containers: a fan-out's spatial loops target the storage level above it."""

    def to_comment(self) -> str:
        return NAMES_PREFIX + json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> "Names | None":
        for line in text.splitlines():
            if line.startswith(NAMES_PREFIX):
                try:
                    return cls(**json.loads(line[len(NAMES_PREFIX):]))
                except (ValueError, TypeError):
                    return None
        return None

    def dim(self, timeloop: str) -> str | None:
        for mine, theirs in self.dims.items():
            if theirs == timeloop:
                return mine
        return None

    def tensor(self, timeloop: str) -> str | None:
        for mine, theirs in self.dataspaces.items():
            if theirs == timeloop:
                return mine
        return None


@dataclass
class Imported:
    """An imported instance: the document, its commented text and the names."""

    instance: dict
    text: str
    names: Names
    label: str


def _translate_factors(factors: dict[str, int], problem: ProblemRead, part: Part, path: tuple) -> dict[str, int]:
    out = {}
    for name, value in factors.items():
        dim = problem.dim_of(name)
        groups = problem.workload.get("groups", 1)
        extent = 1 if dim is None else (groups if dim == "G" else problem.workload["dims"].get(dim, 1)
                                        // (groups if dim in ("M", "C") else 1))  # the problem's own extent
        if value == 0 or value > extent:
            value = extent  # Timeloop: 0 is the whole dimension, and a factor beyond it is cut to it
        if dim is None:
            if value == 1:
                continue  # a dimension of extent 1 that mapcert's layer leaves out
            part.fail(path, f"{name}={value}: {name} is not a dimension of the layer mapcert reads")
        if dim == "G":
            if value == 1:
                continue
            part.fail(path, f"{name}={value}: a fixed factor of the groups (G) is not represented")
        out[dim] = value
    return out


def _translate_permutation(permutation: list[str], problem: ProblemRead) -> list[str]:
    """A Timeloop permutation (innermost first) as a mapcert ``order``
    (outermost first), without the dimensions the layer leaves out."""
    dims = [problem.dim_of(name) for name in reversed(permutation)]
    return [d for d in dims if d is not None]


def build(files: Files) -> Imported:
    """The mapcert instance of merged Timeloop files (problem and architecture, optionally ERT and constraints)."""
    problem = read_problem(files)
    dim_names = problem.dimension_names
    arch, part = read_architecture(files, problem, dim_names)
    apply_energies(arch, files)
    names = Names(dims=dict(problem.dims), all_dims=dim_names, dataspaces=dict(problem.dataspaces),
                  fanouts={fan.name: [fan.x_name, fan.y_name] for fan in arch.fanouts}, compute=arch.compute,
                  level_targets=is_container_free(files.parts["architecture"].value))
    levels, constraint_levels = [], {}
    for index, level in enumerate(arch.levels):
        entry: dict = {"name": level.name}
        if index > 0:
            entry["capacity"] = level.words  # bytes: one 8-bit word per Timeloop word
            if level.holds is not None:
                entry["holds"] = level.holds
            else:
                if level.keep:
                    entry["keep"] = level.keep
                if level.bypass:
                    entry["bypass"] = level.bypass
        entry["read_energy"] = written_energy(level.read_energy)
        entry["write_energy"] = written_energy(level.write_energy)
        for what, exact in (("read_energy", level.read_energy), ("write_energy", level.write_energy)):
            if exact and abs(entry[what] - exact) > 0.005 * exact:  # six decimals cannot hold it within 0.5%
                arch.notes.append(f"{level.name}'s {what} {exact:.3g} {arch.energy_unit} per word is written as "
                                  f"{entry[what]:g} (energies keep at most six decimals); scale the ERT up if "
                                  "it matters")
        if level.bandwidth is not None and index > 0:
            entry["bandwidth"] = level.bandwidth
        levels.append(entry)
        factors = _translate_factors(level.factors, problem, part, level.path + ("constraints", "temporal"))
        if factors:
            if index == 0 and any(factors.get(d, 1) > 1 for d in "RS"):
                where, path = level.factors_from or (part, level.path)  # the constraint's own file and line
                where.fail(path, f"{level.name} fixes a factor of the filter window; mapcert's backing store "
                                 "never splits R and S: give the loop to a level below")
            constraint_levels[level.name] = {"factors": factors}
        order = _translate_permutation(level.permutation, problem)
        if order:
            constraint_levels.setdefault(level.name, {})["order"] = order
    arch_file = Path(files.parts["architecture"].where.file)
    arch_name = arch_file.parent.name if arch_file.stem in ("arch", "architecture") and arch_file.parent.name \
        else arch_file.stem
    hardware: dict = {"name": arch_name,
                      "source": ("Timeloop v0.4 files " if "nodes" in files.parts["architecture"].value
                                 else "Timeloop files (a v0.3 subtree architecture) ")
                                + ", ".join(Path(p).name for p in files.paths),
                      "energy_unit": arch.energy_unit, "mac_energy": written_energy(arch.mac_energy),
                      "latches": False}
    if arch.fanouts:
        hardware["fanouts"] = [{"name": fan.name, "above": arch.levels[fan.above].name
                                if fan.above < len(arch.levels) else "MACs", "x": fan.x, "y": fan.y}
                               for fan in arch.fanouts]
    hardware["levels"] = levels
    constraints: dict = {}
    if constraint_levels:
        constraints["levels"] = constraint_levels
    fanout_constraints = {}
    for fan in arch.fanouts:
        spec: dict = {}
        for axis in ("rows", "cols"):
            allowed = getattr(fan, axis)
            if allowed is None:
                continue
            if allowed and allowed[0] == "*":
                excluded = {problem.dim_of(d) for d in allowed[1:]}
                dims = [d for d in MAPCERT_DIMS if d in problem.dims and d not in excluded]
            else:
                dims = [problem.dim_of(d) for d in allowed]
                dims = [d for d in dims if d in MAPCERT_DIMS]
            spec[axis] = dims
        for axis in ("row_factors", "col_factors"):
            fixed = _translate_factors(getattr(fan, axis), problem, part, fan.meshes[0].path)
            if fixed:
                spec[axis] = fixed
        one_directive = names.level_targets or fan.x_name == fan.y_name or None in (fan.x_name, fan.y_name)
        if fan.x > 1 and fan.y > 1 and one_directive:  # one spatial directive: one axis per dimension
            spec["one_axis"] = True
        if spec:
            fanout_constraints[fan.name] = spec
    if fanout_constraints:
        constraints["fanouts"] = fanout_constraints
    if constraints:
        hardware["constraints"] = constraints
    objective, why = mapper_objective(files)
    instance = {"family": "tiling", "workload": problem.workload, "hardware": hardware, "objective": objective,
                "space": {"halo": True}, "solver": {"method": "cpsat", "time_limit": 60}}
    text = render(instance, files, problem, arch, names)
    if why:
        text = text.replace("\nobjective: ", f"\n# objective: {why}\nobjective: ", 1)
    return Imported(instance=instance, text=text, names=names, label=" ".join(files.paths))


METRIC_OBJECTIVES = {"edp": "edp", "energy": "energy", "delay": "latency", "cycles": "latency",
                     "last_level_accesses": "offchip_traffic"}
"""Timeloop's ``mapper.optimization_metrics`` and the objective each is in mapcert."""


def mapper_objective(files: Files) -> tuple[str | list[str], str | None]:
    """The objectives a ``mapper:`` part asks for, in Timeloop's order (it
    ranks mappings by the first metric, then the next), with a sentence
    saying so, or energy and None. A gap to a mapper's output is only
    meaningful in the objective that mapper optimized. Metrics after the
    first that mapcert cannot rank by (EDP, one without a mapcert
    objective) are left out and said."""
    part = files.get("mapper")
    metrics, key = None, "optimization_metrics"
    if part is not None and isinstance(part.value, dict):
        # the mapper reads the hyphenated key, timeloopfe's spec the plural, its processed file the singular
        for key in ("optimization_metrics", "optimization-metrics", "optimization_metric"):
            if key in part.value:
                metrics = part.value[key]
                break
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list) or not metrics:
        return "energy", None
    first = str(metrics[0]).lower()
    if first not in METRIC_OBJECTIVES:
        return "energy", f"energy (the mapper's first optimization metric, {metrics[0]}, has no mapcert objective)"
    objectives = [METRIC_OBJECTIVES[first]]
    dropped = []
    for metric in metrics[1:]:
        name = METRIC_OBJECTIVES.get(str(metric).lower())
        if name is None or name == "edp" or name in objectives:
            dropped.append(str(metric))
        else:
            objectives.append(name)
    why = f"from mapper.{key} {list(map(str, metrics))}"
    if dropped:
        why += f" ({', '.join(dropped)} left out: no mapcert objective ranks ties by it)"
    return (objectives if len(objectives) > 1 else objectives[0]), why


def import_timeloop(paths: list[Path]) -> Imported:
    """Read Timeloop files (architecture, problem, and optionally ERT and constraints) into a mapcert instance.

    Parameters
    ----------
    paths
        The files, in any order; their top-level keys are merged as Timeloop merges them.

    Returns
    -------
    Imported
        The instance document, its commented YAML text and the name translation.

    Raises
    ------
    InstanceError
        One line naming the file, line, node and reason, for anything that cannot be read or represented.
    """
    return build(read_files(paths))


def render(instance: dict, files: Files, problem: ProblemRead, arch: ArchRead, names: Names) -> str:
    """The instance as commented YAML: where each value came from, and which are defaults."""
    lines = ["# mapcert instance imported from Timeloop files:"]
    lines += [f"#   {p}" for p in files.paths]
    w = problem.workload
    renamed = [f"{mine}={theirs}" for mine, theirs in problem.dims.items() if mine != theirs]
    lines.append(f"# workload: problem shape {problem.shape_name or '(built-in CNN-Layer)'}"
                 + (f"; dimensions renamed (mapcert=Timeloop) {', '.join(renamed)}" if renamed else ""))
    if problem.dropped:
        lines.append(f"#   dimensions of extent 1 left out: {', '.join(problem.dropped)}")
    lines.append("#   precision: every tensor 8 bits and each level's capacity in bytes = its Timeloop word count,")
    lines.append("#   so capacities count words as Timeloop does (depth * width / (cluster_size * datawidth)).")
    lines.append(f"#   off-chip traffic is then in words; {w['op']} layer.")
    lines.append("# hardware, level by level:")
    for level in arch.levels:
        size = ("backing store" if level.words is None
                else f"{level.words} word{'' if level.words == 1 else 's'}")
        kept = "keeps every tensor" if level.words is None else ("holds " + (", ".join(level.holds) or "nothing")
                                                                 + (" (!Parallel: its siblings keep the rest)"
                                                                    if level.parallel else "")) if level.holds is not None else (
            "keep or bypass chosen by the mapping" + (f" (keeps {', '.join(level.keep)})" if level.keep else "")
            + (f" (bypasses {', '.join(level.bypass)})" if level.bypass else ""))
        energy = "energy: DEFAULT for its size" if level.energy_note == "default" else f"energy: {level.energy_note}"
        lines.append(f"#   {level.name} ({level.cls}): {size}; {kept}; {energy}")
        if level.words is None and level.attributes.get("depth") is not None:
            lines.append("#     its depth is not a limit: the backing store holds every tensor, as in Timeloop")
        if level.permutation:
            lines.append(f"#     its temporal permutation {''.join(level.permutation)} (innermost first) is "
                         f"order: [{', '.join(_translate_permutation(level.permutation, problem))}] (outermost first)")
    for fan in arch.fanouts:
        parts = []
        if fan.x_name:
            parts.append(f"meshX {fan.x} of {fan.x_name}")
        if fan.y_name:
            parts.append(f"meshY {fan.y} of {fan.y_name}")
        lines.append(f"#   fan-out {fan.name}: {' and '.join(parts)}; multicast and spatial reduction on "
                     "(Timeloop's defaults)")
    lines.append(f"#   compute: {arch.compute} ({arch.compute_cls}), mac_energy "
                 + ("DEFAULT 1" if arch.energy_unit == "MAC" else "from the ERT"))
    if arch.energy_unit == "pJ":
        lines.append("# energies: pJ per word from the ERT, to 0.001 pJ, or to three significant digits when "
                     "smaller (at most six decimals)")
    lines.append("# space: halo reuse on, as Timeloop counts it: the next input tile along a level's innermost "
                 "input loop reads only the rows it does not share with the current one")
    lines.append("# model: latches: false, as Timeloop counts: every MAC reads its input and weight from the "
                 "innermost level that keeps them and reads and updates its partial sum there (true: each MAC "
                 "unit holds its last operands and reads a level only when one changes)")
    for note in arch.notes:
        lines.append(f"# note: {note}")
    lines.append(names.to_comment())
    body = yaml.safe_dump(instance, sort_keys=False, default_flow_style=None, width=110)
    return "\n".join(lines) + "\n" + body
