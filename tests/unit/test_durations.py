"""chalicelib.durations: the durations rules write (`30s`, `5m`, `1h`, `2d`, seconds)."""

from __future__ import annotations

import pytest

from chalicelib.durations import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("30s", 30, id="seconds"),
        pytest.param("5m", 300, id="minutes"),
        pytest.param("1h", 3600, id="hours"),
        pytest.param("2d", 172800, id="days"),
        pytest.param(90, 90, id="number"),
        pytest.param(0, None, id="zero"),
        pytest.param(-5, None, id="negative"),
        pytest.param("0m", None, id="zero minutes"),
        pytest.param("5w", None, id="unknown unit"),
        pytest.param("m", None, id="no number"),
        pytest.param("1.5m", None, id="fraction"),
        pytest.param(True, None, id="boolean"),
        pytest.param(None, None, id="none"),
    ],
)
def test_parse_duration(value, seconds):
    """Durations are a positive count of s, m, h or d (or whole seconds); anything else is None."""
    assert parse_duration(value) == seconds
