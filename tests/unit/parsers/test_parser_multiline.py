"""Stack-trace joining: Java, Python and Node traces split across CloudWatch events."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.event import LogEvent
from chalicelib.parsers import parse_message
from chalicelib.parsers.multiline import is_continuation, join_multiline

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
RID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"
START = f"START RequestId: {RID} Version: $LATEST"
END = f"END RequestId: {RID}"


def trace(name: str) -> list[str]:
    return DATA.joinpath(name).read_text(encoding="utf-8").splitlines()


def events(
    lines: list[str], stream: str | None = "2026/11/26/[$LATEST]abc", t0: int = 1_795_687_621_000
):
    """CloudWatch-shaped events, one per printed line, parsed as the decoder parses them."""
    source = {"kind": "cloudwatch", "log_group": "/aws/lambda/checkout-api", "log_stream": stream}
    out = []
    for i, line in enumerate(lines):
        record, _ = parse_message(line + "\n")  # Lambda's stdout lines end with a newline
        out.append(LogEvent("aws.lambda.checkout-api", t0 + i, record, source, f"id-{i}"))
    return out


@pytest.mark.parametrize(
    "name", ["java_trace.txt", "python_trace.txt", "python_chained.txt", "node_trace.txt"]
)
def test_trace_between_platform_lines_joined(name):
    """A whole trace printed line by line becomes one event between START and END."""
    lines = trace(name)
    batch = events([START, *lines, END])
    out = join_multiline(batch)
    assert [ev.id for ev in out] == ["id-0", "id-1", f"id-{len(lines) + 1}"]
    joined = out[1]
    assert joined.record == {
        "message": "\n".join(lines),
        "multiline_count": len(lines),
        "multiline_ids": [f"id-{i}" for i in range(2, len(lines) + 1)],
    }
    assert joined.count == len(lines)
    assert joined.time == batch[1].time
    assert joined.source is batch[1].source
    assert out[0] is batch[0] and out[2] is batch[-1]


def test_originals_untouched():
    """Joining builds new events: the input events and records are not modified."""
    batch = events(trace("java_trace.txt"))
    before = [dict(ev.record) for ev in batch]
    join_multiline(batch)
    assert [ev.record for ev in batch] == before


def test_two_traces_stay_apart():
    """Two Python tracebacks in a row are two events, each complete."""
    py = trace("python_trace.txt")
    out = join_multiline(events(py + py))
    assert [ev.record["multiline_count"] for ev in out] == [len(py), len(py)]


def test_java_exception_line_heads_the_trace():
    """The plain line before the first `at` frame (the exception) begins the joined event."""
    lines = ["ERROR Checkout failed", *trace("java_trace.txt")]
    out = join_multiline(events(lines))
    assert len(out) == 2
    assert out[0].record == {"message": "ERROR Checkout failed"}
    assert out[1].record["message"].startswith('Exception in thread "main"')


def test_line_after_python_trace_not_joined():
    """The line after a traceback's final exception line is a new event."""
    lines = [*trace("python_trace.txt"), "retrying in 2s"]
    out = join_multiline(events(lines))
    assert [ev.record["message"] for ev in out][-1] == "retrying in 2s"
    assert out[0].record["multiline_count"] == len(lines) - 1


def test_only_same_stream_joined():
    """A continuation from another log stream is not folded into this stream's trace."""
    a = events(trace("java_trace.txt")[:2], stream="stream-a")
    b = events(trace("java_trace.txt")[2:3], stream="stream-b", t0=2)
    for i, ev in enumerate(b):
        ev.id = f"b-{i}"
    out = join_multiline(a + b)
    assert [ev.id for ev in out] == ["id-0", "b-0"]


def test_events_without_stream_never_joined():
    """Events whose source names no log stream are returned as they came."""
    batch = events(trace("java_trace.txt"), stream=None)
    assert join_multiline(batch) == batch


def test_json_record_is_not_a_head():
    """A continuation after a JSON record stays its own event: only plain text is joined."""
    batch = events(['{"level": "error", "message": "boom"}', "\tat com.example.A.b(A.java:1)"])
    out = join_multiline(batch)
    assert out == batch


def test_json_record_ends_a_trace():
    """A JSON record inside a trace's lines closes the trace before it."""
    java = trace("java_trace.txt")
    batch = events([*java[:3], '{"level": "info", "message": "unrelated"}', *java[3:]])
    out = join_multiline(batch)
    assert [ev.record.get("multiline_count") for ev in out] == [3, None, len(java) - 3]


def test_count_adds_up_parts_that_stand_for_several():
    """Joining events that already stand for several inputs counts all of those inputs."""
    batch = events(trace("java_trace.txt"))
    batch[1].count = 3
    (joined,) = join_multiline(batch)
    assert joined.count == joined.record["multiline_count"] == len(batch) + 2


def test_limits_split_very_long_traces():
    """A trace longer than the event limit is cut into several joined events, none lost."""
    lines = ["java.lang.StackOverflowError"] + [
        "\tat com.example.Recursion.f(Recursion.java:7)"
    ] * 25
    out = join_multiline(events(lines), max_events=10)
    assert [ev.record.get("multiline_count", 1) for ev in out] == [10, 10, 6]


def test_char_limit():
    """A trace that would exceed the character limit closes before the line that would cross it."""
    lines = ["java.lang.IllegalStateException: x"] + ["\tat " + "a" * 100] * 5
    out = join_multiline(events(lines), max_chars=250)
    assert all(len(ev.record["message"]) <= 250 for ev in out)
    assert sum(ev.record.get("multiline_count", 1) for ev in out) == len(lines)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("\tat com.example.A.b(A.java:38)", True, id="java frame"),
        pytest.param(
            "    at Module._load (node:internal/modules/cjs/loader:1051:27)", True, id="node frame"
        ),
        pytest.param(
            "   at Example.Program.Main() in /src/Program.cs:line 12", True, id="dotnet frame"
        ),
        pytest.param("Caused by: java.lang.NullPointerException", True, id="caused by"),
        pytest.param("\tSuppressed: java.io.IOException: close failed", True, id="suppressed"),
        pytest.param("\t... 12 more", True, id="more"),
        pytest.param("\t... 5 common frames omitted", True, id="logback omitted"),
        pytest.param('  File "/var/task/app.py", line 3, in handler', True, id="python frame"),
        pytest.param(
            "During handling of the above exception, another exception occurred:",
            True,
            id="python chain",
        ),
        pytest.param("at the end of the day", False, id="prose starting with at"),
        pytest.param("    indented prose", False, id="indented prose"),
        pytest.param("Traceback (most recent call last):", False, id="traceback begins a trace"),
        pytest.param("ValueError: bad", False, id="exception line needs context"),
        pytest.param("... and more", False, id="ellipsis prose"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_continuation(line, expected):
    """Only lines that can only continue a trace are continuations out of context."""
    assert is_continuation(line) is expected


# ---------------------------------------------------------------- properties
_LINES = st.sampled_from(
    [
        *trace("java_trace.txt"),
        *trace("python_chained.txt"),
        *trace("node_trace.txt"),
        "plain log line",
        "    indented",
        '{"message": "json"}',
        START,
        "",
        "ValueError: x",
    ]
)


@given(st.lists(st.tuples(_LINES, st.sampled_from(["a", "b", None])), max_size=30))
def test_nothing_disappears(items):
    """Every input event is an output event or listed, in order, in the one that absorbed it."""
    batch = []
    for i, (line, stream) in enumerate(items):
        (ev,) = events([line], stream=stream, t0=i)
        ev.id = f"e{i}"
        batch.append(ev)
    out = join_multiline(batch)
    seen = []
    for ev in out:
        seen.append(ev.id)
        seen.extend(ev.record.get("multiline_ids", []))
        count = ev.record.get("multiline_count", 1)
        assert count == ev.count == 1 + len(ev.record.get("multiline_ids", []))
    assert seen == [ev.id for ev in batch]
    assert sum(ev.count for ev in out) == len(batch)


_POOL = (
    *trace("java_trace.txt")[:6],
    *trace("python_trace.txt")[:6],
    *trace("python_chained.txt")[:8],
    *trace("node_trace.txt")[:4],
    START,
    END,
    f"REPORT RequestId: {RID}\tDuration: 2.00 ms\tBilled Duration: 3 ms\t",
    "2026-11-26 10:07:01.537 ERROR [main] c.e.orders.Handler - payment failed",
    "10:07:01.537 [main] ERROR c.e.orders.Handler - refund failed",
    f"[ERROR]\t2026-11-26T10:07:01.537Z\t{RID}\tsomething failed",
    "java.lang.IllegalStateException: boom",
    "ValueError: bad value",
    "plain text line",
    "",
    '{"message": "  at f (/var/task/x.js:1:7)"}',
    '{"msg": "Traceback (most recent call last):"}',
    '{"level": "error", "message": "json with a level"}',
    '{"level": "error"}',
    "Caused by: java.io.IOException: closed",
    "\t... 12 more",
    "During handling of the above exception, another exception occurred:",
)


def _joined_whole(log_events, tag, source):
    """What the decoder gave before it read only runs: every event through join_multiline."""
    evs, headers = [], set()
    for le in log_events:
        record, t = parse_message(le["message"])
        c = le["message"][:1]
        if c != "{" and "level" in record and "lambda_event" not in record:
            headers.add(id(record))
        evs.append(
            LogEvent(
                tag,
                t if t is not None else le["timestamp"],
                record,
                source,
                le["id"],
                1,
                len(le["message"]),
                le["timestamp"],
            )
        )

    def header(ev):
        m = ev.record.get("message") if id(ev.record) in headers else None
        return m if type(m) is str else None

    return join_multiline(evs, header=header)


@given(st.lists(st.one_of(st.sampled_from(_POOL), st.text(max_size=12)), max_size=40))
def test_joining_only_runs_of_candidates_is_joining_everything(lines):
    """The decoder joins traces reading only runs of adjacent plain-text and header
    events; for any mix of lines (traces of every kind, headers, JSON, platform lines,
    plain text) its events equal those of joining the whole payload."""
    from chalicelib.sources.cloudwatch import _events

    source = {"kind": "cloudwatch", "log_group": "/aws/lambda/x", "log_stream": "s"}
    log_events = [
        {"id": f"id-{i}", "timestamp": 1_795_687_621_000 + i, "message": m}
        for i, m in enumerate([*lines, "  at trace-ish line, so joining runs"])
    ]
    got = _events(log_events, "t", source)
    want = _joined_whole(log_events, "t", source)
    shape = lambda evs: [(e.id, e.time, e.record, e.count, e.size, e.arrival) for e in evs]  # noqa: E731
    assert shape(got) == shape(want)
