"""The one result format, ``mapcert-result/2``, for every family and for
networks.

A result holds everything a person or a program needs to trust an answer
without trusting the program that produced it: the self-contained
instance, the solution, the objective as ``evaluate`` computes it, the
solver's bound, the analytical bounds, the certificate's checks and the
functional run.  ``mapcert verify`` re-derives every field it can from the
instance and the solution alone.

Gap, defined once for every family (docs/results.md)::

    reference = max(best_bound, lower_bound)
    gap       = (objective - reference) / objective      (0 when objective is 0)

``best_bound`` is the solver's bound, raised to the rigorous analytical
``lower_bound`` when the solver has none or a weaker one; a proved optimum
is its own best bound.  A heuristic's ``gap`` is its excess over the
optimum when one is proved, over ``best_bound`` otherwise:
``(value - reference) / reference``.

The JSON Schema generated from these models is docs/result.schema.json.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .formulations.family import Status

RESULT_FORMAT = "mapcert-result/2"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class BoundEntry(_Model):
    name: str
    value: float
    rigorous: bool
    meaning: str


class CheckEntry(_Model):
    name: str
    passed: bool
    detail: str = ""


class FunctionalEntry(_Model):
    ran: bool
    passed: bool | None = None
    reason: str = ""
    counts: dict[str, Any] = Field(default_factory=dict)
    wall_time_s: float = 0.0


class Certificate(_Model):
    space: str = Field(description="The declared space optimality refers to.")
    checks: list[CheckEntry] = Field(default_factory=list)
    functional: FunctionalEntry


class HeuristicEntry(_Model):
    method: str
    status: Status
    objective: float | None = None
    gap: float | None = Field(None, description="(objective - reference) / reference; reference is the optimum, "
                                                "or best_bound when no optimum is proved.")
    wall_time_s: float = 0.0
    note: str = ""
    solution: dict | None = None


class SecondaryEntry(_Model):
    objective: str
    unit: str
    value: float | None = None
    proved: bool = Field(description="Proved least among the optima of the objectives before it.")


class PartEntry(_Model):
    name: str
    count: int = Field(ge=1)
    same_shape: list[str] = Field(default_factory=list)
    result: "Result"


class Result(_Model):
    """One solved instance (or network) with its certificate."""

    format: str = RESULT_FORMAT
    family: str
    status: Status
    objective: float | None = None
    objective_name: str
    unit: str
    secondary: list[SecondaryEntry] = Field(default_factory=list,
                                            description="The objectives minimized after the first, in order "
                                                        "(lexicographic).")
    best_bound: float | None = Field(None, description="The solver's bound, raised to lower_bound when weaker or "
                                                       "missing; the optimum itself when proved.")
    lower_bound: float | None = Field(None, description="The best rigorous analytical bound.")
    bounds: list[BoundEntry] = Field(default_factory=list)
    gap: float | None = Field(None, description="(objective - max(best_bound, lower_bound)) / objective.")
    solution: dict | None = None
    metrics: dict[str, Any] | None = None
    method: str
    wall_time_s: float = 0.0
    message: str = ""
    certificate: Certificate
    heuristics: list[HeuristicEntry] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict, description="Family-specific extras (not re-derived).")
    parts: list[PartEntry] | None = Field(None, description="A network: one result per distinct layer.")
    instance: dict | None = Field(None, description="The self-contained instance (absent inside a network's parts: "
                                                    "the network's instance expands to them).")
    mapcert_version: str = ""

    _problem: Any = PrivateAttr(default=None)
    _solution: Any = PrivateAttr(default=None)

    @property
    def problem(self):
        """The problem object this result was solved for (None when read from a file)."""
        return self._problem

    @property
    def solution_object(self):
        """The decoded solution (None when read from a file)."""
        return self._solution

    def attach(self, problem, solution) -> "Result":
        self._problem, self._solution = problem, solution
        return self

    def to_dict(self) -> dict:
        """JSON-ready dictionary (what ``--json`` prints and ``-o`` saves)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        """Validate a stored result; raises pydantic.ValidationError."""
        return cls.model_validate(data)


PartEntry.model_rebuild()


def gap_of(objective: float | None, best_bound: float | None, lower_bound: float | None) -> float | None:
    """The one definition of the gap (module docstring)."""
    if objective is None:
        return None
    known = [b for b in (best_bound, lower_bound) if b is not None]
    if not known:
        return None
    if objective == 0:
        return 0.0
    return max(0.0, (objective - max(known)) / abs(objective))


def excess(value: float | None, reference: float | None) -> float | None:
    """A heuristic's excess over the reference (optimum or bound)."""
    if value is None or not reference:
        return None
    return (value - reference) / reference


def json_schema() -> dict:
    """The JSON Schema of ``mapcert-result/2``."""
    schema = Result.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = RESULT_FORMAT
    return schema


if __name__ == "__main__":  # python -m mapcert.result > docs/result.schema.json
    print(json.dumps(json_schema(), indent=2))
