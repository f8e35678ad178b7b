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
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import DecodeError
from chalicelib.event import Ledger, LogEvent
from chalicelib.ingest.batch import BatchResponse, raw_bytes
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Pipeline
from chalicelib.sources import kinesis
from chalicelib.subscriptions.patterns import is_sluice_log_group


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
    events, ok_sequences, taken = _decode(pipeline, recs, inv, out)
    try:
        out.ledger.merge(pipeline.process(events, inv, batch_id=batch_id(taken)))
    except Exception as e:  # archive and DLQ both failed: nothing of the batch is safe
        out.response.fail(*ok_sequences, error=f"batch failed: {type(e).__name__}: {e}")
        out.ledger.received += sum(ev.count for ev in events)
    out.response.report_into(out.extra)
    if pipeline.rt.rules.last_error:
        out.extra["rules_error"] = pipeline.rt.rules.last_error
    out.extra["records"] = len(recs)
    out.extra["failed_records"] = len(out.response)
    return out


def _decode(
    pipeline: Pipeline, recs: list[Any], inv: Invocation, out: BatchOutcome
) -> tuple[list[LogEvent], list[str], list[Any]]:
    """The batch's events, the sequences they came from, and the records taken (all of
    them unless the dead-letter queue failed part-way)."""
    region = pipeline.rt.settings.region
    ledger = out.ledger
    events: list[LogEvent] = []
    ok_sequences: list[str] = []
    for i, rec in enumerate(recs):
        res = kinesis.decode_record(rec, region)
        if res.error is None:
            group = res.events[0].source.get("log_group") if res.events else None
            if isinstance(group, str) and is_sluice_log_group(group):
                # Loop guard: Sluice's own logs arriving through the fan-in stream.
                ledger.received += len(res.events)
                ledger.drop("loop_guard", len(res.events))
            else:
                events.extend(res.events)
            ok_sequences.append(res.sequence)
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
            return events, ok_sequences, recs[:i]
    return events, ok_sequences, recs


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
