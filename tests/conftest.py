"""Shared fixtures: sample events, a moto AWS account with Sluice's resources, a Runtime.

Nothing here reaches the network: every AWS call goes to moto's in-process mock
(`mock_aws`), and the environment is scrubbed of real credentials, profiles and
endpoint overrides first. Settings and the handlers' process-wide runtime are
reset around every test so no state leaks between them.

Helpers are exposed as fixtures (`load_event`, `archive`, `dlq`, `apply_rules`)
rather than imported from this module: pytest imports every `conftest.py` under
the same module name, so `from conftest import ...` would be fragile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sluice_cli import tables

ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = ROOT / "events"
DATA_DIR = Path(__file__).resolve().parent / "data"

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
RULES_TABLE = "sluice-rules"
STATE_TABLE = "sluice-state"
ARCHIVE_BUCKET = "sluice-archive-test"
DLQ_NAME = "sluice-dlq"
DLQ_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{DLQ_NAME}"
TOPIC_NAME = "ops-pager"
SLACK_SECRET = "sluice/slack-bot-token"
SLACK_TOKEN = "xoxb-0000000000-test-token"
# The classic SQS limit; queues created before 2025 keep it, so the DLQ is made with it.
SQS_MAX_MESSAGE_BYTES = 256 * 1024


def load_event(name: str) -> dict[str, Any]:
    """A sample trigger payload from `events/` (Powertools' helper of the same name).

    `name` is relative to `events/`, with or without `.json`:
    `load_event("cloudwatch_logs")`, `load_event("malformed/truncated_gzip.json")`.
    """
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def load_data(name: str) -> Any:
    """A JSON file from `tests/data/` (expected, decoded forms of the samples)."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def malformed_event_names() -> list[str]:
    """Every sample under `events/malformed/`, as names for `load_event`."""
    return sorted(f"malformed/{p.stem}" for p in (EVENTS_DIR / "malformed").glob("*.json"))


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Sluice reads."""

    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000001"
    function_name: str = "sluice-dev-cloudwatch_logs"
    invoked_function_arn: str = (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-cloudwatch_logs"
    )
    memory_limit_in_mb: int = 512
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class AwsResources:
    """The mocked account: names, URLs and clients for Sluice's resources."""

    s3: Any
    sqs: Any
    sns: Any
    dynamodb: Any
    secretsmanager: Any
    rules_table: str = RULES_TABLE
    state_table: str = STATE_TABLE
    bucket: str = ARCHIVE_BUCKET
    dlq_url: str = DLQ_URL
    topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the archive bucket under `prefix`, sorted."""
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def get_object(self, key: str) -> dict[str, Any]:
        return self.s3.get_object(Bucket=self.bucket, Key=key)


# ---------------------------------------------------------------- isolation
@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy credentials and Sluice's settings; no profile or endpoint can leak in."""
    import os

    for key in list(os.environ):
        if key.startswith(("AWS_", "SLUICE_", "POWERTOOLS_")):
            monkeypatch.delenv(key)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # Never the instance metadata service (a link-local address, not loopback).
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": REGION,
        # An empty file: no ~/.aws config or credentials of the machine running the tests.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SLUICE_RULES_TABLE": RULES_TABLE,
        "SLUICE_STATE_TABLE": STATE_TABLE,
        "SLUICE_ARCHIVE_BUCKET": ARCHIVE_BUCKET,
        "SLUICE_DLQ_URL": DLQ_URL,
        "SLUICE_SLACK_SECRET": SLACK_SECRET,
        "SLUICE_RULES_TTL": "60",
        "POWERTOOLS_METRICS_NAMESPACE": "SluiceTest",
        "POWERTOOLS_SERVICE_NAME": "sluice",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(autouse=True)
def isolate_runtime() -> Iterator[None]:
    """Fresh settings, no process-wide runtime and no cached default clients, before and after."""
    from chalicelib import handlers
    from chalicelib.aws import clients
    from chalicelib.settings import get_settings

    def reset() -> None:
        from chalicelib.alerting.gates import Throttle

        Throttle._exhausted.clear()  # a warm container's memo of spent throttle windows
        get_settings.cache_clear()
        handlers.set_runtime(None)
        clients.reset()

    reset()
    yield
    reset()


# ---------------------------------------------------------------- AWS (moto)
_shared_session: list[boto3.Session] = []


def shared_boto3_session() -> boto3.Session:
    """One boto3 session for every test: each session loads the service models again
    (~40 ms a client), which made the account's setup cost 0.4 s a test instead of 0.15."""
    if not _shared_session:
        _shared_session.append(boto3.Session())
    return _shared_session[0]


@pytest.fixture
def aws(aws_env: dict[str, str]) -> Iterator[AwsResources]:
    """A mocked account: rules and state tables, archive bucket, DLQ, SNS topic, Slack secret."""
    with mock_aws():
        # mock_aws clears boto3's default session and restores it on exit; every client made
        # in the test (Sluice's own `Clients` included) comes from the warm shared one.
        boto3.DEFAULT_SESSION = shared_boto3_session()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARCHIVE_BUCKET)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(
            QueueName=DLQ_NAME,
            Attributes={"MaximumMessageSize": str(SQS_MAX_MESSAGE_BYTES)},
        )["QueueUrl"]
        assert url == DLQ_URL, url
        ddb = boto3.client("dynamodb", region_name=REGION)
        tables.create(ddb, RULES_TABLE, tables.RULES)
        tables.create(ddb, STATE_TABLE, tables.STATE)
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        sm = boto3.client("secretsmanager", region_name=REGION)
        sm.create_secret(Name=SLACK_SECRET, SecretString=json.dumps({"token": SLACK_TOKEN}))
        yield AwsResources(
            s3=s3, sqs=sqs, sns=sns, dynamodb=ddb, secretsmanager=sm, topic_arn=topic_arn
        )


@pytest.fixture
def runtime(aws: AwsResources) -> Any:
    """A Runtime over the mocked account: settings from the environment, its own clients."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    return Runtime(Settings.from_env(), Clients())


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


# ---------------------------------------------------------------- helpers
@pytest.fixture(name="load_event")
def load_event_fixture() -> Callable[[str], dict[str, Any]]:
    """`load_event(name)`: a sample trigger payload from `events/`."""
    return load_event


@pytest.fixture(name="load_data")
def load_data_fixture() -> Callable[[str], Any]:
    return load_data


class Archive:
    """Reads back what the archive wrote to the mocked bucket."""

    def __init__(self, aws: AwsResources) -> None:
        self.aws = aws

    def keys(self) -> list[str]:
        return self.aws.keys("archive/")

    def objects(self) -> dict[str, list[dict[str, Any]]]:
        """key -> decoded JSON lines (with `chalicelib.actions.archive.read_lines`)."""
        from chalicelib.actions.archive import read_lines

        return {k: read_lines(self.aws.get_object(k)["Body"].read()) for k in self.keys()}

    def lines(self) -> list[dict[str, Any]]:
        """Every archived line, objects in key order."""
        return [line for lines in self.objects().values() for line in lines]


@pytest.fixture
def archive(aws: AwsResources) -> Archive:
    return Archive(aws)


class DeadLetterQueue:
    """Reads (and deletes) the dead-letter queue's messages."""

    def __init__(self, aws: AwsResources) -> None:
        self.aws = aws

    def raw_messages(self) -> list[str]:
        bodies: list[str] = []
        while True:
            resp = self.aws.sqs.receive_message(
                QueueUrl=self.aws.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            msgs = resp.get("Messages", [])
            if not msgs:
                return bodies
            for m in msgs:
                bodies.append(m["Body"])
                self.aws.sqs.delete_message(
                    QueueUrl=self.aws.dlq_url, ReceiptHandle=m["ReceiptHandle"]
                )

    def messages(self) -> list[dict[str, Any]]:
        """Every message body, decoded from JSON."""
        return [json.loads(b) for b in self.raw_messages()]


@pytest.fixture
def dlq(aws: AwsResources) -> DeadLetterQueue:
    return DeadLetterQueue(aws)


@pytest.fixture
def apply_rules(aws: AwsResources, runtime: Any) -> Callable[[dict[str, Any]], Any]:
    """`apply_rules({"rules": [...]})`: validate, write to the table, and make `runtime` reload."""
    from chalicelib.rules.schema import load_rules
    from chalicelib.rules.store import write_rule_defs

    def apply(doc: dict[str, Any]) -> Any:
        result = write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(doc))
        runtime.rules.invalidate()
        return result

    return apply


@pytest.fixture
def invoke(
    runtime: Any, lambda_context: LambdaContext
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`invoke(event)`: the `cloudwatch_logs` handler with the test runtime and context."""
    from chalicelib.handlers import handle_cloudwatch_logs

    def call(event: dict[str, Any]) -> dict[str, Any]:
        return handle_cloudwatch_logs(event, lambda_context, runtime)

    return call
