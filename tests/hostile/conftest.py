"""Fixtures of the hostile suite; the machinery is in harness.py."""

from __future__ import annotations

from types import ModuleType

import pytest

from .harness import load_make


@pytest.fixture(scope="session")
def make() -> ModuleType:
    """tests/data/hostile/make.py: builds each case's input from its recipe."""
    return load_make()
