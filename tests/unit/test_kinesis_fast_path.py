"""kinesis_records: the fast paths give exactly what the checked paths give.

A record in Lambda's shape has its envelope read in one type test and its text split
in one call; anything else goes through the explaining checks and the line-by-line
reader. Each corpus below is run through both, so the two can never diverge.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from chalicelib.errors import DecodeError
from chalicelib.sources import kinesis, kpl

REGION = "us-east-1"
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-fan-in"
SEQ = "49615644782153954330179206451269063749680000000000000001"


def record(data: bytes = b'{"message":"m"}', **changes: Any) -> dict[str, Any]:
    """A record as Lambda delivers it; `changes` replace (or, as ..., drop) attributes,
    `k_` prefixed ones inside `kinesis`."""
    k: dict[str, Any] = {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "pk-1",
        "sequenceNumber": SEQ,
        "data": base64.b64encode(data).decode(),
        "approximateArrivalTimestamp": 1795687201.123,
    }
    rec: dict[str, Any] = {
        "kinesis": k,
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{SEQ}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/sluice",
        "awsRegion": REGION,
        "eventSourceARN": ARN,
    }
    for name, value in changes.items():
        target, key = (k, name[2:]) if name.startswith("k_") else (rec, name)
        if value is ...:
            target.pop(key, None)
        else:
            target[key] = value
    return rec


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except DecodeError as e:
        return ("error", e.stage, e.reason)


ENVELOPES = [
    pytest.param({}, id="Lambda's shape"),
    pytest.param({"k_sequenceNumber": 4961}, id="integer sequence number"),
    pytest.param({"k_sequenceNumber": -1}, id="negative sequence number"),
    pytest.param({"k_sequenceNumber": True}, id="boolean sequence number"),
    pytest.param({"k_sequenceNumber": "9" * 257}, id="sequence number over 256"),
    pytest.param({"k_sequenceNumber": ...}, id="no sequence number"),
    pytest.param({"k_partitionKey": ...}, id="no partition key"),
    pytest.param({"k_partitionKey": None}, id="null partition key"),
    pytest.param({"k_partitionKey": ["a"]}, id="list partition key"),
    pytest.param({"k_partitionKey": "p" * 256}, id="partition key at 256"),
    pytest.param({"k_partitionKey": "p" * 257}, id="partition key over 256"),
    pytest.param({"k_partitionKey": ""}, id="empty partition key"),
    pytest.param({"eventSourceARN": ...}, id="no ARN"),
    pytest.param({"eventSourceARN": ""}, id="empty ARN"),
    pytest.param({"eventSourceARN": 7}, id="number ARN"),
    pytest.param({"eventSourceARN": "a" * 2049}, id="ARN over 2048"),
    pytest.param({"eventSourceARN": "stream-without-slash"}, id="ARN without a slash"),
    pytest.param({"eventID": {"x": 1}}, id="object event id"),
    pytest.param({"eventID": ...}, id="no event id"),
    pytest.param({"eventID": "noshard"}, id="event id without colon"),
    pytest.param({"awsRegion": ...}, id="no region"),
    pytest.param({"awsRegion": ""}, id="empty region"),
    pytest.param({"awsRegion": "r" * 65}, id="region over 64"),
    pytest.param({"awsRegion": False}, id="boolean region"),
    pytest.param({"k_approximateArrivalTimestamp": ...}, id="no arrival"),
    pytest.param({"k_approximateArrivalTimestamp": 1795687201}, id="integer arrival"),
    pytest.param({"k_approximateArrivalTimestamp": "1795687201"}, id="text arrival"),
    pytest.param({"k_approximateArrivalTimestamp": True}, id="boolean arrival"),
    pytest.param({"k_approximateArrivalTimestamp": 1e300}, id="arrival beyond 9999"),
    pytest.param({"k_data": "not base64!"}, id="bad base64"),
    pytest.param({"k_data": "aGk"}, id="base64 without padding"),
    pytest.param({"k_data": "é"}, id="non-ASCII base64"),
    pytest.param({"k_data": "not base64!", "eventID": 5}, id="bad base64 and bad event id"),
    pytest.param(
        {"k_data": "not base64!", "k_approximateArrivalTimestamp": "x"},
        id="bad base64 and bad arrival",
    ),
]


@pytest.mark.parametrize("changes", ENVELOPES)
def test_envelope_fast_read_equals_the_checked_read(changes):
    """Every envelope, well formed or not, reads the same (or fails with the same reason)
    through the one-expression test as through the attribute-by-attribute checks."""
    rec = record(**changes)
    k = rec["kinesis"]
    assert outcome(kinesis._envelope, rec, k) == outcome(kinesis._checked_envelope, rec, k)


def cw_data() -> bytes:
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/ecs/payments-worker",
        "logStream": "s",
        "subscriptionFilters": ["sluice"],
        "logEvents": [
            {"id": f"{'37891' * 11}{i}", "timestamp": 1795687200500 + i, "message": message}
            for i, message in enumerate(["a", '{"level":"warn","msg":"b"}'])
        ],
    }
    return gzip.compress(json.dumps(doc).encode())


DATA = [
    pytest.param(b'{"tag":"app.web","level":"info","message":"one"}', id="JSON with a tag"),
    pytest.param(b'{"tag":"app.web","message":"one"}\r', id="JSON with a CR"),
    pytest.param(b'{"tag":"a/b","message":"m"}', id="JSON with an unusable tag"),
    pytest.param(b'{"tag":"","message":"m"}', id="JSON with an empty tag"),
    pytest.param(b'{"tag":"kinesis.sluice-fan-in","message":"m"}', id="tag equal to the default"),
    pytest.param(b"plain words", id="one text line"),
    pytest.param(b"plain words\r", id="one text line with CR"),
    pytest.param(b"   ", id="blank"),
    pytest.param(b"\r", id="CR only"),
    pytest.param(b"a\nb\r\n\n c \n", id="text lines"),
    pytest.param(b'{"a":1}\n{"tag":"x.y","b":2}\n', id="JSON lines"),
    pytest.param(b'{\n  "message": "pretty",\n  "tag": "app.web"\n}\n', id="pretty JSON"),
    pytest.param(b"\xe2\x80\xa8line\xe2\x80\xa8sep\nnext\x0cpage", id="separators kept"),
    pytest.param(b'{"message":"broken"\nnext', id="broken JSON then text"),
    pytest.param(b"x" * 70_000 + b"\nend\r\n", id="over SPLIT_WHOLE"),
    pytest.param(b"ab\n" * 30_000, id="many short lines"),
    pytest.param(b"\xff\xfe\x00bad", id="not UTF-8"),
    pytest.param(cw_data(), id="CloudWatch data"),
    pytest.param(b"\x1f\x8bnot gzip", id="gzip magic, not gzip"),
    pytest.param(
        kpl.aggregate(
            [("u1", b'{"tag":"app.web","message":"a"}'), ("u2", b"x\ny"), ("u3", cw_data())]
        ),
        id="KPL of JSON, text and CloudWatch data",
    ),
    pytest.param(kpl.aggregate([("u1", b"fine"), ("u2", b"\xff bad")]), id="KPL with a bad user"),
]


def described(res: kinesis.KinesisRecordResult) -> Any:
    """Everything a record's decoding yields, twice over (events are made as taken)."""
    err = (res.error.stage, res.error.reason) if res.error else None
    takes = [
        [(e.tag, e.time, e.record, e.source, e.id, e.count, e.size, e.arrival) for e in res.events]
        for _ in range(2)
    ]
    assert takes[0] == takes[1]
    return res.sequence, err, res.raw, takes[0]


# Every data kind in three envelopes, every envelope with three data kinds.
_SOME_ENVELOPES = ENVELOPES[:2] + [e for e in ENVELOPES if e.id == "no arrival"]
_SOME_DATA = [d for d in DATA if d.id in ("JSON with a tag", "text lines", "KPL with a bad user")]
RECORDS = [
    pytest.param(d.values[0], e.values[0], id=f"{d.id}, {e.id}")
    for d, e in [(d, e) for d in DATA for e in _SOME_ENVELOPES]
    + [(d, e) for d in _SOME_DATA for e in ENVELOPES]
]


@pytest.mark.parametrize(("data", "changes"), RECORDS)
def test_records_decode_the_same_through_the_fast_and_checked_paths(monkeypatch, data, changes):
    """Each record (every data kind with every envelope) gives identical events, errors,
    sequence and raw bytes whether its envelope and lines take the fast or checked path."""
    rec = record(data, **changes)
    monkeypatch.setattr(kinesis.time, "time", lambda: 1795687209.5)  # a record without arrival
    fast = described(kinesis.decode_record(rec, REGION))
    monkeypatch.setattr(kinesis, "_envelope", kinesis._checked_envelope)
    monkeypatch.setattr(kinesis, "SPLIT_WHOLE", -1)  # every text record line by line
    monkeypatch.setattr(kinesis, "_split", lambda text: list(kinesis._lines(text)))
    assert described(kinesis.decode_record(rec, REGION)) == fast


@pytest.mark.parametrize(
    "text",
    ["", "a", "a\n", "\n", "a\r\nb", "a\r\r\nb\r", "\r\n\r\n", "x\u2028y\nz", "a\n\nb\n\n"],
)
def test_whole_split_equals_the_line_reader(text):
    """Splitting a small record at once gives the lines the line-by-line reader gives."""
    assert kinesis._split(text) == list(kinesis._lines(text))


@pytest.mark.parametrize(
    ("tag", "usable"),
    [
        pytest.param("app.checkout", True, id="dotted name"),
        pytest.param("A-z_0.9:@#$=+-", True, id="every allowed punctuation"),
        pytest.param("x" * 512, True, id="512 characters"),
        pytest.param("x" * 513, False, id="513 characters"),
        pytest.param("", False, id="empty"),
        pytest.param("a/b", False, id="slash"),
        pytest.param("a b", False, id="space"),
        pytest.param("a\nb", False, id="newline inside"),
        pytest.param("ab\n", False, id="newline at the end"),
        pytest.param("\tab", False, id="tab at the start"),
        pytest.param("café", False, id="non-ASCII letter"),
        pytest.param("٣", False, id="non-ASCII digit"),
        pytest.param("x=1&y", False, id="ampersand"),
        pytest.param("a\x00", False, id="NUL"),
        pytest.param(42, False, id="number"),
        pytest.param(None, False, id="null"),
        pytest.param(["a"], False, id="list"),
    ],
)
def test_usable_tag(tag, usable):
    """A record's own tag names archive paths only when it is 1-512 characters of
    ASCII letters, digits and `_.:@#$=+-`."""
    assert kinesis.usable_tag(tag) is usable


@pytest.mark.parametrize("data", DATA)
def test_kpl_user_check_refuses_what_decoding_refuses(data):
    """A KPL user record is refused by the up-front check exactly when (and as) making
    its events would refuse it."""
    source = {"stream": "s", "shard": "sh", "sequence": "1"}

    def made() -> None:
        kinesis._record_events(data, "id", "kinesis.s", 0, dict(source), REGION)

    assert outcome(kinesis._check, data, REGION) == (
        ("ok", None) if outcome(made)[0] == "ok" else outcome(made)
    )


# -- positions: whether an event's record is already archived ---------------------------------
def _at_or_below_source_reference(
    source: dict[str, Any], marks: dict[tuple[str, str], int]
) -> bool:
    """The per-event test as it was written before the marks were keyed once per batch."""
    if not marks:
        return False
    seq = str(source.get("sequence", ""))
    if not seq.isdigit():
        return False
    for (arn, shard), mark in marks.items():
        if shard == source.get("shard") and kinesis.stream_name(arn) == source.get("stream"):
            return int(seq) <= mark
    return False


OTHER_ARN = "arn:aws:kinesis:eu-west-1:210987654321:stream/sluice-fan-in"  # same stream name
SHARD = "shardId-000000000000"
MARKS: dict[tuple[str, str], int] = {(ARN, SHARD): 500, (OTHER_ARN, SHARD): 900}
ARCHIVED_CASES = [
    ("below the mark", {"stream": "sluice-fan-in", "shard": SHARD, "sequence": "499"}),
    ("at the mark", {"stream": "sluice-fan-in", "shard": SHARD, "sequence": "500"}),
    (
        "past the first ARN's mark, below a later one",
        {"stream": "sluice-fan-in", "shard": SHARD, "sequence": "700"},
    ),
    ("past every mark", {"stream": "sluice-fan-in", "shard": SHARD, "sequence": "901"}),
    (
        "another shard",
        {"stream": "sluice-fan-in", "shard": "shardId-000000000001", "sequence": "1"},
    ),
    ("another stream", {"stream": "other", "shard": SHARD, "sequence": "1"}),
    ("sequence not digits", {"stream": "sluice-fan-in", "shard": SHARD, "sequence": "-1"}),
    ("sequence missing", {"stream": "sluice-fan-in", "shard": SHARD}),
    ("sequence as an int", {"stream": "sluice-fan-in", "shard": SHARD, "sequence": 3}),
    ("shard missing", {"stream": "sluice-fan-in", "sequence": "1"}),
    ("unhashable shard", {"stream": "sluice-fan-in", "shard": [SHARD], "sequence": "1"}),
    ("empty source", {}),
]


@pytest.mark.parametrize("marks", [MARKS, {(ARN, SHARD): 500}, {}], ids=["two", "one", "none"])
@pytest.mark.parametrize(("name", "source"), ARCHIVED_CASES, ids=[c[0] for c in ARCHIVED_CASES])
def test_archived_test_answers_as_the_per_event_scan(
    name: str, source: dict[str, Any], marks: dict[tuple[str, str], int]
) -> None:
    """An event counts as archived exactly when the scan over the batch's marks said so,
    the first ARN naming its stream and shard deciding."""
    from chalicelib.event import LogEvent
    from chalicelib.ingest.kinesis import archived_test

    test = archived_test(marks)
    expected = _at_or_below_source_reference(source, marks)
    if test is None:
        assert not marks and expected is False
        return
    ev = LogEvent.__new__(LogEvent)
    ev.source = source
    assert test(ev) is expected, name
