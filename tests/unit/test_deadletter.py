"""chalicelib.actions.deadletter: what could not be decoded or delivered, with the reason."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from chalicelib.actions import deadletter
from chalicelib.actions.deadletter import DeadLetters

from .factories import log_event, log_events

SQS_LIMIT = 256 * 1024
INV = "c0ffee00-0000-4000-8000-000000000001"


@pytest.fixture
def letters(aws) -> DeadLetters:
    return DeadLetters(aws.sqs, aws.dlq_url, aws.s3, aws.bucket)


def s3_body(aws, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    assert bucket == aws.bucket
    assert key.startswith("deadletter/")
    return aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def send(letters: DeadLetters, events, **kw) -> int:
    args = {
        "stage": "action",
        "invocation": INV,
        "function": "cloudwatch_logs",
        "action": "slack",
        "rule": "r1",
    }
    return letters.send_events(
        events, "slack: chat.postMessage: channel_not_found", **{**args, **kw}
    )


def test_message_carries_reason_stage_action_rule_and_events(letters, dlq):
    """One small batch is one message naming what failed, where, and holding the events."""
    events = log_events(3)
    assert send(letters, events) == 1
    (msg,) = dlq.messages()
    assert {
        k: msg[k]
        for k in ("version", "reason", "stage", "action", "rule", "invocation", "function", "count")
    } == {
        "version": 1,
        "reason": "slack: chat.postMessage: channel_not_found",
        "stage": "action",
        "action": "slack",
        "rule": "r1",
        "invocation": INV,
        "function": "cloudwatch_logs",
        "count": 3,
    }
    assert msg["time"].endswith("Z")
    assert msg["events"] == [json.loads(json.dumps(e.envelope())) for e in events]


def test_big_batches_are_split_under_the_sqs_limit(letters, dlq):
    """A megabyte of events is split into several messages, each under 256 KiB, none lost."""
    events = log_events(400, message="x" * 3000 + " {i}")
    sent = send(letters, events)
    raw = dlq.raw_messages()
    assert sent == len(raw) >= 5
    assert all(len(body.encode()) <= SQS_LIMIT for body in raw)
    msgs = [json.loads(b) for b in raw]
    ids = [e["id"] for m in msgs for e in m["events"]]
    assert sorted(ids) == sorted(e.id for e in events)
    assert all(m["count"] == len(m["events"]) for m in msgs)


def test_events_that_fit_are_sent_inline_never_spilled():
    """Chunks of small events go inline whatever the event size; only an oversized item uses S3."""
    bodies: list[str] = []
    spilled: list[str] = []

    class Queue:
        def send_message(self, **kw):
            bodies.append(kw["MessageBody"])

    class Bucket:
        def put_object(self, **kw):
            spilled.append(kw["Key"])

    letters = DeadLetters(Queue(), "queue", Bucket(), "bucket")
    for size in range(1000, 1400, 7):  # event sizes that used to land a chunk just over the limit
        bodies.clear()
        send(letters, log_events(200, message="x" * size + " {i}"))
        msgs = [json.loads(b) for b in bodies]
        assert sum(len(m.get("events", [])) for m in msgs) == 200, size
        assert all(len(b.encode()) <= deadletter.MAX_BODY for b in bodies), size
    assert spilled == []


def test_oversized_event_is_spilled_to_s3(aws, letters, dlq):
    """An event too big for one message goes to S3 under deadletter/, the message points at it."""
    big = log_event("y" * (300 * 1024), id="big")
    send(letters, [big])
    (msg,) = dlq.messages()
    assert "events" not in msg
    assert msg["count"] == 1
    spilled = json.loads(s3_body(aws, msg["events_s3"]))
    assert spilled["events"][0]["record"]["message"] == "y" * (300 * 1024)
    assert spilled["reason"] == msg["reason"]


def test_records_json_cannot_encode_still_reach_the_queue(letters, dlq):
    """A record value orjson refuses natively (bytes) is dead-lettered as its text form."""
    send(letters, [log_event("binary", blob=b"\x00\xff")], stage="archive", action=None, rule=None)
    (msg,) = dlq.messages()
    assert msg["events"][0]["record"]["blob"] == str(b"\x00\xff")


def test_raw_input_is_base64_of_the_bytes(letters, dlq):
    """Undecodable input is kept as base64 of its bytes, so it can be replayed exactly."""
    raw = b'{"awslogs": {"data": "H4sI!!"}}'
    letters.send_raw(
        raw,
        "base64: Only base64 data is allowed",
        stage="decode",
        invocation=INV,
        function="cloudwatch_logs",
    )
    (msg,) = dlq.messages()
    assert base64.b64decode(msg["raw"]) == raw
    assert (msg["stage"], msg["count"], msg["action"], msg["rule"]) == ("decode", 1, None, None)


def test_large_raw_input_is_spilled_to_s3(aws, letters, dlq):
    """Raw input too big for a message is stored whole in S3; the message gives place and size."""
    raw = bytes(range(256)) * 1200  # 300 KiB, not text
    letters.send_raw(
        raw,
        "gzip: truncated gzip stream",
        stage="decode",
        invocation=INV,
        function="cloudwatch_logs",
    )
    (msg,) = dlq.messages()
    assert "raw" not in msg
    assert msg["raw_bytes"] == len(raw)
    assert s3_body(aws, msg["raw_s3"]) == raw


def test_spilled_objects_do_not_overwrite_each_other(aws, letters, dlq):
    """Two spills in one invocation get distinct keys."""
    for _ in range(2):
        letters.send_raw(b"z" * (300 * 1024), "x", stage="decode", invocation=INV, function="f")
    urls = [m["raw_s3"] for m in dlq.messages()]
    assert len(set(urls)) == 2


def test_reason_is_capped(letters, dlq):
    """A runaway error text is cut to 2000 characters so the message stays small."""
    letters.send_raw(b"x", "e" * 10_000, stage="decode", invocation=INV, function="f")
    (msg,) = dlq.messages()
    assert msg["reason"] == "e" * 2000


def test_queue_failure_propagates(aws):
    """If SQS itself refuses, the error is raised: the trigger retries rather than events vanish."""
    letters = DeadLetters(aws.sqs, aws.dlq_url + "-missing", aws.s3, aws.bucket)
    with pytest.raises(ClientError):
        send(letters, log_events(1))
    with pytest.raises(ClientError):
        letters.send_raw(b"x", "r", stage="decode", invocation=INV, function="f")
