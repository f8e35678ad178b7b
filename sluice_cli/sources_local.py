"""Kinesis and S3 event sources, emulated for the local stack.

`KinesisPoller` plays Lambda's Kinesis event source mapping: it reads each
shard of the watched streams with GetShardIterator/GetRecords and calls the
`kinesis_records` handler with Lambda's event shape, at most BATCH_SIZE
records per call, in sequence order, honouring `batchItemFailures`.

S3 takes two legs, as in a deployment: `BucketWatcher` plays S3's event
notifications (new objects in watched buckets become notification messages in
the objects queue `sluice-objects`) and `QueuePoller` plays Lambda's SQS event
source mapping (messages of that queue go to `s3_objects` in batches of 10;
those it reports failed come back, the rest are deleted).

Why the watcher writes the notifications itself, checked against moto 5.2.5:
moto does send S3 -> SQS notifications (put_bucket_notification_configuration,
with the s3:TestEvent), but its records lack `sequencer`, `userIdentity`,
`requestParameters`, `responseElements` and the bucket's `ownerIdentity`. The
watcher lists the bucket (list_objects_v2), takes each (key, ETag) it has not
seen as a new object, and sends the record AWS documents, every field included.
The queue leg stays moto's own, so visibility, receive counts and the redrive to
the objects dead-letter queue after 5 receives are SQS's behaviour, not ours.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sluice_cli import payloads
from sluice_cli.poller import ACCOUNT, REGION, Deliver, LambdaContext, Outcome, Poller

# Lambda's Kinesis mapping: app.py asks for batch_size=100; infra/functions.yaml sets
# MaximumRetryAttempts: 10 and BisectBatchOnFunctionError.
BATCH_SIZE = 100
MAX_RETRIES = 10
# A synchronous invocation takes at most 6 MB; base64 grows data by 4/3, so ~4 MB of
# record data per batch leaves room for the envelope.
MAX_BATCH_BYTES = 4 * 1024 * 1024
# Longest pause between two attempts on one shard (backoff doubles up to it).
MAX_PAUSE_S = 2.0
# Function timeouts from .chalice/config.json, for the handlers' deadline checks.
KINESIS_TIMEOUT_MS = 300_000
S3_TIMEOUT_MS = 300_000
# Lambda's SQS mapping: app.py asks for batch_size=10 (SQS's largest receive).
SQS_BATCH = 10
# Receives per poll at most: a queue that refills as fast as it drains must not
# hold the poller in one pass forever.
MAX_RECEIVES_PER_POLL = 100


def _pause(base: float, attempt: int) -> float:
    return min(base * 2**attempt, MAX_PAUSE_S)


# ================================================================ Kinesis
def wire_sequence(stream_arn: str, shard: str, moto_seq: str) -> str:
    """A 56-digit sequence number, unique per stream and shard, ordered as moto's within one.

    "49" + 6 digits of the stream ARN's digest + the shard's index (6) + moto's
    counter (42), like the numbers Kinesis hands out (events/kinesis_records.json).
    """
    salt = int(hashlib.sha256(stream_arn.encode()).hexdigest()[:8], 16) % 1_000_000
    index = int(shard.rsplit("-", 1)[-1]) if shard.rsplit("-", 1)[-1].isdigit() else 0
    return f"49{salt:06d}{index % 1_000_000:06d}{int(moto_seq):042d}"


def kinesis_event_record(
    stream_arn: str, shard: str, rec: dict[str, Any], seq: str | None = None
) -> dict[str, Any]:
    """One GetRecords record as Lambda hands it over (events/kinesis_records.json)."""
    arrival = rec.get("ApproximateArrivalTimestamp")
    return payloads.kinesis_record(
        rec["Data"],
        sequence=seq or str(rec["SequenceNumber"]),
        partition_key=rec["PartitionKey"],
        arrival=arrival.timestamp() if arrival else time.time(),
        stream_arn=stream_arn,
        shard=shard,
        region=REGION,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/sluice-dev-kinesis_records",
    )


@dataclass(slots=True)
class _Shard:
    checkpoint: str | None = None  # last sequence number handled; None: from the start
    attempts: int = 0  # failed attempts at the current checkpoint
    limit: int = BATCH_SIZE  # halved after a function error (bisect)
    bisect_end: str | None = None  # the failed batch's last record: smaller reads until past it
    retry_at: float = 0.0  # monotonic time before which a failed shard waits


class KinesisPoller(Poller):
    """Delivers records put into watched Kinesis streams to `kinesis_records`.

    Per shard, a checkpoint (the last sequence number handled) is where the next
    read starts (AFTER_SEQUENCE_NUMBER, or TRIM_HORIZON for a stream watched from
    its creation). After a batch, the checkpoint moves to its last record, or,
    when the handler names failed records, to just before the lowest of them, so
    the next batch starts there, as Lambda does. An itemIdentifier that is not in
    the batch fails the whole batch (Lambda's rule too). A handler that raises is
    retried with half the batch, and smaller reads go on until the shard is past
    the batch that failed (BisectBatchOnFunctionError). After `max_retries`
    failed attempts at one position the batch is given up: a Lambda-shaped
    on-failure record goes to `on_failure` (the stack sends it to the dead-letter
    queue, infra/'s OnFailure destination) and the shard moves on.

    Sequence numbers: moto counts "1", "2", ... in every shard, where Kinesis
    hands out 56-digit numbers that differ across shards. The handler gets
    56-digit numbers (`wire_sequence`: a digest of the stream, the shard's index
    and moto's counter), so batches of two shards never look alike (the runtime
    derives archive keys from them); positions stay moto's own.
    """

    thread_name = "kinesis-poller"

    def __init__(
        self,
        kinesis: Any,
        deliver: Deliver,
        *,
        interval_s: float = 0.1,
        batch_size: int = BATCH_SIZE,
        max_retries: int = MAX_RETRIES,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        retry_pause_s: float = 0.2,
    ) -> None:
        super().__init__(interval_s=interval_s, on_outcome=on_outcome, retry_pause_s=retry_pause_s)
        self.kinesis = kinesis
        self.deliver = deliver
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.on_failure = on_failure
        self._streams: dict[str, str] = {}  # name -> ARN
        self._shards: dict[tuple[str, str], _Shard] = {}
        self._watch_lock = threading.Lock()

    def watch(self, stream: str, *, from_start: bool = True) -> str:
        """Deliver `stream` from now on; returns its ARN.

        `from_start`: everything the stream holds (a stream created for the
        stack); otherwise only records put after this call (Chalice's default
        starting position, LATEST).
        """
        arn = str(
            self.kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
                "StreamARN"
            ]
        )
        with self._poll_lock, self._watch_lock:
            if stream in self._streams:
                return arn
            if not from_start:
                for shard in self._shard_ids(stream):
                    self._shards[(stream, shard)] = _Shard(self._tip(stream, shard))
            self._streams[stream] = arn
        return arn

    @property
    def streams(self) -> list[str]:
        with self._watch_lock:
            return sorted(self._streams)

    def poll(self) -> int:
        """One pass over every shard of every watched stream; returns records delivered."""
        with self._poll_lock:
            with self._watch_lock:
                streams = dict(self._streams)
            n = 0
            for stream, arn in streams.items():
                for shard in self._shard_ids(stream):
                    n += self._poll_shard(stream, arn, shard)
            return n

    def _shard_ids(self, stream: str) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": stream}
        while True:
            page = self.kinesis.list_shards(**kwargs)
            out.extend(s["ShardId"] for s in page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return out
            kwargs = {"NextToken": token}

    def _iterator(self, stream: str, shard: str, state: _Shard) -> str:
        kwargs: dict[str, Any] = {"StreamName": stream, "ShardId": shard}
        if state.checkpoint is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = state.checkpoint
        return str(self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def _tip(self, stream: str, shard: str) -> str | None:
        """The shard's last sequence number (reading it to the end), None if empty."""
        it: str | None = self._iterator(stream, shard, _Shard())
        last = None
        while it:
            page = self.kinesis.get_records(ShardIterator=it, Limit=10_000)
            if not page.get("Records"):
                break
            last = str(page["Records"][-1]["SequenceNumber"])
            it = page.get("NextShardIterator")
        return last

    def _poll_shard(self, stream: str, arn: str, shard: str) -> int:
        state = self._shards.setdefault((stream, shard), _Shard())
        n = 0
        while not self._stop.is_set() and time.monotonic() >= state.retry_at:
            # A fresh iterator per batch: the checkpoint, not the iterator, is the
            # position, so a partial failure simply restarts from its record.
            page = self.kinesis.get_records(
                ShardIterator=self._iterator(stream, shard, state), Limit=state.limit
            )
            records = _cap_bytes(page.get("Records", []))
            if not records:
                return n
            n += self._deliver(stream, arn, shard, state, records)
        return n

    def _deliver(
        self, stream: str, arn: str, shard: str, state: _Shard, records: list[dict[str, Any]]
    ) -> int:
        seqs = [str(r["SequenceNumber"]) for r in records]
        wire = [wire_sequence(arn, shard, s) for s in seqs]
        event = {
            "Records": [
                kinesis_event_record(arn, shard, r, w) for r, w in zip(records, wire, strict=True)
            ]
        }
        ctx = LambdaContext.of("kinesis_records", KINESIS_TIMEOUT_MS)
        error: str | None = None
        result: dict[str, Any] | None = None
        try:
            result = self.deliver(event, ctx)
            to_moto = dict(zip(wire, seqs, strict=True))
            failed = [to_moto[w] for w in _failed_items(result, wire)]
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            failed = seqs
            state.limit = max(1, len(records) // 2)  # bisect: the bad record ends up alone
            if state.bisect_end is None or int(seqs[-1]) > int(state.bisect_end):
                state.bisect_end = seqs[-1]
        handled = seqs if not failed else seqs[: seqs.index(min(failed, key=int))]
        self._record(Outcome(stream, shard, len(records), result, error, source="kinesis"))
        if handled:
            state.checkpoint = handled[-1]
            state.attempts = 0
        if not failed:
            if state.bisect_end is None or int(seqs[-1]) >= int(state.bisect_end):
                state.limit, state.bisect_end = self.batch_size, None
            return len(records)
        state.attempts += 1
        if state.attempts > self.max_retries:
            # Retries exhausted: the batch goes to the on-failure destination, the shard moves on.
            if self.on_failure is not None:
                self.on_failure(
                    _failure_record(
                        arn, shard, records, wire, ctx, error is not None, state.attempts
                    )
                )
            state.checkpoint, state.attempts = seqs[-1], 0
            if state.bisect_end is None or int(seqs[-1]) >= int(state.bisect_end):
                state.limit, state.bisect_end = self.batch_size, None
            return len(records)
        # Retried on a later pass, so other shards and streams keep flowing meanwhile.
        state.retry_at = time.monotonic() + _pause(self.retry_pause_s, state.attempts - 1)
        return len(records)


def _cap_bytes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    size = 0
    for i, r in enumerate(records):
        size += len(r["Data"]) + len(r["PartitionKey"])
        if i and size > MAX_BATCH_BYTES:
            return records[:i]
    return records


def _failed_items(result: Any, seqs: list[str]) -> list[str]:
    """The batch's failed sequence numbers from a partial batch response."""
    items = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not items:
        return []
    ids = [i.get("itemIdentifier") if isinstance(i, dict) else None for i in items]
    if any(i not in seqs for i in ids):  # null, empty or unknown: the whole batch failed
        return seqs
    return [str(i) for i in ids]


def _failure_record(
    arn: str,
    shard: str,
    records: list[dict[str, Any]],
    wire: list[str],
    ctx: LambdaContext,
    raised: bool,
    attempts: int,
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination for a Kinesis batch it gave up on
    (Lambda developer guide, "Retaining records of asynchronous invocations")."""

    def arrival(r: dict[str, Any]) -> str:
        t = r.get("ApproximateArrivalTimestamp")
        return _iso(t.timestamp() if t else time.time())

    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if raised:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": ctx.aws_request_id,
            "functionArn": ctx.invoked_function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(time.time()),
        "KinesisBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": wire[0],
            "endSequenceNumber": wire[-1],
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": arn,
        },
    }


def _iso(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


# ================================================================ S3 -> SQS
def s3_notification(
    bucket: str, key: str, size: int, etag: str, modified: datetime, sequencer: str
) -> dict[str, Any]:
    """An S3 event notification as S3 sends it to SQS (events/s3_objects_sqs.json).

    Keys are URL-encoded the way S3 does it (spaces as `+`, `/` kept).
    """
    record = payloads.s3_record(
        bucket,
        key,
        size,
        etag,
        sequencer,
        event_time=_iso(modified.timestamp()),
        principal="AWS:AIDALOCALSIMULATOR",
        source_ip="127.0.0.1",
        request_id=uuid.uuid4().hex[:16].upper(),
        id_2=base64.b64encode(uuid.uuid4().bytes * 3).decode(),
        configuration_id="sluice-local",
        owner="A3LOCALOWNER",
        region=REGION,
    )
    return payloads.s3_notification(record)


class BucketWatcher:
    """New objects in watched buckets -> S3 notifications in a queue.

    An object is new when its (key, ETag) was not seen: a rewrite with other
    content is a new object, as S3 notifies it again. Objects already in a bucket
    when it is first watched are not announced (S3 notifies only what is created
    after its notification configuration), but an s3:TestEvent is, as S3 sends
    one when a configuration is saved.
    """

    def __init__(self, s3: Any, sqs: Any, queue_url: str) -> None:
        self.s3 = s3
        self.sqs = sqs
        self.queue_url = queue_url
        self._seen: dict[str, set[tuple[str, str]]] = {}
        self._sequence = 0
        self._lock = threading.Lock()

    def watch(self, bucket: str) -> None:
        with self._lock:
            if bucket in self._seen:
                return
            self._seen[bucket] = {(o["Key"], o["ETag"]) for o in self._list(bucket)}
        test = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": _iso(time.time())}
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps({**test, "Bucket": bucket})
        )

    @property
    def buckets(self) -> list[str]:
        with self._lock:
            return sorted(self._seen)

    def _list(self, bucket: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            out.extend(page.get("Contents", []))
        return out

    def poll(self) -> int:
        """Announce every new object; returns how many."""
        with self._lock:
            n = 0
            for bucket, seen in self._seen.items():
                fresh = [o for o in self._list(bucket) if (o["Key"], o["ETag"]) not in seen]
                fresh.sort(key=lambda o: (o["LastModified"], o["Key"]))
                for o in fresh:
                    self._sequence += 1
                    # Hex, fixed width, growing: S3's sequencer orders events of one key.
                    sequencer = f"{int(time.time() * 1000):012X}{self._sequence:06X}"
                    body = s3_notification(
                        bucket, o["Key"], o["Size"], o["ETag"], o["LastModified"], sequencer
                    )
                    self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))
                    seen.add((o["Key"], o["ETag"]))
                    n += 1
            return n


_SQS_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)


def sqs_event_record(msg: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One ReceiveMessage message as Lambda hands it over (events/s3_objects_sqs.json)."""
    attrs = {k: v for k, v in (msg.get("Attributes") or {}).items() if k in _SQS_ATTRIBUTES}
    message_attributes = {
        name: {
            "stringValue": a.get("StringValue"),
            "binaryValue": base64.b64encode(a["BinaryValue"]).decode()
            if "BinaryValue" in a
            else None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": a.get("DataType", "String"),
        }
        for name, a in (msg.get("MessageAttributes") or {}).items()
    }
    return payloads.sqs_record(
        msg["Body"],
        message_id=msg["MessageId"],
        receipt_handle=msg["ReceiptHandle"],
        attributes=attrs,
        message_attributes=message_attributes,
        md5=msg.get("MD5OfBody", ""),
        queue_arn=queue_arn,
        region=REGION,
    )


class QueuePoller(Poller):
    """Delivers an SQS queue's messages to a handler, as Lambda's SQS mapping does.

    Batches of up to 10 messages; after the call, messages not reported in
    `batchItemFailures` are deleted. Failed ones (all of them when the handler
    raises or names an unknown id) stay in the queue: Lambda lets their
    visibility timeout run out (30 minutes for `sluice-objects`); locally their
    visibility is set to `retry_visibility_s` so the retry comes within seconds.
    Each receive counts toward the queue's maxReceiveCount, after which SQS
    (moto) moves the message to the queue's dead-letter queue.

    `watcher`: a BucketWatcher whose notifications are sent before each pass.
    """

    thread_name = "queue-poller"

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        deliver: Deliver,
        *,
        watcher: BucketWatcher | None = None,
        interval_s: float = 0.1,
        retry_visibility_s: int = 1,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        super().__init__(interval_s=interval_s, on_outcome=on_outcome)
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue = queue_url.rstrip("/").rsplit("/", 1)[-1]
        self.deliver = deliver
        self.watcher = watcher
        self.retry_visibility_s = retry_visibility_s
        self._arn: str | None = None

    @property
    def queue_arn(self) -> str:
        if self._arn is None:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )
            self._arn = str(attrs["Attributes"]["QueueArn"])
        return self._arn

    def poll(self) -> int:
        """Announce new objects, then deliver what the queue holds; returns messages delivered."""
        with self._poll_lock:
            if self.watcher is not None:
                self.watcher.poll()
            n = 0
            for _ in range(MAX_RECEIVES_PER_POLL):
                msgs = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=SQS_BATCH,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                if not msgs:
                    break
                n += self._deliver(msgs)
                if self._stop.is_set():
                    break
            return n

    def _deliver(self, msgs: list[dict[str, Any]]) -> int:
        event = {"Records": [sqs_event_record(m, self.queue_arn) for m in msgs]}
        ids = [m["MessageId"] for m in msgs]
        error: str | None = None
        result: dict[str, Any] | None = None
        try:
            result = self.deliver(event, LambdaContext.of("s3_objects", S3_TIMEOUT_MS))
            failed = set(_failed_items(result, ids))
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            failed = set(ids)
        done = [m for m in msgs if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]}
                    for j, m in enumerate(done[i : i + 10])
                ],
            )
        for m in msgs:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=self.retry_visibility_s,
                )
        self._record(Outcome(self.queue, "", len(msgs), result, error, source="sqs"))
        return len(msgs)
