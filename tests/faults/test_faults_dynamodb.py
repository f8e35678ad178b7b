"""DynamoDB faults: the rules table throttled or unreadable (cold and warm functions), and
the state table (alert dedupe, S3 object claims) throttled or failing."""

from __future__ import annotations

import pytest

from chalicelib.handlers import handle_cloudwatch_logs, handle_s3_objects

from .inject import body_has
from .payloads import OBJECTS_BUCKET, RULES, cloudwatch_payload, s3_objects_event

pytestmark = pytest.mark.faults

RULES_TABLE = body_has("sluice-rules")
STATE_TABLE = body_has("sluice-state")


def test_rules_read_throttled_then_served_applies_the_rules(
    runtime, faults, context, apply_rules, settle
):
    """A cold function whose rules read is throttled twice gets the rules on the SDK's third
    attempt: the health check is dropped and the alert goes out once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oaho")
    faults.throttle("dynamodb", "GetItem", times=2, when=RULES_TABLE)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert "rules_error" not in result
    assert (result["archived"], result["dropped"], result["alerts"]) == (3, 1, 1)
    figures = settle(inputs)
    assert figures.alerted == {"evt-0002": 1}


def test_rules_unreadable_on_a_cold_start_archives_everything_and_says_so(
    runtime, faults, context, apply_rules, settle
):
    """A cold function that cannot read its rules archives every event (the health check
    too: no rule dropped it), sends no alert, and reports rules_error."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oaho")
    faults.down("dynamodb", "GetItem", when=RULES_TABLE)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert result["rules_error"].startswith("rules unavailable: ")
    assert (result["archived"], result["dropped"], result["alerts"]) == (4, 0, 0)
    inputs.dropped.clear()  # no rules ran, so nothing was dropped
    figures = settle(inputs)
    assert figures.archived == 4 and not figures.alerted


def test_rules_unreadable_when_warm_keeps_the_last_rules(
    runtime, faults, context, apply_rules, settle
):
    """A warm function whose rules cache expired while DynamoDB is failing keeps the rules it
    loaded last: drops and alerts still apply, and rules_error says why."""
    apply_rules(RULES)
    first, inputs = cloudwatch_payload("oa")
    handle_cloudwatch_logs(first, context(aws_request_id="warm-1"), runtime)
    runtime.rules.invalidate()  # the TTL went by
    faults.down("dynamodb", "GetItem", when=RULES_TABLE)
    second, more = cloudwatch_payload("hao", first=3)
    result = handle_cloudwatch_logs(second, context(aws_request_id="warm-2"), runtime)
    assert result["rules_error"].startswith("rules unavailable: ")
    assert (result["archived"], result["dropped"], result["alerts"]) == (2, 1, 1)
    inputs += more
    figures = settle(inputs)
    assert figures.alerted == {"evt-0002": 1, "evt-0004": 1}


def test_state_table_throttled_then_served_alerts_once_and_the_retry_stays_quiet(
    runtime, faults, context, apply_rules, settle
):
    """Dedupe reads and writes throttled twice each are retried by the SDK: one alert; the
    same invocation retried by Lambda finds the events alerted and sends nothing."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oaa")
    faults.throttle("dynamodb", "BatchGetItem", times=2, when=STATE_TABLE)
    faults.throttle("dynamodb", "BatchWriteItem", times=2, when=STATE_TABLE)
    assert handle_cloudwatch_logs(event, context(), runtime)["alerts"] == 1
    assert handle_cloudwatch_logs(event, context(), runtime)["alerts"] == 0
    figures = settle(inputs)
    assert figures.alerted == {"evt-0002": 1, "evt-0003": 1}


def test_state_table_down_before_the_alert_fails_the_invocation_and_the_retry_alerts_once(
    runtime, faults, context, apply_rules, settle, lambda_async
):
    """When the dedupe read fails past the SDK's retries the invocation fails after archiving;
    Lambda's retry (same request id) overwrites the archive objects and alerts once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oao", split_hour=2)
    faults.down("dynamodb", "BatchGetItem", when=STATE_TABLE)
    answers = lambda_async(handle_cloudwatch_logs, event, context(), runtime, between=faults.clear)
    assert isinstance(answers[0], Exception) and answers[1]["alerts"] == 1
    figures = settle(inputs)
    assert figures.archived == 3 and figures.alerted == {"evt-0002": 1}


def test_dedupe_record_unwritable_after_the_alert_does_not_alert_twice(
    runtime, faults, context, apply_rules, settle, lambda_async
):
    """Slack accepted the alert but its dedupe record cannot be written: the invocation must
    not fail over it, since Lambda's retry of a failed invocation would post the alert again."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oa")
    faults.down("dynamodb", "BatchWriteItem", when=STATE_TABLE)
    answers = lambda_async(handle_cloudwatch_logs, event, context(), runtime)
    assert len(answers) == 1 and answers[0]["alerts"] == 1
    assert "dedupe record not written" in answers[0]["errors"][0]
    figures = settle(inputs)
    assert figures.alerted == {"evt-0002": 1}


def test_object_claim_throttled_then_granted_reads_each_object_once(
    runtime, faults, context, aws, apply_rules, load_event, settle
):
    """The conditional claim of an S3 object throttled twice is retried by the SDK; each object
    is read once and a re-delivered notification is skipped as already processed."""
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oa", "ho"])
    faults.throttle("dynamodb", "PutItem", times=2, when=STATE_TABLE)
    ctx = context(function_name="sluice-dev-s3_objects")
    assert handle_s3_objects(event, ctx, runtime) == {"batchItemFailures": []}
    assert handle_s3_objects(event, context(aws_request_id="again"), runtime) == {
        "batchItemFailures": []
    }
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (3, 1)
    assert figures.alerted == {"evt-0002": 1}
