"""The runtime side of `sluice tap`: read with the rules, sampled, rate-limited, harmless."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib import tap
from chalicelib.event import LogEvent
from chalicelib.pipeline import route
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_rules
from sluice_cli.tap import switch_off, switch_on

RULES = {
    "rules": [
        {
            "id": "noise",
            "priority": 1,
            "match": {"tag": "app.**", "where": [{"field": "path", "equals": "/hz"}]},
            "actions": ["drop"],
            "stop": True,
        },
        {
            "id": "tagger",
            "priority": 5,
            "match": {"tag": "app.**"},
            "transform": {"set": {"seen": True}},
        },
    ]
}


def events(n: int, tag: str = "app.web") -> list[LogEvent]:
    now = int(time.time() * 1000)
    return [
        LogEvent(
            tag,
            now,
            {"message": f"line {i}", "path": "/hz" if i % 2 else "/"},
            {"kind": "test"},
            f"e{i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    tap.set_sink(lambda fn, ls: out.extend((fn, line) for line in ls))
    yield out
    tap.set_sink(None)


@pytest.mark.parametrize(
    ("item", "n", "expected"),
    [
        pytest.param({"rate": 5}, 40, 5, id="rate limits lines per second"),
        pytest.param({"rate": 50, "tag": "other.**"}, 40, 0, id="tag selects nothing"),
        pytest.param({"rate": 50, "rule": "noise"}, 40, 20, id="only events the rule matches"),
        pytest.param({"rate": 500}, 100, 50, id="rate capped at MAX_RATE"),
    ],
)
def test_decision_lines_are_sampled_and_rate_limited(
    item: dict[str, Any], n: int, expected: int, runtime: Any, aws: Any, lines: list[Any]
) -> None:
    """An active tap writes one marked line per selected event, no more than its rate allows
    in a burst, each saying what the rules did; the events themselves are routed unchanged."""
    switch_on(
        aws.dynamodb, aws.state_table, "tapunit", item.get("tag"), item.get("rule"), item["rate"]
    )
    rules = RuleSet(load_rules(RULES))
    evs = events(n)

    tap.observe(runtime, evs, rules, "cloudwatch_logs", route)

    assert len(lines) == expected
    for fn, line in lines:
        assert fn == "cloudwatch_logs" and line.startswith(tap.MARKER)
        doc = json.loads(line[len(tap.MARKER) :])
        assert doc["tap"] == "tapunit"
        if doc["dropped_by"]:
            assert doc["rules"] == ["noise"] and not doc["archived"]
        else:
            assert doc["rules"] == ["tagger"] and doc["archived"]
    assert all("seen" not in ev.record for ev in evs)  # copies were routed, not the events


def test_no_tap_reads_once_per_rules_ttl_and_writes_nothing(
    runtime: Any, aws: Any, lines: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no tap active, the state table is read once per rules TTL, and nothing is written."""
    reads: list[Any] = []
    original = tap.read
    monkeypatch.setattr(tap, "read", lambda *a: reads.append(a) or original(*a))
    rules = RuleSet(load_rules(RULES))

    for _ in range(50):
        tap.observe(runtime, events(3), rules, "cloudwatch_logs", route)

    assert len(reads) == 1 and lines == []


def test_expired_or_switched_off_tap_stops(runtime: Any, aws: Any, lines: list[Any]) -> None:
    """A tap whose item expired (a killed `sluice tap`) or was deleted writes nothing."""
    switch_on(aws.dynamodb, aws.state_table, "tapgone", None, None, 10)
    aws.dynamodb.update_item(
        TableName=aws.state_table,
        Key=tap.KEY,
        UpdateExpression="SET expires_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}},
    )
    rules = RuleSet(load_rules(RULES))
    tap.observe(runtime, events(4), rules, "f", route)
    assert lines == []

    switch_on(aws.dynamodb, aws.state_table, "tapoff", None, None, 10)
    switch_off(aws.dynamodb, aws.state_table, "tapoff")
    runtime._tap_flag = None
    tap.observe(runtime, events(4), rules, "f", route)
    assert lines == []


def test_a_tap_item_of_another_operator_survives_switch_off(aws: Any) -> None:
    """Stopping a tap deletes only its own item, never a newer tap someone else started."""
    switch_on(aws.dynamodb, aws.state_table, "tapmine", None, None, 10)
    switch_on(aws.dynamodb, aws.state_table, "taptheirs", None, None, 10)

    switch_off(aws.dynamodb, aws.state_table, "tapmine")

    item = aws.dynamodb.get_item(TableName=aws.state_table, Key=tap.KEY)["Item"]
    assert item["tap"]["S"] == "taptheirs"


def test_pipeline_with_a_tap_keeps_the_ledger(
    runtime: Any, aws: Any, lines: list[Any], invoke: Any, load_event: Any
) -> None:
    """Through the handler, a tap changes nothing about what is archived or dropped."""
    switch_on(aws.dynamodb, aws.state_table, "tapledger", None, None, 50)

    result = invoke(load_event("cloudwatch_logs"))

    assert result["received"] == result["archived"] > 0 and result["lost"] == 0
    assert len(lines) == min(result["received"], 50)
