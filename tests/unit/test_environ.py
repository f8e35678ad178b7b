"""chalicelib.environ: reads of the environment answer what `os.environ.get` answers."""

from __future__ import annotations

import os

import pytest

from chalicelib.environ import any_set, getenv

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


NAMES = (NAME, NAME + "_B", NAME + "_ÜNÏ")


@pytest.mark.parametrize(
    "present",
    [
        pytest.param({}, id="none set"),
        pytest.param({NAME: ""}, id="one set empty"),
        pytest.param({NAME + "_B": "x"}, id="the second set"),
        pytest.param({NAME + "_ÜNÏ": "\udcff"}, id="a non-ASCII name"),
        pytest.param({NAME: "a", NAME + "_B": "b"}, id="two set"),
    ],
)
def test_any_set_answers_as_os_environ(
    present: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether any of the names is in `os.environ` at that moment, as it changes."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    assert any_set(NAMES) is False
    for name, value in present.items():
        monkeypatch.setenv(name, value)
    assert any_set(NAMES) is bool(present) is any(n in os.environ for n in NAMES)
    for name in present:
        monkeypatch.delenv(name)
    assert any_set(NAMES) is False


def test_any_set_reads_a_replaced_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An `os.environ` replaced by a plain mapping is read through it."""
    monkeypatch.setattr(os, "environ", {NAME + "_B": "stand-in"})
    assert any_set(NAMES) is True
    assert any_set(("SLUICE_TEST_UNSET",)) is False
