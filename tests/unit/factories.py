"""Small builders for LogEvents in unit tests (whole payloads come from `events/`)."""

from __future__ import annotations

from typing import Any

from chalicelib.event import LogEvent

# 2026-11-26T10:07:01.000Z, the time of the sample payloads.
T0 = 1795687621000
SOURCE: dict[str, Any] = {
    "kind": "cloudwatch",
    "log_group": "/aws/lambda/checkout-api",
    "log_stream": "2026/11/26/[$LATEST]6f8e2c1d9b0a4e7f8a3b5c6d7e8f9a0b",
    "account": "123456789012",
    "region": "us-east-1",
    "subscription_filters": ["sluice-checkout-api"],
}


def log_event(
    message: str = "hello",
    *,
    tag: str = "aws.lambda.checkout-api",
    time: int = T0,
    id: str | None = None,
    source: dict[str, Any] | None = None,
    **fields: Any,
) -> LogEvent:
    """A LogEvent whose record is `{"message": message, **fields}`."""
    record = {"message": message, **fields}
    return LogEvent(
        tag, time, record, SOURCE if source is None else source, id or f"ev-{time}-{message[:16]}"
    )


def log_events(n: int, message: str = "event {i}", **kw: Any) -> list[LogEvent]:
    """`n` events one millisecond apart, each with a distinct message and id."""
    t0 = kw.pop("time", T0)
    return [log_event(message.format(i=i), time=t0 + i, id=f"ev-{i:06d}", **kw) for i in range(n)]
