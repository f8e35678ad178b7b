"""`sluice dlq list|replay`: what went to the dead-letter queue, and sending it back."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from chalicelib.durations import parse_duration
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Runtime
from sluice_cli import jsonout, onfailure
from sluice_cli.redeliver import replay_dead_letter
from sluice_cli.streams import function_output

console = Console(soft_wrap=True)
# Long enough to replay one message (an S3 object re-read takes longest); a message
# not replayed in that time reappears for the next run instead of being lost.
VISIBILITY_S = 300


def parse_since(text: str | None) -> float | None:
    """`2026-11-26T09:00:00Z`, or an age: `30m`, `6h`, `2d` -> epoch seconds."""
    if not text:
        return None

    age = parse_duration(text)
    if age is not None:
        return time.time() - age
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as e:
        raise click.BadParameter(f"{text!r}: an ISO 8601 time or an age like 30m, 6h, 2d") from e
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _queue(queue_url: str | None) -> str:
    url = queue_url or os.environ.get("SLUICE_DLQ_URL")
    if not url:
        raise click.UsageError("no dead-letter queue: pass --queue-url or set SLUICE_DLQ_URL")
    return url


def _time(body: Any, msg: dict[str, Any]) -> float:
    t = body.get("time") if isinstance(body, dict) else None
    if isinstance(t, str):
        try:
            return datetime.fromisoformat(t).timestamp()
        except ValueError:
            pass
    return int(msg.get("Attributes", {}).get("SentTimestamp", "0")) / 1000


def receive_all(sqs: Any, url: str, limit: int, visibility: int) -> list[dict[str, Any]]:
    """Up to `limit` messages, each held invisible for `visibility` seconds."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(out) < limit:
        resp = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(out)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
            AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        )
        msgs = [m for m in resp.get("Messages", []) if m["MessageId"] not in seen]
        if not msgs:
            break
        for m in msgs:
            seen.add(m["MessageId"])
            out.append(m)
    return out


def release(sqs: Any, url: str, msgs: list[dict[str, Any]]) -> None:
    """Make messages visible again at once (a listing consumes nothing)."""
    for i in range(0, len(msgs), 10):
        entries = [
            {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for j, m in enumerate(msgs[i : i + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def parse_body(msg: dict[str, Any]) -> Any:
    """A message's body as JSON, or None when it is not JSON (kept, and said so)."""
    try:
        return orjson.loads(msg["Body"])
    except orjson.JSONDecodeError:
        return None


def describe(body: Any) -> tuple[str, str, str, int, str]:
    """(stage, function, action/rule, count, reason) of any dead letter, Sluice's or Lambda's."""
    if not isinstance(body, dict):
        return ("?", "?", "-", 0, "not JSON: neither Sluice's nor Lambda's format")
    try:
        record = onfailure.parse(body)
    except onfailure.RecordError as e:
        return ("lambda", "?", "-", 0, f"incomplete on-failure record: {e}")
    if isinstance(record, onfailure.StreamBatch):
        return ("kinesis-batch", record.function, "-", record.size, record.describe())
    if isinstance(record, onfailure.AsyncFailure):
        fn = record.function + (f":{record.qualifier}" if record.qualifier else "")
        return ("invoke", fn, "-", 1, record.condition)
    if "stage" not in body and "Records" in body:
        return ("sqs-redrive", "s3_objects", "-", len(body["Records"]), "objects queue message")
    target = "/".join(x for x in (body.get("rule"), body.get("action")) if x) or "-"
    return (
        str(body.get("stage", "?")),
        str(body.get("function", "?")),
        target,
        int(body.get("count", 1)),
        str(body.get("reason", "")),
    )


def cli_invocation(rt: Any) -> Any:
    """An invocation for work the CLI does itself, in the caller's account (SNS topic
    names resolve to ARNs in it), with no deadline."""

    import boto3

    account = boto3.client("sts").get_caller_identity()["Account"]
    return Invocation(f"cli-{uuid.uuid4()}", "sluice-cli", account, rt.settings.region)


@click.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue."""


@dlq.command("list")
@click.option("--queue-url", help="dead-letter queue (default: $SLUICE_DLQ_URL)")
@click.option("--max", "limit", default=100, show_default=True, help="messages to show")
@jsonout.option
def list_cmd(queue_url: str | None, limit: int, as_json: bool) -> None:
    """Dead-lettered batches: stage, function, rule/action, events, age and reason."""
    import boto3

    url = _queue(queue_url)
    sqs = boto3.client("sqs")
    retention = int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])[
            "Attributes"
        ]["MessageRetentionPeriod"]
    )
    msgs = receive_all(sqs, url, limit, visibility=30)
    if as_json:
        try:
            _list_json(msgs, retention)
        finally:
            release(sqs, url, msgs)
        return
    try:
        t = Table(title=f"{len(msgs)} dead-lettered batch(es)")
        for col in ("age", "expires in", "stage", "function", "rule/action", "events", "reason"):
            t.add_column(col)
        now = time.time()
        events = 0
        soonest: float | None = None
        for m in sorted(msgs, key=_sent):
            body = parse_body(m)
            stage, fn, target, count, reason = describe(body)
            events += count
            # SQS deletes a message `retention` seconds after it was first sent, whatever
            # its body says: age and expiry both count from SentTimestamp.
            left = retention - (now - _sent(m))
            soonest = left if soonest is None else min(soonest, left)
            t.add_row(
                _age(now - _time(body, m)),
                _age(left),
                stage,
                fn,
                target,
                str(count),
                reason[:160],
            )
        console.print(t)
        console.print(f"{events} event(s) in {len(msgs)} message(s)")
        if soonest is not None:
            console.print(f"the oldest expires in {_age(soonest)} (retention {_age(retention)})")
    finally:
        release(sqs, url, msgs)


def _list_json(msgs: list[dict[str, Any]], retention: int) -> None:
    now = time.time()
    for m in sorted(msgs, key=_sent):
        body = parse_body(m)
        stage, fn, target, count, reason = describe(body)
        jsonout.emit(
            {
                "message_id": m["MessageId"],
                "age_s": round(now - _time(body, m), 3),
                "expires_in_s": round(retention - (now - _sent(m)), 3),
                "stage": stage,
                "function": fn,
                "target": target,
                "events": count,
                "reason": reason,
            }
        )


def _sent(msg: dict[str, Any]) -> float:
    return int(msg.get("Attributes", {}).get("SentTimestamp", "0")) / 1000


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


@dlq.command("replay")
@click.option("--queue-url", help="dead-letter queue (default: $SLUICE_DLQ_URL)")
@click.option("--action", "action", help="only dead letters of this action (slack, sns, forward)")
@click.option("--stage", help="only this stage (decode, archive, action, read)")
@click.option("--since", help="only dead letters newer than this (ISO time or 30m, 6h, 2d)")
@click.option("--max", "limit", default=1000, show_default=True, help="messages to take")
@click.option("--dry-run", is_flag=True, help="show what would be replayed; change nothing")
def replay_cmd(
    queue_url: str | None,
    action: str | None,
    stage: str | None,
    since: str | None,
    limit: int,
    dry_run: bool,
) -> None:
    """Send dead letters back through the pipeline; delete only those that succeeded.

    Uses the functions' settings (SLUICE_* variables) and the same idempotency as the
    functions: archive keys are stable, alerts are deduplicated by event id.
    """
    import boto3

    since_s = parse_since(since)
    sqs = boto3.client("sqs")
    url = _queue(queue_url)
    rt = Runtime()
    msgs = receive_all(sqs, url, limit, visibility=VISIBILITY_S)
    inv = cli_invocation(rt)
    t = Table(title="replay" + (" (dry run)" if dry_run else ""))
    for col in ("stage", "rule/action", "events", "result"):
        t.add_column(col)
    done = kept = skipped = 0
    keep: list[dict[str, Any]] = []
    reasons: list[str] = []
    for m in msgs:
        body = parse_body(m)
        st, _fn, target, count, _reason = describe(body)
        if (
            (action and (not isinstance(body, dict) or body.get("action") != action))
            or (stage and st != stage)
            or (since_s is not None and _time(body, m) < since_s)
        ):
            skipped += 1
            keep.append(m)
            continue
        if dry_run:
            t.add_row(st, target, str(count), "would replay")
            keep.append(m)
            continue
        if body is None:
            outcome_done, detail = False, "body is not JSON: neither Sluice's nor Lambda's format"
        else:
            try:
                with function_output():
                    outcome = replay_dead_letter(rt, body, m["MessageId"], inv)
            except Exception as e:  # one message's failure must not stop the others
                outcome_done, detail = False, f"{type(e).__name__}: {e}"
            else:
                outcome_done, detail = outcome.done, outcome.detail
        if outcome_done:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            done += 1
        else:
            keep.append(m)
            kept += 1
            reasons.append(f"kept {m['MessageId']} ({st}): {detail}")
        t.add_row(
            st,
            target,
            str(count),
            ("[green]done[/] " if outcome_done else "[red]kept[/] ") + detail,
        )
    release(sqs, url, keep)
    console.print(t)
    for line in reasons:  # whole, unwrapped: the table cuts long reasons
        console.print(line, markup=False, highlight=False)
    console.print(f"replayed {done}, kept {kept}, not selected {skipped}")
    if kept:
        raise SystemExit(1)
