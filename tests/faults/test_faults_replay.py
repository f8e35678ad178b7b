"""Dead letters replayed with `sluice dlq replay`: Lambda's own on-failure records (async
invocations, whatever the function ARN's qualifier; Kinesis batches read back from the
stream; objects-queue messages moved by SQS redrive) and Sluice's letters, after retries
that may have archived the same events since. Each event ends in the archive once."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.handlers import handle_cloudwatch_logs, handle_kinesis_records
from sluice_cli.dlq import dlq
from sluice_cli.onfailure import StreamBatch, read_range

from .payloads import (
    APP,
    OBJECTS_BUCKET,
    RULES,
    cloudwatch_payload,
    message,
    s3_objects_event,
    token,
)
from .readback import Inputs

pytestmark = pytest.mark.faults

FAN_IN = "sluice-fan-in"
SHARD = "shardId-000000000000"


def send_letter(aws: Any, body: dict[str, Any], queue_url: str | None = None) -> None:
    aws.sqs.send_message(QueueUrl=queue_url or aws.dlq_url, MessageBody=json.dumps(body))


def async_failure(
    load_event: Any, event: Any, request_id: str, arn: str, template: str = "cloudwatch_logs"
) -> dict[str, Any]:
    """Lambda's on-failure record for an asynchronous invocation that failed its attempts
    (the documented shape, from events/onfailure/)."""
    record = copy.deepcopy(load_event(f"onfailure/{template}_async"))
    record["requestContext"].update(requestId=request_id, functionArn=arn)
    record["requestPayload"] = event
    return record


def replay(*args: str) -> Any:
    return CliRunner().invoke(dlq, ["replay", *args])


ARN = "arn:aws:lambda:us-east-1:123456789012:function:sluice-prod-cloudwatch_logs"


@pytest.mark.parametrize(
    "qualifier", ["$LATEST", "live", "7", None], ids=["latest", "alias", "version", "unqualified"]
)
def test_on_failure_records_of_one_log_group_and_hour_replay_every_event_once(
    runtime, faults, context, apply_rules, settle, lambda_async, load_event, aws, qualifier
):
    """Two payloads of one log group and hour fail all of Lambda's attempts (archive and
    queue down) and reach the queue as Lambda's on-failure records; `dlq replay` sends each
    back under its own request id: all 8 events archived once, the letters deleted."""
    apply_rules(RULES)
    inputs = Inputs()
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    letters = []
    for n, first in enumerate((1, 5)):
        event, ins = cloudwatch_payload("oaoo", first=first)
        inputs += ins
        ctx = context(aws_request_id=f"fa017000-0000-4000-8000-00000000000{n}")
        answers = lambda_async(handle_cloudwatch_logs, event, ctx, runtime)
        assert all(isinstance(a, Exception) for a in answers)
        arn = ARN + (f":{qualifier}" if qualifier else "")
        letters.append(async_failure(load_event, event, ctx.aws_request_id, arn))
    faults.clear()
    for letter in letters:
        send_letter(aws, letter)
    result = replay()
    assert result.exit_code == 0, result.output
    assert "replayed 2, kept 0" in result.output
    figures = settle(inputs)
    assert figures.archived == 8 and figures.alerted == {"evt-0002": 1, "evt-0006": 1}


def test_on_failure_record_after_a_partial_archive_rewrites_the_same_objects(
    runtime, faults, context, apply_rules, settle, lambda_async, load_event, aws
):
    """Lambda's attempts archived the first of two objects before failing: the replay runs
    under the original request id and rewrites that object instead of adding a copy."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oaoaoo", split_hour=3)
    faults.down("s3", "PutObject", skip=1)
    faults.down("sqs", "SendMessage")
    ctx = context()
    answers = lambda_async(handle_cloudwatch_logs, event, ctx, runtime)
    assert all(isinstance(a, Exception) for a in answers)
    faults.clear()
    send_letter(aws, async_failure(load_event, event, ctx.aws_request_id, ARN + ":$LATEST"))
    assert replay().exit_code == 0
    figures = settle(inputs)
    assert figures.archived == 6


def test_a_letter_replayed_twice_rewrites_the_same_objects(
    runtime, faults, context, apply_rules, settle, lambda_async, load_event, aws
):
    """A replay that crashed before deleting its letter runs again: the second run writes
    the same objects (names from the letter, not from the replaying process)."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oooo")
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    ctx = context()
    lambda_async(handle_cloudwatch_logs, event, ctx, runtime)
    faults.clear()
    letter = async_failure(load_event, event, ctx.aws_request_id, ARN)
    send_letter(aws, letter)
    send_letter(aws, letter)  # the same record, seen again (at-least-once delivery)
    assert replay().exit_code == 0
    figures = settle(inputs)
    assert figures.archived == 4


def test_retry_after_an_archive_stage_letter_then_replay_archives_once(
    runtime, faults, slack, context, apply_rules, settle, lambda_async
):
    """The first attempt dead-letters its events (archive down), then fails (its alert can
    be neither sent nor dead-lettered); Lambda's retry archives them. Replaying the archive-
    stage letter afterwards finds them archived and writes nothing."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oao")
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage", skip=1)  # the archive letter goes, nothing after it
    slack.fail_next(status=500, count=3)

    def recover() -> None:
        faults.clear()

    answers = lambda_async(handle_cloudwatch_logs, event, context(), runtime, between=recover)
    assert isinstance(answers[0], Exception) and answers[1]["archived"] == 3
    result = replay()
    assert result.exit_code == 0, result.output
    assert "replayed 1, kept 0" in result.output
    figures = settle(inputs)
    assert figures.archived == 3 and figures.alerted == {"evt-0002": 1}


# ---------------------------------------------------------------- Kinesis batches
@pytest.fixture
def fan_in(aws: Any) -> Any:
    """The fan-in stream in the mocked account (one shard)."""
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName=FAN_IN, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=FAN_IN)["StreamDescription"]["StreamARN"]
    return kinesis, arn


def put_batch(fan_in: Any, spec: str, first: int = 1) -> tuple[dict[str, Any], Inputs]:
    """Records put in the stream (one per letter, tagged app.<kind>), read back as Lambda
    delivers them; the inputs carry their event ids."""
    kinesis, arn = fan_in
    inputs, seqs = Inputs(), []
    for i, kind in enumerate(spec):
        n = first + i
        text = message(kind, n)
        doc = json.loads(text) if text.startswith("{") else {"message": text}
        doc["tag"] = "app." + APP.get(kind, "misc")
        seq = kinesis.put_record(StreamName=FAN_IN, Data=json.dumps(doc), PartitionKey=f"k{n}")
        seqs.append(seq["SequenceNumber"])
        event_id = f"{FAN_IN}:{SHARD}:{seq['SequenceNumber']}:0"
        inputs.units[event_id] = 1
        inputs.tokens[token(n)] = event_id
        if kind == "h":
            inputs.dropped.add(event_id)
    batch = StreamBatch("", "kinesis_records", arn, SHARD, seqs[0], seqs[-1], len(seqs))
    records, problem = read_range(kinesis, batch, "us-east-1")
    assert problem is None
    return {"Records": records}, inputs


def batch_record(load_event: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Lambda's on-failure record for a discarded Kinesis batch (no data, only the range)."""
    record = copy.deepcopy(load_event("onfailure/kinesis_batch"))
    recs = event["Records"]
    record["KinesisBatchInfo"].update(
        shardId=SHARD,
        startSequenceNumber=recs[0]["kinesis"]["sequenceNumber"],
        endSequenceNumber=recs[-1]["kinesis"]["sequenceNumber"],
        batchSize=len(recs),
        streamArn=recs[0]["eventSourceARN"],
    )
    return record


def test_discarded_kinesis_batch_is_read_back_from_the_stream(
    runtime, faults, context, apply_rules, settle, load_event, aws, fan_in
):
    """A batch Lambda discarded after its retries (archive and queue down) reaches the
    queue as a KinesisBatchInfo record; replay reads the range back from the stream
    (AT_SEQUENCE_NUMBER) and archives each event once, alerting once."""
    apply_rules(RULES)
    event, inputs = put_batch(fan_in, "oaho")
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    ctx = context(function_name="sluice-dev-kinesis_records")
    assert len(handle_kinesis_records(event, ctx, runtime)["batchItemFailures"]) == 4
    faults.clear()
    send_letter(aws, batch_record(load_event, event))
    result = replay()
    assert result.exit_code == 0, result.output
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (3, 1)
    assert figures.alerted == {"evt-0002": 1}


def test_discarded_kinesis_batch_that_was_archived_replays_without_duplicates(
    runtime, faults, slack, context, apply_rules, settle, load_event, aws, fan_in
):
    """The batch was archived but its alert could be neither sent nor dead-lettered, so
    Lambda discarded it: replaying its range archives nothing again and sends the alert."""
    apply_rules(RULES)
    event, inputs = put_batch(fan_in, "oao")
    slack.fail_next(status=500, count=3)
    faults.down("sqs", "SendMessage")
    ctx = context(function_name="sluice-dev-kinesis_records")
    assert len(handle_kinesis_records(event, ctx, runtime)["batchItemFailures"]) == 3
    faults.clear()
    send_letter(aws, batch_record(load_event, event))
    assert replay().exit_code == 0
    figures = settle(inputs)
    assert figures.archived == 3 and figures.alerted == {"evt-0002": 1}


def test_kinesis_batch_past_retention_is_kept_with_its_range(
    runtime, apply_rules, settle, load_event, aws, fan_in
):
    """A batch record naming records the stream no longer holds (here: a stream deleted
    since) stays in the queue, and `dlq replay` says which range is gone and exits 1."""
    apply_rules(RULES)
    letter = load_event("onfailure/kinesis_batch")
    letter["KinesisBatchInfo"]["streamArn"] = fan_in[1].replace(FAN_IN, "sluice-retired")
    send_letter(aws, letter)
    result = replay()
    assert result.exit_code == 1
    assert "past the stream's retention" in result.output
    assert letter["KinesisBatchInfo"]["startSequenceNumber"] in result.output.replace("\n", "")
    settle(Inputs(raw_units=1))


# ---------------------------------------------------------------- S3 and bad input
def test_objects_queue_message_moved_by_redrive_is_read_once(
    runtime, apply_rules, settle, load_event, aws
):
    """A message SQS moved from the objects queue to its redrive queue (the original S3
    notification) is replayed through s3_objects: each object read once, even when the
    same message is replayed twice."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oao", "oh"])
    url = aws.sqs.create_queue(QueueName="sluice-dev-objects-dlq")["QueueUrl"]
    for rec in event["Records"]:
        aws.sqs.send_message(QueueUrl=url, MessageBody=rec["body"])
    aws.sqs.send_message(QueueUrl=url, MessageBody=event["Records"][0]["body"])
    result = replay("--queue-url", url)
    assert result.exit_code == 0, result.output
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (4, 1)


def test_bad_letters_are_kept_with_the_reason_and_the_rest_replayed(
    runtime, faults, context, apply_rules, settle, lambda_async, load_event, aws
):
    """A foreign message, a record cut short, a record for a function Sluice no longer has
    and a body that is not JSON stay in the queue, each with its reason; the good letter
    next to them is replayed, and the command exits 1."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oo")
    faults.down("s3", "PutObject")
    faults.down("sqs", "SendMessage")
    ctx = context()
    lambda_async(handle_cloudwatch_logs, event, ctx, runtime)
    faults.clear()
    send_letter(aws, async_failure(load_event, event, ctx.aws_request_id, ARN + ":live"))
    for name in (
        "dead_letter_foreign",
        "onfailure_without_payload",
        "onfailure_kinesis_truncated",
        "onfailure_unknown_function",
    ):
        send_letter(aws, load_event(f"onfailure/malformed/{name}"))
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody='{"requestContext": {"requestId"')
    result = replay()
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "replayed 1, kept 5" in out
    for reason in (
        "neither Sluice's dead letter nor a Lambda on-failure record",
        "no requestPayload",
        "KinesisBatchInfo without endSequenceNumber, streamArn",
        "'sluice-prod-log_shipper' is not a Sluice function",
        "not JSON",
    ):
        assert reason in out, reason
    inputs.raw_units = 5  # the kept letters, each one unit
    settle(inputs)
