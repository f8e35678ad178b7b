"""`sluice tap`: watch events pass, with the rules that matched, the actions and the drops.

Switches a tap on in the state table (`chalicelib.tap`: one item with an expiry,
refreshed while the command runs and deleted when it stops, so a killed tap ends
by itself within TAP_TTL_S), then reads the functions' decision lines back from
their own log groups with FilterLogEvents (pattern: this tap's id; each line's
marker checked here), on a deployed stage and on the local stack alike: the local stack writes a
function's tap lines to its log group as Lambda does with stdout.

Functions see a new tap when they next reload their rules (SLUICE_RULES_TTL: 60 s
on a stage, 2 s on the local stack).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape

from chalicelib.loopguard import FUNCTIONS
from chalicelib.rules.tags import tag_pattern_problem
from chalicelib.tap import KEY, MARKER
from sluice_cli import jsonout

# How long a tap outlives the command that set it if that command is killed.
TAP_TTL_S = 120
REFRESH_S = 60
# The functions that route events (the others never write tap lines).
ROUTING = tuple(
    f
    for f in FUNCTIONS
    if f in ("cloudwatch_logs", "kinesis_records", "s3_objects", "s3_object_created")
)

err = Console(stderr=True, highlight=False)


def switch_on(
    ddb: Any, table: str, tap_id: str, tag: str | None, rule: str | None, rate: int
) -> None:
    item: dict[str, Any] = {
        **KEY,
        "tap": {"S": tap_id},
        "expires_at": {"N": str(int(time.time()) + TAP_TTL_S)},
        "rate": {"N": str(rate)},
    }
    if tag:
        item["tag"] = {"S": tag}
    if rule:
        item["rule"] = {"S": rule}
    ddb.put_item(TableName=table, Item=item)


def switch_off(ddb: Any, table: str, tap_id: str) -> None:
    """Delete the tap item if it is still ours (another operator's newer tap stays)."""
    try:
        ddb.delete_item(
            TableName=table,
            Key=KEY,
            ConditionExpression="tap = :id",
            ExpressionAttributeValues={":id": {"S": tap_id}},
        )
    except Exception as e:
        if "ConditionalCheckFailed" not in str(getattr(e, "response", {}).get("Error", {})):
            raise


def groups(stage: str) -> list[str]:
    return [f"/aws/lambda/sluice-{stage}-{fn}" for fn in ROUTING]


def read_lines(
    logs: Any, group_names: list[str], tap_id: str, start_ms: int, seen: set[str]
) -> Iterator[dict[str, Any]]:
    """This tap's decision lines newer than `start_ms` not yet `seen`, oldest first."""
    found: list[tuple[int, dict[str, Any]]] = []
    for group in group_names:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": start_ms,
            # The tap's id: one alphanumeric term (CloudWatch Logs' filter syntax needs no
            # quotes for it); the marker is checked here, on the lines that come back.
            "filterPattern": tap_id,
        }
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except Exception as e:
                code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
                if code == "ResourceNotFoundException":
                    break  # that function has not logged yet
                raise
            for ev in page.get("events", []):
                if ev["eventId"] in seen or not ev["message"].startswith(MARKER):
                    continue
                seen.add(ev["eventId"])
                try:
                    doc = orjson.loads(ev["message"][len(MARKER) :])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict) and doc.get("tap") == tap_id:
                    found.append((int(ev["timestamp"]), doc))
            token = page.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
    found.sort(key=lambda x: x[0])
    yield from (doc for _, doc in found)


def describe(doc: dict[str, Any]) -> str:
    """One line of console markup for a decision."""
    if doc.get("dropped_by"):
        fate = f"[yellow]dropped by {escape(str(doc['dropped_by']))}[/]"
    elif doc.get("archived"):
        fate = "[green]archived[/]"
    else:
        fate = "[red]not archived[/]"
    rules = ",".join(doc.get("rules") or []) or "-"
    actions = ",".join(doc.get("actions") or []) or "-"
    tag = escape(str(doc.get("tag")))
    if doc.get("final_tag") and doc.get("final_tag") != doc.get("tag"):
        tag += f"→{escape(str(doc['final_tag']))}"
    return (
        f"[dim]{escape(str(doc.get('time', '')))}[/] {escape(str(doc.get('function', '')))} "
        f"[bold]{tag}[/] rules={escape(rules)} actions={escape(actions)} {fate}  "
        f"{escape(str(doc.get('message', '')))}"
    )


@click.command()
@click.option("--tag", "tag", help="only events whose tag matches (Fluentd glob)")
@click.option("--rule", "rule", help="only events this rule matches")
@click.option(
    "--rate",
    default=10,
    show_default=True,
    type=click.IntRange(1, 50),
    help="lines per second per function instance, at most",
)
@click.option(
    "--stage",
    default=lambda: os.environ.get("SLUICE_STAGE") or "dev",
    show_default="$SLUICE_STAGE or dev",
    help="whose functions' log groups to read",
)
@click.option("--table", help="state table (default: $SLUICE_STATE_TABLE)")
@click.option("--count", type=int, default=0, help="stop after this many lines (0: never)")
@click.option("--duration", type=float, default=0, help="stop after this many seconds (0: never)")
@click.option("--interval", type=float, default=1.0, show_default=True, help="poll every N s")
@jsonout.option
def tap(
    tag: str | None,
    rule: str | None,
    rate: int,
    stage: str,
    table: str | None,
    count: int,
    duration: float,
    interval: float,
    as_json: bool,
) -> None:
    """Show events as they pass: tag, rules matched, actions, archived or dropped.

    Sampled and rate-limited in the functions; costs nothing once stopped (Ctrl-C).

    \b
    sluice tap --tag 'aws.lambda.checkout-*'
    sluice tap --rule computer-alerts --json | jq .message
    """
    import boto3

    if tag and (problem := tag_pattern_problem(tag)):
        raise click.BadParameter(f"{tag!r}: {problem}", param_hint="--tag")
    name = table or os.environ.get("SLUICE_STATE_TABLE")
    if not name:
        raise click.UsageError("no state table: pass --table or set SLUICE_STATE_TABLE")
    ddb = boto3.client("dynamodb")
    logs = boto3.client("logs")
    tap_id = "tap" + secrets.token_hex(6)
    start_ms = int(time.time() * 1000) - 1000
    switch_on(ddb, name, tap_id, tag, rule, rate)
    refreshed = time.monotonic()
    began = refreshed
    err.print(
        f"{tap_id} on sluice-{stage}: functions start within their rules TTL "
        f"(SLUICE_RULES_TTL); Ctrl-C to stop"
    )
    shown = 0
    seen: set[str] = set()
    console = Console(highlight=False, soft_wrap=True)
    try:
        while True:
            for doc in read_lines(logs, groups(stage), tap_id, start_ms, seen):
                if as_json:
                    jsonout.emit(doc)
                else:
                    console.print(describe(doc))
                shown += 1
                if count and shown >= count:
                    return
            now = time.monotonic()
            if duration and now - began >= duration:
                return
            if now - refreshed >= REFRESH_S:
                switch_on(ddb, name, tap_id, tag, rule, rate)
                refreshed = now
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        switch_off(ddb, name, tap_id)
        err.print(f"{tap_id} off: {shown} line(s)")
