"""Trigger adapters: a trigger's event in, the pipeline, the outcome out.

Kept apart from `app.py` so tests and the local stack can call them with an
injected Runtime; `app.py` only wires them to Chalice.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from chalicelib import objects
from chalicelib.actions import AlertAction, Invocation
from chalicelib.errors import DecodeError
from chalicelib.event import Ledger
from chalicelib.observe import report
from chalicelib.pipeline import Pipeline, Runtime
from chalicelib.sources import cloudwatch, kinesis, s3
from chalicelib.subscriptions.patterns import is_sluice_log_group

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
        elif is_sluice_log_group(batch.source["log_group"]):
            # Loop guard: Sluice's own logs are never routed; counted as dropped, not lost.
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
    if inv.remaining_ms() < rt.settings.deadline_margin_ms:
        # Too little time to do the batch safely: hand it back whole, untouched.
        report("kinesis_records", ledger, rt.settings.metrics_namespace, {"deadline": True})
        return {"batchItemFailures": [{"itemIdentifier": _sequence(r)} for r in recs]}
    taken = recs
    for i, rec in enumerate(recs):
        res = kinesis.decode_record(rec, rt.settings.region)
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
            ledger.merge(pipeline.reject(res.raw or _raw(rec), res.error, inv, origin))
        except Exception as e:
            # The DLQ itself failed. Lambda retries the shard from this record on, later
            # records included: hand them all back now, or the retry archives them twice.
            failed.extend(_sequence(r) for r in recs[i:])
            taken = recs[:i]
            extra.setdefault("errors", []).append(f"dead-letter failed: {type(e).__name__}: {e}")
            break
    try:
        # Archive keys from the batch's records, not the invocation: Lambda retries a
        # failed Kinesis batch in a new invocation, and the same records must land on
        # the same keys (overwritten, never duplicated).
        # Stream and shard too: a sequence number is unique only within its shard, and
        # one function may read several streams.
        ids = ",".join(_record_key(r) for r in taken).encode()
        batch_id = "kinesis-" + hashlib.sha256(ids).hexdigest()[:24]
        ledger.merge(pipeline.process(events, inv, batch_id=batch_id))
    except Exception as e:  # archive and DLQ both failed: nothing of the batch is safe
        failed.extend(ok_sequences)
        extra.setdefault("errors", []).append(f"batch failed: {type(e).__name__}: {e}")
        ledger.received += sum(ev.count for ev in events)
    if rt.rules.last_error:
        extra["rules_error"] = rt.rules.last_error
    extra["records"] = len(recs)
    extra["failed_records"] = len(failed)
    report("kinesis_records", ledger, rt.settings.metrics_namespace, extra)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}


class ObjectBusy(Exception):
    """Another invocation holds the object's claim; the message is retried later."""


def _read_object(
    rt: Runtime, pipeline: Pipeline, item: s3.Work, inv: Invocation, queue_url: str | None
) -> tuple[Ledger, dict[str, Any]]:
    """One object (or its continuation) through the pipeline, idempotently."""
    ref, start = (item.ref, item.line) if isinstance(item, s3.Continuation) else (item, 0)
    info: dict[str, Any] = {"bucket": ref.bucket, "key": ref.key, "from_line": start}
    state = rt.state()
    if state is not None:
        if start == 0:
            claim = state.claim_object(ref, inv.request_id)
            if claim == "done":
                info["skipped"] = "already processed (re-delivery)"
                return Ledger(), info
            if claim == "busy":
                raise ObjectBusy(f"s3://{ref.bucket}/{ref.key} is being read by another invocation")
        else:
            state.renew(ref, inv.request_id)
    origin = {**ref.to_dict(), "from_line": start}

    def dead_letter(reason: str, line: int) -> None:
        rt.dead_letters().send_reference(
            reason,
            stage="decode",
            invocation=inv.request_id,
            function=inv.function_name,
            origin={**origin, "line": line},
        )

    # Without a queue to continue on, read to the end whatever the clock says.
    margin = rt.settings.deadline_margin_ms if queue_url else -1
    try:
        outcome = objects.process_object(
            rt.clients.get("s3"),
            pipeline,
            ref,
            inv,
            start_line=start,
            margin_ms=margin,
            max_chars=rt.settings.max_object_chars,
            dead_letter=dead_letter,
        )
    except Exception as e:
        code = _client_error_code(e)
        if code is None:  # not an S3 answer (throttling, network...): retry the message
            if state is not None:
                state.release(ref)
            raise
        # NoSuchKey (deleted before we read it), AccessDenied, PreconditionFailed (replaced):
        # retrying will not help; the reason goes to the dead-letter queue.
        reason = f"s3 get_object: {code}: s3://{ref.bucket}/{ref.key}"
        rt.dead_letters().send_reference(
            reason,
            stage="read",
            invocation=inv.request_id,
            function=inv.function_name,
            origin=origin,
        )
        ledger = Ledger(received=1)
        ledger.dead_letter(f"read:{code}", 1)
        if state is not None:
            state.finish_object(ref)
        info["error"] = reason
        return ledger, info
    info.update(lines=outcome.lines, format=outcome.format)
    if outcome.control_messages:
        info["control_messages"] = outcome.control_messages
    if outcome.continuation is not None:
        assert queue_url is not None
        rt.clients.get("sqs").send_message(
            QueueUrl=queue_url, MessageBody=outcome.continuation.body()
        )
        info["continued_at_line"] = outcome.continuation.line
    elif state is not None:
        state.finish_object(ref)
    return outcome.ledger, info


def _client_error_code(e: Exception) -> str | None:
    from botocore.exceptions import ClientError

    # Only the object's own read: an AccessDenied from the DLQ or a spill write is not
    # the object's fault and must release the claim for a retry.
    if not isinstance(e, ClientError) or e.operation_name not in ("GetObject", "HeadObject"):
        return None
    code = str(e.response.get("Error", {}).get("Code", ""))
    return code if code in _FINAL_S3_ERRORS else None


_FINAL_S3_ERRORS = {
    "NoSuchKey",
    "404",
    "NotFound",
    "AccessDenied",
    "403",
    "PreconditionFailed",
    "412",
    "NoSuchBucket",
    "InvalidObjectState",
}


def _queue_url(rt: Runtime, arn: str) -> str | None:
    """The URL of the queue a message came from (for continuations); looked up once per
    warm function, not per invocation (a GetQueueUrl call each time)."""
    if arn in rt.queue_urls:
        return rt.queue_urls[arn]
    parts = arn.split(":")
    if len(parts) < 6:
        return rt.settings.objects_queue_url
    try:
        url = str(
            rt.clients.get("sqs").get_queue_url(
                QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
            )["QueueUrl"]
        )
    except Exception:  # not cached: the next invocation asks again
        return rt.settings.objects_queue_url
    rt.queue_urls[arn] = url
    return url


def handle_s3_objects(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """SQS batch of S3 notifications (plain, SNS-wrapped or EventBridge-shaped) and
    continuations; answers with `batchItemFailures` so only failed messages return."""
    rt = rt or runtime()
    inv = Invocation.from_context(context, rt.settings.region)
    pipeline = Pipeline(rt)
    ledger = Ledger()
    extra: dict[str, Any] = {"objects": []}
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        err = DecodeError("shape", "not an SQS event (no 'Records' list)")
        ledger = pipeline.reject(_raw(event), err, inv)
        report("s3_objects", ledger, rt.settings.metrics_namespace, {"decode_error": str(err)})
        return {"batchItemFailures": []}
    failed: list[str] = []
    for rec in records:
        mid = str(rec.get("messageId", "")) if isinstance(rec, dict) else ""
        if inv.remaining_ms() < rt.settings.deadline_margin_ms:
            failed.append(mid)  # hand it back untouched: a fresh invocation takes it
            continue
        body = rec.get("body") if isinstance(rec, dict) else None
        try:
            work = s3.parse_sqs_body(body if isinstance(body, str) else "")
        except DecodeError as e:
            try:
                ledger.merge(pipeline.reject(_raw(body), e, inv, {"message_id": mid}))
            except Exception as dlq_error:  # the DLQ failed: return this message, not the batch
                failed.append(mid)
                extra.setdefault("errors", []).append(
                    f"{mid}: dead-letter failed: {type(dlq_error).__name__}: {dlq_error}"
                )
            continue
        arn = str(rec.get("eventSourceARN", ""))
        try:
            for item in work:
                part, info = _read_object(rt, pipeline, item, inv, _queue_url(rt, arn))
                ledger.merge(part)
                extra["objects"].append(info)
        except Exception as e:
            failed.append(mid)
            extra.setdefault("errors", []).append(f"{mid}: {type(e).__name__}: {e}")
    extra["failed_messages"] = len(failed)
    report("s3_objects", ledger, rt.settings.metrics_namespace, extra)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def handle_s3_object_created(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """An EventBridge `Object Created` event. A failure raises, so Lambda's asynchronous
    retries (and the function's on-failure destination) take over."""
    rt = rt or runtime()
    inv = Invocation.from_context(context, rt.settings.region)
    pipeline = Pipeline(rt)
    try:
        ref = s3.ref_from_eventbridge(event)
    except DecodeError as e:
        ledger = pipeline.reject(_raw(event), e, inv)
        report("s3_object_created", ledger, rt.settings.metrics_namespace, {"decode_error": str(e)})
        return ledger.as_dict()
    ledger, info = _read_object(rt, pipeline, ref, inv, rt.settings.objects_queue_url)
    report("s3_object_created", ledger, rt.settings.metrics_namespace, info)
    return {**ledger.as_dict(), **info}


def handle_absence_check(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """Scheduled: alert, once per silence, for each tag an absence rule expects that has
    logged nothing matching it for longer than the rule's window (a stopped heartbeat)."""
    import time

    from chalicelib.alerting import AlertState, parse_duration, silence_event, silent_tags
    from chalicelib.errors import ActionError

    rt = rt or runtime()
    inv = Invocation.from_context(context, rt.settings.region)
    ledger = Ledger()
    extra: dict[str, Any] = {"silent": []}
    table = rt.state()
    rules = rt.rules.get()
    if table is None:
        ledger.errors.append("absence rules need SLUICE_STATE_TABLE")
    else:
        state = AlertState(table.ddb, table.table)
        now = int(time.time() * 1000)
        for d in rules.defs:
            if not d.absence:
                continue
            window = d.absence["window"]
            seconds = parse_duration(window) or 600
            for tag, last in silent_tags(state, d.id, seconds, d.absence.get("tags", []), now):
                ev = silence_event(d.id, tag, last, str(window), now)
                extra["silent"].append({"rule": d.id, "tag": tag})
                for idx, adef in enumerate(d.actions):
                    if adef.name in ("drop", "archive"):
                        continue
                    try:
                        act = rt.action(d.id, idx, adef)
                        sent = (
                            act.deliver([ev], inv, note=None)
                            if isinstance(act, AlertAction)
                            else act.deliver([ev], inv)
                        )
                    except ActionError as e:
                        rt.dead_letters().send_events(
                            [ev],
                            str(e),
                            stage="action",
                            invocation=inv.request_id,
                            function=inv.function_name,
                            action=adef.name,
                            rule=d.id,
                        )
                        ledger.actions_failed += 1
                        continue
                    if act.alerting:
                        ledger.alerts += sent
                        ledger.rule(d.id)["alerted"] += sent
    report("absence_check", ledger, rt.settings.metrics_namespace, extra)
    return {**ledger.as_dict(), **extra}


def _sequence(rec: Any) -> str:
    k = rec.get("kinesis") if isinstance(rec, dict) else None
    return str(k.get("sequenceNumber", "")) if isinstance(k, dict) else ""


def _record_key(rec: Any) -> str:
    """`<stream ARN>/<shardId-...:sequence>`: a record's identity across shards and streams."""
    if not isinstance(rec, dict):
        return ""
    return f"{rec.get('eventSourceARN', '')}/{rec.get('eventID') or _sequence(rec)}"


def _raw(event: Any) -> bytes:
    """The trigger event as bytes for the dead-letter queue, whatever it holds."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return repr(event).encode("utf-8", "backslashreplace")
