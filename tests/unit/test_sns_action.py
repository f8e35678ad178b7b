"""chalicelib.actions.sns: one publish per rule per invocation, readable in email and pagers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.actions.context import Delivery, Offline
from chalicelib.actions.sns import SnsAction
from chalicelib.errors import ActionError
from chalicelib.event import format_time
from chalicelib.invocation import Invocation

from .factories import T0, log_event, log_events

SNS_MESSAGE_LIMIT = 256 * 1024  # bytes (SNS quotas)
INV = Invocation(request_id="inv-1", account="123456789012", region="us-east-1")


def action(ctx: Any = None, **opts: Any) -> SnsAction:
    return SnsAction("checkout-errors", {"topic": "ops-pager", **opts}, ctx or Offline())


def test_subject_body_and_attributes():
    """Subject names level, rule, count, tag; body names the origin (account, region) and
    lists events; attributes: rule, severity, tag."""
    events = log_events(3, message="payment failed {i}", level="ERROR")
    subject, body, attrs = action().build(events)
    assert subject == "[ERROR] checkout-errors: 3 event(s) on aws.lambda.checkout-api"
    assert body.splitlines() == [
        "aws.lambda.checkout-api: payment failed 0",
        "",
        "Rule: checkout-errors   Events: 3   Level: ERROR",
        "First: 2026-11-26T10:07:01.000Z   Last: 2026-11-26T10:07:01.002Z",
        "Origin: 123456789012 · us-east-1",
        "",
        "2026-11-26T10:07:01.000Z aws.lambda.checkout-api payment failed 0",
        "2026-11-26T10:07:01.001Z aws.lambda.checkout-api payment failed 1",
        "2026-11-26T10:07:01.002Z aws.lambda.checkout-api payment failed 2",
    ]
    assert attrs == {
        "rule": {"DataType": "String", "StringValue": "checkout-errors"},
        "severity": {"DataType": "String", "StringValue": "ERROR"},
        "tag": {"DataType": "String", "StringValue": "aws.lambda.checkout-api"},
    }


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{message}", id="message"),
        pytest.param("[{level}] {rule}: {count} event(s) on {tag}", id="default"),
        pytest.param("{record.user} {message} {message}", id="long"),
    ],
)
def test_subject_is_short_printable_ascii(template):
    """Whatever the template and log text, the subject is under 100 printable ASCII characters."""
    message = "caf\u00e9 \u2603 line\nbreak\ttab \x00 " + "\U0001f600" * 80 + "z" * 300
    ev = log_event(message, tag="app." + "t" * 300, user="\u00fcser\r\n")
    subject, _, _ = action(subject=template).build([ev])
    assert 0 < len(subject) < 100
    assert all(0x20 <= ord(c) <= 0x7E for c in subject), subject


@pytest.mark.parametrize(
    "order",
    [
        pytest.param([0, 1, 2], id="in order"),
        pytest.param([2, 1, 0], id="reversed"),
        pytest.param([1, 2, 0, 1], id="shuffled with a repeated time"),
    ],
)
def test_first_and_last_are_the_earliest_and_latest_times(order):
    """Out-of-order events: First is the earliest time, Last the latest, lines in time order."""
    offsets = [0, 90_000, 7_200_001]
    events = [
        log_event(f"at {offsets[i]}", time=T0 + offsets[i], id=f"e{n}") for n, i in enumerate(order)
    ]
    _, body, _ = action().build(events)
    times = sorted(T0 + offsets[i] for i in order)
    lines = body.splitlines()
    assert lines[3] == f"First: {format_time(times[0])}   Last: {format_time(times[-1])}"
    assert lines[6:] == [f"{format_time(t)} aws.lambda.checkout-api at {t - T0}" for t in times]


def test_many_events_list_twenty_and_count_the_rest():
    """At most 20 event lines, then the number left out."""
    _, body, _ = action().build(log_events(25))
    lines = body.splitlines()
    assert sum(1 for line in lines if line.startswith("2026-11-26T")) == 20
    assert lines[-1] == "... and 5 more"


def test_severity_is_the_highest_level():
    """The severity attribute is the highest level among the events."""
    events = [log_event(level="INFO"), log_event(level="FATAL"), log_event(level="WARN")]
    _, _, attrs = action().build(events)
    assert attrs["severity"]["StringValue"] == "FATAL"


def test_topic_name_resolves_in_the_functions_account_and_region():
    """A bare topic name becomes an ARN in the invocation's account and region; an ARN is kept."""
    assert action().topic_arn(INV) == "arn:aws:sns:us-east-1:123456789012:ops-pager"
    arn = "arn:aws:sns:eu-west-1:210987654321:elsewhere"
    assert action(topic=arn).topic_arn(INV) == arn


class Recorder:
    """An SNS client that records publish calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def publish(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        return {"MessageId": "m-1"}


class FakeContext:
    """An action context with one client: SNS."""

    def __init__(self, sns: Any) -> None:
        self.sns = sns

    def client(self, name: str) -> Any:
        assert name == "sns"
        return self.sns


@pytest.mark.parametrize(
    "char",
    [
        pytest.param("x", id="ASCII"),
        pytest.param("\u00e9", id="2-byte"),
        pytest.param("\u2603", id="3-byte"),
    ],
)
def test_published_message_fits_the_sns_byte_limit(char):
    """A 256 KB log message in any script is cut so the published message fits SNS's 256 KiB."""
    sns = Recorder()
    action(FakeContext(sns)).deliver(Delivery([log_event(char * (256 * 1024))], INV))
    (call,) = sns.calls
    assert len(call["Message"].encode("utf-8")) <= SNS_MESSAGE_LIMIT
    assert "Rule: checkout-errors   Events: 1   Level: INFO" in call["Message"]


def test_publish_failure_is_a_retryable_action_error():
    """A failed publish is a retryable ActionError naming the cause."""

    class Broken:
        def publish(self, **kw: Any) -> None:
            raise TimeoutError("read timed out")

    with pytest.raises(ActionError) as info:
        action(FakeContext(Broken())).deliver(Delivery(log_events(1), INV))
    assert info.value.retryable is True
    assert str(info.value) == "sns: publish: TimeoutError: read timed out"


# ---------------------------------------------------------------- through moto
def test_publish_reaches_the_topic(aws, runtime):
    """With moto, the alert reaches a queue subscribed to the topic, with subject and attributes."""
    queue_url = aws.sqs.create_queue(QueueName="pager-inbox")["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    aws.sns.subscribe(TopicArn=aws.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    events = log_events(2, message="payment failed {i}", level="ERROR")
    assert (
        SnsAction("checkout-errors", {"topic": "ops-pager"}, runtime.services).deliver(
            Delivery(events, INV)
        )
        == 1
    )

    (msg,) = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    note = json.loads(msg["Body"])
    assert note["TopicArn"] == aws.topic_arn
    assert note["Subject"] == "[ERROR] checkout-errors: 2 event(s) on aws.lambda.checkout-api"
    assert note["Message"].startswith("aws.lambda.checkout-api: payment failed 0\n")
    assert {k: v["Value"] for k, v in note["MessageAttributes"].items()} == {
        "rule": "checkout-errors",
        "severity": "ERROR",
        "tag": "aws.lambda.checkout-api",
    }


def test_missing_topic_is_an_action_error(aws, runtime):
    """Publishing to a topic that does not exist fails as an ActionError, not an exception."""
    with pytest.raises(ActionError) as info:
        SnsAction("r", {"topic": "no-such-topic"}, runtime.services).deliver(
            Delivery(log_events(1), INV)
        )
    assert "NotFound" in str(info.value)
