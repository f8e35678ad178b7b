"""forward to Kinesis Data Streams and Firehose, against moto.

Per-record failures are injected with botocore event hooks on the action's own
client: `before-parameter-build` sees the records, `before-call` answers with a
partial failure after really putting the records that "succeeded" into moto, so
the stream ends up holding each record exactly once, as AWS would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.actions.context import Delivery
from chalicelib.actions.forward import ForwardAction, common
from chalicelib.errors import ActionError
from chalicelib.event import LogEvent
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Pipeline

from .factories import log_event, log_events

REGION = "us-east-1"
STREAM = "app-logs"
DELIVERY = "logs-to-s3"
FIREHOSE_BUCKET = "firehose-dest"
MIB = 1024 * 1024
INV = Invocation(request_id="inv-fwd-1", function_name="cloudwatch_logs", account="123456789012")

Plan = list[Callable[[bytes], str | None]]


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps are recorded, not slept."""
    slept: list[float] = []
    monkeypatch.setattr(common, "sleep", slept.append)
    return slept


@pytest.fixture
def kinesis(aws: Any) -> Any:
    client = boto3.client("kinesis", region_name=REGION)
    client.create_stream(StreamName=STREAM, ShardCount=2)
    return client


@pytest.fixture
def firehose(aws: Any) -> Any:
    aws.s3.create_bucket(Bucket=FIREHOSE_BUCKET)
    client = boto3.client("firehose", region_name=REGION)
    client.create_delivery_stream(
        DeliveryStreamName=DELIVERY,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-delivery",
            "BucketARN": f"arn:aws:s3:::{FIREHOSE_BUCKET}",
        },
    )
    return client


def read_stream(client: Any, name: str = STREAM) -> list[dict[str, Any]]:
    out = []
    for shard in client.list_shards(StreamName=name)["Shards"]:
        it = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out.extend(client.get_records(ShardIterator=it, Limit=10_000)["Records"])
    return out


def read_firehose_lines(s3: Any) -> list[bytes]:
    lines: list[bytes] = []
    for obj in s3.list_objects_v2(Bucket=FIREHOSE_BUCKET).get("Contents", []):
        body = s3.get_object(Bucket=FIREHOSE_BUCKET, Key=obj["Key"])["Body"].read()
        assert body.endswith(b"\n"), "every Firehose record is newline-terminated"
        lines.extend(body.splitlines())
    return lines


def action(runtime: Any, **opts: Any) -> ForwardAction:
    return ForwardAction("fwd", opts, runtime.services)


class Calls:
    """Requests one client made for an operation, with optional scripted partial failures."""

    def __init__(
        self, client: Any, operation: str, plan: Plan | None = None, store: bool = True
    ) -> None:
        self.client = client
        self.operation = operation
        self.plan = plan or []
        self.store = store  # False: answer success without moto (megabytes are slow there)
        self.requests: list[list[bytes]] = []
        self._params: dict[str, Any] = {}
        service = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        events.register(f"before-parameter-build.{service}.{operation}", self._capture)
        events.register(f"before-call.{service}.{operation}", self._answer)
        # A hook-free client on the same moto backend, for the records that "succeed".
        self.real = boto3.client(client.meta.service_model.service_name, region_name=REGION)

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        records = self._params["Records"]
        self.requests.append([r["Data"] for r in records])
        n = len(self.requests) - 1
        if n >= len(self.plan) and self.store:
            return None  # really call moto
        step = self.plan[n] if n < len(self.plan) else (lambda _: None)
        codes = [step(r["Data"]) for r in records]
        ok = [r for r, c in zip(records, codes, strict=True) if c is None]
        kinesis = self.operation == "PutRecords"
        if ok and self.store:
            call = self.real.put_records if kinesis else self.real.put_record_batch
            call(**{**self._params, "Records": ok})
        results = [
            (
                {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
                if kinesis
                else {"RecordId": "r"}
            )
            if c is None
            else {"ErrorCode": c, "ErrorMessage": "injected"}
            for c in codes
        ]
        failed = sum(c is not None for c in codes)
        parsed = (
            {"FailedRecordCount": failed, "Records": results}
            if kinesis
            else {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": results}
        )
        return AWSResponse("https://mock", 200, {}, None), parsed


def failing(ids: set[str], code: str) -> Callable[[bytes], str | None]:
    """A plan step: records of these event ids fail with `code`."""
    return lambda data: code if json.loads(data)["id"] in ids else None


def sized_event(total: int, i: int, key_len: int) -> LogEvent:
    """An event whose envelope plus a `key_len`-byte partition key is exactly `total` bytes."""
    ev = log_event("", id=f"big-{i:03d}")
    base = len(common.envelopes([ev])[0][0][1])
    ev.record["message"] = "x" * (total - base - key_len)
    return ev


# ---------------------------------------------------------------- Kinesis
def test_kinesis_records_are_envelopes_with_tag_partition_keys(runtime, kinesis):
    """Each event lands in the stream once, as its archive envelope, keyed by its tag."""
    events = log_events(3) + log_events(2, tag="ecs.web", message="web {i}", time=1)
    for i, ev in enumerate(events):
        ev.id = f"ev-{i}"
    sent = action(runtime, to="kinesis", stream=STREAM).deliver(Delivery(events, INV))
    assert sent == 5
    records = read_stream(kinesis)
    by_id = {json.loads(r["Data"])["id"]: r for r in records}
    assert sorted(by_id) == [f"ev-{i}" for i in range(5)]
    for ev in events:
        rec = by_id[ev.id]
        assert rec["PartitionKey"] == ev.tag
        assert json.loads(rec["Data"]) == json.loads(json.dumps(ev.envelope()))
        assert not rec["Data"].endswith(b"\n")


def test_kinesis_stream_arn_and_partition_key_template(runtime, kinesis):
    """A stream ARN is accepted and the partition key renders record fields."""
    arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    events = [log_event("a", user="ann", id="e1"), log_event("b", id="e2")]
    action(runtime, to="kinesis", stream=arn, partition_key="{tag}/{user}").deliver(
        Delivery(events, INV)
    )
    keys = {json.loads(r["Data"])["id"]: r["PartitionKey"] for r in read_stream(kinesis)}
    assert keys == {"e1": "aws.lambda.checkout-api/ann", "e2": "aws.lambda.checkout-api/-"}


def test_kinesis_501_records_take_two_requests(runtime, kinesis):
    """PutRecords takes at most 500 records, so 501 events make requests of 500 and 1."""
    act = action(runtime, to="kinesis", stream=STREAM)
    calls = Calls(runtime.clients.get("kinesis"), "PutRecords")
    assert act.deliver(Delivery(log_events(501), INV)) == 501
    assert [len(r) for r in calls.requests] == [500, 1]
    assert len(read_stream(kinesis)) == 501


def test_kinesis_five_mib_request_boundary(runtime, kinesis):
    """Records totalling exactly 5 MiB share one request; one byte more starts a second."""
    key = "aws.lambda.checkout-api"
    four = [sized_event(MIB, i, len(key)) for i in range(4)]  # 1 MiB each, keys included
    small = 1000
    act = action(runtime, to="kinesis", stream=STREAM)
    calls = Calls(runtime.clients.get("kinesis"), "PutRecords", store=False)
    exact = [*four, sized_event(MIB - small, 4, len(key)), sized_event(small, 5, len(key))]
    assert act.deliver(Delivery(exact, INV)) == 6
    assert [len(r) for r in calls.requests] == [6]
    calls.requests.clear()
    over = [*four, sized_event(MIB - small + 1, 4, len(key)), sized_event(small, 5, len(key))]
    assert act.deliver(Delivery(over, INV)) == 6
    assert [len(r) for r in calls.requests] == [5, 1]


def test_kinesis_oversized_record_is_not_sent_and_reported(runtime, kinesis):
    """A record over 1 MiB (key included) is never sent; the others are, and it alone fails."""
    key = "aws.lambda.checkout-api"
    big = sized_event(MIB + 1, 1, len(key))
    small = log_events(3)
    with pytest.raises(ActionError) as info:
        action(runtime, to="kinesis", stream=STREAM).deliver(
            Delivery([small[0], big, *small[1:]], INV)
        )
    assert info.value.failed == [big]
    assert info.value.retryable is False
    assert "1,048,577 bytes over the Kinesis limit of 1,048,576 (not sent)" in info.value.reason
    assert info.value.sent == 3
    assert len(read_stream(kinesis)) == 3


def test_kinesis_retries_only_failed_records(runtime, kinesis, waits):
    """Throttled and internally failed records are retried alone after a backoff, then land."""
    events = log_events(6)
    plan: Plan = [
        failing({"ev-000001", "ev-000004"}, "ProvisionedThroughputExceededException"),
        failing({"ev-000004"}, "InternalFailure"),
    ]
    act = action(runtime, to="kinesis", stream=STREAM)
    calls = Calls(runtime.clients.get("kinesis"), "PutRecords", plan)
    assert act.deliver(Delivery(events, INV)) == 6
    sent_ids = [[json.loads(d)["id"] for d in req] for req in calls.requests]
    assert sent_ids == [[e.id for e in events], ["ev-000001", "ev-000004"], ["ev-000004"]]
    assert len(waits) == 2
    assert all(0 <= w <= common.BACKOFF_CAP_S for w in waits)
    assert sorted(json.loads(r["Data"])["id"] for r in read_stream(kinesis)) == [
        e.id for e in events
    ]


def test_kinesis_records_failing_every_attempt_are_dead_lettered_alone(
    runtime, kinesis, apply_rules, dlq, archive
):
    """After max_retries, only the still-failing records reach the DLQ; the ledger balances."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "to-kinesis",
                    "actions": [{"forward": {"to": "kinesis", "stream": STREAM, "max_retries": 2}}],
                }
            ]
        }
    )
    events = log_events(4)
    stuck = failing({"ev-000002"}, "ProvisionedThroughputExceededException")
    calls = Calls(runtime.clients.get("kinesis"), "PutRecords", [stuck, stuck, stuck, stuck])
    ledger = Pipeline(runtime).process(events, INV)
    assert len(calls.requests) == 3  # the first attempt and max_retries=2 retries
    assert ledger.balanced() and ledger.archived == 4 and ledger.actions_failed == 1
    (msg,) = dlq.messages()
    assert (msg["action"], msg["rule"], msg["count"]) == ("forward", "to-kinesis", 1)
    assert [e["id"] for e in msg["events"]] == ["ev-000002"]
    assert "ProvisionedThroughputExceededException after 3 attempts" in msg["reason"]
    assert len(read_stream(kinesis)) == 3


def test_kinesis_retries_stop_when_the_invocation_runs_out_of_time(runtime, kinesis, waits):
    """With less than the reserve left, failed records are reported at once, retryable."""
    inv = Invocation(request_id="late", remaining_ms=lambda: common.RESERVE_MS - 1)
    stuck = failing({"ev-000000"}, "InternalFailure")
    Calls(runtime.clients.get("kinesis"), "PutRecords", [stuck] * 5)
    with pytest.raises(ActionError) as info:
        action(runtime, to="kinesis", stream=STREAM).deliver(Delivery(log_events(2), inv))
    assert [e.id for e in info.value.failed] == ["ev-000000"]
    assert info.value.retryable is True
    assert "invocation time running out" in info.value.reason
    assert waits == []


def test_kinesis_missing_stream_fails_every_event_without_retry(runtime, aws, waits):
    """A refused request (no such stream) is not retried; every event is reported failed."""
    events = log_events(3)
    with pytest.raises(ActionError) as info:
        action(runtime, to="kinesis", stream="no-such-stream").deliver(Delivery(events, INV))
    assert info.value.failed == events
    assert info.value.retryable is False
    assert "ResourceNotFoundException" in info.value.reason
    assert waits == []


# ---------------------------------------------------------------- Firehose
def test_firehose_records_are_newline_terminated_envelopes(runtime, firehose, aws):
    """Firehose receives one JSON line per event, readable back from its S3 destination."""
    events = log_events(4)
    assert (
        action(runtime, to="firehose", delivery_stream=DELIVERY).deliver(Delivery(events, INV)) == 4
    )
    lines = read_firehose_lines(aws.s3)
    assert [json.loads(x) for x in lines] == [json.loads(json.dumps(e.envelope())) for e in events]


def test_firehose_limits_500_records_and_4_mib(runtime, firehose):
    """PutRecordBatch requests hold at most 500 records and 4 MiB."""
    act = action(runtime, to="firehose", delivery_stream=DELIVERY)
    calls = Calls(runtime.clients.get("firehose"), "PutRecordBatch", store=False)
    act.deliver(Delivery(log_events(501), INV))
    assert [len(r) for r in calls.requests] == [500, 1]
    calls.requests.clear()
    # Five records of 1,000,000 bytes (newline included): 4 fit in 4 MiB, the fifth does not.
    big = [sized_event(999_999, i, 0) for i in range(5)]
    act.deliver(Delivery(big, INV))
    assert [len(r) for r in calls.requests] == [4, 1]
    assert all(sum(map(len, r)) <= 4 * MIB for r in calls.requests)


def test_firehose_oversized_record_is_not_sent(runtime, firehose):
    """A record over 1,000 KiB is reported failed, not sent."""
    big = sized_event(1_024_000, 1, 0)  # plus its newline: 1,024,001 bytes
    with pytest.raises(ActionError) as info:
        action(runtime, to="firehose", delivery_stream=DELIVERY).deliver(
            Delivery([big, log_event()], INV)
        )
    assert info.value.failed == [big]
    assert "over the Firehose limit of 1,024,000" in info.value.reason


def test_firehose_retries_failed_put_count_records_only(runtime, firehose, aws, waits):
    """Records with an ErrorCode in RequestResponses are resent alone; all land once."""
    events = log_events(5)
    plan: Plan = [failing({"ev-000000", "ev-000003"}, "ServiceUnavailableException")]
    calls = Calls(runtime.clients.get("firehose"), "PutRecordBatch", plan)
    assert (
        action(runtime, to="firehose", delivery_stream=DELIVERY).deliver(Delivery(events, INV)) == 5
    )
    assert [len(r) for r in calls.requests] == [5, 2]
    ids = sorted(json.loads(x)["id"] for x in read_firehose_lines(aws.s3))
    assert ids == [e.id for e in events]
    assert len(waits) == 1


# ---------------------------------------------------------------- end to end
def test_cloudwatch_payload_forwarded_to_kinesis(
    runtime, kinesis, apply_rules, invoke, load_event, archive
):
    """A rule's forward action sends every event of a CloudWatch payload to the stream."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "all-to-kinesis",
                    "actions": [{"forward": {"to": "kinesis", "stream": STREAM}}],
                }
            ]
        }
    )
    result = invoke(load_event("cloudwatch_logs"))
    assert result["lost"] == 0 and result["dead_lettered"] == 0
    forwarded = sorted(json.loads(r["Data"])["id"] for r in read_stream(kinesis))
    assert forwarded == sorted(line["id"] for line in archive.lines())
    assert {r["PartitionKey"] for r in read_stream(kinesis)} == {"aws.lambda.checkout-api"}
