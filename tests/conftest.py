import os

import pytest

# The CLI sizes its tables to COLUMNS when that is set (a terminal's width);
# pytest-xdist's workers inherit COLUMNS=80, a width no test assumes.  The
# tests read what a non-terminal gets: the CLI's own default width.
os.environ.pop("COLUMNS", None)

from helpers import make_problem, run_cli  # noqa: E402


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def problem_factory():
    return make_problem
