"""The CLI for scripts and people: the region `sluice invoke` runs in, stdout that holds only
the result, `--json` on every command that lists or reports, and help that renders cleanly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from chalicelib import handlers
from chalicelib.invocation import Invocation

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def cli() -> click.Group:
    from sluice_cli.main import _register, cli

    _register()
    return cli


def run(*args: str, **kw: Any) -> Any:
    return CliRunner().invoke(cli(), list(args), catch_exceptions=False, **kw)


# ---------------------------------------------------------------- invoke's region
@pytest.mark.parametrize(
    ("env", "region"),
    [
        pytest.param({"AWS_REGION": "eu-west-2"}, "eu-west-2", id="AWS_REGION"),
        pytest.param(
            {"AWS_REGION": None, "AWS_DEFAULT_REGION": "ap-south-1"},
            "ap-south-1",
            id="AWS_DEFAULT_REGION only",
        ),
        pytest.param(
            {"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "us-west-2"},
            "eu-central-1",
            id="AWS_REGION wins over AWS_DEFAULT_REGION",
        ),
    ],
)
def test_invoke_runs_in_the_configured_region(
    env: dict[str, str | None], region: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The context `sluice invoke` hands the handler names the configured region (so local
    Slack links point there), never a hard-coded us-east-1."""
    for k, v in env.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    seen: list[Invocation] = []

    def fake(event: Any, context: Any, rt: Any = None) -> dict[str, Any]:
        seen.append(Invocation.from_context(context, "xx-nowhere-1"))
        return {"ok": True}

    monkeypatch.setattr(handlers, "handle_absence_check", fake)

    result = run("invoke", "absence_check", "--event", str(EVENTS / "absence_check.json"))

    assert result.exit_code == 0, result.output
    assert [i.region for i in seen] == [region]
    assert seen[0].account == "123456789012"


@pytest.mark.parametrize(
    ("stage", "name"),
    [
        pytest.param(None, "sluice-dev-cloudwatch_logs", id="default stage dev"),
        pytest.param("prod", "sluice-prod-cloudwatch_logs", id="SLUICE_STAGE"),
    ],
)
def test_invoke_names_the_function_by_stage(
    stage: str | None, name: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function ARN follows SLUICE_STAGE, as `subscribe` and `local up` do, so a group
    never gets filters for two stages."""
    if stage:
        monkeypatch.setenv("SLUICE_STAGE", stage)
    arns: list[str] = []

    def fake(event: Any, context: Any, rt: Any = None) -> dict[str, Any]:
        arns.append(context.invoked_function_arn)
        return {}

    monkeypatch.setattr(handlers, "handle_cloudwatch_logs", fake)

    run("invoke", "cloudwatch_logs", "--event", str(EVENTS / "cloudwatch_logs.json"))

    assert arns == [f"arn:aws:lambda:us-east-1:123456789012:function:{name}"]


# ---------------------------------------------------------------- stdout is the result
def test_invoke_stdout_is_only_the_result(aws: Any) -> None:
    """`sluice invoke … | jq` works: stdout is one JSON document; the ledger line and the
    metrics go to stderr."""
    result = run("invoke", "cloudwatch_logs", "--event", str(EVENTS / "cloudwatch_logs.json"))

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["received"] == doc["archived"] > 0
    assert '"message":"ledger"' in result.stderr.replace(" ", "")
    assert "_aws" in result.stderr


def test_stdout_is_restored_after_a_command(aws: Any) -> None:
    """After a command, stdout and the functions' logger are what they were before (in Lambda
    the functions log to stdout)."""
    import sys

    from chalicelib.observe import logger

    before, stream = sys.stdout, logger().registered_handler.stream
    run("invoke", "cloudwatch_logs", "--json", "--event", str(EVENTS / "cloudwatch_logs.json"))

    assert sys.stdout is before
    assert logger().registered_handler.stream is stream


# ---------------------------------------------------------------- --json
RULES = {
    "rules": [
        {"id": "keep", "priority": 5, "match": {"tag": "app.**"}, "actions": ["archive"]},
        {
            "id": "noise",
            "match": {"tag": "**", "where": [{"field": "path", "equals": "/hz"}]},
            "actions": ["drop"],
            "stop": True,
        },
    ]
}


def _dead_letter(aws: Any) -> None:
    aws.sqs.send_message(
        QueueUrl=aws.dlq_url,
        MessageBody=json.dumps(
            {
                "stage": "action",
                "function": "cloudwatch_logs",
                "rule": "keep",
                "action": "slack",
                "count": 2,
                "reason": "slack: rate limited",
            }
        ),
    )


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        pytest.param(
            ["rules", "list", "--json"],
            [
                {"id": "keep", "priority": 5, "actions": ["archive"], "stop": False},
                {"id": "noise", "actions": ["drop"], "stop": True},
            ],
            id="rules list",
        ),
        pytest.param(
            ["rules", "versions", "--json"],
            [{"version": 1, "rules": 2, "current": True}],
            id="rules versions",
        ),
        pytest.param(
            ["dlq", "list", "--json"],
            [
                {
                    "stage": "action",
                    "function": "cloudwatch_logs",
                    "target": "keep/slack",
                    "events": 2,
                    "reason": "slack: rate limited",
                }
            ],
            id="dlq list",
        ),
        pytest.param(
            ["subscriptions", "--json", "--pattern", "/aws/lambda/**"],
            [{"log_group": "/aws/lambda/checkout", "status": "not-subscribed"}],
            id="subscriptions",
        ),
        pytest.param(
            [
                "invoke",
                "cloudwatch_logs",
                "--json",
                "--event",
                str(EVENTS / "cloudwatch_logs.json"),
            ],
            [{"dead_lettered": 0, "dropped": 0}],
            id="invoke",
        ),
    ],
)
def test_json_output_is_one_object_per_line(
    args: list[str], expect: list[dict[str, Any]], aws: Any
) -> None:
    """With --json, stdout is JSON lines only (nothing else), one object per item, holding
    the fields a script needs."""
    from chalicelib.rules.schema import load_document
    from chalicelib.rules.store import write_document

    write_document(aws.dynamodb, aws.rules_table, load_document(RULES), source="test")
    _dead_letter(aws)
    import boto3

    boto3.client("logs", region_name="us-east-1").create_log_group(
        logGroupName="/aws/lambda/checkout"
    )

    result = run(*args)

    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(expect)
    for row, want in zip(rows, expect, strict=True):
        assert {k: row.get(k) for k in want} == want


# ---------------------------------------------------------------- help
def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*path, name)))
        else:
            out.append((*path, name))
    return out


def test_every_help_renders_cleanly() -> None:
    """Every command's --help exits 0 and shows no stray `\\b` markers (literal or raw) and
    no lines garbled by rewrapping an example block."""
    group = cli()
    paths = _commands(group)
    assert ("replay",) in paths and ("rules", "export") in paths

    for path in paths:
        result = CliRunner().invoke(group, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        assert "\b" not in result.output, path
        assert "\\b" not in result.output, path
        assert "Usage: " in result.output, path


def test_replay_help_keeps_its_examples_one_per_line() -> None:
    """`sluice replay --help` shows each example command on its own line."""
    result = CliRunner().invoke(cli(), ["replay", "--help"], terminal_width=80)

    lines = [line.strip() for line in result.output.splitlines()]
    assert "sluice replay incident.jsonl.gz --speed 10 --target kinesis" in lines
    assert 'sluice replay --from-archive --tag "app.**" --since 6h' in lines
