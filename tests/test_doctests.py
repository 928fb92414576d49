"""The examples in docstrings are true: each module's doctests run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "detectors.expressions",
    "insiderwatch.calendar",
    "insiderwatch.features",
    "insiderwatch.ingest",
    "insiderwatch.reasons",
    "insiderwatch.readers",
    "insiderwatch.store",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
