"""The Kinesis workflow: one batch of records through the pipeline, failures handed back.

A record that cannot be decoded is dead-lettered with its sequence number and
counts as handled, so a poison record never blocks its shard. Records are
reported failed only when their events could be neither delivered nor
dead-lettered; Lambda then retries from the lowest failed sequence number.
Powertools' BatchProcessor is not used: it calls a handler per record, and
Sluice's actions work on the whole batch (one archive object per tag and hour,
one alert per rule), which is where its throughput comes from.

Positions (Fluentd's `pos_file` for a consumer with no disk): the state table keeps,
per stream and shard, the last sequence number whose events are archived or
dead-lettered, advanced conditionally and only forward once the archive is written.
A retry, whatever its composition (the records from the failed one on, bisected
halves, new records appended by a batching window), archives only the records past
the position; the records at or below it are still routed, so an alert that failed
with the dead-letter queue down is sent by the retry (deduplicated by event id).
Archive objects are named by the shard and the first sequence number they start
from, so a retry after a crash between the write and the position overwrites the
same objects. This holds while Lambda reads a shard one batch at a time: the
template pins `ParallelizationFactor: 1`, and a position found already past a
batch's new records (batches of one shard run concurrently) is reported as an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from chalicelib.errors import DecodeError, aws_fault
from chalicelib.event import Ledger, LogEvent
from chalicelib.ingest.batch import BatchResponse, raw_bytes
from chalicelib.invocation import Invocation
from chalicelib.loopguard import LoopGuard, loop_guard
from chalicelib.pipeline import Pipeline, Slices
from chalicelib.sources import kinesis
from chalicelib.state import Positions


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
    positions = _positions(pipeline)
    marks = _marks(positions, recs)
    fresh = [r for r in recs if not _at_or_below(r, marks)]
    # Records whose events are all in slices processed so far, per shard: where the
    # position may move once a slice's archive write is done.
    complete: dict[tuple[str, str], int] = {}
    fresh_shards = {shard_of(r) for r in fresh}
    # Where this batch has moved each position: a record longer than a slice completes
    # after several slices, and a slice that completed no record moves nothing (writing
    # the same sequence again would read as another batch having got there first).
    moved: dict[tuple[str, str], int] = {}

    def advance() -> None:
        if positions is None:
            return
        ahead = {k: n for k, n in complete.items() if n > moved.get(k, -1)}
        if ahead:
            _advance(positions, ahead, fresh_shards, out)
            moved.update(ahead)

    # Events are processed in slices as records are read (chalicelib.budget): a batch of
    # 1 MiB records can hold millions of them.
    sink = pipeline.slices(
        inv,
        batch_id(fresh or recs),
        archived=archived_test(marks),
        on_archived=advance,
    )
    dead_lettered: set[str] = set()
    spans: list[tuple[int, int]] = []  # per record taken: its events' [start, end) in the sink
    try:
        _decode(pipeline, recs, inv, out, sink, dead_lettered, marks, complete, spans)
        sink.flush()
    except Exception as e:
        if aws_fault(e):  # AWS throttling, 5xx, timeouts: nothing of the batch is safe
            skip = set(out.response.failed) | dead_lettered
            out.response.fail(
                *(s for s in map(sequence, recs) if s not in skip),
                error=f"batch failed: {type(e).__name__}: {e}",
            )
            out.ledger.received += sink.pending
        else:  # raised by the data: the records not yet processed, one at a time
            out.extra["one_at_a_time"] = f"{type(e).__name__}: {e}"[:500]
            out.ledger.merge(sink.ledger)
            sink.ledger = Ledger()
            rest = _unprocessed(recs, spans, sink.done, dead_lettered)
            _one_at_a_time(pipeline, rest, inv, out, marks, positions, guard_for(pipeline, inv))
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
    marks: dict[tuple[str, str], int],
    complete: dict[tuple[str, str], int],
    spans: list[tuple[int, int]],
) -> None:
    """Each record's events into `sink` (processed a slice at a time); an undecodable
    record dead-lettered (its sequence added to `dead_lettered`). A record at or below
    its shard's position that cannot be decoded was dead-lettered by the attempt that
    passed it. `complete` follows, per shard, the last record whose events are all in
    the sink (a slice processed while a record is being added holds only part of it)."""
    region = pipeline.rt.settings.region
    ledger = out.ledger
    guard = guard_for(pipeline, inv)
    for i, rec in enumerate(recs):
        res = kinesis.decode_record(rec, region)
        if res.error is None:
            start = sink.added
            spans.append((start, -1))  # a record that fails while taken has no end
            _take(res.events, sink, ledger, guard)
            spans[-1] = (start, sink.added)
            _complete(rec, complete)
            continue
        spans.append((0, 0))
        if _at_or_below(rec, marks):
            dead_lettered.add(res.sequence)
            _complete(rec, complete)
            continue
        origin = {
            "sequence": res.sequence,
            "event_id": envelope_text(rec, "eventID"),
            "stream_arn": shard_of(rec)[0] or None,
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
        _complete(rec, complete)


def guard_for(pipeline: Pipeline, inv: Invocation) -> LoopGuard:
    return loop_guard(pipeline.rt.settings, inv.function_name)


def _unprocessed(
    recs: list[Any], spans: list[tuple[int, int]], done: int, dead_lettered: set[str]
) -> list[tuple[Any, int]]:
    """The records of a failed batch still to process, each with the number of its first
    events already archived (a record whose events spanned a slice processed before the
    failure): every record after the last one wholly processed, none dead-lettered."""
    rest: list[tuple[Any, int]] = []
    for i, rec in enumerate(recs):
        if i < len(spans):
            start, end = spans[i]
            if start == end or (end != -1 and end <= done) or sequence(rec) in dead_lettered:
                continue  # no events (dead-lettered, empty) or all processed
            rest.append((rec, max(0, done - start)))
        else:
            rest.append((rec, 0))
    return rest


def _one_at_a_time(
    pipeline: Pipeline,
    rest: list[tuple[Any, int]],
    inv: Invocation,
    out: BatchOutcome,
    marks: dict[tuple[str, str], int],
    positions: Positions | None,
    guard: LoopGuard,
) -> None:
    """After a batch failed for a reason that is not AWS's: each record alone, its archive
    objects named after the record itself (a retry writes the same keys) and the shard's
    position moved past it once written. A record that fails alone is dead-lettered whole
    (its bytes, sequence number and the reason: stage `process`) and the next one goes on;
    an AWS fault hands this record and the later ones back, as a batch failure does."""
    region = pipeline.rt.settings.region
    archived = archived_test(marks)
    for i, (rec, skip) in enumerate(rest):
        res = kinesis.decode_record(rec, region)
        sink = pipeline.slices(inv, batch_id([rec]), archived=archived)
        try:
            _take(islice(res.events, skip, None), sink, out.ledger, guard)
            sink.flush()
        except Exception as e:
            out.ledger.merge(sink.ledger)
            if not aws_fault(e) and _at_or_below(rec, marks):
                continue  # archived or dead-lettered by the attempt that passed it
            if not aws_fault(e):
                try:
                    _poison(pipeline, rec, res.raw, e, inv, out)
                except Exception as dlq_error:
                    e = dlq_error
                else:
                    _moved(positions, rec)
                    continue
            out.response.fail(
                *(sequence(r) for r, _ in rest[i:]),
                error=f"record {sequence(rec)} failed: {type(e).__name__}: {e}",
            )
            return
        out.ledger.merge(sink.ledger)
        _moved(positions, rec)


def _poison(
    pipeline: Pipeline, rec: Any, raw: bytes, e: Exception, inv: Invocation, out: BatchOutcome
) -> None:
    """Dead-letter a record that fails on its own, with what raised."""
    origin = {
        "sequence": sequence(rec),
        "event_id": envelope_text(rec, "eventID"),
        "stream_arn": shard_of(rec)[0] or None,
    }
    pipeline.rt.dead_letters().send_raw(
        raw or raw_bytes(rec),
        f"process: {type(e).__name__}: {e}",
        stage="process",
        invocation=inv.request_id,
        function=inv.function_name,
        origin=origin,
    )
    out.ledger.received += 1
    out.ledger.dead_letter(f"process:{type(e).__name__}", 1)


def _moved(positions: Positions | None, rec: Any) -> None:
    """The shard's position past `rec` (archived or dead-lettered alone)."""
    k, n = shard_of(rec), _seq_int(rec)
    if positions is not None and k[0] and k[1] and n >= 0:
        positions.advance(k[0], k[1], str(n))


def envelope_text(rec: Any, key: str) -> str | None:
    """A record's attribute when it is a string (for a dead letter's origin)."""
    v = rec.get(key) if isinstance(rec, dict) else None
    return v[:2048] if isinstance(v, str) else None


def _complete(rec: Any, complete: dict[tuple[str, str], int]) -> None:
    k, n = shard_of(rec), _seq_int(rec)
    if k[0] and k[1] and n > complete.get(k, -1):
        complete[k] = n


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
    """Archive keys from where the records written start, not from the invocation: Lambda
    retries a failed Kinesis batch in a new invocation, and what it archives again must
    land on the same keys (overwritten, never duplicated). Per shard, its stream and the
    first sequence number: a retry may add records at the end (a batching window, new
    records) or stop earlier (a bisected half), but it starts where the position left it.
    Stream and shard too: a sequence number is unique only within its shard."""
    starts: dict[tuple[str, str], int] = {}
    for r in records:
        k = shard_of(r)
        n = _seq_int(r)
        if k not in starts or n < starts[k]:
            starts[k] = n
    ids = ",".join(f"{a}/{s}:{n}" for (a, s), n in sorted(starts.items())).encode()
    return "kinesis-" + hashlib.sha256(ids).hexdigest()[:24]


def shard_of(rec: Any) -> tuple[str, str]:
    """(stream ARN, shard id) of a Lambda Kinesis record."""
    if not isinstance(rec, dict):
        return ("", "")
    arn, event_id = rec.get("eventSourceARN"), rec.get("eventID")
    if not isinstance(arn, str) or not isinstance(event_id, str):
        return ("", "")  # refused by the decoder: no shard position is kept for it
    return (arn, event_id.split(":", 1)[0])


def _seq_int(rec: Any) -> int:
    s = sequence(rec)
    return int(s) if s.isdigit() else -1


def _positions(pipeline: Pipeline) -> Positions | None:
    table = pipeline.rt.state()
    return Positions(table.ddb, table.table) if table is not None else None


def _marks(positions: Positions | None, recs: list[Any]) -> dict[tuple[str, str], int]:
    """Each shard's position, for the shards of the batch that have one."""
    marks: dict[tuple[str, str], int] = {}
    if positions is None:
        return marks
    for k in {shard_of(r) for r in recs}:
        if not k[0] or not k[1]:
            continue
        pos = positions.get(*k)
        if pos is not None and pos.isdigit():
            marks[k] = int(pos)
    return marks


def _at_or_below(rec: Any, marks: dict[tuple[str, str], int]) -> bool:
    if not marks:
        return False
    mark = marks.get(shard_of(rec))
    return mark is not None and 0 <= _seq_int(rec) <= mark


def archived_test(marks: dict[tuple[str, str], int]) -> Callable[[LogEvent], bool] | None:
    """`_at_or_below` for an event, from the stream name, shard and sequence its source
    keeps; None when no shard of the batch has a position. The marks are keyed by (stream
    name, shard) once per batch, so an event costs one lookup (the first of several ARNs
    naming one stream and shard wins, as the marks are ordered)."""
    if not marks:
        return None
    by_source: dict[tuple[Any, Any], int] = {}
    for (arn, shard), mark in marks.items():
        by_source.setdefault((kinesis.stream_name(arn), shard), mark)

    def archived(ev: LogEvent) -> bool:
        source = ev.source
        try:
            mark = by_source.get((source.get("stream"), source.get("shard")))
        except TypeError:  # an unhashable stream or shard names no shard of the batch
            return False
        if mark is None:
            return False
        seq = str(source.get("sequence", ""))
        return seq.isdigit() and int(seq) <= mark

    return archived


def _advance(
    positions: Positions,
    last: dict[tuple[str, str], int],
    fresh_shards: set[tuple[str, str]],
    out: BatchOutcome,
) -> None:
    """Move each shard's position to the last record archived; a position already past
    a batch's new records means another batch of the shard ran at the same time."""
    for k, n in sorted(last.items()):
        if not positions.advance(k[0], k[1], str(n)) and k in fresh_shards:
            out.ledger.errors.append(
                f"{k[0]} {k[1]}: position already past {n}: batches of one shard ran "
                "concurrently (ParallelizationFactor must be 1)"
            )
            out.extra["position_conflict"] = True


sequence = kinesis.sequence_of
