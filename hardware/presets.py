"""Named hardware descriptions shipped with mapcert (hardware/presets.yaml)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml


@lru_cache(maxsize=None)
def hardware_presets() -> dict[str, dict]:
    text = resources.files("mapcert.hardware").joinpath("presets.yaml").read_text()
    return yaml.safe_load(text)


def hardware_preset(name: str) -> dict:
    """The raw description of preset ``name`` (KeyError if unknown)."""
    return hardware_presets()[name]
