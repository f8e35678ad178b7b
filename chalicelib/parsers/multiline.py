"""Stack traces split across CloudWatch events, joined back into one event.

A Lambda function that prints a trace (`traceback.print_exc()`,
`e.printStackTrace()`) writes one line per CloudWatch event. Within one batch,
adjacent plain-text events of the same log stream are joined when the later ones
continue a trace:

    Java / JVM / Node    `\\tat com.example.A.b(A.java:38)`, `    at f (/var/task/x.js:1:7)`,
                         `Caused by: ...`, `\\tSuppressed: ...`, `\\t... 12 more`,
                         `\\t... 5 common frames omitted`
    Python               `Traceback (most recent call last):`, then indented
                         `  File "...", line N, in f` and code lines, then the
                         unindented `ValueError: ...` line that ends it; chained
                         tracebacks (`During handling of the above exception...`,
                         `The above exception was the direct cause...`) continue it.

The joined event keeps the first event's id, time, tag and source; its record is
a copy with the lines joined by `\\n` in `message`, `multiline_count` (how many
input events it stands for, also its `count`) and `multiline_ids` (the ids of
the events folded into it, after its own). The ledger counts it by `count`, so
nothing disappears from the accounting. Events that are not joined are returned
as they came (the same objects); joined ones are new objects.

Only records that are exactly `{"message": str}` (plain text, as the decoder
leaves a line that is not JSON or a Lambda line) take part. A JSON line holding
nothing but `message` decodes to the same record and so counts as plain text:
the record alone cannot tell them apart. A logger's header line (`10:07:01.537
[main] ERROR c.e.Handler - payment failed`, parsed into time, level, logger) may
also begin a trace when the caller says which events are such headers: the
exception line after it (`java.lang.IllegalStateException: ...`), its frames and
causes are joined onto it, and the joined record keeps the header's fields.
String methods only.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable
from typing import Any

from chalicelib.event import LogEvent

# A CloudWatch event holds at most 256 KiB; a joined trace stays within that so
# the archive line and any alert built from it keep a bounded size.
MAX_CHARS = 256 * 1024
MAX_EVENTS = 1000

PY_START = "Traceback (most recent call last):"
_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_FIRST_CHARS = frozenset(" \tC.SDT")

# States of an open trace.
_NONE, _JAVA, _PY, _PY_DONE, _PY_CHAIN, _HEADER = range(6)
_THROWABLE_ENDS = ("Exception", "Error", "Throwable")


def is_continuation(line: str) -> bool:
    """True for a line that can only continue a stack trace, whatever came before it.

    Context-dependent lines (Python's code lines and final `Error: ...` line) are
    decided by `join_multiline`, which knows whether a Python traceback is open.
    """
    if not line or line[0] not in _FIRST_CHARS:
        return False
    s = line.strip()
    if s.startswith("Caused by: ") or s.startswith("Suppressed: "):
        return True
    if s in _CHAIN:
        return True
    if s.startswith("... ") and (s.endswith(" more") or s.endswith(" frames omitted")):
        return s[4:].split(" ", 1)[0].isdigit()
    if line[0] not in " \t":
        return False
    return (s.startswith("at ") and len(s) > 3) or s.startswith('File "')


def _is_exception_line(line: str) -> bool:
    """`ValueError: bad`, `botocore.exceptions.ClientError: ...`, `StopIteration`."""
    name = line.split(":", 1)[0]
    return bool(name) and not name[0].isdigit() and name.replace(".", "").replace("_", "").isalnum()


def is_throwable_line(line: str) -> bool:
    """`java.lang.IllegalStateException: msg`, `com.example.OrderError`, `Exception in
    thread "main" ...`: the first line of a JVM trace, strictly (a qualified class name
    ending like a throwable), so a header never swallows an ordinary next line."""
    if line.startswith("Exception in thread "):
        return True
    name = line.split(": ", 1)[0]
    if "." not in name or " " in name or not name.endswith(_THROWABLE_ENDS):
        return False
    return all(p and p.replace("_", "").replace("$", "").isalnum() for p in name.split("."))


def _next_state(state: int, line: str) -> int | None:
    """The open trace's state after `line`, or None if `line` does not continue it."""
    if state == _HEADER:
        if is_throwable_line(line):
            return _JAVA
        if line.strip() == PY_START:
            return _PY
    indented = line[:1] in (" ", "\t")
    if state == _PY:
        if indented:
            return _PY
        return _PY_DONE if _is_exception_line(line) else None
    if state in (_PY_DONE, _PY_CHAIN):
        stripped = line.strip()
        if not stripped:
            return state  # the blank lines around a chain sentence
        if stripped in _CHAIN:
            return _PY_CHAIN
        if state == _PY_CHAIN and stripped == PY_START:
            return _PY
        return None
    if is_continuation(line):
        return _JAVA
    return None


def _stream(ev: LogEvent) -> Hashable | None:
    return ev.source.get("log_stream")


def join_multiline(
    events: list[LogEvent],
    *,
    stream_key: Callable[[LogEvent], Hashable | None] = _stream,
    max_chars: int = MAX_CHARS,
    max_events: int = MAX_EVENTS,
    header: Callable[[LogEvent], str | None] | None = None,
) -> list[LogEvent]:
    """`events` with stack-trace continuations folded into the event that began the trace.

    Only adjacent events with the same (non-None) `stream_key` are joined. `header(ev)`
    gives the message of an event that is a logger's header line (it may begin a trace
    but never continues one), None for any other.
    """
    out: list[LogEvent] = []
    # The open candidate: its index in `out`, stream, lines, ids folded in, state, size.
    head: int = -1
    head_stream: Hashable | None = None
    lines: list[str] = []
    ids: list[str] = []
    state = _NONE
    size = 0
    count = 0  # input events the open candidate stands for (an input may stand for several)

    def close() -> None:
        if ids:
            first = out[head]
            record: dict[str, Any] = {
                **first.record,
                "message": "\n".join(lines),
                "multiline_count": count,
                "multiline_ids": list(ids),
            }
            out[head] = LogEvent(first.tag, first.time, record, first.source, first.id, count=count)

    for ev in events:
        rec = ev.record
        text = rec.get("message") if len(rec) == 1 else None  # plain text: exactly {"message": str}
        is_header = False
        if type(text) is not str:
            text = header(ev) if header is not None else None
            if text is None:
                # Neither plain text nor a header (a JSON record, a platform line: most
                # events): it closes any open trace and stands alone.
                if ids:
                    close()
                    ids = []
                out.append(ev)
                if lines:
                    lines = []
                head = -1
                continue
            is_header = True
        stream = stream_key(ev)
        if (
            text is not None
            and not is_header
            and stream is not None
            and head >= 0
            and stream == head_stream
        ):
            line = text.rstrip("\r\n")
            nxt = _next_state(state, line)
            if nxt is not None and size + len(line) < max_chars and len(ids) + 1 < max_events:
                lines.append(line)
                ids.append(ev.id)
                state = nxt
                size += len(line) + 1
                count += ev.count
                continue
        close()
        out.append(ev)
        lines, ids = [], []
        if text is None or stream is None:
            head = -1
            continue
        head, head_stream = len(out) - 1, stream
        first = text.rstrip("\r\n")
        lines.append(first)
        state = _PY if first.strip() == PY_START else _HEADER if is_header else _NONE
        size = len(first)
        count = ev.count
    close()
    return out


def join_runs(
    events: list[LogEvent],
    candidates: list[int],
    *,
    header: Callable[[LogEvent], str | None] | None = None,
    plain: Container[int] | None = None,
) -> list[LogEvent]:
    """`join_multiline(events, header=header)`, reading only runs of adjacent candidates.

    `candidates` holds, ascending, the index of every event `join_multiline` could fold
    in or hold open: plain text (a record of `message` alone) and headers (more is
    harmless). Any other event closes the open trace and stands alone, so only runs of
    two or more adjacent candidates can change: a payload's JSON and platform lines,
    most of it, are not read again. `plain`, when given, holds (at least) the candidates
    that are plain text, the only events folded into another: a run with none after its
    first event (adjacent headers, a busy JVM's log) is left as it is, unread.
    """
    out: list[LogEvent] = []
    done = 0  # events[:done] are in `out`
    start = last = -2
    for i in (*candidates, -2):
        if i == last + 1:
            last = i
            continue
        if last > start >= 0 and (  # a run of two or more: events[start:last + 1]
            plain is None or any(j in plain for j in range(start + 1, last + 1))
        ):
            out += events[done:start]
            out += join_multiline(events[start : last + 1], header=header)
            done = last + 1
        start = last = i
    if not done:
        return events
    out += events[done:]
    return out
