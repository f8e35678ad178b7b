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

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.errors import DecodeError
from chalicelib.event import LogEvent
from chalicelib.parsers import parse_message
from chalicelib.sources import kpl
from chalicelib.sources.cloudwatch import batch_from_document, decode_data_bytes

# A record's own tag names its archive path (`archive/tag=<tag>/dt=…`): a `/`, a control
# character or a space there would let log content choose partitions (`x/dt=2001-01-01`).
# Tags are the ASCII characters of log group names and rule patterns, at most 512 like log
# group names (so the archive key stays under S3's 1,024 bytes); any other `tag` stays a
# field of the record.
_TAG = re.compile(r"[\w.:@#$=+-]{1,512}", re.ASCII)


@dataclass(slots=True)
class KinesisRecordResult:
    sequence: str
    events: list[LogEvent] = field(default_factory=list)
    error: DecodeError | None = None
    raw: bytes = b""


def stream_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else (arn or "unknown")


def _record_events(
    data: bytes, base_id: str, default_tag: str, ts: int, source: dict[str, Any], region: str
) -> list[LogEvent]:
    if data[:2] == b"\x1f\x8b":
        doc = decode_data_bytes(data)
        batch = batch_from_document(doc, region)
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
    # Lines end at "\n" (and "\r\n") only: str.splitlines also breaks at U+2028, form feeds
    # and other separators that JSON strings and log text may hold, which cut one event in two.
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if len(lines) > 1 and text.lstrip().startswith("{"):
        # A pretty-printed JSON object is one event; JSON lines (several objects in one
        # record, as Fluent Bit's aggregation writes them) are one event each.
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            lines = [text]
    events = []
    n = 0
    for line in lines:
        if not line.strip():
            continue
        record, t = parse_message(line)
        tag = record.get("tag")
        if isinstance(tag, str) and _TAG.fullmatch(tag):
            del record["tag"]
        else:  # not usable as a tag: it stays a field of the record
            tag = default_tag
        events.append(LogEvent(tag, t if t is not None else ts, record, source, f"{base_id}:{n}"))
        n += 1
    return events


def decode_record(rec: Any, region: str) -> KinesisRecordResult:
    """One Lambda Kinesis record -> its events, or its DecodeError (never raises)."""
    k = rec.get("kinesis") if isinstance(rec, dict) else None
    seq = str(k.get("sequenceNumber", "")) if isinstance(k, dict) else ""
    result = KinesisRecordResult(seq)
    try:
        if not isinstance(k, dict) or not isinstance(k.get("data"), str):
            raise DecodeError("shape", "not a Kinesis record (no 'kinesis.data')")
        try:
            data = base64.b64decode(k["data"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise DecodeError("base64", str(e)) from e
        result.raw = data
        arn = str(rec.get("eventSourceARN", ""))
        stream = stream_name(arn)
        shard = str(rec.get("eventID", "")).split(":", 1)[0]
        arrival = k.get("approximateArrivalTimestamp") or 0
        try:
            ts = int(float(arrival) * 1000)
        except (TypeError, ValueError, OverflowError) as e:
            raise DecodeError("shape", f"approximateArrivalTimestamp {arrival!r}: {e}") from e
        parts = arn.split(":")
        source = {
            "kind": "kinesis",
            "stream": stream,
            "shard": shard,
            "sequence": seq,
            "partition_key": k.get("partitionKey"),
            "account": parts[4] if len(parts) > 4 else None,
            "region": rec.get("awsRegion") or region,
        }
        base_id = f"{stream}:{shard}:{seq}"
        tag = f"kinesis.{stream}"
        if kpl.is_aggregated(data):
            for i, (pk, sub) in enumerate(kpl.deaggregate(data)):
                sub_source = {**source, "partition_key": pk, "subsequence": i}
                result.events.extend(
                    _record_events(sub, f"{base_id}:{i}", tag, ts, sub_source, region)
                )
        else:
            result.events = _record_events(data, base_id, tag, ts, source, region)
    except DecodeError as e:
        result.error = e
        result.events = []
    return result


def records(event: Any) -> list[Any]:
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise DecodeError("shape", "not a Kinesis event (no 'Records' list)")
    return event["Records"]
