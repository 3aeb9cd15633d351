"""Timeloop ``architecture:`` tree -> mapcert levels and fan-outs.

The v0.3 tree (``subtree`` / ``local``) is first turned into the v0.4 node
list by ``legacy_tree``; what follows is the v0.4 reading.

The tree is a list of nodes read in order, each inside every container
before it: ``!Container`` (its ``spatial: {meshX, meshY}`` replicates
everything below it, its ``constraints.spatial`` restricts what the mesh
unrolls), ``!Component`` (a storage level or the compute unit, by
``class``), ``!Parallel`` (components side by side, each keeping its own
tensors: flattened in the order listed, as Timeloop flattens them) and
``!Hierarchical`` (a nested list). The first storage component is the
backing store (DRAM); the compute component closes the tree.

Capacities count words per instance, as Timeloop counts them: ``depth *
block_size``, with ``block_size = width / (cluster_size * datawidth)`` when
not given (``cluster_size`` 1 by default: a cluster's instances share each
row), or ``entries`` / ``size`` words. The written instance gives
every tensor 8 bits and each level ``words`` bytes, so a mapcert tile of
``n`` elements fills ``n`` of Timeloop's words whatever the tensor.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .files import TAG, ExpressionError, Files, Part, evaluate
from .legacy_tree import ORIGIN, legacy_nodes
from .problem import ProblemRead, raise_missing

DRAM_CLASSES = ("dram", "hbm", "hbm2", "lpddr4", "offchip")
STORAGE_CLASSES = ("dram", "sram", "smartbuffer_sram", "smartbuffer_rf", "smartbuffer", "regfile", "storage",
                   "buffer", "register", "aladdin_register", "reg", "cache", "hbm", "hbm2", "smart_storage",
                   "scratchpad", "fifo")
COMPUTE_CLASSES = ("intmac", "fpmac", "mac", "compute", "intmultiplier", "fpmultiplier", "multiplier",
                   "aladdin_multiplier", "int_mac", "fp_mac", "bitwise_mac")
def is_compute_class(kind: str) -> bool:
    """Whether a (lower-case) class is a compute unit: one of the known classes, or any ending in ``mac``."""
    return kind in COMPUTE_CLASSES or kind.endswith("mac")


STORAGE_WORDS = ("dram", "sram", "storage", "buffer", "regfile", "register", "cache", "fifo", "scratchpad")
"""Timeloop classifies a component by words in its class (``reg_storage``, ``SRAM_bank``): these make a buffer."""
SKIPPED_CLASSES = ("dummy_storage", "nothing")
"""Flattening artefacts with nothing to map (Timeloop's ``inter_*_spatial`` placeholders)."""

DEFAULT_ENERGY = {"dram": 200.0, "buffer": 6.0, "array": 2.0, "register": 1.0, "mac": 1.0}
"""Per-word energies without an ERT, in the Eyeriss normalisation (one MAC = 1):
Chen, Emer, Sze, ISCA 2016, Fig. 1."""


def default_energy(cls: str, words: int | None) -> float:
    """The documented default energy per word of a storage level without an ERT:
    DRAM 200; otherwise by size, as the Eyeriss normalisation grades it: at
    least 8192 words (a global buffer) 6, at least 512 words 2, smaller
    (a register file) 1."""
    if cls.lower() in DRAM_CLASSES or words is None:
        return DEFAULT_ENERGY["dram"]
    if words >= 8192:
        return DEFAULT_ENERGY["buffer"]
    if words >= 512:
        return DEFAULT_ENERGY["array"]
    return DEFAULT_ENERGY["register"]


DATAWIDTH_KEYS = ("datawidth", "word_bits", "word-bits", "word_width")
"""The names of a storage's bits per word."""


@dataclass
class Level:
    """A storage component as a mapcert level."""

    name: str
    cls: str
    path: tuple
    words: int | None
    attributes: dict
    holds: list[str] | None = None
    keep: list[str] = field(default_factory=list)
    bypass: list[str] = field(default_factory=list)
    factors: dict[str, int] = field(default_factory=dict)
    factors_from: tuple | None = None
    """(part, path) of the temporal constraint that fixed ``factors`` last, for refusals about it."""
    permutation: list[str] = field(default_factory=list)
    """The temporal permutation constraint, innermost first (Timeloop's names)."""
    bandwidth: float | None = None
    read_energy: float = 0.0
    write_energy: float = 0.0
    energy_note: str = ""
    block: float = 1.0
    """Words one access moves (``width / datawidth``, or ``block_size``): an ERT action's share per word."""
    parallel: bool = False
    """Under ``!Parallel``: it keeps exactly what its ``keep`` lists, its siblings the rest."""


@dataclass
class Mesh:
    """A spatial container: one axis of a mapcert fan-out, or both."""

    name: str
    path: tuple
    x: int
    y: int
    below: int
    """Index of the storage level right below (number of levels: the MACs)."""
    constraint: dict = field(default_factory=dict)
    """Parsed ``constraints.spatial``: {permutation, split, factors}."""


@dataclass
class Fanout:
    """A mapcert fan-out: one or two consecutive spatial containers."""

    name: str
    above: int
    x: int
    y: int
    x_name: str | None
    y_name: str | None
    rows: list[str] | None = None
    cols: list[str] | None = None
    row_factors: dict[str, int] = field(default_factory=dict)
    col_factors: dict[str, int] = field(default_factory=dict)
    meshes: list[Mesh] = field(default_factory=list)


@dataclass
class ArchRead:
    levels: list[Level]
    fanouts: list[Fanout]
    compute: str
    compute_cls: str
    mac_energy: float = 1.0
    energy_unit: str = "MAC"
    notes: list[str] = field(default_factory=list)
    containers: dict[str, str] = field(default_factory=dict)
    """Spatial container name -> the fan-out it belongs to."""
    compute_path: tuple = ()


FACTOR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|=)\s*(-?\d+)\s*$")
GLUED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*?)()(\d+)\s*$")
"""``C1``, ``M16``: a mapping's factors, the name glued to its value (the digits at the end are the value)."""


def parse_factors(raw, part: Part, path: tuple) -> dict[str, int]:
    """Timeloop's factor lists: ``[N=1, C=1]``, ``"N=1,C=1"``, ``"N=1 C=1"`` or a mapping's ``"C1 M2"``.
    Bounds (``<=``, ``>=``) are refused: mapcert fixes factors or leaves them free. A factor of 0
    is Timeloop's "the whole problem dimension"; it is kept as 0 here and resolved against the
    problem where the factors are translated."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        items = [f"{k}={v}" for k, v in raw.items()]
    elif isinstance(raw, list):
        items = [str(x) for x in raw]
    elif isinstance(raw, str):
        items = [x for x in re.split(r"[,\s]+", raw.strip()) if x]
    else:
        part.fail(path, f"factors must be a list such as [N=1, C=2] or a string, got {raw!r}")
    out = {}
    for item in items:
        match = FACTOR.match(item) or GLUED.match(item)
        if match is None:
            part.fail(path, f"cannot read the factor {item!r} (expected DIM=VALUE)")
        dim, op, value = match.group(1), match.group(2), int(match.group(3))
        if op in ("<=", ">="):
            part.fail(path, f"{item}: a bound on a factor is not represented (mapcert fixes a factor "
                            "or leaves it to the solver)")
        if value < 0:
            part.fail(path, f"{item}: a factor must be a positive whole number (or 0: the whole dimension)")
        if out.get(dim, value) != value:
            part.fail(path, f"{dim} is given twice ({dim}={out[dim]} and {item}); give each dimension once")
        out[dim] = value
    return out


def parse_permutation(raw, names: list[str], part: Part, path: tuple) -> list[str]:
    """A permutation as a list of dimension names, innermost first (as Timeloop writes it)."""
    if raw is None:
        return []
    if isinstance(raw, list):
        out = [str(x) for x in raw]
    elif isinstance(raw, str):
        # Timeloop reads a permutation letter by letter and skips blanks ("NCPQRS M" is NCPQRSM); names
        # longer than a letter are written apart. Each blank- or comma-separated word is a name, or
        # names written together.
        out = []
        by_length = sorted(names, key=len, reverse=True)
        for word in (x for x in re.split(r"[\s,]+", raw.strip()) if x):
            if word in names:
                out.append(word)
                continue
            rest = word
            while rest:
                for name in by_length:
                    if rest.startswith(name):
                        out.append(name)
                        rest = rest[len(name):]
                        break
                else:
                    part.fail(path, f"cannot read the permutation {raw!r}: {rest[:1]!r} starts no dimension of "
                                    f"{', '.join(names)}")
    else:
        part.fail(path, f"a permutation is a string such as NCPQ or a list, got {raw!r}")
    unknown = [d for d in out if d not in names]
    if unknown:
        part.fail(path, f"names {', '.join(unknown)}, not a dimension of the problem ({', '.join(names)})")
    twice = sorted({d for d in out if out.count(d) > 1})
    if twice:
        part.fail(path, f"names {', '.join(twice)} more than once; a permutation lists each dimension at most once")
    return out


def _closest(key, known: tuple[str, ...], cutoff: float) -> str | None:
    """The known field ``key`` is a misspelling of: the same but for case,
    or as close as ``cutoff`` (difflib's ratio); None when none is."""
    import difflib

    text = str(key)
    same_case = {k.lower(): k for k in known}.get(text.lower())
    return same_case or next(iter(difflib.get_close_matches(text, known, n=1, cutoff=cutoff)), None)


def _meant(key, known: tuple[str, ...]) -> str:
    """``; did you mean 'permutation'?`` for a key close to a known one, else ''."""
    close = _closest(key, known, 0.75)
    return f"; did you mean {close!r}?" if close else ""


NODE_FIELDS = ("name", "class", "subclass", "attributes", "spatial", "constraints", "nodes", "sparse_optimizations",
               "required_actions", "enabled", "area_scale", "energy_scale", "power_gated_at")
"""The fields of an architecture node (timeloopfe v0.4) that a misspelling
is checked against; other fields a tool writes are left alone."""


def refuse_misspelt(part: Part, mapping: dict, known: tuple[str, ...], path: tuple, what: str) -> None:
    """Refuse a field that is not one of ``known`` but so close to one
    (the same but for case, or a letter off) that it is a misspelling:
    ``meshy`` for ``meshY``, ``constraint`` for ``constraints``. Read on,
    it would be dropped and the hardware silently be another."""
    for key in mapping:
        if not isinstance(key, str) or key in known or key.startswith("__") or key == TAG:
            continue
        meant = _closest(key, known, 0.85)  # closer than a hint needs: a field not meant is left alone
        if meant is not None:
            part.fail(path + (key,), f"{what}: unknown field {key!r}; did you mean {meant!r}?")


def _tag(node: dict) -> str:
    tag = node.get(TAG)
    if tag:
        return str(tag)
    if "nodes" in node:
        return "Hierarchical"
    if "class" in node:
        return "Component"
    return "Container"


class _Walker:
    """One pass over the tree, collecting levels, meshes and the compute unit."""

    def __init__(self, part: Part, files: Files, problem: ProblemRead, dim_names: list[str]):
        self.part, self.problem, self.dim_names = part, problem, dim_names
        variables = files.get("variables")
        self.scope = dict(variables.value or {}) if variables and isinstance(variables.value, dict) else {}
        self.levels: list[Level] = []
        self.meshes: list[Mesh] = []
        self.flat: set[str] = set()  # containers without a mesh (meshX = meshY = 1): nothing to map there
        self.compute: tuple | None = None  # (name, class, path, attributes)

    def attribute_scope(self, inherited: dict, attributes: dict) -> dict:
        return {**self.scope, **inherited, **attributes}

    def number(self, attributes: dict, scope: dict, keys: tuple[str, ...], path: tuple):
        for key in keys:
            if key in attributes:
                raw = attributes[key]
                if isinstance(raw, str) and raw.strip().lower() in ("inf", "infinity") or raw == math.inf:
                    return math.inf  # timeloopfe's unbounded size (a backing store's depth: INF)
                try:
                    value = evaluate(raw, scope)
                except ExpressionError as exc:
                    self.part.fail(path + ("attributes", key), str(exc))
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    self.part.fail(path + ("attributes", key), f"must be a positive number, got {value!r}")
                return value
        return None

    def walk(self, nodes, path: tuple, inherited: dict, parallel: bool = False) -> None:
        if not isinstance(nodes, list):
            self.part.fail(path, "must be a list of nodes (!Container, !Component, !Parallel)")
        scope = dict(inherited)
        for i, node in enumerate(nodes):
            npath = tuple(node[ORIGIN]) if isinstance(node, dict) and ORIGIN in node else path + (i,)
            if not isinstance(node, dict):
                self.part.fail(npath, "a node is a mapping (!Container, !Component, !Parallel, !Hierarchical)")
            refuse_misspelt(self.part, node, NODE_FIELDS, npath, f"node {node.get('name', '(unnamed)')}")
            tag = _tag(node)
            attributes = node.get("attributes") or {}
            if not isinstance(attributes, dict):
                self.part.fail(npath + ("attributes",), "must be a mapping")
            if self.compute is not None:
                kind = str(node.get("class", "")).lower()
                if tag == "Component" and is_compute_class(kind):
                    self.part.fail(npath, f"{node.get('name')} is a second compute unit beside {self.compute[0]}; "
                                          "mapcert maps a layer onto one kind of MAC unit: keep one")
                self.part.fail(npath, f"{node.get('name', tag)} lies below the compute unit {self.compute[0]}; "
                                      "the compute unit closes the hierarchy")
            if tag == "Container":
                scope.update(attributes)
                self.container(node, npath)
            elif tag == "Component":
                self.component(node, npath, scope, parallel)
            elif tag in ("Parallel", "Hierarchical"):
                self.walk(node.get("nodes"), npath + ("nodes",), scope, tag == "Parallel")
            elif tag == "Nothing":
                # a branch with no storage (Simba's !Parallel gives the inputs one): what it "keeps"
                # passes through to the nodes below, which is what a level that is not there does
                continue
            else:
                self.part.fail(npath, f"node {node.get('name', '(unnamed)')}: unknown tag !{tag}; mapcert reads "
                                      "!Container, !Component, !Parallel, !Hierarchical and !Nothing")

    def container(self, node: dict, path: tuple, component: bool = False) -> None:
        """A node's ``spatial`` mesh: a container's replicates the nodes below it, a
        component's replicates the component itself (and everything below it)."""
        spatial = node.get("spatial") or {}
        if not isinstance(spatial, dict):
            self.part.fail(path + ("spatial",), "must be {meshX: ..., meshY: ...}")
        refuse_misspelt(self.part, spatial, ("meshX", "meshY"), path + ("spatial",), "spatial")
        scope = self.attribute_scope({}, spatial)
        size = {}
        for key in ("meshX", "meshY"):
            value = self.number(spatial, scope, (key,), path) if key in spatial else 1
            if value != int(value):
                self.part.fail(path + ("spatial", key), f"must be a whole number, got {value}")
            size[key] = int(value)
        name = str(node.get("name", f"container{len(self.meshes)}"))
        if size["meshX"] * size["meshY"] == 1:
            self.flat.add(name)
            return
        if not self.levels:
            self.part.fail(path, f"{'component' if component else 'container'} {name} spreads the backing store "
                                 "itself; the first storage component (DRAM) must lie above every spatial mesh")
        constraints = node.get("constraints") or {}
        raw = constraints.get("spatial") if isinstance(constraints, dict) else None
        self.meshes.append(Mesh(name, path, size["meshX"], size["meshY"], below=-1,
                                constraint=self.spatial_constraint(raw, path + ("constraints", "spatial"))
                                if raw else {}))

    def spatial_constraint(self, raw, path: tuple) -> dict:
        if not isinstance(raw, dict):
            self.part.fail(path, "must be a mapping with factors, permutation, split")
        out = {"factors": parse_factors(raw.get("factors"), self.part, path + ("factors",)),
               "permutation": parse_permutation(raw.get("permutation"), self.dim_names, self.part,
                                                path + ("permutation",))}
        if "split" in raw:
            split = raw["split"]
            if isinstance(split, bool) or not isinstance(split, int) or split < 0:
                self.part.fail(path + ("split",), f"must be a whole number, got {split!r}")
            out["split"] = split
        for key in raw:
            if key not in ("factors", "permutation", "split", "target", "type"):
                self.part.fail(path + (key,), f"the spatial constraint {key!r} is not represented"
                                              + (_meant(key, ("factors", "permutation", "split")) or
                                                 " (mapcert reads factors, permutation and split)"))
        return out

    def component(self, node: dict, path: tuple, inherited: dict, parallel: bool = False) -> None:
        name = node.get("name")
        if not isinstance(name, str) or not name:
            self.part.fail(path, "a component needs a name")
        cls = node.get("class")
        if not isinstance(cls, str):
            self.part.fail(path + ("class",), f"component {name} has no class")
        subclass = str(node.get("subclass", "")).lower()
        kind = cls.lower()
        attributes = dict(node.get("attributes") or {})
        if kind in SKIPPED_CLASSES:
            return
        if "metadata" in kind or "metadata" in subclass:
            which = ("class", cls) if "metadata" in kind else ("subclass", node.get("subclass"))
            self.part.fail(path + (which[0],), f"component {name}: {which[0]} {which[1]} stores sparse metadata; "
                                               "mapcert maps dense tensors (give a dense subclass, such as "
                                               "smartbuffer_SRAM, to map the dense layer)")
        if is_compute_class(kind):
            if node.get("spatial"):
                self.container(node, path, component=True)
            for mesh in self.meshes:
                if mesh.below < 0:
                    mesh.below = len(self.levels)
            self.compute = (name, cls, path, attributes)
            return
        if kind not in STORAGE_CLASSES and not any(word in kind for word in STORAGE_WORDS):
            self.part.fail(path + ("class",), f"component {name}: unknown class {cls!r}; mapcert reads the "
                                              f"storage classes {', '.join(STORAGE_CLASSES)} and the compute "
                                              f"classes {', '.join(COMPUTE_CLASSES)}")
        if node.get("spatial"):
            self.container(node, path, component=True)
        scope = self.attribute_scope(inherited, attributes)
        # a datawidth given on an enclosing container holds for the components below it that give none
        # (timeloopfe passes container attributes down to the nodes they contain)
        sized = {**{k: inherited[k] for k in DATAWIDTH_KEYS if k in inherited}, **attributes}
        words = self.words(name, kind, sized, scope, path)
        for key, why in (("allow_overbooking", "tiles larger than the level (overbooking) are not modelled"),
                         ("min_utilization", "a least fill of a storage level is not a mapcert constraint")):
            value = evaluate(attributes.get(key, 0), scope)
            if value not in (0, False, "false", "False"):
                self.part.fail(path + ("attributes", key), f"component {name}: {key}: {value!r}; {why}")
        buffering = self.number(attributes, scope, ("multiple_buffering", "multiple-buffering"), path) or 1
        if words is not None and buffering != 1:
            words = int(words // buffering)  # Timeloop keeps a tile in 1 / multiple_buffering of the level
            if words < 1:
                self.part.fail(path + ("attributes", "multiple_buffering"),
                               f"component {name}: leaves less than one word per buffer")
        level = Level(name=name, cls=cls if not subclass else f"{cls}/{subclass}", path=path, words=words,
                      attributes=attributes)
        reads = self.number(attributes, scope, ("read_bandwidth",), path)
        writes = self.number(attributes, scope, ("write_bandwidth",), path)
        given = [b for b in (reads, writes) if b is not None]
        level.bandwidth = float(min(given)) if given else None
        level.block = self.block(sized, scope, path)
        for mesh in self.meshes:
            if mesh.below < 0:
                mesh.below = len(self.levels)
        self.levels.append(level)
        constraints = node.get("constraints") or {}
        if not isinstance(constraints, dict):
            self.part.fail(path + ("constraints",), "must be a mapping (dataspace, temporal)")
        for key, value in constraints.items():
            cpath = path + ("constraints", key)
            if key == "dataspace":
                apply_dataspace(level, value, self.part, cpath, self.problem)
            elif key == "temporal":
                apply_temporal(level, value, self.part, cpath, self.dim_names)
            elif key == "spatial" and node.get("spatial"):
                continue  # the component's own mesh, read with it
            else:
                self.part.fail(cpath, f"component {name}: the constraint {key!r} is not represented "
                                      "(mapcert reads dataspace and temporal constraints on components)")
        if parallel and level.keep and level.holds is None:
            level.holds = list(level.keep)  # side by side: what it does not keep, a sibling keeps
            level.parallel = True

    def words(self, name: str, kind: str, attributes: dict, scope: dict, path: tuple) -> int | None:
        datawidth = self.number(attributes, scope, DATAWIDTH_KEYS, path)
        depth = self.number(attributes, scope, ("depth", "memory_depth", "memory-depth"), path)
        width = self.number(attributes, scope, ("width", "memory_width", "memory-width"), path)
        entries = self.number(attributes, scope, ("entries", "size"), path)
        size_kb = self.number(attributes, scope, ("sizeKB",), path)
        if not self.levels:  # the backing store holds everything, as Timeloop requires
            return None
        unbounded = [key for key, value in (("depth", depth), ("entries", entries), ("sizeKB", size_kb))
                     if value == math.inf]
        if unbounded:
            self.part.fail(path + ("attributes", unbounded[0]), f"component {name}: {unbounded[0]} INF: an on-chip "
                                                                "storage needs a finite size (only the backing "
                                                                "store, the first storage, may be unbounded)")
        if entries is not None:
            return int(entries)
        if size_kb is not None and depth is None:  # Timeloop: sizeKB * 1024 * 8 / word bits
            words = size_kb * 1024 * 8 / (datawidth or 16)
            if words != int(words) or words < 1:
                self.part.fail(path + ("attributes", "sizeKB"), f"component {name}: sizeKB {size_kb:g} is not a whole "
                                                                f"number of {datawidth or 16:g}-bit words")
            return int(words)
        if depth is None:
            self.part.fail(path + ("attributes",), f"component {name}: an on-chip storage needs depth (and "
                                                   "width, datawidth), entries or sizeKB")
        block = self.number(attributes, scope, ("block_size", "block-size"), path)
        cluster = self.number(attributes, scope, ("cluster_size", "cluster-size"), path)
        if width is None or datawidth is None:
            if width is None and datawidth is None:
                return int(depth * (block or 1))  # block_size words per entry, one if not given
            width = width if width is not None else datawidth * (block or 1) * (cluster or 1)
            datawidth = datawidth if datawidth is not None else width / ((block or 1) * (cluster or 1))
        if block is None:
            # Timeloop: a row of `width` bits is shared by the `cluster_size` instances of a cluster, each
            # holding width / (cluster_size * datawidth) words of it per entry
            block = width / ((cluster or 1) * datawidth)
            if block != int(block) or block < 1:
                shared = f" shared by cluster_size {cluster:g}" if cluster else ""
                self.part.fail(path + ("attributes",), f"component {name}: a row of width {width:g}{shared} is "
                                                       f"not a whole number of {datawidth:g}-bit words per instance "
                                                       "(Timeloop requires it)")
        words = depth * block
        if words != int(words) or words < 1:
            shared = f" / cluster_size {cluster:g}" if cluster else ""
            self.part.fail(path + ("attributes",), f"component {name}: depth {depth:g} x width {width:g}{shared} / "
                                                   f"datawidth {datawidth:g} is not a whole number of words")
        return int(words)

    def block(self, attributes: dict, scope: dict, path: tuple) -> float:
        """Words one ERT action pays for: Timeloop charges an action per access of a
        row (``block_size`` words for each of the ``cluster_size`` instances that share
        it, ``width / datawidth`` in all) and spreads it over the instances of the
        cluster, so a word's share is the action over ``width / datawidth``."""
        width = self.number(attributes, scope, ("width", "memory_width", "memory-width"), path)
        datawidth = self.number(attributes, scope, DATAWIDTH_KEYS, path)
        if width and datawidth and width >= datawidth:
            return float(width / datawidth)
        block = self.number(attributes, scope, ("block_size", "block-size"), path)
        cluster = self.number(attributes, scope, ("cluster_size", "cluster-size"), path)
        return float((block or 1) * (cluster or 1))


def apply_dataspace(level: Level, raw, part: Part, path: tuple, problem: ProblemRead) -> None:
    """Timeloop's keep/bypass constraint: all three named fixes the level, otherwise the mapping chooses the rest."""
    if not isinstance(raw, dict):
        part.fail(path, "must be {keep: [...], bypass: [...]}")
    lists = {}
    for key in ("keep", "bypass"):
        names = raw.get(key) or []
        if isinstance(names, str):
            names = [names]
        tensors = []
        for name in names:
            tensor = problem.tensor_of(str(name))
            if tensor is None:
                part.fail(path + (key,), f"{name} is not a data space of the problem "
                                         f"({', '.join(problem.dataspaces.values())})")
            tensors.append(tensor)
        lists[key] = tensors
    for key in raw:
        if key not in ("keep", "bypass", "target", "type", "no_coalesce"):
            part.fail(path + (key,), f"the dataspace constraint {key!r} is not represented"
                      + _meant(key, ("keep", "bypass")))
    if set(lists["keep"]) & set(lists["bypass"]):
        part.fail(path, f"{level.name} both keeps and bypasses {', '.join(set(lists['keep']) & set(lists['bypass']))}")
    for key, other, earlier in (("keep", "bypass", level.bypass), ("bypass", "keep", level.keep)):
        clash = [problem.dataspaces.get(t, t) for t in sorted(set(lists[key]) & set(earlier))]
        if clash:  # the architecture, or a constraint read before, said the opposite
            part.fail(path + (key,), f"{level.name} is already given {other} {', '.join(clash)}; a {key} of it "
                                     "here contradicts that")
    keep = sorted(set(level.keep) | set(lists["keep"]))
    bypass = sorted(set(level.bypass) | set(lists["bypass"]))
    level.keep, level.bypass = keep, bypass
    if set(keep) | set(bypass) == {"inputs", "weights", "outputs"}:
        level.holds = [t for t in ("inputs", "weights", "outputs") if t in keep]


def apply_temporal(level: Level, raw, part: Part, path: tuple, dim_names: list[str]) -> None:
    if not isinstance(raw, dict):
        part.fail(path, "must be {factors: [...], permutation: [...]}")
    factors = parse_factors(raw.get("factors"), part, path + ("factors",))
    for dim in factors:
        if dim not in dim_names:
            part.fail(path + ("factors",), f"{dim} is not a dimension of the problem ({', '.join(dim_names)})")
    level.factors.update(factors)
    if factors:
        level.factors_from = (part, path + ("factors",))
    if raw.get("permutation"):
        level.permutation = parse_permutation(raw.get("permutation"), dim_names, part, path + ("permutation",))
    for key in raw:
        if key not in ("factors", "permutation", "target", "type"):
            part.fail(path + (key,), f"the temporal constraint {key!r} is not represented"
                      + _meant(key, ("factors", "permutation")))


def read_architecture(files: Files, problem: ProblemRead, dim_names: list[str]) -> tuple[ArchRead, Part]:
    """The levels, fan-outs and compute unit of the merged files' ``architecture``."""
    part = files.get("architecture")
    if part is None:
        old = files.get("arch")
        if old is not None:  # Timeloop's first format (ISPASS 2019): arch: {arithmetic, storage: innermost first}
            old.fail((), "Timeloop's first format (arch: with arithmetic and storage lists), which mapcert does "
                         "not read; write the architecture as a v0.4 tree (architecture: {version: 0.4, nodes: "
                         "[...]}) or a v0.3 one (architecture: {version: 0.3, subtree: [...]}), docs/interop.md")
        raise_missing(files, "architecture", "no file gives 'architecture:'")
    raw = part.value
    if not isinstance(raw, dict):
        part.fail((), "must be a mapping with version and nodes")
    walker = _Walker(part, files, problem, dim_names)
    top = ("nodes",) if "nodes" in raw else ("subtree",)
    if "nodes" in raw:
        walker.walk(raw["nodes"], ("nodes",), {})
    elif "subtree" in raw:  # the v0.3 tree (timeloopfe's processed output too)
        walker.walk(legacy_nodes(raw, part, is_compute_class), ("subtree",), {})
    else:
        part.fail((), "has no 'nodes' (the v0.4 tree of !Container, !Component and !Parallel) nor 'subtree' "
                      "(the v0.3 tree of local components)")
    if walker.compute is None:
        part.fail(top, "has no compute component (a MAC: class intmac, fpmac, mac, compute)")
    if len(walker.levels) < 2:
        part.fail(top, "needs the backing store (DRAM) and at least one on-chip storage level")
    apply_targets(files, walker, problem, dim_names)
    fanouts = merge_meshes(walker.meshes, walker.levels, part)
    arch = ArchRead(levels=walker.levels, fanouts=fanouts, compute=walker.compute[0], compute_cls=walker.compute[1])
    arch.containers = {mesh.name: fan.name for fan in fanouts for mesh in fan.meshes}
    arch.compute_path = walker.compute[2]
    return arch, part


def merge_meshes(meshes: list[Mesh], levels: list[Level], part: Part) -> list[Fanout]:
    """Consecutive spatial containers (no storage between them) become one fan-out:
    exact when each axis comes from one container."""
    out: list[Fanout] = []
    for below in sorted({m.below for m in meshes}):
        group = [m for m in meshes if m.below == below]
        xs = [m for m in group if m.x > 1]
        ys = [m for m in group if m.y > 1]
        for axis, spread in (("meshX", xs), ("meshY", ys)):
            if len(spread) > 1:
                part.fail(spread[1].path + ("spatial",),
                          f"containers {spread[0].name} and {spread[1].name} both spread {axis} with no storage "
                          "between them; mapcert has one fan-out between two levels, with one row and one column "
                          "count")
        x_mesh, y_mesh = (xs[0] if xs else None), (ys[0] if ys else None)
        names = [m.name for m in group if m.x * m.y > 1]
        fan = Fanout(name="+".join(names), above=below, x=x_mesh.x if x_mesh else 1, y=y_mesh.y if y_mesh else 1,
                     x_name=x_mesh.name if x_mesh else None, y_name=y_mesh.name if y_mesh else None, meshes=group)
        for mesh in group:
            spatial_limits(fan, mesh, part)
        out.append(fan)
    return out


def spatial_limits(fan: Fanout, mesh: Mesh, part: Part) -> None:
    """A container's spatial constraint as allowed dimensions and fixed factors of the fan-out's axes."""
    c = mesh.constraint
    if not c:
        return
    factors, permutation = c.get("factors", {}), c.get("permutation", [])
    ones = {d for d, v in factors.items() if v == 1}
    path = mesh.path + ("constraints", "spatial")
    x_dims, y_dims = spatial_axes(permutation, c.get("split"), mesh.x, mesh.y)
    for axis, dims, size in (("cols", x_dims, mesh.x), ("rows", y_dims, mesh.y)):
        if size == 1:
            continue
        if isinstance(dims, tuple):  # every dimension but the excluded ones: resolved against the problem's
            excluded = set(dims[1]) | ones
            allowed = ["*"] + sorted(excluded) if excluded else None
        else:
            allowed = [d for d in dims if d not in ones]
        setattr(fan, axis, allowed)
    for dim, value in factors.items():
        if value == 1:
            continue
        on_x = _may_hold(x_dims, dim) and mesh.x > 1
        on_y = _may_hold(y_dims, dim) and mesh.y > 1
        if on_x == on_y:
            part.fail(path + ("factors",), f"{dim}={value}: cannot tell whether it spreads meshX or meshY of "
                                           f"container {mesh.name} (give a permutation and split)")
        (fan.col_factors if on_x else fan.row_factors)[dim] = value


def spatial_axes(permutation: list[str], split: int | None, x: int, y: int):
    """The dimensions a container's meshX and meshY may unroll, as Timeloop
    reads its spatial permutation: a list (only these) or ``("*", excluded)``
    (every dimension but those).

    The permutation orders the spatial loops, innermost first, and may be
    partial: the dimensions it leaves out follow it, in any order. The first
    ``split`` positions go on meshX, the rest on meshY. So with ``split`` at
    most the permutation's length, meshX takes the first ``split`` listed and
    meshY the other listed and every unlisted one; with ``split`` beyond it,
    meshX takes every listed one and unlisted ones may go on either axis.
    Without a split Timeloop searches it, and the order alone restricts no
    dimension: which dimensions a mesh unrolls is its factors' business."""
    every = ("*", ())
    if split is None:
        return (every if x > 1 else []), (every if y > 1 else [])
    if split <= len(permutation):
        return list(permutation[:split]), ("*", tuple(permutation[:split]))
    return every, ("*", tuple(permutation))


def _may_hold(dims, dim: str) -> bool:
    """Whether ``dims`` (as :func:`spatial_axes` gives them) allows ``dim``."""
    if isinstance(dims, tuple):
        return dim not in dims[1]
    return dim in dims


def merged_spatial(before: dict, given: dict) -> dict:
    """A container's spatial constraint after another target names it (a
    constraints file over the architecture's own): the factors add up, one
    dimension's new factor replacing its old one, and a permutation or split
    given replaces the one before; what the new target leaves out stays."""
    if not before:
        return given
    out = dict(before, factors={**before.get("factors", {}), **given.get("factors", {})})
    if given.get("permutation"):
        out["permutation"] = given["permutation"]
        out.pop("split", None)
    if "split" in given:
        out["split"] = given["split"]
    return out


CONSTRAINT_KEYS = ("constraints", "architecture_constraints", "mapspace_constraints", "mapspace")


def apply_targets(files: Files, walker: _Walker, problem: ProblemRead, dim_names: list[str]) -> None:
    """Constraints given as a list of targets (a separate constraints file, or
    the flattened ``architecture_constraints``), by component or container name."""
    levels = {level.name: level for level in walker.levels}
    meshes = {mesh.name: mesh for mesh in walker.meshes}
    for key in CONSTRAINT_KEYS:
        part = files.get(key)
        if part is None:
            continue
        raw = part.value
        # as Timeloop's parser: a list, or one under `targets` or `constraints` (mapspace: {constraints: [...]})
        inner = next((k for k in ("targets", "constraints") if isinstance(raw, dict) and k in raw), None)
        targets = raw.get(inner) if inner else (None if isinstance(raw, dict) else raw)
        if targets is None:
            continue
        if not isinstance(targets, list):
            part.fail((inner,) if inner else (), "must be a list of {target, type, ...}")
        base = (inner,) if inner else ()
        for i, entry in enumerate(targets):
            path = base + (i,)
            if not isinstance(entry, dict) or "target" not in entry:
                part.fail(path, "a constraint is {target: NAME, type: temporal | spatial | dataspace, ...}")
            name, kind = str(entry["target"]), str(entry.get("type", ""))
            container = container_name(name, meshes)
            if walker.compute is not None and name == walker.compute[0]:
                part.fail(path + ("target",), f"{name} is the compute unit; constraints target storage and containers")
            if name in levels:
                if kind in ("dataspace", "bypass", "datatype"):
                    apply_dataspace(levels[name], entry, part, path, problem)
                elif kind == "temporal":
                    apply_temporal(levels[name], entry, part, path, dim_names)
                elif kind == "spatial":
                    mesh = [m for m in walker.meshes if m.below == walker.levels.index(levels[name]) + 1]
                    if not mesh:
                        part.fail(path + ("target",), f"{name} has no spatial fan-out below it")
                    mesh[0].constraint = merged_spatial(mesh[0].constraint, walker.spatial_constraint(entry, path))
                else:
                    part.fail(path + ("type",), f"constraint type {kind!r} is not represented (mapcert reads "
                                                "temporal, spatial and dataspace constraints)")
            elif container is not None:
                if kind == "spatial":
                    meshes[container].constraint = merged_spatial(meshes[container].constraint,
                                                                  walker.spatial_constraint(entry, path))
                elif kind == "temporal":
                    factors = parse_factors(entry.get("factors"), part, path + ("factors",))
                    if any(v > 1 for v in factors.values()):
                        part.fail(path + ("factors",), f"{name} is a spatial container; it has no temporal loops")
                elif kind not in ("dataspace", "bypass", "datatype"):
                    part.fail(path + ("type",), f"constraint type {kind!r} is not represented")
            elif name in walker.flat or (name.startswith("inter_") and name.endswith("_spatial")):
                # a container without a mesh (meshX = meshY = 1), or its placeholder: only factors of 1 fit
                factors = parse_factors(entry.get("factors"), part, path + ("factors",))
                if kind in ("spatial", "temporal") and any(v > 1 for v in factors.values()):
                    part.fail(path + ("factors",), f"{name} spreads no mesh (meshX = meshY = 1) and keeps no "
                                                   "data: its loops have one iteration")
                continue
            else:
                part.fail(path + ("target",), f"{name} is not a component or spatial container of the architecture")


def container_name(name: str, meshes: dict) -> str | None:
    """The spatial container a target names: its own name or Timeloop's ``inter_NAME_spatial``."""
    if name in meshes:
        return name
    if name.startswith("inter_") and name.endswith("_spatial") and name[6:-8] in meshes:
        return name[6:-8]
    return None
