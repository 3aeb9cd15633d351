"""Peers' files in and out: other mappers' descriptions of the same problems.

Each format reads its files into an ordinary mapcert instance (a YAML
document the schema of ``instances.py`` validates, written with comments so
a person can read and edit it) and translates mappings both ways. The
command line reaches them through ``mapcert import FORMAT``, ``solve`` and
``compare`` on the peer's files, ``compare --mapping`` and ``solve --export
FORMAT`` (``cli/peers.py``); ``FORMATS`` lists them.

Why instances and not problems: an imported instance is a file the user
keeps, edits and solves again without the peer's files, and every check
mapcert runs on its own instances (line-numbered errors, the families'
schemas, ``verify``) applies to it unchanged.
"""

from __future__ import annotations

FORMATS: dict[str, str] = {
    "timeloop": "Timeloop v0.4 architecture, problem, constraints, Accelergy ERT and mappings",
    "zigzag": "ZigZag workload, hardware and mapping",
}
"""Formats ``mapcert import`` reads, with a one-line description."""
