import pytest

from helpers import make_problem, run_cli


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def problem_factory():
    return make_problem
