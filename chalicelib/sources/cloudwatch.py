"""CloudWatch Logs subscription payloads: `{"awslogs": {"data": base64(gzip(json))}}`.

Shape (AWS docs, "Using CloudWatch Logs subscription filters"):
    {"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner": "123456789012",
     "logGroup": "/aws/lambda/x", "logStream": "...", "subscriptionFilters": ["..."],
     "logEvents": [{"id": "...", "timestamp": 1700000000000, "message": "..."}]}
The same bytes arrive in Kinesis records when a subscription targets a stream.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any, cast

import orjson

from chalicelib.budget import Budget, budget
from chalicelib.errors import DecodeError
from chalicelib.event import LazyEvents, LogEvent
from chalicelib.observe import add_time
from chalicelib.org import region_from_filters
from chalicelib.parsers import parse_message
from chalicelib.parsers.multiline import join_runs
from chalicelib.records import record
from chalicelib.sources import envelope, jsonstream

# Largest decompressed payload accepted at 512 MB (`budget().payload_bytes` scales it with
# the function's memory). CloudWatch caps a subscription payload at 1 MB compressed; log
# text compresses ~10:1, so 64 MiB leaves headroom while stopping a gzip bomb from taking
# the function's time. Memory does not depend on it: a payload whose text is larger than
# `budget().stream_bytes` is read incrementally, its events in slices.
MAX_DECOMPRESSED = 64 * 1024 * 1024
_TRACE_STARTS = ("Caused by: ", "Traceback (most recent call last):")
PIECE = 1024 * 1024  # decompressed bytes taken from zlib at a time on the streamed path
_new = object.__new__


@record()
class CloudWatchBatch:
    """One CloudWatch Logs payload: its message type, shared source fields, tag and events."""

    __slots__ = ("events", "message_type", "source", "tag")

    message_type: str
    source: dict[str, Any]
    tag: str
    events: list[LogEvent] | LazyEvents

    def __init__(
        self,
        message_type: str,
        source: dict[str, Any],
        tag: str,
        events: list[LogEvent] | LazyEvents | None = None,
    ) -> None:
        self.message_type = message_type
        self.source = source
        self.tag = tag
        self.events = [] if events is None else events

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


def b64decode(data: str | bytes) -> bytes:
    """`base64.b64decode(data, validate=True)`, without its copy of a text to bytes."""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise DecodeError("base64", str(e) or "invalid base64") from e


def decode_data(data: str | bytes) -> dict[str, Any]:
    """base64 -> gzip -> JSON object, each failure named by its stage."""
    return decode_data_bytes(b64decode(data))


def decode_data_bytes(raw: bytes) -> dict[str, Any]:
    """gzip -> JSON object (the bytes a subscription writes to Kinesis)."""
    return _document(gunzip(raw))


def _document(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        stage = "utf-8" if "utf-8" in str(e).lower() else "json"
        raise DecodeError(stage, str(e)) from e
    if not isinstance(doc, dict):
        raise DecodeError("shape", f"expected a JSON object, got {type(doc).__name__}")
    return doc


def small_document(raw: bytes, limit: int) -> dict[str, Any] | None:
    """gzip -> JSON object when the text is at most `limit` bytes (decompressed once),
    else None; gunzip's checks either way. Inflated by ISA-L where its wheel is installed
    (a subscription payload's ~300 KB in ~0.2 ms against zlib's ~0.46); the outcome
    depends only on the output, the end of the stream and what follows it, which both
    report alike (tests/unit/test_cloudwatch_decoding.py)."""
    # ISA-L for the plain gzip header subscriptions carry (deflate, no optional fields,
    # no reserved flags, which zlib refuses and ISA-L would not); zlib for anything else.
    inflater = _inflater if raw[:4] == _PLAIN_GZIP else zlib
    d = inflater.decompressobj(wbits=47)  # 32+15: gzip or zlib header, auto-detected
    try:
        body = d.decompress(raw, limit)
    except _INFLATE_ERRORS as e:
        raise DecodeError("gzip", str(e)) from e
    if not d.eof:
        if d.unconsumed_tail or len(body) == limit:
            return None  # larger: read incrementally
        raise DecodeError("gzip", "truncated gzip stream")
    if d.unused_data:
        # A second gzip member or junk: its events would vanish unread and uncounted.
        raise DecodeError("gzip", f"{len(d.unused_data)} bytes after the end of the gzip stream")
    return _document(body)


_PLAIN_GZIP = b"\x1f\x8b\x08\x00"  # gzip magic, deflate, no flags
try:
    from isal import isal_zlib as _isal
except ImportError:  # a platform without the wheel: the standard library's
    _inflater: Any = zlib
    _INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)
else:
    _inflater = _isal
    _INFLATE_ERRORS = (zlib.error, cast(type[Exception], _isal.error))


def payload_data(event: Any) -> str:
    """The base64 string of a Lambda subscription event, or a DecodeError."""
    if not isinstance(event, dict) or not isinstance(event.get("awslogs"), dict):
        raise DecodeError("shape", "not a CloudWatch Logs subscription event (no 'awslogs')")
    data = event["awslogs"].get("data")
    if not isinstance(data, str):
        raise DecodeError("shape", "'awslogs.data' missing or not a string")
    return data


def batch_from_document(doc: dict[str, Any], region: str) -> CloudWatchBatch:
    """A decoded subscription document -> LogEvents (parsed and normalised). Every
    envelope field is type-checked (`envelope`): a wrong one refuses the document with
    a DecodeError naming it, before anything is copied into an event."""
    message_type = envelope.text(doc, "messageType", "", required=True) or ""
    if message_type == "CONTROL_MESSAGE":
        return CloudWatchBatch("CONTROL_MESSAGE", {"kind": "cloudwatch"}, "cloudwatch")
    if message_type != "DATA_MESSAGE":
        raise DecodeError("shape", f"unknown messageType {message_type[:100]!r}")
    log_group = envelope.text(doc, "logGroup", "", required=True, limit=512)
    log_events = doc.get("logEvents")
    if log_group is None or not isinstance(log_events, list):
        raise DecodeError(
            "shape",
            "DATA_MESSAGE without 'logGroup' string or 'logEvents' list "
            f"(logEvents is {envelope.kind(log_events)})",
        )
    filters = envelope.texts(doc, "subscriptionFilters", "")
    source: dict[str, Any] = {
        "kind": "cloudwatch",
        "log_group": log_group,
        "log_stream": envelope.text(doc, "logStream", "", limit=512),
        "account": envelope.text(doc, "owner", "", numeric=True, limit=64),
        # A member account's subscription names its region (chalicelib/org.py).
        "region": region_from_filters(filters) or region,
        "subscription_filters": filters,
    }
    tag = tag_for_log_group(log_group)
    return CloudWatchBatch("DATA_MESSAGE", source, tag, _events(log_events, tag, source))


def event_fields(le: Any, i: int, log_group: str) -> tuple[str, int, str]:
    """One `logEvents` element's (message, timestamp, id), type-checked: a string
    message, an integer timestamp (not a boolean), an id that is a string, an integer
    (its decimal text) or absent (made from the group, time and position)."""
    if not isinstance(le, dict):
        raise DecodeError("shape", f"logEvents[{i}] is not an object: {envelope.kind(le)}")
    message = le.get("message")
    ts = le.get("timestamp")
    if not isinstance(message, str) or type(ts) is not int:
        raise DecodeError(
            "shape",
            f"logEvents[{i}] lacks a string message or int timestamp (message is "
            f"{envelope.kind(message)}, timestamp {envelope.kind(ts)})",
        )
    event_id = le.get("id")
    if type(event_id) is not str or len(event_id) > 256:  # the common case costs one test
        event_id = envelope.text(le, "id", f"logEvents[{i}].", numeric=True, limit=256)
    return message, ts, event_id if event_id is not None else f"{log_group}:{ts}:{i}"


def _events(
    log_events: list[Any], tag: str, source: dict[str, Any], first: int = 0
) -> list[LogEvent]:
    """logEvents elements (the `first`-th on) -> LogEvents, stack traces joined."""
    log_group = source["log_group"]
    events: list[LogEvent] = []
    append = events.append
    # Joining stack traces runs only when some message could take part in a trace (an
    # indented line, `Caused by:`, a Python `Traceback`), and then reads only the runs of
    # adjacent events that may join (`join_runs`): plain text and text lines parsed into
    # a level (which may head a trace). Every other event stands alone.
    maybe_trace = False
    candidates: list[int] = []  # indexes in `events` of those that may join
    plain: set[int] = set()  # the candidates that are plain text (may be folded in)
    headers: set[int] = set()  # records of text lines parsed into a level
    for i, le in enumerate(log_events):
        # The common element (string message, int timestamp, string id) is taken here;
        # `event_fields` checks and explains every other.
        if type(le) is dict:
            try:  # subscripts: cheaper than three .get calls, and free unless one is missing
                message, ts, event_id = le["message"], le["timestamp"], le["id"]
            except KeyError:
                message = ts = event_id = None
            if not (
                type(message) is str
                and type(ts) is int
                and type(event_id) is str
                and len(event_id) <= 256
            ):
                message, ts, event_id = event_fields(le, first + i, log_group)
        else:
            message, ts, event_id = event_fields(le, first + i, log_group)
        record, t = parse_message(message)
        c = message[:1]
        if c == "{":
            if len(record) == 1:  # `{"message": …}` alone reads as plain text
                candidates.append(i)
                plain.add(i)
        else:
            if c == " " or c == "\t" or (c in "CT" and message.startswith(_TRACE_STARTS)):
                maybe_trace = True
            if "level" in record and "lambda_event" not in record:
                headers.add(id(record))
                candidates.append(i)
            elif len(record) == 1:
                candidates.append(i)
                plain.add(i)
        # `LogEvent(...)` with its fields set here: calling the class costs ~1,200
        # instructions more per event (type call, then `__init__` as a second call).
        ev = _new(LogEvent)
        ev.tag = tag
        ev.time = t if t is not None else ts
        ev.record = record
        ev.source = source
        ev.id = event_id
        ev.count = 1
        ev.size = len(message)
        ev.arrival = ts
        append(ev)
    if maybe_trace:

        def header(ev: LogEvent) -> str | None:
            if id(ev.record) not in headers:
                return None
            m = ev.record.get("message")
            return m if type(m) is str else None

        return join_runs(events, candidates, header=header, plain=plain)
    return events


def decode(event: Any, region: str) -> CloudWatchBatch:
    """A `cloudwatch_logs` trigger event -> a batch of LogEvents, or DecodeError.
    Timed as `decode`: base64, gunzip, JSON and, for a payload that fits in memory, its
    events (a larger one's events are made as the pipeline takes them, within `route`)."""
    start = perf_counter()
    try:
        return batch_from_bytes(b64decode(payload_data(event)), region)
    finally:
        add_time("decode", start)


def batch_from_bytes(raw: bytes, region: str) -> CloudWatchBatch:
    """gzip of a subscription document -> its batch. A document whose text fits
    `stream_bytes` is parsed whole (the fast path); a larger one is checked in full
    first (gzip, size, JSON, shape: a bad payload is refused whole, as a small one
    is), then its events are made one at a time as the pipeline takes them."""
    b = budget()
    doc = small_document(raw, b.stream_bytes)
    if doc is not None:
        return batch_from_document(doc, region)
    for _ in _pieces(raw, b.payload_bytes):  # gzip damage and size named first, as gunzip does
        pass
    return _streamed(
        lambda: jsonstream.Reader(jsonstream.text_pieces(_pieces(raw, b.payload_bytes))), region, b
    )


def batch_from_text(text: str, region: str) -> CloudWatchBatch:
    """A subscription document's text (one document of a Firehose object) -> its batch;
    read incrementally, as a large payload is, when longer than `stream_bytes`."""
    b = budget()
    if len(text) > b.stream_bytes:
        return _streamed(lambda: jsonstream.Reader(text), region, b)
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise DecodeError("json", f"not a JSON document: {e}") from e
    if not isinstance(doc, dict):
        raise DecodeError("shape", f"expected a JSON object, got {type(doc).__name__}")
    return batch_from_document(doc, region)


def _streamed(reader: Callable[[], jsonstream.Reader], region: str, b: Budget) -> CloudWatchBatch:
    header, count = _scan(reader(), region, b)
    if header.message_type == "CONTROL_MESSAGE":
        return header
    header.events = LazyEvents(lambda: _streamed_events(reader(), b, header), count)
    return header


def _pieces(raw: bytes, limit: int) -> Iterator[bytes]:
    """The decompressed bytes of `raw` in pieces, with gunzip's checks."""
    d = zlib.decompressobj(wbits=47)
    total = 0
    data = raw
    try:
        while True:
            out = d.decompress(data, PIECE)
            total += len(out)
            if total > limit:
                raise DecodeError("gzip", f"decompressed payload larger than {limit} bytes")
            if out:
                yield out
            if d.eof:
                break
            data = d.unconsumed_tail
            if not data and not out:
                raise DecodeError("gzip", "truncated gzip stream")
    except zlib.error as e:
        raise DecodeError("gzip", str(e)) from e
    if d.unused_data:
        raise DecodeError("gzip", f"{len(d.unused_data)} bytes after the end of the gzip stream")


def _scan(reader: jsonstream.Reader, region: str, b: Budget) -> tuple[CloudWatchBatch, int]:
    """Read the whole document, checking every event's shape: (its batch without
    events, the number of events). Nothing is kept but the header fields."""
    fields: dict[str, Any] = {}
    count = 0
    for key in reader.members():
        if key != "logEvents":
            fields[key] = reader.value()
            continue
        if reader.peek() != "[":
            raise DecodeError("shape", "DATA_MESSAGE without 'logGroup' string or 'logEvents' list")
        for le in reader.elements():
            event_fields(le, count, "")
            count += 1
            if count > b.payload_events:
                raise DecodeError(
                    "too-large", f"more than {b.payload_events} events in one payload"
                )
        fields["logEvents"] = []
    reader.end()
    return batch_from_document(fields, region), count


def _streamed_events(
    reader: jsonstream.Reader, b: Budget, batch: CloudWatchBatch
) -> Iterator[LogEvent]:
    """The events of a checked payload, made a slice at a time (stack traces are joined
    within a slice; a trace cut by a slice boundary stays as separate events)."""
    chunk: list[Any] = []
    first = 0
    for key in reader.members():
        if key != "logEvents":
            reader.value()
            continue
        for le in reader.elements():
            chunk.append(le)
            if len(chunk) >= b.slice_events:
                yield from _events(chunk, batch.tag, batch.source, first)
                first += len(chunk)
                chunk = []
    yield from _events(chunk, batch.tag, batch.source, first)
