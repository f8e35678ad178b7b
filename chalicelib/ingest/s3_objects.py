"""The S3 objects workflow: claims, bounded batches, continuations, final errors.

An object (or a continuation of one) is claimed in the state table, so a
re-delivered notification reads it at most once; S3 answers that retrying cannot
change (the object deleted, access denied, replaced) dead-letter its address.

Lines are taken in chunks of CHUNK_LINES; each chunk is one `Pipeline.process`
call whose archive objects are named after the object and the chunk's first
line, so a re-delivery or a continuation rewrites the same archive keys instead
of adding duplicates. Between chunks, when the invocation nears its deadline,
reading stops and a continuation (object and line reached) is handed back to be
queued for a fresh invocation. `ingest_messages` takes an SQS batch of
notifications and continuations and says which messages Lambda must return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any

from chalicelib.budget import Budget, budget
from chalicelib.errors import DecodeError, aws_fault
from chalicelib.event import LazyEvents, Ledger, LogEvent
from chalicelib.ingest.batch import BatchResponse, raw_bytes
from chalicelib.invocation import Invocation
from chalicelib.loopguard import LoopGuard, loop_guard
from chalicelib.normalise import normalise
from chalicelib.observe import add_rest, tally
from chalicelib.parsers import (
    MAX_MESSAGE_CHARS,
    fit_record,
    lambda_json,
    parse_message,
    unparsed,
)
from chalicelib.pipeline import Pipeline
from chalicelib.rules.inputs import input_for
from chalicelib.sources import firehose, s3_formats, s3_json
from chalicelib.sources.s3 import (
    SKIP_GRACE,
    Continuation,
    Cursor,
    Line,
    ObjectRef,
    Position,
    Work,
    iter_lines,
    parse_sqs_body,
    s3_origin,
    tag_for,
)
from chalicelib.state import new_token

# 5,000 lines of ~200 bytes is ~1 MB of events in memory per batch: far below a
# 512 MB function's memory, large enough that per-batch costs (S3 puts) stay small.
CHUNK_LINES = 5_000
# Stop taking new chunks when less than this remains: one chunk takes well under a
# second, the continuation message and the ledger line a few milliseconds.
DEFAULT_MARGIN_MS = 20_000


@dataclass(slots=True)
class ObjectOutcome:
    ledger: Ledger
    continuation: Continuation | None = None
    lines: int = 0
    format: str = ""
    control_messages: int = 0  # CloudWatch Logs' checks in a Firehose object: no events
    metadata_lines: int = 0  # lines of a file about other objects (a CloudTrail digest)


def line_events(
    fmt: s3_formats.LineFormat,
    line: Line,
    ref: ObjectRef,
    tag: str,
    default_ms: int,
    expand: str | None,
    context_key: str | None = None,
) -> Iterable[LogEvent]:
    """One line's events: one, or one per element of a list it expands, made as the
    pipeline takes them (one line can hold millions). An expanded document's other
    fields (a CloudWatch document's `logGroup`, `logStream`, `owner`...) stay with each
    element: in `source.document`, and under `context_key` in the record when the input
    declares one."""
    got = LineReader(fmt, ref, tag, default_ms, expand, context_key).events(line)
    return [got] if isinstance(got, LogEvent) else got


class LineReader:
    """How the lines of one object become events (`line_events`), with what they all
    share made once per object, not once per line: the format's kind, the budget, the
    source fields in their order (each line's copy gets its number) and the id prefix."""

    __slots__ = (
        "b",
        "context_key",
        "default_ms",
        "expand",
        "fmt",
        "json_lines",
        "object_id",
        "tag",
        "template",
    )

    def __init__(
        self,
        fmt: s3_formats.LineFormat,
        ref: ObjectRef,
        tag: str,
        default_ms: int,
        expand: str | None,
        context_key: str | None = None,
    ) -> None:
        self.fmt = fmt
        self.json_lines = isinstance(fmt, s3_formats.JsonLines)
        self.tag = tag
        self.default_ms = default_ms
        self.expand = expand
        self.context_key = context_key
        self.b = budget()
        self.object_id = ref.object_id
        self.template: dict[str, Any] = {
            "kind": "s3",
            "bucket": ref.bucket,
            "key": ref.key,
            "version": ref.version,
            "etag": ref.etag,
            "line": 0,
            "account": ref.account,
            "region": ref.region,
        }

    def events(self, line: Line) -> LogEvent | LazyEvents:
        """The line's one event (the common case, returned alone), or its elements'."""
        text = line.text
        t: int | None = None
        if self.json_lines:
            if text[:1] == "{":
                rec, expanded = s3_json.parse_line(text, self.expand, self.b)
                if expanded is not None:
                    return self._expanded(line, expanded)
                assert rec is not None
                if "record" in rec or "timestamp" in rec:
                    rec = lambda_json(rec, text)  # Lambda's JSON log format, as from CloudWatch
            else:
                rec, t = parse_message(text, max_chars=None)
        else:
            rec = self.fmt.record(text)
        if len(text) > MAX_MESSAGE_CHARS and "parse_error" not in rec:
            problem = fit_record(rec, self.b)  # every field at every depth, not only `message`
            if problem is not None:
                rec = unparsed(text, f"{self.fmt.name}: {problem}")
        if line.flags:
            rec.update(line.flags)
        # Only a text line of JSON lines comes with its time; a record of its message alone
        # (a text line) is what normalise leaves unchanged.
        if t is None and not (len(rec) == 1 and "message" in rec):
            rec, t = normalise(rec)
        n = line.number
        source = self.template.copy()  # keys in the template's order, the line's number in place
        source["line"] = n
        default_ms = self.default_ms
        time_ms = t if t is not None else default_ms
        return LogEvent(
            self.tag, time_ms, rec, source, f"{self.object_id}:{n}", 1, len(text), default_ms
        )

    def _expanded(self, line: Line, expanded: s3_json.Expanded) -> LazyEvents:
        items, context = expanded
        if line.flags:
            context.update(line.flags)
        source = self.template.copy()
        source["line"] = line.number
        if context:
            source["document"] = context  # one dict shared by the line's events (read-only)
        key = self.context_key if context else None
        base = f"{self.object_id}:{line.number}"
        tag, default_ms, b = self.tag, self.default_ms, self.b
        return LazyEvents(
            lambda: _elements(items(), tag, default_ms, source, base, b, key, context)
        )


def _elements(
    items: s3_json.Items,
    tag: str,
    default_ms: int,
    source: dict[str, Any],
    base: str,
    b: Budget,
    context_key: str | None,
    context: dict[str, Any],
) -> Iterator[LogEvent]:
    for i, (item, size) in enumerate(items):
        r, t = s3_json.element_record(item, size, b)
        if context_key is not None and context_key not in r:
            r[context_key] = dict(context)  # a copy: transforms may change a record
        time_ms = t if t is not None else default_ms
        yield LogEvent(tag, time_ms, r, source, f"{base}:{i}", 1, size, default_ms)


def document_events(
    line: Line,
    region: str,
    outcome: ObjectOutcome,
    dead_letter: Callable[[str, int], None],
    guard: LoopGuard | None = None,
) -> Iterable[LogEvent]:
    """A CloudWatch Logs subscription document from a Firehose object -> its events, as
    the `cloudwatch_logs` trigger makes them. Control messages are acknowledged (counted,
    no events); Sluice's own log groups are dropped by the loop guard; a document that
    cannot be read is dead-lettered by reference (it stays in the object)."""
    try:
        batch = firehose.document_batch(line.text, region)
    except DecodeError as e:
        outcome.ledger.received += 1
        outcome.ledger.dead_letter(f"decode:{e.stage}", 1)
        dead_letter(f"document {line.number}: {e}", line.number)
        return []
    if batch.is_control:
        outcome.control_messages += 1
        return []
    if (guard or LoopGuard()).owns(batch.source["log_group"]):
        n = sum(ev.count for ev in batch.events)
        outcome.ledger.received += n
        outcome.ledger.drop("loop_guard", n)
        return []
    return batch.events


def process_object(
    s3: Any,
    pipeline: Pipeline,
    ref: ObjectRef,
    inv: Invocation,
    *,
    start: Position | None = None,
    margin_ms: int = DEFAULT_MARGIN_MS,
    max_chars: int | None = None,
    dead_letter: Callable[[str, int], None],
) -> ObjectOutcome:
    """Read `ref` from `start` on (the beginning by default); return the ledger and, if
    the deadline came first, where to continue. `dead_letter(reason, n)` records
    undecodable remainders (with the object's address, which stays in S3)."""
    start = start or Position(0)
    start_line = start.line
    outcome = ObjectOutcome(Ledger())
    if ref.account is None or ref.region is None:
        # S3 notifies a queue of its own region only: the function's, when nothing says.
        account, region = s3_origin(ref.key, ref.region or pipeline.rt.settings.region)
        ref = replace(ref, account=ref.account or account, region=region)
    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version:
        kwargs["VersionId"] = ref.version
    elif ref.etag:
        kwargs["IfMatch"] = ref.etag  # the object the notification was about, not a newer one
    resp = s3.get_object(**kwargs)
    modified = resp.get("LastModified")
    # The object's arrival: events without a time of their own (or one far from it) get it.
    default_ms = int((modified.timestamp() if modified is not None else time.time()) * 1000)
    rules = pipeline.rt.rules.get()
    cfg = input_for(rules.inputs, ref.bucket, ref.key)
    tag = (cfg.tag if cfg and cfg.tag else None) or tag_for(ref.bucket, ref.key)
    expand = cfg.expand if cfg else None
    context_key = cfg.context if cfg else None
    fmt: s3_formats.LineFormat | None = None
    documents: bool | None = None  # split subscription documents: decided from the content
    if cfg and cfg.format != "auto":
        fmt = s3_formats.FORMATS[cfg.format]()
        documents = True if cfg.format == "cloudwatch" else None if cfg.format == "jsonl" else False
    cursor = Cursor(0, 0, start.kind)
    skip = 0
    if start_line:
        # A continuation: the format and its header lines come from the object's head (a
        # CSV's columns, CloudFront's #Fields), read again until the first other line;
        # then the body from where the position says, its handled lines skipped unread.
        fmt, documents = _head(resp, ref, fmt, documents)
        resp["Body"].close()
        if documents:  # split by a scanner, not by newlines: read again and passed over
            resp = s3.get_object(**kwargs)
        else:
            ranged = {"Range": f"bytes={start.offset}-"} if start.offset else {}
            resp = s3.get_object(**kwargs, **ranged)
            cursor = Cursor(start.offset, start.base, start.kind)
            skip = start.skip
    margin = margin_ms

    def stop() -> bool:
        return margin >= 0 and inv.remaining_ms() < margin

    region = pipeline.rt.settings.region
    guard = loop_guard(pipeline.rt.settings, inv.function_name)
    # Each chunk of lines is one sink: its events are processed in slices (one line can
    # expand into millions), the slices named after the chunk's first line.
    sink = pipeline.slices(inv, f"{ref.object_id}-{start_line:09d}", isolate=True)
    consumed = 0  # characters of lines handled in this invocation
    passed = 0  # characters of documents handled before, passed over

    add = sink.add
    # Set when a line added more than one event since the last flush: only then can the
    # sink reach CHUNK_LINES events before a CHUNK_LINES-th line (one event a line cannot).
    many = False

    def flush(next_line: int) -> None:
        nonlocal sink, add, many
        outcome.ledger.merge(sink.close())
        sink = pipeline.slices(inv, f"{ref.object_id}-{next_line:09d}", isolate=True)
        add, many = sink.add, False

    # Reading and decompressing is `decode` (iter_lines counts it per block); the rest of
    # the loop that is not the pipeline's (route, archive, deliver) is `parse`.
    started, counted = perf_counter(), tally()
    lines = iter_lines(
        resp["Body"], ref.key, documents=documents, cursor=cursor, skip=skip, stop=stop
    )
    reader: LineReader | None = None
    headers = per_line = False
    try:
        for line in lines:
            number = outcome.lines = line.number
            text = line.text
            if fmt is None:
                fmt = s3_formats.FORMATS[s3_formats.detect(text, ref.key)]()
            if number <= start_line:
                # Documents (split, not counted by newlines) handled before: passed over,
                # the deadline still looked at.
                passed += len(text)
                if passed > SKIP_GRACE and number % CHUNK_LINES == 0 and stop():
                    outcome.continuation = Continuation(ref, start_line, position=start)
                    break
                continue
            if reader is None:  # the format is known from here on
                reader = LineReader(fmt, ref, tag, default_ms, expand, context_key)
                headers = type(fmt).header is not s3_formats.LineFormat.header
                per_line = fmt.events and fmt.name != "cloudwatch"
            if not (headers and fmt.header(text)) and text.strip():
                consumed += len(text)
                flags = line.flags
                if flags and flags.get("truncated") and text.lstrip()[:1] in "{[":
                    # A JSON document longer than s3.MAX_LINE: its events cannot be read from
                    # a cut copy. The object stays in S3; the reason says where.
                    outcome.ledger.received += 1
                    outcome.ledger.dead_letter("decode:too-large", 1)
                    size = flags.get("original_bytes")
                    dead_letter(
                        f"line {number} is a JSON document of {size} bytes, over the "
                        f"line limit (s3://{ref.bucket}/{ref.key})",
                        number,
                    )
                elif per_line:
                    try:
                        got = reader.events(line)
                    except DecodeError as e:  # more elements than one invocation may take
                        outcome.ledger.received += 1
                        outcome.ledger.dead_letter(f"decode:{e.stage}", 1)
                        dead_letter(f"line {number}: {e} (s3://{ref.bucket}/{ref.key})", number)
                    else:
                        if isinstance(got, LogEvent):
                            add(got)  # a line's one event (the common case)
                        else:
                            sink.extend(got)
                            many = True
                elif not fmt.events:  # a file about other objects: read, counted, no event
                    outcome.metadata_lines += 1
                else:  # CloudWatch Logs subscription documents
                    sink.extend(document_events(line, region, outcome, dead_letter, guard))
                    many = True
            # Every CHUNK_LINES-th line ends a chunk, blank or not: a double-spaced log
            # must not grow one batch over the whole object, nor skip the deadline check.
            # So does a batch of CHUNK_LINES events (a line may expand into many).
            if number % CHUNK_LINES == 0 or (many and sink.taken >= CHUNK_LINES):
                flush(number)
                over = max_chars is not None and consumed >= max_chars
                if margin_ms >= 0 and (over or inv.remaining_ms() < margin_ms):
                    at = cursor.resume(number) if not cursor.documents else None
                    outcome.continuation = Continuation(ref, number, position=at)
                    break
        else:
            if cursor.interrupted:  # the deadline came while skipping: continue from there
                at = cursor.resume(start_line)
                outcome.continuation = Continuation(ref, start_line, position=at)
            flush(outcome.lines)
    except Exception as e:
        if not isinstance(e, DecodeError):
            if aws_fault(e):
                raise
            raise ObjectFailed(outcome.lines, e, outcome.ledger) from e
        flush(outcome.lines)
        outcome.ledger.received += 1
        outcome.ledger.dead_letter(f"decode:{e.stage}", 1)
        dead_letter(f"{e} (s3://{ref.bucket}/{ref.key}, after line {outcome.lines})", outcome.lines)
    finally:
        lines.close()  # counts its time now, not when collected
        resp["Body"].close()
        add_rest("parse", started, counted)
    outcome.format = fmt.name if fmt else ""
    return outcome


# S3 answers that a retry cannot change: the object is gone (NoSuchKey, NoSuchBucket),
# unreadable to this function (AccessDenied), replaced since the notification
# (PreconditionFailed on the ETag), or archived to Glacier (InvalidObjectState).
FINAL_S3_ERRORS = frozenset(
    {
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
)


def _head(
    resp: dict[str, Any], ref: ObjectRef, fmt: s3_formats.LineFormat | None, documents: bool | None
) -> tuple[s3_formats.LineFormat | None, bool | None]:
    """The object's format (as its first line shows it, unless configured) with its
    header lines consumed, and whether it holds subscription documents: what a
    continuation needs before it reads from the middle. Reads the head only."""
    cursor = Cursor()
    lines = iter_lines(resp["Body"], ref.key, documents=documents, cursor=cursor)
    try:
        for line in lines:
            if cursor.documents:
                break
            if fmt is None:
                fmt = s3_formats.FORMATS[s3_formats.detect(line.text, ref.key)]()
            if not fmt.header(line.text):
                break
    finally:
        lines.close()
    return fmt, cursor.documents


class ObjectFailed(Exception):
    """Reading an object raised something that is not AWS's (its content met a code path
    that did not expect it): deterministic, so the object is dead-lettered by reference."""

    def __init__(self, line: int, cause: Exception, ledger: Ledger) -> None:
        super().__init__(f"line {line}: {type(cause).__name__}: {cause}")
        self.line = line
        self.ledger = ledger  # the chunks processed before it


class ObjectBusy(Exception):
    """Another invocation holds the object's claim; the message is retried later."""


def read_object(
    pipeline: Pipeline, item: Work, inv: Invocation, queue_url: str | None
) -> tuple[Ledger, dict[str, Any]]:
    """One object (or its continuation) through the pipeline, idempotently: claimed
    first, continued on `queue_url` when the deadline comes (read to the end without
    one), its final S3 errors dead-lettered. Returns the ledger and what to report."""
    rt = pipeline.rt
    continued = isinstance(item, Continuation)
    ref = item.ref if isinstance(item, Continuation) else item
    position = item.at if isinstance(item, Continuation) else Position(0)
    info: dict[str, Any] = {"bucket": ref.bucket, "key": ref.key, "from_line": position.line}
    state = rt.state()
    token: str | None = None
    if state is not None:
        if not continued:
            token = new_token()
            claim = state.claim_object(ref, inv.request_id, token)
            if claim == "done":
                info["skipped"] = "already processed (re-delivery)"
                return Ledger(), info
            if claim == "busy":
                raise ObjectBusy(f"s3://{ref.bucket}/{ref.key} is being read by another invocation")
        else:
            assert isinstance(item, Continuation)
            verdict, held = state.take_over(ref, item.token, inv.request_id)
            if verdict == "busy":
                raise ObjectBusy(f"s3://{ref.bucket}/{ref.key} is being read by another invocation")
            if held is None:
                # A forged or stale continuation: nothing is read, skipped or marked done.
                info["refused"] = f"continuation {verdict}"
                return Ledger(), info
            token = item.token
            position = Position(**held)  # the table's, not the message's
            info["from_line"] = position.line
    start = position.line
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
        outcome = process_object(
            rt.clients.get("s3"),
            pipeline,
            ref,
            inv,
            start=position,
            margin_ms=margin,
            max_chars=rt.settings.max_object_chars,
            dead_letter=dead_letter,
        )
    except Exception as e:
        code = final_error_code(e)
        if code is None and not isinstance(e, ObjectFailed):  # throttling, network...: retry
            if state is not None and continued and token:
                state.hand_back(ref, token)  # the message's retry takes it up where it was
            elif state is not None:
                state.release(ref)
            raise
        stage = "read"
        if isinstance(e, ObjectFailed):
            # Raised by the object's content (no code path expected it): the same on every
            # attempt, so it costs this object only. Its address, the line reached and the
            # reason go to the dead-letter queue; the lines archived before stay (replay
            # skips them by event id).
            stage, cause = "process", e.__cause__ or e
            reason = f"process: {type(cause).__name__}: {cause} (s3://{ref.bucket}/{ref.key})"
            origin = {**origin, "line": e.line}
            code = f"process:{type(cause).__name__}"
        else:
            reason = f"s3 get_object: {code}: s3://{ref.bucket}/{ref.key}"
            code = f"read:{code}"
        rt.dead_letters().send_reference(
            reason,
            stage=stage,
            invocation=inv.request_id,
            function=inv.function_name,
            origin=origin,
        )
        ledger = e.ledger if isinstance(e, ObjectFailed) else Ledger()
        ledger.received += 1
        ledger.dead_letter(code, 1)
        if state is not None:
            state.finish_object(ref, token)
        info["error"] = reason
        return ledger, info
    info.update(lines=outcome.lines, format=outcome.format)
    if outcome.control_messages:
        info["control_messages"] = outcome.control_messages
    if outcome.metadata_lines:
        info["metadata_lines"] = outcome.metadata_lines
    if outcome.continuation is not None:
        assert queue_url is not None
        c = outcome.continuation
        if state is not None and token:
            handed = state.hand_off(ref, token, c.at.to_dict())
            if handed is None:  # the claim was taken over (lease expired): its reader goes on
                info["claim_lost"] = True
                return outcome.ledger, info
            c = Continuation(c.ref, c.line, handed, c.position)
        rt.clients.get("sqs").send_message(QueueUrl=queue_url, MessageBody=c.body())
        info["continued_at_line"] = c.line
        if c.at.offset or c.at.base:
            info["continued_at_byte"] = c.at.offset
    elif state is not None and not state.finish_object(ref, token):
        info["claim_lost"] = True
    return outcome.ledger, info


def final_error_code(e: Exception) -> str | None:
    """The S3 error code when `e` is an answer about the object that retrying cannot
    change (FINAL_S3_ERRORS), else None."""
    from botocore.exceptions import ClientError  # botocore loads with the first client

    # Only the object's own read: an AccessDenied from the DLQ or a spill write is not
    # the object's fault and must release the claim for a retry.
    if not isinstance(e, ClientError) or e.operation_name not in ("GetObject", "HeadObject"):
        return None
    code = str(e.response.get("Error", {}).get("Code", ""))
    return code if code in FINAL_S3_ERRORS else None


def queue_url(pipeline: Pipeline, arn: str) -> str | None:
    """The URL of the queue a message came from (for continuations); looked up once per
    warm function, not per invocation (a GetQueueUrl call each time)."""
    rt = pipeline.rt
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


@dataclass(slots=True)
class MessagesOutcome:
    ledger: Ledger
    response: BatchResponse
    extra: dict[str, Any]


def ingest_messages(pipeline: Pipeline, event: Any, inv: Invocation) -> MessagesOutcome:
    """An SQS batch of S3 notifications (plain, SNS-wrapped or EventBridge-shaped) and
    continuations. A message fails (and returns to the queue) only when its objects could
    not be read or dead-lettered; near the deadline the rest are handed back untouched."""
    margin_ms = pipeline.rt.settings.deadline_margin_ms
    response = BatchResponse()
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        err = DecodeError("shape", "not an SQS event (no 'Records' list)")
        ledger = pipeline.reject(raw_bytes(event), err, inv)
        return MessagesOutcome(ledger, response, {"decode_error": str(err)})
    ledger = Ledger()
    objects: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"objects": objects}
    for rec in records:
        mid = _text(rec, "messageId")
        if inv.remaining_ms() < margin_ms:
            response.fail(mid)  # hand it back untouched: a fresh invocation takes it
            continue
        body = rec.get("body") if isinstance(rec, dict) else None
        try:
            work = parse_sqs_body(body if isinstance(body, str) else "")
        except DecodeError as e:
            try:
                ledger.merge(pipeline.reject(raw_bytes(body), e, inv, {"message_id": mid}))
            except Exception as dlq_error:  # the DLQ failed: return this message, not the batch
                response.fail(mid, error=f"{mid}: dead-letter failed: {_brief(dlq_error)}")
            continue
        arn = _text(rec, "eventSourceARN")
        try:
            for item in work:
                part, info = read_object(pipeline, item, inv, queue_url(pipeline, arn))
                ledger.merge(part)
                objects.append(info)
        except Exception as e:
            response.fail(mid, error=f"{mid}: {_brief(e)}")
    response.report_into(extra)
    extra["failed_messages"] = len(response)
    return MessagesOutcome(ledger, response, extra)


def _text(rec: Any, key: str) -> str:
    """An SQS record's attribute when it is a string, else "" (never its repr)."""
    v = rec.get(key) if isinstance(rec, dict) else None
    return v[:2048] if isinstance(v, str) else ""


def _brief(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"
