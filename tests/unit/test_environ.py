"""chalicelib.environ: reads of the environment answer what `os.environ.get` answers."""

from __future__ import annotations

import os

import pytest

from chalicelib.environ import getenv

NAME = "SLUICE_TEST_ENVIRON"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="not set"),
        pytest.param("", id="empty"),
        pytest.param("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f", id="ascii"),
        pytest.param("ünïcødé 日本 😀", id="non-ASCII"),
        pytest.param("\udcff\udc80", id="bytes that are not UTF-8 (surrogate escapes)"),
    ],
)
def test_getenv_answers_as_os_environ(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set, changed and removed through `os.environ`, a variable reads as `os.environ.get`
    reads it at that moment."""
    monkeypatch.delenv(NAME, raising=False)
    assert getenv(NAME) is None
    if value is not None:
        monkeypatch.setenv(NAME, value)
    assert getenv(NAME) == os.environ.get(NAME) == value
    monkeypatch.setenv(NAME, "changed")
    assert getenv(NAME) == "changed"
    monkeypatch.delenv(NAME)
    assert getenv(NAME) is None


def test_a_replaced_environment_is_read_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """An `os.environ` replaced by a plain mapping (a test's stand-in) is read through it."""
    monkeypatch.setattr(os, "environ", {NAME: "stand-in"})
    assert getenv(NAME) == "stand-in"
    assert getenv("SLUICE_TEST_UNSET") is None
