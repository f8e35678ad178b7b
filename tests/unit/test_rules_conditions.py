"""chalicelib.rules.conditions: conditions compiled to predicates over records."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.rules.conditions import compile_condition, compile_where

# ---------------------------------------------------------------- conditions
REC: dict[str, Any] = {
    "message": "Payment gateway timeout after 3000 ms",
    "level": "ERROR",
    "status": 504,
    "ok": False,
    "nothing": None,
    "http": {"status": 200, "path": "/checkout", "headers": {"ua": "curl/8"}},
    "http.method": "POST",
    "tags": ["a", "b"],
}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        pytest.param({"field": "level", "equals": "ERROR"}, True, id="equals text"),
        pytest.param({"field": "level", "equals": "error"}, False, id="equals is case-sensitive"),
        pytest.param({"field": "status", "equals": 504}, True, id="equals number"),
        pytest.param({"field": "status", "equals": "504"}, True, id="equals number as text"),
        pytest.param({"field": "ok", "equals": False}, True, id="equals boolean"),
        pytest.param({"field": "nothing", "equals": None}, True, id="equals null"),
        pytest.param({"field": "missing", "equals": None}, False, id="missing is not null"),
        pytest.param({"field": "level", "in": ["WARN", "ERROR"]}, True, id="in"),
        pytest.param({"field": "level", "in": ["WARN", "INFO"]}, False, id="in, absent"),
        pytest.param({"field": "status", "in": [500, 504]}, True, id="in numbers"),
        pytest.param({"field": "missing", "in": ["x"]}, False, id="in on missing field"),
        pytest.param({"field": "message", "contains": "timeout"}, True, id="contains"),
        pytest.param(
            {"field": "message", "contains": "Timeout"}, False, id="contains is case-sensitive"
        ),
        pytest.param({"field": "status", "contains": "50"}, True, id="contains on a number's text"),
        pytest.param({"field": "missing", "contains": ""}, False, id="contains on missing field"),
        pytest.param({"field": "message", "regex": r"after \d+ ms$"}, True, id="regex"),
        pytest.param(
            {"field": "message", "regex": r"(?i)GATEWAY"}, True, id="regex case-insensitive"
        ),
        pytest.param({"field": "message", "regex": r"^timeout"}, False, id="regex anchored"),
        pytest.param({"field": "status", "regex": r"^5\d\d$"}, True, id="regex on a number's text"),
        pytest.param({"field": "missing", "regex": ".*"}, False, id="regex on missing field"),
        pytest.param({"field": "nothing", "regex": ".*"}, False, id="regex on null"),
        pytest.param({"field": "status", "exists": True}, True, id="exists"),
        pytest.param({"field": "nothing", "exists": True}, True, id="null exists"),
        pytest.param({"field": "missing", "exists": True}, False, id="exists, missing"),
        pytest.param({"field": "missing", "exists": False}, True, id="exists false, missing"),
        pytest.param({"field": "http.status", "equals": 200}, True, id="dotted nested"),
        pytest.param({"field": "http.headers.ua", "contains": "curl"}, True, id="dotted deep"),
        pytest.param({"field": "http.nope", "exists": False}, True, id="dotted missing leaf"),
        pytest.param({"field": "level.x", "exists": True}, False, id="dotted through text"),
        pytest.param(
            {"field": "http.method", "equals": "POST"}, True, id="literal dotted key wins"
        ),
        pytest.param({"not": {"field": "level", "equals": "ERROR"}}, False, id="not"),
        pytest.param({"not": {"field": "missing", "exists": True}}, True, id="not of missing"),
        pytest.param(
            {"not": {"not": {"field": "level", "equals": "ERROR"}}}, True, id="double not"
        ),
    ],
)
def test_condition(cond, expected):
    """Each operator, on plain, numeric, null, missing and dotted nested fields, and `not`."""
    assert compile_condition(cond)(REC) is expected


def test_where_needs_every_condition():
    """A `where` list holds only when all its conditions hold."""
    both = compile_where(
        [{"field": "level", "equals": "ERROR"}, {"field": "http.path", "equals": "/checkout"}]
    )
    one_fails = compile_where(
        [{"field": "level", "equals": "ERROR"}, {"field": "http.path", "equals": "/cart"}]
    )
    assert both(REC) is True
    assert one_fails(REC) is False
    assert compile_where([]) is None  # no conditions: the rule applies to every event of its tags
