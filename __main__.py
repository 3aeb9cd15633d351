"""``python -m mapcert`` is the ``mapcert`` command."""

from .cli import entry

if __name__ == "__main__":  # run as a command, never on import
    entry()
