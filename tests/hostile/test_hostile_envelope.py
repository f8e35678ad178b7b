"""Envelope fields of the wrong type cost only the record or message that carries them.

A CloudWatch subscription document's fields (`messageType`, `logGroup`, `logStream`,
`owner`, `subscriptionFilters`, `logEvents` and each event's `id`, `timestamp`,
`message`), a Kinesis record's attributes (`sequenceNumber`, `partitionKey`,
`approximateArrivalTimestamp`, `eventSourceARN`, `eventID`, `awsRegion`, `data`) and an
S3 notification's (bucket, key, version, ETag, size) each get every wrong type: a number,
a list, an object nested 300 deep (orjson reads 1,024 levels and writes 254), null. The
bad record sits among good ones: the good ones are archived, the bad one is dead-lettered
with a reason naming the field and its address, the ledger balances and no good record is
handed back. Where the field is optional, null means absent (documented), and an integer
event id or sequence number is taken as its decimal text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.handlers import handle_cloudwatch_logs, handle_kinesis_records, handle_s3_objects
from sluice_cli import payloads

from .harness import Account, load_make, mocked_account

make = load_make()
NESTED = orjson.loads('{"a":' * 300 + "1" + "}" * 300)
WRONG = {"number": 7, "list": ["x"], "nested 300 deep": NESTED, "null": None}
DEAD, KEPT = "dead-lettered", "archived"


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        acct.s3.create_bucket(Bucket=make.S3_BUCKET)
        yield acct


def json_bytes(value: Any) -> bytes:
    """JSON of anything the cases hold (the standard library writes 300 levels)."""
    return json.dumps(value, separators=(",", ":")).encode()


# ---------------------------------------------------------------- CloudWatch documents
def document(field: str, value: Any) -> dict[str, Any]:
    """A one-event subscription document with `field` (`logEvents[0].<name>` for the
    event's own fields) set to `value`."""
    doc = make.cloudwatch_doc(messages=["bad one"])
    if field.startswith("logEvents[0]."):
        doc["logEvents"][0][field.split(".", 1)[1]] = value
    else:
        doc[field] = value
    return doc


# (field, what each wrong type leads to): null is absent for optional fields; an integer
# event id is its decimal text.
DOCUMENT_FIELDS = {
    "messageType": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": DEAD},
    "logGroup": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": DEAD},
    "logStream": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "owner": {"number": KEPT, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "subscriptionFilters": {"number": DEAD, "list": KEPT, "nested 300 deep": DEAD, "null": KEPT},
    "logEvents": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": DEAD},
    "logEvents[0].id": {"number": KEPT, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "logEvents[0].timestamp": {"number": KEPT, "list": DEAD, "nested 300 deep": DEAD, "null": DEAD},
    "logEvents[0].message": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": DEAD},
}
DOCUMENT_CASES = [
    pytest.param(f, kind, WRONG[kind], outcome, id=f"{f} {kind}")
    for f, outcomes in DOCUMENT_FIELDS.items()
    for kind, outcome in outcomes.items()
] + [
    pytest.param("subscriptionFilters", "list of objects", [NESTED], DEAD, id="filters [nested]"),
    pytest.param("logEvents[0].timestamp", "boolean", True, DEAD, id="timestamp true"),
    pytest.param("logEvents[0].timestamp", "string", "1795687621000", DEAD, id="timestamp text"),
]


def kinesis_batch(bad_data: bytes | None = None, **bad_fields: Any) -> dict[str, Any]:
    """Three records, the middle one carrying `bad_data` or its fields replaced."""
    recs = [make.kinesis_record(b"good before", 1)]
    middle = make.kinesis_record(bad_data if bad_data is not None else b"middle", 2)
    for name, value in bad_fields.items():
        (middle["kinesis"] if name in middle["kinesis"] else middle)[name] = value
    recs.append(middle)
    recs.append(make.kinesis_record(b"good after", 3))
    return {"Records": recs}


def check_kinesis(got: Any, event: dict[str, Any], outcome: str, field: str) -> None:
    messages = sorted(x["record"].get("message", "") for x in got.lines)
    assert got.result == {"batchItemFailures": []}
    assert got.balanced(), [led.as_dict() for led in got.ledgers]
    if outcome == KEPT:
        assert got.ledger == (3, 3, 0, 0) and got.dead_letters == []
        return
    assert "good before" in messages and "good after" in messages
    assert got.ledger == (3, 2, 0, 1), got.dead_letters
    (msg,) = got.dead_letters
    assert msg["stage"] == "decode" and field.split(".")[-1].split("[")[0] in msg["reason"]
    seq = event["Records"][1]["kinesis"]["sequenceNumber"]
    if isinstance(seq, str):
        assert msg["origin"]["sequence"] == seq


@pytest.mark.parametrize(("field", "kind", "value", "outcome"), DOCUMENT_CASES)
def test_document_field_in_a_kinesis_record(
    account: Account, field: str, kind: str, value: Any, outcome: str
) -> None:
    """CloudWatch subscription data in a Kinesis record with one field of the wrong type:
    that record is dead-lettered with its bytes and a reason naming the field; the records
    around it are archived; nothing is handed back."""
    raw = payloads.gzip_bytes(json_bytes(document(field, value)))
    event = kinesis_batch(raw)
    got = account.run(handle_kinesis_records, event)
    check_kinesis(got, event, outcome, field)
    if outcome == DEAD:
        assert base64.b64decode(got.dead_letters[0]["raw"]) == raw


@pytest.mark.parametrize(("field", "kind", "value", "outcome"), DOCUMENT_CASES)
def test_document_field_in_a_subscription_payload(
    account: Account, field: str, kind: str, value: Any, outcome: str
) -> None:
    """The same documents through the cloudwatch_logs trigger: the payload is
    dead-lettered whole with the reason (or archived when the value is allowed), never
    an exception Lambda would retry."""
    event = make.awslogs(payloads.gzip_bytes(json_bytes(document(field, value))))
    got = account.run(handle_cloudwatch_logs, event)
    assert got.balanced()
    if outcome == KEPT:
        assert got.ledger == (1, 1, 0, 0) and got.dead_letters == []
    else:
        assert got.ledger == (1, 0, 0, 1)
        (msg,) = got.dead_letters
        assert msg["stage"] == "decode" and msg["reason"].startswith("shape: ")


# ---------------------------------------------------------------- Kinesis attributes
RECORD_FIELDS = {
    "sequenceNumber": {"number": KEPT, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "partitionKey": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "approximateArrivalTimestamp": {
        "number": KEPT,
        "list": DEAD,
        "nested 300 deep": DEAD,
        "null": KEPT,
    },
    "eventSourceARN": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "eventID": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "awsRegion": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": KEPT},
    "data": {"number": DEAD, "list": DEAD, "nested 300 deep": DEAD, "null": DEAD},
}
RECORD_CASES = [
    pytest.param(f, WRONG[kind], outcome, id=f"{f} {kind}")
    for f, outcomes in RECORD_FIELDS.items()
    for kind, outcome in outcomes.items()
] + [
    pytest.param("approximateArrivalTimestamp", 1e300, DEAD, id="arrival 1e300"),
    pytest.param("approximateArrivalTimestamp", True, DEAD, id="arrival true"),
    pytest.param("partitionKey", "p" * 5000, DEAD, id="partition key of 5,000 characters"),
]


@pytest.mark.parametrize(("field", "value", "outcome"), RECORD_CASES)
def test_kinesis_record_attribute(account: Account, field: str, value: Any, outcome: str) -> None:
    """A Kinesis record whose attribute has the wrong type is dead-lettered alone, with a
    reason naming the attribute; the good records around it are archived."""
    event = kinesis_batch(**{field: value})
    got = account.run(handle_kinesis_records, event)
    check_kinesis(got, event, outcome, field)


def test_log_stream_nested_300_deep_among_good_records(account: Account) -> None:
    """The case that blocked a shard: subscription data whose logStream is an object
    nested 300 deep, between two good records. The good ones are archived, the bad one is
    dead-lettered with its bytes, its sequence number and the reason; none is handed back."""
    raw = payloads.gzip_bytes(json_bytes(document("logStream", NESTED)))
    event = kinesis_batch(raw)
    got = account.run(handle_kinesis_records, event)
    assert got.result == {"batchItemFailures": []}
    assert got.ledger == (3, 2, 0, 1) and got.balanced()
    assert sorted(x["record"]["message"] for x in got.lines) == ["good after", "good before"]
    (msg,) = got.dead_letters
    assert msg["reason"] == "shape: logStream is an object, not a string"
    assert msg["origin"]["sequence"] == event["Records"][1]["kinesis"]["sequenceNumber"]
    assert base64.b64decode(msg["raw"]) == raw


# ---------------------------------------------------------------- what cannot be encoded
def test_event_that_cannot_be_encoded_is_dead_lettered_alone(account: Account) -> None:
    """An S3 JSON line whose `Records` document carries a field nested 300 deep: its event
    keeps that field in `source.document`, which orjson cannot write. That event is
    dead-lettered with the reason and its envelope (the nested part as JSON text where
    even the standard library could not write it); the other lines are archived."""
    deep = '{"a":' * 300 + "1" + "}" * 300
    body = (
        '{"message":"first"}\n'
        + '{"Records":[{"message":"inside"}],"context":'
        + deep
        + "}\n"
        + '{"message":"last"}\n'
    ).encode()
    key = "deep/records.log"
    etag = account.s3.put_object(Bucket=make.S3_BUCKET, Key=key, Body=body)["ETag"].strip('"')
    got = account.run(
        handle_s3_objects, make.sqs_event([make.s3_notification(key, etag, len(body))])
    )
    assert got.result == {"batchItemFailures": []}
    assert got.ledger == (3, 2, 0, 1) and got.balanced(), got.dead_letters
    assert sorted(x["record"]["message"] for x in got.lines) == ["first", "last"]
    (msg,) = got.dead_letters
    assert msg["stage"] == "archive" and "not serialisable" in msg["reason"]
    (ev,) = msg["events"]
    assert ev["record"]["message"] == "inside" and ev["source"]["key"] == key


# ---------------------------------------------------------------- S3 notifications over SQS
def notification(path: str, value: Any) -> str:
    """The sample S3 notification with the field at `path` (under Records[0].s3) set."""
    doc = json.loads(make.s3_notification("app/x.log", "etag", 10))
    node = doc["Records"][0]["s3"]
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return json.dumps(doc)


NOTIFICATION_CASES = [
    pytest.param(path, WRONG[kind], id=f"{path} {kind}")
    for path in ("object", "bucket", "bucket.name", "object.key")
    for kind in ("number", "list", "nested 300 deep")
] + [
    pytest.param(path, WRONG[kind], id=f"{path} {kind}")
    for path in ("object.versionId", "object.eTag", "object.size")
    for kind in ("list", "nested 300 deep")
]


@pytest.mark.parametrize(("path", "value"), NOTIFICATION_CASES)
def test_notification_attribute(account: Account, path: str, value: Any) -> None:
    """An S3 notification whose attribute has the wrong type is dead-lettered (its body,
    a reason naming the field), next to a good message whose object is archived; neither
    message is returned to the queue."""
    good_key = f"app/good-{account.counter[0]}.log"  # a new object each case
    good = b"good line\n"
    etag = account.s3.put_object(Bucket=make.S3_BUCKET, Key=good_key, Body=good)["ETag"]
    bodies = [notification(path, value), make.s3_notification(good_key, etag.strip('"'), 5)]
    got = account.run(handle_s3_objects, make.sqs_event(bodies))
    assert got.result == {"batchItemFailures": []}
    assert got.ledger == (2, 1, 0, 1) and got.balanced()
    assert [x["record"]["message"] for x in got.lines] == ["good line"]
    (msg,) = got.dead_letters
    assert msg["stage"] == "decode" and msg["reason"].startswith("shape: ")
    assert path.split(".")[-1] in msg["reason"] or "bucket name or object key" in msg["reason"]
