"""Slack alerts end to end: the cloudwatch_logs handler, moto, and the real slack_sdk client
against the local Slack Web API endpoint (escaping, rate limits, outages, `sluice rules test`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.actions.slack_client import connection
from sluice_cli.payloads import subscription_event
from sluice_cli.rules import rules as rules_cli
from sluice_cli.slack_server import SlackServer

pytestmark = pytest.mark.functional

T0 = 1795687621000  # 2026-11-26T10:07:01Z, the sample payloads' time
GROUP = "/aws/lambda/kiosk"
TAG = "aws.lambda.kiosk"
RULES = {
    "rules": [
        {
            "id": "computer-alerts",
            "match": {"where": [{"field": "message", "regex": "(?i)computer"}]},
            "actions": [
                {
                    "slack": {
                        "channel": "#ops",
                        "text": "{tag}: {message}",
                        "runbook": "https://wiki.example/computer",
                    }
                }
            ],
        }
    ]
}
HOSTILE = (
    "COMPUTER says <!channel> <!here|here> <@U123> <http://evil.example|click here> "
    "@everyone *bold* _it_ ```code``` & done"
)
RAW_CONTROLS = ["<!channel>", "<!here", "<@U123>", "<http://evil.example", "@everyone"]


@pytest.fixture
def slack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    """The local Slack endpoint, accepting the token the test account's secret holds."""
    secret = aws.secretsmanager.get_secret_value(SecretId="sluice/slack-bot-token")
    with SlackServer(json.loads(secret["SecretString"])["token"]) as server:
        monkeypatch.setenv("SLUICE_SLACK_API_URL", server.url)
        yield server


@pytest.fixture
def runtime(aws: Any, slack: SlackServer) -> Any:
    """A Runtime whose slack_sdk client talks to the local endpoint, with the production retry
    handlers (2 retries each) but 10 ms between 5xx retries instead of backoff seconds."""
    from slack_sdk.http_retry.builtin_interval_calculators import (
        FixedValueRetryIntervalCalculator,
    )

    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    rt = Runtime(Settings.from_env(), Clients())
    for handler in connection(rt.services).client().retry_handlers:
        handler.interval_calculator = FixedValueRetryIntervalCalculator(0.01)
    return rt


def payload(*messages: str) -> dict[str, Any]:
    return subscription_event(
        GROUP,
        "2026/11/26/[$LATEST]0a1b2c",
        [
            {"id": f"3791{i:052d}", "timestamp": T0 + i, "message": m}
            for i, m in enumerate(messages)
        ],
    )


def mrkdwn_texts(msg: dict[str, Any]) -> list[str]:
    """Every text Slack would render from a message: blocks, fields, context, fallback."""
    out = [msg["text"]]
    for b in msg["blocks"]:
        if isinstance(b.get("text"), dict):
            out.append(b["text"]["text"])
        out.extend(f["text"] for f in b.get("fields", []))
        out.extend(e["text"] for e in b.get("elements", []))
    return out


def balanced(result: dict[str, Any]) -> bool:
    return result["lost"] == 0 and result["received"] == (
        result["archived"] + result["dropped"] + result["dead_lettered"]
    )


# ---------------------------------------------------------------- injection in log text
def test_injection_attempts_arrive_escaped(apply_rules, invoke, slack):
    """Mentions, broadcasts and links in log text reach Slack entity-encoded and inert."""
    apply_rules(RULES)
    result = invoke(payload(HOSTILE))
    assert result["alerts"] == 1
    (msg,) = slack.messages()
    texts = mrkdwn_texts(msg)
    for text in texts:
        for raw in RAW_CONTROLS:
            assert raw not in text, (raw, text)
    headline = msg["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in headline
    assert "&lt;@U123&gt;" in headline
    assert "&lt;http://evil.example|click here&gt;" in headline
    assert "@\u2060everyone" in headline
    assert "&amp; done" in headline
    # the only link in the message is the operator's runbook
    links = [m for t in texts for m in re.findall(r"<([^>]*)>", t)]
    # The only links are Sluice's own: the rule's runbook, the archived object, and the
    # log group in the console of the event's region.
    assert links[0] == "https://wiki.example/computer|Runbook"
    assert len(links) == 3 and links[1].startswith("https://s3.console.aws.amazon.com/s3/object/")
    assert links[1].endswith(".jsonl.gz|Archived")
    assert links[2].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home?")
    assert links[2].endswith("|Console")
    assert (msg["params"]["link_names"], msg["params"]["parse"]) == (False, "none")
    assert (msg["params"]["unfurl_links"], msg["params"]["unfurl_media"]) == (False, False)


def test_samples_cannot_break_out_of_their_code_block(apply_rules, invoke, slack):
    """Several events are summarised in one code block that backticks in log text cannot close,
    so `*bold*` and the escaped controls stay literal."""
    apply_rules(RULES)
    invoke(payload(HOSTILE, "computer ``` <!channel> ```", "computer `x`"))
    (msg,) = slack.messages()
    (samples,) = [
        b["text"]["text"]
        for b in msg["blocks"]
        if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("```")
    ]
    assert samples.count("```") == 2
    assert samples.startswith("```") and samples.endswith("```")
    inner = samples[3:-3]
    assert "`" not in inner
    assert "*bold*" in inner
    assert "&lt;!channel&gt;" in inner
    for raw in RAW_CONTROLS:
        assert raw not in json.dumps(msg["blocks"])


# ---------------------------------------------------------------- rate limits and outages
def test_rate_limited_then_accepted_delivers_one_message(apply_rules, invoke, slack):
    """A 429 with Retry-After is retried by the client; exactly one message arrives."""
    apply_rules(RULES)
    slack.fail_next(status=429, retry_after=0)
    result = invoke(payload("computer on fire"))
    assert len(slack.messages()) == 1
    assert [s for _, s in slack.requests()] == [429, 200]
    assert (result["alerts"], result["actions_failed"], result["dead_lettered"]) == (1, 0, 0)
    assert balanced(result)


def test_server_error_then_accepted_delivers_one_message(apply_rules, invoke, slack):
    """A 500 is retried; the message arrives once."""
    apply_rules(RULES)
    slack.fail_next(status=500)
    result = invoke(payload("computer on fire"))
    assert [s for _, s in slack.requests()] == [500, 200]
    assert len(slack.messages()) == 1
    assert result["alerts"] == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "attempts"),
    [
        pytest.param(500, None, 3, id="500 forever: retried twice"),
        pytest.param(502, None, 3, id="502 forever: retried twice"),
        pytest.param(429, 0, 3, id="429 forever: retried twice"),
        pytest.param(429, 3600, 1, id="429 asking for an hour: not waited for"),
        pytest.param(400, None, 1, id="400: not retried"),
    ],
)
def test_slack_outage_dead_letters_the_alert_and_keeps_the_events(
    apply_rules, invoke, slack, dlq, archive, status, retry_after, attempts
):
    """When Slack keeps failing, the alert goes to the DLQ with its events and the reason;
    the events are still archived and the ledger balances."""
    apply_rules(RULES)
    slack.fail_next(status=status, retry_after=retry_after, count=10)
    result = invoke(payload("computer on fire", "computer still on fire", "all quiet"))
    assert slack.messages() == []
    assert [s for _, s in slack.requests()] == [status] * attempts
    assert (result["alerts"], result["actions_failed"]) == (0, 1)
    assert (result["received"], result["archived"], result["dead_lettered"]) == (3, 3, 0)
    assert balanced(result)
    assert result["rules"]["computer-alerts"]["failed"] == 2
    (msg,) = dlq.messages()
    assert (msg["stage"], msg["action"], msg["rule"], msg["count"]) == (
        "action",
        "slack",
        "computer-alerts",
        2,
    )
    assert "chat.postMessage" in msg["reason"]
    assert [e["record"]["message"] for e in msg["events"]] == [
        "computer on fire",
        "computer still on fire",
    ]
    assert len(archive.lines()) == 3


def test_after_an_outage_the_retry_alerts_once(apply_rules, invoke, slack, dlq):
    """An alert lost to an outage is not marked sent: the invocation's retry delivers it, once."""
    apply_rules(RULES)
    slack.fail_next(status=500, count=3)
    event = payload("computer on fire")
    assert invoke(event)["alerts"] == 0
    assert invoke(event)["alerts"] == 1
    assert invoke(event)["alerts"] == 0
    assert len(slack.messages()) == 1
    assert len(dlq.messages()) == 1


# ---------------------------------------------------------------- sluice rules test
RULES_YAML = """\
redact: {patterns: [email]}
rules:
  - id: health-noise
    priority: 10
    match:
      tag: "app.**"
      where: [{field: path, equals: /healthz}]
    actions: [drop]
  - id: computer-alerts
    priority: 20
    match:
      tag: "app.**"
      where: [{field: message, regex: "(?i)computer"}]
    transform: {redact: {patterns: [password]}}
    actions:
      - slack: {channel: "#ops", text: "{tag}: {message}"}
      - sns: {topic: ops-pager, text: "{level} {message}"}
    throttle: {window: 10m, max: 1}
  - id: ecs-only
    priority: 30
    match: {tag: "ecs.**"}
    actions: [{slack: {channel: "#ecs"}}]
  - id: errors
    priority: 40
    match:
      where: [{field: level, equals: ERROR}]
    actions: [{slack: {channel: "#errors", text: "{record.user} saw {message}"}}]
"""


def test_rules_test_explains_each_rule_and_shows_the_alert_text(tmp_path: Path):
    """`sluice rules test` says for each rule whether it matched and why, and prints the text
    of each alert the event would send (redacted, escaped)."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_YAML)
    event_file = tmp_path / "event.json"
    event_file.write_text(
        json.dumps(
            {
                "tag": "app.kiosk",
                "record": {
                    "message": "COMPUTER <!channel> password=hunter2",
                    "level": "WARN",
                    "path": "/checkout",
                },
            }
        )
    )
    result = CliRunner().invoke(
        rules_cli, ["test", str(rules_file), "--event", str(event_file)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = result.output
    lines = [line.strip() for line in out.splitlines()]
    assert "skip  health-noise: condition false: path equals '/healthz'" in lines
    assert "match computer-alerts: tag and all conditions match" in lines
    assert "skip  ecs-only: tag 'app.kiosk' does not match ['ecs.**']" in lines
    assert "skip  errors: condition false: level equals 'ERROR'" in lines
    assert (
        "slack from computer-alerts: #ops: app.kiosk: COMPUTER &lt;!channel&gt; "
        "password=[REDACTED:password]"
    ) in lines
    assert "sns from computer-alerts: ops-pager: [WARN] computer-alerts: 1 event(s) on " in out
    assert "WARN COMPUTER <!channel> password=[REDACTED:password]" in out
    assert "hunter2" not in out
    assert "outcome: archived" in lines


def test_rules_test_on_a_cloudwatch_payload_shows_every_event(tmp_path: Path):
    """With a CloudWatch subscription payload, each event gets its own verdicts and alerts."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_YAML.replace("app.**", "aws.lambda.**"))
    event_file = tmp_path / "payload.json"
    event_file.write_text(
        json.dumps(
            payload(
                json.dumps({"message": "computer says no", "level": "ERROR", "user": "bob"}),
                json.dumps({"message": "GET /healthz", "path": "/healthz"}),
            )
        )
    )
    result = CliRunner().invoke(
        rules_cli, ["test", str(rules_file), "--event", str(event_file)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert "slack from computer-alerts: #ops: aws.lambda.kiosk: computer says no" in lines
    assert "slack from errors: #errors: bob saw computer says no" in lines
    assert "outcome: dropped by health-noise" in lines
    assert lines.count("outcome: archived") == 1
