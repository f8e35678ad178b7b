"""Sending dead-lettered and archived events back through Sluice.

Dead letters are replayed by the stage that failed them:
- `decode` (input that never became events): the payload goes back to the function
  that refused it, once it decodes (a payload that still cannot be decoded stays);
- `archive`: the events the archive does not hold yet are archived (checked by event
  id: a Lambda retry may have archived them since), under keys derived from the dead-
  letter message, so a replay retried after a crash overwrites rather than duplicates;
- `action`: the events go to the same rule's action under the current rules; alert
  dedupe by event id still applies, so nothing is alerted twice;
- `read` (an S3 object that could not be read): the object's claim is released and
  it is read again.
Lambda's own on-failure records (sluice_cli/onfailure.py) are sent back to the
function they name (its ARN qualified or not), under the original request id; a
Kinesis batch record's range is read back from the stream. Messages an SQS redrive
moved from the objects queue go back through `s3_objects`. Anything else is kept,
with the reason.

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
from chalicelib.actions.archive import ArchiveIndex, read_lines
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
from sluice_cli import onfailure


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


HANDLERS = ("cloudwatch_logs", "kinesis_records", "s3_objects", "s3_object_created")


def _handler(name: str) -> str | None:
    """The handler a function name stands for (`sluice-prod-cloudwatch_logs` ->
    `cloudwatch_logs`), or None for a function that is not (or no longer) Sluice's."""
    for f in HANDLERS:
        if name == f or name.endswith(("-" + f, "_" + f)):
            return f
    return None


def identity(*parts: str | bytes) -> str:
    """A stable name for what a replay writes, from what identifies the dead letter."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return "dlq-" + h.hexdigest()[:24]


def _spilled(rt: Runtime, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bytes(rt.clients.get("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def load_events(rt: Runtime, body: dict[str, Any]) -> list[LogEvent]:
    if "events_s3" in body:
        doc = orjson.loads(_spilled(rt, body["events_s3"]))
        return events_from_envelopes(doc.get("events", []))
    return events_from_envelopes(body.get("events", []))


NOT_A_LETTER = "neither Sluice's dead letter nor a Lambda on-failure record"


def replay_dead_letter(rt: Runtime, body: Any, message_id: str, inv: Invocation) -> ReplayOutcome:
    """Replay one dead-letter message; `done` means it may be deleted from the queue.

    Whatever a replay writes is named after the letter (Lambda's original request id, or
    the letter's own identity), never after the replaying process: letters of one log
    group and hour do not overwrite each other, and a letter replayed twice rewrites the
    same objects."""
    if not isinstance(body, dict):
        return ReplayOutcome(False, f"{NOT_A_LETTER}: a JSON {type(body).__name__}")
    try:
        record = onfailure.parse(body)
    except onfailure.RecordError as e:
        return ReplayOutcome(False, f"incomplete Lambda on-failure record: {e}")
    if isinstance(record, onfailure.StreamBatch):
        return _replay_stream_batch(rt, record, inv)
    if isinstance(record, onfailure.AsyncFailure):
        fn = _handler(record.function)
        if fn is None:
            return ReplayOutcome(
                False, f"function {record.function!r} is not a Sluice function (removed?)"
            )
        # The original request id: Lambda's attempts of this event archived under it, so
        # the replay rewrites whatever they wrote instead of adding a copy.
        request_id = record.request_id or identity(message_id)
        return _reinvoke(rt, fn, record.payload, inv, request_id)
    if _is_s3_notification(body):
        return _redrive_message(rt, body, message_id, inv)
    stage = body.get("stage")
    if stage is None:
        return ReplayOutcome(False, f"{NOT_A_LETTER} (no stage, requestContext or Records)")
    if stage == "decode" and ("raw" in body or "raw_s3" in body):
        raw = _spilled(rt, body["raw_s3"]) if "raw_s3" in body else base64.b64decode(body["raw"])
        fn = _handler(str(body.get("function") or ""))
        request_id = identity(str(body.get("invocation") or ""), raw)
        if fn == "kinesis_records" and body.get("origin", {}).get("sequence"):
            return _replay_kinesis_record(rt, raw, body["origin"], inv, request_id)
        if fn is None:
            return ReplayOutcome(False, f"function {body.get('function')!r} is not Sluice's")
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return ReplayOutcome(False, "payload is not JSON: it cannot be sent again as is")
        return _reinvoke(rt, fn, event, inv, request_id)
    if stage in ("decode", "read") and "origin" in body and "bucket" in body["origin"]:
        return _reread_object(rt, body["origin"], inv)
    if stage == "archive":
        return _archive_missing(rt, load_events(rt, body), identity(message_id))
    if stage == "action":
        return _replay_action(rt, body, load_events(rt, body), inv)
    return ReplayOutcome(False, f"nothing to replay for stage {stage!r}")


def _archive_missing(rt: Runtime, events: list[LogEvent], batch: str) -> ReplayOutcome:
    """Archive the events the archive does not hold yet (a Lambda retry may have archived
    them after this letter was written): checked by event id in their partitions."""
    index = ArchiveIndex(rt.clients.get("s3"), rt.settings.archive_bucket)
    missing = [ev for ev in events if not index.contains(ev)]
    result = rt.archiver().write(missing, batch)
    if result.failed:
        return ReplayOutcome(False, f"archive failed again: {result.failed[0][1]}")
    already = len(events) - len(missing)
    ledger = Ledger(received=len(events), archived=len(events))
    return ReplayOutcome(
        True, f"archived {result.archived} event(s), {already} already archived", ledger
    )


def _is_s3_notification(body: dict[str, Any]) -> bool:
    """A message an SQS redrive moved from the objects queue: what S3 (directly, through
    SNS or EventBridge) or Sluice's own continuation put there."""
    if body.get("Type") == "Notification" or body.get("detail-type") == "Object Created":
        return True
    if "sluice_continuation" in body or body.get("Event") == "s3:TestEvent":
        return True
    recs = body.get("Records")
    return isinstance(recs, list) and bool(recs) and isinstance(recs[0], dict) and "s3" in recs[0]


def _redrive_message(
    rt: Runtime, body: dict[str, Any], message_id: str, inv: Invocation
) -> ReplayOutcome:
    """An objects-queue message back through `s3_objects` (object claims keep it once)."""
    event = {"Records": [{"messageId": message_id, "body": orjson.dumps(body).decode()}]}
    try:
        result = handlers.handle_s3_objects(event, _Context(inv, "s3_objects"), rt)
    except Exception as e:
        return ReplayOutcome(False, f"s3_objects failed: {type(e).__name__}: {e}")
    if result.get("batchItemFailures"):
        return ReplayOutcome(False, "the message failed again in s3_objects")
    return ReplayOutcome(True, "sent back through s3_objects")


def _reinvoke(rt: Runtime, fn: str, event: Any, inv: Invocation, request_id: str) -> ReplayOutcome:
    ctx = _Context(inv, fn, request_id)
    try:
        if fn == "cloudwatch_logs":
            cloudwatch.decode(event, rt.settings.region)  # still undecodable: keep it
            result = handlers.handle_cloudwatch_logs(event, ctx, rt)
        elif fn == "s3_objects":
            for rec in event.get("Records", []) if isinstance(event, dict) else []:
                s3.parse_sqs_body(str(rec.get("body", "")))
            result = handlers.handle_s3_objects(event, ctx, rt)
        elif fn == "kinesis_records":
            records = event.get("Records") if isinstance(event, dict) else None
            if not isinstance(records, list):
                return ReplayOutcome(False, "a kinesis_records event without Records")
            return _replay_kinesis_records(rt, records, inv, request_id)
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


def _replay_stream_batch(
    rt: Runtime, batch: onfailure.StreamBatch, inv: Invocation
) -> ReplayOutcome:
    """A Kinesis batch Lambda discarded, read back from the stream while it holds it."""
    records, problem = onfailure.read_range(rt.clients.get("kinesis"), batch, rt.settings.region)
    if not records:
        return ReplayOutcome(False, problem or f"no records in {batch.describe()}")
    name = identity(batch.stream_arn, batch.shard, batch.start, batch.end)
    outcome = _replay_kinesis_records(rt, records, inv, name)
    if problem is not None:  # what was readable is archived; the letter says what is gone
        return ReplayOutcome(False, f"{outcome.detail}; {problem}", outcome.ledger)
    return outcome


def _replay_kinesis_record(
    rt: Runtime, data: bytes, origin: dict[str, Any], inv: Invocation, name: str
) -> ReplayOutcome:
    seq = str(origin["sequence"])
    event_id = str(origin.get("event_id") or f"shardId-replay:{seq}")
    record = {
        "kinesis": {
            "data": base64.b64encode(data).decode(),
            "sequenceNumber": seq,
            "partitionKey": "replay",
            "approximateArrivalTimestamp": origin.get("arrival") or 0,
        },
        "eventID": event_id,
        "eventSourceARN": str(origin.get("stream_arn") or "arn:aws:kinesis:::stream/replay"),
    }
    return _replay_kinesis_records(rt, [record], inv, name)


def _replay_kinesis_records(
    rt: Runtime, records: list[Any], inv: Invocation, name: str
) -> ReplayOutcome:
    """Kinesis records through the pipeline outside the shard's positions (a replayed range
    lies behind them): archived only where the archive does not hold their events yet,
    under `name`; alerts keep their dedupe by event id."""
    pipeline = Pipeline(rt)
    events: list[LogEvent] = []
    for rec in records:
        res = kinesis.decode_record(rec, rt.settings.region)
        if res.error is not None:
            if len(records) == 1:
                return ReplayOutcome(False, f"still undecodable: {res.error}")
            continue  # its decode dead letter came from the attempt that read it
        events.extend(res.events)
    index = ArchiveIndex(rt.clients.get("s3"), rt.settings.archive_bucket)
    try:
        ledger = pipeline.process(events, inv, batch_id=name, archived=index.contains)
    except Exception as e:
        return ReplayOutcome(False, f"failed again: {type(e).__name__}: {e}")
    return ReplayOutcome(
        True, f"{len(events)} event(s) of {len(records)} record(s) sent through", ledger
    )


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
    """A Lambda-context stand-in carrying the replaying invocation's clock and the request
    id the replay writes under (the dead letter's, not the replaying process's)."""

    def __init__(self, inv: Invocation, fn: str, request_id: str | None = None) -> None:
        self.aws_request_id = request_id or inv.request_id
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
