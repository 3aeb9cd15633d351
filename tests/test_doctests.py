"""The runnable examples in the public entry points' docstrings."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import mapcert
import mapcert.formulations.registry
import mapcert.instances
import mapcert.validation.verify
import mapcert.workload_onnx

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", [mapcert, mapcert.instances, mapcert.formulations.registry,
                                    mapcert.validation.verify, mapcert.workload_onnx], ids=lambda m: m.__name__)
def test_docstring_examples_run(module, monkeypatch):
    monkeypatch.chdir(ROOT)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


def test_result_schema_in_docs_is_current():
    import json

    from mapcert.result import json_schema

    assert json.loads((ROOT / "docs" / "result.schema.json").read_text()) == json.loads(json.dumps(json_schema()))
