"""s3_objects: the per-line fast paths give exactly what the general paths give.

A whole line without CR is decoded in the line reader without `_line`; a text line whose
record is its message alone is not normalised again; the source fields an object's lines
share are made once per object. Each corpus below is compared with the general path.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

import pytest

from chalicelib.ingest import s3_objects
from chalicelib.normalise import normalise
from chalicelib.parsers import parse_message
from chalicelib.sources import s3, s3_formats

BODIES = [
    pytest.param(b"a\nb\nc", id="plain lines"),
    pytest.param(b"a\r\nb\r\n", id="CRLF"),
    pytest.param(b"\r\n\n\r", id="CR and blank lines"),
    pytest.param(
        b"caf\xc3\xa9\nbad \xff byte\n\xe2\x80\xa8sep\n", id="UTF-8, invalid byte, U+2028"
    ),
    pytest.param(b"x" * 300 + b"\n" + b"y" * 50 + b"\r\nz", id="over the line limit"),
    pytest.param("é".encode() * 120 + b"\nend", id="cut inside a character"),
    pytest.param(b'{"level":"info","msg":"m"}\n{"a":1}\r\n', id="JSON lines"),
    pytest.param(b"\n".join(b"line %d" % i for i in range(3000)), id="many lines"),
]


def reference(body: bytes, limit: int) -> list[tuple[int, str, Any]]:
    """The lines as `_line` makes each of them from a split of the whole body."""
    parts = body.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    out = []
    for n, raw in enumerate(parts, 1):
        line = s3._line(n, raw, 0, limit)
        out.append((line.number, line.text, line.flags))
    return out


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("body", BODIES)
def test_line_reader_fast_path_equals_line_by_line(monkeypatch, body, compress):
    """Every line read (whole, CRLF, invalid UTF-8, over the limit) has the number, text
    and flags `_line` gives it."""
    monkeypatch.setattr(s3, "_line_limit", lambda: 256)
    data = gzip.compress(body) if compress else body
    got = [(x.number, x.text, x.flags) for x in s3.iter_lines(io.BytesIO(data), "k", chunk=97)]
    assert got == reference(body, 256)


TEXT_LINES = [
    pytest.param("plain words", id="plain text"),
    pytest.param("", id="empty"),
    pytest.param("[ERROR] 2026-11-26T10:00:00.000Z 1a2b boom", id="runtime line with time"),
    pytest.param("[INFO] no time here", id="bracketed, no time"),
    pytest.param("START RequestId: 8f1c Version: $LATEST", id="platform START"),
    pytest.param(
        "REPORT RequestId: 8f1c\tDuration: 2.5 ms\tBilled Duration: 3 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 64 MB",
        id="platform REPORT",
    ),
    pytest.param("2026-11-26 10:00:00,123 INFO worker: started", id="logger text"),
    pytest.param('10.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5', id="nginx"),
    pytest.param('{"msg":"json","level":"warn"}', id="JSON"),
    pytest.param('{"message":"m","time":"2026-11-26T10:00:00.000Z"}', id="JSON with time"),
    pytest.param('{"broken":', id="broken JSON"),
    pytest.param("[1, 2]", id="JSON list"),
]

REF = s3.ObjectRef("acme-logs", "app/2026/x.log", "v1", "e1", 10, account="123456789012")
OTHER = s3.ObjectRef("other-logs", "y.log", None, "e2")


def general(text: str, fmt_name: str) -> tuple[dict[str, Any], int | None]:
    """A line's record and time as made without the single-field shortcut."""
    fmt = s3_formats.FORMATS[fmt_name]()
    if fmt_name == "jsonl" and text[:1] != "{":
        rec, t = parse_message(text, max_chars=None)
        return normalise(rec) if t is None else (rec, t)
    if fmt_name == "jsonl":
        (ev,) = s3_objects.line_events(fmt, s3.Line(1, text), REF, "t", 5, None)
        return ev.record, None if ev.time == 5 else ev.time
    return normalise(fmt.record(text))


@pytest.mark.parametrize("fmt_name", ["jsonl", "text"])
@pytest.mark.parametrize("text", TEXT_LINES)
def test_line_events_equal_the_general_path(text, fmt_name):
    """Each line's one event has the record, time and source the general path gives,
    the source's fields in the same order, for two objects read in turn."""
    for ref in (REF, OTHER, REF):
        fmt = s3_formats.FORMATS[fmt_name]()
        (ev,) = s3_objects.line_events(fmt, s3.Line(7, text), ref, "t", 5, None)
        rec, t = general(text, fmt_name)
        assert (ev.record, ev.time) == (rec, 5 if t is None else t)
        want = {
            "kind": "s3",
            "bucket": ref.bucket,
            "key": ref.key,
            "version": ref.version,
            "etag": ref.etag,
            "line": 7,
            "account": ref.account,
            "region": ref.region,
        }
        assert list(ev.source.items()) == list(want.items())
        assert ev.id == f"{ref.object_id}:7"
