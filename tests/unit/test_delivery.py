"""chalicelib.delivery through the cloudwatch_logs handler: gates, throttles, dedupe, counters.

Alerts go to the local Slack Web API endpoint through the real slack_sdk client,
and to SNS in moto (read back from a subscribed queue).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from chalicelib.alerting import gates
from sluice_cli.payloads import subscription_event
from sluice_cli.slack_server import SlackServer

from .factories import T0

GROUP = "/aws/lambda/checkout-api"
STREAM = "2026/11/26/[$LATEST]6f8e2c1d"
TAG = "aws.lambda.checkout-api"
SLACK = {"slack": {"channel": "#ops", "text": "{tag}: {message}"}}
SNS = {"sns": {"topic": "ops-pager"}}


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def slack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    """The local Slack endpoint, holding the token the test account's secret holds."""
    secret = aws.secretsmanager.get_secret_value(SecretId="sluice/slack-bot-token")
    with SlackServer(json.loads(secret["SecretString"])["token"]) as server:
        monkeypatch.setenv("SLUICE_SLACK_API_URL", server.url)
        yield server


@pytest.fixture
def runtime(aws: Any, slack: SlackServer) -> Any:
    """The conftest Runtime, built after SLUICE_SLACK_API_URL points at the local endpoint."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    return Runtime(Settings.from_env(), Clients())


class Clock:
    def __init__(self) -> None:
        self.t = float(T0 // 1000)

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The wall clock the throttle's windows follow."""
    c = Clock()
    monkeypatch.setattr(gates, "time", SimpleNamespace(time=c))
    return c


@pytest.fixture
def sns_inbox(aws: Any) -> Callable[[], list[dict[str, Any]]]:
    """`sns_inbox()`: the SNS notifications published so far (from a subscribed queue)."""
    url = aws.sqs.create_queue(QueueName="sns-inbox")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.sns.subscribe(TopicArn=aws.topic_arn, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict[str, Any]]:
        out = []
        while msgs := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for m in msgs:
                out.append(json.loads(m["Body"]))
                aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out

    return read


def cw(i: int, message: str, seconds: float = 0) -> dict[str, Any]:
    """One CloudWatch log event with a stable id (what a retried delivery carries again)."""
    return {"id": f"3790{i:052d}", "timestamp": T0 + int(seconds * 1000), "message": message}


def payload(*events: dict[str, Any]) -> dict[str, Any]:
    return subscription_event(GROUP, STREAM, list(events))


def error(i: int, code: str = "E1", seconds: float = 0, text: str = "payment failed") -> Any:
    return cw(
        i, json.dumps({"level": "ERROR", "message": f"{text} {i}", "error_code": code}), seconds
    )


def rule(**extra: Any) -> dict[str, Any]:
    return {
        "id": "errors",
        "match": {"where": [{"field": "level", "equals": "ERROR"}]},
        "actions": [SLACK],
        **extra,
    }


def context_texts(msg: dict[str, Any]) -> list[str]:
    return [e["text"] for b in msg["blocks"] if b["type"] == "context" for e in b["elements"]]


def counters(result: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The ledger's per-rule counters, without the zeros."""
    return {rid: {k: v for k, v in c.items() if v} for rid, c in result["rules"].items()}


def balanced(result: dict[str, Any]) -> bool:
    return result["lost"] == 0 and result["received"] == (
        result["archived"] + result["dropped"] + result["dead_lettered"]
    )


# ---------------------------------------------------------------- dedupe by event id
def test_a_retried_invocation_sends_no_second_alert(apply_rules, invoke, slack):
    """The same payload delivered twice (Lambda's retry) produces one Slack message in total."""
    apply_rules({"rules": [rule()]})
    event = payload(error(1), error(2), cw(3, "all good"))
    first = invoke(event)
    second = invoke(event)
    assert len(slack.messages()) == 1
    assert (first["alerts"], second["alerts"]) == (1, 0)
    assert counters(first)["errors"] == {"matched": 2, "alerted": 1}
    assert counters(second)["errors"] == {"matched": 2, "suppressed": 2}
    assert balanced(first) and balanced(second)


def test_events_new_in_the_retry_still_alert(apply_rules, invoke, slack):
    """A re-delivery carrying one more event alerts on that event only."""
    apply_rules({"rules": [rule()]})
    invoke(payload(error(1), error(2)))
    invoke(payload(error(1), error(2), error(3)))
    first, second = slack.messages()
    assert first["blocks"][0]["text"]["text"] == "errors: 2 events · ERROR"
    assert second["blocks"][0]["text"]["text"] == "errors: 1 event · ERROR"
    assert second["blocks"][1]["text"]["text"] == f"{TAG}: payment failed 3"


def test_dedupe_is_per_action(apply_rules, invoke, slack, sns_inbox):
    """Slack and SNS of one rule each alert once across a retry."""
    apply_rules({"rules": [rule(actions=[SLACK, SNS])]})
    event = payload(error(1))
    assert invoke(event)["alerts"] == 2
    assert invoke(event)["alerts"] == 0
    assert len(slack.messages()) == 1
    assert len(sns_inbox()) == 1


def test_a_failed_alert_is_not_remembered_so_the_retry_sends_it(apply_rules, invoke, slack, dlq):
    """Only delivered alerts count for dedupe: after a Slack failure the retry alerts."""
    apply_rules({"rules": [rule()]})
    slack.fail_next(status=400, count=1)  # not retried by the client: fails at once
    event = payload(error(1))
    first = invoke(event)
    assert (first["alerts"], first["actions_failed"]) == (0, 1)
    assert [m["rule"] for m in dlq.messages()] == ["errors"]
    assert invoke(event)["alerts"] == 1
    assert len(slack.messages()) == 1


# ---------------------------------------------------------------- dedupe by full identity
OTHER_STREAM = "2026/11/26/[$LATEST]0a1b2c3d"


def kinesis_of(*docs: tuple[str, str, list[dict[str, Any]]], first: int = 1) -> dict[str, Any]:
    """A Kinesis batch as a CloudWatch Logs destination fills it (fan-in): one record per
    subscription document `(log group, stream, log events)`, gzip as CloudWatch writes it."""
    records = []
    for n, (group, stream, events) in enumerate(docs, start=first):
        data = base64.b64decode(subscription_event(group, stream, events)["awslogs"]["data"])
        seq = f"49615644782153954330179206451263{n:024d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": f"pk-{n}",
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": T0 / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000000000000:{seq}",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/fan-in",
            }
        )
    return {"Records": records}


def test_one_event_id_in_two_log_groups_alerts_for_each(apply_rules, invoke, slack):
    """Event ids are not unique across log groups: a match in a second group whose event has
    the id of one already alerted from the first group still alerts."""
    apply_rules({"rules": [rule()]})
    first = invoke(payload(error(1)))
    second = invoke(subscription_event("/aws/lambda/other-api", OTHER_STREAM, [error(1)]))
    assert (first["alerts"], second["alerts"]) == (1, 1)
    assert counters(second)["errors"] == {"matched": 1, "alerted": 1}
    tags = [m["blocks"][1]["text"]["text"].split(":")[0] for m in slack.messages()]
    assert tags == [TAG, "aws.lambda.other-api"]


@pytest.mark.parametrize(
    ("group", "stream", "owner", "alerts"),
    [
        pytest.param(GROUP, STREAM, "123456789012", 0, id="same event again: retry, no alert"),
        pytest.param("/aws/lambda/other-api", STREAM, "123456789012", 1, id="other log group"),
        pytest.param(GROUP, OTHER_STREAM, "123456789012", 1, id="other log stream"),
        pytest.param(GROUP, STREAM, "210987654321", 1, id="other account (cross-account)"),
    ],
)
def test_dedupe_is_by_the_events_origin_and_id(
    apply_rules, invoke, slack, group, stream, owner, alerts
):
    """An alerted event suppresses only itself: the same id from another group, stream or
    account is another event and alerts."""
    apply_rules({"rules": [rule()]})
    invoke(payload(error(1)))
    event = subscription_event(group, stream, [error(1)])
    doc = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    doc["owner"] = owner
    event["awslogs"]["data"] = base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()
    assert invoke(event)["alerts"] == alerts
    assert len(slack.messages()) == 1 + alerts


def test_kinesis_fan_in_alerts_each_group_and_never_twice(
    apply_rules, runtime, lambda_context, slack
):
    """Groups mixed in one Kinesis stream: a batch holding the same event id from two groups
    alerts on both events, a later batch with that id from a third group alerts, and the
    retried batches alert on nothing."""
    from chalicelib.handlers import handle_kinesis_records

    apply_rules({"rules": [rule()]})
    mixed = kinesis_of((GROUP, STREAM, [error(1)]), ("/aws/lambda/other-api", STREAM, [error(1)]))
    later = kinesis_of(("/aws/lambda/third-api", STREAM, [error(1)]), first=3)
    outcomes = [handle_kinesis_records(e, lambda_context, runtime) for e in (mixed, later)]
    outcomes += [handle_kinesis_records(e, lambda_context, runtime) for e in (mixed, later)]
    assert [o["batchItemFailures"] for o in outcomes] == [[], [], [], []]
    first, second = slack.messages()
    assert first["blocks"][0]["text"]["text"] == "errors: 2 events · ERROR"
    assert second["blocks"][0]["text"]["text"] == "errors: 1 event · ERROR"
    assert second["blocks"][1]["text"]["text"] == "aws.lambda.third-api: payment failed 1"


def test_a_threshold_counts_the_same_id_from_two_groups_as_two_matches(apply_rules, invoke, slack):
    """Distinct matches are distinct events: one id in two groups counts twice toward a
    threshold, while a retry of the same event still counts once."""
    apply_rules({"rules": [rule(threshold={"count": 2, "window": "1m"})]})
    invoke(payload(error(1)))
    assert invoke(payload(error(1)))["alerts"] == 0  # the retry: still one match
    other = subscription_event("/aws/lambda/other-api", STREAM, [error(1)])
    assert invoke(other)["alerts"] == 1


# ---------------------------------------------------------------- throttle
def test_throttle_per_key_with_suppressed_count_in_the_next_alert(
    apply_rules, invoke, slack, clock
):
    """`throttle: {key: "{tag}:{record.error_code}", window: 10m, max: 1}` end to end."""
    apply_rules(
        {"rules": [rule(throttle={"key": "{tag}:{record.error_code}", "window": "10m", "max": 1})]}
    )
    results = [
        invoke(payload(error(1, "E1"))),
        invoke(payload(error(2, "E1"))),
        invoke(payload(error(3, "E1"))),
        invoke(payload(error(4, "E2"))),
    ]
    assert [r["alerts"] for r in results] == [1, 0, 0, 1]
    assert [r["rules"]["errors"].get("suppressed", 0) for r in results] == [0, 1, 1, 0]
    clock.t += 600
    assert invoke(payload(error(5, "E1")))["alerts"] == 1
    messages = slack.messages()
    assert [m["blocks"][1]["text"]["text"] for m in messages] == [
        f"{TAG}: payment failed 1",
        f"{TAG}: payment failed 4",
        f"{TAG}: payment failed 5",
    ]
    assert "2 similar alert(s) suppressed since the last one" in context_texts(messages[2])
    assert not any("suppressed" in t for m in messages[:2] for t in context_texts(m))


def test_throttle_note_reaches_sns(apply_rules, invoke, sns_inbox, clock):
    """SNS bodies carry the suppressed count too."""
    apply_rules({"rules": [rule(actions=[SNS], throttle={"window": "5m", "max": 1})]})
    invoke(payload(error(1)))
    invoke(payload(error(2)))
    clock.t += 300
    invoke(payload(error(3)))
    bodies = [m["Message"] for m in sns_inbox()]
    assert len(bodies) == 2
    assert "1 similar alert(s) suppressed since the last one" in bodies[1].splitlines()


# ---------------------------------------------------------------- threshold and sequence
def test_threshold_fires_across_invocations_with_its_note(apply_rules, invoke, slack):
    """`threshold: {count: 3, window: 1m}`: two matches, then one more, then one alert."""
    apply_rules({"rules": [rule(threshold={"count": 3, "window": "1m"})]})
    first = invoke(payload(error(1, seconds=0), error(2, seconds=1)))
    assert (first["alerts"], slack.messages()) == (0, [])
    assert counters(first)["errors"] == {"matched": 2, "suppressed": 2}
    second = invoke(payload(error(3, seconds=2)))
    assert second["alerts"] == 1
    (msg,) = slack.messages()
    assert "3 matches within 1m (window from 2026-11-26T10:07:00.000Z)" in context_texts(msg)
    assert invoke(payload(error(4, seconds=3)))["alerts"] == 0


def test_a_retry_does_not_count_the_same_matches_twice(apply_rules, invoke, slack):
    """Two matches delivered twice are still two matches: a threshold of three does not fire."""
    apply_rules({"rules": [rule(threshold={"count": 3, "window": "1m"})]})
    event = payload(error(1, seconds=0), error(2, seconds=1))
    invoke(event)
    retry = invoke(event)
    assert (retry["alerts"], slack.messages()) == (0, [])
    assert invoke(payload(error(3, seconds=2)))["alerts"] == 1


def test_sequence_alert_names_the_precursor(apply_rules, invoke, slack):
    """A (pool warning) then B (outage) for the same host across invocations: B alerts, naming A."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "precursor",
                    "match": {"where": [{"field": "host", "exists": True}]},
                    "actions": [SLACK],
                    "sequence": {
                        "first": [{"field": "message", "contains": "pool nearly exhausted"}],
                        "then": [{"field": "message", "contains": "503"}],
                        "within": "5m",
                        "key": "{record.host}",
                    },
                }
            ]
        }
    )

    def line(i: int, message: str, host: str, seconds: float) -> dict[str, Any]:
        return cw(i, json.dumps({"message": message, "host": host}), seconds)

    invoke(payload(line(1, "pool nearly exhausted", "db-1", 0)))
    invoke(payload(line(2, "upstream 503", "db-2", 10)))  # another host: nothing
    result = invoke(payload(line(3, "upstream 503", "db-1", 60)))
    assert result["alerts"] == 1
    (msg,) = slack.messages()
    assert msg["blocks"][1]["text"]["text"] == f"{TAG}: upstream 503"
    (note, _) = context_texts(msg)
    assert note == "preceded by 'pool nearly exhausted' at 2026-11-26T10:07:01.000Z (key db-1)"


# ---------------------------------------------------------------- per-rule counters
def test_per_rule_counters_in_the_ledger(aws, apply_rules, invoke, slack):
    """`result["rules"]` counts matched, transformed, dropped, alerted, suppressed and forwarded
    under each rule's id."""
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="app-logs", ShardCount=1)
    apply_rules(
        {
            "rules": [
                {
                    "id": "health",
                    "priority": 10,
                    "match": {"where": [{"field": "message", "contains": "/healthz"}]},
                    "actions": ["drop"],
                },
                {
                    "id": "ship",
                    "priority": 20,
                    "transform": {"set": {"shipped": True}},
                    "actions": [{"forward": {"to": "kinesis", "stream": "app-logs"}}],
                },
                {
                    "id": "page",
                    "priority": 30,
                    "match": {"where": [{"field": "level", "equals": "ERROR"}]},
                    "actions": [SLACK],
                },
                {
                    "id": "burst",
                    "priority": 40,
                    "match": {"where": [{"field": "level", "equals": "ERROR"}]},
                    "actions": [SLACK],
                    "threshold": {"count": 5, "window": "1m"},
                },
            ]
        }
    )
    result = invoke(payload(cw(1, "GET /healthz 200"), error(2), error(3), cw(4, "cart updated")))
    assert counters(result) == {
        "health": {"matched": 1, "dropped": 1},
        "ship": {"matched": 3, "transformed": 3, "forwarded": 3},
        "page": {"matched": 2, "alerted": 1},
        "burst": {"matched": 2, "suppressed": 2},
    }
    assert (result["received"], result["archived"], result["dropped"]) == (4, 3, 1)
    assert balanced(result)


# ---------------------------------------------------------------- redaction before actions
SECRETS = {
    "AKIAIOSFODNN7EXAMPLE": "aws_access_key",
    "hunter2": "password",
    "bob@example.com": "email",
    "4111 1111 1111 1111": "card",
}
LEAKY = (
    "login failed for bob@example.com password=hunter2 "
    "key AKIAIOSFODNN7EXAMPLE card 4111 1111 1111 1111"
)


def test_rule_redaction_happens_before_slack_and_sns(
    apply_rules, invoke, slack, sns_inbox, archive
):
    """A rule's redact transform cleans the event before its Slack and SNS actions see it."""
    apply_rules({"rules": [rule(transform={"redact": True}, actions=[SLACK, SNS])]})
    invoke(payload(cw(1, json.dumps({"level": "ERROR", "message": LEAKY, "pwd": "hunter2"}))))
    (msg,) = slack.messages()
    (note,) = sns_inbox()
    seen = json.dumps(msg) + note["Message"] + note["Subject"] + json.dumps(archive.lines())
    for secret, name in SECRETS.items():
        assert secret not in seen
        # The headline carries word joiners after formatting marks (`_` here); they do not show.
        assert f"[REDACTED:{name}]" in msg["blocks"][1]["text"]["text"].replace("\u2060", "")
    assert "[REDACTED:email]" in note["Message"]


def test_a_rule_redacts_for_the_actions_of_earlier_rules_too(apply_rules, invoke, slack):
    """Actions run after routing: a later rule's redaction covers an earlier rule's alert too."""
    apply_rules(
        {
            "rules": [
                {**rule(), "priority": 10},
                {"id": "scrub", "priority": 20, "transform": {"redact": {"patterns": ["email"]}}},
            ]
        }
    )
    invoke(payload(cw(1, json.dumps({"level": "ERROR", "message": "mail to bob@example.com"}))))
    (msg,) = slack.messages()
    assert "bob@example.com" not in json.dumps(msg)


def test_document_redaction_applies_before_any_rule(aws, runtime, invoke, slack, archive):
    """Document-level `redact` cleans every event before rules: a rule looking for the secret
    never matches, and the alert and archive hold the redacted text."""
    from chalicelib.rules.schema import load_document
    from chalicelib.rules.store import write_document

    doc = {
        "redact": {"patterns": ["email", "password"]},
        "rules": [
            rule(),
            {
                "id": "sees-secret",
                "match": {"where": [{"field": "message", "contains": "hunter2"}]},
                "actions": [SLACK],
            },
        ],
    }
    write_document(aws.dynamodb, aws.rules_table, load_document(doc))
    runtime.rules.invalidate()
    result = invoke(
        payload(cw(1, json.dumps({"level": "ERROR", "message": "bob@example.com pwd=hunter2"})))
    )
    assert "sees-secret" not in result["rules"]
    (msg,) = slack.messages()
    text = json.dumps(msg) + json.dumps(archive.lines())
    assert "hunter2" not in text and "bob@example.com" not in text
    assert msg["blocks"][1]["text"]["text"] == (f"{TAG}: [REDACTED:email] pwd=[REDACTED:password]")
