"""chalicelib.rules.compile: transforms and compiled rule sets."""

from __future__ import annotations

from typing import Any

from chalicelib.rules.compile import RuleSet, compile_transform
from chalicelib.rules.schema import load_rules


# ---------------------------------------------------------------- transforms
def test_transform_renames_then_sets_then_removes():
    """rename runs first, then set (which may overwrite), then remove (which wins over set)."""
    apply = compile_transform(
        {
            "rename": {"event": "message", "usr": "user"},
            "set": {"message": "overwritten?", "transformed": True, "tmp": 1},
            "remove": ["tmp", "password", "not-there"],
        }
    )
    record = {"event": "order placed", "usr": "alice", "password": "hunter2"}
    apply(record)
    assert record == {"message": "overwritten?", "user": "alice", "transformed": True}


def test_rename_of_a_missing_field_does_nothing():
    """Renaming a field the record lacks leaves the record as it was."""
    apply = compile_transform({"rename": {"event": "message"}})
    record = {"message": "kept"}
    apply(record)
    assert record == {"message": "kept"}


def test_rename_chain_uses_the_new_names():
    """Renames apply in the order written, so a renamed field can be renamed again."""
    apply = compile_transform({"rename": {"a": "b", "b": "c"}})
    record = {"a": 1}
    apply(record)
    assert record == {"c": 1}


def test_empty_transform_compiles_to_nothing():
    """A transform with nothing to do costs nothing per event."""
    assert compile_transform({}) is None
    assert compile_transform({"rename": {}, "set": {}, "remove": []}) is None


# ---------------------------------------------------------------- rule sets
def ruleset(*rules: dict[str, Any]) -> RuleSet:
    return RuleSet(load_rules({"rules": list(rules)}))


def test_rule_set_orders_by_priority_and_skips_disabled_rules():
    """Compiled rules follow priority order; a disabled rule is not compiled at all."""
    rs = ruleset(
        {"id": "late", "priority": 200},
        {"id": "off", "priority": 1, "enabled": False},
        {"id": "early", "priority": 10},
        {"id": "default"},
    )
    assert [r.id for r in rs.rules] == ["early", "default", "late"]
    assert len(rs) == 3


def test_rules_for_a_tag_are_resolved_once_and_cached():
    """`for_tag` returns the rules whose tag patterns match, and the same tuple on the next call."""
    rs = ruleset(
        {"id": "lambda", "match": {"tag": "aws.lambda.*"}},
        {"id": "all", "match": {"tag": "**"}},
        {"id": "ecs", "match": {"tag": ["ecs.**", "fargate.**"]}},
    )
    first = rs.for_tag("aws.lambda.checkout-api")
    assert [r.id for r in first] == ["lambda", "all"]
    assert rs.for_tag("aws.lambda.checkout-api") is first
    assert [r.id for r in rs.for_tag("fargate.web")] == ["all", "ecs"]


def test_drop_stop_and_actions_are_compiled():
    """`drop` and `archive` are routing flags, not deliveries; other actions keep their index."""
    rs = ruleset(
        {
            "id": "r",
            "actions": [{"slack": {"channel": "#ops"}}, "archive", {"sns": {"topic": "t"}}, "drop"],
            "stop": True,
        }
    )
    (rule,) = rs.rules
    assert rule.drop is True
    assert rule.stop is True
    assert [(i, a.name) for i, a in rule.actions] == [(0, "slack"), (2, "sns")]
