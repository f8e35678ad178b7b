"""The local stack's Kinesis and S3 sources: real-shaped events, exactly once, retries as AWS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import click
import pytest
from click.testing import CliRunner

from chalicelib.actions.archive import read_lines
from chalicelib.sources import s3 as s3_source
from sluice_cli import simulate
from sluice_cli.local import LocalStack
from sluice_cli.poller import LambdaContext
from sluice_cli.sources_local import (
    BucketWatcher,
    KinesisPoller,
    QueuePoller,
    s3_notification,
    wire_sequence,
)

pytestmark = pytest.mark.functional

STREAM = "fan-in"
BUCKET = "app-logs"
SINGLE_LINE = ["--profile", "frontend", "--profile", "payments", "--profile", "billing"]


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """A local stack delivering a two-shard stream and a watched bucket, retrying at once."""
    with LocalStack(
        poll_interval_s=0.05,
        kinesis_streams=[STREAM],
        kinesis_shards=2,
        watch_buckets=[BUCKET],
        retry_pause_s=0.01,
        object_retry_s=0,
    ) as s:
        yield s


def archived(stack: LocalStack) -> list[dict[str, Any]]:
    s3 = stack.clients.get("s3")
    bucket = stack.names.archive_bucket
    out: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="archive/"):
        for obj in page.get("Contents", []):
            out += read_lines(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    return out


def simulate_into(stack: LocalStack, *args: str) -> str:
    result = CliRunner().invoke(
        simulate.simulate, [*args, "--rate", "20000/s", "--no-progress"], env=stack.aws_env
    )
    assert result.exit_code == 0, result.output
    return result.stderr


def assert_balanced(results: list[dict[str, Any]]) -> None:
    assert results
    for r in results:
        assert r["received"] == r["archived"] + r["dropped"] + r["dead_lettered"], r
        assert r["lost"] == 0 and not r["batchItemFailures"], r


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("kpl", [False, True], ids=["records", "KPL aggregates"])
def test_simulated_kinesis_records_are_archived_exactly_once(stack: LocalStack, kpl: bool) -> None:
    """What the simulator puts into a stream reaches the archive once per line, through both
    shards, KPL aggregates de-aggregated, with every invocation's ledger balanced."""
    assert stack.kinesis is not None
    stderr = simulate_into(
        stack, "--target", "kinesis", "--stream", STREAM, *(["--kpl"] if kpl else []),
        *SINGLE_LINE, "--count", "600", "--seed", "4",
    )  # fmt: skip

    stack.kinesis.wait_received(600, timeout=10)

    lines = archived(stack)
    assert len(lines) == 600
    assert all(n == 1 for n in Counter(ln["id"] for ln in lines).values())
    assert {ln["source"]["kind"] for ln in lines} == {"kinesis"}
    assert {ln["tag"] for ln in lines} == {f"kinesis.{STREAM}"}
    assert_balanced(stack.kinesis.results())
    assert sum(r["received"] for r in stack.kinesis.results()) == 600
    if kpl:
        records = int(re.search(r"(\d+) records", stderr)[1])  # type: ignore[index]
        assert records <= 20
        assert all("subsequence" in ln["source"] for ln in lines)
        # Each user record keeps its own partition key (the host) inside the aggregate.
        assert {ln["source"]["partition_key"] for ln in lines} == {
            "web-1", "web-2", "web-3", "payments-1", "payments-2", "billing-1",
        }  # fmt: skip
    else:
        assert len({ln["source"]["shard"] for ln in lines}) == 2


def test_simulated_s3_objects_are_archived_exactly_once(stack: LocalStack) -> None:
    """Objects the simulator uploads (gzip, every format) are announced through the objects
    queue, read once line by line into the archive, and a repeated notification changes nothing."""
    assert stack.objects is not None
    stderr = simulate_into(
        stack, "--target", "s3", "--bucket", BUCKET, "--gzip", "--count", "500", "--seed", "9"
    )
    written = int(re.search(r"written to s3: 500 events, (\d+) lines", stderr)[1])  # type: ignore[index]
    s3 = stack.clients.get("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    events = written  # each line an event (a CSV object's header is not among the lines)

    stack.objects.wait_received(events, timeout=10)
    lines = archived(stack)
    assert len(lines) == events
    assert all(n == 1 for n in Counter(ln["id"] for ln in lines).values())
    assert {ln["source"]["key"] for ln in lines} == set(keys)
    assert {ln["tag"] for ln in lines} == {f"s3.{BUCKET}.{k.split('/')[0]}" for k in keys}
    results = stack.objects.results()
    assert_balanced(results)

    # S3 notifications are at-least-once: a second one for an object is a no-op.
    sqs = stack.clients.get("sqs")
    assert stack.resources is not None
    delivered = stack.objects.delivered
    for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
        note = s3_notification(
            BUCKET, obj["Key"], obj["Size"], obj["ETag"], obj["LastModified"], "0A"
        )
        sqs.send_message(QueueUrl=stack.resources.objects_queue_url, MessageBody=json.dumps(note))
    stack.objects.wait_delivered(delivered + len(keys), timeout=10)
    assert len(archived(stack)) == events
    skipped = [o for r in stack.objects.results()[len(results) :] for o in r["objects"]]
    assert {o.get("skipped") for o in skipped} == {"already processed (re-delivery)"}


def test_local_up_creates_and_watches_a_stream_and_a_bucket() -> None:
    """`sluice local up --kinesis-stream --watch-bucket` prints the objects queue and delivers a
    record and an object written from another process; SIGINT stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    env.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING")
    code = "from sluice_cli.main import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "local", "up", "--port", "0", "--slack-port", "0",
         "--kinesis-stream", "clicks", "--watch-bucket", "uploads"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    for pipe, q in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=lambda p=pipe, q=q: [q.put(ln) for ln in p], daemon=True).start()
    try:
        exported: dict[str, str] = {}
        while "SLUICE_STATE_TABLE" not in exported:
            k, _, v = out.get(timeout=20).removeprefix("export ").strip().partition("=")
            exported[k] = v
        assert exported["SLUICE_OBJECTS_QUEUE_URL"].endswith("/sluice-objects")
        kw = {
            "endpoint_url": exported["AWS_ENDPOINT_URL"],
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        boto3.client("kinesis", **kw).put_record(
            StreamName="clicks", Data=b'{"message": "clicked"}', PartitionKey="web-1"
        )
        boto3.client("s3", **kw).put_object(Bucket="uploads", Key="app/x.log", Body=b"a\nb\n")
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            any(ln.startswith("kinesis clicks shardId-") and "archived=1" in ln for ln in seen)
            and any(ln.startswith("sqs sluice-objects") and "archived=2" in ln for ln in seen)
        ):
            seen.append(err.get(timeout=15))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any("delivering Kinesis records of clicks" in ln for ln in seen), seen
    assert any("archived=2" in ln for ln in seen), seen


def test_bootstrap_makes_the_objects_queue_with_its_dead_letter_queue(stack: LocalStack) -> None:
    """The objects queue has infra/'s visibility timeout and a redrive after 5 receives, and the
    functions' environment names it."""
    assert stack.resources is not None
    sqs = stack.clients.get("sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=stack.resources.objects_queue_url, AttributeNames=["All"]
    )

    assert attrs["Attributes"]["VisibilityTimeout"] == "1800"
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"].endswith(":sluice-local-objects-dlq")
    assert stack.env["SLUICE_OBJECTS_QUEUE_URL"] == stack.resources.objects_queue_url


def test_the_archive_bucket_cannot_be_watched(stack: LocalStack) -> None:
    """Watching the archive would feed s3_objects its own output: refused."""
    with pytest.raises(click.ClickException, match="archive bucket"):
        stack.watch_bucket(stack.names.archive_bucket)


# ---------------------------------------------------------------- Kinesis semantics
class Capture:
    """A handler stand-in: records every event; `answer(records)` decides the response."""

    def __init__(self, answer: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer or (lambda recs: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.events.append(event)
        return dict(self.answer(event["Records"]))

    def payloads(self, i: int) -> list[str]:
        return [base64.b64decode(r["kinesis"]["data"]).decode() for r in self.events[i]["Records"]]


def stream_with(stack: LocalStack, name: str, n: int) -> Any:
    kinesis = stack.clients.get("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    for i in range(0, n, 500):
        kinesis.put_records(
            StreamName=name,
            Records=[
                {"Data": f"r{j}".encode(), "PartitionKey": f"pk{j}"}
                for j in range(i, min(n, i + 500))
            ],
        )
    return kinesis


def test_kinesis_events_are_real_shaped_in_batches_of_at_most_100(stack: LocalStack) -> None:
    """Records reach the handler in order, 100 at most per call, shaped as Lambda sends them."""
    kinesis = stream_with(stack, "shape", 250)
    capture = Capture()
    poller = KinesisPoller(kinesis, capture)
    arn = poller.watch("shape")

    assert poller.poll() == 250
    assert poller.poll() == 0

    assert [len(e["Records"]) for e in capture.events] == [100, 100, 50]
    assert [p for i in range(3) for p in capture.payloads(i)] == [f"r{j}" for j in range(250)]
    rec = capture.events[0]["Records"][0]
    k = rec["kinesis"]
    assert {key: rec[key] for key in ("eventSource", "eventVersion", "eventName", "awsRegion")} == {
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-1",
    }
    assert rec["eventSourceARN"] == arn == "arn:aws:kinesis:us-east-1:123456789012:stream/shape"
    assert rec["eventID"] == f"shardId-000000000000:{k['sequenceNumber']}"
    seqs = [r["kinesis"]["sequenceNumber"] for e in capture.events for r in e["Records"]]
    assert all(len(s) == 56 and s.isdigit() for s in seqs)  # as Kinesis numbers them
    assert seqs == sorted(seqs) and len(set(seqs)) == 250
    other = wire_sequence(arn, "shardId-000000000001", "1")
    assert other != wire_sequence(arn, "shardId-000000000000", "1")  # unique across shards
    assert (k["partitionKey"], k["kinesisSchemaVersion"]) == ("pk0", "1.0")
    assert abs(k["approximateArrivalTimestamp"] - time.time()) < 60


def test_kinesis_retries_from_the_lowest_failed_record(stack: LocalStack) -> None:
    """Failed records are delivered again from the lowest one on; those before it are not."""
    kinesis = stream_with(stack, "partial", 60)
    failed_once: set[str] = set()

    def answer(recs: list[dict[str, Any]]) -> dict[str, Any]:
        by_data = {base64.b64decode(r["kinesis"]["data"]).decode(): r for r in recs}
        fail = [d for d in ("r40", "r25") if d in by_data and d not in failed_once]
        failed_once.update(fail)
        seqs = [by_data[d]["kinesis"]["sequenceNumber"] for d in fail]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}

    capture = Capture(answer)
    poller = KinesisPoller(kinesis, capture, retry_pause_s=0)
    poller.watch("partial")

    poller.poll()

    assert [e[0] for e in map(capture.payloads, range(len(capture.events)))] == ["r0", "r25"]
    assert capture.payloads(1) == [f"r{j}" for j in range(25, 60)]


def test_an_unknown_item_identifier_fails_the_whole_batch(stack: LocalStack) -> None:
    """An itemIdentifier that is not in the batch makes Lambda retry the whole batch."""
    kinesis = stream_with(stack, "unknown", 5)
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "nope"}]}])
    capture = Capture(lambda recs: next(answers, {"batchItemFailures": []}))
    poller = KinesisPoller(kinesis, capture, retry_pause_s=0)
    poller.watch("unknown")

    poller.poll()

    assert [capture.payloads(i) for i in range(2)] == [[f"r{j}" for j in range(5)]] * 2


def test_a_crashing_record_is_isolated_by_halving_then_sent_to_on_failure(
    stack: LocalStack,
) -> None:
    """A batch that makes the function raise is halved until the bad record is alone; after
    the retries it goes to the on-failure destination and the shard moves on."""
    kinesis = stream_with(stack, "poison", 8)

    def answer(recs: list[dict[str, Any]]) -> dict[str, Any]:
        if any(base64.b64decode(r["kinesis"]["data"]) == b"r5" for r in recs):
            raise RuntimeError("cannot handle r5")
        return {"batchItemFailures": []}

    failures: list[dict[str, Any]] = []
    capture = Capture(answer)
    poller = KinesisPoller(
        kinesis, capture, max_retries=3, retry_pause_s=0, on_failure=failures.append
    )
    poller.watch("poison")

    poller.poll()

    sizes = [len(e["Records"]) for e in capture.events]
    # r0-7 fails; r0-3 passes; r4-7 and r4-5 fail; r4 passes; r5 fails 4 times and is
    # given up; r6 and r7 pass, still one by one until the shard is past the failed r0-7.
    assert sizes == [8, 4, 4, 2, 1, 1, 1, 1, 1, 1, 1]
    [failure] = failures
    info = failure["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert (
        info["startSequenceNumber"] == capture.events[5]["Records"][0]["kinesis"]["sequenceNumber"]
    )
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert [o.error is not None for o in poller.outcomes].count(True) == 7
    assert capture.payloads(len(capture.events) - 1) == ["r7"]


# ---------------------------------------------------------------- S3 and SQS semantics
def test_s3_notifications_are_real_shaped(stack: LocalStack) -> None:
    """New objects become S3 notification records with URL-encoded keys, size, ETag and a
    growing sequencer; objects already there and unchanged rewrites are not announced."""
    s3, sqs = stack.clients.get("s3"), stack.clients.get("sqs")
    url = sqs.create_queue(QueueName="notified")["QueueUrl"]
    s3.create_bucket(Bucket="shapes")
    s3.put_object(Bucket="shapes", Key="old.log", Body=b"before the watch\n")
    watcher = BucketWatcher(s3, sqs, url)
    watcher.watch("shapes")
    key = "logs/a b/x=1+2.log"

    s3.put_object(Bucket="shapes", Key=key, Body=b"one\n")
    assert watcher.poll() == 1
    s3.put_object(Bucket="shapes", Key=key, Body=b"one\n")  # same content, same ETag
    assert watcher.poll() == 0
    s3.put_object(Bucket="shapes", Key=key, Body=b"two!\n")
    assert watcher.poll() == 1

    bodies = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies[0] == {**bodies[0], "Event": "s3:TestEvent", "Bucket": "shapes"}
    records = [b["Records"][0] for b in bodies[1:]]
    for rec, body in zip(records, (b"one\n", b"two!\n"), strict=True):
        assert {k: rec[k] for k in ("eventVersion", "eventSource", "eventName")} == {
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        }  # fmt: skip
        assert {"userIdentity", "requestParameters", "responseElements", "eventTime"} <= set(rec)
        assert rec["s3"]["bucket"] == {
            "name": "shapes",
            "ownerIdentity": rec["s3"]["bucket"]["ownerIdentity"],
            "arn": "arn:aws:s3:::shapes",
        }
        obj = rec["s3"]["object"]
        assert obj["key"] == "logs/a+b/x%3D1%2B2.log"
        assert (obj["size"], obj["eTag"]) == (len(body), hashlib.md5(body).hexdigest())
        [ref] = s3_source.parse_sqs_body(json.dumps({"Records": [rec]}))
        assert isinstance(ref, s3_source.ObjectRef) and ref.key == key
    assert records[0]["s3"]["object"]["sequencer"] < records[1]["s3"]["object"]["sequencer"]


def test_failed_messages_come_back_and_the_others_are_deleted(stack: LocalStack) -> None:
    """Messages the handler reports failed are received again; the rest leave the queue."""
    sqs = stack.clients.get("sqs")
    url = sqs.create_queue(QueueName="partial")["QueueUrl"]
    for body in ("m1", "m2", "m3"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    failed_once: set[str] = set()

    def answer(recs: list[dict[str, Any]]) -> dict[str, Any]:
        fail = [r["messageId"] for r in recs if r["body"] == "m2" and "m2" not in failed_once]
        failed_once.update("m2" for _ in fail)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in fail]}

    capture = Capture(answer)
    poller = QueuePoller(sqs, url, capture, retry_visibility_s=0)

    poller.poll()

    assert [sorted(r["body"] for r in e["Records"]) for e in capture.events] == [
        ["m1", "m2", "m3"],
        ["m2"],
    ]
    again = capture.events[1]["Records"][0]
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert (again["eventSource"], again["eventSourceARN"]) == (
        "aws:sqs",
        "arn:aws:sqs:us-east-1:123456789012:partial",
    )
    assert again["md5OfBody"] == hashlib.md5(b"m2").hexdigest()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_a_message_that_always_fails_moves_to_the_dead_letter_queue(stack: LocalStack) -> None:
    """A message whose every delivery fails is received maxReceiveCount times, then SQS moves
    it to the queue's dead-letter queue."""
    sqs = stack.clients.get("sqs")
    dlq = sqs.create_queue(QueueName="poison-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(QueueName="poison", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="never works")

    def crash(recs: list[dict[str, Any]]) -> dict[str, Any]:
        raise RuntimeError("handler crashed")

    capture = Capture(crash)
    poller = QueuePoller(sqs, url, capture, retry_visibility_s=0)

    for _ in range(5):
        poller.poll()

    assert len(capture.events) == 3
    assert all(o.error == "RuntimeError: handler crashed" for o in poller.outcomes)
    [moved] = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert moved["Body"] == "never works"
