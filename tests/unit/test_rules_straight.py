"""chalicelib.rules.straight: each tag's rules compiled into one straight-line function.

Two promises are tested here. The generated source holds no text from a rules file
or a log (values, patterns, field names, ids are variables; identifiers are made
from counters), even for rules written to break out of it. And the compiled router
gives the interpreter's outcome (archived events and their records, drops, action
batches, match and transform counts) for every rule set and every message of the
test corpus: tests/data, events/, sluice_cli/corpus and the bench's payloads.
"""

from __future__ import annotations

import ast
import base64
import copy
import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.event import LogEvent
from chalicelib.pipeline import Routed, route, route_interpreted
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_document
from chalicelib.rules.straight import generate
from chalicelib.sources.cloudwatch import batch_from_document

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import seed_demo  # noqa: E402  (bench/)
import workload  # noqa: E402  (bench/)

HOSTILE = [
    '"; import os; os.system("id") #',
    "'''\nimport os\n'''",
    '__import__("os").system("true")',
    "\\x00\\n\\\\",
    "a\nb\r\nc",
    "{record.message}",
    "ev.tag = 'pwned'",
    "return 'x', None",
    "\u2028\u0000",
]
# Identifiers the fixed part of a router uses; every other name is generated.
FIXED_NAMES = {
    "run", "ev", "record", "matched", "transformed", "deliveries", "d", "n", "v", "t", "s",
    "type", "str", "int", "float", "_str", "keep_sample", "free_name",
    "run_all", "evs", "archive", "dropped", "cont",
}  # fmt: skip
FIXED_ATTRIBUTES = {"get", "append", "id", "tag", "record", "count", "setdefault"}
GENERATED = re.compile(r"^[a-z]\d+$")
_ABSENT = object()  # a record without the field


def ruleset(rules: list[dict[str, Any]]) -> RuleSet:
    return RuleSet(load_document({"rules": rules}).rules, version="t")


# ---------------------------------------------------------------- rule sets
SYNTHETIC: list[dict[str, Any]] = [
    {"id": "parse-kv", "priority": 1, "match": {"tag": "app.kv"}, "parse": {"format": "logfmt"}},
    {
        "id": "not-and-dots",
        "priority": 2,
        "match": {
            "tag": "**",
            "where": [
                {"not": {"field": "level", "in": ["DEBUG", "TRACE"]}},
                {"field": "http.status", "equals": 500},
            ],
        },
        "transform": {"set": {"server_error": True}},
    },
    {
        "id": "typed-equals",
        "priority": 3,
        "match": {"tag": "**", "where": [{"field": "ok", "equals": True}]},
        "transform": {"set": {"was_ok": "yes"}},
    },
    {
        "id": "null-equals",
        "priority": 4,
        "match": {"tag": "**", "where": [{"field": "user", "equals": None}]},
        "actions": [{"sns": {"topic": "ops-pager"}}],
    },
    {
        "id": "mixed-in",
        "priority": 5,
        "match": {"tag": "**", "where": [{"field": "code", "in": [1, "2", 3.5, False]}]},
        "transform": {"rename": {"code": "status_code"}},
    },
    {
        "id": "contains-and-regex",
        "priority": 6,
        "match": {
            "tag": "{aws,ecs}.**",
            "where": [
                {"field": "message", "contains": "e"},
                {"field": "message", "regex": "(?i)time(out|d out)|refused"},
            ],
        },
        "actions": [{"slack": {"channel": "#ops", "text": "{tag}: {message}"}}, "archive"],
    },
    {
        "id": "regex-plan",
        "priority": 7,
        "match": {"tag": "**", "where": [{"field": "message", "regex": "^START |^END "}]},
        "transform": {"set": {"platform": True}, "truncate": {"message": 20}},
    },
    {
        "id": "exists-not",
        "priority": 8,
        "match": {"tag": "aws.lambda.*", "where": [{"field": "request_id", "exists": False}]},
        "transform": {"sample": 3},
    },
    {
        "id": "rewrite",
        "priority": 9,
        "match": {"tag": "aws.lambda.*", "where": [{"field": "level", "equals": "ERROR"}]},
        "transform": {"rewrite_tag": "errors.{tag}"},
    },
    {
        "id": "errors-stop",
        "priority": 10,
        "match": {"tag": "errors.**"},
        "transform": {"set": {"escalated": True}},
        "stop": True,
    },
    {
        "id": "drop-info-ecs",
        "priority": 11,
        "match": {"tag": "ecs.*", "where": [{"field": "level", "equals": "INFO"}]},
        "actions": ["drop"],
    },
    {
        "id": "origin-account",
        "priority": 12,
        "match": {"tag": "aws.**", "account": ["123456789012"], "region": "us-*"},
        "transform": {"set": {"home": True}},
    },
    {
        "id": "origin-elsewhere",
        "priority": 12,
        "match": {
            "tag": "**",
            "account": ["9999*"],
            "where": [{"field": "message", "contains": "e"}],
        },
        "actions": ["drop"],
    },
    {
        "id": "everything",
        "priority": 12,
        "match": {"tag": "**"},
        "transform": {"remove": ["password"], "redact": True},
    },
    # Renames with each conflict mode, onto fields most records already have.
    {
        "id": "rename-skip",
        "priority": 13,
        "match": {"tag": "aws.**"},
        "transform": {"rename": {"message": "level"}, "rename_conflict": "skip"},
    },
    {
        "id": "rename-overwrite",
        "priority": 14,
        "match": {"tag": "**", "where": [{"field": "level", "exists": True}]},
        "transform": {
            "rename": {"level": "severity", "request_id": "level"},
            "rename_conflict": "overwrite",
            "set": {"renamed": 2},
        },
    },
    {
        "id": "rename-keep-both",
        "priority": 15,
        "match": {"tag": "**"},
        "transform": {"rename": {"severity": "message", "status": "message", "x": "x"}},
    },
]


# One rule per kind of string plan (rules/regexplan.py), each written inline by the
# compiled router or called as a bound test, on text and on numbers read as text.
_PLAN_PATTERNS = (
    ("status", "^5[0-9][0-9]$"),  # member
    ("status", "^2\\d"),  # head_member
    ("message", "\\d\\d ms$"),  # tail_member
    ("message", "ms$"),  # suffix
    ("level", "^INFO$"),  # eq
    ("message", "^REPORT"),  # prefix
    ("message", "timeout|refused|cache|order"),  # any, four words
    ("message", "a|b|c|d|e"),  # any, five words: a bound test
    ("message", "[Cc]omputer"),  # any, the words a class spells
    ("message", "(?i)error"),  # fold_in: a prefilter before RE2
    ("message", "(?i)warn|fail"),  # fold_any: a prefilter before RE2
    ("path", "^/api/orders$"),  # eq on a field most records lack
)
REGEX_PLANS: list[dict[str, Any]] = [
    {
        "id": f"plan-{i}",
        "priority": i + 1,
        "match": {"tag": "**", "where": [{"field": field, "regex": pattern}]},
        "transform": {"set": {f"plan_{i}": True}},
    }
    for i, (field, pattern) in enumerate(_PLAN_PATTERNS)
]


def demo_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "sluice_cli" / "data" / "demo-rules.yaml").read_text())
    rules: list[dict[str, Any]] = doc["rules"]
    return rules


RULE_SETS = {
    "bench": lambda: workload.RULES,
    "seed": lambda: seed_demo.SEED_RULES,
    "demo": demo_rules,
    "synthetic": lambda: SYNTHETIC,
    "regex-plans": lambda: REGEX_PLANS,
}

# ---------------------------------------------------------------- the corpus
LOG_GROUPS = (
    *workload.LOG_GROUPS,
    "/demo/quiet-billing",
    "/demo/chatty-frontend",
    "app.kv",
    "/aws/lambda/other",
)


def _strings(v: Any) -> Iterator[str]:
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from _strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from _strings(x)


def _awslogs_messages(doc: Any) -> Iterator[str]:
    data = doc.get("awslogs", {}).get("data") if isinstance(doc, dict) else None
    if isinstance(data, str):
        try:
            inner = json.loads(gzip.decompress(base64.b64decode(data)))
        except Exception:
            return
        if not isinstance(inner, dict) or not isinstance(inner.get("logEvents"), list):
            return
        for le in inner["logEvents"]:
            if isinstance(le, dict) and isinstance(le.get("message"), str):
                yield le["message"]


def corpus() -> list[str]:
    """Every message the repository holds as test data (capped per file)."""
    out: list[str] = []
    files = [
        *sorted((ROOT / "tests" / "data").rglob("*")),
        *sorted((ROOT / "events").rglob("*")),
        *sorted((ROOT / "sluice_cli" / "corpus").rglob("*")),
    ]
    for path in files:
        if not path.is_file():
            continue
        raw = path.read_bytes()[:2_000_000]
        text = raw.decode("utf-8", "replace")
        if path.suffix == ".json":
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if doc is not None:
                out += list(_awslogs_messages(doc))
                out += [s for s in _strings(doc) if len(s) < 20_000][:300]
                continue
        out += [ln for ln in text.splitlines() if len(ln) < 20_000][:300]
    for doc, _ in workload.payloads(200):
        out += [le["message"] for le in doc["logEvents"]]
    out += [line for _, line in seed_demo.lines(600)]
    out += HOSTILE
    return out


@pytest.fixture(scope="module")
def messages() -> list[str]:
    return corpus()


def events_for(messages: list[str]) -> list[LogEvent]:
    """The corpus as CloudWatch events of every log group, parsed as the source parses."""
    out: list[LogEvent] = []
    for g, group in enumerate(LOG_GROUPS):
        chunk = messages[g % 3 :: 3]  # each log group a third of the corpus
        log_events = [
            {"id": f"{g:02d}{i:054d}", "timestamp": 1_796_000_000_000 + i, "message": m}
            for i, m in enumerate(chunk)
        ]
        doc = {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": group,
            "logStream": "s",
            "subscriptionFilters": ["f"],
            "logEvents": log_events,
        }
        out += list(batch_from_document(doc, "us-east-1").events)
    return out


def outcome(routed: Routed) -> dict[str, Any]:
    """Everything routing decides, in its order (counts in the order rules first counted,
    action batches in the order they were opened: the order they are delivered in)."""
    return {
        "archive": [(ev.id, ev.tag, json.dumps(ev.record, default=repr)) for ev in routed.archive],
        "dropped": list(routed.dropped.items()),
        "deliveries": [(k, [ev.id for ev in evs]) for k, evs in routed.deliveries.items()],
        "matched": list(routed.matched.items()),
        "transformed": list(routed.transformed.items()),
    }


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_compiled_rules_route_the_corpus_as_the_interpreter_does(
    name: str, messages: list[str]
) -> None:
    """Over every message of the test corpus, in every log group, the compiled router's
    outcome (archive with records, drops, action batches, counts) is the interpreter's."""
    rules = ruleset(copy.deepcopy(RULE_SETS[name]()))
    events = events_for(messages)
    assert len(events) > 3000
    theirs = route_interpreted(copy.deepcopy(events), rules)
    ours = route(copy.deepcopy(events), rules)
    a, b = outcome(ours), outcome(theirs)
    assert a["matched"] == b["matched"]
    assert a["dropped"] == b["dropped"]
    assert a["transformed"] == b["transformed"]
    assert a["deliveries"] == b["deliveries"]
    assert a["archive"] == b["archive"]
    assert sum(n for _, n in b["matched"]) > 0


def test_document_redaction_runs_before_each_event_s_rules(messages: list[str]) -> None:
    """With the rules file's document-level redaction on, every event is redacted before
    its rules see it, in the compiled router as in the interpreter, over the corpus."""
    doc = load_document({"rules": copy.deepcopy(SYNTHETIC)})
    rules = RuleSet(doc.rules, version="t", redact=True)
    events = events_for(messages)
    a = outcome(route(copy.deepcopy(events), rules))
    b = outcome(route_interpreted(copy.deepcopy(events), rules))
    assert a == b
    assert any("[REDACTED" in rec or "REDACTED" in rec for _, _, rec in b["archive"])


# ---------------------------------------------------------------- no text in the source
def hostile_rules() -> list[dict[str, Any]]:
    """Rules whose ids, fields, values and patterns are written to break out of code."""
    rules = []
    for i, text in enumerate(HOSTILE):
        field = text if "." not in text else text.replace(".", "_")
        rules += [
            {
                "id": f"equals-{i}",
                "match": {
                    "tag": "**",
                    "where": [
                        {"field": field, "equals": text},
                        {"field": "message", "contains": text},
                    ],
                },
                "transform": {"set": {"hit": text}},
                "actions": [{"sns": {"topic": "ops-pager", "subject": text[:90] or "x"}}],
            },
            {
                "id": f"in-{i}",
                "match": {"tag": "**", "where": [{"field": field, "in": [text, "x"]}]},
            },
            {
                "id": f"exists-{i}",
                "match": {"tag": "**", "where": [{"field": field, "exists": True}]},
            },
            {
                "id": f"regex-{i}",
                "match": {"tag": "**", "where": [{"field": "message", "regex": "x"}]},
            },
        ]
    return rules


def test_generated_source_holds_no_text_from_rules_or_logs() -> None:
    """Rules whose field names and values are quotes, newlines, code and `__import__`
    compile to source with no string constant at all and no name that is not generated
    or part of the fixed code: nothing of theirs is in it."""
    rules = ruleset(hostile_rules())
    for batch in (False, True):
        _holds_no_text(rules, *generate(tuple(rules.rules), batch))


def _holds_no_text(rules: RuleSet, source: str, namespace: dict[str, Any]) -> None:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            assert node.value is None or node.value in (0, 1), ast.dump(node)
        if isinstance(node, ast.Name):
            assert node.id in FIXED_NAMES or GENERATED.match(node.id), node.id
        assert not isinstance(
            node, ast.JoinedStr | ast.Import | ast.ImportFrom | ast.Attribute
        ) or (isinstance(node, ast.Attribute) and node.attr in FIXED_ATTRIBUTES), ast.dump(node)
    for text in HOSTILE:
        assert text not in source
    for rule in rules.rules:
        assert rule.id not in source
    # The values are there, as variables.
    assert set(HOSTILE) <= {v for v in namespace.values() if isinstance(v, str)}


def test_hostile_rules_route_as_the_interpreter_routes() -> None:
    """The same hostile rules, over events whose fields are those texts, route as the
    interpreter routes them (the values are compared, never executed)."""
    rules = ruleset(hostile_rules())
    events = events_for(
        [json.dumps({t if "." not in t else t.replace(".", "_"): t, "message": t}) for t in HOSTILE]
        + HOSTILE
    )
    a = outcome(route(copy.deepcopy(events), rules))
    b = outcome(route_interpreted(copy.deepcopy(events), rules))
    assert a == b
    assert sum(n for _, n in b["matched"]) > len(HOSTILE)


def test_a_condition_on_the_event_s_source_is_asked_after_the_record_s() -> None:
    """A rule with a condition over the event's source (`origin`) matches only when both its
    record condition and the source condition hold, asked in that order."""
    from types import SimpleNamespace

    from chalicelib.rules.straight import compile_router

    asked: list[str] = []

    def where(record: dict[str, Any]) -> bool:
        asked.append("where")
        return bool(record.get("x"))

    def origin(source: dict[str, Any]) -> bool:
        asked.append("origin")
        return bool(source.get("account") == "111111111111")

    rule = SimpleNamespace(
        id="by-account", parse=None, where=where, where_conditions=None, origin=origin,
        transform=None, transform_spec={}, sample=None, actions=[], drop=True, stop=False,
        rewrite_tag=None, ordinal=0,
    )  # fmt: skip
    run = compile_router((rule,))
    outcomes = []
    for x, account in ((1, "111111111111"), (1, "222222222222"), (0, "111111111111")):
        ev = LogEvent("t", 0, {"x": x}, {"account": account}, "id")
        outcomes.append(run(ev, ev.record, {}, {}, {})[0])
    assert outcomes == ["by-account", None, None]
    assert asked == ["where", "origin", "where", "origin", "where"]


# One condition of each inlined kind on a top-level field, and values of every type a
# record holds for that field (absent, null, text, numbers, booleans, containers).
INLINED_CONDITIONS: list[dict[str, Any]] = [
    {"field": "f", "equals": "500"},
    {"field": "f", "equals": "1.5"},
    {"field": "f", "equals": "True"},
    {"field": "f", "equals": "None"},
    {"field": "f", "in": ["500", "2.0", "x"]},
    {"field": "f", "contains": "5"},
    {"field": "f", "regex": "^5[0-9][0-9]$"},
    {"field": "f", "regex": "(?i)computer"},
    {"field": "f", "regex": "timeout|refused"},
    {"field": "f", "regex": "^METRIC "},
    {"field": "f", "regex": "a.c"},
    {"field": "f", "exists": True},
    {"not": {"field": "f", "exists": True}},
    {"not": {"field": "f", "equals": "500"}},
]
FIELD_VALUES: list[Any] = [
    _ABSENT, None, True, False, 0, 1, 2, 500, 501, -500, 2**70, 1.5, 2.0, 500.0, -0.0,
    float("nan"), float("inf"), "", "500", "5", "1.5", "2.0", "True", "None", "x", "abc",
    "a\nc", "Computer says no", "COMPUTER", "read timeout", "METRIC x=1", " METRIC", [500],
    ["500"], {"k": 500}, {},
]  # fmt: skip


@pytest.mark.parametrize("cond", INLINED_CONDITIONS, ids=lambda c: json.dumps(c))
def test_inlined_conditions_answer_as_the_interpreter_for_every_value_type(
    cond: dict[str, Any],
) -> None:
    """Each condition the router writes inline (equals, in, contains, regex, exists, not)
    matches exactly the events the interpreter's predicate matches, whatever the field
    holds: nothing, null, text, an integer, a float, a boolean, a list or an object."""
    rules = ruleset(
        [
            {
                "id": "r",
                "match": {"tag": "**", "where": [copy.deepcopy(cond)]},
                "transform": {"set": {"hit": True}},
            }
        ]
    )
    events = [
        LogEvent("app", 0, {} if v is _ABSENT else {"f": v}, {}, f"e{i}")
        for i, v in enumerate(FIELD_VALUES)
    ]
    a = outcome(route(copy.deepcopy(events), rules))
    b = outcome(route_interpreted(copy.deepcopy(events), rules))
    assert a == b
    assert any(ev.record.get("hit") for ev in route(copy.deepcopy(events), rules).archive)
