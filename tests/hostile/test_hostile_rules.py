"""Rules against hostile patterns and hostile text.

Patterns that need a backtracking engine (backreferences, lookarounds, atomic groups,
possessive quantifiers, conditionals) are refused when a rules document is validated,
wherever a pattern may appear (a condition, a regex parse step, a redaction), with the
rule, the field and RE2's reason. Patterns that make Python's `re` backtrack
catastrophically are accepted and run by RE2, whose matching time is linear in the text:
each is compiled to an RE2 object (never `re.Pattern`) and run through the real handler
on a 100,000-character line built to make a backtracking engine explode; the test simply
completes. Tag patterns, which are not regexes, match log-derived tags with string
methods for the same reason. Cases: tests/data/hostile/rules_*.json.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.errors import RulesInvalid
from chalicelib.handlers import handle_cloudwatch_logs
from chalicelib.parsers.regex import compile_pattern
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.regexplan import compile_regex
from chalicelib.rules.schema import load_document, load_rules
from chalicelib.rules.transforms import Redactor

from .harness import RULES_TABLE, Account, Outcome, load_make, mocked_account

make = load_make()
REJECTED = make.cases("rules_rejected")
BACKTRACKING = make.cases("rules_backtracking")
PLACES = ("where", "parse", "redact")


def rule_using(place: str, pattern: str, rule_id: str = "hostile", tag: str = "**") -> dict:
    """A rule that uses `pattern` in one of the three places a pattern may appear."""
    rule: dict[str, Any] = {"id": rule_id, "match": {"tag": tag}}
    if place == "where":
        rule["match"]["where"] = [{"field": "message", "regex": pattern}]
        rule["actions"] = ["drop"]
    elif place == "parse":
        rule["parse"] = {"format": "regex", "pattern": f"(?P<m>{pattern})"}
    else:
        rule["transform"] = {"redact": {"custom": [pattern], "fields": ["message"]}}
    return rule


FIELDS = {
    "where": "match.where[0].regex",
    "parse": "parse.pattern",
    "redact": "transform.redact.custom",
}


# ---------------------------------------------------------------- refused at validation
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in REJECTED])
def test_pattern_needing_backtracking_is_refused_where_it_is_written(
    case: dict[str, Any], place: str
) -> None:
    """A pattern RE2 cannot run in linear time is refused by validation, naming the rule,
    the field it sits in and RE2's reason; nothing of the document is accepted."""
    doc = {
        "rules": [{"id": "fine", "match": {"tag": "app.**"}}, rule_using(place, case["pattern"])]
    }
    with pytest.raises(RulesInvalid) as info:
        load_document(doc)
    (err,) = info.value.errors
    assert (err.rule_id, err.field) == ("hostile", FIELDS[place])
    assert case["reason"] in err.reason, err.reason


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in REJECTED])
def test_document_level_redaction_refuses_the_same_patterns(case: dict[str, Any]) -> None:
    """The document-wide `redact` section validates its custom patterns the same way."""
    with pytest.raises(RulesInvalid) as info:
        load_document({"rules": [], "redact": {"custom": [case["pattern"]]}})
    assert case["reason"] in str(info.value)


# ---------------------------------------------------------------- accepted, run by RE2
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in BACKTRACKING])
def test_catastrophic_patterns_compile_to_re2_everywhere(case: dict[str, Any]) -> None:
    """Each accepted pattern is compiled by RE2 in all three places (condition, parser,
    redactor): the object that runs on log text is never a backtracking `re.Pattern`."""
    pattern = make.text(case["pattern"])
    load_rules({"rules": [rule_using(p, pattern, f"r-{p}") for p in PLACES]})
    compiled = [
        compile_regex(pattern),
        compile_pattern(f"(?P<m>{pattern})"),
        Redactor({"custom": [pattern], "patterns": []}).subs[0][1],
    ]
    for rx in compiled:
        assert not isinstance(rx, re.Pattern)
        assert type(rx).__module__.split(".")[0] == "re2", type(rx)


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        yield acct


def group_of(place: str, n: int) -> str:
    return f"/aws/lambda/{place}{n}"


@pytest.fixture(scope="module")
def backtracking_outcomes(account: Account) -> dict[tuple[str, str], tuple[str, Outcome]]:
    """One rules document holding every backtracking pattern in each place, each rule
    confined to its own log group; then each case's adversarial line through the
    handler: (case id, place) -> (line, what it left)."""
    rules = []
    for n, case in enumerate(BACKTRACKING):
        pattern = make.text(case["pattern"])
        for place in PLACES:
            tag = f"aws.lambda.{place}{n}"
            rules.append(rule_using(place, pattern, f"{place}-{n}", tag))
    account.apply_rules({"rules": rules})
    out = {}
    for n, case in enumerate(BACKTRACKING):
        line = make.text(case["line"])
        for place in PLACES:
            event = make.cloudwatch_event(group=group_of(place, n), messages=[line])
            out[(case["id"], place)] = (line, account.run(handle_cloudwatch_logs, event))
    account.apply_rules({"rules": []})
    return out


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in BACKTRACKING])
def test_catastrophic_pattern_runs_on_a_100k_line(
    case: dict[str, Any], place: str, backtracking_outcomes: dict[Any, Any]
) -> None:
    """A pattern that hangs a backtracking engine, on the line built to make it hang,
    completes through the handler with RE2's answer: a matching condition drops the
    event, a parse step adds its field or its parse_error, a redaction rewrites or keeps
    the message; nothing else changes and the ledger balances."""
    line, got = backtracking_outcomes[(case["id"], place)]
    assert got.balanced() and got.dead_letters == []
    rule_id = f"{place}-{BACKTRACKING.index(case)}"
    if place == "where":
        if case["matches"]:
            assert got.ledger == (1, 0, 1, 0) and dict(got.ledgers[0].dropped_by) == {rule_id: 1}
        else:
            assert got.ledger == (1, 1, 0, 0) and got.lines[0]["record"] == {"message": line}
        return
    assert got.ledger == (1, 1, 0, 0)
    (archived,) = got.lines
    record = archived["record"]
    if place == "parse":
        if case["matches"]:
            assert "parse_error" not in record and line.endswith(record["m"])
        else:
            assert record == {"message": line, "parse_error": "regex: no match"}
    else:
        redacted = record["message"] != line
        assert redacted is case["matches"]
        if redacted:
            assert "[REDACTED" in record["message"]


# ---------------------------------------------------------------- tag patterns
@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        pytest.param("*a*a*a*a*a*a*b", False, id="six stars and a missing literal"),
        pytest.param("*a*a*a*a*a*a*", True, id="six stars matching"),
        pytest.param("**.*a*a*a*a*b", False, id="after a double star"),
    ],
)
def test_tag_patterns_with_many_stars_run_on_long_tags(
    account: Account, pattern: str, matches: bool
) -> None:
    """A tag pattern with many stars in one part, against a 511-character tag from a log
    group (the longest CloudWatch allows), is decided at once (a backtracking regex took
    12 s on 300 characters with four stars, and grows as the sixth power here)."""
    group = "/" + "a" * 511
    rules = RuleSet(load_rules({"rules": [{"id": "stars", "match": {"tag": pattern}}]}))
    assert [r.id for r in rules.for_tag("a" * 511)] == (["stars"] if matches else [])
    account.apply_rules(
        {"rules": [{"id": "stars", "match": {"tag": pattern}, "actions": ["drop"]}]}
    )
    try:
        got = account.run(
            handle_cloudwatch_logs, make.cloudwatch_event(group=group, messages=["m"])
        )
    finally:
        account.apply_rules({"rules": []})
    assert got.balanced()
    assert got.ledger == ((1, 0, 1, 0) if matches else (1, 1, 0, 0))


# ---------------------------------------------------------------- a hand-edited table
def test_invalid_rules_written_past_validation_leave_everything_archived(account: Account) -> None:
    """A rules version holding a backreference, written into the table by hand (not by
    `sluice rules apply`, which validates), is refused at load: the handler archives
    everything and names the problem instead of failing or running the pattern."""
    import zlib

    doc = {"rules": [rule_using("where", "(a)\\1")]}
    ddb = account.dynamodb
    ddb.put_item(
        TableName=RULES_TABLE,
        Item={
            "pk": {"S": "version"},
            "sk": {"S": "00000999"},
            "doc": {"B": zlib.compress(orjson.dumps(doc))},
            "applied_at": {"S": "2026-11-26T10:00:00+00:00"},
            "source": {"S": "hand edit"},
            "rules": {"N": "1"},
        },
    )
    ddb.put_item(
        TableName=RULES_TABLE,
        Item={"pk": {"S": "config"}, "sk": {"S": "version"}, "current": {"N": "999"}},
    )
    account.runtime.rules.invalidate()
    try:
        got = account.run(handle_cloudwatch_logs, make.cloudwatch_event(messages=["aa", "b"]))
    finally:
        account.apply_rules({"rules": []})
    assert got.balanced() and got.ledger == (2, 2, 0, 0)
    assert got.result["rules_error"].startswith("rules in table invalid: ")
    assert "invalid escape sequence: \\1" in got.result["rules_error"]
