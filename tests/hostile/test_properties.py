"""Property-based tests: any bytes into a decoder or parser give an event or a reasoned
refusal, never an exception that escapes.

- cloudwatch_logs (the handler over moto, a module-scoped account, few examples): any
  `awslogs.data` (text, base64 of random bytes, of gzip of random bytes, of gzip of
  random JSON documents) ends as events or one dead letter with a reason; the ledger
  always balances.
- `cloudwatch.decode`, `kinesis.decode_record`, `kpl.deaggregate`, `s3.iter_lines`: only
  their documented outcomes (a batch, a result with its error, a list, lines) or
  DecodeError; whatever they produce the archive can write.
- every registered parser (with sample options), every S3 line format and
  `parse_message`: any text gives a dict orjson can serialise.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.actions.archive import encode_lines
from chalicelib.errors import DecodeError
from chalicelib.event import LogEvent
from chalicelib.handlers import handle_cloudwatch_logs
from chalicelib.parsers import MAX_MESSAGE_CHARS, parse_message, registry
from chalicelib.sources import cloudwatch, kinesis, kpl, s3, s3_formats

from .harness import Account, load_make, mocked_account

make = load_make()
FAST = settings(max_examples=300, deadline=None)
SLOW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Options for the parsers that require some; the others take none.
PARSER_OPTIONS: dict[str, dict[str, Any]] = {
    "regex": {"pattern": r"(?P<word>\w+)\s+(?P<n>\d+)?(?P<rest>.*)", "types": {"n": "int"}},
    "csv": {"columns": ["a", "b", "c"], "types": {"b": "int"}},
}

# ---------------------------------------------------------------- strategies
# Text biased towards what parsers look for: JSON punctuation, numbers, separators,
# NUL, line separators, surrogate-free non-ASCII, and Lambda's own prefixes.
LOG_ALPHABET = st.sampled_from(
    [*'{}[]":,=<>&;|$`*_~\\/-+. \t\r\n0123456789eE', "\x00", "\u2028", "é", "名", "\U0001f4a5"]
)
PREFIXES = st.sampled_from(
    [
        "",
        "{",
        "[ERROR]\t",
        "REPORT RequestId: ",
        "START RequestId: ",
        "<134>1 ",
        "<13>Nov 26 ",
        '127.0.0.1 - - [26/Nov/2026:10:07:01 +0000] "GET / HTTP/1.1" ',
        "version ",
        "#Fields: ",
        "http 2026-11-26T10:07:01.000000Z ",
    ]
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.builds(lambda p, t: p + t, PREFIXES, st.text(LOG_ALPHABET, max_size=300)),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(LOG_ALPHABET, max_size=40),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def json_bytes(value: Any) -> bytes:
    """JSON of value; integers beyond 64 bits written exactly (orjson refuses them)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


LOG_EVENT = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=8), st.integers(0, 99), st.none()),
        "timestamp": st.one_of(
            st.integers(-(2**63), 2**64 - 1), st.integers(1795687621000, 1795687622000), SCALARS
        ),
        "message": st.one_of(TEXT, JSON.map(lambda v: json_bytes(v).decode())),
    }
)
SUBSCRIPTION_DOC = st.fixed_dictionaries(
    {
        "messageType": st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE", "OTHER"]),
        "owner": SCALARS,
        "logGroup": st.one_of(st.text(max_size=40), st.just("/aws/lambda/sluice-x"), SCALARS),
        "logStream": SCALARS,
        "subscriptionFilters": JSON,
        "logEvents": st.one_of(st.lists(LOG_EVENT, max_size=8), JSON),
    }
)
DOCUMENT = st.one_of(SUBSCRIPTION_DOC, JSON).map(json_bytes)
# What may sit in awslogs.data: text that is no base64 at all, or base64 of random bytes,
# of gzip of random bytes, or of gzip of a JSON document.
AWSLOGS_DATA = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=300).map(lambda b: base64.b64encode(gzip.compress(b)).decode()),
    DOCUMENT.map(lambda b: base64.b64encode(gzip.compress(b)).decode()),
)


def assert_archivable(events: list[LogEvent]) -> None:
    """Every event's envelope serialises and the archive writes every event."""
    for ev in events:
        orjson.dumps(ev.envelope())
        assert len(ev.record.get("message", "") or "") <= MAX_MESSAGE_CHARS or not isinstance(
            ev.record.get("message"), str
        )
    if events:
        _, bad = encode_lines(events)
        assert bad == []


# ---------------------------------------------------------------- the handler
@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        yield acct


@SLOW
@given(data=AWSLOGS_DATA)
def test_cloudwatch_handler_never_raises_and_always_balances(account: Account, data: str) -> None:
    """Whatever `awslogs.data` holds, the handler returns: the events are archived, or the
    payload is dead-lettered whole with a reason; received == archived + dropped +
    dead_lettered."""
    got = account.run(handle_cloudwatch_logs, {"awslogs": {"data": data}})
    assert got.balanced()
    received, archived, dropped, dead = got.ledger
    if dead:
        assert (received, archived, dropped, dead) == (1, 0, 0, 1)
        (msg,) = got.dead_letters
        assert msg["stage"] == "decode" and msg["reason"]
        assert got.result["decode_error"] == msg["reason"]
    else:
        assert got.dead_letters == []
        assert archived + dropped == received
        assert sum(line["record"].get("multiline_count", 1) for line in got.lines) == archived


# ---------------------------------------------------------------- decoders
@FAST
@given(data=AWSLOGS_DATA)
def test_cloudwatch_decode_gives_a_batch_or_a_decode_error(data: str) -> None:
    """`cloudwatch.decode` answers a batch whose events the archive can write, or a
    DecodeError naming its stage; nothing else."""
    try:
        batch = cloudwatch.decode({"awslogs": {"data": data}}, "us-east-1")
    except DecodeError as e:
        assert e.stage in {"shape", "base64", "gzip", "utf-8", "json"}
        return
    assert_archivable(batch.events)


def kinesis_data() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(gzip.compress),
        DOCUMENT.map(gzip.compress),
        st.lists(TEXT, max_size=6).map(lambda ts: "\n".join(ts).encode("utf-8", "surrogatepass")),
        st.lists(JSON, max_size=4).map(lambda vs: b"\n".join(json_bytes(v) for v in vs)),
        st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=60)), max_size=4).map(
            kpl.aggregate
        ),
        st.binary(max_size=200).map(lambda b: kpl.MAGIC + b),
    )


@FAST
@given(raw=kinesis_data())
def test_kinesis_decode_record_never_raises(raw: bytes) -> None:
    """`kinesis.decode_record` on any record data answers events the archive can write, or
    an error with the record's bytes kept for the dead-letter queue."""
    result = kinesis.decode_record(make.kinesis_record(raw, 1), "us-east-1")
    assert result.sequence.endswith("1")
    if result.error is not None:
        assert isinstance(result.error, DecodeError) and result.events == []
        assert result.raw == raw
    else:
        assert_archivable(list(result.events))


@FAST
@given(body=st.binary(max_size=400), good_digest=st.booleans())
def test_kpl_deaggregate_gives_records_or_a_decode_error(body: bytes, good_digest: bool) -> None:
    """Any bytes after the KPL magic (with their MD5 or not) de-aggregate to (partition key,
    data) pairs or fail with a `kpl` DecodeError."""
    digest = hashlib.md5(body, usedforsecurity=False).digest() if good_digest else bytes(16)
    try:
        out = kpl.deaggregate(kpl.MAGIC + body + digest)
    except DecodeError as e:
        assert e.stage == "kpl"
        return
    assert good_digest, "a record whose MD5 does not match was read"
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in out)


def wrapped(kind: str, raw: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(raw, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    if kind == "cut gzip":
        whole = gzip.compress(raw, mtime=0)
        return whole[: max(1, len(whole) // 2)]
    return raw


WRAPS = st.sampled_from(["plain", "gzip", "zstd", "cut gzip"])


@FAST
@given(raw=st.binary(max_size=600), kind=WRAPS, chunk=st.integers(1, 64))
def test_s3_iter_lines_gives_lines_or_a_decode_error(raw: bytes, kind: str, chunk: int) -> None:
    """Any object body, plain or gzip/zstd-wrapped or cut, read in any chunk size, gives
    numbered lines of text or a DecodeError after the lines before the damage."""
    numbers = []
    try:
        for line in s3.iter_lines(io.BytesIO(wrapped(kind, raw)), "k", chunk=chunk):
            assert isinstance(line.text, str) and "\n" not in line.text
            orjson.dumps(line.text)
            numbers.append(line.number)
    except DecodeError as e:
        assert e.stage in {"binary", "gzip", "zstd"}
    assert numbers == list(range(1, len(numbers) + 1))


TEXT_BODY = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=400
)


@FAST
@given(
    text=TEXT_BODY,
    framing=st.one_of(
        st.tuples(st.just("plain"), st.integers(1, 64)),
        st.tuples(st.sampled_from(["gzip", "zstd"]), st.just(s3.CHUNK)),
    ),
)
def test_s3_iter_lines_splits_text_at_line_feeds_only(text: str, framing: tuple[str, int]) -> None:
    """A UTF-8 text body comes back line for line: split at LF only, a CR before it
    dropped, nothing else lost or added, whatever the read boundaries of a plain body."""
    # Compressed bodies are read as the runtime reads them, 1 MiB at a time: the binary
    # sniff judges the first decompressed piece, which a one-byte read could leave as a
    # lone UTF-8 lead byte (refused as binary).
    kind, chunk = framing
    body = io.BytesIO(wrapped(kind, text.encode()))
    lines = [ln.text for ln in s3.iter_lines(body, "k", chunk)]
    parts = text.split("\n")
    if parts[-1] == "":  # nothing after the last line feed (or no text at all)
        parts.pop()
    assert lines == [p.removesuffix("\r") for p in parts]


# ---------------------------------------------------------------- parsers and formats
@FAST
@given(text=TEXT)
def test_parse_message_gives_a_serialisable_record(text: str) -> None:
    """`parse_message` answers a record orjson can serialise and a time within the archive's
    range, for any text, with or without the message cap."""
    for cap in (MAX_MESSAGE_CHARS, None):
        record, t = parse_message(text, max_chars=cap)
        assert isinstance(record, dict)
        orjson.dumps(record)
        assert t is None or isinstance(t, int)


@FAST
@given(text=TEXT)
def test_every_registered_parser_gives_a_serialisable_record(text: str) -> None:
    """Every parser in the registry, with sample options where it needs them, turns any
    text into a dict orjson can serialise (`parse_error` when it cannot parse it)."""
    for name in registry.names():
        rec = registry.build(name, PARSER_OPTIONS.get(name))(text)
        assert isinstance(rec, dict), name
        orjson.dumps(rec)


@FAST
@given(header=TEXT, text=TEXT, key=st.sampled_from(["k.log", "k.csv", "k.tsv", "k.gz"]))
def test_every_s3_line_format_gives_a_serialisable_record(header: str, text: str, key: str) -> None:
    """Every S3 line format reads any header line (consumed or not, or a DecodeError for a
    header it cannot use) and turns any line into a dict orjson can serialise."""
    assert s3_formats.detect(text, key) in s3_formats.FORMATS
    for name, cls in s3_formats.FORMATS.items():
        fmt = cls()
        try:
            assert fmt.header(header) in (True, False)
        except DecodeError as e:
            assert e.stage == name
        rec = fmt.record(text)
        assert isinstance(rec, dict), name
        orjson.dumps(rec)
