"""`sluice demo`: the reference scenario on an in-process local stack.

Two applications that disagree on field names write to CloudWatch Logs (moto);
the poller hands their events to the `cloudwatch_logs` handler; the demo shows
Slack alerts as they arrive, then reads back what went where (archive objects,
dead-letter messages, the handlers' ledgers) and checks that nothing was lost:
    received = archived + dropped + dead_lettered
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from chalicelib.actions.archive import PREFIX, read_lines
from sluice_cli import simulate
from sluice_cli.local import LocalStack

RULES = Path(__file__).with_name("data") / "demo-rules.yaml"
TIMEOUT_S = 60.0  # the whole scenario takes a few seconds; this only bounds a hang
FUNCTION_LOG = Path(".sluice") / "demo-functions.log"


@dataclass(frozen=True, slots=True)
class Writer:
    app: simulate.App
    lines: int
    batch: int
    pause_s: float


def writers() -> list[Writer]:
    # The quiet app: a line or two every 150 ms; the chatty one: 40 lines every 100 ms.
    return [
        Writer(simulate.quiet_billing(), lines=24, batch=2, pause_s=0.15),
        Writer(simulate.chatty_frontend(), lines=600, batch=40, pause_s=0.1),
    ]


@dataclass(slots=True)
class Tally:
    received: int = 0
    archived: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    alerts: int = 0
    duplicates: int = 0
    versions: Counter[str] = field(default_factory=Counter)  # archive lines per rules_version
    objects: Counter[str] = field(default_factory=Counter)
    lines: Counter[str] = field(default_factory=Counter)
    dropped_by: Counter[str] = field(default_factory=Counter)
    failed_invocations: int = 0
    ledger_received: int = 0
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)  # first record per tag

    @property
    def lost(self) -> int:
        return self.received - self.archived - self.dropped - self.dead_lettered

    def line(self) -> str:
        return (
            f"demo: received={self.received} archived={self.archived} dropped={self.dropped} "
            f"dead_lettered={self.dead_lettered} alerts={self.alerts} lost={self.lost}"
        )


def run(seed: int = 7, out: IO[str] | None = None) -> int:
    """Run the scenario; return the exit status (0: nothing lost, alerts arrived, no
    duplicate and every archive line names its rules version)."""
    from rich.console import Console

    console = Console(file=out or sys.stdout, highlight=False)
    # The handlers print Powertools JSON log lines and EMF metrics to stdout: turn
    # them down before the runtime is built, and send what remains to a file.
    quiet = {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    saved = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    log_path = _function_log_path()
    try:
        with open(log_path, "w", encoding="utf-8") as fn_log:
            with contextlib.redirect_stdout(fn_log), contextlib.redirect_stderr(fn_log):
                tally, ok = _scenario(console, seed)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    _summary(console, tally, log_path)
    console.print(tally.line(), markup=False)
    versioned = "" not in tally.versions
    good = ok and tally.lost == 0 and tally.alerts > 0 and tally.duplicates == 0 and versioned
    return 0 if good else 1


def _function_log_path() -> Path:
    try:
        FUNCTION_LOG.parent.mkdir(exist_ok=True)
        FUNCTION_LOG.touch()
        return FUNCTION_LOG
    except OSError:  # a read-only checkout: the log is a convenience, not the point
        return Path(tempfile.gettempdir()) / "sluice-demo-functions.log"


def _scenario(console: Any, seed: int) -> tuple[Tally, bool]:
    tally = Tally()
    with LocalStack() as stack:
        assert stack.slack is not None and stack.poller is not None
        applied = stack.apply_rules(RULES)
        console.print(
            f"[bold]sluice demo[/]: moto at {stack.endpoint}, Slack at {stack.slack.url}",
            soft_wrap=True,
        )
        console.print(
            f"rules applied from {RULES.name} as version {applied.version}: "
            f"{', '.join(applied.written + applied.unchanged)}",
            soft_wrap=True,
        )
        plan = writers()
        for w in plan:
            console.print(
                f"  {w.app.log_group}: {w.lines} lines, {w.batch} every {int(w.pause_s * 1000)} ms"
            )
        console.print()

        written: dict[str, int] = {}
        logs = stack.clients.get("logs")

        def write(w: Writer, i: int) -> None:
            written[w.app.name] = simulate.run_app(
                logs, w.app, w.lines, seed=seed + i, batch=w.batch, pause_s=w.pause_s
            )

        threads = [
            threading.Thread(target=write, args=(w, i), daemon=True) for i, w in enumerate(plan)
        ]
        for t in threads:
            t.start()
        shown = 0
        ok = True
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            shown = _show_alerts(console, stack.slack.messages(), shown)
            if not any(t.is_alive() for t in threads) and stack.poller.delivered >= sum(
                written.values()
            ):
                break
            if time.monotonic() > deadline:
                console.print("[red]timed out waiting for the poller[/]")
                ok = False
                break
            with contextlib.suppress(TimeoutError):
                stack.slack.wait_for(shown + 1, timeout=0.05)
        stack.poller.poll()  # a last synchronous pass: whatever is stored is delivered
        _show_alerts(console, stack.slack.messages(), shown)

        tally.received = sum(written.values())
        for o in stack.poller.outcomes:
            if o.result is None:
                tally.failed_invocations += 1
                continue
            tally.dropped += int(o.result.get("dropped", 0))
            tally.ledger_received += int(o.result.get("received", 0))
            tally.dropped_by.update(o.result.get("dropped_by") or {})
        _read_archive(stack, tally)
        tally.dead_lettered = _read_dead_letters(stack)
        tally.alerts = len(stack.slack.messages())
    return tally, ok


def _show_alerts(console: Any, messages: list[dict[str, Any]], shown: int) -> int:
    from rich.markup import escape

    for m in messages[shown:]:
        blocks = m.get("blocks") or []
        header = next((b["text"]["text"] for b in blocks if b.get("type") == "header"), "")
        body = next(
            (b["text"]["text"] for b in blocks if b.get("type") == "section" and "text" in b),
            m.get("text", ""),
        )
        console.print(f"[bold magenta]{escape(m['channel'])}[/] [bold]{escape(header)}[/]")
        console.print(f"    {escape(body)}", soft_wrap=False, overflow="ellipsis", no_wrap=True)
    return len(messages)


def _read_archive(stack: LocalStack, tally: Tally) -> None:

    s3 = stack.clients.get("s3")
    bucket = stack.names.archive_bucket
    ids: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX + "/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            lines = read_lines(body)
            tag = obj["Key"].split("/")[1].removeprefix("tag=")
            tally.objects[tag] += 1
            tally.lines[tag] += len(lines)
            if lines:
                tally.samples.setdefault(tag, lines[0].get("record") or {})
            ids.update(str(ln.get("id")) for ln in lines)
            tally.versions.update(str(ln.get("rules_version") or "") for ln in lines)
    tally.archived = sum(tally.lines.values())
    tally.duplicates = sum(n - 1 for n in ids.values() if n > 1)


def _read_dead_letters(stack: LocalStack) -> int:
    """Events in the dead-letter queue (a raw, undecodable payload counts as one)."""
    assert stack.resources is not None
    sqs = stack.clients.get("sqs")
    total = 0
    while True:
        resp = sqs.receive_message(
            QueueUrl=stack.resources.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=300,
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            return total
        for m in msgs:
            total += int(json.loads(m["Body"]).get("count", 1))


def _summary(console: Any, t: Tally, log_path: Path) -> None:
    from rich.table import Table

    console.print()
    if t.dropped_by:
        console.print(
            "dropped by rule: " + ", ".join(f"{k}={v}" for k, v in sorted(t.dropped_by.items()))
        )
    if t.ledger_received != t.received:
        console.print(
            f"[yellow]handlers received {t.ledger_received} events, the apps wrote {t.received}[/]"
        )
    if t.failed_invocations:
        console.print(f"[red]{t.failed_invocations} invocation(s) failed after retries[/]")
    console.print(f"duplicate ids in the archive: {t.duplicates}")
    by_version = ", ".join(f"{v or 'none'}={n}" for v, n in sorted(t.versions.items()))
    console.print(f"archive lines by rules_version: {by_version or '-'}")
    if t.samples:
        console.print("fields of the first archived record per tag (one schema for both apps):")
        width = max(map(len, t.samples))
        for tag, rec in sorted(t.samples.items()):
            rest = ", ".join(k for k in rec if k not in ("message", "level"))
            console.print(
                f"  {tag:<{width}}  message, level + {rest}", markup=False, soft_wrap=True
            )
    table = Table(title="archive objects per tag", title_justify="left")
    table.add_column("tag")
    table.add_column("objects", justify="right")
    table.add_column("events", justify="right")
    for tag in sorted(t.objects):
        table.add_row(tag, str(t.objects[tag]), str(t.lines[tag]))
    table.add_row("[bold]total[/]", str(sum(t.objects.values())), str(t.archived))
    console.print(table)


@click.command("demo")
@click.option("--seed", default=7, show_default=True, help="random seed of the simulated apps")
def demo(seed: int) -> None:
    """Run the reference scenario on an in-process local stack and print what went where."""
    raise SystemExit(run(seed=seed))
