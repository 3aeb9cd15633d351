"""Crossbar allocation: problem, allocation and the one cost model.

Each layer is one pipeline stage.  Its weights are laid out on crossbars in
one of two styles (Peng, Liu, Yu, TCAS-I 2020; derivations in
docs/crossbar.md):

* ``conventional``: each 3-D kernel unrolled into one column; a copy needs
  ceil(C*R*S / rows) * ceil(M * slices / columns) crossbars, and every output
  pixel fetches its whole receptive field (C*R*S inputs) again;
* ``split``: the kernel split by position into R*S sub-matrices of C x M,
  each on its own crossbars; a copy needs R*S * ceil(C / rows) *
  ceil(M * slices / columns) crossbars, and every input is fetched once and
  passed between the PEs.

(per group, times the number of groups; times 2 with differential cells.)
With r copies a stage processes r output pixels at a time:
stage time = cycles_per_mvm * ceil(N*P*Q / r).  The pipeline period is the
slowest stage, and no shorter than the time the shared buffer bandwidth
needs to deliver every stage's inputs for one image.

:func:`evaluate` is the one cost model of the family: every objective value
the exact methods, heuristics, bounds and the functional model are compared
with comes from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from ...hardware.pim import PimChip

STYLES = ("conventional", "split")
OBJECTIVES = ("bottleneck", "latency", "energy")


@dataclass(frozen=True)
class SolverSettings:
    """The instance's own choice of exact method, its time limit (seconds per
    solve) and CP-SAT workers (0: one per core).  Shared by the two PIM
    families (crossbar and pairing)."""

    method: str = "milp"
    time_limit: float = 60.0
    workers: int = 0


@dataclass(frozen=True)
class CrossbarLayer:
    """One layer with weights, one pipeline stage (Timeloop dimension names;
    C and M are totals, ``groups`` divides both; the input includes any
    padding, so it is ``(P - 1) * stride + R`` high)."""

    name: str
    C: int
    M: int
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    N: int = 1
    groups: int = 1
    stride: tuple[int, int] = (1, 1)

    @property
    def outputs(self) -> int:
        """Output pixels per image: the MVMs one copy performs in sequence."""
        return self.N * self.P * self.Q

    @property
    def input_height(self) -> int:
        return (self.P - 1) * self.stride[0] + self.R

    @property
    def input_width(self) -> int:
        return (self.Q - 1) * self.stride[1] + self.S

    @property
    def rows_read(self) -> int:
        """Input rows some output pixel reads: all of them when the kernel is
        at least as tall as the stride, else R rows per output row (a 1x1
        stride-2 downsample reads every other row)."""
        return touched(self.P, self.stride[0], self.R)

    @property
    def columns_read(self) -> int:
        """Input columns some output pixel reads (see :attr:`rows_read`)."""
        return touched(self.Q, self.stride[1], self.S)


def touched(outputs: int, stride: int, kernel: int) -> int:
    """Distinct input positions along one axis read by ``outputs`` windows of
    ``kernel`` positions placed ``stride`` apart."""
    return (outputs - 1) * stride + kernel if stride <= kernel else outputs * kernel


def layers_from_network(layers: dict[str, dict]) -> list[CrossbarLayer]:
    """CrossbarLayers from a workloads/*.yaml layer table."""
    out = []
    for name, raw in layers.items():
        if raw.get("op", "conv2d") not in ("conv2d", "fc", "matmul"):
            continue  # add, concat and pool layers hold no weights
        d = raw["dims"]
        stride = raw.get("stride", 1)
        stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        out.append(CrossbarLayer(
            name=name, C=d["C"], M=d["M"], P=d.get("P", 1), Q=d.get("Q", 1), R=d.get("R", 1), S=d.get("S", 1),
            N=d.get("N", 1), groups=raw.get("groups", 1), stride=stride,
        ))
    return out


@dataclass(frozen=True)
class CrossbarProblem:
    """A network's layers on a PIM chip: the allocation question and its
    constraints (budget, one layer per tile, buffer bandwidth), the objective
    and the instance's solver settings."""

    layers: tuple[CrossbarLayer, ...]
    chip: PimChip
    objective: str = "bottleneck"
    styles: tuple[str, ...] = STYLES          # the styles a layer may use
    one_layer_per_tile: bool = False
    bandwidth: bool = False
    budget: int | None = None                 # crossbars; default: the whole chip
    name: str = "network"
    solver: SolverSettings = SolverSettings()

    @property
    def crossbar_budget(self) -> int:
        return self.budget if self.budget is not None else self.chip.crossbar_budget

    def crossbars_per_copy(self, layer: CrossbarLayer, style: str) -> int:
        chip = self.chip
        cg, mg = layer.C // layer.groups, layer.M // layer.groups
        columns = ceil(mg * chip.slices / chip.columns)
        if style == "conventional":
            per_group = ceil(cg * layer.R * layer.S / chip.rows) * columns
        elif style == "split":
            per_group = layer.R * layer.S * ceil(cg / chip.rows) * columns
        else:
            raise ValueError(f"unknown mapping style {style!r}")
        return per_group * layer.groups * chip.copies_factor

    def stage_cycles(self, layer: CrossbarLayer, copies: int) -> int:
        return self.chip.cycles_per_mvm * ceil(layer.outputs / copies)

    def stage_time(self, layer: CrossbarLayer, style: str, copies: int) -> int:
        """A stage's time for one image: its compute cycles, and with the
        buffer bandwidth at least the cycles its own input bits take through
        the buffer (``ceil(bits / B)``; the period's bound on all stages
        together already implies this one, so only the latency changes)."""
        cycles = self.stage_cycles(layer, copies)
        if not self.bandwidth:
            return cycles
        return max(cycles, ceil(self.input_bits(layer, style) / self.chip.bandwidth_bits_per_cycle))

    def input_bits(self, layer: CrossbarLayer, style: str) -> int:
        """Input bits fetched from the buffer per image: the conventional
        layout fetches every output pixel's receptive field; the split layout
        fetches every input some pixel reads once and passes it between PEs."""
        if style == "conventional":
            elements = layer.outputs * (layer.C // layer.groups) * layer.R * layer.S * layer.groups
        else:
            elements = layer.N * layer.C * layer.rows_read * layer.columns_read
        return elements * self.chip.input_bits

    def activations(self, layer: CrossbarLayer, style: str) -> int:
        """Crossbar activations per image: every output pixel activates every
        crossbar of one copy once per input chunk.  Copies run the same MVMs
        in parallel, so they do not change it."""
        return layer.outputs * self.crossbars_per_copy(layer, style) * self.chip.input_chunks

    def energy_pj(self, layer: CrossbarLayer, style: str) -> float:
        """Energy per image: crossbar activations plus the input bits fetched."""
        return (self.activations(layer, style) * self.chip.energy_per_activation_pj
                + self.input_bits(layer, style) * self.chip.energy_per_input_bit_pj)

    def tiles_for(self, crossbars: int) -> int:
        return ceil(crossbars / self.chip.crossbars_per_tile)


@dataclass
class Allocation:
    """Mapping style and number of copies of every layer, in order."""

    styles: list[str]
    copies: list[int]

    def to_dict(self, problem: CrossbarProblem) -> list[dict]:
        """One ``{layer, style, copies}`` row per layer."""
        return [{"layer": l.name, "style": s, "copies": r}
                for l, s, r in zip(problem.layers, self.styles, self.copies)]


@dataclass
class CrossbarMetrics:
    """What :func:`evaluate` computes for one allocation (per image)."""

    stage_cycles: list[int]
    crossbars: list[int]
    activations: list[int]
    input_bits: list[int]
    bandwidth_cycles: int
    period: int            # pipeline period in cycles (objective 'bottleneck')
    latency: int           # sum of stage times, each at least its own input bits / bandwidth (objective 'latency')
    energy_pj: float       # per image (objective 'energy')
    crossbars_used: int
    tiles_used: int
    feasible: bool
    violations: list[str] = field(default_factory=list)
    stage_times: list[int] = field(default_factory=list)
    """Each stage's time for one image: its compute cycles, or with the
    buffer bandwidth the cycles its own input bits take when more (the
    latency is their sum)."""

    def objective(self, name: str) -> float:
        return {"bottleneck": self.period, "latency": self.latency, "energy": self.energy_pj}[name]

    def to_dict(self) -> dict:
        return {"period_cycles": self.period, "latency_cycles": self.latency, "energy_pj": self.energy_pj,
                "bandwidth_cycles": self.bandwidth_cycles, "crossbars_used": self.crossbars_used,
                "tiles_used": self.tiles_used, "feasible": self.feasible, "violations": self.violations,
                "stage_cycles": self.stage_cycles, "stage_times": self.stage_times, "crossbars": self.crossbars, "activations": self.activations,
                "input_bits": self.input_bits}


def evaluate(problem: CrossbarProblem, allocation: Allocation) -> CrossbarMetrics:
    """Stage times, crossbars, tiles, buffer traffic and energy of
    ``allocation``, and whether it fits (``violations`` say why not).

    Raises
    ------
    ValueError
        The allocation does not give one style and one copy count per layer,
        or names a style the model does not know.
    """
    layers = problem.layers
    if len(allocation.copies) != len(layers) or len(allocation.styles) != len(layers):
        raise ValueError("an allocation needs one style and one copy count per layer")
    stage, times, xbars, acts, bits, energy = [], [], [], [], [], 0.0
    violations = []
    for layer, style, copies in zip(layers, allocation.styles, allocation.copies):
        if style not in problem.styles:
            violations.append(f"{layer.name}: style {style} not allowed")
        if not 1 <= copies <= layer.outputs:
            violations.append(f"{layer.name}: copies {copies} outside 1..{layer.outputs}")
        stage.append(problem.stage_cycles(layer, max(1, copies)))
        times.append(problem.stage_time(layer, style, max(1, copies)))
        xbars.append(copies * problem.crossbars_per_copy(layer, style))
        acts.append(problem.activations(layer, style))
        bits.append(problem.input_bits(layer, style))
        energy += problem.energy_pj(layer, style)
    data = sum(bits)
    bandwidth = ceil(data / problem.chip.bandwidth_bits_per_cycle) if problem.bandwidth else 0
    used = sum(xbars)
    if problem.one_layer_per_tile:
        tiles = sum(problem.tiles_for(x) for x in xbars)
        if tiles > problem.chip.tiles:
            violations.append(f"{tiles} tiles used, {problem.chip.tiles} available")
    else:
        tiles = problem.tiles_for(used)
    if used > problem.crossbar_budget:
        violations.append(f"{used} crossbars used, budget {problem.crossbar_budget}")
    period = max(max(stage), bandwidth)
    return CrossbarMetrics(stage, xbars, acts, bits, bandwidth, period, sum(times), energy, used, tiles,
                           not violations, violations, times)
