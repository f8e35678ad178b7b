"""s3_objects against hostile objects and notifications: each case of
tests/data/hostile/s3_objects.json is put in a mocked bucket and announced through the
real handler; each of s3_notifications.json is delivered as an SQS message. Archive and
dead-letter queue are read back; every invocation's ledger balances and no message is
handed back for a retry that could not help.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.handlers import handle_s3_objects
from chalicelib.parsers import MAX_MESSAGE_CHARS

from .harness import Account, Outcome, load_make, mocked_account

make = load_make()
OBJECTS = make.cases("s3_objects")
NOTIFICATIONS = make.cases("s3_notifications")
BUCKET = make.S3_BUCKET


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        acct.s3.create_bucket(Bucket=BUCKET)
        acct.sqs.create_queue(QueueName=make.OBJECTS_QUEUE)
        yield acct


def put(account: Account, key: str, body: bytes) -> str:
    """Put an object; its eTag as a notification carries it (no quotes)."""
    return str(account.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]).strip('"')


def announce(account: Account, key: str, body: bytes) -> dict[str, Any]:
    return make.sqs_event([make.s3_notification(key, put(account, key, body), len(body))])


@pytest.fixture(scope="module")
def object_outcomes(account: Account) -> dict[str, Outcome]:
    """Each object case put and announced once: case id -> what the invocation left."""
    return {
        c["id"]: account.run(handle_s3_objects, announce(account, c["key"], make.data(c["body"])))
        for c in OBJECTS
    }


@pytest.fixture(scope="module")
def notification_outcomes(account: Account) -> dict[str, tuple[Any, Outcome]]:
    out = {}
    for case in NOTIFICATIONS:
        event = make.event(case["event"]) if "event" in case else make.sqs_event(case["bodies"])
        out[case["id"]] = (event, account.run(handle_s3_objects, event))
    return out


def in_line_order(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(lines, key=lambda x: (x["source"]["line"], x["id"]))


# ---------------------------------------------------------------- objects
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in OBJECTS])
def test_object_case(case: dict[str, Any], object_outcomes: dict[str, Outcome]) -> None:
    """Each hostile object ends as its case says: lines archived with the key recorded exactly
    as written, flagged or cut when they must be, or the object dead-lettered with its
    address and reason; no message returned for a retry; ledger balanced."""
    got = object_outcomes[case["id"]]
    want = case["expect"]
    key = case["key"]
    assert got.result == {"batchItemFailures": []}
    assert got.balanced(), [led.as_dict() for led in got.ledgers]
    lines = in_line_order(got.lines)
    assert all(x["source"]["key"] == key and x["source"]["bucket"] == BUCKET for x in lines)
    assert all(len(x["record"].get("message", "")) <= MAX_MESSAGE_CHARS for x in lines)
    if "ledger" in want:
        assert list(got.ledger) == want["ledger"]
    if "messages" in want:
        assert [x["record"]["message"] for x in lines] == want["messages"]
    if "lines" in want:
        assert [x["source"]["line"] for x in lines] == want["lines"]
    if "tag" in want:
        assert {x["tag"] for x in lines} == {want["tag"]}
    if "key_parts" in want:
        assert [k.count("/") + 1 for k in got.keys] == [want["key_parts"]] * len(got.keys)
    if "flags" in want:
        flags = [
            {k: x["record"][k] for k in ("invalid_utf8", "truncated") if k in x["record"]}
            for x in lines
        ]
        assert flags == want["flags"]
    if "last_message" in want:
        assert lines[-1]["record"]["message"] == want["last_message"]
    if "fields" in want:
        (line,) = lines
        for k, v in want["fields"].items():
            assert line["record"][k] == v, k
    if "message_length" in want:
        (line,) = lines
        assert len(line["record"]["message"]) == want["message_length"]
    for x, fields in zip(lines, want.get("fields_each", []), strict=False):
        assert {k: x["record"].get(k) for k in fields} == fields
    if "fields_each" in want:
        assert len(lines) == len(want["fields_each"])
    if "archive_objects" in want:
        assert len(got.keys) == want["archive_objects"]
    if want.get("colliding"):
        first, second = lines
        assert first["record"]["tag"] == "forged.tag" and first["record"]["id"] == "forged-id"
        assert first["record"]["source"] == {"kind": "kinesis", "stream": "forged"}
        assert first["record"]["record"] == {"forged": True}
        assert first["tag"] == second["tag"] == "s3.app-logs-example.trail"
        assert first["source"]["kind"] == "s3" and first["id"].endswith(":1:0")
        assert first["time"] == "2001-02-03T04:05:06.000Z"  # its `time` field, as documented
        assert second["record"]["requestParameters"]["userName"] == "<!channel> $(rm -rf /)"
    if "dead_letter" in want:
        stage = want["dead_letter"]
        (msg,) = got.dead_letters
        assert msg["stage"] == "decode"
        if want.get("reason_names_stage", True):
            assert msg["reason"].startswith(f"{stage}: "), msg["reason"]
        assert want.get("reason", "") in msg["reason"], msg["reason"]
        assert (msg["origin"]["bucket"], msg["origin"]["key"]) == (BUCKET, key)
        assert dict(got.ledgers[0].dead_letter_reasons) == {f"decode:{stage}": 1}
        if want.get("partial"):
            n = len(lines)
            assert n > 0 and got.ledger == (n + 1, n, 0, 1)
            assert f"after line {n}" in msg["reason"] and msg["origin"]["line"] == n
    else:
        assert got.dead_letters == []


# ---------------------------------------------------------------- notifications
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in NOTIFICATIONS])
def test_notification_case(case: dict[str, Any], notification_outcomes: dict[str, Any]) -> None:
    """Each malformed or unusual notification is dead-lettered with its body and reason, or
    acknowledged with nothing to do; no message is returned for a retry that cannot help."""
    event, got = notification_outcomes[case["id"]]
    want = case["expect"]
    assert got.result == {"batchItemFailures": []}
    assert got.balanced() and list(got.ledger) == want["ledger"]
    assert got.lines == []
    if "dead_letter" in want:
        (msg,) = got.dead_letters
        assert msg["stage"] == "decode"
        assert msg["reason"].startswith(f"{want['dead_letter']}: ")
        assert want.get("reason", "") in msg["reason"], msg["reason"]
        records = event.get("Records") if isinstance(event, dict) else None
        if isinstance(records, list):  # the message's body, byte for byte
            body = records[0].get("body")
            assert base64.b64decode(msg["raw"]) == orjson.dumps(body)
        else:  # the whole event
            assert base64.b64decode(msg["raw"]) == orjson.dumps(event)
    elif "dead_letter_stage" in want:
        (msg,) = got.dead_letters
        assert msg["stage"] == want["dead_letter_stage"]
        assert want["reason"] in msg["reason"]
    else:
        assert got.dead_letters == []


# ---------------------------------------------------------------- the per-invocation cap
def test_text_over_the_invocation_cap_continues_in_the_next(account: Account) -> None:
    """With SLUICE_MAX_OBJECT_BYTES at 1, each invocation reads one chunk (5,000 lines) and
    queues a continuation; following them reads a 12,000-line object exactly once."""
    key = "cap/twelve-thousand.log"
    body = "".join(f"line {i}\n" for i in range(1, 12_001)).encode()
    capped = dataclasses.replace(account.runtime.settings, max_object_chars=1)
    runtime = type(account.runtime)(capped, account.runtime.clients)
    queue = account.sqs.get_queue_url(QueueName=make.OBJECTS_QUEUE)["QueueUrl"]
    event = announce(account, key, body)
    seen: list[str] = []
    continuations: list[int] = []
    for _ in range(5):
        got = account.run(handle_s3_objects, event, runtime=runtime)
        assert got.result == {"batchItemFailures": []} and got.balanced()
        seen.extend(x["record"]["message"] for x in in_line_order(got.lines))
        queued = account.drain_bodies(queue)
        if not queued:
            break
        (body_text,) = queued
        continuations.append(orjson.loads(body_text)["sluice_continuation"]["line"])
        event = make.sqs_event([body_text])
    assert continuations == [5_000, 10_000]
    assert seen == [f"line {i}" for i in range(1, 12_001)]


# ---------------------------------------------------------------- S3's key length limit
def refuse_long_keys(params: dict[str, Any], **_: Any) -> None:
    """S3 refuses keys over 1,024 bytes (KeyTooLongError); moto does not check."""
    from botocore.exceptions import ClientError

    if len(params["Key"].encode()) > 1024:
        error = {"Error": {"Code": "KeyTooLongError", "Message": "Your key is too long"}}
        raise ClientError(error, "PutObject")


@pytest.mark.parametrize(
    "first_part",
    [
        pytest.param("x" * 1000, id="1,000 ASCII characters"),
        pytest.param("日" * 330, id="330 CJK characters (990 bytes)"),
    ],
)
def test_a_long_first_key_part_still_gives_an_archivable_tag(
    account: Account, first_part: str
) -> None:
    """An object whose key starts with a part near S3's 1,024-byte limit is archived: its
    tag takes at most 256 bytes of that part, so the archive key stays within the limit
    S3 enforces and the events are not dead-lettered on every read."""
    s3 = account.runtime.clients.get("s3")
    s3.meta.events.register("before-parameter-build.s3.PutObject", refuse_long_keys)
    try:
        key = f"{first_part}/app.log"
        got = account.run(handle_s3_objects, announce(account, key, b"hello\n"))
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.PutObject", refuse_long_keys)
    assert got.balanced() and got.ledger == (1, 1, 0, 0), got.dead_letters
    (line,) = got.lines
    assert line["source"]["key"] == key
    assert first_part.startswith(line["tag"].removeprefix(f"s3.{BUCKET}."))
    assert all(len(k.encode()) <= 1024 for k in got.keys)
