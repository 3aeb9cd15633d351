"""Timeloop's v0.3 architecture tree (``subtree`` / ``local``) as a v0.4 node list.

The older tree is what hand-written Timeloop v0.3 designs use, and what
timeloopfe still writes for Timeloop itself (``parsed-processed-input.yaml``,
marked ``dumped_by_timeloop_front_end``). Timeloop reads it this way
(``Topology::ParseTreeSpecs`` and ``BufferLevel::ParseSpecs``):

- the walk starts at the root and goes down each node's ``subtree``, which
  holds one node at most;
- a name may carry an instance range, ``PE[0..167]`` (168 instances): a
  node's range multiplies the instances of everything below it, a
  component's its own;
- a node's ``local`` components come outermost first, and a deeper node's
  lie below them;
- a component has ``instances`` (else the product of the ranges), laid out
  as ``meshX`` columns (all of them when not given) by ``meshY`` rows;
- two consecutive levels are joined by a fan-out, the ratio of their meshes
  axis by axis.

:func:`legacy_nodes` returns the v0.4 nodes the walker of ``arch.py``
reads: each component as a ``!Component`` and, wherever the mesh grows, a
``!Container`` with ``spatial: {meshX, meshY}`` of the growth. A container
is named after what grows the mesh: timeloopfe's placeholder
``inter_NAME_spatial`` just above (NAME, so constraints that target the
placeholder reach it), else the tree node whose range starts there, else
``COMPONENT_array`` (never a level's name: a spatial target naming a level
means the fan-out below it). The compute unit goes last, wherever its
``local`` list names it, as Timeloop places it. Every node carries
``ORIGIN``, the path of the YAML it comes from, so a refusal names the
line the user wrote.
"""

from __future__ import annotations

import re

from .files import TAG, Part

ORIGIN = "__origin__"
"""Key of a converted node: the path, in the architecture's YAML, of what it was made from."""

_RANGE = re.compile(r"^(.*?)\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]\s*$")
_PLACEHOLDER = re.compile(r"^inter_(.+)_spatial$")


def split_range(name: str, part: Part, path: tuple) -> tuple[str, int]:
    """``PE[0..167]`` -> (``PE``, 168); a name without a range counts once."""
    match = _RANGE.match(name)
    if match is None:
        if "[" in name:
            part.fail(path, f"{name!r}: an instance range is written NAME[FIRST..LAST], as PE[0..167]")
        return name.strip(), 1
    first, last = int(match.group(2)), int(match.group(3))
    if first < 0:
        part.fail(path, f"{name!r}: an instance range starts at 0 or more")
    if last < first:
        part.fail(path, f"{name!r}: the range ends before it starts")
    return match.group(1).strip(), last - first + 1


def _whole(value, part: Part, path: tuple, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        part.fail(path, f"{what} must be a positive whole number, got {value!r}")
    return int(value)


def _mesh(component: dict, count: int, part: Part, path: tuple) -> tuple[int, int]:
    """The component's (meshX, meshY), as ``BufferLevel::ValidateTopology`` infers them."""
    attributes = component.get("attributes") or {}
    if not isinstance(attributes, dict):
        part.fail(path + ("attributes",), "must be a mapping")
    instances = count
    if "instances" in attributes:
        instances = _whole(attributes["instances"], part, path + ("attributes", "instances"), "instances")
    mesh_x = attributes.get("meshX")
    mesh_y = attributes.get("meshY")
    if mesh_x is not None:
        mesh_x = _whole(mesh_x, part, path + ("attributes", "meshX"), "meshX")
    if mesh_y is not None:
        mesh_y = _whole(mesh_y, part, path + ("attributes", "meshY"), "meshY")
    if mesh_x is None and mesh_y is None:
        return instances, 1
    if mesh_x is not None and mesh_y is not None:
        if mesh_x * mesh_y != instances:
            part.fail(path + ("attributes",), f"meshX {mesh_x} x meshY {mesh_y} is not its {instances} instances")
        return mesh_x, mesh_y
    given, key = (mesh_x, "meshX") if mesh_x is not None else (mesh_y, "meshY")
    if instances % given:
        part.fail(path + ("attributes", key), f"{key} {given} does not divide its {instances} instances")
    return (given, instances // given) if key == "meshX" else (instances // given, given)


def is_container_free(raw) -> bool:
    """Whether an ``architecture`` is a v0.3 tree without timeloopfe's
    ``inter_*_spatial`` placeholders: its fan-outs have no container for a
    mapping to target, so Timeloop's mappings give a fan-out's spatial
    loops to the storage level above it."""
    if not isinstance(raw, dict) or "subtree" not in raw or "nodes" in raw:
        return False
    node, names = raw, []
    while isinstance(node, dict) and isinstance(node.get("subtree"), list) and node["subtree"]:
        node = node["subtree"][0]
        if isinstance(node, dict) and isinstance(node.get("local"), list):
            names += [str(c.get("name", "")).split("[")[0].strip() for c in node["local"] if isinstance(c, dict)]
    return not any(_PLACEHOLDER.match(name) for name in names)


def legacy_nodes(raw: dict, part: Part, is_compute=lambda cls: False) -> list[dict]:
    """The v0.4 node list of a v0.3 ``architecture`` (``subtree`` / ``local``).
    ``is_compute(class)`` tells the compute unit, which Timeloop puts below
    every storage level wherever its ``local`` list names it."""
    flat: list[tuple[dict, tuple, int, str | None]] = []  # component, path, instances, tree node starting there
    node, path, count = raw, (), 1
    while node.get("subtree") is not None:
        subtree = node["subtree"]
        spath = path + ("subtree",)
        if not isinstance(subtree, list) or not subtree:
            part.fail(spath, "must be a list of one node ({name, local, subtree})")
        if len(subtree) > 1:
            part.fail(spath + (1,), "a second subtree at one level; Timeloop reads one subtree per level (put "
                                    "side-by-side components in one local list)")
        node, path = subtree[0], spath + (0,)
        if not isinstance(node, dict):
            part.fail(path, "a subtree node is a mapping {name, local, subtree}")
        name, size = split_range(str(node.get("name", "")), part, path + ("name",))
        count *= size
        local = node.get("local") or []
        if not isinstance(local, list):
            part.fail(path + ("local",), "must be a list of components")
        starts = name if size > 1 else None
        shared = node.get("attributes")
        if isinstance(shared, dict) and shared:
            # attributes that propagate to the components below (Accelergy's reading): a container's
            flat.append(({"attributes": {k: v for k, v in shared.items() if k not in ("meshX", "meshY", "instances")},
                          "name": name}, path, 0, None))
        for i, component in enumerate(local):
            cpath = path + ("local", i)
            if not isinstance(component, dict) or not isinstance(component.get("name"), str):
                part.fail(cpath, "a component is {name, class, attributes}")
            _, own = split_range(component["name"], part, cpath + ("name",))
            flat.append((component, cpath, count * own, starts))
    if not flat:
        part.fail(("subtree",), "has no local components (DRAM, buffers and the compute unit)")
    computes = [entry for entry in flat if entry[2] and is_compute(str(entry[0].get("class", "")).lower())]
    flat = [entry for entry in flat if entry not in computes] + computes
    seen: set = set()  # a ranged tree node names the growth at its first component as placed
    for i, (component, cpath, instances, starts) in enumerate(flat):
        if starts is not None and instances:
            flat[i] = (component, cpath, instances, None if cpath[:-2] in seen else starts)
            seen.add(cpath[:-2])
    nodes: list[dict] = []
    previous, above = (1, 1), None
    names = {split_range(c["name"], part, p + ("name",))[0] for c, p, n, _ in flat if n}
    for component, cpath, instances, starts in flat:
        if instances == 0:  # a tree node's shared attributes
            nodes.append({TAG: "Container", "name": component["name"], "attributes": component["attributes"],
                          ORIGIN: cpath})
            continue
        mesh = _mesh(component, instances, part, cpath)
        if mesh != previous:
            if mesh[0] % previous[0] or mesh[1] % previous[1]:
                part.fail(cpath, f"{component['name']}: its mesh {mesh[0]} x {mesh[1]} is not a whole number of "
                                 f"copies of the level above ({previous[0]} x {previous[1]})")
            placeholder = _PLACEHOLDER.match(above) if above else None
            if placeholder:
                container = placeholder.group(1)
            elif starts and starts not in names:
                container = starts
            else:  # not a level's name: a spatial target naming a level means the fan-out below it
                container = split_range(component["name"], part, cpath + ("name",))[0] + "_array"
            nodes.append({TAG: "Container", "name": container, ORIGIN: cpath,
                          "spatial": {"meshX": mesh[0] // previous[0], "meshY": mesh[1] // previous[1]}})
            previous = mesh
        converted = {key: value for key, value in component.items() if key not in ("name", "attributes")}
        attributes = {k: v for k, v in (component.get("attributes") or {}).items()
                      if k not in ("meshX", "meshY", "instances")}
        converted.update({TAG: "Component", "name": split_range(component["name"], part, cpath + ("name",))[0],
                          "attributes": attributes, ORIGIN: cpath})
        nodes.append(converted)
        above = converted["name"]
    return nodes
