"""Lambda's own on-failure records, as they arrive in the dead-letter queue.

Two shapes (AWS Lambda Developer Guide, "Retaining records of asynchronous invocations"
and "Retain discarded batch records for a Kinesis Data Streams event source"):
- an asynchronous invocation that failed all its attempts: `requestContext` (requestId,
  functionArn, condition, approximateInvokeCount), `requestPayload` (the event, whole),
  `responseContext` (statusCode, executedVersion, functionError), `responsePayload`;
- a Kinesis (or DynamoDB) batch the event source mapping discarded: `requestContext`,
  `responseContext` and `KinesisBatchInfo` (shardId, startSequenceNumber,
  endSequenceNumber, approximateArrivalOfFirstRecord/LastRecord, batchSize, streamArn):
  no data, only where the records are; they are read back from the stream while it
  still holds them (GetShardIterator AT_SEQUENCE_NUMBER).
`functionArn` is qualified by `$LATEST`, an alias or a version, or not at all.
SQS event source mappings have no on-failure destination: what Lambda fails to
process returns to the queue and, after maxReceiveCount, moves to the queue's own
redrive queue as the original message (an S3 notification for `s3_objects`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Empty pages in a row before a read of a shard range gives up (GetRecords may answer
# empty pages before it reaches data further in; 25 is ~25 round trips, a few seconds).
MAX_EMPTY_PAGES = 25


class RecordError(ValueError):
    """A Lambda on-failure record missing what replay needs (truncated, or cut short)."""


@dataclass(frozen=True, slots=True)
class AsyncFailure:
    request_id: str
    function: str  # the function's name, without qualifier
    qualifier: str | None
    payload: Any
    condition: str


@dataclass(frozen=True, slots=True)
class StreamBatch:
    request_id: str
    function: str
    stream_arn: str
    shard: str
    start: str
    end: str
    size: int

    def describe(self) -> str:
        return f"{self.stream_arn} {self.shard} {self.start}..{self.end} ({self.size} record(s))"


def function_name(arn: str) -> tuple[str, str | None]:
    """(name, qualifier) of `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`
    or of a bare name (`name[:qualifier]`)."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[5] == "function":
        return parts[6], (parts[7] if len(parts) > 7 and parts[7] else None)
    name, _, qualifier = arn.partition(":")
    return name, qualifier or None


def parse(body: dict[str, Any]) -> AsyncFailure | StreamBatch | None:
    """The on-failure record in `body`, or None when `body` is not one. Raises RecordError
    when it is one but lacks a field replay needs."""
    ctx = body.get("requestContext")
    if "KinesisBatchInfo" in body or "DDBStreamBatchInfo" in body:
        info = body.get("KinesisBatchInfo")
        if info is None:
            raise RecordError("a DynamoDB stream batch: Sluice reads no DynamoDB streams")
        if not isinstance(info, dict):
            raise RecordError("KinesisBatchInfo is not an object")
        missing = [
            k
            for k in ("shardId", "startSequenceNumber", "endSequenceNumber", "streamArn")
            if not isinstance(info.get(k), str) or not info.get(k)
        ]
        if missing:
            raise RecordError(f"KinesisBatchInfo without {', '.join(missing)}")
        fn = _context(ctx, need_payload=False)
        return StreamBatch(
            str(ctx.get("requestId", "")) if isinstance(ctx, dict) else "",
            fn,
            info["streamArn"],
            info["shardId"],
            info["startSequenceNumber"],
            info["endSequenceNumber"],
            _int(info.get("batchSize")),
        )
    if ctx is None and "requestPayload" not in body:
        return None
    fn = _context(ctx, need_payload=True)
    assert isinstance(ctx, dict)
    if "requestPayload" not in body:
        raise RecordError(
            "no requestPayload (Lambda leaves it out when the record would exceed the "
            "destination's size limit): the event cannot be recovered from this record"
        )
    _, qualifier = function_name(str(ctx["functionArn"]))
    return AsyncFailure(
        str(ctx.get("requestId") or ""),
        fn,
        qualifier,
        body["requestPayload"],
        str(ctx.get("condition") or "failed invocation"),
    )


def _context(ctx: Any, *, need_payload: bool) -> str:
    if not isinstance(ctx, dict):
        raise RecordError("no requestContext")
    arn = ctx.get("functionArn")
    if not isinstance(arn, str) or not arn:
        raise RecordError("requestContext without functionArn")
    return function_name(arn)[0]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def read_range(kinesis: Any, batch: StreamBatch, region: str) -> tuple[list[Any], str | None]:
    """The batch's records, shaped as Lambda delivers them, and what could not be read
    (None when the whole range was). Records past the stream's retention are gone; the
    problem says which range."""
    name = batch.stream_arn.rsplit("/", 1)[-1]
    want = f"{batch.shard} {batch.start}..{batch.end} of {batch.stream_arn}"
    try:
        it = kinesis.get_shard_iterator(
            StreamName=name,
            ShardId=batch.shard,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=batch.start,
        )["ShardIterator"]
    except Exception as e:  # stream deleted, shard expired, sequence trimmed
        code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
        return [], f"records {want} cannot be read ({code}): past the stream's retention or gone"
    out: list[Any] = []
    end = int(batch.end)
    empty = 0
    while it and empty < MAX_EMPTY_PAGES:
        page = kinesis.get_records(ShardIterator=it, Limit=1000)
        recs = page.get("Records", [])
        empty = 0 if recs else empty + 1
        for r in recs:
            if int(r["SequenceNumber"]) > end:
                return _checked(out, batch, want)
            out.append(_lambda_record(r, batch, region))
        if not recs and page.get("MillisBehindLatest", 1) == 0:
            break
        it = page.get("NextShardIterator")
    return _checked(out, batch, want)


def _checked(out: list[Any], batch: StreamBatch, want: str) -> tuple[list[Any], str | None]:
    if not out:
        return out, f"records {want} are no longer in the stream (past its retention)"
    first = out[0]["kinesis"]["sequenceNumber"]
    if first != batch.start:
        return out, f"records of {want} before {first} are no longer in the stream"
    return out, None


def _lambda_record(r: dict[str, Any], batch: StreamBatch, region: str) -> dict[str, Any]:
    arrival = r.get("ApproximateArrivalTimestamp")
    ts = arrival.timestamp() if isinstance(arrival, datetime) else float(arrival or 0)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r.get("PartitionKey", ""),
            "sequenceNumber": r["SequenceNumber"],
            "data": base64.b64encode(r["Data"]).decode(),
            "approximateArrivalTimestamp": ts,
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{batch.shard}:{r['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "awsRegion": region,
        "eventSourceARN": batch.stream_arn,
    }
