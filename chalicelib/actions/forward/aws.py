"""What the AWS sinks (kinesis.py: PutRecords, firehose.py: PutRecordBatch) share.

Both APIs answer a batch call with one result per record, in request order, and a
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

from chalicelib.actions.forward.common import Outcome, Retry, chunks
from chalicelib.event import LogEvent


@dataclass(frozen=True, slots=True)
class Limits:
    kind: str
    max_records: int
    max_request_bytes: int
    max_record_bytes: int


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
