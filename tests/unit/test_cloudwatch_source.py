"""chalicelib.sources.cloudwatch: subscription payloads into LogEvents."""

from __future__ import annotations

import base64
import copy
import gzip
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import DecodeError
from chalicelib.sources import cloudwatch

REGION = "us-east-1"
REQUEST_ID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"


@pytest.fixture(scope="module")
def make_events():
    """scripts/make_events.py, imported as a module."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "make_events.py"
    spec = importlib.util.spec_from_file_location("make_events", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def batch(load_event):
    return cloudwatch.decode(load_event("cloudwatch_logs"), REGION)


def test_sample_payload_decodes_to_its_document(load_event, load_data):
    """The sample's data field is base64(gzip(JSON)) of the reviewed document in tests/data."""
    data = load_event("cloudwatch_logs")["awslogs"]["data"]
    assert cloudwatch.decode_data(data) == load_data("cloudwatch/cloudwatch_logs.decoded.json")


def test_every_log_event_becomes_one_event_in_order(batch, load_data):
    """Nine CloudWatch log events give nine LogEvents, in the payload's order."""
    doc = load_data("cloudwatch/cloudwatch_logs.decoded.json")
    assert batch.message_type == "DATA_MESSAGE"
    assert not batch.is_control
    assert len(batch.events) == len(doc["logEvents"]) == 9
    assert [e.id for e in batch.events] == [le["id"] for le in doc["logEvents"]]


def test_event_id_is_the_cloudwatch_event_id(batch):
    """Each event keeps CloudWatch's 56-digit event id as its stable id."""
    assert batch.events[0].id == "37901234567890123456789012345678901234567890123456789000"
    assert all(len(e.id) == 56 and e.id.isdigit() for e in batch.events)


def test_tag_comes_from_the_log_group(batch):
    """`/aws/lambda/checkout-api` tags every event `aws.lambda.checkout-api`."""
    assert batch.tag == "aws.lambda.checkout-api"
    assert {e.tag for e in batch.events} == {"aws.lambda.checkout-api"}


def test_source_metadata_names_group_stream_account_and_filters(batch):
    """The source dict carries log group, stream, owner account, region and filter names."""
    assert batch.source == {
        "kind": "cloudwatch",
        "log_group": "/aws/lambda/checkout-api",
        "log_stream": "2026/11/26/[$LATEST]6f8e2c1d9b0a4e7f8a3b5c6d7e8f9a0b",
        "account": "123456789012",
        "region": REGION,
        "subscription_filters": ["sluice-checkout-api"],
    }
    assert all(e.source is batch.source for e in batch.events)  # shared, encoded once per object


@pytest.mark.parametrize(
    ("index", "expected_ms", "why"),
    [
        pytest.param(0, 1795687620550, "platform line: CloudWatch timestamp", id="INIT_START"),
        pytest.param(2, 1795687621201, "record time, ISO 8601 with Z", id="ISO 8601 time field"),
        pytest.param(3, 1795687621315, "record time, epoch ms (pino)", id="epoch ms time field"),
        pytest.param(
            4,
            1795687621399,
            "record timestamp, epoch s with fraction",
            id="epoch s timestamp field",
        ),
        pytest.param(5, 1795687621537, "runtime line's own ISO time", id="runtime [ERROR] line"),
        pytest.param(6, 1795687621612, "plain text: CloudWatch timestamp", id="plain text"),
    ],
)
def test_event_time_comes_from_the_record_else_from_cloudwatch(batch, index, expected_ms, why):
    """A record that carries a time sets the event time; otherwise CloudWatch's timestamp does."""
    assert batch.events[index].time == expected_ms, why


def test_json_message_becomes_fields_with_normalised_names(batch):
    """A JSON app log's `event`/`severity` become `message`/`level`; other fields stay."""
    assert batch.events[2].record == {
        "message": "order received",
        "level": "INFO",
        "order_id": "o-1842",
        "amount_cents": 4599,
        "time": "2026-11-26T10:07:01.201Z",
    }


def test_report_line_gives_numeric_figures(batch):
    """The REPORT line of the sample yields its durations and memory as numbers."""
    rec = batch.events[8].record
    assert rec["lambda_event"] == "report"
    assert rec["request_id"] == REQUEST_ID
    assert (rec["duration_ms"], rec["billed_duration_ms"]) == (1234.56, 1235)
    assert (rec["memory_size_mb"], rec["max_memory_used_mb"], rec["init_duration_ms"]) == (
        512,
        118,
        412.83,
    )


def test_trailing_newline_is_not_part_of_the_message(batch):
    """Lambda ends each line with a newline; the message does not keep it."""
    assert batch.events[6].record == {
        "message": "Retrying card authorisation for order o-1842 (attempt 2 of 3)"
    }


def test_control_message_has_no_events(load_event):
    """CONTROL_MESSAGE (CloudWatch's reachability check) decodes to a batch with no events."""
    batch = cloudwatch.decode(load_event("cloudwatch_logs_control"), REGION)
    assert batch.is_control
    assert batch.events == []


def test_256kb_message_is_decoded_whole(load_event):
    """A 256 KB message (CloudWatch's largest event) arrives as one event with all its text."""
    batch = cloudwatch.decode(load_event("cloudwatch_logs_256kb"), REGION)
    (ev,) = batch.events
    message = ev.record["message"]
    assert len(message.encode()) == 256 * 1024
    assert message.startswith("Traceback (most recent call last):\n")
    assert message.endswith("\nRecursionError: maximum recursion depth exceeded")


# Every sample in events/malformed and the decode stage that must reject it.
MALFORMED = [
    pytest.param("malformed/bad_base64", "base64", id="bad base64"),
    pytest.param("malformed/truncated_gzip", "gzip", id="truncated gzip"),
    pytest.param("malformed/not_gzip", "gzip", id="base64 of plain JSON"),
    pytest.param("malformed/invalid_json", "json", id="gzip of invalid JSON"),
    pytest.param("malformed/non_utf8", "utf-8", id="gzip of Latin-1 bytes"),
    pytest.param("malformed/json_not_object", "shape", id="JSON array"),
    pytest.param("malformed/unknown_message_type", "shape", id="unknown messageType"),
    pytest.param("malformed/log_events_not_list", "shape", id="logEvents not a list"),
    pytest.param("malformed/empty_object", "shape", id="empty object"),
    pytest.param("malformed/s3_notification", "shape", id="S3 event"),
]


@pytest.mark.parametrize(("name", "stage"), MALFORMED)
def test_malformed_payload_raises_decode_error_naming_its_stage(load_event, name, stage):
    """Each malformed sample fails with a DecodeError whose stage says where it went wrong."""
    with pytest.raises(DecodeError) as info:
        cloudwatch.decode(load_event(name), REGION)
    assert info.value.stage == stage
    assert str(info.value).startswith(f"{stage}: ")


def test_every_generated_malformed_sample_has_an_expected_stage(make_events):
    """MALFORMED names every malformed file make_events.py writes, so none goes untested."""
    generated = {f"malformed/{p.stem}" for p in make_events.build() if p.parent.name == "malformed"}
    assert {p.values[0] for p in MALFORMED} == generated


def test_sample_files_are_what_make_events_writes(make_events):
    """events/ and tests/data/ match scripts/make_events.py byte for byte (never hand-edit)."""
    stale = [
        str(p) for p, text in make_events.build().items() if p.read_text(encoding="utf-8") != text
    ]
    assert stale == []


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        pytest.param(
            lambda d: d["logEvents"].__setitem__(1, "text"),
            "logEvents[1] is not an object",
            id="event not an object",
        ),
        pytest.param(
            lambda d: d["logEvents"][2].__setitem__("message", None),
            "logEvents[2]",
            id="message null",
        ),
        pytest.param(
            lambda d: d["logEvents"][3].__setitem__("timestamp", "1795687621000"),
            "logEvents[3]",
            id="timestamp as text",
        ),
        pytest.param(lambda d: d.__delitem__("logGroup"), "logGroup", id="no logGroup"),
    ],
)
def test_bad_log_event_rejects_the_document_with_its_index(load_data, mutate, fragment):
    """A log event without a string message or integer timestamp is a shape error that names it."""
    doc = copy.deepcopy(load_data("cloudwatch/cloudwatch_logs.decoded.json"))
    mutate(doc)
    with pytest.raises(DecodeError) as info:
        cloudwatch.batch_from_document(doc, REGION)
    assert info.value.stage == "shape"
    assert fragment in str(info.value)


def test_missing_event_id_falls_back_to_group_time_and_index(load_data):
    """Without a CloudWatch id, the id is derived from log group, timestamp and position."""
    doc = copy.deepcopy(load_data("cloudwatch/cloudwatch_logs.decoded.json"))
    del doc["logEvents"][6]["id"]
    batch = cloudwatch.batch_from_document(doc, REGION)
    assert batch.events[6].id == "/aws/lambda/checkout-api:1795687621612:6"


@pytest.mark.parametrize(
    ("log_group", "tag"),
    [
        pytest.param("/aws/lambda/checkout-api", "aws.lambda.checkout-api", id="lambda"),
        pytest.param("/ecs/web", "ecs.web", id="ecs"),
        pytest.param(
            "API-Gateway-Execution-Logs_a1b2c3/prod",
            "API-Gateway-Execution-Logs_a1b2c3.prod",
            id="api gateway",
        ),
        pytest.param("RDSOSMetrics", "RDSOSMetrics", id="no slash"),
        pytest.param("//aws//rds//", "aws.rds", id="empty parts dropped"),
        pytest.param("/", "cloudwatch", id="nothing left"),
    ],
)
def test_tag_for_log_group(log_group, tag):
    """Slashes become dots, empty parts vanish, and an empty result falls back to `cloudwatch`."""
    assert cloudwatch.tag_for_log_group(log_group) == tag


def test_gunzip_refuses_output_above_the_limit():
    """A gzip bomb stops at the limit with a gzip-stage error instead of filling memory."""
    bomb = gzip.compress(b"\0" * 100_000, mtime=0)
    with pytest.raises(DecodeError) as info:
        cloudwatch.gunzip(bomb, limit=10_000)
    assert info.value.stage == "gzip"
    assert "larger than 10000" in info.value.reason


def test_gunzip_accepts_output_exactly_at_the_limit():
    """A payload exactly as large as the limit is not mistaken for a bomb."""
    body = b"x" * 10_000
    assert cloudwatch.gunzip(gzip.compress(body, mtime=0), limit=10_000) == body


def test_data_field_must_be_text():
    """`awslogs.data` that is not a string is a shape error, not a crash."""
    with pytest.raises(DecodeError) as info:
        cloudwatch.decode({"awslogs": {"data": 42}}, REGION)
    assert info.value.stage == "shape"


def test_base64_alphabet_is_validated():
    """Characters outside base64 are refused rather than silently skipped."""
    good = base64.b64encode(gzip.compress(b"{}", mtime=0)).decode()
    with pytest.raises(DecodeError) as info:
        cloudwatch.decode_data(good[:8] + "\n" + good[8:])
    assert info.value.stage == "base64"


def test_events_are_the_log_events_their_constructor_makes(batch):
    """Each event the source builds field by field is the LogEvent its constructor makes
    from the same values: every field set, same class, equal and shown the same."""
    import dataclasses

    from chalicelib.event import LogEvent

    assert batch.events
    for ev in batch.events:
        fields = {f.name: getattr(ev, f.name) for f in dataclasses.fields(LogEvent)}
        made = LogEvent(**fields)
        assert type(ev) is LogEvent
        assert ev == made
        assert repr(ev) == repr(made)


TRACE_PIECES = [
    "[ERROR]\t2026-11-26T10:07:01.123Z\t6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b\tboom",
    "[INFO]\t2026-11-26T10:07:01.124Z\t6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b\tfine",
    "2026-11-26 10:07:01,537 ERROR [main] c.e.Handler - boom",
    "10:07:01.537 [main] INFO c.e.orders.Handler - ok",
    "Traceback (most recent call last):",
    '  File "/var/task/app.py", line 3, in handler',
    "    raise ValueError('x')",
    "ValueError: x",
    "During handling of the above exception, another exception occurred:",
    "java.lang.IllegalStateException: bad",
    "\tat com.example.Handler.run(Handler.java:10)",
    "Caused by: java.io.IOException: disk",
    "\t... 3 more",
    "plain text line",
    "",
    '{"message": "plain text in JSON"}',
    '{"level": "INFO", "message": "structured"}',
    "START RequestId: 6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b Version: $LATEST",
    '10.0.1.2 - - [26/Nov/2026:10:07:01 +0000] "GET / HTTP/1.1" 200 1',
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TRACE_PIECES), max_size=40))
def test_runs_without_plain_text_are_skipped_without_changing_the_events(
    messages: list[str],
) -> None:
    """Stack traces are joined as when every run of adjacent candidates is read: leaving
    runs with no plain text after their first event unread changes no event."""
    from chalicelib.parsers.multiline import join_runs

    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/f",
        "logStream": "s",
        "subscriptionFilters": ["f"],
        "logEvents": [
            {"id": str(i), "timestamp": 1_796_000_000_000 + i, "message": m}
            for i, m in enumerate(messages)
        ],
    }

    def fields(batch: cloudwatch.CloudWatchBatch) -> list[tuple[object, ...]]:
        return [(e.tag, e.time, e.record, e.id, e.count, e.size, e.arrival) for e in batch.events]

    ours = fields(cloudwatch.batch_from_document(copy.deepcopy(doc), REGION))
    with pytest.MonkeyPatch.context() as mp:  # every run read, as before `plain`
        mp.setattr(
            cloudwatch,
            "join_runs",
            lambda events, candidates, *, header, plain: join_runs(
                events, candidates, header=header
            ),
        )
        theirs = fields(cloudwatch.batch_from_document(copy.deepcopy(doc), REGION))
    assert ours == theirs
