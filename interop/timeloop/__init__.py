"""Timeloop files in and out: the v0.4 tree, and the v0.3 tree (subtree /
local) that older designs and timeloopfe's processed output use.

- :func:`import_timeloop`: architecture, problem, optional Accelergy ERT and
  constraints files -> a mapcert instance (document and commented YAML);
- :func:`mapping_from_timeloop`: a Timeloop mapping -> a mapping of that
  instance, refused with the target and dimension named when it does not fit;
- :func:`mapping_to_timeloop`: a mapping -> a Timeloop mapping file's document.

docs/interop.md lists every field read, how it maps and what is refused.
"""

from __future__ import annotations

from .files import TimeloopError, is_timeloop_document, is_timeloop_file, read_files
from .instance import Imported, Names, import_timeloop
from .mapping import Source, from_timeloop as mapping_from_timeloop, to_timeloop as mapping_to_timeloop

__all__ = ["Imported", "Names", "Source", "TimeloopError", "import_timeloop", "is_timeloop_document",
           "is_timeloop_file", "mapping_from_timeloop", "mapping_to_timeloop", "read_files"]
