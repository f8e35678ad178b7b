"""Alert and forward faults: Slack rate limits, errors and hangs on the local Web API
endpoint, SNS throttled or failing, the Kinesis forward throttled or failing."""

from __future__ import annotations

import pytest

from chalicelib.actions.slack_client import connection
from chalicelib.actions.slack_retry import MAX_RETRY_AFTER_S
from chalicelib.handlers import handle_cloudwatch_logs

from .payloads import RULES, cloudwatch_payload

pytestmark = pytest.mark.faults

SDK_ATTEMPTS = 4  # botocore standard mode with max_attempts=3 retries (chalicelib/aws.py)
FORWARD_RETRIES = 3  # the forward action's own retries of what the SDK gave up on


def statuses(slack) -> list[int]:
    return [status for _, status in slack.requests()]


# ---------------------------------------------------------------- Slack
def test_slack_429_with_retry_after_is_waited_for_and_delivered_once(
    runtime, context, apply_rules, slack, waits, settle
):
    """A 429 asking for 3 seconds is retried after (at least) those 3 seconds; exactly one
    message arrives and nothing is dead-lettered."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("aoa")
    slack.fail_next(status=429, retry_after=3)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert statuses(slack) == [429, 200]
    assert len(waits.slack) == 1 and 3 <= waits.slack[0] < 4
    assert (result["alerts"], result["actions_failed"]) == (1, 0)
    figures = settle(inputs)
    assert figures.alerted == {"evt-0001": 1, "evt-0003": 1} and not figures.action_ids


def test_slack_429_asking_too_long_dead_letters_the_alert_without_waiting(
    runtime, context, apply_rules, slack, waits, settle
):
    """A Retry-After beyond what an invocation can sit out is not waited for: the alert goes to
    the dead-letter queue (stage action) and its events stay archived."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("ao")
    slack.fail_next(status=429, retry_after=MAX_RETRY_AFTER_S + 50)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert statuses(slack) == [429] and waits.slack == []
    assert (result["alerts"], result["actions_failed"], result["archived"]) == (0, 1, 2)
    figures = settle(inputs)
    assert not figures.alerted
    assert set(figures.action_ids) == {inputs.tokens["evt-0001"]}


def test_slack_500_forever_dead_letters_the_alert_and_keeps_the_events(
    runtime, context, apply_rules, slack, settle
):
    """Slack answering 500 to every attempt is tried three times; the alert is dead-lettered
    with its events, which are archived; the ledger balances."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("aoha")
    slack.fail_next(status=500, count=100)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert statuses(slack) == [500, 500, 500]
    assert (result["alerts"], result["actions_failed"], result["lost"]) == (0, 1, 0)
    figures = settle(inputs)
    (msg,) = figures.dlq_messages
    assert (msg["stage"], msg["action"], msg["rule"], msg["count"]) == (
        "action",
        "slack",
        "computer-alerts",
        2,
    )
    assert figures.archived == 3 and figures.dropped == 1 and not figures.alerted


def test_slack_hanging_past_the_timeout_dead_letters_the_alert_without_posting_twice(
    runtime, context, apply_rules, slack, settle
):
    """A request Slack holds past the client's timeout is not retried (Slack may have posted
    it): the invocation moves on while Slack still holds the request (nothing posted yet
    when it returns), the alert goes to the dead-letter queue, and the late post, once
    Slack lets it through, is the only message."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("ao")
    connection(runtime.services).client().timeout = 0.3
    slack.hang_next(60.0)  # held until released: far past the client's timeout
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert slack.messages() == []  # the invocation did not wait for Slack's answer
    assert (result["alerts"], result["actions_failed"]) == (0, 1)
    slack.release_hangs()
    slack.wait_for(1, timeout=10)  # the held request completes after the client gave up
    figures = settle(inputs)
    assert figures.alerted == {"evt-0001": 1}
    assert "TimeoutError" in figures.dlq_messages[0]["reason"]


# ---------------------------------------------------------------- SNS
def test_sns_throttled_then_accepted_pages_once(
    runtime, faults, context, apply_rules, pager, settle
):
    """SNS Publish throttled twice is retried by the SDK: one page, nothing dead-lettered."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("popo")
    faults.throttle("sns", "Publish", times=2)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert faults.attempts[("sns", "Publish")] == 3
    assert (result["alerts"], result["actions_failed"]) == (1, 0)
    figures = settle(inputs)
    assert figures.paged == {"evt-0001": 1, "evt-0003": 1}


def test_sns_failing_dead_letters_the_page_while_slack_alerts_once(
    runtime, faults, context, apply_rules, pager, settle
):
    """With SNS failing for the whole invocation the page is dead-lettered with its events
    (still archived), while the other rule's Slack alert goes out once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("pao")
    faults.down("sns", "Publish")
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert faults.attempts[("sns", "Publish")] == SDK_ATTEMPTS
    assert (result["alerts"], result["actions_failed"]) == (1, 1)
    figures = settle(inputs)
    assert not figures.paged and figures.alerted == {"evt-0002": 1}
    assert set(figures.action_ids) == {inputs.tokens["evt-0001"]}
    assert figures.dlq_messages[0]["action"] == "sns"


# ---------------------------------------------------------------- Kinesis forward
def test_kinesis_forward_throttled_past_the_sdk_retries_forwards_each_event_once(
    runtime, faults, context, apply_rules, forward_stream, waits, settle
):
    """PutRecords throttled five times outlasts the SDK's four attempts; the forward action's
    own backoff retries the batch, and each event lands in the stream once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("fofaf")
    faults.throttle("kinesis", "PutRecords", times=5)
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert faults.attempts[("kinesis", "PutRecords")] == 6
    assert len(waits.forward) == 1
    assert (result["actions_failed"], result["rules"]["fan-out"]["forwarded"]) == (0, 3)
    figures = settle(inputs)
    assert sorted(figures.forwarded.values()) == [1, 1, 1]
    assert figures.alerted == {"evt-0004": 1}


def test_kinesis_forward_failing_dead_letters_the_events_it_could_not_send(
    runtime, faults, context, apply_rules, forward_stream, waits, settle
):
    """With Kinesis failing throughout, the forward gives up after its retries and the
    events it could not send are dead-lettered (stage action), still archived once."""
    apply_rules(RULES)
    event, inputs = cloudwatch_payload("fof")
    faults.down("kinesis", "PutRecords")
    result = handle_cloudwatch_logs(event, context(), runtime)
    assert faults.attempts[("kinesis", "PutRecords")] == SDK_ATTEMPTS * (1 + FORWARD_RETRIES)
    assert result["actions_failed"] == 1
    figures = settle(inputs)
    assert not figures.forwarded
    assert set(figures.action_ids) == {inputs.tokens["evt-0001"], inputs.tokens["evt-0003"]}
    assert figures.archived == 3
