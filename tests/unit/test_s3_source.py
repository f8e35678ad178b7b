"""chalicelib.sources.s3: S3 notifications into objects to read, objects into lines."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from chalicelib.errors import DecodeError
from chalicelib.sources import s3
from chalicelib.sources.s3 import Continuation, ObjectRef, iter_lines, parse_sqs_body, tag_for

BUCKET = "app-logs-example"
LINES = [f"2026-11-26T10:07:{i:02d}Z web-1 GET /cart/{i} 200" for i in range(40)]
TEXT = ("\n".join(LINES) + "\n").encode()


@pytest.fixture(scope="module")
def make_s3_events() -> Any:
    """scripts/make_s3_events.py, imported as a module."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "make_s3_events.py"
    spec = importlib.util.spec_from_file_location("make_s3_events", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def body_of(event: dict[str, Any], index: int = 0) -> str:
    return str(event["Records"][index]["body"])


def texts(data: bytes, key: str = "k", chunk: int = s3.CHUNK) -> list[str]:
    return [line.text for line in iter_lines(io.BytesIO(data), key, chunk=chunk)]


def zstd_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def zstd_blocks(data: bytes, every: int = 200) -> bytes:
    """One zstd frame flushed block by block, as a log shipper streaming to zstd writes it
    (a cut frame can only give back the blocks before the cut)."""
    c = zstandard.ZstdCompressor().compressobj()
    parts = [
        c.compress(data[i : i + every]) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        for i in range(0, len(data), every)
    ]
    return b"".join(parts) + c.flush()


class Trickle(io.RawIOBase):
    """A body that returns at most `step` bytes per read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self.step = step

    def read(self, n: int = -1) -> bytes:
        take = self.step if n < 0 else min(n, self.step)
        out = bytes(self._data[self._pos : self._pos + take])
        self._pos += len(out)
        return out


# ---------------------------------------------------------------- samples
def test_sample_files_are_what_make_s3_events_writes(make_s3_events):
    """events/s3_*.json match scripts/make_s3_events.py exactly (regenerate, never hand-edit)."""
    root = Path(__file__).resolve().parents[2] / "events"
    stale = [
        name
        for name, doc in make_s3_events.build().items()
        if json.loads((root / name).read_text(encoding="utf-8")) != doc
    ]
    assert stale == []


def test_sqs_sample_bodies_carry_their_real_md5(load_event):
    """Each sample SQS record's md5OfBody is the MD5 of its body, as SQS computes it."""
    import hashlib

    for name in ("s3_objects_sqs", "s3_objects_sns_wrapped", "s3_objects_test_event"):
        for rec in load_event(name)["Records"]:
            assert rec["md5OfBody"] == hashlib.md5(rec["body"].encode()).hexdigest(), name


# ---------------------------------------------------------------- parse_sqs_body
@pytest.mark.parametrize(
    ("event", "index", "expected"),
    [
        pytest.param(
            "s3_objects_sqs",
            0,
            [
                ObjectRef(
                    BUCKET,
                    "app/2026/11/26/10/web-1.jsonl.gz",
                    None,
                    "6f3b1c0e9a1d4e2f8a7b5c4d3e2f1a0b",
                    412,
                )
            ],
            id="S3 notification",
        ),
        pytest.param(
            "s3_objects_sqs",
            1,
            [
                ObjectRef(
                    BUCKET,
                    "app/2026/11/26/10/a b=c.log",
                    None,
                    "9b2cf535f27731c974343645a3985328",
                    288,
                )
            ],
            id="URL-encoded key decoded",
        ),
        pytest.param(
            "s3_objects_sns_wrapped",
            0,
            [
                ObjectRef(
                    BUCKET,
                    "alb/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/26/"
                    "123456789012_elasticloadbalancing_us-east-1_app.my-loadbalancer."
                    "50dc6c495c0c9188_20261126T1005Z_192.0.2.1_2et2e1mx.log.gz",
                    None,
                    "1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a",
                    1734,
                )
            ],
            id="SNS-wrapped notification",
        ),
        pytest.param("s3_objects_test_event", 0, [], id="s3:TestEvent acknowledged"),
    ],
)
def test_sqs_bodies_name_the_objects_to_read(load_event, event, index, expected):
    """Each sample body names its object (key URL-decoded); a test event names none."""
    assert parse_sqs_body(body_of(load_event(event), index)) == expected


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("app/café/Müller 2026+11.log", id="UTF-8, space and plus"),
        pytest.param("app/a%b/100%.log", id="percent sign"),
        pytest.param("app/(1) copy.log", id="parentheses"),
    ],
)
def test_any_key_survives_s3_url_encoding(load_event, key):
    """Whatever the key holds, decoding what S3 writes into the notification gives it back."""
    from urllib.parse import quote_plus

    doc = json.loads(body_of(load_event("s3_objects_sqs")))
    doc["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    (ref,) = parse_sqs_body(json.dumps(doc))
    assert ref.key == key


def test_eventbridge_event_through_sqs_keeps_its_key_as_written(load_event):
    """An EventBridge `Object Created` event queued to SQS is read with its key not decoded."""
    doc = load_event("s3_object_created_eventbridge")
    (ref,) = parse_sqs_body(json.dumps(doc))
    assert ref == ObjectRef(
        BUCKET,
        "exports/2026-11-26/orders+refunds.csv",
        None,
        "b1946ac92492d2347c6235b4d2611184",
        218,
    )
    assert s3.ref_from_eventbridge(doc) == ref


def test_sns_wrapped_test_event_names_no_object(load_event):
    """The s3:TestEvent delivered through an SNS topic is acknowledged like a direct one."""
    sns = json.loads(body_of(load_event("s3_objects_sns_wrapped")))
    sns["Message"] = body_of(load_event("s3_objects_test_event"))
    assert parse_sqs_body(json.dumps(sns)) == []


def test_only_object_created_records_are_read(load_event):
    """ObjectRemoved records and records from other services in the same body are ignored."""
    doc = json.loads(body_of(load_event("s3_objects_sqs")))
    created = doc["Records"][0]
    removed = {**created, "eventName": "ObjectRemoved:Delete"}
    other = {**created, "eventSource": "aws:sqs"}
    doc["Records"] = [removed, created, other]
    (ref,) = parse_sqs_body(json.dumps(doc))
    assert ref.key == "app/2026/11/26/10/web-1.jsonl.gz"


def test_version_id_is_kept_when_the_bucket_is_versioned(load_event):
    """A versioned bucket's notification carries versionId; the reference keeps it."""
    doc = json.loads(body_of(load_event("s3_objects_sqs")))
    doc["Records"][0]["s3"]["object"]["versionId"] = "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    (ref,) = parse_sqs_body(json.dumps(doc))
    assert ref.version == "096fKKXTRTtl3on89fVO.nfljtsv6qko"


def test_continuation_body_round_trips():
    """A continuation's message body parses back to the same object and line."""
    c = Continuation(ObjectRef(BUCKET, "app/x y+z.log", "v1", "etag", 99), 5000)
    assert parse_sqs_body(c.body()) == [c]


@pytest.mark.parametrize(
    ("body", "stage"),
    [
        pytest.param("reprocess app/2026/11/26/10/web-1.jsonl.gz please", "json", id="not JSON"),
        pytest.param("", "json", id="empty body"),
        pytest.param('{"Type":"Notification","Message":"not json"}', "json", id="SNS not JSON"),
        pytest.param("[1, 2]", "shape", id="JSON array"),
        pytest.param('{"hello": "world"}', "shape", id="no Records"),
        pytest.param('{"Records": {"a": 1}}', "shape", id="Records not a list"),
        pytest.param(
            '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}',
            "shape",
            id="S3 record without bucket",
        ),
        pytest.param(
            '{"sluice_continuation": {"bucket": "b", "key": "k", "line": "ten"}}',
            "shape",
            id="continuation with a bad line",
        ),
        pytest.param('{"sluice_continuation": {"key": "k"}}', "shape", id="continuation no bucket"),
        pytest.param('{"detail-type":"Object Created","detail":[]}', "shape", id="EB no detail"),
    ],
)
def test_undecodable_bodies_raise_decode_error_naming_the_stage(body, stage):
    """A body that names no object raises DecodeError (dead-lettered by the handler)."""
    with pytest.raises(DecodeError) as info:
        parse_sqs_body(body)
    assert info.value.stage == stage


def test_malformed_sample_body_is_not_json(load_event):
    """The malformed sample's body is rejected at the JSON stage."""
    with pytest.raises(DecodeError) as info:
        parse_sqs_body(body_of(load_event("malformed/s3_objects_not_json")))
    assert info.value.stage == "json"


# ---------------------------------------------------------------- ObjectRef
def test_object_id_is_stable_per_object_version():
    """The same bucket, key and version/etag give the same id; another version another id."""
    a = ObjectRef(BUCKET, "k", None, "e1", 10)
    assert a.object_id == ObjectRef(BUCKET, "k", None, "e1", None).object_id
    assert a.object_id != ObjectRef(BUCKET, "k", None, "e2", 10).object_id
    assert a.object_id != ObjectRef(BUCKET, "k2", None, "e1", 10).object_id
    assert (
        ObjectRef(BUCKET, "k", "v1", "e1").object_id != ObjectRef(BUCKET, "k", "v2", "e1").object_id
    )


# ---------------------------------------------------------------- iter_lines: codecs
@pytest.mark.parametrize(
    ("data", "key"),
    [
        pytest.param(TEXT, "app/web-1.log.gz", id="plain text named .gz"),
        pytest.param(gzip.compress(TEXT), "app/web-1.log", id="gzip named .log"),
        pytest.param(zstd_frame(TEXT), "app/web-1.log", id="zstd named .log"),
        pytest.param(gzip.compress(TEXT), "app/web-1.log.zst", id="gzip named .zst"),
    ],
)
def test_compression_is_chosen_by_magic_bytes_not_by_name(data, key):
    """Plain, gzip and zstd objects give the same lines whatever their key says."""
    assert texts(data, key) == LINES


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            gzip.compress(b"".join(x.encode() + b"\n" for x in LINES[:15]))
            + gzip.compress(b"".join(x.encode() + b"\n" for x in LINES[15:])),
            id="gzip, two members",
        ),
        pytest.param(
            b"".join(gzip.compress(x.encode() + b"\n") for x in LINES), id="gzip, member per line"
        ),
        pytest.param(
            gzip.compress(TEXT[:100]) + gzip.compress(TEXT[100:]), id="gzip, member splits a line"
        ),
        pytest.param(
            zstd_frame(TEXT[:300]) + zstd_frame(TEXT[300:]), id="zstd, frame splits a line"
        ),
    ],
)
@pytest.mark.parametrize("chunk", [7, 64, s3.CHUNK])
def test_concatenated_streams_are_read_to_the_end(data, chunk):
    """Multi-member gzip and multi-frame zstd yield every line, whatever the read size."""
    assert texts(data, chunk=chunk) == LINES


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gzip.compress(TEXT[:500]) + gzip.compress(TEXT[500:]), id="gzip"),
        pytest.param(zstd_frame(TEXT[:500]) + zstd_frame(TEXT[500:]), id="zstd"),
    ],
)
def test_member_boundary_may_fall_anywhere_in_a_read(data):
    """A read that ends inside the next member's magic bytes does not look like garbage."""
    for chunk in range(1, 60):
        assert texts(data, chunk=chunk) == LINES, f"chunk={chunk}"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gzip.compress(TEXT), id="gzip"),
        pytest.param(zstd_frame(TEXT), id="zstd"),
    ],
)
def test_short_reads_do_not_hide_the_magic_bytes(data):
    """A body that returns one byte per read is still recognised as compressed."""
    assert [line.text for line in iter_lines(Trickle(data, 1), "k", chunk=64)] == LINES


# ---------------------------------------------------------------- iter_lines: damage
def _read_until_error(data: bytes, chunk: int = 64) -> tuple[list[str], DecodeError]:
    got: list[str] = []
    with pytest.raises(DecodeError) as info:
        for line in iter_lines(io.BytesIO(data), "app/web-1.log.gz", chunk=chunk):
            got.append(line.text)
    return got, info.value


@pytest.mark.parametrize(
    ("data", "stage"),
    [
        pytest.param(gzip.compress(TEXT)[: len(gzip.compress(TEXT)) // 2], "gzip", id="gzip"),
        pytest.param(zstd_blocks(TEXT)[: len(zstd_blocks(TEXT)) // 2], "zstd", id="zstd"),
    ],
)
def test_truncated_stream_yields_complete_lines_then_fails(data, stage):
    """A cut stream yields only the complete lines before the cut, then a DecodeError
    that names the last complete line; the incomplete line is not passed off as whole."""
    got, err = _read_until_error(data)
    assert got and got == LINES[: len(got)]
    assert err.stage == stage
    assert f"after line {len(got)}" in str(err)


def test_truncated_gzip_at_every_cut_never_yields_a_partial_line():
    """Wherever a gzip object is cut, every yielded line is one of the original lines."""
    data = gzip.compress(TEXT)
    for cut in range(10, len(data) - 8, 7):
        got, err = _read_until_error(data[:cut], chunk=16)
        assert got == LINES[: len(got)], f"cut={cut}"
        assert err.stage == "gzip"


@pytest.mark.parametrize(
    ("data", "stage"),
    [
        pytest.param(gzip.compress(TEXT) + b"this is not gzip", "gzip", id="gzip trailing garbage"),
        pytest.param(
            gzip.compress(TEXT)[:40] + bytes(range(256)) * 4, "gzip", id="gzip corrupt deflate"
        ),
        pytest.param(zstd_frame(TEXT) + b"not zstd either", "zstd", id="zstd trailing garbage"),
    ],
)
def test_damaged_stream_raises_after_the_lines_it_could_read(data, stage):
    """Garbage in or after a compressed stream raises DecodeError naming the codec."""
    got, err = _read_until_error(data)
    assert got == LINES[: len(got)]
    assert err.stage == stage


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), id="PNG (NUL bytes)"),
        pytest.param(bytes(range(128, 256)) * 40, id="mostly not UTF-8"),
        pytest.param(gzip.compress(b"PK\x03\x04\x14\x00\x00\x00" + bytes(500)), id="gzip of zip"),
        pytest.param("log line\n".encode("utf-16"), id="UTF-16 text"),
    ],
)
def test_binary_object_is_refused_before_any_line(data):
    """An object that is not text raises DecodeError('binary') and yields nothing."""
    got, err = _read_until_error(data)
    assert got == []
    assert err.stage == "binary"


def test_zstd_object_without_the_zstandard_module_is_a_decode_error(monkeypatch):
    """Without the zstandard module a zstd object is refused with a reason, not a crash
    that would retry the message forever."""
    monkeypatch.setitem(sys.modules, "zstandard", None)
    got, err = _read_until_error(zstd_frame(TEXT))
    assert got == []
    assert err.stage == "zstd"
    assert "zstandard" in str(err)


# ---------------------------------------------------------------- iter_lines: line handling
def test_invalid_utf8_line_is_flagged_and_kept():
    """A Latin-1 line among UTF-8 ones keeps its bytes (escaped) and is flagged invalid_utf8."""
    data = "ok é\n".encode() + "café Müller\n".encode("latin-1") + b"after\n"
    lines = list(iter_lines(io.BytesIO(data), "k"))
    assert [(x.number, x.text, x.flags) for x in lines] == [
        (1, "ok é", None),
        (2, "caf\\xe9 M\\xfcller", {"invalid_utf8": True}),
        (3, "after", None),
    ]


@pytest.mark.parametrize("length", [65, 100, 127, 128, 200, 1000])
@pytest.mark.parametrize("chunk", [16, 64, 256])
def test_over_long_line_is_cut_and_flagged(monkeypatch, length, chunk):
    """A line longer than MAX_LINE is cut to MAX_LINE bytes, flagged with its real size,
    and the lines around it are untouched."""
    monkeypatch.setattr(s3, "MAX_LINE", 64)
    data = b"before\n" + b"x" * length + b"\nafter\n"
    lines = list(iter_lines(io.BytesIO(data), "k", chunk=chunk))
    assert [(x.number, x.text, x.flags) for x in lines] == [
        (1, "before", None),
        (2, "x" * 64, {"truncated": True, "original_bytes": length}),
        (3, "after", None),
    ]


def test_line_of_exactly_max_line_bytes_is_whole(monkeypatch):
    """A line of exactly MAX_LINE bytes is not cut."""
    monkeypatch.setattr(s3, "MAX_LINE", 64)
    (line,) = iter_lines(io.BytesIO(b"y" * 64 + b"\n"), "k", chunk=16)
    assert (line.text, line.flags) == ("y" * 64, None)


def test_cut_inside_a_multibyte_character_is_not_invalid_utf8(monkeypatch):
    """Cutting a long line inside a UTF-8 character drops the partial character,
    and the line is flagged truncated, not invalid_utf8."""
    monkeypatch.setattr(s3, "MAX_LINE", 64)
    data = ("a" * 63 + "é" * 20 + "\n").encode()
    (line,) = iter_lines(io.BytesIO(data), "k", chunk=16)
    assert line.text == "a" * 63
    assert line.flags == {"truncated": True, "original_bytes": 63 + 40}


def test_unterminated_over_long_last_line_is_cut_and_flagged(monkeypatch):
    """An object that is one long line without a newline yields it cut and flagged."""
    monkeypatch.setattr(s3, "MAX_LINE", 64)
    (line,) = iter_lines(io.BytesIO(b"z" * 500), "k", chunk=32)
    assert (line.text, line.flags) == ("z" * 64, {"truncated": True, "original_bytes": 500})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"a\r\nb\r\n", ["a", "b"], id="CRLF"),
        pytest.param(b"a\r\nb", ["a", "b"], id="CRLF, last line unterminated"),
        pytest.param(b"a\rb\nc\n", ["a\rb", "c"], id="lone CR kept"),
        pytest.param(b"a\n\nb\n", ["a", "", "b"], id="blank line kept"),
        pytest.param(b"a\nb", ["a", "b"], id="no final newline"),
        pytest.param(b"", [], id="empty object"),
        pytest.param(b"\xef\xbb\xbfa,b\n1,2\n", ["a,b", "1,2"], id="UTF-8 BOM dropped"),
    ],
)
def test_line_endings(data, expected):
    """Lines split on LF; a CR before LF is dropped, elsewhere kept; a leading BOM dropped."""
    assert texts(data, chunk=3) == expected
    assert texts(data) == expected


def test_lines_are_numbered_from_one_counting_blank_lines():
    """Line numbers are 1-based positions in the object, blank lines included."""
    lines = list(iter_lines(io.BytesIO(b"a\n\nb\n"), "k"))
    assert [x.number for x in lines] == [1, 2, 3]


# ---------------------------------------------------------------- iter_lines: bounded reading
class GeneratedBody:
    """An endless-looking object made on the fly: `lines` log lines, never held whole.
    Records every read's requested and returned size."""

    def __init__(self, lines: int, width: int = 100) -> None:
        self.requested: list[int] = []
        self.returned = 0
        self._rows = self._gen(lines, width)
        self._buf = b""

    @staticmethod
    def _gen(lines: int, width: int) -> Iterator[bytes]:
        for i in range(lines):
            yield f"{i:010d} ".encode() + b"x" * (width - 12) + b"\n"

    def read(self, n: int) -> bytes:
        self.requested.append(n)
        while len(self._buf) < n:
            row = next(self._rows, None)
            if row is None:
                break
            self._buf += row
        out, self._buf = self._buf[:n], self._buf[n:]
        self.returned += len(out)
        return out


def test_object_is_read_lazily_in_chunks():
    """Taking the first lines of a large object reads only the chunks they are in,
    every read asking for exactly `chunk` bytes."""
    body = GeneratedBody(lines=200_000)  # 20 MB if it were read whole
    lines = iter_lines(body, "k", chunk=4096)
    first = [next(lines) for _ in range(100)]
    assert first[-1].number == 100
    assert set(body.requested) == {4096}
    assert body.returned <= 100 * 100 + 4096  # the lines taken, plus at most one read ahead


def test_read_ahead_never_exceeds_one_chunk_plus_one_line(monkeypatch):
    """At every line, the bytes read but not yet yielded stay within chunk + MAX_LINE,
    long lines included (their cut bytes count as consumed)."""
    monkeypatch.setattr(s3, "MAX_LINE", 512)
    chunk = 256
    rows = [b"short", b"L" * 2000, b"mid" * 100, b"L" * 513, b"tail"]
    data = b"".join(r + b"\n" for r in rows * 50)

    class Recording(io.BytesIO):
        returned = 0

        def read(self, n: int = -1) -> bytes:
            out = super().read(n)
            Recording.returned += len(out)
            return out

    body = Recording(data)
    consumed = 0
    for line in iter_lines(body, "k", chunk=chunk):
        size = (line.flags or {}).get("original_bytes", len(line.text.encode()))
        consumed += size + 1
        assert Recording.returned - consumed <= chunk + s3.MAX_LINE
        assert len(line.text.encode()) <= s3.MAX_LINE
    assert consumed == len(data)


# ---------------------------------------------------------------- tag_for
@pytest.mark.parametrize(
    ("bucket", "key", "tag"),
    [
        pytest.param("app-logs", "app/2026/11/26/web-1.log", "s3.app-logs.app", id="first segment"),
        pytest.param("app-logs", "web-1.log", "s3.app-logs", id="no folder"),
        pytest.param(
            "logs.example.com", "nginx/access.log", "s3.logs_example_com.nginx", id="dots"
        ),
        pytest.param("app-logs", "v1.2/x.log", "s3.app-logs.v1_2", id="dots in segment"),
        pytest.param(
            "elb-logs",
            "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/26/x.log.gz",
            "s3.elb-logs.AWSLogs",
            id="AWS log delivery prefix",
        ),
    ],
)
def test_tag_is_bucket_and_first_key_segment(bucket, key, tag):
    """`bucket/app/...` tags `s3.bucket.app`; dots become underscores (dots separate parts)."""
    assert tag_for(bucket, key) == tag


def test_magic_constants_match_the_codecs():
    """The magic bytes Sluice sniffs are what the gzip and zstd encoders write."""
    assert gzip.compress(b"x")[:2] == s3.GZIP_MAGIC
    assert zstd_frame(b"x")[:4] == s3.ZSTD_MAGIC


# ---------------------------------------------------------------- bounded decompression
HEALTH = b'10.0.0.1 - - [26/Nov/2026:10:07:01 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "ELB"\n'


def test_gzip_read_inflates_in_bounded_pieces(monkeypatch):
    """One read of highly compressed lines (health checks, ~300:1) comes out of the
    decompressor in pieces of at most OUT_PIECE bytes, never all at once."""
    monkeypatch.setattr(s3, "OUT_PIECE", 64 * 1024)
    raw = HEALTH * 50_000  # 4.2 MB from ~15 KB of gzip
    data = gzip.compress(raw)
    assert len(raw) > 100 * len(data)
    dec = s3._Decompressor(data)
    pieces = list(dec.feed(data))
    assert max(len(p) for p in pieces) <= 64 * 1024
    assert b"".join(pieces) == raw
    assert not dec.truncated


@pytest.mark.parametrize("piece", [1, 7, 64, 4096])
def test_lines_survive_any_piece_size(monkeypatch, piece):
    """Whatever the piece size, multi-member gzip with CRLF lines reads back line for line."""
    monkeypatch.setattr(s3, "OUT_PIECE", piece)
    crlf = TEXT.replace(b"\n", b"\r\n")
    data = gzip.compress(crlf[:333]) + gzip.compress(crlf[333:])
    assert texts(data, chunk=100) == LINES


def test_truncated_stream_in_pieces_still_fails_after_complete_lines(monkeypatch):
    """A cut gzip stream read in small pieces yields only complete lines, then DecodeError."""
    monkeypatch.setattr(s3, "OUT_PIECE", 512)
    whole = gzip.compress(HEALTH * 2000)
    got, err = _read_until_error(whole[: len(whole) // 2], chunk=len(whole))
    assert got and set(got) == {HEALTH.decode().rstrip("\n")}
    assert err.stage == "gzip"
