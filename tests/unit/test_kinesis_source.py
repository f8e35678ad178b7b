"""kinesis_records: JSON/text records, CloudWatch subscription data, KPL aggregates, poison records.

Records beyond the samples are built with scripts/make_kinesis_events.py's own `record()`,
so every one has the shape Lambda delivers.
"""

from __future__ import annotations

import base64
import copy
import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import handlers
from chalicelib.errors import DecodeError
from chalicelib.sources import kinesis, kpl

REGION = "us-east-1"
STREAM = "sluice-fan-in"
SHARD = "shardId-000000000000"


@pytest.fixture(scope="module")
def make() -> Any:
    """scripts/make_kinesis_events.py, imported as a module."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "make_kinesis_events.py"
    spec = importlib.util.spec_from_file_location("make_kinesis_events", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """The ledger and extra fields each invocation reports."""
    calls: list[tuple[Any, dict[str, Any]]] = []

    def capture(function: str, ledger: Any, namespace: str, extra: Any = None) -> None:
        calls.append((copy.deepcopy(ledger), dict(extra or {})))

    monkeypatch.setattr(handlers, "report", capture)
    return calls


def events_of(rec: dict[str, Any]) -> list[Any]:
    res = kinesis.decode_record(rec, REGION)
    assert res.error is None, res.error
    return list(res.events)


def seq(n: int) -> str:
    return f"4961564478215395433017920645126906374968{n:022d}"


def cw_data(log_group: str = "/ecs/payments-worker", message_type: str = "DATA_MESSAGE") -> bytes:
    doc = {
        "messageType": message_type,
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": "ecs/payments/5f0b8b9c4f2d4b6e9a1e2d3c4b5a6978",
        "subscriptionFilters": ["sluice"],
        "logEvents": [
            {
                "id": "37891234567890123456789012345678901234567890123456789099",
                "timestamp": 1795687200500,
                "message": "card processor timeout",
            },
        ]
        if message_type == "DATA_MESSAGE"
        else [],
    }
    return gzip.compress(json.dumps(doc).encode())


# ---------------------------------------------------------------- the sample batch
def test_sample_batch_is_archived_whole(load_event, runtime, archive, reports, lambda_context):
    """The sample's four records (JSON, two text lines, CloudWatch data, a KPL aggregate of
    two) become seven archived events and no failures."""
    result = handlers.handle_kinesis_records(load_event("kinesis_records"), lambda_context, runtime)
    assert result == {"batchItemFailures": []}
    lines = archive.lines()
    assert sorted(x["tag"] for x in lines) == sorted(
        ["app.checkout", *["kinesis.sluice-fan-in"] * 4, *["ecs.payments-worker"] * 2]
    )
    ledger, extra = reports[-1]
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (7, 7, 0)
    assert (extra["records"], extra["failed_records"]) == (4, 0)


def test_json_record_is_one_event_tagged_by_its_own_tag(load_event):
    """A JSON object record is one event; its `tag` field becomes the tag and leaves the record."""
    (ev,) = events_of(load_event("kinesis_records")["Records"][0])
    assert ev.tag == "app.checkout"
    assert ev.record == {"level": "INFO", "message": "order placed", "order": "o-1841"}
    assert ev.id == f"{STREAM}:{SHARD}:{seq(1)}:0"
    assert ev.time == 1795687201123  # approximateArrivalTimestamp, to the millisecond
    assert ev.source == {
        "kind": "kinesis",
        "stream": STREAM,
        "shard": SHARD,
        "sequence": seq(1),
        "partition_key": "pk-1",
        "account": "123456789012",
        "region": REGION,
    }


def test_text_record_is_one_event_per_line(load_event):
    """Newline-separated text is one event per line, numbered within the record."""
    evs = events_of(load_event("kinesis_records")["Records"][1])
    assert [e.record for e in evs] == [
        {"message": "GET /healthz 200 1ms"},
        {"message": "GET /cart 200 12ms"},
    ]
    assert [e.id for e in evs] == [f"{STREAM}:{SHARD}:{seq(2)}:0", f"{STREAM}:{SHARD}:{seq(2)}:1"]
    assert {e.tag for e in evs} == {"kinesis.sluice-fan-in"}


def test_cloudwatch_subscription_data_decodes_like_the_cloudwatch_trigger(load_event):
    """gzip data from a CloudWatch Logs subscription keeps CloudWatch's ids, log group tag
    and times, and says which stream, shard and sequence carried it."""
    evs = events_of(load_event("kinesis_records")["Records"][2])
    assert [e.tag for e in evs] == ["ecs.payments-worker"] * 2
    assert [e.id for e in evs] == [
        "37891234567890123456789012345678901234567890123456789012",
        "37891234567890123456789012345678901234567890123456789013",
    ]
    assert [e.time for e in evs] == [1795687200500, 1795687200900]
    assert evs[0].record == {
        "level": "ERROR",
        "order": "o-1842",
        "message": "card processor timeout",
    }
    src = evs[0].source
    assert (
        src["kind"],
        src["log_group"],
        src["via"],
        src["stream"],
        src["shard"],
        src["sequence"],
    ) == ("cloudwatch", "/ecs/payments-worker", "kinesis", STREAM, SHARD, seq(3))


def test_kpl_aggregate_is_deaggregated(load_event):
    """A KPL aggregate yields its user records, each with its own partition key and position."""
    evs = events_of(load_event("kinesis_records")["Records"][3])
    assert [e.record for e in evs] == [
        {"user": "u17", "message": "login", "level": "NOTICE"},
        {"user": "u18", "message": "logout"},
    ]
    assert [(e.source["partition_key"], e.source["subsequence"]) for e in evs] == [
        ("user-17", 0),
        ("user-18", 1),
    ]
    assert [e.id for e in evs] == [
        f"{STREAM}:{SHARD}:{seq(4)}:0:0",
        f"{STREAM}:{SHARD}:{seq(4)}:1:0",
    ]


def test_ids_are_stable_across_redelivery(load_event):
    """Decoding the same record twice gives the same ids (Kinesis retries re-deliver)."""
    recs = load_event("kinesis_records")["Records"]
    first = [e.id for r in recs for e in events_of(r)]
    again = [e.id for r in copy.deepcopy(recs) for e in events_of(r)]
    assert first == again and len(set(first)) == len(first)


# ---------------------------------------------------------------- more record shapes
@pytest.mark.parametrize(
    ("data", "messages"),
    [
        pytest.param(
            b'{"message":"a","n":1}\n{"message":"b","n":2}\n', ["a", "b"], id="JSON lines"
        ),
        pytest.param(
            b'{\n  "message": "pretty",\n  "n": 1\n}\n', ["pretty"], id="pretty-printed JSON"
        ),
        pytest.param(b'{"message":"one"}\n', ["one"], id="JSON with trailing newline"),
        pytest.param(b"first\r\nsecond\r\n", ["first", "second"], id="CRLF text"),
        pytest.param(b"a\n\n\nb", ["a", "b"], id="blank lines skipped"),
        pytest.param(b"  \n\n", [], id="whitespace only"),
        pytest.param(b"[INFO] plain words", ["[INFO] plain words"], id="bracketed text"),
    ],
)
def test_record_shapes(make, data, messages):
    """JSON lines in one record are one event each; a pretty-printed JSON object is one event;
    text splits on line ends; blank lines make no event."""
    evs = events_of(make.record(data, 20))
    assert [e.record.get("message") for e in evs] == messages
    assert all("parse_error" not in e.record for e in evs)


def test_record_time_wins_over_arrival_time(make):
    """A record with its own time is timed by it; one without by its arrival in the stream."""
    with_time, without = events_of(
        make.record(b'{"time":"2026-11-26T09:59:58.250Z","message":"x"}\nno time here', 21)
    )
    assert with_time.time == 1795687198250
    assert without.time == 1795687221123


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        pytest.param(42, "kinesis.sluice-fan-in", id="number"),
        pytest.param("", "kinesis.sluice-fan-in", id="empty text"),
        pytest.param({"a": 1}, "kinesis.sluice-fan-in", id="object"),
    ],
)
def test_unusable_tag_field_stays_in_the_record(make, tag, expected):
    """A `tag` field that is not usable text does not tag the event and is not dropped."""
    (ev,) = events_of(make.record(json.dumps({"tag": tag, "message": "m"}).encode(), 22))
    assert ev.tag == expected
    assert ev.record == {"tag": tag, "message": "m"}


def test_cloudwatch_control_message_makes_no_event(make):
    """A CONTROL_MESSAGE through Kinesis (the subscription's reachability check) is no event."""
    assert events_of(make.record(cw_data(message_type="CONTROL_MESSAGE"), 23)) == []


def test_kpl_aggregate_of_cloudwatch_data_and_text(make):
    """KPL user records may themselves be CloudWatch data or text lines."""
    agg = kpl.aggregate([("lg", cw_data("/aws/lambda/checkout-api")), ("t", b"x\ny")])
    evs = events_of(make.record(agg, 24))
    assert [(e.tag, e.record["message"]) for e in evs] == [
        ("aws.lambda.checkout-api", "card processor timeout"),
        ("kinesis.sluice-fan-in", "x"),
        ("kinesis.sluice-fan-in", "y"),
    ]
    assert [e.id for e in evs[1:]] == [
        f"{STREAM}:{SHARD}:{seq(24)}:1:0",
        f"{STREAM}:{SHARD}:{seq(24)}:1:1",
    ]


@pytest.mark.parametrize(
    ("mutate", "stage"),
    [
        pytest.param(
            lambda r: r["kinesis"].__setitem__("data", "not base64!"), "base64", id="bad base64"
        ),
        pytest.param(lambda r: r["kinesis"].pop("data"), "shape", id="no data"),
        pytest.param(lambda r: r.pop("kinesis"), "shape", id="no kinesis"),
        pytest.param(
            lambda r: r["kinesis"].__setitem__(
                "data", base64.b64encode(b"\x1f\x8bnot gzip").decode()
            ),
            "gzip",
            id="gzip magic, not gzip",
        ),
        pytest.param(
            lambda r: r["kinesis"].__setitem__(
                "data", base64.b64encode(kpl.aggregate([("p", b"x")])[:-1] + b"\0").decode()
            ),
            "kpl",
            id="KPL digest mismatch",
        ),
        pytest.param(
            lambda r: r["kinesis"].__setitem__(
                "data", base64.b64encode(b"\xff\xfe\x00bad").decode()
            ),
            "utf-8",
            id="not UTF-8",
        ),
    ],
)
def test_undecodable_record_reports_its_error_and_sequence(make, mutate, stage):
    """A record that cannot be decoded gives its DecodeError and sequence number, never raises."""
    rec = make.record(b"fine", 30)
    mutate(rec)
    res = kinesis.decode_record(rec, REGION)
    assert isinstance(res.error, DecodeError) and res.error.stage == stage
    assert res.events == []
    if "kinesis" in rec:
        assert res.sequence == seq(30)


# ---------------------------------------------------------------- poison records, failures
def test_poison_records_are_dead_lettered_without_blocking_the_shard(
    load_event, runtime, archive, dlq, reports, lambda_context
):
    """The poison sample's two bad records are dead-lettered with their sequence numbers and
    raw bytes; the good records around them, the one after the poison included, are archived,
    and no record is reported failed."""
    event = load_event("malformed/kinesis_poison_records")
    result = handlers.handle_kinesis_records(event, lambda_context, runtime)
    assert result == {"batchItemFailures": []}
    assert sorted(x["record"]["message"] for x in archive.lines()) == ["after the poison", "fine"]
    msgs = sorted(dlq.messages(), key=lambda m: m["origin"]["sequence"])
    assert [m["origin"]["sequence"] for m in msgs] == [seq(11), seq(12)]
    assert [m["reason"].split(":")[0] for m in msgs] == ["gzip", "utf-8"]
    raws = [base64.b64decode(m["raw"]) for m in msgs]
    assert raws == [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"][1:3]]
    assert msgs[0]["origin"]["event_id"] == f"{SHARD}:{seq(11)}"
    ledger, _ = reports[-1]
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (4, 2, 2)
    assert ledger.balanced()


def test_dead_letter_queue_down_hands_back_the_poison_record_and_the_rest(
    load_event, aws, runtime, archive, reports, lambda_context
):
    """If the DLQ cannot take a poison record, it and every later record are handed back
    (Lambda retries the shard from the lowest failed sequence number, later ones included,
    so archiving them now would archive them twice); the records before it are archived."""
    aws.sqs.delete_queue(QueueUrl=aws.dlq_url)
    result = handlers.handle_kinesis_records(
        load_event("malformed/kinesis_poison_records"), lambda_context, runtime
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": seq(n)} for n in (11, 12, 13)]}
    assert [x["record"]["message"] for x in archive.lines()] == ["fine"]


def test_archive_and_dead_letter_queue_down_fail_every_record(
    load_event, aws, runtime, reports, lambda_context
):
    """When neither the archive nor the DLQ can take the events, every record is reported
    failed so Lambda retries the batch; nothing is acknowledged that was not kept."""
    aws.sqs.delete_queue(QueueUrl=aws.dlq_url)
    aws.s3.delete_bucket(Bucket=aws.bucket)
    event = load_event("kinesis_records")
    result = handlers.handle_kinesis_records(event, lambda_context, runtime)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [
        r["kinesis"]["sequenceNumber"] for r in event["Records"]
    ]


def test_archive_down_dead_letters_the_events(
    load_event, aws, runtime, dlq, reports, lambda_context
):
    """With the archive down and the DLQ up, the events go to the DLQ and the batch succeeds."""
    aws.s3.delete_bucket(Bucket=aws.bucket)
    result = handlers.handle_kinesis_records(load_event("kinesis_records"), lambda_context, runtime)
    assert result == {"batchItemFailures": []}
    assert sum(m["count"] for m in dlq.messages()) == 7
    ledger, _ = reports[-1]
    assert (ledger.received, ledger.dead_lettered) == (7, 7)


def test_not_a_kinesis_event_is_dead_lettered(runtime, dlq, reports, lambda_context):
    """An event without `Records` is dead-lettered whole; nothing to retry."""
    assert handlers.handle_kinesis_records({"foo": 1}, lambda_context, runtime) == {
        "batchItemFailures": []
    }
    (msg,) = dlq.messages()
    assert msg["reason"].startswith("shape: ")


def test_empty_batch_is_a_no_op(runtime, archive, reports, lambda_context):
    """A batch with no records archives nothing and reports a zero ledger."""
    assert handlers.handle_kinesis_records({"Records": []}, lambda_context, runtime) == {
        "batchItemFailures": []
    }
    assert archive.keys() == []
    assert reports[-1][0].received == 0


def test_a_retried_batch_rewrites_the_same_archive_objects(runtime, load_event, archive):
    """The same records in a new invocation (Lambda's retry) land on the same archive keys."""
    from chalicelib.handlers import handle_kinesis_records
    from tests.conftest import LambdaContext

    event = load_event("kinesis_records")
    handle_kinesis_records(event, LambdaContext(aws_request_id="first-try"), runtime)
    keys = archive.keys()
    handle_kinesis_records(event, LambdaContext(aws_request_id="second-try"), runtime)
    assert archive.keys() == keys
    ids = [line["id"] for line in archive.lines()]
    assert len(ids) == len(set(ids))
