"""``python -m mapcert`` is the ``mapcert`` command."""

from .cli import entry

entry()
