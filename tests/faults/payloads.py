"""Trigger payloads for the fault scenarios, each with the `Inputs` it carries.

Events are written as a spec string, one letter an event, each carrying a token
(`evt-0007`) in its message so alerts can be traced back to events:

    o  ordinary line                       archived
    a  "computer on fire"                  archived, alerted on Slack (#ops)
    h  JSON GET /healthz                   dropped by `health-noise`
    p  JSON level ERROR                    archived, paged on SNS (ops-pager)
    f  "forward me"                        archived, forwarded to Kinesis (sluice-forward)
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.sources import cloudwatch
from sluice_cli import payloads
from sluice_cli.payloads import subscription_event

from .readback import Inputs

T0 = 1795687621000  # 2026-11-26T10:07:01Z, the sample payloads' hour
HOUR_MS = 3_600_000
GROUP = "/aws/lambda/kiosk"
LOG_STREAM = "2026/11/26/[$LATEST]0a1b2c"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-fan-in"
SHARD = "shardId-000000000000"
FORWARD_STREAM = "sluice-forward"

RULES: dict[str, Any] = {
    "rules": [
        {
            "id": "health-noise",
            "priority": 10,
            "match": {"where": [{"field": "path", "equals": "/healthz"}]},
            "actions": ["drop"],
        },
        {
            "id": "computer-alerts",
            "priority": 20,
            "match": {"where": [{"field": "message", "regex": "(?i)computer"}]},
            "actions": [{"slack": {"channel": "#ops", "text": "{tag}: {message}"}}],
        },
        {
            "id": "pager",
            "priority": 30,
            "match": {"where": [{"field": "level", "equals": "ERROR"}]},
            "actions": [{"sns": {"topic": "ops-pager"}}],
        },
        {
            "id": "fan-out",
            "priority": 40,
            "match": {"where": [{"field": "message", "contains": "forward me"}]},
            "actions": [{"forward": {"to": "kinesis", "stream": FORWARD_STREAM}}],
        },
    ]
}


def token(n: int) -> str:
    return f"evt-{n:04d}"


def message(kind: str, n: int) -> str:
    tok = token(n)
    return {
        "o": f"order placed {tok}",
        "a": f"computer on fire {tok}",
        "h": json.dumps({"message": f"GET /healthz {tok}", "path": "/healthz"}),
        "p": json.dumps({"message": f"payment failed {tok}", "level": "ERROR"}),
        "f": f"forward me {tok}",
    }[kind]


def cloudwatch_payload(
    spec: str, *, first: int = 1, split_hour: int | None = None, group: str = GROUP
) -> tuple[dict[str, Any], Inputs]:
    """A subscription payload with one event per letter of `spec`; events from index
    `split_hour` on fall in the next hour (a second archive object)."""
    log_events, inputs = [], Inputs()
    for i, kind in enumerate(spec):
        n = first + i
        ts = T0 + i * 10 + (HOUR_MS if split_hour is not None and i >= split_hour else 0)
        event_id = f"3791{n:052d}"
        log_events.append({"id": event_id, "timestamp": ts, "message": message(kind, n)})
        inputs.units[event_id] = 1
        inputs.tokens[token(n)] = event_id
        if kind == "h":
            inputs.dropped.add(event_id)
    return subscription_event(group, LOG_STREAM, log_events), inputs


def sample_inputs(event: dict[str, Any]) -> Inputs:
    """The ids a sample payload from events/ carries (decoded as the handler decodes it)."""
    batch = cloudwatch.decode(event, "us-east-1")
    return Inputs(units={e.id: e.count for e in batch.events})


sequence = payloads.sample_sequence


def kinesis_record(n: int, data: bytes) -> dict[str, Any]:
    """Record number `n` of the fan-in stream's shard, shaped as Lambda delivers it."""
    return payloads.kinesis_record(
        data,
        sequence=sequence(n),
        partition_key=f"pk-{n}",
        arrival=T0 / 1000 + n,
        stream_arn=STREAM_ARN,
        shard=SHARD,
    )


APP = {"o": "orders", "a": "kiosk"}  # kinesis records' own tags, by kind
POISON = b"\x1f\x8btruncated-gzip"  # gzip magic, then nothing gzip can read


def kinesis_batch(spec: str, *, first: int = 1) -> tuple[dict[str, Any], Inputs]:
    """One record per letter: a JSON log line tagged `app.<kind>` (so a batch spans
    several archive objects), or `x`, a poison record that cannot be decoded."""
    records, inputs = [], Inputs()
    for i, kind in enumerate(spec):
        n = first + i
        if kind == "x":
            records.append(kinesis_record(n, POISON))
            inputs.raw_units += 1
            continue
        text = message(kind, n)
        doc = json.loads(text) if text.startswith("{") else {"message": text}
        doc["tag"] = "app." + APP.get(kind, "misc")
        records.append(kinesis_record(n, json.dumps(doc).encode()))
        event_id = f"sluice-fan-in:{SHARD}:{sequence(n)}:0"
        inputs.units[event_id] = 1
        inputs.tokens[token(n)] = event_id
        if kind == "h":
            inputs.dropped.add(event_id)
    return {"Records": records}, inputs


def records_from(event: dict[str, Any], sequence_number: str) -> dict[str, Any]:
    """What Lambda sends when it retries a Kinesis batch after a partial failure: every
    record from the lowest failed sequence number on (the later ones included)."""
    recs = event["Records"]
    start = next(i for i, r in enumerate(recs) if r["kinesis"]["sequenceNumber"] == sequence_number)
    return {"Records": recs[start:]}


OBJECTS_BUCKET = "app-logs-example"  # the bucket the s3_objects sample notifies about


def s3_objects_event(
    sample: dict[str, Any], s3: Any, specs: list[str], *, first: int = 1
) -> tuple[dict[str, Any], Inputs]:
    """The s3_objects sample (SQS messages of S3 notifications), its objects put in the
    mocked bucket with one JSON line per letter of each spec, eTags and sizes pointed at
    what was put. Returns the event and its inputs (ids `<object id>:<line>`)."""
    import gzip
    from urllib.parse import unquote_plus

    from chalicelib.sources.s3 import ObjectRef

    event = json.loads(json.dumps(sample))
    inputs, n = Inputs(), first
    for rec, spec in zip(event["Records"], specs, strict=True):
        body = json.loads(rec["body"])
        obj = body["Records"][0]["s3"]["object"]
        key = unquote_plus(obj["key"])
        lines = []
        for kind in spec:
            text = message(kind, n)
            doc = json.loads(text) if text.startswith("{") else {"message": text}
            lines.append(json.dumps({"time": "2026-11-26T10:07:01.000Z", **doc}))
            n += 1
        data = ("\n".join(lines) + "\n").encode()
        if key.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        etag = s3.put_object(Bucket=OBJECTS_BUCKET, Key=key, Body=data)["ETag"].strip('"')
        obj.update(eTag=etag, size=len(data))
        rec["body"] = json.dumps(body)
        oid = ObjectRef(OBJECTS_BUCKET, key, None, etag).object_id
        start = n - len(spec)
        for line, kind in enumerate(spec, 1):
            event_id = f"{oid}:{line}"
            inputs.units[event_id] = 1
            inputs.tokens[token(start + line - 1)] = event_id
            if kind == "h":
                inputs.dropped.add(event_id)
    return event, inputs
