"""Redaction holds wherever a secret sits in a record.

A record is whatever a log line's JSON holds: objects nested to the depth the parser
accepts (64 levels; deeper documents stay text), secret-named keys holding any JSON
type, and keys that are themselves secrets. Each placement below goes through the real
`cloudwatch_logs` handler with the document-level `redact` on, and the archived line is
searched for the secret's text: it must not appear anywhere, while the record's other
content survives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.handlers import handle_cloudwatch_logs
from chalicelib.parsers import MAX_DEPTH
from chalicelib.rules.transforms import Redactor

from .harness import Account, load_make, mocked_account

make = load_make()
KEY = "AKIAIOSFODNN7EXAMPLE"  # an access key id, AWS's documentation example
KEY2 = "ASIAY34FZKBOKMUTVV7A"
NUMBER = 918273645546372819
MARK_KEY = "[REDACTED:aws_access_key]"
MARK_FIELD = "[REDACTED:password]"
RULES = {"rules": [], "redact": {"patterns": ["aws_access_key", "password", "bearer"]}}


def nest(leaf: dict[str, Any], depth: int) -> dict[str, Any]:
    """`leaf` wrapped so that the whole document is `depth` levels deep counting the leaf
    object's values (the parser's count: {"k": "v"} is 2 levels)."""
    doc = leaf
    for i in range(depth - 2):
        doc = {f"l{i}": doc, "keep": "visible"}
    return doc


# (id, record as logged, secret texts that must not be archived)
PLACEMENTS: list[Any] = [
    pytest.param({"message": f"key {KEY} leaked"}, [KEY], id="in the message text"),
    pytest.param({"a": {"b": {"c": f"key={KEY}"}}}, [KEY], id="in a shallow field"),
    pytest.param(nest({"deep": f"k {KEY}"}, 33), [KEY], id="in a field 33 levels deep"),
    pytest.param(nest({"deep": f"k {KEY}"}, MAX_DEPTH), [KEY], id="in a field at the depth cap"),
    pytest.param(nest({"deep": [[f"k {KEY}"]]}, MAX_DEPTH - 2), [KEY], id="in a list at the cap"),
    pytest.param({"password": ["hunter2", "hunter3"]}, ["hunter2", "hunter3"], id="list"),
    pytest.param({"client_secret": {"v": "s3cr3t-value"}}, ["s3cr3t-value"], id="object"),
    pytest.param({"api_token": NUMBER}, [str(NUMBER)], id="number under a secret name"),
    pytest.param({"x": {"pin_password": 4.5e-7}}, ["4.5e-7"], id="float under a secret name"),
    pytest.param({"api_key": True}, ["true"], id="boolean under a secret name"),
    pytest.param(nest({"password": {"a": ["hunter9"]}}, MAX_DEPTH - 1), ["hunter9"], id="deep"),
    pytest.param({KEY: "value"}, [KEY], id="a key name that is a key"),
    pytest.param({"x": [{KEY: 1}]}, [KEY], id="a key name inside a list"),
    pytest.param(nest({KEY: "v"}, MAX_DEPTH), [KEY], id="a key name at the depth cap"),
    pytest.param({"password=hunter2": 1}, ["hunter2"], id="a key name holding key=value"),
    pytest.param({"Bearer abcdefgh12345678": "x"}, ["abcdefgh12345678"], id="a bearer key name"),
    pytest.param(
        {"message": "{" * 100 + f'"k": "{KEY}"' + "}" * 100},
        [KEY],
        id="JSON too deep to parse, kept as text",
    ),
]


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        acct.apply_rules(RULES)
        yield acct


def archived(account: Account, record: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    message = record["message"] if set(record) == {"message"} else orjson.dumps(record).decode()
    got = account.run(handle_cloudwatch_logs, make.cloudwatch_event(messages=[message]))
    assert got.ledger == (1, 1, 0, 0)
    (line,) = got.lines
    return orjson.dumps(line["record"]), line["record"]


@pytest.mark.parametrize(("record", "secrets"), PLACEMENTS)
def test_secret_is_redacted_wherever_it_sits(
    account: Account, record: dict[str, Any], secrets: list[str]
) -> None:
    """The archived record holds none of the secret's text, a redaction mark in its place,
    and the record's other content (the `keep` siblings of every level) intact."""
    text, _ = archived(account, record)
    for secret in secrets:
        assert secret.encode() not in text, text[-300:]
    assert b"[REDACTED:" in text
    assert text.count(b'"keep":"visible"') == orjson.dumps(record).count(b'"keep":"visible"')


def test_secret_named_keys_are_replaced_whole_whatever_their_type(account: Account) -> None:
    """Under a secret-named key a list, an object, a number, a boolean and null are each
    replaced by the mark, as a string is."""
    record = {
        "token": ["a", "b"],
        "secret": {"x": 1},
        "password": 12,
        "api_key": False,
        "passwd": None,
        "keep": "visible",
    }
    _, got = archived(account, record)
    assert got == {
        "token": MARK_FIELD,
        "secret": MARK_FIELD,
        "password": MARK_FIELD,
        "api_key": MARK_FIELD,
        "passwd": MARK_FIELD,
        "keep": "visible",
    }


def test_redacted_key_names_never_collide_into_a_lost_value(account: Account) -> None:
    """Two keys that both redact to the same mark keep both values, under distinct names,
    in their original order."""
    _, got = archived(account, {KEY: 1, KEY2: 2, "keep": "visible"})
    assert list(got.values()) == [1, 2, "visible"]
    assert all(KEY not in k and KEY2 not in k for k in got)
    assert next(iter(got)) == MARK_KEY


@pytest.mark.parametrize(
    ("spec", "record", "want"),
    [
        pytest.param(
            {"fields": ["config"]},
            {"config": {"password": [1, 2], "host": "db"}, "other": KEY},
            {"config": {"password": MARK_FIELD, "host": "db"}, "other": KEY},
            id="a chosen field's nested secret list",
        ),
        pytest.param(
            {"fields": ["auth.token"]},
            {"auth": {"token": {"v": 1}}},
            {"auth": {"token": MARK_FIELD}},
            id="a chosen secret-named field holding an object",
        ),
        pytest.param(
            {"patterns": ["aws_access_key"]},
            {"password": [1], KEY: "x"},
            {"password": [1], MARK_KEY: "x"},
            id="without the password pattern, names are not secrets but keys still are",
        ),
    ],
)
def test_redactor_options_apply_the_same_rules(
    spec: dict[str, Any], record: dict[str, Any], want: dict[str, Any]
) -> None:
    """A rule's redaction (chosen fields, chosen patterns) treats types and key names the
    same way as the document-level one."""
    Redactor(spec)(record)
    assert record == want


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        *[
            pytest.param(k, True, id=k)
            for k in (
                "password",
                "DB_PASSWORD",
                "userPassword",
                "x-api-key",
                "apiKey",
                "client_secret",
                "githubtoken",
                "refresh_token",
                "Authorization",
                "private_key",
                "aws_credentials",
                "passwords",
            )
        ],
        *[
            pytest.param(k, False, id=k)
            for k in ("tokens_used", "max_tokens", "keyboard", "access", "secretary_name", "pk")
        ],
    ],
)
def test_key_names_are_secret_by_their_words(key: str, secret: bool) -> None:
    """A key names a secret by its words (any case or separator), not by a substring, so a
    number such as `tokens_used` stays readable while `apiKey: 12345` does not."""
    record = {key: 12345}
    Redactor({})(record)
    assert (record == {key: MARK_FIELD}) is secret
