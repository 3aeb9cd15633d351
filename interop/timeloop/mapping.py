"""Timeloop mappings <-> mapcert mappings of an imported instance.

A Timeloop mapping is a list of targets:

- ``type: temporal`` at a storage component: its loops, ``factors`` (``C1
  M2 ...`` or ``C=1 M=2``) and ``permutation`` (innermost loop first);
- ``type: spatial`` at a spatial container (``inter_NAME_spatial`` as the
  mapper writes it, or ``NAME``), or at the storage component right above
  one: its ``factors``, with the dimensions of the ``permutation`` before
  ``split`` on meshX (mapcert's columns) and the rest on meshY (rows);
- ``type: datatype`` (``bypass``, ``dataspace``): the data spaces a
  component ``keep``s and ``bypass``es.

A storage component the mapping does not name runs no loops; a dimension a
target does not name has factor 1 there. mapcert's order is outermost
first, so a permutation is reversed on the way in and on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from ...formulations.tiling.multilevel.problem import DIMS, MultiLevelMapping, MultiLevelProblem, layer_extent
from ...instances import Issue
from .arch import parse_factors, parse_permutation
from .files import TimeloopError
from .instance import Names

TENSORS = ("inputs", "weights", "outputs")


@dataclass
class Source:
    """Where a mapping came from, for one-line refusals."""

    file: str
    lines: object  # Located

    def fail(self, path: tuple, field: str, message: str):
        raise TimeloopError([Issue(self.file, self.lines.line(path), field, message)])


def _spatial_target(name: str, names: Names, hierarchy) -> tuple[int, str | None] | None:
    """(fan-out index, container) a spatial target names, or None."""
    level_names = [level.name for level in hierarchy.levels]
    for f, fan in enumerate(hierarchy.fanouts):
        containers = [c for c in names.fanouts.get(fan.name, [None, None]) if c]
        candidates = {fan.name, f"inter_{fan.name}_spatial"}
        for c in containers:
            candidates |= {c, f"inter_{c}_spatial"}
        if name in candidates:
            which = next((c for c in containers if name in (c, f"inter_{c}_spatial")), None)
            return f, which
        if name in level_names and level_names.index(name) + 1 == fan.level:
            return f, None
    return None


def from_timeloop(data, problem: MultiLevelProblem, names: Names, source: Source) -> MultiLevelMapping:
    """The mapcert mapping a Timeloop mapping describes; refuses, naming the target and dimension,
    a target not in the architecture, factors that do not multiply out, and a tile that overflows."""
    targets = data.get("mapping") if isinstance(data, dict) else data
    if not isinstance(targets, list):
        source.fail((), "mapping", "a Timeloop mapping is 'mapping:' with a list of targets")
    hier = problem.hierarchy
    level_names = [level.name for level in hier.levels]
    factors = [{d: 1 for d in DIMS} for _ in hier.levels]
    orders: list[list[str] | None] = [None for _ in hier.levels]
    keeps: list[set[str] | None] = [None for _ in hier.levels]
    rows = [{} for _ in hier.fanouts]
    cols = [{} for _ in hier.fanouts]
    origin: dict[tuple, str] = {}  # (kind, index, dim) -> target name, for messages
    where: dict[str, int] = {}  # target name -> index of its loop entry, for the line of a refusal
    kept_at: dict[str, int] = {}  # level name -> index of its keep/bypass entry, likewise
    entry_of: dict[tuple[str, str], int] = {}  # (target, temporal or spatial) -> index of its entry
    for i, target in enumerate(targets):
        path = ("mapping", i)
        if not isinstance(target, dict) or "target" not in target:
            source.fail(path, f"mapping[{i}]", "a target is {target: NAME, type: temporal | spatial | datatype, ...}")
        name, kind = str(target["target"]), str(target.get("type", "temporal"))
        field = f"mapping[{i}] ({name})"
        if name == names.compute:
            source.fail(path + ("target",), field, f"{name} is the compute unit; it holds no loops")
        spatial = _spatial_target(name, names, hier)
        placeholder = spatial is None and name not in level_names and name.startswith("inter_") \
            and name.endswith("_spatial")  # Timeloop's node for a container without a mesh
        if kind in ("datatype", "bypass", "dataspace"):
            if placeholder:
                continue
            if name not in level_names:
                if spatial is not None:
                    continue  # a container keeps nothing; the mapper lists it bypassing everything
                source.fail(path + ("target",), field, _unknown(name, level_names, hier))
            kept = set()
            kept_at.setdefault(name, i)
            for tl in target.get("keep") or []:
                tensor = names.tensor(str(tl))
                if tensor is None:
                    source.fail(path + ("keep",), field, f"{tl} is not a data space of the problem "
                                                         f"({', '.join(names.dataspaces.values())})")
                kept.add(tensor)
            for tl in target.get("bypass") or []:
                if names.tensor(str(tl)) is None:
                    source.fail(path + ("bypass",), field, f"{tl} is not a data space of the problem")
            keeps[level_names.index(name)] = kept
            continue
        if (name, kind) in entry_of:
            source.fail(path + ("target",), field, f"a second {kind} entry for {name} (the first is mapping"
                                                   f"[{entry_of[name, kind]}]); give each target's loops once")
        entry_of[name, kind] = i
        where.setdefault(name, i)
        if kind not in ("temporal", "spatial"):
            source.fail(path + ("type",), field, f"type {kind!r}; a mapping's targets are temporal, spatial or "
                                                 "datatype")
        raw = parse_factors(target.get("factors"), _Failing(source, path + ("factors",), field), ())
        perm = parse_permutation(target.get("permutation"), names.all_dims,
                                 _Failing(source, path + ("permutation",), field), ())
        if placeholder:
            if any(v > 1 for v in raw.values()):
                source.fail(path + ("factors",), field, f"{name}: the architecture has no spatial fan-out there "
                                                        "(its container spreads no mesh)")
            continue
        own = {}
        for tl, value in raw.items():
            if value == 0:
                source.fail(path + ("factors",), field, f"{tl}=0: a mapping gives each loop's trip count; write "
                                                        f"{tl}'s extent instead of 0")
            dim = names.dim(tl)
            if dim is None:
                if tl in names.all_dims and value == 1:
                    continue
                if tl in names.all_dims:  # a dimension of extent 1 (dropped), given a larger factor here
                    source.fail(path + ("factors",), field, f"{tl}={value}, but {tl} has extent 1 in the problem; "
                                                            "is this a mapping of another problem (a batch or "
                                                            "head count of 1 here)?")
                source.fail(path + ("factors",), field, f"{tl} is not a dimension of the problem "
                                                        f"({', '.join(names.all_dims)})")
            own[dim] = value
        if kind == "temporal":
            if name in level_names:
                index = level_names.index(name)
                for dim, value in own.items():
                    factors[index][dim] = value
                    origin[("t", index, dim)] = name
                mine = [names.dim(d) for d in perm if names.dim(d)]
                orders[index] = list(reversed(mine))  # Timeloop lists the innermost loop first
            elif spatial is not None:
                if any(v > 1 for v in own.values()):
                    big = ", ".join(f"{names.dims[d]}{v}" for d, v in own.items() if v > 1)
                    source.fail(path + ("factors",), field, f"{big}: {name} is a spatial container; "
                                                            "it has no temporal loops in mapcert's model")
            else:
                source.fail(path + ("target",), field, _unknown(name, level_names, hier))
            continue
        if spatial is None:
            if name in level_names and all(v == 1 for v in own.values()):
                continue
            source.fail(path + ("target",), field, _unknown(name, level_names, hier)
                        if name not in level_names else f"{name} has no spatial fan-out right below it")
        f, container = spatial
        fan = hier.fanouts[f]
        x_name, y_name = (names.fanouts.get(fan.name) or [None, None])
        split = target.get("split")
        for dim, value in own.items():
            if value == 1:
                continue
            tl = names.dims[dim]
            if split is not None and perm:
                # a partial permutation: the dimensions it leaves out follow it in the shape's order
                full = list(perm) + [d for d in names.all_dims if d not in perm]
                on_x = tl in full[:int(split)]
            elif container is not None and container == x_name and container != y_name:
                on_x = True
            elif container is not None and container == y_name and container != x_name:
                on_x = False
            elif fan.rows == 1 or fan.cols == 1:
                on_x = fan.rows == 1
            else:
                source.fail(path, field, f"{tl}{value}: give a permutation and split to say whether it spreads "
                                         "meshX or meshY")
            if container is not None and x_name != y_name and container != (x_name if on_x else y_name):
                axis = "meshX" if on_x else "meshY"
                source.fail(path + ("factors",), field, f"{tl}{value} on {axis}, which container {container} "
                                                        "does not spread")
            (cols if on_x else rows)[f][dim] = value
            origin[("s", f, dim)] = name
    for f, fan in enumerate(hier.fanouts):
        for axis, used, size, mesh in (("meshX", cols[f], fan.cols, 0), ("meshY", rows[f], fan.rows, 1)):
            if prod(used.values()) > size:
                who = sorted({origin[("s", f, d)] for d in used})
                spread = " x ".join(f"{names.dims[d]}{v}" for d, v in used.items())
                at = next((where[w] for w in who if w in where), None)
                source.fail(("mapping",) if at is None else ("mapping", at, "factors"), f"mapping ({', '.join(who)})",
                            f"{spread} on {axis} needs {prod(used.values())} instances; it has {size}")
    mapping_levels = []
    for index, level in enumerate(hier.levels):
        order = orders[index] or []
        mapping_levels.append({"name": level.name, "factors": factors[index], "order": order})
        if level.chosen:
            if keeps[index] is not None:
                wrong = keeps[index] - level.holds
                if wrong:
                    source.fail(("mapping", kept_at.get(level.name, 0), "keep"), f"mapping ({level.name})",
                                f"keeps {', '.join(sorted(names.dataspaces[t] for t in wrong))}, which the "
                                "architecture bypasses there")
                mapping_levels[-1]["keep"] = sorted(keeps[index])
        elif keeps[index] is not None and index > 0 and keeps[index] != set(level.holds):
            source.fail(("mapping", kept_at.get(level.name, 0), "keep"), f"mapping ({level.name})",
                        f"keeps {', '.join(sorted(names.dataspaces[t] for t in keeps[index])) or 'nothing'}; "
                        f"the architecture fixes {', '.join(sorted(names.dataspaces[t] for t in level.holds))}")
    for dim in DIMS:
        extent = layer_extent(problem.layer, dim)
        total = prod(factors[i][dim] for i in range(len(hier.levels))) * prod(
            rows[f].get(dim, 1) * cols[f].get(dim, 1) for f in range(len(hier.fanouts)))
        if total != extent:
            shown = [f"{origin[k]} {v}" for k, v in
                     [(("t", i, dim), factors[i][dim]) for i in range(len(hier.levels))]
                     + [(("s", f, dim), rows[f].get(dim, 1) * cols[f].get(dim, 1)) for f in range(len(hier.fanouts))]
                     if k in origin and v != 1]
            first = next((origin[k] for k in origin if k[2] == dim), None)
            source.fail(("mapping", where[first]) if first in where else ("mapping",),
                        f"mapping ({names.dims.get(dim, dim)})",
                        f"the factors of {names.dims.get(dim, dim)} multiply to {total}"
                        + (f" ({', '.join(shown)})" if shown else "") + f", its extent is {extent}")
    doc = {"levels": mapping_levels,
           "spatial": {fan.name: {"rows": rows[f], "cols": cols[f]} for f, fan in enumerate(hier.fanouts)}}
    try:
        mapping = MultiLevelMapping.from_dict(doc, hier, problem.layer)
    except ValueError as exc:
        named = next((level.name for level in hier.levels if str(exc).startswith(f"{level.name} ")
                      and level.name in where), None)  # the level the refusal is about: its loops' line
        message = str(exc)
        if named == hier.levels[0].name and "filter window" in message:
            message += ("; mapcert's backing store never does (docs/interop.md): give that loop to a level "
                        "below it")
        source.fail(("mapping",) if named is None else ("mapping", where[named], "factors"),
                    "mapping" if named is None else f"mapping ({named})", message)
    _check_fits(problem, mapping, source, where)
    return mapping


class _Failing:
    """A Part look-alike for the factor and permutation parsers, failing at a mapping path."""

    def __init__(self, source: Source, path: tuple, field: str):
        self.source, self.path, self.field = source, path, field

    def fail(self, path: tuple, message: str):
        self.source.fail(self.path, self.field, message)


def _unknown(name: str, level_names: list[str], hier) -> str:
    containers = [fan.name for fan in hier.fanouts]
    return (f"{name} is not in the architecture (its storage: {', '.join(level_names)}"
            + (f"; its spatial fan-outs: {', '.join(containers)}" if containers else "") + ")")


def _check_fits(problem: MultiLevelProblem, mapping: MultiLevelMapping, source: Source,
                where: dict[str, int]) -> None:
    from ...formulations.tiling.multilevel.cost import evaluate_multilevel
    from ...formulations.tiling.multilevel.problem import kept_problem

    metrics = evaluate_multilevel(problem, mapping)
    if metrics.fits:
        return
    hier = kept_problem(problem, mapping).hierarchy
    for index, level in enumerate(hier.levels):
        if index == 0 or level.fits(metrics.tile_bits[index]):
            continue
        bits = {t: metrics.tile_bits[index][t] for t in level.holds}
        words = ", ".join(f"{t} {b // 8}" for t, b in bits.items())
        room = (f"{level.capacity_bits // 8} words" if level.partition_bits is None else
                ", ".join(f"{t} {b // 8}" for t, b in level.partition_bits.items()))
        source.fail(("mapping", where[level.name]) if level.name in where else ("mapping",),
                    f"mapping ({level.name})", f"the tiles kept at {level.name} overflow it: {words} words, room for {room}")


def one_directive(fan, names: Names) -> bool:
    """Whether fan-out ``fan``'s unrollings go into one Timeloop spatial
    directive (a container that spreads both mesh axes, or a v0.3 tree's
    level), which gives each dimension one factor on one axis."""
    x_name, y_name = names.fanouts.get(fan.name) or [fan.name, fan.name]
    return names.level_targets or x_name == y_name or x_name is None and y_name is None


def two_axis_fanouts(problem: MultiLevelProblem, names: Names) -> list[str]:
    """Fan-outs whose optimum may unroll one dimension on both axes, which
    one Timeloop spatial directive cannot say: both axes wider than one,
    one directive for both, and no ``one_axis`` constraint where the
    dimensions each axis may unroll overlap."""
    constraints = dict(problem.constraints.fanouts)
    out = []
    for f, fan in enumerate(problem.hierarchy.fanouts):
        if fan.rows < 2 or fan.cols < 2 or not one_directive(fan, names):
            continue
        spatial = constraints.get(f)
        if spatial is not None and spatial.one_axis:
            continue
        rows = None if spatial is None else spatial.rows
        cols = None if spatial is None else spatial.cols
        if rows is None or cols is None or set(rows) & set(cols):
            out.append(fan.name)
    return out


def to_timeloop(problem: MultiLevelProblem, mapping: MultiLevelMapping, names: Names) -> dict:
    """A Timeloop mapping (``{mapping: [...]}``) of a mapcert mapping, in the mapper's layout:
    data-space targets first, then the loops, innermost target first."""
    hier = problem.hierarchy
    kept = mapping.keep_sets(hier)
    all_dims = names.all_dims

    def factor_text(values: dict[str, int]) -> str:
        return " ".join(f"{tl}{values.get(names.dim(tl), 1) if names.dim(tl) else 1}" for tl in all_dims)

    def permutation_text(order: list[str]) -> str:
        joined = "".join(order)
        return joined if all(len(d) == 1 for d in order) else " ".join(order)

    targets = []
    for index in reversed(range(len(hier.levels))):
        level = hier.levels[index]
        keep = [names.dataspaces[t] for t in TENSORS if t in kept[index]]
        bypass = [names.dataspaces[t] for t in TENSORS if t not in kept[index]]
        targets.append({"target": level.name, "type": "datatype", "keep": keep, "bypass": bypass})
    spatial_at = {fan.level: f for f, fan in enumerate(hier.fanouts)}
    for index in reversed(range(len(hier.levels) + 1)):
        if index < len(hier.levels):
            loops = mapping.levels[index]
            # only the problem's own dimensions: G is one only for a grouped layer
            inner_first = [names.dims[d] for d in reversed(loops.order) if names.dims.get(d) in all_dims]
            inner_first += [d for d in all_dims if d not in inner_first]
            targets.append({"target": hier.levels[index].name, "type": "temporal",
                            "factors": factor_text(dict(loops.factors)), "permutation": permutation_text(inner_first)})
        if index not in spatial_at:
            continue
        f = spatial_at[index]
        fan, loops = hier.fanouts[f], mapping.fanout(f)
        if fan.rows * fan.cols == 1:  # no array there: nothing spreads, and the architecture names no container
            continue
        x_name, y_name = names.fanouts.get(fan.name) or [fan.name, fan.name]
        if one_directive(fan, names):
            one = x_name or fan.name
            both = [d for d in DIMS if loops.cols.get(d, 1) > 1 and loops.rows.get(d, 1) > 1]
            if both:
                split = ", ".join(f"{d} {loops.cols[d]} on meshX and {loops.rows[d]} on meshY" for d in both)
                raise ValueError(
                    f"the mapping unrolls {split} of container {one}; a Timeloop spatial directive gives each "
                    f"dimension one factor on one axis, so this mapping has no Timeloop form. Give the fan-out "
                    f"one_axis: true (constraints.fanouts.{fan.name}, or constraints.spatial) and solve again")
            x_dims = [names.dims[d] for d in DIMS if loops.cols.get(d, 1) > 1]
            rest = [d for d in all_dims if d not in x_dims]
            values = {d: loops.factor(d) for d in DIMS}
            # a v0.3 tree has no container to name: its fan-out is the storage level's above it
            target = hier.levels[fan.level - 1].name if names.level_targets else f"inter_{one}_spatial"
            targets.append({"target": target, "type": "spatial", "factors": factor_text(values),
                            "permutation": permutation_text(x_dims + rest), "split": len(x_dims)})
            continue
        for container, axis, split in ((y_name, loops.rows, 0), (x_name, loops.cols, len(all_dims))):
            if container is None:
                continue
            order = [names.dims[d] for d in DIMS if axis.get(d, 1) > 1]
            order += [d for d in all_dims if d not in order]
            targets.append({"target": f"inter_{container}_spatial", "type": "spatial",
                            "factors": factor_text(dict(axis)), "permutation": permutation_text(order),
                            "split": split})
    return {"mapping": targets}
