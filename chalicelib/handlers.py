"""Trigger adapters: a trigger's event in, the ingest workflow or pipeline, the outcome out.

Kept apart from `app.py` so tests and the local stack can call them with an
injected Runtime; `app.py` only wires them to Chalice. What happens between the
event and the outcome lives in `chalicelib.ingest` (S3 objects, Kinesis batches)
and `chalicelib.pipeline`.

Each handler imports what only it needs when it first runs (a function serves one
trigger): a CloudWatch Logs function never loads the S3, Kinesis or subscription
code on its cold start.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.errors import DecodeError
from chalicelib.event import Ledger
from chalicelib.invocation import Invocation
from chalicelib.loopguard import loop_guard
from chalicelib.observe import report
from chalicelib.pipeline import Pipeline, Runtime
from chalicelib.sources import cloudwatch

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


def installed_runtime() -> Runtime | None:
    """The process-wide runtime if one was built or set, without building one."""
    return _runtime


def _start(context: Any, rt: Runtime | None) -> tuple[Runtime, Invocation, Pipeline]:
    rt = rt or runtime()
    return rt, Invocation.from_context(context, rt.settings.region), Pipeline(rt)


def handle_cloudwatch_logs(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    rt, inv, pipeline = _start(context, rt)
    extra: dict[str, Any] = {}
    try:
        batch = cloudwatch.decode(event, rt.settings.region)
    except DecodeError as e:
        from chalicelib.ingest.batch import raw_bytes  # only an input that never decoded

        ledger = pipeline.reject(raw_bytes(event), e, inv)
        extra["decode_error"] = str(e)
    else:
        if batch.is_control:
            ledger = Ledger()
            extra["control_message"] = True
        elif loop_guard(rt.settings, inv.function_name).owns(batch.source["log_group"]):
            # Loop guard: Sluice's own logs are never routed; counted as dropped, not lost.
            # (A subscription payload holds one log group's events.)
            ledger = Ledger(received=len(batch.events))
            ledger.drop("loop_guard", len(batch.events))
            extra["loop_guard"] = batch.source["log_group"]
        else:
            ledger = pipeline.process(batch.events, inv)
            extra["log_group"] = batch.source["log_group"]
    if rt.rules.last_error:
        extra["rules_error"] = rt.rules.last_error
    report("cloudwatch_logs", ledger, rt.settings.metrics_namespace, extra)
    return {**ledger.as_dict(), **extra}


def handle_kinesis_records(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """Kinesis batch -> pipeline; answers with `batchItemFailures` (partial batch response)."""
    from chalicelib.ingest import kinesis as kinesis_ingest

    rt, inv, pipeline = _start(context, rt)
    out = kinesis_ingest.ingest_batch(pipeline, event, inv)
    report("kinesis_records", out.ledger, rt.settings.metrics_namespace, out.extra)
    return out.response.as_dict()


def handle_s3_objects(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """SQS batch of S3 notifications (plain, SNS-wrapped or EventBridge-shaped) and
    continuations; answers with `batchItemFailures` so only failed messages return."""
    from chalicelib.ingest import s3_objects

    rt, inv, pipeline = _start(context, rt)
    out = s3_objects.ingest_messages(pipeline, event, inv)
    report("s3_objects", out.ledger, rt.settings.metrics_namespace, out.extra)
    return out.response.as_dict()


def handle_s3_object_created(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """An EventBridge `Object Created` event. A failure raises, so Lambda's asynchronous
    retries (and the function's on-failure destination) take over."""
    from chalicelib.ingest import s3_objects
    from chalicelib.sources import s3

    rt, inv, pipeline = _start(context, rt)
    try:
        ref = s3.ref_from_eventbridge(event)
    except DecodeError as e:
        from chalicelib.ingest.batch import raw_bytes  # only an input that never decoded

        ledger = pipeline.reject(raw_bytes(event), e, inv)
        report("s3_object_created", ledger, rt.settings.metrics_namespace, {"decode_error": str(e)})
        return ledger.as_dict()
    ledger, info = s3_objects.read_object(pipeline, ref, inv, rt.settings.objects_queue_url)
    report("s3_object_created", ledger, rt.settings.metrics_namespace, info)
    return {**ledger.as_dict(), **info}


def handle_absence_check(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """Scheduled: alert, once per silence, for each tag an absence rule expects that has
    logged nothing matching it for longer than the rule's window (a stopped heartbeat)."""
    rt, inv, pipeline = _start(context, rt)
    ledger, silent = pipeline.check_absence(inv, int(time.time() * 1000))
    extra: dict[str, Any] = {"silent": silent}
    report("absence_check", ledger, rt.settings.metrics_namespace, extra)
    return {**ledger.as_dict(), **extra}


def handle_log_group_created(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """CloudTrail CreateLogGroup via EventBridge: subscribe the group if saved patterns
    match (and backfill its first lines); one log line says what was done."""
    from chalicelib.subscriptions.created import on_created_event

    rt = rt or runtime()
    return on_created_event(event, context, rt.clients, rt.settings)
