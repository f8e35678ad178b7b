"""One mocked account per hostile test module, and the corpus builder (imported by the
hostile test modules; conftest.py only exposes fixtures).

Most hostile cases are data: a module runs each of its cases through the real handler
once (module scope), and table-driven tests assert on what each case left behind.
Sharing the account keeps a module at one moto setup instead of one per case; each
invocation's archive objects and dead letters are read and removed before the next,
so cases never see each other's output.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from sluice_cli import tables

HOSTILE_DATA = Path(__file__).resolve().parents[1] / "data" / "hostile"
REGION = "us-east-1"
ACCOUNT = "123456789012"
RULES_TABLE = "sluice-rules"
STATE_TABLE = "sluice-state"
BUCKET = "sluice-archive-test"
DLQ_NAME = "sluice-dlq"
SLACK_SECRET = "sluice/slack-bot-token"
SLACK_TOKEN = "xoxb-0000000000-hostile-token"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "SLUICE_RULES_TABLE": RULES_TABLE,
    "SLUICE_STATE_TABLE": STATE_TABLE,
    "SLUICE_ARCHIVE_BUCKET": BUCKET,
    "SLUICE_DLQ_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{DLQ_NAME}",
    "SLUICE_SLACK_SECRET": SLACK_SECRET,
    "SLUICE_RULES_TTL": "60",
    "POWERTOOLS_METRICS_NAMESPACE": "SluiceTest",
    "POWERTOOLS_SERVICE_NAME": "sluice",
}


def load_make() -> ModuleType:
    """tests/data/hostile/make.py (tests/data is not a package)."""
    spec = importlib.util.spec_from_file_location("hostile_make", HOSTILE_DATA / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Context:
    """Lambda's context object, with a distinct request id per invocation."""

    aws_request_id: str
    function_name: str = "sluice-dev-hostile"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-hostile"
    remaining_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Outcome:
    """What one invocation left behind: its answer, ledger(s), archive lines, dead letters."""

    result: Any
    ledgers: list[Any]
    lines: list[dict[str, Any]]
    keys: list[str]
    dead_letters: list[dict[str, Any]]
    line_count: int = 0

    @property
    def ledger(self) -> tuple[int, int, int, int]:
        """(received, archived, dropped, dead_lettered) summed over the invocation's reports."""
        return tuple(  # type: ignore[return-value]
            sum(getattr(led, k) for led in self.ledgers)
            for k in ("received", "archived", "dropped", "dead_lettered")
        )

    def balanced(self) -> bool:
        r, a, d, x = self.ledger
        return all(led.balanced() for led in self.ledgers) and r == a + d + x


@dataclass
class Account:
    """The mocked account a module shares, and a runner that isolates each invocation."""

    s3: Any
    sqs: Any
    dynamodb: Any
    secretsmanager: Any
    runtime: Any
    dlq_url: str
    reports: list[tuple[str, Any, dict[str, Any]]]
    counter: list[int] = field(default_factory=lambda: [0])

    def context(self) -> Context:
        self.counter[0] += 1
        return Context(f"c0ffee00-0000-4000-8000-{self.counter[0]:012d}")

    def run(
        self,
        handler: Callable[..., Any],
        event: Any,
        ctx: Context | None = None,
        *,
        parse: bool = True,
        runtime: Any = None,
    ) -> Outcome:
        """`handler(event, context, runtime)`, then collect and clear what it left. With
        `parse=False` archive lines are counted and only the first and last decoded (a
        million dicts cost seconds of the garbage collector's time, not Sluice's)."""
        first = len(self.reports)
        result = handler(event, ctx or self.context(), runtime or self.runtime)
        ledgers = [led for _, led, _ in self.reports[first:]]
        keys = self.keys("archive/")
        lines: list[dict[str, Any]] = []
        count = 0
        for k in keys:
            raw = self._raw_lines(k)
            count += len(raw)
            picked = raw if parse else raw[:1] + raw[-1:]
            lines.extend(orjson.loads(line) for line in picked)
        spilled = self.keys("deadletter/")
        for k in keys + spilled:
            self.s3.delete_object(Bucket=BUCKET, Key=k)
        self._forget_positions()
        return Outcome(result, ledgers, lines, keys, self.drain(self.dlq_url), count)

    def _forget_positions(self) -> None:
        """Each case is a stream of its own: the cases reuse one shard's sequence numbers,
        and a position left by one case would mark the next case's records as archived."""
        items = self.dynamodb.scan(TableName=STATE_TABLE).get("Items", [])
        for item in items:
            if item["pk"]["S"].startswith("position#"):
                key = {"pk": item["pk"], "sk": item["sk"]}
                self.dynamodb.delete_item(TableName=STATE_TABLE, Key=key)

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def _raw_lines(self, key: str) -> list[bytes]:
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return [line for line in zlib.decompress(body, 47).split(b"\n") if line]

    def drain(self, url: str) -> list[dict[str, Any]]:
        """The queue's messages, decoded from JSON, received and deleted."""
        return [json.loads(b) for b in self.drain_bodies(url)]

    def drain_bodies(self, url: str) -> list[str]:
        out: list[str] = []
        while True:
            msgs = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(m["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def apply_rules(self, doc: dict[str, Any]) -> None:
        """Validate and store a rules document; the runtime reloads it."""
        from chalicelib.rules.schema import load_document
        from chalicelib.rules.store import write_document

        write_document(self.dynamodb, RULES_TABLE, load_document(doc))
        self.runtime.rules.invalidate()


@contextmanager
def mocked_account() -> Iterator[Account]:
    """Sluice's resources in a fresh moto account, the environment set for it, and the
    handlers' ledger reports captured (each one must balance)."""
    from chalicelib import handlers
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("AWS_", "SLUICE_", "POWERTOOLS_")):
                mp.delenv(key)
        for key, value in ENV.items():
            mp.setenv(key, value)
        reports: list[tuple[str, Any, dict[str, Any]]] = []

        def capture(function: str, ledger: Any, namespace: str, extra: Any = None) -> None:
            reports.append((function, copy.deepcopy(ledger), dict(extra or {})))

        mp.setattr(handlers, "report", capture)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET)
            sqs = boto3.client("sqs", region_name=REGION)
            dlq_url = sqs.create_queue(
                QueueName=DLQ_NAME, Attributes={"MaximumMessageSize": str(256 * 1024)}
            )["QueueUrl"]
            ddb = boto3.client("dynamodb", region_name=REGION)
            tables.create(ddb, RULES_TABLE, tables.RULES)
            tables.create(ddb, STATE_TABLE, tables.STATE)
            sm = boto3.client("secretsmanager", region_name=REGION)
            sm.create_secret(Name=SLACK_SECRET, SecretString=json.dumps({"token": SLACK_TOKEN}))
            runtime = Runtime(Settings.from_env(), Clients())
            yield Account(s3, sqs, ddb, sm, runtime, dlq_url, reports)
            for function, ledger, extra in reports:
                assert ledger.balanced(), (function, ledger.as_dict(), extra)
