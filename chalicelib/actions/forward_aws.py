"""Kinesis Data Streams (PutRecords) and Firehose (PutRecordBatch) destinations.

Both answer a batch call with one result per record, in request order, and a
record can fail (throttled, internal failure) while its neighbours succeed. Only
the failed records are sent again, after a jittered backoff; those still failing
when retries or time run out are reported with their error code. Records above
the per-record limit are never sent: the service would refuse the whole request.
Whole-call errors are retried by the SDK first (standard mode, 3 attempts, see
chalicelib/aws.py); what still fails counts for every record of the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.actions.forward_common import (
    MiB,
    Outcome,
    Retry,
    Template,
    chunks,
    envelopes,
)
from chalicelib.event import LogEvent


@dataclass(frozen=True, slots=True)
class Limits:
    kind: str
    max_records: int
    max_request_bytes: int
    max_record_bytes: int


# Kinesis PutRecords: 500 records and 5 MiB per request, 1 MiB per record, partition
# keys included (Kinesis Data Streams quotas; moto 5.2 enforces the same). Since
# late 2025 a stream can be raised to 10 MiB records (UpdateMaxRecordSize), but
# 1 MiB is every stream's default and stays valid for all of them.
KINESIS = Limits("Kinesis", 500, 5 * MiB, 1 * MiB)
# Firehose PutRecordBatch: 500 records, 4 MiB per request, 1,000 KiB per record
# before base64 (botocore's firehose model: Data max 1024000; API reference).
FIREHOSE = Limits("Firehose", 500, 4 * MiB, 1_024_000)

# Per-record and whole-call codes worth another attempt (API references of
# PutRecords/PutRecordBatch list the per-record ones; the rest are throttling and
# service-side failures of the whole call).
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "KMSThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


@dataclass(slots=True)
class Item:
    event: LogEvent
    data: bytes
    key: str  # partition key (Kinesis) or ""
    size: int


Send = Callable[[list[Item]], list[str | None]]


def put_all(items: list[Item], send: Send, limits: Limits, retry: Retry, out: Outcome) -> None:
    """Send items in chunks within `limits`; retry failed records only; record the rest."""
    pending: list[Item] = []
    for it in items:
        if it.size > limits.max_record_bytes:
            out.fail(
                [it.event],
                f"record of {it.size:,} bytes over the {limits.kind} limit of "
                f"{limits.max_record_bytes:,} (not sent)",
                False,
            )
        else:
            pending.append(it)
    while pending:
        again: list[Item] = []
        codes_of: dict[int, str] = {}
        start = 0
        for chunk in chunks(pending, _size, limits.max_records, limits.max_request_bytes):
            out.requests += 1
            try:
                codes = send(chunk)
            except Exception as e:  # botocore ClientError/BotoCoreError after the SDK's retries
                code, retryable = _classify(e)
                if not retryable:
                    # The same answer awaits every other chunk (no stream, no access).
                    refused = f"{code} (request refused)"
                    out.fail([it.event for it in pending[start:]], refused, False)
                    for it in again:
                        out.fail([it.event], f"{codes_of[id(it)]} (not retried: {refused})", True)
                    return
                codes = [code] * len(chunk)
            start += len(chunk)
            for it, result in zip(chunk, codes, strict=True):
                if result is None:
                    out.delivered += 1
                else:
                    again.append(it)
                    codes_of[id(it)] = result
        if not again:
            return
        if not retry.wait():
            for it in again:
                out.fail([it.event], f"{codes_of[id(it)]} {retry.gave_up()}", True)
            return
        pending = again


def _size(it: Item) -> int:
    return it.size


def _classify(e: Exception) -> tuple[str, bool]:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code") or "ClientError")
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code, code in RETRYABLE or status >= 500
    if isinstance(e, BotoCoreError):  # connection errors and timeouts
        return type(e).__name__, True
    raise e  # a bug, not a delivery problem: let it surface


class KinesisSink:
    def __init__(self, client: Any, stream: str, partition_key: str) -> None:
        self.client = client
        self.target = {"StreamARN" if stream.startswith("arn:") else "StreamName": stream}
        self.partition_key = Template(partition_key)
        self.name = f"kinesis {stream}"

    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        encoded, bad = envelopes(events)
        out = Outcome(failures=bad)
        items = []
        for ev, data in encoded:
            # 1-256 Unicode characters (PutRecords model); a missing field renders as "-".
            key = self.partition_key(ev)[:256] or "-"
            items.append(Item(ev, data, key, len(data) + len(key.encode())))
        put_all(items, self._put, KINESIS, retry, out)
        return out

    def _put(self, chunk: list[Item]) -> list[str | None]:
        resp = self.client.put_records(
            Records=[{"Data": it.data, "PartitionKey": it.key} for it in chunk], **self.target
        )
        return [r.get("ErrorCode") for r in resp["Records"]]


class FirehoseSink:
    def __init__(self, client: Any, delivery_stream: str) -> None:
        self.client = client
        self.delivery_stream = delivery_stream
        self.name = f"firehose {delivery_stream}"

    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        encoded, bad = envelopes(events)
        out = Outcome(failures=bad)
        # Newline-terminated: Firehose concatenates records into one S3 object, and
        # JSON lines is what Athena, Glue and the archive read.
        items = [Item(ev, data + b"\n", "", len(data) + 1) for ev, data in encoded]
        put_all(items, self._put, FIREHOSE, retry, out)
        return out

    def _put(self, chunk: list[Item]) -> list[str | None]:
        resp = self.client.put_record_batch(
            DeliveryStreamName=self.delivery_stream, Records=[{"Data": it.data} for it in chunk]
        )
        return [r.get("ErrorCode") for r in resp["RequestResponses"]]
