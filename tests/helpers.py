"""Helpers for the tests: small problems built in code, the CLI run in-process."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from mapcert.formulations.tiling.problem import Buffer, ConvLayer, TilingProblem


def make_problem(capacity_bytes: int, space: str = "divisors", partition: dict | None = None, **layer) -> TilingProblem:
    layer.setdefault("name", "test")
    layer.setdefault("N", 1)
    conv = ConvLayer(**layer)
    part = {k: v * 8 for k, v in partition.items()} if partition else None
    return TilingProblem(layer=conv, buffer=Buffer("GLB", capacity_bytes * 8, part), space=space)


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``mapcert ARGS`` in this process; returns (exit code, stdout, stderr)."""
    from mapcert import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        cli.out.file, cli.err.file = stdout, stderr
        try:
            code = cli.main(list(args))
        finally:
            cli.out.file, cli.err.file = None, None
    return code, stdout.getvalue(), stderr.getvalue()
