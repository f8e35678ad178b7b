"""Trigger adapters: a trigger's event in, the pipeline, the outcome out.

Kept apart from `app.py` so tests and the local stack can call them with an
injected Runtime; `app.py` only wires them to Chalice.
"""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.actions import Invocation
from chalicelib.errors import DecodeError
from chalicelib.event import Ledger
from chalicelib.observe import report
from chalicelib.pipeline import Pipeline, Runtime
from chalicelib.sources import cloudwatch, kinesis

_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def set_runtime(rt: Runtime | None) -> None:
    """Swap the process-wide runtime (tests, the local stack)."""
    global _runtime
    _runtime = rt


def handle_cloudwatch_logs(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    rt = rt or runtime()
    inv = Invocation.from_context(context, rt.settings.region)
    pipeline = Pipeline(rt)
    extra: dict[str, Any] = {}
    try:
        batch = cloudwatch.decode(event, rt.settings.region)
    except DecodeError as e:
        ledger = pipeline.reject(_raw(event), e, inv)
        extra["decode_error"] = str(e)
    else:
        if batch.is_control:
            ledger = Ledger()
            extra["control_message"] = True
        else:
            ledger = pipeline.process(batch.events, inv)
            extra["log_group"] = batch.source["log_group"]
    if rt.rules.last_error:
        extra["rules_error"] = rt.rules.last_error
    report("cloudwatch_logs", ledger, rt.settings.metrics_namespace, extra)
    return {**ledger.as_dict(), **extra}


def handle_kinesis_records(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """Kinesis batch -> pipeline; answers with `batchItemFailures` (partial batch response).

    A record that cannot be decoded is dead-lettered with its sequence number and
    counts as handled, so a poison record never blocks its shard. Records are
    reported failed only when their events could be neither delivered nor
    dead-lettered; Lambda then retries from the lowest failed sequence number.
    Powertools' BatchProcessor is not used: it calls a handler per record, and
    Sluice's actions work on the whole batch (one archive object per tag and
    hour, one alert per rule), which is where its throughput comes from.
    """
    rt = rt or runtime()
    inv = Invocation.from_context(context, rt.settings.region)
    pipeline = Pipeline(rt)
    extra: dict[str, Any] = {}
    try:
        recs = kinesis.records(event)
    except DecodeError as e:
        ledger = pipeline.reject(_raw(event), e, inv)
        report("kinesis_records", ledger, rt.settings.metrics_namespace, {"decode_error": str(e)})
        return {"batchItemFailures": []}
    ledger = Ledger()
    events = []
    failed: list[str] = []
    ok_sequences: list[str] = []
    for rec in recs:
        res = kinesis.decode_record(rec, rt.settings.region)
        if res.error is None:
            events.extend(res.events)
            ok_sequences.append(res.sequence)
            continue
        origin = {
            "sequence": res.sequence,
            "event_id": rec.get("eventID") if isinstance(rec, dict) else None,
        }
        try:
            ledger.merge(pipeline.reject(res.raw or _raw(rec), res.error, inv, origin))
        except Exception as e:  # the DLQ itself failed: let Lambda retry this record
            failed.append(res.sequence)
            extra.setdefault("errors", []).append(f"dead-letter failed: {type(e).__name__}: {e}")
    try:
        ledger.merge(pipeline.process(events, inv))
    except Exception as e:  # archive and DLQ both failed: nothing of the batch is safe
        failed.extend(ok_sequences)
        extra.setdefault("errors", []).append(f"batch failed: {type(e).__name__}: {e}")
        ledger.received += len(events)
    if rt.rules.last_error:
        extra["rules_error"] = rt.rules.last_error
    extra["records"] = len(recs)
    extra["failed_records"] = len(failed)
    report("kinesis_records", ledger, rt.settings.metrics_namespace, extra)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}


def _raw(event: Any) -> bytes:
    """The trigger event as bytes for the dead-letter queue, whatever it holds."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return repr(event).encode("utf-8", "backslashreplace")
