"""Writing lines to CloudWatch Logs within PutLogEvents' limits.

Used by the demo's apps and by the `cloudwatch` target of `sluice simulate` and
`sluice replay`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

# PutLogEvents limits (CloudWatch Logs API reference): 10,000 events and
# 1,048,576 bytes per call, counting each event's UTF-8 message plus 26 bytes.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26

Line = tuple[int, str]  # (timestamp in epoch ms, message)


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def ensure_stream(logs: Any, group: str, stream: str) -> None:
    for call, kwargs in (
        (logs.create_log_group, {"logGroupName": group}),
        (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
        try:
            call(**kwargs)
        except Exception as e:
            if _code(e) != "ResourceAlreadyExistsException":
                raise


def batches(lines: Sequence[Line]) -> Iterable[list[Line]]:
    """Split chronologically ordered lines at PutLogEvents' count and size limits."""
    batch: list[Line] = []
    size = 0
    for ts, msg in lines:
        n = len(msg.encode("utf-8")) + EVENT_OVERHEAD
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + n > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((ts, msg))
        size += n
    if batch:
        yield batch


def write_to_cloudwatch(logs: Any, group: str, stream: str, lines: Sequence[Line | str]) -> int:
    """Write lines to a log stream (created if missing); return how many were accepted.

    Bare strings are stamped with the current time. Lines are put in timestamp
    order (PutLogEvents refuses a batch that is not chronological).
    """
    now = int(time.time() * 1000)
    stamped = sorted(((now, ln) if isinstance(ln, str) else ln for ln in lines), key=lambda x: x[0])
    if not stamped:
        return 0
    ensure_stream(logs, group, stream)
    accepted = 0
    for batch in batches(stamped):
        resp = logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": ts, "message": msg} for ts, msg in batch],
        )
        accepted += len(batch) - rejected(resp.get("rejectedLogEventsInfo") or {}, len(batch))
    return accepted


def rejected(info: dict[str, int], n: int) -> int:
    """Events PutLogEvents refused, from its `rejectedLogEventsInfo` indexes."""
    too_old = max(info.get("tooOldLogEventEndIndex", -1), info.get("expiredLogEventEndIndex", -1))
    new_start = info.get("tooNewLogEventStartIndex", n)
    return (too_old + 1) + (n - new_start)
