"""What Kinesis and SQS batch handlers share: the partial batch response.

With `ReportBatchItemFailures` on the event source mapping, a handler answers
`{"batchItemFailures": [{"itemIdentifier": id}, ...]}` and Lambda retries only
those items: SQS message ids (each returns to the queue), or Kinesis sequence
numbers (the shard is retried from the lowest one). Everything else counts as done.
"""

from __future__ import annotations

from typing import Any

import orjson


class BatchResponse:
    """Items a batch hands back to Lambda, and why (for the invocation's report line)."""

    __slots__ = ("errors", "failed")

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.errors: list[str] = []

    def fail(self, *items: str, error: str | None = None) -> None:
        """Hand `items` back; `error` says why (once for all of them)."""
        self.failed.extend(items)
        if error is not None:
            self.errors.append(error)

    def __len__(self) -> int:
        return len(self.failed)

    def report_into(self, extra: dict[str, Any]) -> None:
        """Add the reasons to a report line's fields (`errors`), as earlier ones did."""
        if self.errors:
            extra.setdefault("errors", []).extend(self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.failed]}


def raw_bytes(event: Any) -> bytes:
    """A trigger event (or part of one) as bytes for the dead-letter queue, whatever it holds."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return repr(event).encode("utf-8", "backslashreplace")
