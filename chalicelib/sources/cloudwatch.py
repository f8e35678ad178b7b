"""CloudWatch Logs subscription payloads: `{"awslogs": {"data": base64(gzip(json))}}`.

Shape (AWS docs, "Using CloudWatch Logs subscription filters"):
    {"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner": "123456789012",
     "logGroup": "/aws/lambda/x", "logStream": "...", "subscriptionFilters": ["..."],
     "logEvents": [{"id": "...", "timestamp": 1700000000000, "message": "..."}]}
The same bytes arrive in Kinesis records when a subscription targets a stream.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.errors import DecodeError
from chalicelib.event import LogEvent
from chalicelib.parsers import parse_message
from chalicelib.parsers.multiline import join_multiline

# Largest decompressed payload accepted. CloudWatch caps a subscription payload
# at 1 MB compressed; log text compresses ~10:1, so 64 MiB leaves headroom while
# stopping a gzip bomb from taking the function's memory.
MAX_DECOMPRESSED = 64 * 1024 * 1024
_TRACE_STARTS = ("Caused by: ", "Traceback (most recent call last):")


@dataclass(slots=True)
class CloudWatchBatch:
    message_type: str
    source: dict[str, Any]
    tag: str
    events: list[LogEvent] = field(default_factory=list)

    @property
    def is_control(self) -> bool:
        return self.message_type == "CONTROL_MESSAGE"


def tag_for_log_group(log_group: str) -> str:
    """`/aws/lambda/checkout-api` -> `aws.lambda.checkout-api` (empty parts dropped)."""
    return ".".join(p for p in log_group.split("/") if p) or "cloudwatch"


def gunzip(data: bytes, *, limit: int = MAX_DECOMPRESSED) -> bytes:
    """gzip -> bytes, refusing truncated streams and outputs above `limit`."""
    d = zlib.decompressobj(wbits=47)  # 32+15: gzip or zlib header, auto-detected
    try:
        out = d.decompress(data, limit)
    except zlib.error as e:
        raise DecodeError("gzip", str(e)) from e
    if d.unconsumed_tail:
        raise DecodeError("gzip", f"decompressed payload larger than {limit} bytes")
    if not d.eof:
        raise DecodeError("gzip", "truncated gzip stream")
    if d.unused_data:
        # A second gzip member or junk: its events would vanish unread and uncounted.
        raise DecodeError("gzip", f"{len(d.unused_data)} bytes after the end of the gzip stream")
    return out


def decode_data(data: str | bytes) -> dict[str, Any]:
    """base64 -> gzip -> JSON object, each failure named by its stage."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise DecodeError("base64", str(e) or "invalid base64") from e
    return decode_data_bytes(raw)


def decode_data_bytes(raw: bytes) -> dict[str, Any]:
    """gzip -> JSON object (the bytes a subscription writes to Kinesis)."""
    body = gunzip(raw)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        stage = "utf-8" if "utf-8" in str(e).lower() else "json"
        raise DecodeError(stage, str(e)) from e
    if not isinstance(doc, dict):
        raise DecodeError("shape", f"expected a JSON object, got {type(doc).__name__}")
    return doc


def payload_data(event: Any) -> str:
    """The base64 string of a Lambda subscription event, or a DecodeError."""
    if not isinstance(event, dict) or not isinstance(event.get("awslogs"), dict):
        raise DecodeError("shape", "not a CloudWatch Logs subscription event (no 'awslogs')")
    data = event["awslogs"].get("data")
    if not isinstance(data, str):
        raise DecodeError("shape", "'awslogs.data' missing or not a string")
    return data


def batch_from_document(doc: dict[str, Any], region: str) -> CloudWatchBatch:
    """A decoded subscription document -> LogEvents (parsed and normalised)."""
    message_type = doc.get("messageType")
    if message_type == "CONTROL_MESSAGE":
        return CloudWatchBatch("CONTROL_MESSAGE", {"kind": "cloudwatch"}, "cloudwatch")
    if message_type != "DATA_MESSAGE":
        raise DecodeError("shape", f"unknown messageType {message_type!r}")
    log_group = doc.get("logGroup")
    log_events = doc.get("logEvents")
    if not isinstance(log_group, str) or not isinstance(log_events, list):
        raise DecodeError("shape", "DATA_MESSAGE without 'logGroup' string or 'logEvents' list")
    source: dict[str, Any] = {
        "kind": "cloudwatch",
        "log_group": log_group,
        "log_stream": doc.get("logStream"),
        "account": doc.get("owner"),
        "region": region,
        "subscription_filters": doc.get("subscriptionFilters") or [],
    }
    tag = tag_for_log_group(log_group)
    events: list[LogEvent] = []
    append = events.append
    # Joining stack traces costs ~0.36 µs/event; it runs only when some message could
    # take part in a trace (an indented line, `Caused by:`, a Python `Traceback`).
    maybe_trace = False
    headers: set[int] = set()  # text lines parsed into a level: may head a trace
    for i, le in enumerate(log_events):
        if not isinstance(le, dict):
            raise DecodeError("shape", f"logEvents[{i}] is not an object")
        message = le.get("message")
        ts = le.get("timestamp")
        if not isinstance(message, str) or not isinstance(ts, int):
            raise DecodeError("shape", f"logEvents[{i}] lacks a string message or int timestamp")
        record, t = parse_message(message)
        c = message[:1]
        if c != "{" and "level" in record and "lambda_event" not in record:
            headers.add(id(record))
        if c == " " or c == "\t" or (c in "CT" and message.startswith(_TRACE_STARTS)):
            maybe_trace = True
        append(
            LogEvent(
                tag,
                t if t is not None else ts,
                record,
                source,
                str(le["id"]) if le.get("id") is not None else f"{log_group}:{ts}:{i}",
            )
        )
    if maybe_trace:

        def header(ev: LogEvent) -> str | None:
            m = ev.record.get("message")
            return m if id(ev.record) in headers and type(m) is str else None

        events = join_multiline(events, header=header)
    return CloudWatchBatch("DATA_MESSAGE", source, tag, events)


def decode(event: Any, region: str) -> CloudWatchBatch:
    """A `cloudwatch_logs` trigger event -> a batch of LogEvents, or DecodeError."""
    return batch_from_document(decode_data(payload_data(event)), region)
