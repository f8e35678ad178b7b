"""`sluice subscribe|unsubscribe|subscriptions` against the local stack, with one stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sluice_cli.local import LocalStack

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
CREATED = "/aws/lambda/checkout-api"  # events/log_group_created.json's group


def sluice(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    code = "from sluice_cli.main import main; main()"
    env = {"PATH": "/usr/bin:/bin", **stack.env, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def filters(stack: LocalStack, group: str) -> list[tuple[str, str]]:
    logs = stack.clients.get("logs")
    found = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    return [(f["filterName"], f["destinationArn"]) for f in found]


def test_subscribe_list_and_unsubscribe_on_the_local_stack(stack: LocalStack) -> None:
    """The local stack has stand-ins for Sluice's functions, so subscribe, subscriptions and
    unsubscribe work there as on a stage, with the stack's stage (sluice-dev)."""
    assert stack.stand_ins_ready.wait(60) and stack.stand_ins_error is None
    logs = stack.clients.get("logs")
    for g in ("/app/web", "/app/worker"):
        logs.create_log_group(logGroupName=g)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-dev-cloudwatch_logs"

    sub = sluice(stack, "subscribe", "--pattern", "/app/**", "--json")
    assert sub.returncode == 0, sub.stderr
    assert {(d["log_group"], d["status"]) for d in map(json.loads, sub.stdout.splitlines())} == {
        ("/app/web", "subscribed"),
        ("/app/worker", "subscribed"),
    }
    assert filters(stack, "/app/web") == [("sluice-dev", arn)]

    cov = sluice(stack, "subscriptions", "--pattern", "/app/**", "--json")
    assert cov.returncode == 0, cov.stderr
    assert {json.loads(x)["status"] for x in cov.stdout.splitlines()} == {"subscribed"}

    unsub = sluice(stack, "unsubscribe", "--pattern", "/app/web", "--json")
    assert unsub.returncode == 0, unsub.stderr
    assert filters(stack, "/app/web") == []
    assert filters(stack, "/app/worker") == [("sluice-dev", arn)]


def test_invoke_and_subscribe_agree_on_the_stage(stack: LocalStack) -> None:
    """A group subscribed by `sluice invoke log_group_created` (the saved patterns) and checked
    by `sluice subscribe` ends with one filter, sluice-dev: never sluice-dev and sluice-local."""
    assert stack.stand_ins_ready.wait(60) and stack.stand_ins_error is None
    saved = sluice(stack, "subscribe", "--pattern", "/aws/lambda/checkout-*", "--save")
    assert saved.returncode == 0, saved.stderr
    stack.clients.get("logs").create_log_group(logGroupName=CREATED)

    created = sluice(
        stack, "invoke", "log_group_created", "--event", "events/log_group_created.json"
    )
    again = sluice(stack, "subscribe", "--pattern", "/aws/lambda/checkout-*", "--json")

    assert created.returncode == 0, created.stderr
    assert again.returncode == 0, again.stderr
    assert [json.loads(x)["status"] for x in again.stdout.splitlines()] == ["unchanged"]
    assert [name for name, _ in filters(stack, CREATED)] == ["sluice-dev"]
