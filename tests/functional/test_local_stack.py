"""The local stack end to end: logs written to moto reach the handler, the archive and Slack."""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from sluice_cli import simulate
from sluice_cli.local import LocalStack
from sluice_cli.poller import MAX_BATCH_EVENTS, LambdaContext, LogsPoller
from sluice_cli.resources import bootstrap, read_token

pytestmark = pytest.mark.functional

RULES = {
    "rules": [
        {
            "id": "health-noise",
            "priority": 20,
            "match": {"tag": "e2e.**", "where": [{"field": "path", "equals": "/healthz"}]},
            "actions": ["drop"],
            "stop": True,
        },
        {
            "id": "computer-alerts",
            "priority": 100,
            "match": {"tag": "e2e.**", "where": [{"field": "message", "regex": "(?i)computer"}]},
            "actions": [
                {
                    "slack": {
                        "channel": "#ops",
                        "text": "{tag}: {message}",
                        "runbook": "https://wiki.example/runbooks/computer",
                    }
                }
            ],
        },
    ]
}
HOSTILE = "kiosk COMPUTER rebooted <!channel> <@U123> <http://evil|click> & more"
KEY = re.compile(
    r"archive/tag=(?P<tag>[^/]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    r"[0-9a-f-]{36}-\d+\.jsonl\.gz"
)


def shop_lines(n: int, healthz_every: int) -> list[str]:
    out = []
    for i in range(n):
        path = "/healthz" if i % healthz_every == 0 else f"/cart/{i}"
        out.append(
            json.dumps(
                {
                    # Near the clock: the archive partitions an event by its own time
                    # only within 14 days of its arrival.
                    "ts": simulate.iso(_recent_ms() + i),
                    "severity": "info",
                    "path": path,
                    "message": f"GET {path} 200",
                }
            )
        )
    return out


def test_logs_are_archived_once_alerted_escaped_and_balanced(
    stack: LocalStack,
    archived: Callable[[], dict[str, list[dict[str, Any]]]],
    stored_ids: Callable[[str], dict[str, str]],
) -> None:
    """Logs in two groups are archived exactly once, the alert arrives escaped, ledgers hold."""
    assert stack.slack is not None and stack.poller is not None
    stack.apply_rules(RULES)
    logs = stack.clients.get("logs")
    written = simulate.write_to_cloudwatch(logs, "/e2e/shop", "web-1", shop_lines(30, 10))
    written += simulate.write_to_cloudwatch(
        logs,
        "/e2e/billing",
        "worker-1",
        [
            json.dumps({"level": "info", "event": f"invoice {i} sent", "amount": i})
            for i in range(10)
        ],
    )
    written += simulate.write_to_cloudwatch(logs, "/e2e/shop", "kiosk-12", [HOSTILE])

    stack.poller.wait_delivered(written, timeout=10)
    [alert] = stack.slack.wait_for(1, timeout=5)

    ids = {**stored_ids("/e2e/shop"), **stored_ids("/e2e/billing")}
    assert len(ids) == written == 41
    healthz = {i for i, m in ids.items() if "/healthz" in m}
    objects = archived()
    assert objects and all(KEY.fullmatch(k) for k in objects), sorted(objects)
    for key, lines in objects.items():
        m = KEY.fullmatch(key)
        assert m is not None
        for line in lines:
            assert line["tag"] == m["tag"]
            assert line["time"].startswith(f"{m['dt']}T{m['hour']}:")
    archived_ids = Counter(line["id"] for lines in objects.values() for line in lines)
    assert set(archived_ids) == set(ids) - healthz
    assert set(archived_ids.values()) == {1}
    assert {line["tag"] for lines in objects.values() for line in lines} == {
        "e2e.shop",
        "e2e.billing",
    }

    blocks = json.dumps(alert["blocks"])
    headline = alert["blocks"][1]["text"]["text"]
    assert alert["channel"] == "#ops"
    assert "&lt;!channel&gt; &lt;@U123&gt; &lt;http://evil|click&gt; &amp; more" in headline
    for raw in ("<!channel>", "<@U123>", "<http://evil|click>"):
        assert raw not in blocks
    assert alert["params"]["link_names"] is False

    results = stack.poller.results()
    assert all(r["received"] == r["archived"] + r["dropped"] + r["dead_lettered"] for r in results)
    assert all(r["lost"] == 0 for r in results)
    totals = Counter(
        {k: sum(r[k] for r in results) for k in ("received", "archived", "dropped", "alerts")}
    )
    assert totals == Counter(received=41, archived=41 - len(healthz), dropped=3, alerts=1)


def test_slack_outage_dead_letters_the_alert_and_keeps_the_events(stack: LocalStack) -> None:
    """Slack 5xx past the retries sends the alert's events to the DLQ; they are still archived."""
    assert stack.slack is not None and stack.poller is not None and stack.resources is not None
    stack.apply_rules(RULES)
    stack.slack.fail_next(status=502, count=3)  # the first try and both retries

    written = simulate.write_to_cloudwatch(
        stack.clients.get("logs"), "/e2e/shop", "web-1", [HOSTILE]
    )
    stack.poller.wait_delivered(written, timeout=10)

    [result] = stack.poller.results()
    assert (
        result["archived"],
        result["dead_lettered"],
        result["actions_failed"],
        result["lost"],
    ) == (1, 0, 1, 0)
    sqs = stack.clients.get("sqs")
    [msg] = sqs.receive_message(QueueUrl=stack.resources.dlq_url, MaxNumberOfMessages=10)[
        "Messages"
    ]
    body = json.loads(msg["Body"])
    assert (body["stage"], body["action"], body["rule"], body["count"]) == (
        "action",
        "slack",
        "computer-alerts",
        1,
    )
    assert body["events"][0]["record"]["message"] == HOSTILE


def test_rate_limited_alert_arrives_after_retry_after(stack: LocalStack) -> None:
    """A 429 from Slack is retried by the runtime's client after Retry-After; one alert arrives."""
    assert stack.slack is not None and stack.poller is not None
    stack.apply_rules(RULES)
    stack.slack.fail_next(status=429, retry_after=0)

    simulate.write_to_cloudwatch(stack.clients.get("logs"), "/e2e/shop", "web-1", [HOSTILE])
    stack.poller.wait_delivered(1, timeout=10)

    assert len(stack.slack.messages()) == 1
    assert [s for _, s in stack.slack.requests()] == [429, 200]
    assert stack.poller.results()[0]["alerts"] == 1


def _recent_ms() -> int:
    """An hour ago: CloudWatch Logs (and moto) refuse events older than 14 days, so
    timestamps written to the local stack must follow the clock, not a fixed date."""
    return (int(time.time()) - 3_600) * 1_000


def test_subscription_payload_is_real_shaped_and_batched(stack: LocalStack) -> None:
    """Payloads are base64(gzip(JSON)) DATA_MESSAGEs with string ids, at most 1,000 events."""
    calls: list[tuple[dict[str, Any], LambdaContext]] = []

    def capture(ev: dict[str, Any], ctx: LambdaContext) -> dict[str, Any]:
        calls.append((ev, ctx))
        return {}

    poller = LogsPoller(stack.clients.get("logs"), capture)
    simulate.write_to_cloudwatch(
        stack.clients.get("logs"),
        "/app/api",
        "s-1",
        [(_recent_ms() + i, f"line {i}") for i in range(2_500)],
    )

    assert poller.poll() == 2_500

    docs = [json.loads(gzip.decompress(base64.b64decode(ev["awslogs"]["data"]))) for ev, _ in calls]
    assert [len(d["logEvents"]) for d in docs] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 500]
    doc = docs[0]
    assert {
        k: doc[k] for k in ("messageType", "owner", "logGroup", "logStream", "subscriptionFilters")
    } == {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/app/api",
        "logStream": "s-1",
        "subscriptionFilters": ["sluice"],
    }
    first = doc["logEvents"][0]
    assert set(first) == {"id", "timestamp", "message"} and isinstance(first["id"], str)
    messages = [e["message"] for d in docs for e in d["logEvents"]]
    assert messages == [f"line {i}" for i in range(2_500)]
    _, ctx = calls[0]
    assert ctx.function_name == "cloudwatch_logs"
    assert (
        ctx.invoked_function_arn
        == "arn:aws:lambda:us-east-1:123456789012:function:sluice-dev-cloudwatch_logs"
    )
    assert 0 < ctx.get_remaining_time_in_millis() <= 60_000


def test_poller_neither_loses_nor_repeats_events_written_while_it_polls(stack: LocalStack) -> None:
    """Writers racing two polling threads, with late timestamps, get every event delivered once."""
    delivered: list[str] = []
    lock = threading.Lock()

    def capture(ev: dict[str, Any], ctx: LambdaContext) -> dict[str, Any]:
        doc = json.loads(gzip.decompress(base64.b64decode(ev["awslogs"]["data"])))
        with lock:
            delivered.extend(e["id"] for e in doc["logEvents"])
        return {}

    logs = stack.clients.get("logs")
    poller = LogsPoller(logs, capture, interval_s=0.001).start()
    base = _recent_ms()

    def write(stream: str) -> None:
        for i in range(40):
            # every other batch is older than the previous one: late arrivals
            ts = base + (i if i % 2 else 1_000 - i) * 10
            simulate.write_to_cloudwatch(
                logs, "/app/race", stream, [(ts, f"{stream} {i}.{j}") for j in range(5)]
            )

    writers = [threading.Thread(target=write, args=(f"s-{k}",)) for k in range(3)]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        poller.poll()  # a second poller thread: the lock must keep deliveries single
    for w in writers:
        w.join()
    poller.poll()
    poller.stop()

    stored = {
        e["eventId"]
        for p in logs.get_paginator("filter_log_events").paginate(logGroupName="/app/race")
        for e in p["events"]
    }
    assert len(stored) == 3 * 40 * 5
    assert Counter(delivered) == Counter(stored)


def test_poller_skips_sluice_own_log_groups(stack: LocalStack) -> None:
    """Sluice's own function logs (/aws/lambda/sluice-*) are never fed back to it."""
    groups: list[str] = []

    def capture(ev: dict[str, Any], ctx: LambdaContext) -> dict[str, Any]:
        groups.append(
            json.loads(gzip.decompress(base64.b64decode(ev["awslogs"]["data"])))["logGroup"]
        )
        return {}

    logs = stack.clients.get("logs")
    simulate.write_to_cloudwatch(logs, "/aws/lambda/sluice-dev-cloudwatch_logs", "x", ["ledger"])
    simulate.write_to_cloudwatch(logs, "/aws/lambda/checkout-api", "x", ["order placed"])

    assert LogsPoller(logs, capture).poll() == 1
    assert groups == ["/aws/lambda/checkout-api"]


def test_failing_invocation_is_retried_with_the_same_request_id(stack: LocalStack) -> None:
    """A handler raising twice is called a third time with the same request id and succeeds."""
    contexts: list[LambdaContext] = []

    def flaky(ev: dict[str, Any], ctx: LambdaContext) -> dict[str, Any]:
        contexts.append(ctx)
        if len(contexts) < 3:
            raise ConnectionError("moto restarting")
        return {"received": 1}

    logs = stack.clients.get("logs")
    simulate.write_to_cloudwatch(logs, "/app/flaky", "x", ["one"])
    poller = LogsPoller(logs, flaky, retry_pause_s=0.01)

    assert poller.poll() == 1
    assert len({c.aws_request_id for c in contexts}) == 1 and len(contexts) == 3
    assert [o.result for o in poller.outcomes] == [{"received": 1}]
    assert poller.poll() == 0  # delivered: not again


def test_bootstrap_is_idempotent(stack: LocalStack) -> None:
    """Bootstrapping an existing stack creates nothing, keeps the token and returns the same env."""
    assert stack.resources is not None
    token = read_token(stack.clients, stack.names)

    again = bootstrap(stack.clients, stack.names, slack_api_url=stack.resources.slack_api_url)

    assert again.created == []
    assert len(again.existing) == 4
    assert again.env == stack.resources.env
    assert read_token(stack.clients, stack.names) == token
    ttl = stack.clients.get("dynamodb").describe_time_to_live(TableName=stack.names.state_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_rules_applied_to_the_local_stack_are_a_version_with_every_section(
    stack: LocalStack, archived: Callable[[], dict[str, list[dict[str, Any]]]]
) -> None:
    """`LocalStack.apply_rules` (what `sluice demo` uses) applies the whole document, `redact`
    included, as a version: every archive line names it."""
    assert stack.poller is not None
    doc = {**RULES, "redact": {"patterns": ["email"]}}
    first = stack.apply_rules(doc)
    second = stack.apply_rules(doc)
    assert (first.version, second.version) == (1, 2)
    logs = stack.clients.get("logs")
    lines = [*shop_lines(5, 10), json.dumps({"message": "mail bob@example.com about it"})]
    written = simulate.write_to_cloudwatch(logs, "/e2e/shop", "web-1", lines)
    stack.poller.wait_delivered(written, timeout=10)
    archive = [line for lines in archived().values() for line in lines]
    assert len(archive) == written - 1  # one health check dropped
    assert {line.get("rules_version") for line in archive} == {"2"}
    assert "bob@example.com" not in json.dumps(archive)
