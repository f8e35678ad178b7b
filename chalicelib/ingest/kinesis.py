"""The Kinesis workflow: one batch of records through the pipeline, failures handed back.

A record that cannot be decoded is dead-lettered with its sequence number and
counts as handled, so a poison record never blocks its shard. Records are
reported failed only when their events could be neither delivered nor
dead-lettered; Lambda then retries from the lowest failed sequence number.
Powertools' BatchProcessor is not used: it calls a handler per record, and
Sluice's actions work on the whole batch (one archive object per tag and hour,
one alert per rule), which is where its throughput comes from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import DecodeError
from chalicelib.event import Ledger, LogEvent
from chalicelib.ingest.batch import BatchResponse, raw_bytes
from chalicelib.invocation import Invocation
from chalicelib.loopguard import LoopGuard, loop_guard
from chalicelib.pipeline import Pipeline, Slices
from chalicelib.sources import kinesis


@dataclass(slots=True)
class BatchOutcome:
    ledger: Ledger
    response: BatchResponse = field(default_factory=BatchResponse)
    extra: dict[str, Any] = field(default_factory=dict)


def ingest_batch(pipeline: Pipeline, event: Any, inv: Invocation) -> BatchOutcome:
    """Decode, route and deliver a Kinesis batch; the outcome names the records Lambda
    must retry (`response`) and what the report line adds (`extra`)."""
    try:
        recs = kinesis.records(event)
    except DecodeError as e:
        ledger = pipeline.reject(raw_bytes(event), e, inv)
        return BatchOutcome(ledger, extra={"decode_error": str(e)})
    out = BatchOutcome(Ledger())
    if inv.remaining_ms() < pipeline.rt.settings.deadline_margin_ms:
        # Too little time to do the batch safely: hand it back whole, untouched.
        out.response.fail(*(sequence(r) for r in recs))
        out.extra["deadline"] = True
        return out
    # Events are processed in slices as records are read (chalicelib.budget): a batch of
    # 1 MiB records can hold millions of them.
    sink = pipeline.slices(inv, batch_id(recs))
    dead_lettered: set[str] = set()
    try:
        _decode(pipeline, recs, inv, out, sink, dead_lettered)
        sink.flush()
    except Exception as e:  # archive and DLQ both failed: nothing of the batch is safe
        handed_back = set(out.response.failed)
        out.response.fail(
            *(s for s in map(sequence, recs) if s not in dead_lettered and s not in handed_back),
            error=f"batch failed: {type(e).__name__}: {e}",
        )
        out.ledger.received += sink.pending
    out.ledger.merge(sink.ledger)
    out.response.report_into(out.extra)
    if pipeline.rt.rules.last_error:
        out.extra["rules_error"] = pipeline.rt.rules.last_error
    out.extra["records"] = len(recs)
    out.extra["failed_records"] = len(out.response)
    return out


def _decode(
    pipeline: Pipeline,
    recs: list[Any],
    inv: Invocation,
    out: BatchOutcome,
    sink: Slices,
    dead_lettered: set[str],
) -> None:
    """Each record's events into `sink` (processed a slice at a time); an undecodable
    record dead-lettered (its sequence added to `dead_lettered`)."""
    region = pipeline.rt.settings.region
    ledger = out.ledger
    guard = loop_guard(pipeline.rt.settings, inv.function_name)
    for i, rec in enumerate(recs):
        res = kinesis.decode_record(rec, region)
        if res.error is None:
            _take(res.events, sink, ledger, guard)
            continue
        origin = {
            "sequence": res.sequence,
            "event_id": rec.get("eventID") if isinstance(rec, dict) else None,
        }
        try:
            ledger.merge(pipeline.reject(res.raw or raw_bytes(rec), res.error, inv, origin))
        except Exception as e:
            # The DLQ itself failed. Lambda retries the shard from this record on, later
            # records included: hand them all back now, or the retry archives them twice.
            out.response.fail(
                *(sequence(r) for r in recs[i:]),
                error=f"dead-letter failed: {type(e).__name__}: {e}",
            )
            return
        dead_lettered.add(res.sequence)


def _take(events: Iterable[LogEvent], sink: Slices, ledger: Ledger, guard: LoopGuard) -> None:
    """A record's events into the pipeline, but for Sluice's own logs arriving through
    the fan-in stream (the loop guard: dropped, counted). Every event is looked at:
    one record may carry several log groups (KPL)."""
    source: dict[str, Any] | None = None
    guarded = False
    for ev in events:
        if ev.source is not source:
            source = ev.source
            group = source.get("log_group")
            guarded = guard.owns(group)
        if guarded:
            ledger.received += ev.count
            ledger.drop("loop_guard", ev.count)
        else:
            sink.add(ev)


def batch_id(records: list[Any]) -> str:
    """Archive keys from the batch's records, not the invocation: Lambda retries a
    failed Kinesis batch in a new invocation, and the same records must land on the
    same keys (overwritten, never duplicated). Stream and shard too: a sequence number
    is unique only within its shard, and one function may read several streams."""
    ids = ",".join(record_key(r) for r in records).encode()
    return "kinesis-" + hashlib.sha256(ids).hexdigest()[:24]


def sequence(rec: Any) -> str:
    k = rec.get("kinesis") if isinstance(rec, dict) else None
    return str(k.get("sequenceNumber", "")) if isinstance(k, dict) else ""


def record_key(rec: Any) -> str:
    """`<stream ARN>/<shardId-...:sequence>`: a record's identity across shards and streams."""
    if not isinstance(rec, dict):
        return ""
    return f"{rec.get('eventSourceARN', '')}/{rec.get('eventID') or sequence(rec)}"
