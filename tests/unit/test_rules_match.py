"""chalicelib.rules.match: tag patterns, conditions, the regex prefilter, transforms, rule sets."""

from __future__ import annotations

from typing import Any

import pytest
import re2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.rules.match import (
    RuleSet,
    TagPattern,
    compile_condition,
    compile_transform,
    compile_where,
    expand_braces,
    required_literal,
)
from chalicelib.rules.schema import load_rules


# ---------------------------------------------------------------- tag patterns
@pytest.mark.parametrize(
    ("pattern", "tag", "matches"),
    [
        pytest.param("app.web", "app.web", True, id="literal"),
        pytest.param("app.web", "app.web.1", False, id="literal is whole"),
        pytest.param("app.*", "app.web", True, id="* one part"),
        pytest.param("app.*", "app", False, id="* needs a part"),
        pytest.param("app.*", "app.web.1", False, id="* only one part"),
        pytest.param("app.**", "app", True, id="a.** matches a"),
        pytest.param("app.**", "app.web", True, id="** one part"),
        pytest.param("app.**", "app.web.1.2", True, id="** many parts"),
        pytest.param("app.**", "application", False, id="** is not a prefix match"),
        pytest.param("**", "anything.at.all", True, id="** alone"),
        pytest.param("**.error", "error", True, id="leading ** zero parts"),
        pytest.param("**.error", "a.b.error", True, id="leading ** many parts"),
        pytest.param("**.error", "a.error.b", False, id="leading ** anchored at end"),
        pytest.param("a.**.z", "a.z", True, id="inner ** zero parts"),
        pytest.param("a.**.z", "a.b.c.z", True, id="inner ** many parts"),
        pytest.param("a.**.z", "a.b.c", False, id="inner ** needs the end"),
        pytest.param("a.**.**.z", "a.z", True, id="repeated **"),
        pytest.param("**.b.**.d", "a.b.c.b.x.d", True, id="two ** with backtracking"),
        pytest.param("*.*", "a", False, id="two * need two parts"),
        pytest.param("app.{web,worker}", "app.worker", True, id="braces"),
        pytest.param("app.{web,worker}", "app.cron", False, id="braces exclusive"),
        pytest.param("{app,svc}.**", "svc.x.y", True, id="braces then **"),
        pytest.param("app-*.log", "app-web.log", True, id="* inside a part"),
        pytest.param("app-*.log", "app-.log", True, id="* inside a part may be empty"),
        pytest.param("app-*.log", "svc-web.log", False, id="* inside keeps the literal"),
        pytest.param("app-*.log", "app-web.x.log", False, id="* inside never crosses a dot"),
        pytest.param("*-api", "checkout-api", True, id="leading * in part"),
        pytest.param("aws.lambda.*", "aws.lambda.checkout-api", True, id="lambda tag"),
    ],
)
def test_tag_pattern(pattern, tag, matches):
    """Fluentd semantics: `*` one part, `**` zero or more parts, `{a,b}`, `*` inside a part."""
    assert TagPattern(pattern).matches(tag) is matches


def test_expand_braces_gives_every_combination():
    """Brace groups expand to their cartesian product, in order."""
    assert expand_braces("{a,b}.x.{1,2}") == ["a.x.1", "a.x.2", "b.x.1", "b.x.2"]


def test_part_star_is_not_a_regex():
    """Regex characters in a tag pattern are literal (only `*` is special)."""
    assert TagPattern("app$.*").matches("app$.web")
    assert not TagPattern("a.b").matches("axb")


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


# ---------------------------------------------------------------- regex prefilter
@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        pytest.param("(?i)computer", ("computer", True), id="case-insensitive"),
        pytest.param("(?i)COMPUTER", ("computer", True), id="folded needle"),
        pytest.param(r"timeout after \d+ ms", ("timeout after ", False), id="longest run"),
        pytest.param(r"^ERROR\b.*disk", ("ERROR", False), id="anchors break runs"),
        pytest.param("abc|abd", None, id="top-level alternation"),
        pytest.param("ab", None, id="too short"),
        pytest.param("(?i)café", None, id="non-ASCII case-insensitive"),
        pytest.param(r"\Qa.b\E", None, id="syntax only RE2 knows"),
        pytest.param("abc?", None, id="optional last char leaves two"),
    ],
)
def test_required_literal(pattern, literal):
    """The literal every match must contain, or None when none can be proven."""
    assert required_literal(pattern) == literal


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param("(?i)computer", "COMPUTER", True, id="upper-case text"),
        pytest.param("(?i)computer", "my CoMpUtEr broke", True, id="mixed case"),
        pytest.param("(?i)COMPUTER", "computer", True, id="upper-case pattern"),
        pytest.param("(?i)kelvin", "\u212aELVIN", True, id="Kelvin sign K"),
        pytest.param("(?i)stop", "\u017fTOP", True, id="long s"),
        pytest.param("(?i)class", "CLA\u017f\u017f", True, id="two long s"),
        pytest.param("(?i)strasse", "STRA\u00dfE", False, id="sharp s is not ss for RE2"),
        pytest.param("(?i)file", "\ufb01le", False, id="fi ligature"),
        pytest.param("(?i)istanbul", "\u0130STANBUL", False, id="dotted capital I"),
        pytest.param("(?i)computer", "c o m p u t e r", False, id="no match"),
        pytest.param("computer", "COMPUTER", False, id="case-sensitive"),
    ],
)
def test_prefiltered_regex_agrees_with_re2_on_case_folding(pattern, text, expected):
    """The literal prefilter never hides an RE2 match, including Unicode case-folding edge cases."""
    assert (re2.search(pattern, text) is not None) is expected
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is expected


PATTERNS = [
    "(?i)computer",
    "computer",
    "(?i)kelvin",
    "(?i)stop",
    "(?i)ss",
    "(?i)k.s",
    r"timeout after \d+ ms",
    r"(?i)error: [a-z]+",
    r"^ERROR\b",
    "abc|abd",
    "(?i)(?:abc|xyz)def",
    r"(?s)start.*end",
    r"\bK\b",
    "(?i)istanbul",
    "(?i)\u017ftop",
    "[Kk]elvin",
    r"a\.b\.c",
    "(?i)a{2}bbb",
    "(?m)^line$",
]
_ALPHABET = st.sampled_from(
    [
        *"abceiklnoprstuvxyzKSILEROMPUTABC .:-_\n",
        *["\u212a", "\u017f", "\u00df", "\u0130", "\u0131", "\ufb01", "\u1e9e", "\u03c3", "\u03c2"],
        *[
            "computer",
            "COMPUTER",
            "kelvin",
            "stop",
            "timeout after ",
            "abc",
            "xyzdef",
            "ERROR",
            " ms",
        ],
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(PATTERNS), st.lists(_ALPHABET, max_size=12).map("".join))
@example("(?i)kelvin", "\u212aELVIN")
@example("(?i)stop", "\u017fTOP")
@example("(?i)computer", "COMPUTER")
def test_prefilter_never_changes_a_result(pattern, text):
    """For any text, the prefiltered predicate answers exactly what a plain RE2 search answers."""
    plain = re2.search(pattern, text) is not None
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is plain


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


LITERAL_PATTERNS = [
    "^METRIC ",
    "timeout|refused",
    "(?i)(bot|crawler|spider)",
    "^/api/v1/",
    "computer$",
    "^abc$",
    "(?i)computer",
    "(foo)",
    "x|yz|",
    "(?i)straße",
    "a.b",
    "^$",
]


@given(
    st.sampled_from(LITERAL_PATTERNS), st.text(alphabet="abcxyzMETRICfooßSs/api1 $^", max_size=20)
)
def test_literal_plans_agree_with_re2(pattern: str, text: str) -> None:
    """An exact literal plan gives RE2's answer; a prefilter never rejects an RE2 match."""
    import re2

    from chalicelib.rules.match import literal_plan

    plan = literal_plan(pattern)
    truth = re2.compile(pattern).search(text) is not None
    if plan is None:
        return
    test, exact = plan
    if exact:
        assert test(text) is truth
    else:
        assert test(text) or not truth
