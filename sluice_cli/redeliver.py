"""Sending dead-lettered and archived events back through Sluice.

Dead letters are replayed by the stage that failed them:
- `decode` (input that never became events): the payload goes back to the function
  that refused it, once it decodes (a payload that still cannot be decoded stays);
- `archive`: the events are archived (keys derived from the dead-letter message, so
  a replay retried after a crash overwrites rather than duplicates);
- `action`: the events go to the same rule's action under the current rules; alert
  dedupe by event id still applies, so nothing is alerted twice;
- `read` (an S3 object that could not be read): the object's claim is released and
  it is read again.
Lambda's own failure records (an on-failure destination's `requestPayload`) are
sent back to the function they name.

Archived events can be replayed through the rules (current or a given version) to
re-alert or re-forward after a fix, without being archived a second time.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from chalicelib import handlers
from chalicelib.actions.archive import PREFIX as ARCHIVE_PREFIX
from chalicelib.actions.archive import read_lines
from chalicelib.delivery import deliver
from chalicelib.errors import DecodeError
from chalicelib.event import Ledger, LogEvent
from chalicelib.ingest import s3_objects
from chalicelib.invocation import Invocation
from chalicelib.normalise import to_epoch_ms
from chalicelib.pipeline import Pipeline, Runtime, route
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.tags import TagPattern
from chalicelib.sources import cloudwatch, kinesis, s3
from chalicelib.sources.s3 import ObjectRef


@dataclass
class ReplayOutcome:
    done: bool
    detail: str
    ledger: Ledger = field(default_factory=Ledger)


def events_from_envelopes(items: list[dict[str, Any]]) -> list[LogEvent]:
    """Archive/dead-letter envelopes back into LogEvents."""
    out = []
    for it in items:
        t = to_epoch_ms(it.get("time")) or 0
        out.append(
            LogEvent(
                str(it.get("tag", "replay")),
                t,
                dict(it.get("record") or {}),
                dict(it.get("source") or {}),
                str(it.get("id", "")),
            )
        )
    return out


def _function(body: dict[str, Any]) -> str:
    """The handler a dead letter came from: Lambda names end with the function name."""
    name = str(body.get("function") or "")
    for f in ("cloudwatch_logs", "kinesis_records", "s3_objects", "s3_object_created"):
        if name.endswith(f):
            return f
    return name


def _spilled(rt: Runtime, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bytes(rt.clients.get("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def load_events(rt: Runtime, body: dict[str, Any]) -> list[LogEvent]:
    if "events_s3" in body:
        doc = orjson.loads(_spilled(rt, body["events_s3"]))
        return events_from_envelopes(doc.get("events", []))
    return events_from_envelopes(body.get("events", []))


def replay_dead_letter(
    rt: Runtime, body: dict[str, Any], message_id: str, inv: Invocation
) -> ReplayOutcome:
    """Replay one dead-letter message; `done` means it may be deleted from the queue."""
    if "KinesisBatchInfo" in body:
        # The records are in the stream, not here: re-read the shard range (or let the
        # retention window run out); the letter stays until someone does.
        return ReplayOutcome(False, "a Kinesis batch record: re-read the shard range it names")
    if "requestPayload" in body and "requestContext" in body:
        fn = str(body["requestContext"].get("functionArn", "")).rsplit(":", 1)[-1]
        return _reinvoke(rt, fn, body["requestPayload"], inv)
    stage = body.get("stage")
    if stage == "decode" and ("raw" in body or "raw_s3" in body):
        raw = _spilled(rt, body["raw_s3"]) if "raw_s3" in body else base64.b64decode(body["raw"])
        fn = _function(body)
        if fn == "kinesis_records" and body.get("origin", {}).get("sequence"):
            return _replay_kinesis_record(rt, raw, body["origin"], inv)
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return ReplayOutcome(False, "payload is not JSON: it cannot be sent again as is")
        return _reinvoke(rt, fn, event, inv)
    if stage in ("decode", "read") and "origin" in body and "bucket" in body["origin"]:
        return _reread_object(rt, body["origin"], inv)
    if stage == "archive":
        events = load_events(rt, body)
        batch = "dlq-" + hashlib.sha256(message_id.encode()).hexdigest()[:16]
        result = rt.archiver().write(events, batch)
        if result.failed:
            return ReplayOutcome(False, f"archive failed again: {result.failed[0][1]}")
        ledger = Ledger(received=len(events), archived=result.archived)
        return ReplayOutcome(True, f"archived {result.archived} event(s)", ledger)
    if stage == "action":
        return _replay_action(rt, body, load_events(rt, body), inv)
    return ReplayOutcome(False, f"nothing to replay for stage {stage!r}")


def _reinvoke(rt: Runtime, fn: str, event: Any, inv: Invocation) -> ReplayOutcome:

    ctx = _Context(inv, fn)
    try:
        if fn == "cloudwatch_logs":
            cloudwatch.decode(event, rt.settings.region)  # still undecodable: keep it
            result = handlers.handle_cloudwatch_logs(event, ctx, rt)
        elif fn == "s3_objects":
            for rec in event.get("Records", []) if isinstance(event, dict) else []:
                s3.parse_sqs_body(str(rec.get("body", "")))
            result = handlers.handle_s3_objects(event, ctx, rt)
        elif fn == "kinesis_records":
            result = handlers.handle_kinesis_records(event, ctx, rt)
        elif fn == "s3_object_created":
            s3.ref_from_eventbridge(event)
            result = handlers.handle_s3_object_created(event, ctx, rt)
        else:
            return ReplayOutcome(False, f"unknown function {fn!r}")
    except DecodeError as e:
        return ReplayOutcome(False, f"still undecodable: {e}")
    if result.get("batchItemFailures"):
        return ReplayOutcome(False, f"{len(result['batchItemFailures'])} item(s) failed again")
    return ReplayOutcome(True, f"sent back through {fn}")


def _replay_kinesis_record(
    rt: Runtime, data: bytes, origin: dict[str, Any], inv: Invocation
) -> ReplayOutcome:

    record = {
        "kinesis": {
            "data": base64.b64encode(data).decode(),
            "sequenceNumber": origin["sequence"],
            "partitionKey": "replay",
            "approximateArrivalTimestamp": 0,
        },
        "eventID": str(origin.get("event_id") or f"shardId-replay:{origin['sequence']}"),
        "eventSourceARN": "arn:aws:kinesis:::stream/replay",
    }
    res = kinesis.decode_record(record, rt.settings.region)
    if res.error is not None:
        return ReplayOutcome(False, f"still undecodable: {res.error}")
    result = handlers.handle_kinesis_records({"Records": [record]}, _Context(inv, "kinesis"), rt)
    if result.get("batchItemFailures"):
        return ReplayOutcome(False, "failed again")
    n = sum(ev.count for ev in res.events)
    return ReplayOutcome(True, f"{n} event(s) sent back through kinesis_records")


def _reread_object(rt: Runtime, origin: dict[str, Any], inv: Invocation) -> ReplayOutcome:

    ref = ObjectRef(origin["bucket"], origin["key"], origin.get("version"), origin.get("etag"))
    state = rt.state()
    if state is not None:
        state.release(ref)
    try:
        ledger, info = s3_objects.read_object(Pipeline(rt), ref, inv, None)
    except Exception as e:  # S3 still failing: keep the message
        return ReplayOutcome(False, f"read failed again: {type(e).__name__}: {e}")
    if info.get("error") or ledger.dead_lettered:
        return ReplayOutcome(
            False, f"s3://{ref.bucket}/{ref.key}: {info.get('error') or 'still damaged'}"
        )
    return ReplayOutcome(True, f"read s3://{ref.bucket}/{ref.key} again", ledger)


def _replay_action(
    rt: Runtime, body: dict[str, Any], events: list[LogEvent], inv: Invocation
) -> ReplayOutcome:

    rule_id, name = body.get("rule"), body.get("action")
    rules = rt.rules.get()
    d = next((r for r in rules.defs if r.id == rule_id), None)
    if d is None:
        return ReplayOutcome(False, f"rule {rule_id!r} is no longer in the rules")
    index = body.get("action_index")
    indices = (
        [index]
        if isinstance(index, int)
        else [i for i, a in enumerate(d.actions) if a.name == name]
    )
    indices = [i for i in indices if i < len(d.actions) and d.actions[i].name == name]
    if not indices:
        return ReplayOutcome(False, f"rule {rule_id!r} has no {name} action any more")
    ledger = Ledger()
    failures: list[str] = []

    def dead_letter(evs: list[LogEvent], reason: str, stage: str, **kw: Any) -> None:
        failures.append(reason)

    deliver({(d.id, i): events for i in indices}, rules, rt, inv, ledger, dead_letter)
    if failures:
        return ReplayOutcome(False, f"failed again: {failures[0]}", ledger)
    return ReplayOutcome(True, f"{name} of rule {rule_id}: {ledger.alerts} alert(s)", ledger)


class _Context:
    """A Lambda-context stand-in carrying the replaying invocation's clock."""

    def __init__(self, inv: Invocation, fn: str) -> None:
        self.aws_request_id = inv.request_id
        self.function_name = fn
        self.invoked_function_arn = f"arn:aws:lambda:{inv.region}:{inv.account}:function:{fn}"
        self._remaining = inv.remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining()


# ---------------------------------------------------------------- from the archive
def archived_events(
    rt: Runtime, tag_pattern: str, since_ms: int, until_ms: int
) -> Iterator[LogEvent]:
    """Archived events whose tag matches and whose time is in [since, until), read
    partition by partition (only the hours in range are listed)."""
    s3 = rt.clients.get("s3")
    bucket = rt.settings.archive_bucket
    pattern = TagPattern(tag_pattern)
    tags = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{ARCHIVE_PREFIX}/tag=", Delimiter="/"
    ):
        for p in page.get("CommonPrefixes", []):
            tag = p["Prefix"].rstrip("/").split("tag=", 1)[1]
            if pattern.matches(tag):
                tags.append(tag)
    hour_ms = 3_600_000
    first_hour, last_hour = since_ms // hour_ms, (until_ms - 1) // hour_ms
    for tag in sorted(tags):
        # List the days that exist (one delimited listing), not every hour of the range:
        # `--since` a year ago is 8,760 hours, most of them empty.
        for day in _prefixes(s3, bucket, f"{ARCHIVE_PREFIX}/tag={tag}/"):
            for hour_prefix in _prefixes(s3, bucket, day):
                try:
                    d = hour_prefix.split("dt=", 1)[1][:10]
                    h = int(hour_prefix.rstrip("/").rsplit("hour=", 1)[1])
                    t = int(datetime.strptime(d, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
                except (IndexError, ValueError):
                    continue  # not a partition Sluice wrote
                if not first_hour <= t // 3600 + h <= last_hour:
                    continue
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=hour_prefix
                ):
                    for obj in page.get("Contents", []):
                        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                        for ev in events_from_envelopes(read_lines(body)):
                            if since_ms <= ev.time < until_ms:
                                yield ev


def _prefixes(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    ):
        for p in page.get("CommonPrefixes", []):
            yield p["Prefix"]


def replay_archive(
    rt: Runtime,
    events: Iterator[LogEvent],
    inv: Invocation,
    rules: RuleSet | None = None,
    batch: int = 1000,
) -> Ledger:
    """Route archived events through the rules and run their actions; nothing is archived
    again. Alerts keep their dedupe by event id: events already alerted are not re-sent."""

    rules = rules or rt.rules.get()
    total = Ledger()
    chunk: list[LogEvent] = []

    def flush() -> None:
        if not chunk:
            return
        routed = route(chunk, rules)
        ledger = Ledger(received=len(chunk))
        for rule_id, n in routed.matched.items():
            ledger.rule(rule_id)["matched"] += n
        dlq = rt.dead_letters()

        def dead_letter(evs: list[LogEvent], reason: str, stage: str, **kw: Any) -> None:
            dlq.send_events(
                evs, reason, stage=stage, invocation=inv.request_id, function="replay", **kw
            )

        if routed.deliveries:
            deliver(routed.deliveries, rules, rt, inv, ledger, dead_letter)
        total.merge(ledger)
        chunk.clear()

    for ev in events:
        chunk.append(ev)
        if len(chunk) >= batch:
            flush()
    flush()
    return total
