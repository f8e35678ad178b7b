"""chalicelib.budget and what holds to it: caps from the configured memory, strings cut
at every depth, the 1,000-field limit in every parser, the incremental JSON reader,
pipeline slices, and the streamed CloudWatch path giving exactly the whole path's events."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib import budget as budget_module
from chalicelib.budget import Budget, budget
from chalicelib.errors import DecodeError
from chalicelib.invocation import Invocation
from chalicelib.parsers import MAX_FIELDS, fit_record, parse_message, registry
from chalicelib.pipeline import Pipeline
from chalicelib.sources import cloudwatch, jsonstream, s3_json

from .factories import log_events

B = Budget.for_memory(512)
FIELD = B.field_chars


# ---------------------------------------------------------------- caps from memory
@pytest.mark.parametrize(
    ("env", "memory_mb"),
    [
        pytest.param("512", 512, id="dev stage"),
        pytest.param("1769", 1769, id="one vCPU"),
        pytest.param("", 512, id="unset: the default"),
        pytest.param("lots", 512, id="malformed: the default"),
        pytest.param("64", 128, id="below Lambda's useful minimum"),
    ],
)
def test_caps_derive_from_the_configured_memory(
    monkeypatch: pytest.MonkeyPatch, env: str, memory_mb: int
) -> None:
    """AWS_LAMBDA_FUNCTION_MEMORY_SIZE sets every cap; slices, records and payloads scale
    with it while a field never drops below CloudWatch's largest event (256 KiB)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", env)
    budget.cache_clear()
    try:
        b = budget()
    finally:
        budget.cache_clear()
    mib = memory_mb * 1024 * 1024
    assert b.memory_mb == memory_mb
    assert (b.slice_events, b.slice_bytes, b.record_chars) == (
        memory_mb * 32,
        mib // 32,
        mib // 64,
    )
    assert b.payload_bytes == mib // 8 and b.line_bytes == mib // 16
    assert b.field_chars == max(256 * 1024, mib // 2048)


# ---------------------------------------------------------------- every depth
def long(n: int = FIELD + 10) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("record", "path"),
    [
        pytest.param({"message": long()}, "message", id="message"),
        pytest.param({"data": long()}, "data", id="a field not named message"),
        pytest.param({"a": {"b": {"c": long()}}}, "a.b.c", id="three levels down"),
        pytest.param({"a": [1, {"b": [long()]}]}, "a.1.b.0", id="inside lists"),
    ],
)
def test_any_string_over_the_field_limit_is_cut_and_flagged(
    record: dict[str, Any], path: str
) -> None:
    """A string over the field limit is cut at any depth, and the record says which
    field and how long it was."""
    assert fit_record(record, B) is None
    node: Any = record
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert node == "x" * FIELD
    assert record["truncated"] is True
    assert record["truncated_fields"] == {path: FIELD + 10}


def test_a_record_holds_at_most_record_chars_of_strings() -> None:
    """Many fields each under the field limit are cut once the record's total is
    reached: no record holds more than the record limit of text."""
    n = B.record_chars // FIELD + 3
    rec = {f"f{i}": long(FIELD) for i in range(n)}
    assert fit_record(rec, B) is None
    assert sum(len(v) for k, v in rec.items() if k.startswith("f")) <= B.record_chars
    assert rec["truncated"] is True and len(rec["truncated_fields"]) >= 3


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param({"a": list(range(MAX_FIELDS))}, "over 1000 fields", id="a long list"),
        pytest.param(
            {"a": {f"k{i}": i for i in range(600)}, "b": {f"k{i}": i for i in range(600)}},
            "over 1000 fields",
            id="two wide objects",
        ),
        pytest.param({long(): 1}, f"a key over {FIELD} characters", id="a long key"),
    ],
)
def test_records_too_wide_at_any_depth_are_refused(record: dict[str, Any], reason: str) -> None:
    """The 1,000-field limit counts values at every depth, list elements included."""
    assert fit_record(record, B) == reason


def test_a_long_json_line_keeps_its_structure_with_nested_fields_cut() -> None:
    """A JSON text longer than the field limit (an S3 line) is parsed, and only its
    over-long strings are cut, wherever they are."""
    text = orjson.dumps({"level": "info", "req": {"body": long()}}).decode()
    rec, _ = parse_message(text, max_chars=None)
    assert rec["level"] == "INFO" and len(rec["req"]["body"]) == FIELD
    assert rec["truncated_fields"] == {"req.body": FIELD + 10}


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        pytest.param(
            "json", orjson.dumps({"a": [{"b": i} for i in range(600)]}).decode(), id="json"
        ),
        pytest.param("logfmt", " ".join(f"k{i}=v" for i in range(MAX_FIELDS + 1)), id="logfmt"),
        pytest.param("xml", "<e>" + "<c>1</c>" * MAX_FIELDS + "</e>", id="xml"),
        pytest.param(
            "xml",
            "<e " + " ".join(f'a{i}="1"' for i in range(MAX_FIELDS)) + "/>",
            id="xml attributes",
        ),
    ],
)
def test_every_parser_keeps_the_field_limit(parser: str, text: str) -> None:
    """A text that would make more than 1,000 fields stays text with parse_error, in
    every parser."""
    rec = registry.build(parser)(text)
    assert rec["parse_error"].startswith(f"{parser}: ") and "1000" in rec["parse_error"]


def test_csv_columns_are_limited_too() -> None:
    """A CSV parser cannot be configured with more columns than the field limit."""
    from chalicelib.parsers.csv_parser import _check_columns

    assert _check_columns([f"c{i}" for i in range(MAX_FIELDS + 1)]) == "at most 1000 columns"


# ---------------------------------------------------------------- the incremental reader
def pieces(text: str, size: int) -> Iterator[str]:
    return (text[i : i + size] for i in range(0, len(text), size))


@pytest.mark.parametrize("size", [1, 3, 7, 64, 10_000])
def test_reader_yields_elements_whatever_the_piece_boundaries(size: int) -> None:
    """Elements split anywhere between pieces (inside strings, escapes, numbers) read
    back exactly as orjson reads the whole document."""
    doc = {"head": "x", "items": [{"n": 12345, "s": 'a\\"b \\u00e9'}, 3.5, -7, "end"], "z": 1}
    text = orjson.dumps(doc).decode()
    reader = jsonstream.Reader(pieces(text, size))
    got: dict[str, Any] = {}
    for key in reader.members():
        got[key] = list(reader.elements()) if key == "items" else reader.value()
    reader.end()
    assert got == orjson.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": [1, 2', id="truncated"),
        pytest.param('{"a": [1, NaN]}', id="NaN"),
        pytest.param('{"a": [1,, 2]}', id="double comma"),
        pytest.param('{"a": 1} trailing', id="data after the document"),
    ],
)
def test_reader_refuses_what_orjson_refuses(text: str) -> None:
    """Malformed JSON is a DecodeError, never a partial read passed off as whole."""
    reader = jsonstream.Reader(pieces(text, 4))
    with pytest.raises(DecodeError):
        for _ in reader.members():
            v = reader.value() if reader.peek() != "[" else list(reader.elements())
            del v
        reader.end()


def test_reader_reads_big_integers_as_orjson_does() -> None:
    """An integer beyond 64 bits reads as the nearest double, as orjson reads it."""
    assert jsonstream.Reader("123456789012345678901234567890").value() == 1.2345678901234568e29


def test_a_records_line_streams_its_elements() -> None:
    """A `Records` line longer than the stream limit is expanded element by element, the
    document's other fields kept beside them."""
    b = Budget.for_memory(512)
    text = orjson.dumps({"Records": [{"i": i} for i in range(50_000)], "x": 1}).decode()
    assert len(text) > b.stream_bytes / 2
    small = Budget(**{**{f: getattr(b, f) for f in b.__slots__}, "stream_bytes": 10})
    rec, expanded = s3_json.parse_line(text, None, small)
    assert rec is None and expanded is not None
    items, context = expanded
    assert [x for x, _ in items()] == [{"i": i} for i in range(50_000)]
    assert context == {"x": 1}  # the document's other fields stay with the elements


# ---------------------------------------------------------------- slices
def test_a_batch_above_the_slice_limits_is_processed_in_slices(
    runtime: Any, archive: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events beyond one slice are routed and archived slice by slice, each slice's
    objects named after the batch id and its number; the ledger counts them all."""
    small = Budget(**{**{f: getattr(B, f) for f in B.__slots__}, "slice_events": 4})
    monkeypatch.setattr("chalicelib.pipeline.budget", lambda: small)
    inv = Invocation(request_id="inv-slices")
    ledger = Pipeline(runtime).process(iter(log_events(10)), inv, batch_id="batch")
    assert (ledger.received, ledger.archived) == (10, 10)
    names = sorted(k.rsplit("/", 1)[1] for k in archive.keys())
    assert names == ["batch-0.jsonl.gz", "batch-s1-0.jsonl.gz", "batch-s2-0.jsonl.gz"]


def test_the_streamed_cloudwatch_path_makes_the_same_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A payload read incrementally (above the stream limit) gives the events, ids,
    records and times the whole-document path gives."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/x",
        "logStream": "s",
        "subscriptionFilters": ["f"],
        "logEvents": [
            {"id": str(i), "timestamp": 1795687621000 + i, "message": m}
            for i, m in enumerate(
                ['{"level":"warn","n":1}', "plain", "  indented", "[INFO]\tx"] * 50
            )
        ],
    }
    raw = gzip.compress(orjson.dumps(doc))
    whole = list(cloudwatch.batch_from_bytes(raw, "us-east-1").events)
    small = Budget(
        **{**{f: getattr(B, f) for f in B.__slots__}, "stream_bytes": 16, "slice_events": 7}
    )
    monkeypatch.setattr(cloudwatch, "budget", lambda: small)
    batch = cloudwatch.batch_from_bytes(raw, "us-east-1")
    assert not isinstance(batch.events, list) and len(batch.events) == 200
    streamed = list(batch.events)
    assert [(e.id, e.time, e.record, e.tag) for e in streamed] == [
        (e.id, e.time, e.record, e.tag) for e in whole
    ]
    assert streamed[0].source == whole[0].source


def test_budget_module_documents_every_cap() -> None:
    """Each cap of the Budget is in the module's table (the README points at it)."""
    doc = budget_module.__doc__ or ""
    for name in Budget.__slots__:
        if name not in ("memory_mb", "max_depth"):
            assert name in doc, name


def test_replace_changes_only_the_named_caps():
    """A budget copied with one cap changed keeps every other cap, and refuses a cap it
    does not have."""
    b = Budget.for_memory(512)
    c = b.replace(slice_events=2)
    assert c.slice_events == 2
    assert all(getattr(c, n) == getattr(b, n) for n in Budget.__slots__ if n != "slice_events")
    with pytest.raises(TypeError):
        b.replace(no_such_cap=1)
