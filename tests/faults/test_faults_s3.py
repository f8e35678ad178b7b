"""S3 faults: the archive's PutObject throttled or refused, and the source objects' GetObject
throttled, on the cloudwatch_logs and s3_objects handlers."""

from __future__ import annotations

import pytest

from chalicelib.handlers import handle_cloudwatch_logs, handle_s3_objects

from .inject import body_has
from .payloads import OBJECTS_BUCKET, RULES, cloudwatch_payload, s3_objects_event, sample_inputs

pytestmark = pytest.mark.faults

# chalicelib/aws.py configures botocore with retries {"mode": "standard", "max_attempts": 3}:
# in a Config, max_attempts counts retries, so a call failing for good is tried 4 times.
SDK_ATTEMPTS = 4


def test_put_object_throttled_then_accepted_archives_each_event_once(
    runtime, faults, context, load_event, settle
):
    """Two SlowDown answers to the archive's PutObject are retried by the SDK; the sample
    payload's events are archived once, nothing goes to the dead-letter queue."""
    event = load_event("cloudwatch_logs")
    faults.throttle("s3", "PutObject", times=2)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert faults.attempts[("s3", "PutObject")] == 3
    assert (result["archived"], result["dead_lettered"], result["lost"]) == (9, 0, 0)
    figures = settle(sample_inputs(event))
    assert figures.archived == 9 and not figures.dlq_messages


def test_archive_down_for_the_whole_invocation_dead_letters_every_kept_event(
    runtime, faults, context, apply_rules, settle
):
    """With every PutObject failing, the events the rules keep go to the dead-letter queue
    (stage archive), the dropped ones are only counted, and the alert still goes out once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oahoao")
    faults.down("s3", "PutObject")
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert (result["received"], result["dead_lettered"], result["dropped"]) == (6, 5, 1)
    assert result["alerts"] == 1
    figures = settle(inputs)
    assert figures.archived == 0 and figures.dead_lettered == 5
    assert {m["stage"] for m in figures.dlq_messages} == {"archive"}
    assert figures.alerted == {"evt-0002": 1, "evt-0005": 1}


def test_one_refused_archive_object_dead_letters_only_its_events(
    runtime, faults, context, apply_rules, settle
):
    """When only one (tag, hour) object is refused, its events are dead-lettered and the
    other hour's object is archived: each event in exactly one place."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oooooo", split_hour=3)
    faults.down("s3", "PutObject", when=body_has("hour=11"))
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert (result["archived"], result["dead_lettered"]) == (3, 3)
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered) == (3, 3)


def test_source_object_read_throttled_then_read_once(
    runtime, faults, context, aws, apply_rules, load_event, settle
):
    """GetObject throttled twice is retried by the SDK; both objects of the s3_objects sample
    are read once, their lines archived once, and the claims end done."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oaoh", "oo"])
    faults.throttle("s3", "GetObject", times=2)
    ctx = context(function_name="sluice-dev-s3_objects")
    assert handle_s3_objects(event, ctx, runtime) == {"batchItemFailures": []}
    assert faults.attempts[("s3", "GetObject")] == 4  # 2 objects, the first took 3 attempts
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (5, 1)
    assert figures.alerted == {"evt-0002": 1}


def test_archive_down_while_reading_objects_dead_letters_the_lines_and_redelivery_skips(
    runtime, faults, context, aws, apply_rules, load_event, settle, make_runtime
):
    """With the archive refusing writes, an object's lines go to the dead-letter queue and the
    object counts as done, so SQS delivering the same notification again reads nothing twice."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["ooa", "oh"])
    faults.down("s3", "PutObject")
    ctx = context(function_name="sluice-dev-s3_objects")
    assert handle_s3_objects(event, ctx, runtime) == {"batchItemFailures": []}
    again = handle_s3_objects(event, context(aws_request_id="redelivered"), make_runtime())
    assert again == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered, figures.dropped) == (0, 4, 1)
    assert figures.alerted == {"evt-0003": 1}


@pytest.mark.parametrize("code", ["SlowDown", "InternalError"])
def test_spill_of_a_large_dead_letter_retried_by_the_sdk(
    runtime, faults, context, load_event, settle, code: str
) -> None:
    """The 256 KB sample's event is too large for an SQS message; with the archive refusing it,
    the dead letter spills to the bucket's deadletter/ prefix, whose own PutObject is retried
    through a transient fault: the event is in the queue's spill once."""
    event = load_event("cloudwatch_logs_256kb")
    faults.down("s3", "PutObject", when=body_has("/archive/"))
    faults.error("s3", "PutObject", code, status=503, times=1, when=body_has("/deadletter/"))
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert (result["dead_lettered"], result["lost"]) == (1, 0)
    assert faults.attempts[("s3", "PutObject")] == SDK_ATTEMPTS + 2  # the archive's, the spill's
    figures = settle(sample_inputs(event))
    (msg,) = figures.dlq_messages
    assert msg["events_s3"].startswith("s3://sluice-archive-test/deadletter/")
    assert figures.dead_lettered == 1


def test_source_object_unreadable_returns_the_message_and_redelivery_reads_once(
    runtime, faults, context, aws, apply_rules, load_event, settle, make_runtime
):
    """GetObject failing past the SDK's retries sends the messages back with their claims
    released; SQS's redelivery (a new invocation) reads each object once."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oa", "ho"])
    faults.down("s3", "GetObject")
    first = handle_s3_objects(event, context(function_name="sluice-dev-s3_objects"), runtime)
    assert [f["itemIdentifier"] for f in first["batchItemFailures"]] == [
        r["messageId"] for r in event["Records"]
    ]
    again = handle_s3_objects(event, context(aws_request_id="redelivered"), make_runtime())
    assert again == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (3, 1)
    assert figures.alerted == {"evt-0002": 1}


def test_source_object_access_denied_is_dead_lettered_by_address_once(
    runtime, faults, context, aws, apply_rules, load_event, settle, make_runtime
):
    """AccessDenied on one object will not heal by retrying: its address goes to the
    dead-letter queue (stage read) once, a redelivery skips it, the other object is read."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oa", "oo"])
    denied = "web-1.jsonl.gz"
    faults.error("s3", "GetObject", "AccessDenied", status=403, when=body_has(denied))
    ctx = context(function_name="sluice-dev-s3_objects")
    assert handle_s3_objects(event, ctx, runtime) == {"batchItemFailures": []}
    again = handle_s3_objects(event, context(aws_request_id="redelivered"), make_runtime())
    assert again == {"batchItemFailures": []}
    # The denied object's lines never became events: it counts as one unit, by address.
    for token in ("evt-0001", "evt-0002"):
        del inputs.units[inputs.tokens.pop(token)]
    inputs.raw_units = 1
    figures = settle(inputs)
    (msg,) = figures.dlq_messages
    assert (msg["stage"], msg["origin"]["key"]) == ("read", "app/2026/11/26/10/web-1.jsonl.gz")
    assert figures.archived == 2 and not figures.alerted
