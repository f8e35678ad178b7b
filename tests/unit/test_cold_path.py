"""The cold path: a fresh interpreter that imports `app` and handles one CloudWatch Logs
payload loads what that payload needs and nothing else: botocore's session, not boto3
(resources, s3transfer); the actions its rules name, not the others; no Kinesis, S3 or
subscription code. Asserted on `sys.modules` of a real process talking to moto's server
on loopback, never on time."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.rules.schema import load_rules
from chalicelib.rules.store import write_rule_defs
from sluice_cli import tables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "us-east-1"
RULES_TABLE = "sluice-rules"
STATE_TABLE = "sluice-state"
BUCKET = "sluice-archive-cold"

# Never on the CloudWatch Logs path, whatever the rules say.
NEVER = (
    "boto3",
    "s3transfer",
    "multiprocessing",
    "chalicelib.sources.kinesis",
    "chalicelib.sources.s3",
    "chalicelib.sources.s3_formats",
    "chalicelib.sources.firehose",
    "chalicelib.ingest.kinesis",
    "chalicelib.ingest.s3_objects",
    "chalicelib.subscriptions",
)
# Loaded when first needed, never by a first payload that is archived and alerts nobody:
# delivering to actions (and the alert gates and state it uses), dead-lettering,
# absence rules, secrets, and the raw form of an input that failed to decode; nor
# Powertools, whose Logger would write the ledger line exactly as it is written without
# it (chalicelib/ledgerline.py).
DEFERRED = (
    "chalicelib.delivery",
    "chalicelib.alerting",
    "chalicelib.actions.deadletter",
    "chalicelib.ingest.batch",
    "chalicelib.secrets",
    "aws_lambda_powertools",
)
ACTIONS = ("chalicelib.actions.forward", "chalicelib.actions.slack", "chalicelib.actions.sns")
# Slack's client and the URL policy: loaded when a Slack message is first sent, not when
# a rule naming Slack is checked (a forward's options need the URL policy).
SENDING = ("chalicelib.actions.slack_client", "chalicelib.urlpolicy")

SLACK_RULE = {
    "id": "checkout-errors",
    "match": {"tag": "aws.lambda.*", "where": [{"field": "level", "in": ["ERROR", "FATAL"]}]},
    "actions": [{"slack": {"channel": "#ops"}}],
}
FORWARD_RULE = {
    "id": "to-kinesis",
    "match": {"tag": "**", "where": [{"field": "level", "equals": "FATAL"}]},
    "actions": [{"forward": {"to": "kinesis", "stream": "app-logs"}}],
}
DROP_RULE = {
    "id": "health",
    "match": {"tag": "**", "where": [{"field": "path", "equals": "/healthz"}]},
    "actions": ["drop"],
}

DRIVER = r"""
import json, sys, time

event = json.loads(sys.stdin.read())


class Context:
    function_name = "sluice-dev-cloudwatch_logs"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 512
    aws_request_id = "req-cold"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "2026/01/01/[$LATEST]0"
    _deadline = time.time() + 120

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.time()) * 1000)


import app

result = app.cloudwatch_logs(event, Context())
print("RESULT " + json.dumps({"result": result, "modules": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _payload() -> dict[str, Any]:
    """One Powertools INFO line from a Lambda function, stamped now, as CloudWatch sends it."""
    now_ms = int(time.time() * 1000)
    line = {"level": "INFO", "message": "order 48213 created", "service": "checkout-api"}
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/checkout-api",
        "logStream": "2026/01/01/[$LATEST]abc",
        "subscriptionFilters": ["sluice"],
        "logEvents": [{"id": "3" * 56, "timestamp": now_ms, "message": json.dumps(line)}],
    }
    data = base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()
    return {"awslogs": {"data": data}}


def _cold_run(endpoint: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A fresh account on the server, `rules` applied, and one cold invocation."""
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=30).close()
    session = boto3.Session(region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    tables.create(ddb, RULES_TABLE, tables.RULES)
    tables.create(ddb, STATE_TABLE, tables.STATE)
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    if rules:
        write_rule_defs(ddb, RULES_TABLE, load_rules({"rules": rules}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": ROOT,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_LAMBDA_FUNCTION_NAME": "sluice-dev-cloudwatch_logs",
        "SLUICE_RULES_TABLE": RULES_TABLE,
        "SLUICE_STATE_TABLE": STATE_TABLE,
        "SLUICE_ARCHIVE_BUCKET": BUCKET,
        "SLUICE_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/sluice-dlq",
        "SLUICE_SLACK_SECRET": "sluice/slack-bot-token",
        "POWERTOOLS_METRICS_NAMESPACE": "SluiceTest",
        "POWERTOOLS_SERVICE_NAME": "sluice",
    }
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(_payload()),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    out: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return out


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize(
    ("rules", "needed"),
    [
        pytest.param([], (), id="no rules"),
        pytest.param([DROP_RULE], (), id="routing verbs only"),
        pytest.param([DROP_RULE, SLACK_RULE], ("chalicelib.actions.slack",), id="a slack rule"),
        pytest.param(
            [FORWARD_RULE],
            ("chalicelib.actions.forward", "chalicelib.urlpolicy"),
            id="a forward rule",
        ),
    ],
)
def test_first_cloudwatch_event_loads_only_what_it_needs(
    moto_server: str, rules: list[dict[str, Any]], needed: tuple[str, ...]
) -> None:
    """The first payload is archived with clients built on botocore alone, and the only
    action modules loaded are those the rules name (not what they need to send); boto3,
    the other actions and the Kinesis, S3 and subscription code are never imported, nor
    delivery, alerting, dead-lettering, secrets or Powertools while no event needs them."""
    out = _cold_run(moto_server, rules)
    result, modules = out["result"], out["modules"]
    assert (result["received"], result["archived"], result["lost"]) == (1, 1, 0), result
    assert "rules_error" not in result, result
    assert "botocore.session" in modules
    assert [m for m in NEVER if _loaded(modules, m)] == []
    assert [m for m in DEFERRED if _loaded(modules, m)] == []
    optional = ACTIONS + SENDING
    assert sorted(m for m in optional if _loaded(modules, m)) == sorted(needed)


@pytest.mark.parametrize("name", ["forward", "slack", "sns"])
def test_each_builtin_action_is_known_before_its_module_is_loaded(name: str) -> None:
    """The registry lists every built-in action by name without importing it, and `get`
    imports the module that registers it."""
    from chalicelib import actions

    assert name in actions.names()
    assert actions.get(name).name == name


def test_an_unknown_action_is_refused_by_name() -> None:
    """A name no module registers is a KeyError, not an import of anything."""
    from chalicelib import actions

    with pytest.raises(KeyError):
        actions.get("no-such-action")
