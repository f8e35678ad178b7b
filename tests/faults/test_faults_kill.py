"""Invocations killed half-way (Lambda's timeout or a crash: `Killed`, which no
`except Exception` catches), then retried as Lambda retries them: asynchronous invocations
with the same aws_request_id on a fresh execution environment, SQS messages redelivered to
a new invocation once their visibility timeout (and the object's lease) has run out."""

from __future__ import annotations

import time

import pytest

from chalicelib.actions.slack import SlackAction
from chalicelib.handlers import handle_cloudwatch_logs, handle_s3_objects
from chalicelib.ingest import s3_objects as objects

from .inject import Killed, body_has, kill_before
from .payloads import OBJECTS_BUCKET, RULES, cloudwatch_payload, s3_objects_event

pytestmark = pytest.mark.faults

STATE_TABLE = body_has("sluice-state")
THROTTLED = {
    "rules": [
        {**rule, "throttle": {"window": "5m", "max": 1}}
        if rule["id"] == "computer-alerts"
        else rule
        for rule in RULES["rules"]
    ]
}


def test_killed_during_the_archive_write_retry_archives_once_and_alerts_once(
    runtime, faults, context, apply_rules, settle, make_runtime
):
    """Killed after the first of two archive objects was written: the retry (same request id,
    fresh environment) writes both objects under the same keys, and alerts once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("oaoaoh", split_hour=3)
    faults.kill("s3", "PutObject", skip=1)
    with pytest.raises(Killed):
        handle_cloudwatch_logs(event, context(), runtime)
    assert faults.attempts[("s3", "PutObject")] == 2
    result = handle_cloudwatch_logs(event, context(), make_runtime())
    assert (result["archived"], result["dropped"], result["alerts"]) == (5, 1, 1)
    figures = settle(inputs)
    assert figures.alerted == {"evt-0002": 1, "evt-0004": 1}


def test_killed_before_the_alert_is_posted_retry_alerts_once(
    runtime, context, apply_rules, slack, settle, make_runtime, monkeypatch
):
    """Killed after archiving, as the alert was about to go out: nothing reached Slack, and
    the retry rewrites the archive objects and posts the alert once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("aoa")
    calls = kill_before(monkeypatch, SlackAction, "deliver")
    with pytest.raises(Killed):
        handle_cloudwatch_logs(event, context(), runtime)
    assert slack.messages() == []
    handle_cloudwatch_logs(event, context(), make_runtime())
    assert calls[0] == 2
    figures = settle(inputs)
    assert figures.archived == 3 and figures.alerted == {"evt-0001": 1, "evt-0003": 1}


def test_killed_while_dead_lettering_retry_loses_nothing(
    runtime, faults, context, apply_rules, settle, make_runtime
):
    """Killed while sending a refused archive object's events to the dead-letter queue: the
    retry, with the archive back, archives every event once and the queue holds nothing."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("ooao")
    faults.down("s3", "PutObject")
    faults.kill("sqs", "SendMessage")
    with pytest.raises(Killed):
        handle_cloudwatch_logs(event, context(), runtime)
    result = handle_cloudwatch_logs(event, context(), make_runtime())
    assert (result["archived"], result["dead_lettered"], result["alerts"]) == (4, 0, 1)
    figures = settle(inputs)
    assert not figures.dlq_messages and figures.alerted == {"evt-0003": 1}


def test_killed_mid_object_redelivery_after_the_lease_reads_it_once(
    runtime, faults, context, aws, apply_rules, load_event, settle, make_runtime, monkeypatch
):
    """Killed in an object's second chunk: its claim keeps a redelivery away until the lease
    runs out (the message goes back), then the object is read again from the start onto the
    same archive keys, and the first chunk's alert is not repeated."""
    monkeypatch.setattr(objects, "CHUNK_LINES", 2)
    apply_rules(RULES)
    aws.s3.create_bucket(Bucket=OBJECTS_BUCKET)
    event, inputs = s3_objects_event(load_event("s3_objects_sqs"), aws.s3, ["oaoooa", "ho"])
    faults.kill("s3", "PutObject", skip=1, when=body_has("/archive/"))
    with pytest.raises(Killed):
        handle_s3_objects(event, context(function_name="sluice-dev-s3_objects"), runtime)

    redelivered = handle_s3_objects(event, context(aws_request_id="redelivery-1"), make_runtime())
    first = event["Records"][0]
    assert redelivered == {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}

    # 16 minutes later the dead invocation's lease has expired.
    for item in aws.dynamodb.scan(TableName="sluice-state")["Items"]:
        if item["pk"]["S"].startswith("object#") and item["status"]["S"] == "in_progress":
            aws.dynamodb.update_item(
                TableName="sluice-state",
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET expires_at = :past",
                ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
            )
    last = handle_s3_objects(
        {"Records": [first]}, context(aws_request_id="redelivery-2"), make_runtime()
    )
    assert last == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (7, 1)
    assert figures.alerted == {"evt-0002": 1, "evt-0006": 1}


def test_killed_after_spending_the_throttle_budget_retry_still_alerts(
    runtime, context, apply_rules, slack, settle, make_runtime, monkeypatch
):
    """Killed after the throttle counted the alert but before it was posted: the retry of the
    same invocation must still deliver (or dead-letter) that alert."""
    apply_rules(THROTTLED)
    event, inputs = cloudwatch_payload("ao")
    kill_before(monkeypatch, SlackAction, "deliver")
    with pytest.raises(Killed):
        handle_cloudwatch_logs(event, context(), runtime)
    result = handle_cloudwatch_logs(event, context(), make_runtime())
    figures = settle(inputs)
    assert figures.alerted == {"evt-0001": 1} or set(figures.action_ids) == {
        inputs.tokens["evt-0001"]
    }, result["rules"]
