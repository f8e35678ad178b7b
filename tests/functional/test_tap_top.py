"""`sluice tap` and `sluice top` on the local stack while events flow, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chalicelib.tap import KEY, MARKER
from sluice_cli import payloads, simulate
from sluice_cli.local import LocalStack
from sluice_cli.poller import LambdaContext
from sluice_cli.tap import switch_on

pytestmark = pytest.mark.functional

RULES = {
    "rules": [
        {
            "id": "health-noise",
            "priority": 20,
            "match": {"tag": "tap.**", "where": [{"field": "path", "equals": "/healthz"}]},
            "actions": ["drop"],
            "stop": True,
        },
        {
            "id": "computer-alerts",
            "priority": 100,
            "match": {"tag": "tap.**", "where": [{"field": "message", "regex": "[Cc]omputer"}]},
            "actions": [{"slack": {"channel": "#ops", "text": "{tag}: {message}"}}],
        },
    ]
}


def lines(i: int) -> list[str]:
    """One health check, one alert and one plain line (timed by CloudWatch: now)."""
    return [
        json.dumps({"path": "/healthz", "message": f"GET /healthz {i}"}),
        json.dumps({"path": "/cart", "message": f"my computer {i} is on fire"}),
        json.dumps({"path": "/cart", "message": f"GET /cart {i}"}),
    ]


@contextmanager
def flowing(stack: LocalStack, group: str) -> Iterator[None]:
    """Write a few lines to `group` every 0.2 s until the block ends."""
    stop = threading.Event()
    logs = stack.clients.get("logs")

    def run() -> None:
        i = 0
        while not stop.is_set():
            simulate.write_to_cloudwatch(logs, group, "web-1", lines(i))
            i += 1
            stop.wait(0.2)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=10)


def sluice(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    code = "from sluice_cli.main import main; main()"
    env = {"PATH": "/usr/bin:/bin", **stack.env, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "check"),
    [
        pytest.param(
            ["--tag", "tap.**"],
            lambda d: d["tag"] == "tap.shop",
            id="by tag",
        ),
        pytest.param(
            ["--rule", "health-noise"],
            lambda d: (
                d["rules"] == ["health-noise"]
                and d["dropped_by"] == "health-noise"
                and not d["archived"]
                and d["actions"] == []
            ),
            id="drops of one rule",
        ),
        pytest.param(
            ["--rule", "computer-alerts"],
            lambda d: (
                "computer-alerts" in d["rules"]
                and d["actions"] == ["computer-alerts:slack"]
                and d["archived"]
                and "computer" in d["message"]
            ),
            id="matches and actions of one rule",
        ),
    ],
)
def test_tap_shows_decisions_while_events_flow(
    args: list[str], check: Any, stack: LocalStack
) -> None:
    """`sluice tap` prints decision lines (tag, rules matched, actions, drops) read back from
    the functions' log groups, only those its filters select, then switches itself off."""
    stack.apply_rules(RULES)
    with flowing(stack, "/tap/shop"):
        proc = sluice(stack, "tap", *args, "--count", "4", "--json", "--interval", "0.2")

    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(docs) == 4
    assert len({d["tap"] for d in docs}) == 1 and docs[0]["tap"].startswith("tap")
    assert all(d["function"] == "cloudwatch_logs" for d in docs)
    assert all(check(d) for d in docs), docs
    ddb = stack.clients.get("dynamodb")
    assert "Item" not in ddb.get_item(TableName=stack.names.state_table, Key=KEY)


def _as_subscription(group: str, events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    return "cloudwatch_logs", payloads.subscription_event(group, "local-tap", events)


def _as_kinesis_fan_in(group: str, events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    doc = payloads.log_document(group, "local-tap", events)
    data = payloads.gzip_bytes(json.dumps(doc).encode())
    record = payloads.kinesis_record(
        data, sequence=payloads.sample_sequence(1), partition_key=group, arrival=time.time()
    )
    return "kinesis_records", {"Records": [record]}


@pytest.mark.parametrize(
    "deliver",
    [
        pytest.param(_as_subscription, id="subscription of the function's group"),
        pytest.param(_as_kinesis_fan_in, id="account-wide Kinesis fan-in"),
    ],
)
def test_tap_lines_are_never_ingested_again(deliver: Any, stack: LocalStack, archived: Any) -> None:
    """Tap lines are written to the function's own log group; delivered back to Sluice (a
    subscription, or an account-wide fan-in) the loop guard drops every one, while a tap is
    still on: none is archived, and none produces another tap line."""
    stack.apply_rules(RULES)
    with flowing(stack, "/tap/shop"):
        proc = sluice(stack, "tap", "--count", "3", "--json", "--interval", "0.2")
    assert proc.returncode == 0, proc.stderr
    stack.poll_all()  # the shop's last lines, delivered before the tap below is on
    group = "/aws/lambda/sluice-dev-cloudwatch_logs"
    logs = stack.clients.get("logs")
    stored = logs.filter_log_events(logGroupName=group)["events"]
    assert stored and all(e["message"].startswith(MARKER) for e in stored)
    ddb = stack.clients.get("dynamodb")
    switch_on(ddb, stack.names.state_table, "tapagain", None, None, 50)  # a tap stays on
    stack.runtime._tap_flag = None  # read it now, not after the rules TTL
    events = [
        {"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]} for e in stored
    ]
    function, payload = deliver(group, events)

    ctx = LambdaContext.of(function, 60_000)
    invoke = getattr(stack, f"invoke_{function}")
    result = invoke(payload, ctx)

    ledger = stack._tap.take() or result
    assert ledger["received"] == ledger["dropped"] == len(stored), ledger
    assert ledger["archived"] == 0
    after = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert not [m for m in after if "tapagain" in m and MARKER.strip() in m.split('"message"')[1]]
    archived_messages = [
        str(line["record"].get("message", "")) for ls in archived().values() for line in ls
    ]
    assert not any(MARKER.strip() in m for m in archived_messages)


def test_top_reports_rates_per_function_and_rule(stack: LocalStack) -> None:
    """`sluice top --once --json` gives, per function and per rule, totals and rates over the
    window, matching what the stack's functions counted."""
    assert stack.poller is not None and stack.metrics is not None
    stack.apply_rules(RULES)
    logs = stack.clients.get("logs")
    written = 0
    for i in range(5):
        written += simulate.write_to_cloudwatch(logs, "/tap/shop", "web-1", lines(i))
    stack.poller.wait_received(written, timeout=30)
    stack.metrics.flush()

    proc = sluice(stack, "top", "--once", "--json", "--window", "5m")

    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    fn = snap["functions"]["cloudwatch_logs"]
    assert fn["received"]["total"] == written == 15
    assert fn["dropped"]["total"] == 5 and fn["archived"]["total"] == 10
    assert fn["received"]["per_s"] == round(15 / 300, 3)
    assert set(snap["rules"]) == {"health-noise", "computer-alerts"}, snap
    assert snap["rules"]["health-noise"]["dropped"]["total"] == 5
    assert snap["rules"]["computer-alerts"]["matched"]["total"] == 5
    assert snap["stage"] == "dev" and snap["window_s"] == 300


def test_top_renders_a_table_once(stack: LocalStack) -> None:
    """Without --json, `--once` prints the functions and rules tables."""
    assert stack.poller is not None and stack.metrics is not None
    stack.apply_rules(RULES)
    written = simulate.write_to_cloudwatch(stack.clients.get("logs"), "/tap/shop", "w", lines(0))
    stack.poller.wait_received(written, timeout=30)
    stack.metrics.flush()

    proc = sluice(stack, "top", "--once")

    assert proc.returncode == 0, proc.stderr
    assert "cloudwatch_logs" in proc.stdout and "health-noise" in proc.stdout
