"""Shared helpers: small problems built in code, and the CLI run in-process."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest

from mapcert.formulations.tiling.problem import Buffer, ConvLayer, Precision, TilingProblem


def make_problem(capacity_bytes: int, space: str = "divisors", partition: dict | None = None, **layer) -> TilingProblem:
    layer.setdefault("name", "test")
    layer.setdefault("N", 1)
    conv = ConvLayer(**layer)
    part = {k: v * 8 for k, v in partition.items()} if partition else None
    return TilingProblem(layer=conv, buffer=Buffer("GLB", capacity_bytes * 8, part), space=space)


@pytest.fixture
def problem_factory():
    return make_problem


def run_cli(*args: str) -> tuple[int, str, str]:
    from mapcert.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(list(args))
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def cli():
    return run_cli


__all__ = ["Precision", "make_problem", "run_cli"]
