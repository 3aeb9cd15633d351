"""The registry of families: the one place that knows which families exist.

Built-in families are imported lazily, on first use, from
:data:`BUILTIN`; any other family (a plug-in, the toy family of the tests)
calls :func:`register` once.  Plug-ins are found on first use too: the
modules named by the ``mapcert.families`` entry point group of installed
packages, and those listed (comma-separated) in the ``MAPCERT_FAMILIES``
environment variable, which is how a sweep's worker processes, started
elsewhere, learn about a family the driver uses.  The CLI, the API, ``compare`` and ``verify``
find a family here, by the ``family:`` value of a document
(:func:`for_document`) or by a problem object (:func:`family_of`).
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from .family import Family

BUILTIN = (
    "mapcert.formulations.tiling.family",
    "mapcert.formulations.tiling.multilevel.family",
    "mapcert.formulations.crossbar.family",
    "mapcert.formulations.pairing.family",
    "mapcert.formulations.partition.family",
)
"""Modules whose import registers the built-in families (in this order)."""

PLUGIN_GROUP = "mapcert.families"
PLUGIN_VARIABLE = "MAPCERT_FAMILIES"


class PluginError(ImportError):
    """A plug-in family module that cannot be imported."""

_FAMILIES: dict[str, Family] = {}
_loaded = False


def register(family: Family) -> Family:
    """Add ``family`` to the registry (again under the same key replaces it).

    Examples
    --------
    >>> from mapcert.formulations import registry
    >>> {"crossbar", "pairing", "partition", "tiling"} <= {f.name for f in registry.families()}
    True
    """
    key = family.key or family.name
    if not family.name:
        raise ValueError(f"{type(family).__name__} has no name")
    _FAMILIES[key] = family
    return family


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN:
            importlib.import_module(module)
        for module in plugin_modules():
            try:
                importlib.import_module(module)
            except Exception as exc:  # a broken plug-in must say which one
                raise PluginError(f"family plug-in {module!r} cannot be imported: {exc}") from exc


def plugin_modules() -> list[str]:
    """The plug-in family modules: entry points first, then ``MAPCERT_FAMILIES``."""
    modules = [ep.value.split(":")[0] for ep in entry_points(group=PLUGIN_GROUP)]
    modules += [m.strip() for m in os.environ.get(PLUGIN_VARIABLE, "").split(",") if m.strip()]
    return list(dict.fromkeys(modules))


def families() -> list[Family]:
    """Every registered family, built-in ones first."""
    _load_builtin()
    return list(_FAMILIES.values())


def names() -> list[str]:
    """The distinct ``family:`` values an instance may give."""
    seen: dict[str, None] = {}
    for family in families():
        seen.setdefault(family.name, None)
    return list(seen)


def for_document(data: dict) -> Family | None:
    """The family that reads an instance document (None: unknown family)."""
    name = data.get("family")
    for family in families():
        if family.name == name and family.claims(data):
            return family
    return None


def family_of(problem) -> Family:
    """The family a problem object belongs to; TypeError for anything else."""
    for family in families():
        if family.owns(problem):
            return family
    raise TypeError(f"no registered family solves a {type(problem).__name__}")


def get(key: str) -> Family:
    """A family by its registry key (KeyError if unknown)."""
    _load_builtin()
    return _FAMILIES[key]
