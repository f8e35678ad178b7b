"""Fixtures for the fault-injection suite (`make faults`; `make test` runs it too).

Every scenario drives a real handler over the moto account of the root conftest, with
faults injected on the runtime's own boto3 clients (`faults`, see inject.py) or on the
local Slack Web API endpoint (`slack.fail_next`, `slack.hang_next`), then settles the
ledger by reading back the archive, the dead-letter queue and Slack (`settle`, see
readback.py). `settle` records the scenario's figures on the test item, where
tests/faults/run.py sums them into the closing summary line.

Nothing sleeps for long: botocore's backoff is a millisecond, slack_sdk's waits (its
Retry-After sleeps included) and the forwarders' backoff are recorded instead of slept
(`waits`), and the Slack client's timeout is two seconds (a fraction of one where a test
makes Slack hang).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.retries import standard

from chalicelib.actions.slack_client import connection
from sluice_cli.slack_server import SlackServer

from .inject import Faults
from .payloads import FORWARD_STREAM
from .readback import Figures, Inputs, Readback

REGION = "us-east-1"
SLACK_TIMEOUT_S = 2


@dataclass
class Waits:
    """Sleeps asked for by retry handlers (seconds), recorded instead of slept."""

    slack: list[float] = field(default_factory=list)
    forward: list[float] = field(default_factory=list)


class _SlackClock:
    def __init__(self, waits: list[float]) -> None:
        self.waits = waits

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> Waits:
    """Retries keep their logic and lose their sleeps: botocore's jittered backoff becomes
    1 ms, slack_sdk's interval and Retry-After sleeps and the forwarders' backoff are
    recorded (so a test can check a Retry-After was honoured without sitting it out)."""
    from slack_sdk.http_retry import builtin_handlers, handler

    from chalicelib.actions.forward import common as forward_common

    w = Waits()
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.001)
    monkeypatch.setattr(builtin_handlers, "time", _SlackClock(w.slack))
    monkeypatch.setattr(handler, "time", _SlackClock(w.slack))
    monkeypatch.setattr(forward_common, "sleep", w.forward.append)
    return w


@pytest.fixture
def slack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    """The local Slack Web API endpoint, accepting the token the account's secret holds."""
    secret = aws.secretsmanager.get_secret_value(SecretId="sluice/slack-bot-token")
    with SlackServer(json.loads(secret["SecretString"])["token"]) as server:
        monkeypatch.setenv("SLUICE_SLACK_API_URL", server.url)
        yield server


@pytest.fixture
def make_runtime(aws: Any, slack: SlackServer) -> Callable[[], Any]:
    """`make_runtime()`: a cold Runtime over the account (what Lambda starts after a kill),
    its Slack client bounded to SLACK_TIMEOUT_S per request."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    def make() -> Any:
        rt = Runtime(Settings.from_env(), Clients())
        connection(rt.services).client().timeout = SLACK_TIMEOUT_S
        return rt

    return make


@pytest.fixture
def runtime(make_runtime: Callable[[], Any]) -> Any:
    return make_runtime()


@pytest.fixture
def faults(runtime: Any) -> Faults:
    """Faults on `runtime`'s clients (a runtime made later starts healthy)."""
    return Faults(runtime.clients)


@pytest.fixture
def readback(aws: Any, slack: SlackServer) -> Readback:
    return Readback(aws, slack)


@pytest.fixture
def pager(aws: Any, readback: Readback) -> str:
    """An SQS queue subscribed to the ops-pager topic: what SNS delivered, read back."""
    url = aws.sqs.create_queue(QueueName="pager-inbox")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.sns.subscribe(TopicArn=aws.topic_arn, Protocol="sqs", Endpoint=arn)
    readback.pager_queue_url = url
    return url


@pytest.fixture
def forward_stream(aws: Any, readback: Readback) -> str:
    """The Kinesis stream the `fan-out` rule forwards to, read back shard by shard."""
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName=FORWARD_STREAM, ShardCount=1)
    aws.kinesis = kinesis
    readback.stream = FORWARD_STREAM
    return FORWARD_STREAM


@dataclass
class Context:
    """The attributes of Lambda's context object Sluice reads. Lambda's asynchronous
    retries of an invocation keep its aws_request_id; stream and queue retries get a new one."""

    aws_request_id: str = "fa017000-0000-4000-8000-000000000001"
    function_name: str = "sluice-dev-cloudwatch_logs"
    remaining_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def context() -> Callable[..., Context]:
    """`context(request_id=..., function_name=...)`: Lambda's context for one invocation."""
    return Context


@pytest.fixture
def kinesis_ctx(context: Callable[..., Context]) -> Callable[[str], Context]:
    """`kinesis_ctx(request_id)`: the context of one kinesis_records invocation."""

    def make(request_id: str) -> Context:
        return context(aws_request_id=request_id, function_name="sluice-dev-kinesis_records")

    return make


@pytest.fixture
def lambda_async() -> Callable[..., Any]:
    """`lambda_async(handler, event, ctx, rt, between=...)`: an asynchronous invocation as
    Lambda makes it (CloudWatch Logs subscriptions invoke this way): if the handler raises,
    it is invoked again with the same event and the same request id, twice at most;
    `between()` runs before each retry (a service recovering). Returns the answers."""

    def run(
        handler: Callable[..., Any],
        event: Any,
        ctx: Any,
        rt: Any,
        *,
        between: Callable[[], Any] | None = None,
    ) -> list[Any]:
        answers: list[Any] = []
        for attempt in range(3):
            if attempt and between is not None:
                between()
            try:
                answers.append(handler(event, ctx, rt))
                return answers
            except Exception as e:  # the invocation failed: Lambda retries it
                answers.append(e)
        return answers

    return run


@pytest.fixture
def settle(request: pytest.FixtureRequest, readback: Readback) -> Callable[[Inputs], Figures]:
    """`settle(inputs)`: read everything back, record the figures for the summary, and
    assert the ledger invariant: nothing lost, nothing duplicated, nothing unexplained."""

    def run(inputs: Inputs) -> Figures:
        figures = readback.settle(inputs)
        request.node.user_properties.append(("faults", figures.as_dict()))
        assert figures.ok(), figures.explain()
        assert figures.events_in == figures.archived + figures.dropped + figures.dead_lettered
        return figures

    return run
