"""Absence rules: heartbeats recorded by the pipeline, silences alerted by `absence_check`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.alerting.absence import record_seen, silence_event, silent_tags
from chalicelib.alerting.state import AlertState
from chalicelib.handlers import handle_absence_check
from sluice_cli.payloads import subscription_event
from sluice_cli.slack_server import SlackServer

from .factories import T0, log_event

MINUTE = 60_000
WINDOW_S = 300  # 5m
CHECKOUT = "aws.lambda.checkout-api"
BILLING = "aws.lambda.billing"
RULE = {
    "id": "heartbeat",
    "match": {
        "tag": "aws.lambda.**",
        "where": [{"field": "message", "contains": "heartbeat"}],
    },
    "absence": {"window": "5m", "tags": [BILLING]},
    "actions": [{"slack": {"channel": "#oncall", "text": "{tag}: {message}"}}],
}


@pytest.fixture
def state(aws: Any) -> AlertState:
    return AlertState(aws.dynamodb, aws.state_table)


def seen(aws: Any, rule: str, tag: str) -> dict[str, Any]:
    return aws.dynamodb.get_item(
        TableName=aws.state_table,
        Key={"pk": {"S": f"seen#{rule}"}, "sk": {"S": tag}},
        ConsistentRead=True,
    ).get("Item", {})


def beat(tag: str, minutes: float, i: int = 0) -> Any:
    return log_event("heartbeat", tag=tag, time=T0 + int(minutes * MINUTE), id=f"hb-{tag}-{i}")


# ---------------------------------------------------------------- record_seen
def test_record_seen_only_raises_last_seen(aws, state):
    """A late, older heartbeat never moves last_seen back; a newer one moves it forward."""
    record_seen(state, "heartbeat", [beat(CHECKOUT, 2)])
    record_seen(state, "heartbeat", [beat(CHECKOUT, 1)])
    assert seen(aws, "heartbeat", CHECKOUT)["last_seen"] == {"N": str(T0 + 2 * MINUTE)}
    record_seen(state, "heartbeat", [beat(CHECKOUT, 3)])
    assert seen(aws, "heartbeat", CHECKOUT)["last_seen"] == {"N": str(T0 + 3 * MINUTE)}


def test_record_seen_keeps_the_latest_per_tag_of_a_batch(aws, state):
    """One batch with several tags records each tag's latest event."""
    record_seen(
        state,
        "heartbeat",
        [beat(CHECKOUT, 4, 1), beat(BILLING, 1, 2), beat(CHECKOUT, 2, 3), beat(BILLING, 3, 4)],
    )
    assert seen(aws, "heartbeat", CHECKOUT)["last_seen"] == {"N": str(T0 + 4 * MINUTE)}
    assert seen(aws, "heartbeat", BILLING)["last_seen"] == {"N": str(T0 + 3 * MINUTE)}


# ---------------------------------------------------------------- silent_tags
def check(state: AlertState, minutes: float, expected: list[str] | None = None) -> list[Any]:
    return silent_tags(state, "heartbeat", WINDOW_S, expected or [], T0 + int(minutes * MINUTE))


def test_a_tag_is_silent_only_after_the_window(state):
    """Within the window nothing is reported; past it the tag is, with its last sighting."""
    record_seen(state, "heartbeat", [beat(CHECKOUT, 0)])
    assert check(state, 5) == []
    assert check(state, 5.01) == [(CHECKOUT, T0)]


def test_one_alert_per_silence_and_again_after_the_tag_speaks(state):
    """A silence is reported once; after the tag speaks and falls silent anew, once more."""
    record_seen(state, "heartbeat", [beat(CHECKOUT, 0)])
    assert check(state, 6) == [(CHECKOUT, T0)]
    assert check(state, 7) == []
    assert check(state, 60) == []
    record_seen(state, "heartbeat", [beat(CHECKOUT, 61)])
    assert check(state, 62) == []
    assert check(state, 67) == [(CHECKOUT, T0 + 61 * MINUTE)]


def test_expected_tags_never_seen_are_watched_from_the_first_check(aws, state):
    """A listed tag that never logged starts its window at the first check, then alerts as
    never seen."""
    assert check(state, 0, [BILLING]) == []
    assert seen(aws, "heartbeat", BILLING)["last_seen"] == {"N": str(T0)}
    assert check(state, 4, [BILLING]) == []
    assert check(state, 5.5, [BILLING]) == [(BILLING, 0)]  # 0: never logged
    assert check(state, 20, [BILLING]) == []


def test_a_listed_tag_that_logs_is_no_longer_unseen(state):
    """Once a watched tag logs, its silence reports the real last sighting."""
    check(state, 0, [BILLING])
    record_seen(state, "heartbeat", [beat(BILLING, 1)])
    assert check(state, 6.5, [BILLING]) == [(BILLING, T0 + MINUTE)]


def test_rules_keep_their_own_sightings(state):
    """A heartbeat recorded for one absence rule does not feed another."""
    record_seen(state, "other-rule", [beat(CHECKOUT, 10)])
    record_seen(state, "heartbeat", [beat(CHECKOUT, 0)])
    assert check(state, 6) == [(CHECKOUT, T0)]


def test_a_heartbeat_during_the_check_is_not_reported(aws, state, monkeypatch):
    """If the tag speaks between the check's read and its claim, no silence is reported."""
    record_seen(state, "heartbeat", [beat(CHECKOUT, 0)])
    query = aws.dynamodb.query

    def query_then_heartbeat(**kw: Any) -> Any:
        page = query(**kw)
        record_seen(state, "heartbeat", [beat(CHECKOUT, 5.5)])
        return page

    monkeypatch.setattr(aws.dynamodb, "query", query_then_heartbeat)
    assert check(state, 6) == []


def test_concurrent_checks_report_a_silence_once(aws, state):
    """Two scheduled runs at once (an overlap): the silence is claimed by one of them."""
    from moto.dynamodb.models import DynamoDBBackend

    record_seen(state, "heartbeat", [beat(CHECKOUT, 0)])
    lock = threading.RLock()
    original = DynamoDBBackend.update_item

    def update_item(self: Any, *a: Any, **kw: Any) -> Any:
        with lock:  # DynamoDB applies one item's writes atomically; moto needs the lock
            return original(self, *a, **kw)

    barrier = threading.Barrier(4)
    results: list[Any] = []

    def run() -> None:
        barrier.wait(timeout=10)
        results.append(check(state, 6))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DynamoDBBackend, "update_item", update_item)
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert sorted(results, key=len) == [[], [], [], [(CHECKOUT, T0)]]


def test_silence_event_reads_well():
    """The synthetic event names the tag, rule, window and last sighting, with a stable id."""
    ev = silence_event("heartbeat", CHECKOUT, T0, "5m", T0 + 6 * MINUTE)
    assert ev.tag == CHECKOUT
    assert ev.record["message"] == (
        f"no events from {CHECKOUT} matching rule heartbeat for over 5m "
        "(last seen 2026-11-26T10:07:01.000Z)"
    )
    assert ev.record["level"] == "ERROR"
    assert ev.id == f"absence:heartbeat:{CHECKOUT}:{T0}"


# ---------------------------------------------------------------- through the handlers
class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def slack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    secret = aws.secretsmanager.get_secret_value(SecretId="sluice/slack-bot-token")
    with SlackServer(json.loads(secret["SecretString"])["token"]) as server:
        monkeypatch.setenv("SLUICE_SLACK_API_URL", server.url)
        yield server


@pytest.fixture
def runtime(aws: Any, slack: SlackServer) -> Any:
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    return Runtime(Settings.from_env(), Clients())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The scheduled check's clock (`time.time`, read inside `handle_absence_check`)."""
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


@pytest.fixture
def absence_check(runtime: Any, lambda_context: Any, clock: Clock) -> Any:
    def run(minutes: float) -> dict[str, Any]:
        clock.ms = T0 + int(minutes * MINUTE)
        return handle_absence_check({}, lambda_context, runtime)

    return run


def heartbeat_payload(minutes: float, i: int) -> dict[str, Any]:
    return subscription_event(
        "/aws/lambda/checkout-api",
        "2026/11/26/[$LATEST]abc",
        [{"id": f"hb{i}", "timestamp": T0 + int(minutes * MINUTE), "message": "heartbeat ok"}],
    )


def headlines(slack: SlackServer) -> list[str]:
    return [m["blocks"][1]["text"]["text"] for m in slack.messages()]


def test_heartbeats_are_recorded_not_alerted(apply_rules, invoke, slack, aws):
    """An absence rule's matches only record the tag's sighting: no alert, no action."""
    apply_rules({"rules": [RULE]})
    result = invoke(heartbeat_payload(0, 1))
    assert result["alerts"] == 0
    assert {k: v for k, v in result["rules"]["heartbeat"].items() if v} == {"matched": 1}
    assert slack.messages() == []
    assert seen(aws, "heartbeat", CHECKOUT)["last_seen"] == {"N": str(T0)}


def test_absence_check_alerts_once_per_silence(apply_rules, invoke, absence_check, slack):
    """The scheduled check alerts for a silent tag once, not while it speaks, and again after
    it speaks and falls silent anew; a listed tag never seen alerts a window after the first
    check."""
    apply_rules({"rules": [RULE]})
    invoke(heartbeat_payload(0, 1))

    first = absence_check(4)  # checkout spoke 4 min ago; billing starts being watched
    assert (first["alerts"], first["silent"]) == (0, [])
    second = absence_check(5.5)
    assert second["silent"] == [{"rule": "heartbeat", "tag": CHECKOUT}]
    assert second["alerts"] == 1
    assert second["rules"]["heartbeat"]["alerted"] == 1
    assert headlines(slack) == [
        f"{CHECKOUT}: no events from {CHECKOUT} matching rule heartbeat for over 5m "
        "(last seen 2026-11-26T10:07:01.000Z)"
    ]
    assert absence_check(7)["alerts"] == 0  # still the same silence
    assert absence_check(9.5)["silent"] == [{"rule": "heartbeat", "tag": BILLING}]
    assert headlines(slack)[-1].endswith("for over 5m (last seen never)")
    assert absence_check(30)["alerts"] == 0

    invoke(heartbeat_payload(31, 2))  # checkout speaks again
    assert absence_check(33)["alerts"] == 0
    again = absence_check(36.5)
    assert again["silent"] == [{"rule": "heartbeat", "tag": CHECKOUT}]
    assert len(slack.messages()) == 3
    assert headlines(slack)[-1].endswith("(last seen 2026-11-26T10:38:01.000Z)")


def test_absence_alert_that_fails_is_dead_lettered(apply_rules, invoke, absence_check, slack, dlq):
    """A silence alert Slack refuses goes to the DLQ with its event; it is not repeated."""
    apply_rules({"rules": [RULE]})
    invoke(heartbeat_payload(0, 1))
    slack.fail_next(status=400)
    result = absence_check(6)
    assert (result["alerts"], result["actions_failed"]) == (0, 1)
    (msg,) = dlq.messages()
    assert (msg["stage"], msg["action"], msg["rule"]) == ("action", "slack", "heartbeat")
    assert msg["events"][0]["record"]["absence"]["window"] == "5m"
    assert absence_check(7)["actions_failed"] == 0


def test_absence_check_without_absence_rules_does_nothing(apply_rules, absence_check, slack):
    """With only ordinary rules the check reads nothing and sends nothing."""
    apply_rules({"rules": [{"id": "plain", "actions": ["drop"]}]})
    result = absence_check(100)
    assert (result["alerts"], result["silent"]) == (0, [])
    assert slack.messages() == []


def test_absence_alerts_pass_the_rules_throttle_like_any_alert(
    apply_rules, invoke, absence_check, slack
):
    """Silence alerts go through the common delivery path: the rule's throttle (one alert an
    hour) lets the first silent tag's alert out and counts the second as suppressed."""
    rule = {**RULE, "throttle": {"window": "1h", "max": 1}}
    apply_rules({"rules": [rule]})
    invoke(heartbeat_payload(0, 1))
    absence_check(1)  # billing (never seen) is watched from now on
    result = absence_check(7)  # checkout silent since 0, billing since 1
    assert len(result["silent"]) == 2
    assert (result["alerts"], result["rules"]["heartbeat"]["suppressed"]) == (1, 1)
    assert len(slack.messages()) == 1
