"""Kinesis Data Streams records -> LogEvents.

Lambda's Kinesis event: {"Records": [{"kinesis": {"partitionKey", "sequenceNumber",
"data": base64, "approximateArrivalTimestamp": <epoch s>}, "eventID":
"shardId-000000000000:<seq>", "eventSourceARN": "arn:aws:kinesis:<region>:<acct>:stream/<name>",
"awsRegion"}]}

A record's data is, by its first bytes:
- KPL-aggregated (magic F3 89 9A C2): de-aggregated, each user record decoded below;
- gzip (1F 8B): CloudWatch Logs subscription data (a subscription targeting the
  stream, the high-volume path), decoded exactly like the `cloudwatch_logs` trigger;
- text: a JSON object (one event; its own `tag` field, if any, becomes the tag) or
  newline-separated lines (one event per line, each parsed like a log message).
A record that cannot be decoded is reported with its sequence number so the
handler dead-letters it instead of blocking the shard.
"""

from __future__ import annotations

import binascii
import string
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from time import perf_counter
from typing import Any

import orjson

from chalicelib.errors import DecodeError
from chalicelib.event import LazyEvents, LogEvent
from chalicelib.normalise import in_range
from chalicelib.observe import add_time
from chalicelib.parsers import parse_message
from chalicelib.sources import envelope, kpl
from chalicelib.sources.cloudwatch import batch_from_bytes

# A record's own tag names its archive path (`archive/tag=<tag>/dt=…`): a `/`, a control
# character or a space there would let log content choose partitions (`x/dt=2001-01-01`).
# Tags are the ASCII characters of log group names and rule patterns, at most 512 like log
# group names (so the archive key stays under S3's 1,024 bytes); any other `tag` stays a
# field of the record. Checked with `str.strip` (every character in the set leaves
# nothing): a pattern match per event cost ~5 µs through RE2's Python wrapper.
_TAG_CHARS = string.ascii_letters + string.digits + "_.:@#$=+-"
_TAG_MAX = 512
# A text record up to this size is split into lines at once (a list of at most ~22,000
# short strings; one line needs no splitting); a larger one line by line as its events
# are taken.
SPLIT_WHOLE = 64 * 1024


def usable_tag(tag: Any) -> bool:
    """Whether a record's `tag` field may name its archive path."""
    return isinstance(tag, str) and 0 < len(tag) <= _TAG_MAX and not tag.strip(_TAG_CHARS)


@dataclass(slots=True)
class KinesisRecordResult:
    sequence: str
    # Made as they are taken (a 1 MiB record can hold half a million lines): the record
    # was checked whole first, so taking them cannot fail.
    events: Iterable[LogEvent] = field(default_factory=list)
    error: DecodeError | None = None
    raw: bytes = b""


def stream_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else (arn or "unknown")


def _lines(text: str) -> Iterator[str]:
    """Lines end at "\n" (and "\r\n") only: str.splitlines also breaks at U+2028, form
    feeds and other separators that JSON strings and log text may hold, which cut one
    event in two. Made one at a time: a list of a 1 MiB record's lines is ~30 MB."""
    start = 0
    while True:
        end = text.find("\n", start)
        line = text[start:] if end == -1 else text[start:end]
        yield line[:-1] if line.endswith("\r") else line
        if end == -1:
            return
        start = end + 1


def _record_events(
    data: bytes, base_id: str, default_tag: str, ts: int, source: dict[str, Any], region: str
) -> Iterable[LogEvent]:
    """The events of one record's data, made as they are taken. Everything that can
    fail is checked before this returns."""
    if data[:2] == b"\x1f\x8b":
        batch = batch_from_bytes(data, region)
        if batch.is_control:
            return []
        batch.source.update(
            via="kinesis",
            stream=source["stream"],
            shard=source["shard"],
            sequence=source["sequence"],
        )
        return batch.events
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("utf-8", f"record is not UTF-8 text: {e}") from e
    if not text.strip():
        return []
    if "\n" not in text:
        if len(text) <= SPLIT_WHOLE:  # one line (a JSON record, the common shape): one event
            line = text[:-1] if text.endswith("\r") else text
            return LazyEvents(lambda: _text_events((line,), base_id, default_tag, ts, source))
    elif text.lstrip().startswith("{"):
        # A pretty-printed JSON object is one event; JSON lines (several objects in one
        # record, as Fluent Bit's aggregation writes them) are one event each.
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            return LazyEvents(lambda: _text_events((text,), base_id, default_tag, ts, source))
    if len(text) <= SPLIT_WHOLE:
        return LazyEvents(lambda: _text_events(_split(text), base_id, default_tag, ts, source))
    return LazyEvents(lambda: _text_events(_lines(text), base_id, default_tag, ts, source))


def _check(data: bytes, region: str) -> None:
    """What `_record_events` can refuse in `data`, refused the same way, nothing kept: the
    gzip document (decompressed and read) or the UTF-8 text."""
    if data[:2] == b"\x1f\x8b":
        batch_from_bytes(data, region)
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("utf-8", f"record is not UTF-8 text: {e}") from e


def _split(text: str) -> list[str]:
    """The lines of a record within SPLIT_WHOLE, as `_lines` makes them, in one call."""
    lines = text.split("\n")
    if "\r" in text:
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    return lines


def _text_events(
    lines: Iterable[str], base_id: str, default_tag: str, ts: int, source: dict[str, Any]
) -> Iterator[LogEvent]:
    n = 0
    for line in lines:
        if not line.strip():
            continue
        record, t = parse_message(line)
        tag = record.get("tag", default_tag)
        if tag is not default_tag and usable_tag(tag):
            del record["tag"]
        else:  # absent, or not usable as a tag: it stays a field of the record
            tag = default_tag
        yield LogEvent(
            tag, ts if t is None else t, record, source, f"{base_id}:{n}", 1, len(line), ts
        )
        n += 1


def decode_record(rec: Any, region: str) -> KinesisRecordResult:
    """One Lambda Kinesis record -> its events, or its DecodeError (never raises).
    Timed as `decode` (one clock pair a record); its events are made as the pipeline
    takes them, within `route`."""
    start = perf_counter()
    try:
        return _decode_record(rec, region)
    finally:
        add_time("decode", start)


# A record's attributes copied into its events' source, each type-checked: sequence
# number, partition key, stream ARN, event id, region.
_Envelope = tuple[str, str | None, str, str, str | None]


def _envelope(rec: dict[str, Any], k: dict[str, Any]) -> _Envelope:
    """The envelope of a record in Lambda's shape (every attribute a string within its
    limit), checked in one expression; anything else is read by
    `_checked_envelope`, which explains what is wrong (and takes what is allowed: an
    integer sequence number, absent optional fields). The arrival time is read apart."""
    seq = k.get("sequenceNumber")
    pk = k.get("partitionKey")
    arn = rec.get("eventSourceARN")
    event_id = rec.get("eventID")
    aws_region = rec.get("awsRegion")
    if (
        type(seq) is str
        and type(pk) is str
        and type(arn) is str
        and type(event_id) is str
        and type(aws_region) is str
        and len(seq) <= 256
        and len(pk) <= 256
        and len(arn) <= 2048
        and len(event_id) <= 2048
        and len(aws_region) <= 64
    ):
        return seq, pk, arn, event_id, aws_region
    return _checked_envelope(rec, k)


def _checked_envelope(rec: dict[str, Any], k: dict[str, Any]) -> _Envelope:
    """Every attribute copied into the events' source, type-checked one by one: a wrong
    one (a number, a list, an object nested 300 deep) refuses this record alone."""
    seq = envelope.text(k, "sequenceNumber", "kinesis.", numeric=True, limit=256)
    partition_key = envelope.text(k, "partitionKey", "kinesis.", limit=256)
    arn = envelope.text(rec, "eventSourceARN", "", limit=2048) or ""
    event_id = envelope.text(rec, "eventID", "", limit=2048) or ""
    aws_region = envelope.text(rec, "awsRegion", "", limit=64)
    return seq or "", partition_key, arn, event_id, aws_region


@lru_cache(maxsize=64)
def _stream(arn: str) -> tuple[str, str | None, str]:
    """(stream name, account, default tag) of a stream ARN: every record of a batch has
    the same."""
    parts = arn.split(":")
    stream = stream_name(arn)
    return stream, parts[4] if len(parts) > 4 else None, f"kinesis.{stream}"


def _kpl_events(
    users: list[tuple[str, bytes]],
    base_id: str,
    tag: str,
    ts: int,
    source: dict[str, Any],
    region: str,
) -> Iterator[LogEvent]:
    for i, (pk, sub) in enumerate(users):
        sub_source = {**source, "partition_key": pk, "subsequence": i}
        yield from _record_events(sub, f"{base_id}:{i}", tag, ts, sub_source, region)


def _decode_record(rec: Any, region: str) -> KinesisRecordResult:
    k = rec.get("kinesis") if isinstance(rec, dict) else None
    seq = _sequence(k)
    result = KinesisRecordResult(seq)
    try:
        if not isinstance(k, dict) or not isinstance(k.get("data"), str):
            raise DecodeError(
                "shape",
                "not a Kinesis record (no 'kinesis.data'"
                + (f": it is {envelope.kind(k.get('data'))})" if isinstance(k, dict) else ")"),
            )
        assert isinstance(rec, dict)
        _, partition_key, arn, event_id, aws_region = _envelope(rec, k)
        try:
            # base64.b64decode(validate=True) without its wrapper: the same bytes and errors.
            data = binascii.a2b_base64(k["data"], strict_mode=True)
        except (binascii.Error, ValueError) as e:
            raise DecodeError("base64", str(e)) from e
        result.raw = data
        stream, account, tag = _stream(arn)
        shard = event_id.split(":", 1)[0]
        # Lambda always sets it; a record without one (a replayed dead letter) arrives now.
        arrival = k.get("approximateArrivalTimestamp")
        if type(arrival) is not float and type(arrival) is not int:
            arrival = envelope.number(k, "approximateArrivalTimestamp", "kinesis.")
        ms = (time.time() if arrival is None else arrival) * 1000
        if not in_range(ms):  # inf, 1e300: no time the archive can write
            raise DecodeError(
                "shape", f"approximateArrivalTimestamp {arrival} is not a time in years 1-9999"
            )
        ts = int(ms)
        source = {
            "kind": "kinesis",
            "stream": stream,
            "shard": shard,
            "sequence": seq,
            "partition_key": partition_key,
            "account": account,
            "region": aws_region or region,
        }
        base_id = f"{stream}:{shard}:{seq}"
        if kpl.is_aggregated(data):
            users = kpl.deaggregate(data)
            # Every user record is checked first (UTF-8, gzip, JSON shape), so that taking
            # the events later cannot fail half way through the record. What the check
            # makes is let go: a record of 100,000 tiny user records would hold as many
            # event makers at once.
            for _, sub in users:
                _check(sub, region)
            result.events = LazyEvents(lambda: _kpl_events(users, base_id, tag, ts, source, region))
        else:
            result.events = _record_events(data, base_id, tag, ts, source, region)
    except DecodeError as e:
        result.error = e
        result.events = []
    return result


def sequence_of(rec: Any) -> str:
    """A record's sequence number as text ("" when it has none a batch response can name)."""
    return _sequence(rec.get("kinesis") if isinstance(rec, dict) else None)


def _sequence(k: Any) -> str:
    s = k.get("sequenceNumber") if isinstance(k, dict) else None
    if type(s) is int and s >= 0:
        return str(s)
    return s if isinstance(s, str) and len(s) <= 256 else ""


def records(event: Any) -> list[Any]:
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise DecodeError("shape", "not a Kinesis event (no 'Records' list)")
    return event["Records"]
