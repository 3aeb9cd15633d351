"""Helpers for the tests: small problems built in code, the CLI run in-process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

from mapcert.formulations.tiling.problem import Buffer, ConvLayer, TilingProblem


def make_problem(capacity_bytes: int, space: str = "divisors", partition: dict | None = None, **layer) -> TilingProblem:
    layer.setdefault("name", "test")
    layer.setdefault("N", 1)
    conv = ConvLayer(**layer)
    part = {k: v * 8 for k, v in partition.items()} if partition else None
    return TilingProblem(layer=conv, buffer=Buffer("GLB", capacity_bytes * 8, part), space=space)


def lenet_sweep(name: str, capacities: list[str]) -> str:
    """A sweep file of LeNet-5 (a network: one job per distinct layer) on a
    small three-level hierarchy, over the shared buffer's capacity; each
    point solves in about a second."""
    return (f"sweep: {name}\n"
            "base:\n"
            "  family: tiling\n"
            "  workload: lenet5\n"
            "  hardware:\n"
            "    array: {rows: 2, cols: 2}\n"
            "    levels:\n"
            "      - {name: DRAM}\n"
            "      - {name: GLB, capacity: 4 KiB}\n"
            "      - {name: RF, per_pe: true, capacity: 64 B}\n"
            "  objective: offchip_traffic\n"
            "axes:\n"
            f"  hardware.levels[GLB].capacity: [{', '.join(capacities)}]\n")


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


def run_mapcert(*args: str) -> subprocess.CompletedProcess:
    """Run ``mapcert ARGS`` through the command's entry point in this process
    (the solvers' imports are paid once per test session); the answer has
    the shape of a finished process.  tests/test_cli.py also runs the command
    in a fresh process, as a user would."""
    code, stdout, stderr = run_cli(*args)
    return subprocess.CompletedProcess(["mapcert", *args], code, stdout, stderr)


def run_mapcert_process(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m mapcert ARGS`` in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "mapcert", *args], capture_output=True, text=True)


def mapcert_json(*args: str) -> dict:
    """The JSON that ``mapcert ARGS`` prints (ARGS include ``--json``); the
    test fails with the command's stderr unless it exits 0."""
    done = run_mapcert(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def random_multilevel_mapping(problem, rnd, full_orders: bool):
    """A uniformly drawn valid mapping of a multi-level problem: a random
    factor row per dimension that fits every fan-out, and per level either
    any loop order (``full_orders``) or one of the six group orders."""
    from mapcert.formulations.tiling.multilevel.problem import DIMS, layer_extent
    from mapcert.formulations.tiling.multilevel.space import GROUP_ORDERS, mapping_from_choice, ordered_factorizations

    from mapcert.formulations.tiling.multilevel.rows import row_width

    hier, layer = problem.hierarchy, problem.layer
    K = len(hier.levels)
    while True:
        rows = {}
        for d in DIMS:
            options = [c for c in ordered_factorizations(layer_extent(layer, d), row_width(hier))
                       if d not in "RS" or c[0] == 1]
            rows[d] = rnd.choice(options)
        fits = True
        for f, fan in enumerate(hier.fanouts):
            used_rows = used_cols = 1
            for d in DIMS:
                used_rows *= rows[d][K + 2 * f]
                used_cols *= rows[d][K + 2 * f + 1]
            fits &= used_rows <= fan.rows and used_cols <= fan.cols
        if fits:
            break
    if full_orders:
        orders = tuple(tuple(rnd.sample(DIMS, len(DIMS))) for _ in range(K))
    else:
        orders = tuple(rnd.choice(GROUP_ORDERS) for _ in range(K))
    return mapping_from_choice(problem, rows, orders)


def with_random_keep(problem, mapping, rnd):
    """``mapping`` with a keep set drawn uniformly among those the hierarchy allows."""
    from dataclasses import replace

    from mapcert.formulations.tiling.multilevel.bypass import keep_sets

    return replace(mapping, keep=rnd.choice(keep_sets(problem.hierarchy)))


def term_counts(problem, mapping):
    """Reads and writes per level and tensor rebuilt from the exact models'
    term structure: for every boundary the mapping's keep sets open,
    ``const * spatial * halo * (fills / distinct)``."""
    from mapcert.formulations.tiling.multilevel.cost import fills_and_distinct
    from mapcert.formulations.tiling.multilevel.terms import boundaries, mapping_rows, words_value

    keep = mapping.keep_sets(problem.hierarchy)
    K = len(problem.hierarchy.levels)
    rows = mapping_rows(problem, mapping)
    reads = [dict.fromkeys(("inputs", "weights", "outputs"), 0) for _ in range(K)]
    writes = [dict.fromkeys(("inputs", "weights", "outputs"), 0) for _ in range(K)]
    for b in boundaries(problem):
        if not all(b.tensor in keep[j] for j in b.kept) or any(b.tensor in keep[j] for j in b.bypassed):
            continue
        loops = [(d, mapping.factor(j, d)) for j in range(b.level) for d in mapping.levels[j].order]
        fills, distinct = fills_and_distinct(loops, b.tensor, b.level < K or problem.hierarchy.latches)
        E = int(fills) // int(distinct)
        P = words_value(problem, b.parent_words, rows)
        C = words_value(problem, b.child_words, rows)
        if b.tensor != "outputs":
            reads[b.parent][b.tensor] += E * P
            if b.level < K:
                writes[b.level][b.tensor] += E * C
        else:
            refill = words_value(problem, b.refill_words, rows)
            writes[b.parent]["outputs"] += E * P
            reads[b.parent]["outputs"] += (E - 1) * refill
            if b.level < K:
                writes[b.level]["outputs"] += (E - 1) * refill
                reads[b.level]["outputs"] += E * C
    return reads, writes


def interrupt_group(process: subprocess.Popen, timeout: float = 60) -> tuple[str, str, float]:
    """Ctrl-C as a terminal sends it: SIGINT to ``process``'s whole process
    group (started with ``start_new_session=True``). Returns its standard
    output and error and the seconds it took to end; whatever is left of
    the group is killed afterwards."""
    import os
    import signal
    import time

    try:
        sent = time.time()
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=timeout)
        return out, err, time.time() - sent
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
