"""A Kinesis batch that fails for a reason that is not AWS's (a record no code path
expected) is processed again one record at a time: only the record that fails alone is
dead-lettered, the others are archived exactly once, across retries and redeliveries,
and records whose events spanned a slice processed before the failure are not written
twice. A failure that is AWS's (throttling, 5xx) hands the batch back as before."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import pipeline as pipeline_module
from chalicelib.budget import budget
from chalicelib.handlers import handle_kinesis_records

from .payloads import RULES, SHARD, kinesis_batch, kinesis_record, records_from, sequence
from .readback import Inputs
from .test_faults_positions import failed

pytestmark = pytest.mark.faults
POISON_TOKEN = "evt-0004"


def poison_route(monkeypatch: pytest.MonkeyPatch, error: Any = None) -> list[int]:
    """Routing raises whenever a slice holds the event carrying POISON_TOKEN (a ValueError
    by default: a deterministic failure, the same on every attempt). Returns a call count."""
    original = pipeline_module.route
    calls = [0]

    def route(events: list[Any], rules: Any) -> Any:
        calls[0] += 1
        if any(POISON_TOKEN in str(ev.record.get("message", "")) for ev in events):
            raise (error() if error else ValueError(f"cannot route {POISON_TOKEN}"))
        return original(events, rules)

    monkeypatch.setattr(pipeline_module, "route", route)
    return calls


def poisoned(spec: str) -> tuple[dict[str, Any], Inputs]:
    """kinesis_batch(spec) whose 4th record (evt-0004) is expected dead-lettered whole."""
    event, inputs = kinesis_batch(spec)
    del inputs.units[f"sluice-fan-in:{SHARD}:{sequence(4)}:0"]
    inputs.raw_units += 1
    return event, inputs


def test_poison_record_costs_only_itself(
    runtime, kinesis_ctx, apply_rules, settle, make_runtime, monkeypatch
):
    """Seven records, the fourth failing every time it is routed: the batch is done one
    record at a time, the fourth dead-lettered with its sequence number and the reason,
    the six others archived; no record handed back, and a redelivery of the same batch
    (the answer was lost) writes nothing twice."""
    apply_rules(RULES)
    event, inputs = poisoned("oooaooo")
    poison_route(monkeypatch)
    answer = handle_kinesis_records(event, kinesis_ctx("first"), runtime)
    assert answer == {"batchItemFailures": []}
    again = handle_kinesis_records(event, kinesis_ctx("again"), make_runtime())
    assert again == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered) == (6, 1)
    (msg,) = figures.dlq_messages
    assert msg["stage"] == "process" and "cannot route evt-0004" in msg["reason"]
    assert msg["origin"]["sequence"] == sequence(4)
    assert "evt-0004" not in figures.alerted


def test_records_spanning_slices_are_not_archived_twice(
    runtime, kinesis_ctx, apply_rules, settle, monkeypatch
):
    """Slices of two events, records of several lines: the slice that fails holds the last
    line of a record whose first lines were archived by earlier slices. Processed again one
    at a time, that record writes only its remaining line; the poison record is
    dead-lettered; every other line is archived exactly once."""
    apply_rules(RULES)
    small = budget().replace(slice_events=2)
    monkeypatch.setattr(pipeline_module, "budget", lambda: small)
    texts = {1: ["order a1", "order a2", "order a3"], 2: ["b1", "b2", "b3", "b4"]}
    texts[3] = [f"computer on fire {POISON_TOKEN}"]  # its slice: [b4, this]
    texts[4] = ["d1"]
    texts[5] = ["e1", "e2"]
    records, inputs = [], Inputs()
    for n, lines in texts.items():
        records.append(kinesis_record(n, "\n".join(lines).encode()))
        if n != 3:
            for i in range(len(lines)):
                inputs.units[f"sluice-fan-in:{SHARD}:{sequence(n)}:{i}"] = 1
    inputs.raw_units = 1
    calls = poison_route(monkeypatch)
    answer = handle_kinesis_records({"Records": records}, kinesis_ctx("spans"), runtime)
    assert answer == {"batchItemFailures": []} and calls[0] > 5
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered) == (10, 1)


def test_aws_throttling_still_hands_the_batch_back(
    runtime, kinesis_ctx, apply_rules, settle, make_runtime, monkeypatch
):
    """A failure that is AWS's (a throttling answer raised while routing) is not the
    data's: the whole batch is handed back as before, nothing dead-lettered, and the retry
    once AWS recovers archives every event exactly once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("ooooo")

    def throttled() -> Exception:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return ClientError(error, "PutItem")

    original = pipeline_module.route
    poison_route(monkeypatch, throttled)
    first = handle_kinesis_records(event, kinesis_ctx("first"), runtime)
    assert len(failed(first)) == 5
    monkeypatch.setattr(pipeline_module, "route", original)  # AWS recovers
    retry = handle_kinesis_records(
        records_from(event, failed(first)[0]), kinesis_ctx("retry"), make_runtime()
    )
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.archived == 5 and not figures.dlq_messages


def test_dead_letter_queue_down_while_isolating_hands_back_from_the_poison(
    runtime, faults, kinesis_ctx, apply_rules, settle, make_runtime, monkeypatch
):
    """The poison record cannot be dead-lettered (the queue is down): it and the records
    after it are handed back, the ones before it stay archived; Lambda's retry from it,
    with the queue back, dead-letters it once and archives the rest exactly once."""
    apply_rules(RULES)
    event, inputs = poisoned("ooooooo")
    poison_route(monkeypatch)
    faults.down("sqs", "SendMessage")
    first = handle_kinesis_records(event, kinesis_ctx("first"), runtime)
    assert failed(first) == [sequence(n) for n in range(4, 8)]
    faults.clear()
    retry = handle_kinesis_records(
        records_from(event, failed(first)[0]), kinesis_ctx("retry"), make_runtime()
    )
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered) == (6, 1)
    assert json.dumps(figures.dlq_messages).count(sequence(4)) >= 1


def test_s3_object_that_fails_alone_costs_only_itself(
    aws, runtime, context, apply_rules, settle, load_event, monkeypatch
):
    """An SQS batch of two S3 notifications whose first object holds a line that makes
    routing raise (not AWS's fault, the same on every attempt): the failing slice is
    bisected, that line's event alone is dead-lettered (stage `process`, with the reason),
    every other line of both objects is archived once, and no message returns to the
    queue; a re-delivery of both notifications changes nothing."""
    from chalicelib.handlers import handle_s3_objects

    from .payloads import OBJECTS_BUCKET, s3_objects_event

    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oooa", "oo"])
    poison_route(monkeypatch)
    ctx = context(function_name="sluice-dev-s3_objects")
    assert handle_s3_objects(event, ctx, runtime) == {"batchItemFailures": []}
    assert handle_s3_objects(event, ctx, runtime) == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered) == (5, 1)
    (msg,) = figures.dlq_messages
    assert msg["stage"] == "process" and "cannot route evt-0004" in msg["reason"]
    assert [e["source"]["line"] for e in msg["events"]] == [4]
