"""`sluice search --where`: the shorthand and YAML forms become the rules' own conditions."""

from __future__ import annotations

from typing import Any

import click
import pytest

from chalicelib.rules.conditions import compile_where
from sluice_cli.search import Search, parse_where


@pytest.mark.parametrize(
    ("text", "conds"),
    [
        pytest.param("level=ERROR", [{"field": "level", "equals": "ERROR"}], id="equals"),
        pytest.param("status!=200", [{"not": {"field": "status", "equals": "200"}}],
                     id="not equals"),
        pytest.param("message~time.?out", [{"field": "message", "regex": "time.?out"}], id="regex"),
        pytest.param("user!~^svc-", [{"not": {"field": "user", "regex": "^svc-"}}], id="not regex"),
        pytest.param("http.path=/a=b", [{"field": "http.path", "equals": "/a=b"}],
                     id="dotted field, '=' in the value"),
        pytest.param("trace_id?", [{"field": "trace_id", "exists": True}], id="exists"),
        pytest.param("!trace_id?", [{"not": {"field": "trace_id", "exists": True}}], id="absent"),
        pytest.param("{field: level, in: [ERROR, FATAL]}",
                     [{"field": "level", "in": ["ERROR", "FATAL"]}], id="YAML condition"),
        pytest.param('[{"field": "a", "contains": "x"}, {"field": "b", "exists": false}]',
                     [{"field": "a", "contains": "x"}, {"field": "b", "exists": False}],
                     id="JSON list"),
    ],
)  # fmt: skip
def test_where_forms_become_rule_conditions(text: str, conds: list[dict[str, Any]]) -> None:
    """Each form gives exactly the condition a rule would write."""
    assert parse_where(text) == conds


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("level", "use field=value", id="no operator"),
        pytest.param("=ERROR", "use field=value", id="no field"),
        pytest.param("message~(a", "invalid RE2", id="bad RE2"),
        pytest.param("message~(a)\\1", "invalid RE2", id="backreference"),
        pytest.param("{field: level, like: x}", "unknown key", id="unknown operator"),
        pytest.param("{field: level", "not YAML", id="broken YAML"),
    ],
)  # fmt: skip
def test_bad_where_is_a_clear_usage_error(text: str, says: str) -> None:
    """A condition the rules schema refuses is a usage error that says why."""
    with pytest.raises(click.BadParameter, match=says):
        parse_where(text)


@pytest.mark.parametrize(
    ("record", "kept"),
    [
        pytest.param({"level": "ERROR", "message": "db timed out"}, True, id="all hold"),
        pytest.param({"level": "INFO", "message": "db timed out"}, False, id="field fails"),
        pytest.param({"level": "ERROR", "message": "ok"}, False, id="grep fails"),
        pytest.param({"level": "ERROR", "msg": "timed out"}, True, id="grep on JSON, no message"),
    ],
)  # fmt: skip
def test_search_predicate_needs_every_filter(record: dict[str, Any], kept: bool) -> None:
    """An event is kept only when the time range, every condition and the RE2 pattern hold."""
    keep = Search(where=tuple(parse_where("level=ERROR")), grep="timed? ?out").predicate()
    assert keep({"record": record}, 0) is kept
    assert compile_where(parse_where("level=ERROR")) is not None


def test_time_range_is_half_open() -> None:
    """--from is inclusive and --to exclusive."""
    keep = Search(since_ms=1000, until_ms=2000).predicate()
    assert [keep({"record": {}}, t) for t in (999, 1000, 1999, 2000)] == [False, True, True, False]
