"""chalicelib.handlers.handle_cloudwatch_logs: a subscription payload in, the ledger out."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib import handlers
from chalicelib.actions import deadletter

from .test_cloudwatch_source import MALFORMED

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE_KEY = (
    "archive/tag=aws.lambda.checkout-api/dt=2026-11-26/hour=10/"
    "c0ffee00-0000-4000-8000-000000000001-0.jsonl.gz"
)
ERROR_RULE = {
    "id": "checkout-errors",
    "match": {"tag": "aws.lambda.*", "where": [{"field": "level", "in": ["ERROR", "FATAL"]}]},
    "actions": [{"slack": {"channel": "#ops", "runbook": "https://wiki.example/checkout"}}],
}


def subscription(doc: dict[str, Any]) -> dict[str, Any]:
    """A subscription event for a (modified) sample document, encoded as CloudWatch does."""
    body = json.dumps(doc).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(body, mtime=0)).decode()}}


def ledger_of(result: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return tuple(result[k] for k in ("received", "archived", "dropped", "dead_lettered", "lost"))


# ---------------------------------------------------------------- the good path
def test_sample_payload_is_archived_whole(invoke, load_event, load_data, archive, dlq):
    """The Lambda log group sample archives its nine events in one object; the ledger balances."""
    result = invoke(load_event("cloudwatch_logs"))
    assert ledger_of(result) == (9, 9, 0, 0, 0)
    assert result["log_group"] == "/aws/lambda/checkout-api"
    assert "rules_error" not in result
    assert archive.keys() == [ARCHIVE_KEY]
    lines = archive.lines()
    doc = load_data("cloudwatch/cloudwatch_logs.decoded.json")
    assert [line["id"] for line in lines] == [le["id"] for le in doc["logEvents"]]
    assert lines[2]["record"]["message"] == "order received"
    assert lines[2]["time"] == "2026-11-26T10:07:01.201Z"
    assert lines[8]["record"]["billed_duration_ms"] == 1235
    assert dlq.messages() == []


def test_control_message_does_nothing(invoke, load_event, archive, dlq):
    """CONTROL_MESSAGE gives an empty ledger, no archive object and no dead letter."""
    result = invoke(load_event("cloudwatch_logs_control"))
    assert ledger_of(result) == (0, 0, 0, 0, 0)
    assert result["control_message"] is True
    assert archive.keys() == []
    assert dlq.messages() == []


def test_256kb_message_is_archived_whole(invoke, load_event, archive):
    """CloudWatch's largest event (256 KB) is archived with every character of its message."""
    result = invoke(load_event("cloudwatch_logs_256kb"))
    assert ledger_of(result) == (1, 1, 0, 0, 0)
    (line,) = archive.lines()
    message = line["record"]["message"]
    assert len(message) == 256 * 1024
    assert message.endswith("RecursionError: maximum recursion depth exceeded")


def test_absurd_record_time_falls_back_to_the_cloudwatch_timestamp(invoke, load_data, archive):
    """A record claiming a time no calendar holds (`1e300`) is archived at CloudWatch's time."""
    doc = copy.deepcopy(load_data("cloudwatch/cloudwatch_logs.decoded.json"))
    doc["logEvents"][3]["message"] = '{"msg": "clock went wild", "time": 1e300}'
    result = invoke(subscription(doc))
    assert ledger_of(result) == (9, 9, 0, 0, 0)
    wild = next(line for line in archive.lines() if line["record"]["message"] == "clock went wild")
    assert wild["time"] == "2026-11-26T10:07:01.318Z"


def test_rules_unavailable_archives_everything_and_says_so(invoke, load_event, aws, archive):
    """With the rules table unreadable the batch is archived and the result names the problem."""
    aws.dynamodb.delete_table(TableName=aws.rules_table)
    result = invoke(load_event("cloudwatch_logs"))
    assert ledger_of(result) == (9, 9, 0, 0, 0)
    assert result["rules_error"].startswith("rules unavailable: ResourceNotFoundException")
    assert len(archive.lines()) == 9


def test_rules_drop_and_count(invoke, load_event, apply_rules, archive):
    """Rules from the table apply: platform lines dropped by rule id, the rest archived."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "platform-noise",
                    "match": {
                        "where": [{"field": "lambda_event", "in": ["start", "end", "init_start"]}]
                    },
                    "actions": ["drop"],
                }
            ]
        }
    )
    result = invoke(load_event("cloudwatch_logs"))
    assert ledger_of(result) == (9, 6, 3, 0, 0)
    assert result["dropped_by"] == {"platform-noise": 3}
    assert not any(
        line["record"].get("lambda_event") in ("start", "end") for line in archive.lines()
    )


# ---------------------------------------------------------------- malformed input
@pytest.mark.parametrize(("name", "stage"), MALFORMED)
def test_malformed_payload_is_dead_lettered_with_its_stage(
    invoke, load_event, lambda_context, archive, dlq, name, stage
):
    """Each malformed sample: one unit received and dead-lettered, stage named, raw event kept."""
    event = load_event(name)
    result = invoke(event)
    assert ledger_of(result) == (1, 0, 0, 1, 0)
    assert result["dead_letter_reasons"] == {f"decode:{stage}": 1}
    assert result["decode_error"].startswith(f"{stage}: ")
    assert archive.keys() == []
    (msg,) = dlq.messages()
    assert (msg["stage"], msg["count"], msg["function"]) == (
        "decode",
        1,
        lambda_context.function_name,
    )
    assert msg["invocation"] == lambda_context.aws_request_id
    assert msg["reason"].startswith(f"{stage}: ")
    assert json.loads(base64.b64decode(msg["raw"])) == event


def test_large_malformed_payload_is_kept_in_s3(invoke, load_event, aws, dlq, monkeypatch):
    """A payload too big for an SQS message is stored in S3; the message points at it."""
    monkeypatch.setattr(deadletter, "MAX_BODY", 1500)  # the samples are ~1 KB; real limit 240 KiB
    event = load_event("malformed/truncated_gzip")
    invoke(event)
    (msg,) = dlq.messages()
    assert "raw" not in msg
    bucket, _, key = msg["raw_s3"].removeprefix("s3://").partition("/")
    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert msg["raw_bytes"] == len(body)
    assert json.loads(body) == event


def test_event_that_is_not_json_is_still_dead_lettered(invoke, dlq):
    """Even a trigger event JSON cannot encode is dead-lettered (as its repr), not raised."""
    result = invoke({"awslogs": {"data": b"H4sI\x00binary"}})
    assert ledger_of(result) == (1, 0, 0, 1, 0)
    (msg,) = dlq.messages()
    assert b"H4sI" in base64.b64decode(msg["raw"])


def test_dead_letter_queue_failure_raises(invoke, load_event, aws):
    """If the DLQ itself fails the handler raises, so Lambda retries the invocation (intended)."""
    aws.sqs.delete_queue(QueueUrl=aws.dlq_url)
    with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist"):
        invoke(load_event("malformed/bad_base64"))


# ---------------------------------------------------------------- Slack end to end
class SlackStub(BaseHTTPRequestHandler):
    """A loopback Slack Web API: answers chat.postMessage with ok and records the request."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        SlackStub.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        )
        out = b'{"ok": true, "channel": "C1", "ts": "1795687621.000100"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slack_stub(monkeypatch):
    SlackStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlackStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SLUICE_SLACK_API_URL", f"http://127.0.0.1:{server.server_port}/api/")
    yield SlackStub.requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connections are refused
    return port


def test_slack_alert_goes_out_with_the_token_from_secrets_manager(
    slack_stub, runtime, apply_rules, invoke, load_event
):
    """The matching ERROR line is posted once to the Slack API with the secret's token."""
    apply_rules({"rules": [ERROR_RULE]})
    result = invoke(load_event("cloudwatch_logs"))
    assert (result["alerts"], result["actions_failed"]) == (1, 0)
    assert ledger_of(result) == (9, 9, 0, 0, 0)
    (req,) = slack_stub
    assert req["path"] == "/api/chat.postMessage"
    assert req["auth"] == "Bearer xoxb-0000000000-test-token"
    assert req["body"]["channel"] == "#ops"
    assert req["body"]["blocks"][1]["text"]["text"] == (
        "aws.lambda.checkout-api: payment gateway timeout after 3000 ms"
    )


def test_slack_failure_dead_letters_the_alert_and_archives_the_events(
    closed_port, monkeypatch, runtime, apply_rules, invoke, load_event, archive, dlq
):
    """Slack unreachable: the alert goes to the DLQ with action and rule; events still archived."""
    from slack_sdk.http_retry import builtin_interval_calculators

    monkeypatch.setenv("SLUICE_SLACK_API_URL", f"http://127.0.0.1:{closed_port}/api/")
    monkeypatch.setattr(  # keep slack_sdk's retries, without their backoff sleeps
        builtin_interval_calculators.BackoffRetryIntervalCalculator,
        "calculate_sleep_duration",
        lambda self, attempt: 0.0,
    )
    runtime._settings = None  # re-read SLUICE_SLACK_API_URL
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    apply_rules({"rules": [ERROR_RULE]})
    result = invoke(load_event("cloudwatch_logs"))
    assert ledger_of(result) == (9, 9, 0, 0, 0)
    assert (result["alerts"], result["actions_failed"]) == (0, 1)
    assert len(archive.lines()) == 9
    (msg,) = dlq.messages()
    assert (msg["stage"], msg["action"], msg["rule"], msg["count"]) == (
        "action",
        "slack",
        "checkout-errors",
        1,
    )
    assert "Connection refused" in msg["reason"]
    assert msg["events"][0]["record"]["message"] == "payment gateway timeout after 3000 ms"


def test_missing_slack_secret_dead_letters_the_alert(
    aws, runtime, apply_rules, invoke, load_event, dlq
):
    """A deleted token secret does not fail the invocation: the alert is dead-lettered."""
    aws.secretsmanager.delete_secret(
        SecretId="sluice/slack-bot-token", ForceDeleteWithoutRecovery=True
    )
    apply_rules({"rules": [ERROR_RULE]})
    result = invoke(load_event("cloudwatch_logs"))
    assert ledger_of(result) == (9, 9, 0, 0, 0)
    assert result["actions_failed"] == 1
    (msg,) = dlq.messages()
    assert (msg["action"], msg["rule"]) == ("slack", "checkout-errors")
    assert msg["reason"].startswith("slack: token: ")


# ---------------------------------------------------------------- wiring
def test_chalice_app_runs_the_handler_with_the_default_runtime(aws, load_event, tmp_path, archive):
    """`app.cloudwatch_logs` via Chalice's test client builds its runtime from the environment."""
    from chalice.test import Client

    from app import app

    with Client(app, project_dir=str(tmp_path)) as client:
        response = client.lambda_.invoke("cloudwatch_logs", load_event("cloudwatch_logs"))
    assert ledger_of(response.payload) == (9, 9, 0, 0, 0)
    assert handlers.runtime().settings.archive_bucket == aws.bucket
    assert len(archive.lines()) == 9


def test_runtime_import_is_light_and_reads_no_environment():
    """Importing `app` needs no settings and never loads the CLI, moto, PyYAML or rich."""
    code = (
        "import sys, app\n"
        "top = ('moto', 'yaml', 'rich', 'boto3')\n"
        "heavy = sorted(m for m in sys.modules"
        " if m.split('.')[0] in top or m.startswith('sluice_cli'))\n"
        "print(heavy)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_ledger_is_reported_once_with_the_result(invoke, load_event, monkeypatch):
    """The handler reports one ledger (log line and metrics) per invocation, as it returns it."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(handlers, "report", lambda *args, **kw: calls.append(args))
    result = invoke(load_event("cloudwatch_logs"))
    ((function, ledger, namespace, extra),) = calls
    assert (function, namespace) == ("cloudwatch_logs", "SluiceTest")
    assert {**ledger.as_dict(), **extra} == result


def test_each_test_starts_without_a_process_wide_runtime():
    """Isolation: no runtime and no cached settings survive from one test to the next."""
    from chalicelib.settings import get_settings

    assert handlers._runtime is None
    assert get_settings.cache_info().currsize == 0


def test_sluice_own_log_group_is_never_routed_back(invoke, archive, load_data):
    """A payload from Sluice's own function log group is counted as dropped by the loop guard,
    never archived or alerted (a subscription of everything must not feed on itself)."""
    import base64
    import gzip
    import json

    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/sluice-prod-cloudwatch_logs",
        "logStream": "2026/11/26/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["sluice"],
        "logEvents": [
            {"id": str(i), "timestamp": 1795687200000 + i, "message": '{"message":"ledger"}'}
            for i in range(3)
        ],
    }
    event = {
        "awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()}
    }
    result = invoke(event)
    assert (result["received"], result["dropped"], result["lost"]) == (3, 3, 0)
    assert result["dropped_by"] == {"loop_guard": 3}
    assert archive.lines() == []
