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
from sluice_cli.redeliver import replay_dead_letter

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


def _time(body: dict[str, Any], msg: dict[str, Any]) -> float:
    t = body.get("time")
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


def describe(body: dict[str, Any]) -> tuple[str, str, str, int, str]:
    """(stage, function, action/rule, count, reason) of any dead letter, Sluice's or Lambda's."""
    # Kinesis on-failure records carry requestContext too: test this shape first.
    if "KinesisBatchInfo" in body:
        info = body["KinesisBatchInfo"]
        return (
            "kinesis-batch",
            "kinesis_records",
            "-",
            int(info.get("batchSize", 0)),
            f"shard {info.get('shardId')} {info.get('startSequenceNumber')}..",
        )
    if "requestContext" in body:  # a Lambda on-failure destination record
        ctx = body["requestContext"]
        fn = str(ctx.get("functionArn", "")).rsplit(":", 1)[-1]
        return ("invoke", fn, "-", 1, str(ctx.get("condition", "failed invocation")))
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
def list_cmd(queue_url: str | None, limit: int) -> None:
    """Dead-lettered batches: stage, function, rule/action, events, age and reason."""
    import boto3

    sqs = boto3.client("sqs")
    url = _queue(queue_url)
    msgs = receive_all(sqs, url, limit, visibility=30)
    try:
        t = Table(title=f"{len(msgs)} dead-lettered batch(es)")
        for col in ("age", "stage", "function", "rule/action", "events", "reason"):
            t.add_column(col)
        now = time.time()
        events = 0
        for m in sorted(msgs, key=lambda m: _time(orjson.loads(m["Body"]), m)):
            body = orjson.loads(m["Body"])
            stage, fn, target, count, reason = describe(body)
            events += count
            age = _age(now - _time(body, m))
            t.add_row(age, stage, fn, target, str(count), reason[:160])
        console.print(t)
        console.print(f"{events} event(s) in {len(msgs)} message(s)")
    finally:
        release(sqs, url, msgs)


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
    for m in msgs:
        body = orjson.loads(m["Body"])
        st, _fn, target, count, _reason = describe(body)
        if (
            (action and body.get("action") != action)
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
        try:
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
        t.add_row(
            st,
            target,
            str(count),
            ("[green]done[/] " if outcome_done else "[red]kept[/] ") + detail,
        )
    release(sqs, url, keep)
    console.print(t)
    console.print(f"replayed {done}, kept {kept}, not selected {skipped}")
    if kept:
        raise SystemExit(1)
