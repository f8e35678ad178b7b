"""Where `sluice simulate` and `sluice replay` write, and the paced run that feeds them.

A target takes batches of `profiles.Entry` and writes them the way an
application's shipper would: CloudWatch Logs (a log group per application, a
stream per host, PutLogEvents), Kinesis (a record per entry, partition key the
host, or KPL-aggregated records), S3 (an object per application per flush,
optionally gzip) or a local file. Each keeps a `Tally` of what it wrote.

`run` writes a timeline of (offset in seconds, entry) at its own pace: an entry
is written no earlier than its offset after the start, and each target flushes
its batch when full or `flush_s` after the batch's first entry. On SIGINT or
SIGTERM it stops taking entries, writes the batches in progress and returns
`interrupted=True`.
"""

from __future__ import annotations

import contextlib
import gzip
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from sluice_cli.logs_writer import write_to_cloudwatch
from sluice_cli.payloads import kpl_aggregate
from sluice_cli.profiles import FORMATS, Entry

# PutRecords limits (Kinesis API reference): 500 records and 5 MiB per call,
# 1 MiB per record (data plus partition key).
KINESIS_MAX_RECORDS = 500
KINESIS_MAX_BYTES = 5 * 1024 * 1024
KINESIS_MAX_RECORD = 1024 * 1024
# The KPL's AggregationMaxSize default: user records are packed up to 51,200 bytes.
KPL_MAX_BYTES = 51_200
KINESIS_ATTEMPTS = 4  # the first put and three retries of the records it refused
SIGNAL_CHECK_S = 0.2  # longest wait between two looks at the stop event


@dataclass(slots=True)
class Tally:
    """What one target wrote: entries, physical lines, its own units and calls."""

    entries: int = 0
    lines: int = 0
    units: int = 0  # log events, Kinesis records, S3 objects, file lines
    calls: int = 0
    failed: int = 0  # lines refused by the service after retries


class Target(ABC):
    name = "target"
    unit = "items"
    flush_s = 0.2  # a batch waits at most this long for more entries
    max_batch = 1_000  # entries

    def __init__(self) -> None:
        self.tally = Tally()

    @abstractmethod
    def write(self, entries: list[Entry]) -> None:
        """Send one batch of entries, counting what the service accepted and refused."""

    def close(self) -> None:  # noqa: B027 (a hook: most targets hold nothing)
        """Release what the target holds (files); called once at the end."""

    def describe(self) -> str:
        t = self.tally
        text = f"{self.name}: {t.entries} events, {t.lines} lines, {t.units} {self.unit}"
        if t.calls:
            text += f", {t.calls} requests"
        return text + (f", {t.failed} lines refused" if t.failed else "")


class CloudWatchTarget(Target):
    """A log group per application (`group` for all, or `group_prefix` + app), a stream per host.

    Each line of an entry is one log event, as a function printing a stack trace
    writes one event per line; Sluice joins them back (parsers/multiline.py).
    """

    name = "cloudwatch"
    unit = "log events"

    def __init__(self, logs: Any, *, group: str | None = None, group_prefix: str = "/sim/") -> None:
        super().__init__()
        self.logs = logs
        self.group = group
        self.group_prefix = group_prefix

    def group_of(self, entry: Entry) -> str:
        return self.group or f"{self.group_prefix}{entry.app}"

    def write(self, entries: list[Entry]) -> None:
        streams: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for e in entries:
            streams[(self.group_of(e), e.host)].extend((e.time_ms, ln) for ln in e.lines)
        for (group, stream), lines in streams.items():
            accepted = write_to_cloudwatch(self.logs, group, stream, lines)
            self.tally.calls += 1
            self.tally.units += accepted
            self.tally.failed += len(lines) - accepted
        self.tally.entries += len(entries)
        self.tally.lines += sum(len(e.lines) for e in entries)


class KinesisTarget(Target):
    """A record per entry (its lines joined by newlines), partition key the host.

    `kpl`: entries are packed as the Kinesis Producer Library does, up to
    KPL_MAX_BYTES per aggregated record (payloads.kpl_aggregate).
    """

    name = "kinesis"
    unit = "records"

    def __init__(self, kinesis: Any, stream: str, *, kpl: bool = False) -> None:
        super().__init__()
        self.kinesis = kinesis
        self.stream = stream
        self.kpl = kpl
        if kpl:
            self.name = "kinesis (KPL)"

    def records(self, entries: list[Entry]) -> list[tuple[str, bytes]]:
        user = [(e.host, "\n".join(e.lines).encode()) for e in entries]
        if not self.kpl:
            return user
        out: list[tuple[str, bytes]] = []
        group: list[tuple[str, bytes]] = []
        size = 0
        for pk, data in user:
            n = len(pk) + len(data) + 8  # protobuf framing: tags, lengths, key index
            if group and size + n > KPL_MAX_BYTES:
                out.append((group[0][0], kpl_aggregate(group)))
                group, size = [], 0
            group.append((pk, data))
            size += n
        if group:
            out.append((group[0][0], kpl_aggregate(group)))
        return out

    def write(self, entries: list[Entry]) -> None:
        records: list[tuple[str, bytes]] = []
        for pk, data in self.records(entries):
            if len(pk) + len(data) > KINESIS_MAX_RECORD:
                self.tally.failed += 1  # PutRecords would refuse the whole call
            else:
                records.append((pk, data))
        for chunk in _chunks(records):
            self.tally.failed += self._put(chunk)
        self.tally.entries += len(entries)
        self.tally.lines += sum(len(e.lines) for e in entries)
        self.tally.units += len(records)

    def _put(self, records: list[tuple[str, bytes]]) -> int:
        """PutRecords, retrying the records it refused (throttling); returns those lost."""
        for attempt in range(KINESIS_ATTEMPTS):
            resp = self.kinesis.put_records(
                StreamName=self.stream,
                Records=[{"PartitionKey": pk, "Data": data} for pk, data in records],
            )
            self.tally.calls += 1
            if not resp.get("FailedRecordCount"):
                return 0
            records = [
                r for r, res in zip(records, resp["Records"], strict=True) if res.get("ErrorCode")
            ]
            if attempt + 1 < KINESIS_ATTEMPTS:
                time.sleep(0.1 * 2**attempt)
        return len(records)


def _chunks(records: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for pk, data in records:
        n = len(pk) + len(data)
        if chunk and (len(chunk) >= KINESIS_MAX_RECORDS or size + n > KINESIS_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append((pk, data))
        size += n
    if chunk:
        yield chunk


class S3Target(Target):
    """An object per application per flush, as log shippers upload on an interval.

    Keys: `<prefix><app>/dt=YYYY-MM-DD/hour=HH/<app>-<first ms>-<n>.<ext>[.gz]`; the
    `=` of the partitions is URL-encoded in S3's notifications. CSV objects start
    with their header line.
    """

    name = "s3"
    unit = "objects"
    flush_s = 1.0
    max_batch = 20_000

    def __init__(self, s3: Any, bucket: str, *, prefix: str = "", gzip: bool = False) -> None:
        super().__init__()
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.gzip = gzip
        self._n = 0

    def key(self, entry: Entry) -> str:
        self._n += 1
        t = datetime.fromtimestamp(entry.time_ms / 1000, UTC)
        ext = FORMATS.get(entry.fmt, ("log", None))[0] + (".gz" if self.gzip else "")
        return (
            f"{self.prefix}{entry.app}/dt={t:%Y-%m-%d}/hour={t:%H}/"
            f"{entry.app}-{entry.time_ms}-{self._n:05d}.{ext}"
        )

    def write(self, entries: list[Entry]) -> None:
        by_app: dict[str, list[Entry]] = defaultdict(list)
        for e in entries:
            by_app[e.app].append(e)
        for app_entries in by_app.values():
            lines = [ln for e in app_entries for ln in e.lines]
            header = FORMATS.get(app_entries[0].fmt, ("log", None))[1]
            body = "\n".join([header, *lines] if header else lines).encode() + b"\n"
            if self.gzip:
                body = gzip.compress(body, compresslevel=6, mtime=0)
            self.s3.put_object(Bucket=self.bucket, Key=self.key(app_entries[0]), Body=body)
            self.tally.calls += 1
            self.tally.units += 1
            self.tally.lines += len(lines)
        self.tally.entries += len(entries)


class FileTarget(Target):
    """Lines appended to a file (`-`: standard output), flushed per batch for `tail -f`."""

    name = "file"
    unit = "lines"

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self._fh: IO[str] = sys.stdout if out == "-" else Path(out).open("a", encoding="utf-8")

    def write(self, entries: list[Entry]) -> None:
        lines = [ln for e in entries for ln in e.lines]
        self._fh.write("".join(ln + "\n" for ln in lines))
        self._fh.flush()
        self.tally.entries += len(entries)
        self.tally.lines += len(lines)
        self.tally.units += len(lines)

    def close(self) -> None:
        if self._fh is not sys.stdout:
            self._fh.close()


# ---------------------------------------------------------------- the run
@dataclass(slots=True)
class RunResult:
    targets: list[Target]
    entries: int = 0  # taken from the timeline (and written, unless `error`)
    interrupted: bool = False
    error: str | None = None
    elapsed_s: float = 0.0
    summary: list[str] = field(default_factory=list)


@contextlib.contextmanager
def interruptible() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM (a second signal raises KeyboardInterrupt).

    Signal handlers can only be installed from the main thread; elsewhere (a
    test calling `run` from a thread) the event is only set by the caller.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def run(
    timeline: Iterable[tuple[float, Entry]],
    targets: list[Target],
    *,
    stop: threading.Event,
    count: int | None = None,
    duration_s: float | None = None,
    progress: Any = None,
) -> RunResult:
    """Write the timeline to every target at its pace; see the module docstring.

    `progress`: a rich Progress whose first task is advanced by the entries
    written (None: no display).
    """
    result = RunResult(targets)
    pending: dict[int, list[Entry]] = {i: [] for i in range(len(targets))}
    due: dict[int, float] = {}  # target index -> monotonic time its batch must go
    t0 = time.monotonic()

    def flush(i: int) -> None:
        batch, pending[i] = pending[i], []
        due.pop(i, None)
        if batch:
            targets[i].write(batch)
            if i == 0 and progress is not None:
                progress.advance(progress.task_ids[0], len(batch))

    try:
        for offset, entry in timeline:
            if (count is not None and result.entries >= count) or (
                duration_s is not None and offset >= duration_s
            ):
                break
            while not stop.is_set():
                now = time.monotonic()
                for i in [i for i, at in due.items() if at <= now]:
                    flush(i)
                wait = t0 + offset - now
                if wait <= 0:
                    break
                # In slices: a signal the kernel hands to another thread (rich's refresh
                # thread) runs our handler only when the main thread next runs Python.
                stop.wait(min([wait, SIGNAL_CHECK_S, *(at - now for at in due.values())]))
            if stop.is_set():
                result.interrupted = True
                break
            result.entries += 1
            for i, target in enumerate(targets):
                pending[i].append(entry)
                if len(pending[i]) >= target.max_batch:
                    flush(i)
                elif i not in due:
                    due[i] = time.monotonic() + target.flush_s
        for i in pending:  # the batches in progress, interrupted or not
            flush(i)
    except Exception as e:
        result.error = f"{type(e).__name__}: {e}"
    finally:
        for t in targets:
            t.close()
    result.elapsed_s = time.monotonic() - t0
    result.summary = [t.describe() for t in targets]
    return result


# ---------------------------------------------------------------- the commands' side
def build_targets(
    clients: Any,
    names: tuple[str, ...],
    *,
    log_group: str | None,
    group_prefix: str,
    stream: str,
    kpl: bool,
    bucket: str | None,
    prefix: str,
    gzip_: bool,
    out: str | None,
) -> list[Target]:
    """The targets asked for, after checking that what they write to exists."""
    names = names or (("file",) if out else ("cloudwatch",))
    targets: list[Target] = []
    for name in dict.fromkeys(names):
        if name == "cloudwatch":
            targets.append(
                CloudWatchTarget(clients.get("logs"), group=log_group, group_prefix=group_prefix)
            )
        elif name == "kinesis":
            kinesis = clients.get("kinesis")
            _check(
                kinesis.describe_stream_summary,
                {"StreamName": stream},
                f"Kinesis stream {stream!r}",
                f"sluice local up --kinesis-stream {stream}",
            )
            targets.append(KinesisTarget(kinesis, stream, kpl=kpl))
        elif name == "s3":
            if not bucket:
                raise click.UsageError("--target s3 needs --bucket")
            s3 = clients.get("s3")
            _check(
                s3.head_bucket,
                {"Bucket": bucket},
                f"bucket {bucket!r}",
                f"sluice local up --watch-bucket {bucket}",
            )
            targets.append(S3Target(s3, bucket, prefix=prefix, gzip=gzip_))
        else:
            targets.append(FileTarget(out or "-"))
    return targets


def _check(call: Any, kwargs: dict[str, Any], what: str, hint: str) -> None:
    try:
        call(**kwargs)
    except Exception as e:
        code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("ResourceNotFoundException", "404", "NoSuchBucket", "NotFound"):
            raise click.ClickException(
                f"{what} does not exist; create it, or on the local stack: {hint}"
            ) from e
        raise click.ClickException(f"cannot reach {what}: {type(e).__name__}: {e}") from e


def execute(
    timeline: Iterable[tuple[float, Entry]],
    targets: list[Target],
    *,
    label: str,
    count: int | None = None,
    duration_s: float | None = None,
    show_progress: bool = True,
) -> int:
    """Run with a progress bar on stderr and print the summary; returns the exit status.

    0 when done, 130 when interrupted (the shell's code for SIGINT), 1 on an error.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed or 0:>8.0f}/s")

    err = Console(stderr=True, highlight=False)
    columns: list[Any] = [TextColumn("{task.description}")]
    if count:
        columns += [BarColumn(), MofNCompleteColumn()]
    else:
        columns += [TextColumn("{task.completed} events")]
    columns += [Rate(), TimeElapsedColumn()]
    progress = Progress(*columns, console=err, disable=not show_progress)
    with interruptible() as stop, progress:
        progress.add_task(label, total=count)
        result = run(
            timeline,
            targets,
            stop=stop,
            count=count,
            duration_s=duration_s,
            progress=progress,
        )
    if result.interrupted:
        err.print("interrupted: the batches in progress were written", markup=False)
    if result.error:
        err.print(f"[red]stopped by an error[/]: {result.error}")
    rate = result.entries / result.elapsed_s if result.elapsed_s else 0.0
    err.print(f"{result.entries} events in {result.elapsed_s:.1f} s ({rate:.0f}/s)", markup=False)
    for line in result.summary:
        err.print(f"written to {line}", markup=False, soft_wrap=True)
    if result.error:
        return 1
    return 130 if result.interrupted else 0


# ---------------------------------------------------------------- command options
TARGETS = ("cloudwatch", "kinesis", "s3", "file")
DEFAULT_STREAM = "sluice-fan-in"  # app.py's kinesis_records stream


def target_options(f: Any) -> Any:
    """The options `simulate` and `replay` share: where to write, and how."""
    options = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            type=click.Choice(TARGETS),
            help="where to write (repeatable; default cloudwatch, or file with --out)",
        ),
        click.option(
            "--log-group",
            default=None,
            help="CloudWatch log group for every application (default: one per application)",
        ),
        click.option(
            "--stream",
            default=DEFAULT_STREAM,
            show_default=True,
            help="Kinesis stream (it must exist: `sluice local up --kinesis-stream NAME`)",
        ),
        click.option("--kpl", is_flag=True, help="Kinesis: KPL-aggregate the records"),
        click.option("--bucket", default=None, help="S3 bucket (it must exist)"),
        click.option("--prefix", default="", help="S3 key prefix, e.g. logs/"),
        click.option("--gzip", "gzip_", is_flag=True, help="S3: gzip the objects (.gz)"),
        click.option("--out", default=None, help="file target: append to FILE (- for stdout)"),
        click.option("--no-progress", is_flag=True, help="no progress bar"),
    ]
    for option in reversed(options):
        f = option(f)
    return f
