"""Solve and verify times per example, and what the tamper corpus catches.

For every instance file given (default: every file in examples/), solve it,
verify the fresh result (every applicable exact method re-proves the
optimum, the functional model re-runs on fresh operands), then tamper with
each field of the tamper corpus in turn and verify again with the default
method only. Prints one row per instance: status, solve time, verify time
(median over --repeats), functional time, and how many tampered copies were
caught.

    python benchmarks/verify.py [FILES...] [--time-limit 120] [--repeats 1] [--no-tamper]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import mapcert  # noqa: E402
from mapcert.formulations.registry import family_of  # noqa: E402
from mapcert.validation.verify import verify  # noqa: E402


def tamper_corpus(data: dict) -> dict:
    """The contract suite's tampers (tests/test_family_contract.py), as name -> edit."""
    from test_family_contract import _tampers

    return {name: edit for name, (edit, _) in _tampers(data).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per exact solve and re-proof")
    parser.add_argument("--repeats", type=int, default=1, help="verify runs per instance (median reported)")
    parser.add_argument("--no-tamper", action="store_true", help="skip the tamper corpus")
    args = parser.parse_args()
    files = args.files or sorted(p for p in (ROOT / "examples").glob("*.yaml") if not p.name.startswith("sweep_"))
    print(f"{'instance':38s} {'family':9s} {'status':8s} {'solve s':>8s} {'verify s':>9s} {'functional s':>12s} "
          f"{'tampers caught':>15s}")
    for path in files:
        problem = mapcert.load(path)
        family = family_of(problem)
        start = time.perf_counter()
        result = mapcert.solve(problem, time_limit=args.time_limit)
        solved = time.perf_counter() - start
        data = result.to_dict()
        times, passed = [], True
        for _ in range(args.repeats):
            start = time.perf_counter()
            passed &= verify(data, str(path), time_limit=args.time_limit).passed
            times.append(time.perf_counter() - start)
        caught = "-"
        if not args.no_tamper and result.parts is None and result.solution is not None:
            corpus = tamper_corpus(data)
            hits = 0
            for edit in corpus.values():
                changed = copy.deepcopy(data)
                edit(changed)
                hits += not verify(changed, str(path), time_limit=args.time_limit,
                                   methods=[family.default_method(problem)]).passed
            caught = f"{hits}/{len(corpus)}"
        functional = result.certificate.functional.wall_time_s
        print(f"{path.name:38s} {family.name:9s} {result.status.value:8s} {solved:8.2f} "
              f"{statistics.median(times):9.2f} {functional:12.2f} {caught:>15s}"
              + ("" if passed else "  VERIFY FAILED"))


if __name__ == "__main__":
    main()
