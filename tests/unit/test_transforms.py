"""chalicelib.rules.transforms: redact, truncate, sample and rewrite_tag, alone and in rules."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from chalicelib.errors import RulesInvalid
from chalicelib.pipeline import route
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_document, load_rules
from chalicelib.rules.transforms import (
    BUILTIN,
    Redactor,
    compile_rewrite_tag,
    compile_truncate,
    keep_sample,
)

from .factories import log_event, log_events

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters (AWS docs' example)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk0"


def rules(*items: dict[str, Any], redact: Any = None) -> RuleSet:
    return RuleSet(load_rules({"rules": list(items)}), redact=redact)


# ---------------------------------------------------------------- built-in patterns
@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # AWS access key ids
        pytest.param(
            "aws_access_key",
            "key AKIAIOSFODNN7EXAMPLE used",
            "key [REDACTED:aws_access_key] used",
            id="access key id",
        ),
        pytest.param(
            "aws_access_key",
            "temp ASIAIOSFODNN7EXAMPLE",
            "temp [REDACTED:aws_access_key]",
            id="temporary access key id",
        ),
        pytest.param("aws_access_key", "AKIA1234 is short", None, id="AKIA prefix, too short"),
        pytest.param("aws_access_key", "xAKIAIOSFODNN7EXAMPLE", None, id="inside a longer word"),
        # AWS secret access keys
        pytest.param(
            "aws_secret_key",
            f"aws_secret_access_key={SECRET_KEY}",
            "aws_secret_access_key=[REDACTED:aws_secret_key]",
            id="secret key assignment",
        ),
        pytest.param(
            "aws_secret_key",
            f'{{"AWS_SECRET_ACCESS_KEY": "{SECRET_KEY}"}}',
            '{"AWS_SECRET_ACCESS_KEY": "[REDACTED:aws_secret_key]"}',
            id="secret key in JSON text",
        ),
        pytest.param(
            "aws_secret_key", f"commit sha={SECRET_KEY}", None, id="40 chars, no key name"
        ),
        pytest.param("aws_secret_key", "aws_secret_access_key=short", None, id="not 40 chars"),
        # bearer tokens and JWTs
        pytest.param(
            "bearer",
            "Authorization: Bearer abc.DEF-123_x~y+z/w==",
            "Authorization: Bearer [REDACTED:bearer]",
            id="bearer token",
        ),
        pytest.param("bearer", "forbearer 12345", None, id="bearer inside a word"),
        pytest.param("jwt", f"token {JWT} ok", "token [REDACTED:jwt] ok", id="JWT"),
        pytest.param("jwt", "eyJhbGciOiJIUzI1NiJ9 alone", None, id="JWT header alone"),
        # passwords in key=value text
        pytest.param(
            "password",
            "login password=hunter2 user=bob",
            "login password=[REDACTED:password] user=bob",
            id="password=",
        ),
        pytest.param(
            "password",
            'pwd: s3cret; api_key="k-123" token=abc',
            'pwd: [REDACTED:password]; api_key="[REDACTED:password]" token=[REDACTED:password]',
            id="pwd, api_key, token",
        ),
        pytest.param(
            "password",
            "https://h/login?user=bob&password=hunter2&next=/",
            "https://h/login?user=bob&password=[REDACTED:password]&next=/",
            id="password in a query string",
        ),
        pytest.param("password", "password reset requested for bob", None, id="word password"),
        # email addresses
        pytest.param("email", "mail to bob@example.com", "mail to [REDACTED:email]", id="email"),
        pytest.param(
            "email",
            "GET https://shop.example/u?email=bob.smith+x@mail.example.co.uk&page=2",
            "GET https://shop.example/u?email=[REDACTED:email]&page=2",
            id="email inside a URL",
        ),
        pytest.param("email", "root@localhost and a @ b", None, id="no domain suffix"),
        # card numbers (Luhn)
        pytest.param(
            "card", "card 4111 1111 1111 1111 ok", "card [REDACTED:card] ok", id="Visa spaced"
        ),
        pytest.param("card", "4111-1111-1111-1111", "[REDACTED:card]", id="Visa dashed"),
        pytest.param("card", "amex 378282246310005", "amex [REDACTED:card]", id="Amex"),
        pytest.param(
            "card",
            "card 4111 1111 1111 1111 123",
            "card [REDACTED:card] 123",
            id="card followed by its CVV",
        ),
        pytest.param(
            "card", "qty 2 4111 1111 1111 1111", "qty 2 [REDACTED:card]", id="number before card"
        ),
        pytest.param("card", "ref 4111111111111112", None, id="16 digits failing Luhn"),
        pytest.param("card", "order 1234567 shipped", None, id="short number"),
        pytest.param("card", "ts=1795687621007", None, id="epoch ms passing Luhn"),
        # IPv4
        pytest.param(
            "ipv4", "from 10.0.0.1 port 22", "from [REDACTED:ipv4] port 22", id="IPv4 address"
        ),
        pytest.param("ipv4", "255.255.255.255", "[REDACTED:ipv4]", id="broadcast"),
        pytest.param("ipv4", "python 3.12.1 and v1.2.3", None, id="version strings"),
        pytest.param("ipv4", "999.1.1.1 and 10.0.0.256", None, id="octets over 255"),
        pytest.param("ipv4", "build v1.2.3.4", None, id="four-part version after a letter"),
    ],
)
def test_builtin_pattern(pattern, text, expected):
    """Each built-in pattern redacts what it names and leaves look-alikes (None: unchanged)."""
    assert Redactor({"patterns": [pattern]}).text(text) == (text if expected is None else expected)


def test_every_builtin_pattern_is_covered():
    """The table above has a case for every built-in pattern."""
    assert set(BUILTIN) == {
        "aws_access_key",
        "aws_secret_key",
        "bearer",
        "jwt",
        "password",
        "email",
        "card",
        "ipv4",
    }


def test_all_patterns_together_leave_ordinary_text_alone():
    """With every pattern on, an ordinary log line is unchanged."""
    line = "GET /api/v1.2.3/cart 200 in 35 ms, order 1234567, retry 2 of 3, python 3.12.1"
    assert Redactor({}).text(line) == line


# ---------------------------------------------------------------- records
def test_fields_named_like_secrets_are_replaced_whole():
    """With `password` on, a string field named like a secret is replaced whatever its value."""
    record = {
        "message": "ok",
        "password": "hunter2",
        "db_password": "x",
        "pwd": "y",
        "passphrase": "correct horse",
        "client_secret": "c",
        "headers": {"Authorization": "Bearer abc"},
        "items": [{"apikey": "k"}, "bob@example.com"],
        "tokens_used": 5,
    }
    Redactor({})(record)
    mark = "[REDACTED:password]"
    assert record == {
        "message": "ok",
        "password": mark,
        "db_password": mark,
        "pwd": mark,
        "passphrase": mark,
        "client_secret": mark,
        "headers": {"Authorization": mark},
        "items": [{"apikey": mark}, "[REDACTED:email]"],
        "tokens_used": 5,
    }


def test_field_names_are_not_secrets_without_the_password_pattern():
    """Only the `password` pattern redacts by field name."""
    record = {"password": "hunter2", "note": "bob@example.com"}
    Redactor({"patterns": ["email"]})(record)
    assert record == {"password": "hunter2", "note": "[REDACTED:email]"}


def test_fields_restrict_redaction():
    """With `fields`, only the named (dotted) fields are redacted; missing ones are harmless."""
    record = {
        "message": "ip 10.0.0.1",
        "user": {"email": "bob@example.com", "name": "bob@example.com"},
        "password": "hunter2",
        "other": "10.0.0.1",
    }
    Redactor({"fields": ["message", "user.email", "password", "missing.deep"]})(record)
    assert record == {
        "message": "ip [REDACTED:ipv4]",
        "user": {"email": "[REDACTED:email]", "name": "bob@example.com"},
        "password": "[REDACTED:password]",
        "other": "10.0.0.1",
    }


def test_custom_patterns_and_replacement():
    """Custom RE2 patterns are named custom1, custom2...; `replacement` sets the mark."""
    r = Redactor(
        {
            "patterns": ["email"],
            "custom": [r"ORD-\d+", r"(?i)session=[a-f0-9]{8}"],
            "replacement": "<{name}>",
        }
    )
    assert r.text("order ORD-1234 by bob@example.com session=DEADBEEF password=x") == (
        "order <custom1> by <email> <custom2> password=x"
    )


def test_hostile_records_are_handled_quickly():
    """Deep nesting and long near-miss text neither crash nor take long (RE2 is linear)."""
    deep: dict[str, Any] = {"message": "bob@example.com"}
    for _ in range(200):
        deep = {"inner": deep}
    long_text = "a" * 200_000 + "@" + "b." * 50_000
    start = time.monotonic()
    Redactor({})(deep)
    out = Redactor({}).text(long_text)
    assert time.monotonic() - start < 5
    assert len(out) > 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"patterns": ["ssn"]}, "transform.redact.patterns", id="unknown pattern"),
        pytest.param({"custom": [r"(a)\1"]}, "transform.redact.custom", id="backreference"),
        pytest.param({"custom": "x"}, "transform.redact.custom", id="custom not a list"),
        pytest.param({"fields": "message"}, "transform.redact.fields", id="fields not a list"),
        pytest.param({"mask": "*"}, "transform.redact.mask", id="unknown key"),
        pytest.param("yes", "transform.redact", id="not a mapping"),
    ],
)
def test_invalid_redact_specs_are_rejected(spec, field):
    """A bad redact spec is reported with its rule and field; nothing loads."""
    with pytest.raises(RulesInvalid) as e:
        load_rules({"rules": [{"id": "r", "transform": {"redact": spec}}]})
    assert ("r", field) in [(er.rule_id, er.field) for er in e.value.errors]


def test_invalid_document_redact_is_rejected():
    """The document-level `redact` is validated like a rule's."""
    with pytest.raises(RulesInvalid) as e:
        load_document({"redact": {"patterns": ["nope"]}, "rules": []})
    assert [er.field for er in e.value.errors] == ["redact.patterns"]


# ---------------------------------------------------------------- redaction in routing
def test_document_redaction_runs_before_every_rule():
    """Document-level redact cleans each event before rules: a rule keyed on the secret misses."""
    ev = log_event("login bob@example.com password=hunter2", tag="app.web")
    out = route(
        [ev],
        rules(
            {
                "id": "sees-secret",
                "match": {"where": [{"field": "message", "contains": "hunter2"}]},
                "actions": [{"slack": {"channel": "#ops"}}],
            },
            redact=True,
        ),
    )
    assert out.deliveries == {}
    assert out.matched == {}
    assert ev.record["message"] == "login [REDACTED:email] password=[REDACTED:password]"
    assert out.archive == [ev]


def test_rule_redaction_applies_to_matched_events_only():
    """A rule's redact changes the events that rule matched and no others."""
    events = [
        log_event("user bob@example.com failed", id="1", level="ERROR"),
        log_event("user eve@example.com ok", id="2", level="INFO"),
    ]
    route(
        events,
        rules(
            {
                "id": "scrub-errors",
                "match": {"where": [{"field": "level", "equals": "ERROR"}]},
                "transform": {"redact": {"patterns": ["email"]}},
            }
        ),
    )
    assert [e.record["message"] for e in events] == [
        "user [REDACTED:email] failed",
        "user eve@example.com ok",
    ]


# ---------------------------------------------------------------- truncate
def test_truncate_caps_fields_and_notes_their_size():
    """Long string fields are cut to the cap and their original length recorded."""
    cut = compile_truncate({"message": 5, "detail": 3, "code": 1})
    record = {"message": "hello world", "detail": "abc", "code": 12345}
    cut(record)
    assert record == {
        "message": "hello",
        "detail": "abc",
        "code": 12345,
        "truncated_fields": {"message": 11},
    }


def test_truncate_in_a_rule():
    """`truncate` in a rule cuts matched events' fields before its actions get them."""
    ev = log_event("x" * 5000)
    out = route([ev], rules({"id": "cap", "transform": {"truncate": {"message": 100}}}))
    assert len(out.archive[0].record["message"]) == 100
    assert out.archive[0].record["truncated_fields"] == {"message": 5000}


# ---------------------------------------------------------------- sample
IDS = [f"ev-{i:06d}" for i in range(10_000)]


def test_sample_is_deterministic_by_id():
    """The same ids are kept on every run (a retried invocation samples the same events)."""
    first = [i for i in IDS if keep_sample(i, 10)]
    assert first == [i for i in IDS if keep_sample(i, 10)]


@pytest.mark.parametrize("rate", [1, 2, 10, 100])
def test_sample_keeps_about_one_in_n(rate):
    """Over 10,000 fixed ids, 1 in N is kept within four binomial standard deviations."""
    kept = sum(keep_sample(i, rate) for i in IDS)
    p = 1 / rate
    assert abs(kept - len(IDS) * p) <= 4 * math.sqrt(len(IDS) * p * (1 - p)) + 0.5


def test_sample_in_a_rule_drops_the_rest_as_counted_drops():
    """`sample: 4` keeps the same events on two runs; the others are dropped by the rule."""

    def run() -> tuple[list[str], dict[str, int], list[str]]:
        events = log_events(400, message="noisy {i}")
        out = route(
            events,
            rules(
                {
                    "id": "thin",
                    "transform": {"sample": 4},
                    "actions": [{"slack": {"channel": "#ops"}}],
                }
            ),
        )
        delivered = [e.id for e in out.deliveries[("thin", 0)]]
        return [e.id for e in out.archive], out.dropped, delivered

    archived, dropped, delivered = run()
    assert run() == (archived, dropped, delivered)
    assert archived == delivered
    assert dropped == {"thin": 400 - len(archived)}
    assert 60 <= len(archived) <= 140


# ---------------------------------------------------------------- rewrite_tag
@pytest.mark.parametrize(
    ("template", "fields", "expected"),
    [
        pytest.param("app.{record.service}", {"service": "checkout"}, "app.checkout", id="field"),
        pytest.param("svc.{service}.{tag}", {"service": "cart"}, "svc.cart.app.web", id="tag kept"),
        pytest.param("app.{record.service}", {}, "app.unknown", id="missing field"),
        pytest.param(
            "app.{service}", {"service": "../a.b c*"}, "app.___a_b_c_", id="hostile field"
        ),
        pytest.param("app.{service}", {"service": "é-ok_1"}, "app.é-ok_1", id="unicode letters"),
    ],
)
def test_rewrite_tag_renders_a_template(template, fields, expected):
    """Tag parts from log content keep to tag characters: dots and the rest become `_`."""
    ev = log_event("m", tag="app.web", **fields)
    assert compile_rewrite_tag(template)(ev) == expected


def test_rewrite_tag_continues_with_later_rules_for_the_new_tag_only():
    """After a rewrite, only later rules whose patterns match the new tag apply."""
    ev = log_event("paid", tag="app.web", service="checkout")
    slack = [{"slack": {"channel": "#ops"}}]
    out = route(
        [ev],
        rules(
            {"id": "earlier-svc", "priority": 5, "match": {"tag": "svc.**"}, "actions": slack},
            {
                "id": "retag",
                "priority": 10,
                "match": {"tag": "app.**"},
                "transform": {"rewrite_tag": "svc.{record.service}"},
            },
            {"id": "later-app", "priority": 20, "match": {"tag": "app.**"}, "actions": slack},
            {"id": "later-svc", "priority": 30, "match": {"tag": "svc.**"}, "actions": slack},
        ),
    )
    assert ev.tag == "svc.checkout"
    assert list(out.deliveries) == [("later-svc", 0)]
    assert out.matched == {"retag": 1, "later-svc": 1}
    assert out.archive == [ev]


def test_parse_and_transforms_in_one_rule():
    """One rule parses logfmt, tests a parsed field, then redacts, truncates and retags."""
    ev = log_event("svc=billing user=bob@example.com msg=the-quick-brown-fox-jumps", tag="app.raw")
    out = route(
        [ev],
        rules(
            {
                "id": "structure",
                "match": {"tag": "app.raw"},
                "parse": {"format": "logfmt"},
                "transform": {
                    "rewrite_tag": "app.{record.svc}",
                    "truncate": {"message": 9},
                    "redact": {"patterns": ["email"], "fields": ["user"]},
                },
            },
            {"id": "billing", "match": {"tag": "app.billing"}, "actions": ["drop"]},
        ),
    )
    assert ev.tag == "app.billing"
    assert ev.record["svc"] == "billing"
    assert ev.record["user"] == "[REDACTED:email]"
    assert ev.record["message"] == "the-quick"  # logfmt's msg is the message
    assert out.dropped == {"billing": 1}
