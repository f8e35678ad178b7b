"""The dead-letter queue itself failing: whatever could be neither kept nor dead-lettered
must go back to the trigger (an exception, or the batch item failures) so the platform
retries it, and the retry must neither lose nor duplicate anything."""

from __future__ import annotations

import pytest

from chalicelib.handlers import handle_cloudwatch_logs, handle_kinesis_records, handle_s3_objects

from .payloads import (
    OBJECTS_BUCKET,
    RULES,
    cloudwatch_payload,
    kinesis_batch,
    records_from,
    s3_objects_event,
    sequence,
)
from .readback import Inputs

pytestmark = pytest.mark.faults


def failed(answer: dict) -> list[str]:
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


def test_archive_and_queue_down_fail_the_invocation_and_the_retry_keeps_everything(
    runtime, faults, context, apply_rules, settle, lambda_async
):
    """With both the archive and the dead-letter queue refusing, the cloudwatch_logs invocation
    fails (nothing is acknowledged that was not kept); Lambda's retry with the same request id
    archives every event once and alerts once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oaho", split_hour=2)
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    answers = lambda_async(handle_cloudwatch_logs, event, context(), runtime, between=faults.clear)
    assert isinstance(answers[0], Exception) and answers[1]["lost"] == 0
    figures = settle(inputs)
    assert (figures.archived, figures.dropped, figures.dead_lettered) == (3, 1, 0)
    assert figures.alerted == {"evt-0002": 1}


def test_undecodable_payload_with_the_queue_down_is_dead_lettered_once_by_the_retry(
    runtime, faults, context, load_event, settle, lambda_async
):
    """A truncated-gzip payload cannot go to a failing queue, so the invocation fails and
    Lambda's retry dead-letters it, once."""
    event = load_event("malformed/truncated_gzip")
    faults.down("sqs", "SendMessage")
    answers = lambda_async(handle_cloudwatch_logs, event, context(), runtime, between=faults.clear)
    assert isinstance(answers[0], Exception) and answers[1]["dead_lettered"] == 1
    figures = settle(Inputs(raw_units=1))
    assert figures.dlq_messages[0]["stage"] == "decode"


def test_kinesis_archive_and_queue_down_hand_the_whole_batch_back(
    runtime, faults, context, apply_rules, settle, make_runtime
):
    """Neither archive nor queue: every record is a batch item failure; Lambda's retry of the
    batch (a new invocation) archives each event once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oahoa")
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    ctx = context(function_name="sluice-dev-kinesis_records")
    first = handle_kinesis_records(event, ctx, runtime)
    assert failed(first) == [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    retry = handle_kinesis_records(event, context(aws_request_id="retry-1"), make_runtime())
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (4, 1)
    assert figures.alerted == {"evt-0002": 1, "evt-0005": 1}


def test_kinesis_alert_undeliverable_and_queue_down_retry_overwrites_the_archive(
    runtime, faults, context, apply_rules, slack, settle, make_runtime
):
    """The batch was archived but its failed alert could not be dead-lettered, so the whole
    batch goes back; the retry (a new invocation) rewrites the same archive objects instead
    of adding copies, and alerts once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oaoo")
    slack.fail_next(status=500, count=3)
    faults.down("sqs", "SendMessage")
    ctx = context(function_name="sluice-dev-kinesis_records")
    assert len(failed(handle_kinesis_records(event, ctx, runtime))) == 4
    retry = handle_kinesis_records(event, context(aws_request_id="retry-1"), make_runtime())
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.archived == 4 and figures.alerted == {"evt-0002": 1}


def test_kinesis_poison_record_with_the_queue_down_leaves_the_rest_of_the_shard_to_the_retry(
    runtime, faults, context, apply_rules, settle, make_runtime
):
    """A poison record that cannot be dead-lettered is a batch item failure, and Lambda retries
    every record from it on (the later ones included): those must not be kept twice."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oxoo")
    faults.down("sqs", "SendMessage")
    ctx = context(function_name="sluice-dev-kinesis_records")
    first = handle_kinesis_records(event, ctx, runtime)
    assert failed(first)[0] == sequence(2)
    retry_event = records_from(event, min(failed(first)))
    retry = handle_kinesis_records(retry_event, context(aws_request_id="retry-1"), make_runtime())
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.dead_lettered == 1 and figures.archived == 3


def test_s3_objects_archive_and_queue_down_return_the_message_and_redelivery_reads_once(
    runtime, faults, context, aws, apply_rules, load_event, settle, make_runtime
):
    """An object whose events can be neither archived nor dead-lettered sends its message back
    (claim released); SQS's redelivery, a new invocation, reads each object once."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oa", "oho"])
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    ctx = context(function_name="sluice-dev-s3_objects")
    first = handle_s3_objects(event, ctx, runtime)
    assert failed(first) == [r["messageId"] for r in event["Records"]]
    again = handle_s3_objects(event, context(aws_request_id="redelivered"), make_runtime())
    assert again == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (4, 1)
    assert figures.alerted == {"evt-0002": 1}
