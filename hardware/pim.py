"""Processing-in-memory chip descriptions (crossbars, cells, converters)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from math import ceil

import yaml


@dataclass(frozen=True)
class PimChip:
    """A chip of identical crossbars grouped into PEs and tiles.

    A weight of ``weight_bits`` spans ``ceil(weight_bits / cell_bits)``
    columns (bit slices); differential encoding doubles the crossbars.
    Inputs enter bit-serially, ``dac_bits`` per cycle.
    """

    name: str
    rows: int
    columns: int
    cell_bits: int = 1
    weight_bits: int = 8
    input_bits: int = 8
    dac_bits: int = 1
    adc_bits: int = 8
    differential: bool = False
    crossbars_per_pe: int = 16
    pes_per_tile: int = 4
    tiles: int = 256
    cycles_per_mvm: int = 8
    bandwidth_bits_per_cycle: int = 4096
    energy_per_activation_pj: float = 10.0   # one crossbar, one input chunk, ADCs included
    energy_per_input_bit_pj: float = 1.0     # buffer read and network transfer

    @property
    def input_chunks(self) -> int:
        """Bit-serial steps per MVM."""
        return ceil(self.input_bits / self.dac_bits)

    @property
    def slices(self) -> int:
        return ceil(self.weight_bits / self.cell_bits)

    @property
    def crossbars_per_tile(self) -> int:
        return self.crossbars_per_pe * self.pes_per_tile

    @property
    def crossbar_budget(self) -> int:
        return self.crossbars_per_tile * self.tiles

    @property
    def copies_factor(self) -> int:
        return 2 if self.differential else 1


@lru_cache(maxsize=None)
def pim_presets() -> dict[str, dict]:
    return yaml.safe_load(resources.files("mapcert.hardware").joinpath("pim_presets.yaml").read_text())


def pim_chip(name: str, **overrides) -> PimChip:
    """Preset ``name`` with optional field overrides (KeyError if unknown)."""
    raw = dict(pim_presets()[name])
    raw.pop("source", None)
    raw.update(overrides)
    return PimChip(name=name, **raw)
