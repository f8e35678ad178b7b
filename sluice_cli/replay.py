"""`sluice replay FILE`: an existing log file played back as if it were being written now.

One event per line (blank lines skipped; gzip files read as such). Each line's
time is read from its own text: a JSON line's `time`/`timestamp`/`@timestamp`/
`ts`/`eventTime` field (ISO 8601 or epoch s/ms/µs/ns), or a timestamp leading
the line (ISO 8601 with `T` or a space, syslog RFC 5424 and RFC 3164, epoch
seconds or milliseconds, `[...]` around any of them), a logfmt `time=`/`ts=`, or
an access log's `[26/Nov/2026:10:07:01 +0000]`.

The gaps between lines are kept (divided by `--speed`) and every time is
re-stamped, in the line's own format, to the moment the line is written. A line
without a time keeps the previous gap, except the lines of a stack trace
(indented, `Traceback ...`, `Caused by: ...`, the exception line closing a
Python traceback), which follow the line they belong to at once: spreading a
trace out would split it across deliveries, where Sluice could no longer join it.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
import orjson
import re2

from chalicelib.aws import Clients
from chalicelib.normalise import TIME_FIELDS, to_epoch_ms
from chalicelib.pipeline import Runtime
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_document
from chalicelib.rules.store import read_version
from chalicelib.rules.tags import TagPattern
from sluice_cli import targets
from sluice_cli.dlq import cli_invocation, parse_since
from sluice_cli.profiles import Entry
from sluice_cli.redeliver import archived_events, replay_archive
from sluice_cli.simulate import target_options
from sluice_cli.streams import function_output

# A time leading a line is looked for in this many characters (a syslog header, a bracket).
_HEAD = 64
_ISO = (
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?P<sep>[T ])(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:(?P<fsep>[.,])(?P<frac>\d{1,9}))?(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)
# RE2 throughout: these run on the replayed files' lines, which are log content.
ISO = re2.compile(_ISO)
LEADING_ISO = re2.compile(r"^(?:<\d{1,3}>1 |\[)?" + _ISO)
LOGFMT_TIME = re2.compile(r'(?:^|\s)(?:time|ts|timestamp)="?' + _ISO)
BSD = re2.compile(r"^(?:<\d{1,3}>)?(?P<mon>[A-Z][a-z]{2}) (?P<d>[ \d]\d) (?P<t>\d{2}:\d{2}:\d{2})")
CLF = re2.compile(r"\[(?P<t>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}) (?P<z>[+-]\d{4})\]")
# RE2 has no lookahead: the character that ends the number is matched (and left alone).
EPOCH = re2.compile(r"^\[?(?P<v>\d{13}|\d{10}(?:\.\d{1,6})?)(?:[\s\]]|$)")
_MONTHS = {
    m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}
# Python's traceback chaining lines and JVM trace lines that do not start indented.
_TRACE_STARTS = (
    "Traceback (most recent call last):",
    "Caused by: ",
    "During handling of the above exception",
    "The above exception was the direct cause",
)
_EXCEPTION_LINE = re2.compile(r"^[A-Za-z_][\w.$]*(?::\s|$)")

Restamp = Callable[[int], str]  # new epoch ms -> the line with that time in place of its own


# ---------------------------------------------------------------- times in text
def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _iso_value(m: Any) -> tuple[int, Callable[[int], str]]:
    """The ms of an ISO match, and how to write another time in the same shape."""
    tz = _zone(m["zone"])
    frac = m["frac"] or ""
    micros = int((frac + "000000")[:6])
    t = datetime(
        int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]), micros,
        tzinfo=tz or UTC,
    )  # fmt: skip
    ms = _ms(t)

    def fmt(new_ms: int) -> str:
        n = datetime.fromtimestamp(new_ms / 1000, tz or UTC)
        out = n.strftime(f"%Y-%m-%d{m['sep']}%H:%M:%S")
        if frac:
            out += m["fsep"] + f"{n.microsecond:06d}{'0' * 3}"[: len(frac)]
        return out + (m["zone"] or "")

    return ms, fmt


def _ms(t: datetime) -> int:
    # Integer arithmetic: float seconds * 1000 loses a millisecond now and then.
    return (t - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _start(m: Any, group: str) -> int:
    """Where a named group starts (RE2's match objects take group numbers only)."""
    return int(m.start(m.re.groupindex[group]))


def _end(m: Any, group: str) -> int:
    return int(m.end(m.re.groupindex[group]))


def _splice(line: str, start: int, end: int, fmt: Callable[[int], str]) -> Restamp:
    return lambda new_ms: line[:start] + fmt(new_ms) + line[end:]


def find_time(line: str, now_ms: int) -> tuple[int, Restamp] | None:
    """The time a text line carries (epoch ms) and how to re-stamp it, or None."""
    if line.startswith("{"):
        return _json_time(line)
    head = line[:_HEAD]
    m = LEADING_ISO.match(head) or LOGFMT_TIME.search(line)
    if m:
        ms, fmt = _iso_value(m)
        return ms, _splice(line, _start(m, "y"), m.end(), fmt)
    m = BSD.match(head)
    if m:
        return _bsd(line, m, now_ms)
    m = EPOCH.match(head)
    if m:
        return _epoch_text(line, m)
    m = CLF.search(line, 0, 512)
    if m:
        return _clf(line, m)
    return None


def _bsd(line: str, m: Any, now_ms: int) -> tuple[int, Restamp] | None:
    # RFC 3164 has no year: the latest year that does not put the line in the future.
    mon = _MONTHS.get(m["mon"])
    if mon is None:
        return None
    h, mi, s = (int(x) for x in m["t"].split(":"))
    year = datetime.fromtimestamp(now_ms / 1000, UTC).year
    try:
        t = datetime(year, mon, int(m["d"]), h, mi, s, tzinfo=UTC)
        if _ms(t) > now_ms + 86_400_000:
            t = t.replace(year=year - 1)
    except ValueError:
        return None

    def fmt(new_ms: int) -> str:
        n = datetime.fromtimestamp(new_ms / 1000, UTC)
        return f"{n:%b} {n.day:>2} {n:%H:%M:%S}"

    return _ms(t), _splice(line, _start(m, "mon"), _end(m, "t"), fmt)


def _epoch_text(line: str, m: Any) -> tuple[int, Restamp]:
    v = m["v"]
    ms = int(v) if len(v) == 13 else round(float(v) * 1000)
    decimals = len(v.partition(".")[2])

    def fmt(new_ms: int) -> str:
        if len(v) == 13:
            return str(new_ms)
        return f"{new_ms / 1000:.{decimals}f}" if decimals else str(new_ms // 1000)

    return ms, _splice(line, _start(m, "v"), _end(m, "v"), fmt)


def _clf(line: str, m: Any) -> tuple[int, Restamp] | None:
    try:
        t = datetime.strptime(f"{m['t']} {m['z']}", "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None
    tz = t.tzinfo

    def fmt(new_ms: int) -> str:
        return datetime.fromtimestamp(new_ms / 1000, tz).strftime("%d/%b/%Y:%H:%M:%S %z")

    return _ms(t), _splice(line, _start(m, "t"), _end(m, "z"), fmt)


def _json_time(line: str) -> tuple[int, Restamp] | None:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(rec, dict):
        return None
    for key in TIME_FIELDS:
        value = rec.get(key)
        ms = to_epoch_ms(value) if value is not None else None
        if ms is None:
            continue
        fmt = _value_format(value)
        if fmt is None:
            continue

        def restamp(new_ms: int, key: str = key, fmt: Callable[[int], Any] = fmt) -> str:
            return orjson.dumps({**rec, key: fmt(new_ms)}).decode()

        return ms, restamp
    return None


def _value_format(value: Any) -> Callable[[int], Any] | None:
    """How to write a new time like `value`: same type, unit and text shape."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        a = abs(value)
        scale = 0.001 if a < 1e11 else 1 if a < 1e14 else 1000 if a < 1e17 else 1_000_000
        if isinstance(value, float):  # rounded to the ms: 1795690744.498, not ...4980001
            return lambda ms: round(ms * scale, 3 if scale < 1 else 0)
        return lambda ms: int(ms * scale)
    if isinstance(value, str):
        m = ISO.fullmatch(value)
        if m:
            return _iso_value(m)[1]
        if value.replace(".", "", 1).isdigit():
            inner = _value_format(float(value) if "." in value else int(value))
            return (lambda ms: str(inner(ms))) if inner else None
    return None


# ---------------------------------------------------------------- the timeline
def continues_trace(line: str, in_trace: bool) -> bool:
    """True for a line that belongs to the stack trace above it."""
    if line[:1] in (" ", "\t") or line.startswith(_TRACE_STARTS):
        return True
    # The unindented `ValueError: ...` that closes a Python traceback.
    return in_trace and bool(_EXCEPTION_LINE.match(line))


@dataclass(slots=True)
class Timeline:
    """Offsets (seconds from the start of the replay) of successive lines.

    `gap_s`: the gap before a line when no earlier gap is known (a file whose
    first lines carry no time). `max_gap_s`: the longest gap kept, in the file's
    own seconds (a night without traffic need not be waited out).
    """

    speed: float = 1.0
    gap_s: float = 0.1
    max_gap_s: float | None = None
    offset: float = 0.0
    _prev_ms: int | None = None
    _prev_gap_s: float | None = None
    _first: bool = True
    _in_trace: bool = False

    def next(self, orig_ms: int | None, line: str) -> float:
        if orig_ms is not None:
            gap = 0.0 if self._prev_ms is None else max(0, orig_ms - self._prev_ms) / 1000
            self._prev_ms, self._prev_gap_s, self._in_trace = orig_ms, gap, False
        elif continues_trace(line, self._in_trace):
            gap, self._in_trace = 0.0, True
        else:
            gap = self.gap_s if self._prev_gap_s is None else self._prev_gap_s
            if self._prev_ms is not None:
                self._prev_ms += round(gap * 1000)
            self._in_trace = False
        if self._first:
            gap, self._first = 0.0, False
        if self.max_gap_s is not None:
            gap = min(gap, self.max_gap_s)
        self.offset += gap / self.speed
        return self.offset


def read_lines(path: Path) -> Iterator[str]:
    """The file's lines without their line ends; gzip by its magic bytes."""
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener: Any = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        for line in fh:
            yield line.rstrip("\r\n")


def timeline(
    lines: Iterator[str],
    *,
    app: str,
    start_ms: int,
    speed: float = 1.0,
    gap_s: float = 0.1,
    max_gap_s: float | None = None,
) -> Iterator[tuple[float, Any]]:
    """(offset in seconds, Entry) per non-blank line, re-stamped to start_ms + offset."""

    clock = Timeline(speed=speed, gap_s=gap_s, max_gap_s=max_gap_s)
    for line in lines:
        if not line.strip():
            continue
        found = find_time(line, start_ms)
        offset = clock.next(found[0] if found else None, line)
        new_ms = start_ms + round(offset * 1000)
        text = found[1](new_ms) if found else line
        yield offset, Entry(new_ms, app, _host(line) or app, "", "replay", (text,), _fmt(line))


def _host(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    host = rec.get("host") or rec.get("hostname") if isinstance(rec, dict) else None
    return host if isinstance(host, str) and host else None


def _fmt(line: str) -> str:
    return "json" if line.startswith("{") else "raw"


def app_name(path: Path) -> str:
    """`/var/log/app-1.log.gz` -> `app-1`: usable in a log group name and an S3 key."""
    name = path.name
    for suffix in (".gz", ".log", ".jsonl", ".json", ".txt", ".csv"):
        name = name.removesuffix(suffix)
    return re2.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "replay"


# ---------------------------------------------------------------- the command
@click.command()
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--from-archive",
    is_flag=True,
    help="replay archived events through the rules (alerts, forwards), not a file",
)
@click.option(
    "--tag",
    "tag_pattern",
    default="**",
    show_default=True,
    help="--from-archive: tag pattern (`app.**`)",
)
@click.option("--since", help="--from-archive: start (ISO time or an age: 30m, 6h, 2d)")
@click.option("--until", help="--from-archive: end, exclusive (default: now)")
@click.option("--rules-version", type=int, help="--from-archive: route with this rules version")
@click.option(
    "--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
    help="10 plays ten times faster",
)  # fmt: skip
@click.option("--count", type=click.IntRange(min=1), default=None, help="stop after N lines")
@click.option(
    "--gap", "gap_s", type=click.FloatRange(min=0), default=0.1, show_default=True,
    help="seconds between lines before any time was read",
)  # fmt: skip
@click.option(
    "--max-gap", "max_gap_s", type=click.FloatRange(min=0), default=None,
    help="longest gap kept, in the file's seconds",
)  # fmt: skip
@click.option("--app", default=None, help="application name (default: from the file name)")
@click.option(
    "--group-prefix", default="/replay/", show_default=True, help="CloudWatch: group = PREFIX + app"
)
@target_options
def replay(
    file: Path | None,
    from_archive: bool,
    tag_pattern: str,
    since: str | None,
    until: str | None,
    rules_version: int | None,
    speed: float,
    count: int | None,
    gap_s: float,
    max_gap_s: float | None,
    app: str | None,
    group_prefix: str,
    **target: Any,
) -> None:
    """Play FILE back as if it were being logged now, keeping the gaps between lines.

    \b
    sluice replay app.log                                  # to /replay/app in CloudWatch Logs
    sluice replay incident.jsonl.gz --speed 10 --target kinesis
    sluice replay access.log --target s3 --bucket app-logs --max-gap 5
    sluice replay app.log --target file --out - --speed 100

    Ctrl-C writes the batches in progress, prints what was written and exits 130.

    With --from-archive, events archived under --tag between --since and --until go back
    through the rules (the current version, or --rules-version) to re-alert or re-forward
    after a fix; they are not archived a second time, and alerts keep their dedupe by
    event id.

    \b
    sluice replay --from-archive --tag "app.**" --since 6h
    sluice replay --from-archive --tag "aws.lambda.*" --since 2026-11-26T09:00:00Z --rules-version 7
    """

    if from_archive:
        _replay_archive(tag_pattern, since, until, rules_version)
        return
    if file is None:
        raise click.UsageError("give a FILE to replay, or --from-archive")

    show_progress = not target.pop("no_progress")
    out = targets.build_targets(
        Clients(), target.pop("targets"), group_prefix=group_prefix, **target
    )
    name = app or app_name(file)
    start_ms = int(time.time() * 1000)
    lines = timeline(
        read_lines(file), app=name, start_ms=start_ms, speed=speed, gap_s=gap_s, max_gap_s=max_gap_s
    )
    click.echo(f"replaying {file} as {name} at {speed:g}x", err=True)
    status = targets.execute(lines, out, label="replay", count=count, show_progress=show_progress)
    if status:
        raise SystemExit(status)


def _replay_archive(
    tag_pattern: str, since: str | None, until: str | None, rules_version: int | None
) -> None:
    """`sluice replay --from-archive`: archived events through the rules, not re-archived."""

    since_s = parse_since(since)
    if since_s is None:
        raise click.UsageError("--from-archive needs --since (ISO time or an age: 30m, 6h, 2d)")
    until_s = parse_since(until) if until else time.time()
    if until_s is None or until_s <= since_s:
        raise click.UsageError("--until must come after --since")
    try:
        TagPattern(tag_pattern)
    except ValueError as e:
        raise click.BadParameter(f"{tag_pattern!r}: {e}") from e
    rt = Runtime()
    rules = None
    if rules_version is not None:
        import boto3

        try:
            raw, _ = read_version(boto3.client("dynamodb"), rt.settings.rules_table, rules_version)
        except KeyError as e:
            raise click.ClickException(str(e)) from e
        doc = load_document(raw)
        rules = RuleSet(
            doc.rules,
            str(rules_version),
            doc.inputs,
            doc.sections.get("redact"),
            doc.sections.get("accounts"),
        )
    events = archived_events(rt, tag_pattern, int(since_s * 1000), int(until_s * 1000))
    with function_output():  # what the actions log goes to stderr
        ledger = replay_archive(rt, events, cli_invocation(rt), rules)
    click.echo(
        f"replayed {ledger.received} archived event(s) matching {tag_pattern!r}: "
        f"alerts={ledger.alerts} actions_failed={ledger.actions_failed} (nothing re-archived)"
    )
    for rule_id, counts in sorted(ledger.rules.items()):
        click.echo(f"  {rule_id}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v))
