"""Lower bounds for multi-level tiling (derived in docs/tiling-multilevel.md).

* ``objective``: a bound on the instance's objective that any mapping obeys.
  - Energy: every MAC once, every used input and every weight read from DRAM
    once, written once into every on-chip level that always holds it (a
    level whose keep is chosen may be bypassed) and read once out of each
    but the innermost, every output written to DRAM once and read once from
    the innermost level that always holds it.  DRAM's accesses are the
    larger of those and the room segment bound (``dram_room_energy``).
  - Off-chip traffic: the compulsory traffic; the family also reports the
    segment bounds (``offchip_segment_bytes``).
  - Latency: ceil(MACs / PEs), or a bandwidth-limited level's cycles to
    move the words every mapping moves there (``latency_bound``).
  - EDP: the product of the energy and latency bounds.
  - Energy also counts the MAC operand latches (``latch_energy``): each MAC
    unit holds one word of each tensor, two different MACs share at most
    one operand, so between two MACs of a unit at least two latches change,
    each change a read (inputs, weights) or a drain (outputs) at a level
    that may hold the tensor, shared at most by the fan-outs in between.
  - And the read-backs that merge drained partial sums
    (``latch_and_merge_energy``): an output drained in more pieces than one
    reduction network adds up must have its pieces read back and added.
  - Or, when larger, the same events with the gaps that change two shared
    latches paired (``latch_pairing.paired_latch_energy``): one input read
    and one output drain serve few such gaps together, whatever each
    alone is shared by.
* ``array_boundary``: the traffic into and out of PE-private storage, in the
  spirit of the paper's register-level bound. All private storage of all
  PEs, plus each MAC's three operand latches, is one fast memory of S words
  (counted at the narrowest precision). A private memory split across PEs
  can only do worse than a single memory of the same total size. So the
  red-blue pebble segment argument of docs/bounds.md (Hong-Kung with
  Loomis-Whitney per filter tap) bounds the words that cross. So does the
  compulsory count: every used input, every weight and every output crosses
  at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, inf

from ..formulations.tiling.multilevel.problem import MultiLevelProblem
from .bounds import hong_kung_words, layer_capped_instance, layer_segment_instance
from .capped_segment import capped_segment_bits
from .latch_pairing import Refill, Server, paired_latch_energy
from .read_segment import read_segment_bits
from .room_segment import RoomInstance, room_segment_cost


@dataclass(frozen=True)
class MultiLevelBounds:
    objective: float
    objective_meaning: str
    array_boundary_words: float
    array_boundary_meaning: str

    def to_dict(self) -> dict:
        return {
            "objective": self.objective, "objective_meaning": self.objective_meaning,
            "array_boundary_words": self.array_boundary_words, "array_boundary_meaning": self.array_boundary_meaning,
        }


def level_storage(problem: MultiLevelProblem, first: int) -> list[tuple[int, int]]:
    """(instances, bits of one instance) of each level from ``first`` inwards:
    a level under fan-outs has one instance per PE (or lane) under them, and
    a partitioned level holds no more than its parts for the tensors it keeps."""
    hier = problem.hierarchy
    out = []
    for index in range(first, len(hier.levels)):
        level = hier.levels[index]
        instances = hier.instances(index)
        size = (sum(level.partition_bits.get(t, 0) for t in level.holds) if level.partition_bits is not None
                else level.capacity_bits)
        out.append((instances, size))
    return out


def private_words(problem: MultiLevelProblem) -> int:
    """Words of PE-private storage over the whole array, MAC latches included."""
    hier, p = problem.hierarchy, problem.layer.precision
    narrow = min(p.inputs, p.weights, p.psums)
    bits: dict[int, int] = {}  # per number of instances, the bits of one instance of those levels
    for instances, size in level_storage(problem, hier.pe_level):
        bits[instances] = bits.get(instances, 0) + size
    return sum(instances * (b // narrow) for instances, b in bits.items()) + 3 * hier.pes  # 3: MAC latches


def latch_servers(problem: MultiLevelProblem, tensor: str) -> list[tuple[int, int]]:
    """``(level, shared)`` of every level that may change a MAC unit's
    ``tensor`` latch, and how many MAC units one of its accesses can serve.

    Every value a latch receives comes from the innermost level that keeps
    the tensor in the mapping, which lies at or below the innermost level
    that always keeps it (DRAM when none on chip does): a read of that
    level (inputs, weights) or, for outputs, the write of the partial sum
    the latch drains. One access reaches at most the MAC units of the
    fan-outs below the level whose network shares the tensor (multicast,
    or reduction for outputs)."""
    hier = problem.hierarchy
    K = len(hier.levels)
    innermost = max(i for i, level in enumerate(hier.levels) if tensor in level.always_holds or i == 0)
    servers = []
    for index in range(innermost, K):
        if index > 0 and tensor not in hier.levels[index].holds:
            continue
        servers.append((index, units_below(problem, index, sharing=tensor)))
    return servers


def latch_price(problem: MultiLevelProblem, tensor: str) -> float:
    """Least energy one change of a MAC unit's ``tensor`` latch can cost:
    an access of one of its ``latch_servers``, divided by the MAC units that
    access can serve. A tensor that DRAM may serve directly costs nothing
    here: DRAM's accesses are counted by the compulsory term, and adding
    them twice would not be a bound."""
    return min(server_energy(problem, index, tensor) / shared for index, shared in latch_servers(problem, tensor))


def server_energy(problem: MultiLevelProblem, index: int, tensor: str) -> float:
    """Energy of the access of level ``index`` that changes a ``tensor``
    latch: a read (inputs, weights) or the write of a drained partial sum
    (outputs). DRAM's reads of inputs and weights and its writes of outputs
    already carry the compulsory term, which may count the very same
    accesses: DRAM adds nothing here, so the terms stay disjoint."""
    if index == 0:
        return 0.0
    level = problem.hierarchy.levels[index]
    return level.write_energy if tensor == "outputs" else level.read_energy


def onchip_bits(problem: MultiLevelProblem) -> int:
    """Every bit of on-chip storage: each level's instances, and each MAC
    unit's three operand latches."""
    p = problem.layer.precision
    total = sum(instances * size for instances, size in level_storage(problem, 1))
    return total + mac_units(problem) * (p.inputs + p.weights + p.psums)


def offchip_segment_bytes(problem: MultiLevelProblem) -> dict[str, float]:
    """The read-segment and capped read-segment bounds on the off-chip
    traffic, in bytes, with all on-chip storage taken as one buffer, and
    the room segment bound, with each tensor's own room.

    Those bounds hold for every schedule of the layer on one buffer of the
    given size (docs/bounds.md). A schedule on the hierarchy is one on a
    single buffer holding everything on chip (which element sits in which
    level or PE only restricts it), and its DRAM reads and writes are the
    traffic of that buffer, so the bounds hold here too.
    """
    bits = onchip_bits(problem)
    layer = problem.layer
    return {"read_segment": read_segment_bits(layer_segment_instance(layer, bits)) / 8,
            "capped_segment": capped_segment_bits(layer_capped_instance(layer, bits)) / 8,
            "room_segment": room_segment_bytes(problem)}


def tensor_rooms(problem: MultiLevelProblem) -> dict[str, int]:
    """Elements of each tensor that on-chip storage can hold at one moment
    (outputs as partial sums): every instance of every on-chip level that
    may keep the tensor, its partition for it or its whole capacity when
    shared, plus one operand latch per MAC unit."""
    hier, p = problem.hierarchy, problem.layer.precision
    bits = {"inputs": p.inputs, "weights": p.weights, "outputs": p.psums}
    room = {t: 0 for t in bits}
    for index, (instances, _size) in enumerate(level_storage(problem, 1), start=1):
        level = hier.levels[index]
        for tensor in level.holds:
            part = level.partition_bits.get(tensor, 0) if level.partition_bits is not None else level.capacity_bits
            room[tensor] += instances * part
    units = mac_units(problem)
    return {t: room[t] // bits[t] + units for t in bits}


def room_instance(problem: MultiLevelProblem, input_read: float, weight_read: float, psum_return: float,
                  output_write: float) -> RoomInstance:
    """The layer and its on-chip rooms as the room segment bound sees them,
    with the given weights of the events."""
    rooms = tensor_rooms(problem)
    return RoomInstance.from_capped(layer_capped_instance(problem.layer, 1),
                                    (rooms["inputs"], rooms["weights"], rooms["outputs"]),
                                    (input_read, weight_read, psum_return, output_write))


def room_segment_bytes(problem: MultiLevelProblem) -> float:
    """The room segment bound on the off-chip traffic, in bytes: every bit
    read, the spill write and the read of every partial sum read back (both
    off-chip traffic), the final writes (docs/bounds.md)."""
    p = problem.layer.precision
    return room_segment_cost(room_instance(problem, p.inputs, p.weights, 2 * p.psums, p.outputs)) / 8


def dram_room_energy(problem: MultiLevelProblem) -> float:
    """The room segment bound on DRAM's energy: reads of inputs and weights,
    the final writes, and for every partial sum read back its read and the
    write that spilled it, less ``merge_price``: the merge terms count a
    read of an unfinished partial sum at that price wherever it happens, so
    the two together never count a DRAM read twice
    (docs/tiling-multilevel.md, "Bounds")."""
    dram = problem.hierarchy.levels[0]
    returned = dram.write_energy + dram.read_energy - merge_price(problem)
    return room_segment_cost(room_instance(problem, dram.read_energy, dram.read_energy, returned, dram.write_energy))


def mac_units(problem: MultiLevelProblem) -> int:
    """MAC units of the array: every fan-out's instances."""
    units = 1
    for fanout in problem.hierarchy.fanouts:
        units *= fanout.size
    return max(units, problem.hierarchy.pes)


def latch_changes(problem: MultiLevelProblem, tensors: tuple[str, ...] = ("inputs", "weights", "outputs")) -> int:
    """Changes of the ``tensors``' latches any schedule makes, summed.

    Two different MACs share at most one operand (the same input and
    weight, or weight and output, or input and output, fix every loop
    index), so between two consecutive MACs of one MAC unit at most one of
    its three one-word latches keeps its value: of any two latches at least
    one changes, of all three at least two. Over the units, every MAC but
    each unit's first is such a step."""
    return max(0, len(tensors) - 1) * max(0, problem.layer.macs - mac_units(problem))


def latch_cuts(problem: MultiLevelProblem) -> list[tuple[tuple[str, ...], int]]:
    """``(tensors, changes)``: each pair of tensors and all three, with the
    latch changes they make at least (docs/tiling-multilevel.md, "The latch
    cut"). The pairs say what the sum alone does not: the changes cannot
    all fall on the cheapest tensor. Without latches each tensor has one
    change per MAC, the fetch each MAC makes."""
    if not problem.hierarchy.latches:  # every MAC fetches each operand and drains its sum (``fetch_energy``)
        return [((tensor,), problem.layer.macs) for tensor in ("inputs", "weights", "outputs")]
    groups = [("inputs", "weights"), ("inputs", "outputs"), ("weights", "outputs"), ("inputs", "weights", "outputs")]
    return [(group, latch_changes(problem, group)) for group in groups if latch_changes(problem, group) > 0]


def latch_energy(problem: MultiLevelProblem) -> float:
    """Energy of the latch changes any schedule needs (docs/tiling-multilevel.md):
    ``latch_changes``, each at one of the two cheapest prices."""
    prices = sorted(latch_price(problem, t) for t in ("inputs", "weights", "outputs"))
    return latch_changes(problem) / 2 * (prices[0] + prices[1])


def merge_price(problem: MultiLevelProblem) -> float:
    """Least energy of reading back one stored partial sum to add to it: a
    read at any level that may hold outputs, DRAM included.  One read serves
    one addition (a partial sum added twice would be counted twice)."""
    levels = problem.hierarchy.levels
    return min(level.read_energy for i, level in enumerate(levels) if i == 0 or "outputs" in level.holds)


def reduction_group(problem: MultiLevelProblem) -> int:
    """MAC units whose partial sums of one output, drained at one moment,
    are added without a read: every fan-out's. A fan-out whose network
    reduces adds them on the way up; one without a reduction network
    writes each unit's copy, and the level they are written to adds the
    copies of one moment (as the cost model counts them: a write per copy,
    no read). Only a partial sum added to at a later moment is read back."""
    return units_below(problem, 0)


def units_below(problem: MultiLevelProblem, index: int, sharing: str | None = None) -> int:
    """MAC units under one instance of level ``index``: the product of
    the fan-outs between it and the MACs; with ``sharing``, of those whose
    network shares that tensor (the units one access can serve)."""
    size = 1
    for fanout in problem.hierarchy.fanouts:
        if index < fanout.level <= len(problem.hierarchy.levels) and (sharing is None or fanout.shares(sharing)):
            size *= fanout.size
    return size


def latch_and_merge_energy(problem: MultiLevelProblem) -> float:
    """Energy of the latch changes and of the read-backs that merge drained
    partial sums (docs/tiling-multilevel.md, "Merging drained partial sums").

    A unit's output latch holds one output through a *run* of consecutive
    MACs; with ``x_O`` output-latch changes there are at least ``x_O`` runs.
    A drain adds the runs of at most ``s`` units (the reduction group) on
    the way out; every other addition of two partial values reads one of
    them back from a level, and at most ``|O|`` of these make a final value.
    So at least ``x_O / s - 2 |O|`` reads of unfinished partial sums, at
    ``merge_price`` each: the output latch effectively costs
    ``p_O + q / s`` per change.  The latch argument then takes the two
    cheapest of the three prices per MAC, less ``2 q |O|``; the larger of
    this and the plain latch term is a bound on the same events."""
    layer = problem.layer
    q, s = merge_price(problem), reduction_group(problem)
    prices = sorted([latch_price(problem, "inputs"), latch_price(problem, "weights"),
                     latch_price(problem, "outputs") + q / s])
    merged = latch_changes(problem) / 2 * (prices[0] + prices[1]) - 2 * q * layer.output_elements
    return max(latch_energy(problem), merged)


def fetch_energy(problem: MultiLevelProblem, dram_counted: bool = False) -> float:
    """Energy of the operand fetches and drains of MAC units without latches
    (``latches: false``; docs/tiling-multilevel.md, "Bounds"): every MAC,
    the first on its unit included, reads its input and weight from a level
    and drains its partial sum into one, so each tensor has ``MACs`` such
    events (``fetch_cost``); and every MAC is a run of its own, so the merge
    argument of ``latch_and_merge_energy`` counts its read-backs with
    ``MACs`` runs. Zero on hardware with latches."""
    if problem.hierarchy.latches:
        return 0.0
    macs, outputs = problem.layer.macs, problem.layer.output_elements
    q, s = merge_price(problem), reduction_group(problem)
    fetches = sum(fetch_cost(problem, tensor, dram_counted) for tensor in ("inputs", "weights", "outputs"))
    return max(fetches, fetches + macs * q / s - 2 * q * outputs)


def fetch_cost(problem: MultiLevelProblem, tensor: str, dram_counted: bool = False) -> float:
    """Least energy of ``MACs`` latch-feeding events of ``tensor``
    (``latch_servers``: one access of a level serves at most ``shared``
    units). On chip each costs at least the cheapest on-chip price per
    unit. From DRAM, the first access of each element is the compulsory
    term's and costs nothing here, the others DRAM's access energy (all
    nothing when the room segment bound counts DRAM, ``dram_counted``).
    With ``n`` events from DRAM the cost is ``e (n / shared - |X|)^+ +
    p (MACs - n)``, piecewise linear in ``n``: its least value is at ``n =
    |X| shared`` or at an end."""
    layer, levels = problem.layer, problem.hierarchy.levels
    macs = layer.macs
    onchip = [server_energy(problem, index, tensor) / shared
              for index, shared in latch_servers(problem, tensor) if index > 0]
    dram = [shared for index, shared in latch_servers(problem, tensor) if index == 0]
    price = min(onchip, default=inf)
    if not dram:
        return macs * price
    if dram_counted:
        return 0.0
    shared = dram[0]
    elements = {"inputs": layer.input_elements_used, "weights": layer.weight_elements,
                "outputs": layer.output_elements}[tensor]
    energy = levels[0].write_energy if tensor == "outputs" else levels[0].read_energy
    from_dram = energy * max(0.0, macs / shared - elements)
    free_first = price * max(0, macs - elements * shared) if price < inf else inf
    return min(from_dram, free_first)


def latch_refill(problem: MultiLevelProblem, tensor: str) -> Refill | None:
    """The ``Refill`` of ``tensor`` (inputs or weights) when one level alone
    feeds its latches and each instance of it holds a single element, as a
    per-lane weight register does: a latch change loads another element
    than the last load, so the register was written in between (None
    otherwise).

    The write fills it from the nearest level above that keeps the tensor:
    one that may hold it, or DRAM when none of those always does (DRAM's
    reads cost nothing here, the DRAM term counts them); one read there
    fills every instance below the fan-outs in between that multicast."""
    servers = latch_servers(problem, tensor)
    if len(servers) != 1 or servers[0][0] == 0:
        return None
    index = servers[0][0]
    hier, layer = problem.hierarchy, problem.layer
    level = hier.levels[index]
    bits = layer.precision.inputs if tensor == "inputs" else layer.precision.weights
    room = level.partition_bits.get(tensor, 0) if level.partition_bits is not None else level.capacity_bits
    if room is None or room >= 2 * bits:
        return None
    fills = []  # per level that may fill it: (energy per instance filled, energy of one read)
    for above in range(index - 1, -1, -1):
        if above > 0 and tensor not in hier.levels[above].holds:
            continue
        share = 1
        for fanout in hier.fanouts:
            if above < fanout.level <= index and fanout.shares(tensor):
                share *= fanout.size
        energy = 0.0 if above == 0 else hier.levels[above].read_energy
        fills.append((energy / share, energy))
        if above == 0 or tensor in hier.levels[above].always_holds:
            break  # the fill comes from this level or one inside it
    elements = layer.input_elements_used if tensor == "inputs" else layer.weight_elements
    fill = min(price for price, _energy in fills)
    dearest = max(energy for _price, energy in fills)
    return Refill(write=level.write_energy, fill=fill, units=units_below(problem, index),
                  instances=level_storage(problem, index)[0][0], free_writes=elements,
                  free_fills=dearest * elements / fill if fill > 0 else 0.0)


def dram_serves_latches(problem: MultiLevelProblem) -> bool:
    """Whether DRAM may feed some tensor's latches directly (no on-chip
    level always keeps that tensor)."""
    return any(index == 0 for tensor in ("inputs", "weights", "outputs")
               for index, _shared in latch_servers(problem, tensor))


def paired_latch_term(problem: MultiLevelProblem, dram_counted: bool = False) -> float:
    """``latch_and_merge_energy``'s events with the gaps that change two
    shared latches paired (``latch_pairing``, docs/tiling-multilevel.md,
    "Paired latch changes").  With ``dram_counted``, DRAM's accesses are
    another term's (the room segment bound counts every DRAM read): a DRAM
    server's accesses cost nothing here."""
    layer, levels = problem.layer, problem.hierarchy.levels
    elements = {"I": layer.input_elements_used, "W": layer.weight_elements, "O": layer.output_elements}
    servers = {}
    for tensor, letter in (("inputs", "I"), ("weights", "W"), ("outputs", "O")):
        servers[letter] = []
        for index, shared in latch_servers(problem, tensor):
            # DRAM: its first access of each element is the compulsory term's, the others are not
            energy = ((levels[0].write_energy if tensor == "outputs" else levels[0].read_energy) if index == 0
                      else server_energy(problem, index, tensor))
            if index == 0 and dram_counted:
                energy = 0.0
            servers[letter].append(Server(energy, shared, elements[letter] if index == 0 else 0,
                                          units_below(problem, index)))
    units = mac_units(problem)
    refills = {letter: refill for tensor, letter in (("inputs", "I"), ("weights", "W"))
               if (refill := latch_refill(problem, tensor)) is not None}
    return paired_latch_energy(layer.macs - units, units, layer.R * layer.S, servers, elements,
                               merge_price(problem), layer.output_elements, refills)


def energy_bound_terms(problem: MultiLevelProblem) -> dict[str, float]:
    """The disjoint terms of the energy bound (docs/tiling-multilevel.md,
    "Bounds"), by the events they count: their sum is the bound.

    ``macs``: every MAC once. ``dram``: every used input and every weight
    read from DRAM once, every output written once, or the room segment
    bound on DRAM's accesses when that is more. ``holders``: the same
    inputs and weights written into every on-chip level that always keeps
    them and read out of each but the innermost. ``final_reads``: every output read once from the innermost
    level that always keeps outputs. ``latches``: the operand-latch changes
    and the read-backs that merge drained partial sums.  Kept apart so that
    a benchmark can set each against the events of an optimum and say
    which part of the gap lies where."""
    layer, hier = problem.layer, problem.hierarchy
    used_inputs, weights, outputs = layer.input_elements_used, layer.weight_elements, layer.output_elements

    dram = hier.levels[0]
    holders = 0.0
    for tensor, count in (("inputs", used_inputs), ("weights", weights)):
        # every element passes through each level that always keeps it (one that may bypass it is no
        # certain stop): written into each, read out of each but the innermost, whose reads feed latches
        chain = [lv for lv in hier.levels[1:] if tensor in lv.always_holds]
        holders += count * (sum(lv.write_energy for lv in chain) + sum(lv.read_energy for lv in chain[:-1]))
    innermost_out = next((lv for lv in reversed(hier.levels[1:]) if "outputs" in lv.always_holds), None)
    plain = latch_and_merge_energy(problem)
    compulsory = {
        "macs": layer.macs * hier.mac_energy,
        "dram": dram.read_energy * (used_inputs + weights) + dram.write_energy * outputs,
        "holders": holders,
        "final_reads": innermost_out.read_energy * outputs if innermost_out is not None else 0.0,
        "latches": max(plain, paired_latch_term(problem), fetch_energy(problem)),
    }
    rooms = dram_room_energy(problem)
    if rooms <= compulsory["dram"]:
        return compulsory
    # the room segment bound counts every DRAM read: a latch fed by DRAM is then paid for there
    latches = (max(plain, paired_latch_term(problem, dram_counted=True), fetch_energy(problem, dram_counted=True))
               if dram_serves_latches(problem) else compulsory["latches"])
    with_rooms = dict(compulsory, dram=rooms, latches=latches)
    return with_rooms if sum(with_rooms.values()) > sum(compulsory.values()) else compulsory


def multilevel_bounds(problem: MultiLevelProblem) -> MultiLevelBounds:
    layer, hier = problem.layer, problem.hierarchy
    p = layer.precision
    used_inputs, weights, outputs = layer.input_elements_used, layer.weight_elements, layer.output_elements
    terms = energy_bound_terms(problem)
    # summed in the order the terms were derived, so that the bound is the same float as always
    energy = terms["macs"] + terms["dram"] + terms["latches"] + terms["holders"] + terms["final_reads"]
    from .latency_bound import COMPUTE_FLOOR, latency_floor  # it builds on this module's latch counts

    # the bandwidth floor may run the room segment bound: only for the objectives that read it
    latency, latency_reason = (latency_floor(problem) if problem.objective in ("latency", "edp")
                               else (ceil(layer.macs / hier.pes), COMPUTE_FLOOR))
    offchip = (used_inputs * p.inputs + weights * p.weights + outputs * p.outputs) / 8
    value, meaning = {
        "energy": (energy, "every MAC, " + ("two operand-latch changes per MAC (few of them per shared access)"
                                            if hier.latches else "three operand fetches per MAC (no latches)")
                   + ", the read-backs that merge drained partial sums, every word once through DRAM and "
                   "the on-chip levels that always keep it, and DRAM's accesses with each tensor's room on "
                   "chip"),
        "latency": (float(latency), latency_reason),
        "edp": (energy * latency, "energy bound times latency bound"
                + ("" if latency_reason == COMPUTE_FLOOR else f" ({latency_reason})")),
        "offchip_traffic": (offchip, "each used input, weight and output crosses once"),
    }[problem.objective]
    words = private_words(problem)
    segment = hong_kung_words(layer.macs, layer.reuse_max(), words)
    compulsory = used_inputs + weights + outputs
    boundary = max(segment, compulsory)
    how = f"segment argument, S={words} private words" if segment >= compulsory else "compulsory words"
    return MultiLevelBounds(value, meaning, float(boundary), how)
