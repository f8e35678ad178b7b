"""`rename` never loses a field it lands on (a rule says what happens), and `set` values
may be templates over the event (`{tag}`, `{record.x}`, `{tag_parts[N]}`, `{hostname}`),
substituted, never evaluated."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from chalicelib.errors import RulesInvalid
from chalicelib.pipeline import route
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_rules
from chalicelib.rules.transforms import compile_rename, compile_set

from .factories import log_event


def rules(*items: dict[str, Any]) -> RuleSet:
    return RuleSet(load_rules({"rules": list(items)}))


def transformed(transform: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The record of one event after a rule with `transform` (tag aws.lambda.checkout-api)."""
    ev = log_event(fields.pop("message", "hello"), **fields)
    route([ev], rules({"id": "t", "match": {"tag": "**"}, "transform": transform}))
    return ev.record


# ---------------------------------------------------------------- rename
@pytest.mark.parametrize(
    "policy, expected",
    [
        pytest.param(None, {"message": "kept", "message_1": "moved"}, id="default keeps both"),
        pytest.param("keep_both", {"message": "kept", "message_1": "moved"}, id="keep_both"),
        pytest.param("overwrite", {"message": "moved"}, id="overwrite"),
        pytest.param("skip", {"message": "kept", "event": "moved"}, id="skip"),
    ],
)
def test_rename_onto_an_existing_field_follows_the_rule(policy, expected):
    """Renaming `event` onto an existing `message` keeps both by default; the rule may
    say overwrite or skip instead."""
    t: dict[str, Any] = {"rename": {"event": "message"}}
    if policy:
        t["rename_conflict"] = policy
    assert transformed(t, message="kept", event="moved") == expected


def test_keep_both_takes_the_first_free_suffix():
    """With `message_1` taken too, the renamed value goes to `message_2`."""
    r = {"message": "a", "message_1": "b", "event": "c"}
    rename = compile_rename({"event": "message"})
    assert rename is not None
    rename(r)
    assert r == {"message": "a", "message_1": "b", "message_2": "c"}


@pytest.mark.parametrize("policy", ["keep_both", "overwrite", "skip"])
def test_rename_without_conflict_is_a_plain_move(policy):
    """Whatever the policy, a free target simply receives the field."""
    t = {"rename": {"event": "message"}, "rename_conflict": policy}
    ev = log_event("x")
    ev.record = {"event": "moved"}
    route([ev], rules({"id": "t", "match": {"tag": "**"}, "transform": t}))
    assert ev.record == {"message": "moved"}


# ---------------------------------------------------------------- templated set
@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("{tag}", "aws.lambda.checkout-api", id="tag"),
        pytest.param("{tag_parts[0]}", "aws", id="first tag part"),
        pytest.param("{tag_parts[-1]}", "checkout-api", id="last tag part"),
        pytest.param("{tag_parts[7]}", None, id="tag part out of range: not set"),
        pytest.param("svc-{tag_parts[2]}", "svc-checkout-api", id="tag part in text"),
        pytest.param("{record.user}", "alice", id="record field"),
        pytest.param("{user}", "alice", id="bare field name"),
        pytest.param("{record.http.status}", 502, id="nested field keeps its type"),
        pytest.param("{record.amount}", 4599, id="number keeps its type"),
        pytest.param("{record.nope}", None, id="missing field alone: not set"),
        pytest.param("{user} got {record.http.status}", "alice got 502", id="text"),
        pytest.param("{user} / {record.nope}", "alice / -", id="missing field in text"),
        pytest.param("{time}", "2026-11-26T10:07:01.000Z", id="event time"),
        pytest.param("{hostname}", socket.gethostname(), id="hostname"),
        pytest.param("{not a field}", "{not a field}", id="braces around prose stay text"),
        pytest.param("{injected}", "{tag} ${record.user} __import__('os')", id="never evaluated"),
        pytest.param(42, 42, id="non-text value as given"),
    ],
)
def test_set_value_templates_read_the_event(value, expected):
    """`set` substitutes placeholders from the event; the text it substitutes is never
    read as a template again or evaluated."""
    rec = transformed(
        {"set": {"out": value}},
        user="alice",
        amount=4599,
        http={"status": 502},
        injected="{tag} ${record.user} __import__('os')",
    )
    if expected is None:
        assert "out" not in rec
    else:
        assert rec["out"] == expected


def test_set_templates_read_the_record_before_this_set():
    """All of one `set` is rendered against the record as it was: order does not matter."""
    apply = compile_set({"a": "x", "b": "{a}-{c}", "c": "y"})
    r = {"a": "old", "c": "z"}
    apply(r, log_event("m"))
    assert r == {"a": "x", "b": "old-z", "c": "y"}


def test_set_after_rename_sees_the_renamed_field():
    """rename runs before set, so a template can name the renamed field."""
    rec = transformed(
        {"rename": {"usr": "user"}, "set": {"who": "{user}@{tag_parts[1]}"}}, usr="bob"
    )
    assert rec["who"] == "bob@lambda" and "usr" not in rec


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "transform, field, words",
    [
        pytest.param(
            {"rename": {"a": "b"}, "rename_conflict": "merge"},
            "transform.rename_conflict",
            "keep_both, overwrite, skip",
            id="unknown policy",
        ),
        pytest.param(
            {"set": {"part": "{tag_parts[x]}"}},
            "transform.set.part",
            "tag_parts[N]",
            id="index not an integer",
        ),
        pytest.param(
            {"set": {"part": "{tag_parts[1}"}},
            "transform.set.part",
            "tag_parts[N]",
            id="unclosed index",
        ),
    ],
)
def test_invalid_rename_or_set_names_the_rule_and_key(transform, field, words):
    """A bad policy or template is refused, naming the rule and the key."""
    with pytest.raises(RulesInvalid) as info:
        load_rules({"rules": [{"id": "shape", "match": {"tag": "**"}, "transform": transform}]})
    (err,) = info.value.errors
    assert (err.rule_id, err.field) == ("shape", field)
    assert words in err.reason


# ---------------------------------------------------------------- end to end
def test_rename_and_templated_set_through_the_handler(invoke, apply_rules, load_event, archive):
    """Through `cloudwatch_logs`: a JSON line's `event` onto an existing `message` keeps
    both; `set` templates fill service and source from the tag and record; the ledger
    balances."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "unify",
                    "match": {"tag": "aws.lambda.*"},
                    "transform": {
                        "rename": {"order_id": "order"},
                        "set": {
                            "service": "{tag_parts[2]}",
                            "origin": "{tag} order {record.order}",
                        },
                    },
                }
            ]
        }
    )
    result = invoke(load_event("cloudwatch_logs"))
    assert (result["received"], result["archived"], result["lost"]) == (9, 9, 0)
    lines = archive.lines()
    assert {x["record"]["service"] for x in lines} == {"checkout-api"}
    placed = lines[2]["record"]
    assert placed["order"] == "o-1842" and "order_id" not in placed
    assert placed["origin"] == "aws.lambda.checkout-api order o-1842"
    assert lines[0]["record"]["origin"] == "aws.lambda.checkout-api order -"
