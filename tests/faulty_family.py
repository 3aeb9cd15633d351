"""A plug-in family whose solves misbehave on request, for the sweep tests.

It is the toy knapsack (tests/toy_family.py) with a ``fault`` field: the
exact method sleeps (``sleep``), raises (``raise``), kills its own process
(``kill``, as a crash or the memory guard would), or kills it only the
first time (``kill-once``: a marker file remembers).  Sweeps load it in
their worker processes through ``MAPCERT_FAMILIES=faulty_family`` with the
tests folder on ``PYTHONPATH``, as a user's plug-in would be.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from mapcert.formulations.family import ExactMethod
from mapcert.formulations.registry import register
from mapcert.instances import validate_spec
from toy_family import ItemSpec, KnapsackFamily, KnapsackSpec, _cpsat


class FaultySpec(KnapsackSpec):
    fault: Literal["none", "sleep", "raise", "kill", "kill-once"] = "none"
    seconds: float = Field(0.0, ge=0, le=60)
    marker: str = ""


@dataclass(frozen=True)
class Faulty:
    name: str
    capacity: int
    items: tuple[ItemSpec, ...]
    fault: str
    seconds: float
    marker: str


def _misbehave(problem: Faulty, time_limit):
    if problem.seconds:
        time.sleep(problem.seconds)
    if problem.fault == "raise":
        raise RuntimeError(f"injected fault in {problem.name}")
    if problem.fault == "kill" or (problem.fault == "kill-once" and not Path(problem.marker).exists()):
        if problem.fault == "kill-once":
            Path(problem.marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return _cpsat(problem, time_limit)


class FaultyFamily(KnapsackFamily):
    """The knapsack, with faults on request."""

    name = "faulty"
    summary = "test family: a knapsack whose solve sleeps, raises or dies on request"

    def build(self, data: dict, where, label: str, base: Path):
        spec = validate_spec(FaultySpec, data, where, (), "a faulty knapsack instance")
        if spec is None:
            return None
        return Faulty(spec.name, spec.capacity, tuple(spec.items), spec.fault, spec.seconds, spec.marker)

    def dump(self, problem: Faulty) -> dict:
        return {"family": "faulty", "name": problem.name, "capacity": problem.capacity,
                "items": [i.model_dump() for i in problem.items], "fault": problem.fault,
                "seconds": problem.seconds, "marker": problem.marker}

    def owns(self, problem) -> bool:
        return isinstance(problem, Faulty)

    def methods(self, problem) -> list[ExactMethod]:
        return [ExactMethod("cpsat", _misbehave, summary="CP-SAT, after the fault")]

    def examples(self) -> list[str]:
        return []


FAMILY = register(FaultyFamily())
