"""chalicelib.rules.schema: whole-document validation, every error located by rule and field."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import RulesInvalid
from chalicelib.rules.schema import ActionDef, load_rules

# The rules-file example of the README, as the YAML loader would hand it over.
DESIGN_EXAMPLE: dict[str, Any] = {
    "rules": [
        {
            "id": "unify-payload",
            "priority": 10,
            "match": {"tag": "app.**"},
            "transform": {"rename": {"event": "message"}, "set": {"transformed": True}},
        },
        {
            "id": "computer-alerts",
            "priority": 100,
            "match": {"tag": "app.**", "where": [{"field": "message", "regex": "(?i)computer"}]},
            "actions": [
                {
                    "slack": {
                        "channel": "#ops",
                        "text": "{tag}: {message}",
                        "runbook": "https://wiki.example/computer",
                    }
                },
                {"sns": {"topic": "ops-pager"}},
            ],
        },
        {
            "id": "health-noise",
            "match": {"tag": "**", "where": [{"field": "path", "equals": "/healthz"}]},
            "actions": ["drop"],
            "stop": True,
        },
    ]
}


def errors_of(doc: Any) -> set[tuple[str, str]]:
    """(rule id, field) of every error load_rules reports for `doc`."""
    with pytest.raises(RulesInvalid) as info:
        load_rules(doc)
    return {(e.rule_id, e.field) for e in info.value.errors}


def one_rule(**fields: Any) -> dict[str, Any]:
    return {"rules": [{"id": "r1", **fields}]}


# ---------------------------------------------------------------- valid documents
def test_design_example_loads_with_its_values():
    """The README rules example validates and keeps ids, priorities, actions and stop."""
    rules = load_rules(DESIGN_EXAMPLE)
    assert [r.id for r in rules] == ["unify-payload", "computer-alerts", "health-noise"]
    assert [r.priority for r in rules] == [10, 100, 100]
    assert rules[0].tags == ["app.**"]
    assert rules[0].transform == {"rename": {"event": "message"}, "set": {"transformed": True}}
    assert rules[1].actions == [
        ActionDef(
            "slack",
            {
                "channel": "#ops",
                "text": "{tag}: {message}",
                "runbook": "https://wiki.example/computer",
            },
        ),
        ActionDef("sns", {"topic": "ops-pager"}),
    ]
    assert rules[2].actions == [ActionDef("drop", {})]
    assert rules[2].stop is True
    assert rules[2].raw is DESIGN_EXAMPLE["rules"][2]  # kept as written, for storage


def test_defaults_for_a_minimal_rule():
    """A rule with only an id matches every tag, has priority 100, is enabled and does not stop."""
    (rule,) = load_rules({"rules": [{"id": "everything"}]})
    assert (rule.tags, rule.where, rule.priority, rule.enabled, rule.stop) == (
        ["**"],
        [],
        100,
        True,
        False,
    )


def test_rules_sort_by_priority_and_ties_keep_file_order():
    """Lower priority runs first; rules of equal priority stay in the order written."""
    doc = {
        "rules": [
            {"id": "c", "priority": 50},
            {"id": "b", "priority": 5},
            {"id": "a", "priority": 50},
            {"id": "z"},
        ]
    }
    assert [r.id for r in load_rules(doc)] == ["b", "c", "a", "z"]


@pytest.mark.parametrize(
    "doc",
    [pytest.param(None, id="null document"), pytest.param({"rules": []}, id="empty list")],
)
def test_empty_documents_give_no_rules(doc):
    """An empty file or an empty list is a valid document with no rules."""
    assert load_rules(doc) == []


def test_all_condition_operators_are_accepted():
    """equals, in, regex, contains, exists and a nested not all validate."""
    where = [
        {"field": "status", "equals": 500},
        {"field": "level", "in": ["ERROR", "FATAL"]},
        {"field": "message", "regex": r"timeout after \d+ ms"},
        {"field": "path", "contains": "/checkout"},
        {"field": "user.id", "exists": True},
        {"not": {"not": {"field": "level", "equals": "DEBUG"}}},
    ]
    (rule,) = load_rules(one_rule(match={"where": where}))
    assert rule.where == where


def test_action_names_alone_or_with_null_options():
    """`drop`, `archive` and `{drop: null}` are valid routing verbs without options."""
    (rule,) = load_rules(one_rule(actions=["archive", {"drop": None}]))
    assert rule.actions == [ActionDef("archive", {}), ActionDef("drop", {})]


# ---------------------------------------------------------------- one error each
@pytest.mark.parametrize(
    ("rule", "located"),
    [
        pytest.param({"priority": 1}, ("#1", "id"), id="missing id"),
        pytest.param({"id": "bad id!"}, ("#1", "id"), id="id with spaces"),
        pytest.param({"id": "r1", "prio": 1}, ("r1", "prio"), id="unknown rule key"),
        pytest.param({"id": "r1", "priority": "high"}, ("r1", "priority"), id="priority text"),
        pytest.param({"id": "r1", "priority": True}, ("r1", "priority"), id="priority boolean"),
        pytest.param({"id": "r1", "stop": "yes"}, ("r1", "stop"), id="stop text"),
        pytest.param({"id": "r1", "enabled": 1}, ("r1", "enabled"), id="enabled number"),
        pytest.param(
            {"id": "r1", "description": 5}, ("r1", "description"), id="description number"
        ),
        pytest.param({"id": "r1", "match": ["app.**"]}, ("r1", "match"), id="match a list"),
        pytest.param(
            {"id": "r1", "match": {"tags": "a"}}, ("r1", "match.tags"), id="unknown match key"
        ),
        pytest.param(
            {"id": "r1", "match": {"tag": "app logs"}}, ("r1", "match.tag"), id="tag space"
        ),
        pytest.param({"id": "r1", "match": {"tag": []}}, ("r1", "match.tag"), id="tag empty list"),
        pytest.param({"id": "r1", "match": {"tag": [1]}}, ("r1", "match.tag"), id="tag number"),
        pytest.param(
            {"id": "r1", "match": {"tag": "app.{a,b"}}, ("r1", "match.tag"), id="unbalanced brace"
        ),
        pytest.param(
            {"id": "r1", "match": {"tag": "{a,{b,c}}"}}, ("r1", "match.tag"), id="nested braces"
        ),
        pytest.param(
            {"id": "r1", "match": {"tag": "{a,b,c,d}.{a,b,c,d}.{a,b,c,d}.{a,b}"}},
            ("r1", "match.tag"),
            id="128 brace expansions",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": {}}}, ("r1", "match.where"), id="where a mapping"
        ),
        pytest.param(
            {"id": "r1", "match": {"where": ["x"]}}, ("r1", "match.where[0]"), id="condition text"
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"equals": 1}]}},
            ("r1", "match.where[0].field"),
            id="condition without field",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a"}]}},
            ("r1", "match.where[0]"),
            id="condition without operator",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a", "equals": 1, "contains": "x"}]}},
            ("r1", "match.where[0]"),
            id="two operators",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a", "in": "ERROR"}]}},
            ("r1", "match.where[0].in"),
            id="in not a list",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a", "exists": "yes"}]}},
            ("r1", "match.where[0].exists"),
            id="exists text",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a", "contains": 5}]}},
            ("r1", "match.where[0].contains"),
            id="contains number",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a", "equals": {"b": 1}}]}},
            ("r1", "match.where[0].equals"),
            id="equals a mapping",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"field": "a", "regex": 5}]}},
            ("r1", "match.where[0].regex"),
            id="regex number",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"not": {"field": "a", "equals": 1}, "field": "b"}]}},
            ("r1", "match.where[0]"),
            id="not with company",
        ),
        pytest.param(
            {"id": "r1", "match": {"where": [{"not": {"equals": 1}}]}},
            ("r1", "match.where[0].not.field"),
            id="invalid inside not",
        ),
        pytest.param({"id": "r1", "transform": []}, ("r1", "transform"), id="transform a list"),
        pytest.param(
            {"id": "r1", "transform": {"rename": {"a": 1}}},
            ("r1", "transform.rename"),
            id="rename to number",
        ),
        pytest.param(
            {"id": "r1", "transform": {"rename": {"a": ""}}},
            ("r1", "transform.rename"),
            id="rename to empty",
        ),
        pytest.param(
            {"id": "r1", "transform": {"set": ["a"]}}, ("r1", "transform.set"), id="set a list"
        ),
        pytest.param(
            {"id": "r1", "transform": {"remove": "a"}}, ("r1", "transform.remove"), id="remove text"
        ),
        pytest.param({"id": "r1", "actions": "drop"}, ("r1", "actions"), id="actions text"),
        pytest.param({"id": "r1", "actions": ["email"]}, ("r1", "actions[0]"), id="unknown action"),
        pytest.param(
            {"id": "r1", "actions": [{"slack": {"channel": "#a"}, "sns": {"topic": "t"}}]},
            ("r1", "actions[0]"),
            id="two actions in one mapping",
        ),
        pytest.param(
            {"id": "r1", "actions": [{"drop": {"x": 1}}]},
            ("r1", "actions[0].drop"),
            id="drop options",
        ),
        pytest.param(
            {"id": "r1", "actions": [{"slack": {}}]},
            ("r1", "actions[0].slack.channel"),
            id="slack no channel",
        ),
        pytest.param(
            {"id": "r1", "actions": [{"slack": "#ops"}]},
            ("r1", "actions[0].slack"),
            id="slack options text",
        ),
        pytest.param(
            {"id": "r1", "actions": [{"slack": {"channel": 5}}]},
            ("r1", "actions[0].slack.channel"),
            id="slack channel number",
        ),
        pytest.param(
            {
                "id": "r1",
                "actions": [{"slack": {"channel": "#ops", "runbook": "javascript:alert(1)"}}],
            },
            ("r1", "actions[0].slack.runbook"),
            id="runbook not http",
        ),
        pytest.param(
            {
                "id": "r1",
                "actions": [{"slack": {"channel": "#ops", "runbook": "https://x/<!channel>"}}],
            },
            ("r1", "actions[0].slack.runbook"),
            id="runbook with angle brackets",
        ),
        pytest.param(
            {"id": "r1", "actions": [{"sns": {"topic": "ops pager"}}]},
            ("r1", "actions[0].sns.topic"),
            id="sns topic with space",
        ),
    ],
)
def test_each_error_is_located_by_rule_and_field(rule, located):
    """An invalid rule is reported with its rule id (or position) and the exact field path."""
    assert located in errors_of({"rules": [rule]})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("chanel", "#ops", id="slack typo"),
        pytest.param("webhook", "https://hooks.example", id="slack unsupported option"),
    ],
)
def test_unknown_action_options_are_rejected(option, value):
    """An option the action does not declare is an error naming the option."""
    found = errors_of(one_rule(actions=[{"slack": {"channel": "#ops", option: value}}]))
    assert found == {("r1", f"actions[0].slack.{option}")}


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"(a)\1", id="backreference"),
        pytest.param("(?=computer)comp", id="lookahead"),
        pytest.param("(?!x)y", id="negative lookahead"),
        pytest.param("(?<=a)b", id="lookbehind"),
        pytest.param("a{2,1}", id="bad repetition"),
        pytest.param("(unclosed", id="unclosed group"),
    ],
)
def test_patterns_re2_refuses_are_rejected_with_the_reason(pattern):
    """Backreferences, lookarounds and bad syntax are reported as invalid RE2 patterns."""
    with pytest.raises(RulesInvalid) as info:
        load_rules(one_rule(match={"where": [{"field": "message", "regex": pattern}]}))
    (err,) = info.value.errors
    assert (err.rule_id, err.field) == ("r1", "match.where[0].regex")
    assert "invalid RE2 pattern" in err.reason
    assert repr(pattern) in err.reason


def test_unknown_keys_at_every_level_are_rejected():
    """Unknown keys are refused in document, rule, match, condition, transform and options."""
    doc = {
        "rule": [],
        "rules": [
            {
                "id": "r1",
                "when": "always",
                "match": {"tag": "**", "source": "x", "where": [{"field": "a", "equal": 1}]},
                "transform": {"rename": {}, "drop_fields": ["a"]},
                "actions": [{"sns": {"topic": "t", "subjet": "typo"}}],
            }
        ],
    }
    assert {
        ("-", "(document)"),
        ("r1", "when"),
        ("r1", "match.source"),
        ("r1", "match.where[0].equal"),
        ("r1", "transform.drop_fields"),
        ("r1", "actions[0].sns.subjet"),
    } <= errors_of(doc)


# ---------------------------------------------------------------- all at once
def test_all_errors_of_all_rules_are_reported_at_once():
    """A document with several bad rules lists every problem in one RulesInvalid."""
    doc = {
        "rules": [
            {"id": "ok-1"},
            {"id": "bad-prio", "priority": "soon"},
            {"id": "bad-regex", "match": {"where": [{"field": "m", "regex": "(?=x)"}]}},
            "not a mapping",
            {"id": "bad-action", "actions": [{"slack": {"channel": "#ops", "colour": "red"}}]},
            {"id": "ok-1"},
            {"id": "many", "stop": 1, "enabled": "no", "transform": {"remove": "x"}},
        ]
    }
    with pytest.raises(RulesInvalid) as info:
        load_rules(doc)
    found = {(e.rule_id, e.field) for e in info.value.errors}
    assert found == {
        ("bad-prio", "priority"),
        ("bad-regex", "match.where[0].regex"),
        ("#4", "(rule)"),
        ("bad-action", "actions[0].slack.colour"),
        ("ok-1", "id"),
        ("many", "stop"),
        ("many", "enabled"),
        ("many", "transform.remove"),
    }
    message = str(info.value)
    assert message.startswith("8 error(s) in rules")
    assert "rule 'bad-prio', priority: must be an integer" in message


def test_duplicate_ids_are_reported_once_per_extra_copy():
    """Each repeat of an id is an error on that id, even when the first copy is itself invalid."""
    doc = {
        "rules": [
            {"id": "dup", "priority": "x"},
            {"id": "dup"},
            {"id": "dup"},
        ]
    }
    with pytest.raises(RulesInvalid) as info:
        load_rules(doc)
    dup_errors = [e for e in info.value.errors if e.reason == "duplicate rule id"]
    assert [(e.rule_id, e.field) for e in dup_errors] == [("dup", "id"), ("dup", "id")]


@pytest.mark.parametrize(
    ("doc", "located"),
    [
        pytest.param(["rules"], ("-", "(document)"), id="document a list"),
        pytest.param("rules: []", ("-", "(document)"), id="document text"),
        pytest.param({"rules": {"id": "r1"}}, ("-", "rules"), id="rules a mapping"),
    ],
)
def test_malformed_documents_are_located(doc, located):
    """A document that is not a mapping with a `rules` list says so."""
    assert located in errors_of(doc)


def test_a_redaction_that_matches_empty_text_is_refused():
    """A custom redaction pattern that can match nothing (`x*`) is refused at validation:
    it would put the replacement between every two characters of every message."""
    from chalicelib.errors import RulesInvalid
    from chalicelib.rules.schema import load_rules

    with pytest.raises(RulesInvalid) as e:
        load_rules({"rules": [{"id": "r", "transform": {"redact": {"custom": ["x*"]}}}]})
    assert "matches empty text" in str(e.value)


def test_the_rules_package_never_loads_alerting():
    """Validating and compiling rules loads no alerting module: rules hand alerting typed
    specs, and nothing in `chalicelib.rules` reaches back (no import cycle to dodge)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import chalicelib.rules.compile, chalicelib.rules.schema, chalicelib.rules.store\n"
        "print(sorted(m for m in sys.modules if m.startswith('chalicelib.alerting')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
