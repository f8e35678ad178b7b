"""S3 objects -> LogEvents, streamed line by line.

Notifications arrive through SQS (S3 → SQS, possibly wrapped in SNS; the first
message of a new configuration is an `s3:TestEvent`) or as EventBridge
`Object Created` events. Keys in S3 notifications are URL-encoded (spaces as
`+`); EventBridge keys are not.

Objects are never read whole: the body is read in 1 MiB chunks (the Elastic
Serverless Forwarder measured 1 MiB reads taking a 35 MB object from a time-out
to 45 s against 1 KiB reads), decompressed incrementally (gzip by magic bytes,
multi-member included; zstd likewise) and split into lines, so memory stays
bounded by the chunk and one batch of events whatever the object's size.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

import orjson

from chalicelib.budget import DEFAULT_MEMORY_MB, budget
from chalicelib.errors import DecodeError
from chalicelib.observe import timed
from chalicelib.sources import envelope
from chalicelib.sources.firehose import DocumentSplitter, looks_like_documents

CHUNK = 1024 * 1024
# A single line above this is cut (and flagged) so an object with no newlines
# cannot take the function's memory. 32 MiB holds a large CloudTrail file (one JSON
# document on one line, expanded into events) and, parsed, stays within a 512 MB
# function; a JSON document cut at this size is dead-lettered, never half-read.
MAX_LINE = 32 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UTF8_BOM = b"\xef\xbb\xbf"
SNIFF = 8192
DOCUMENT_SNIFF = 512
# Decompressed bytes taken from zlib at a time: memory follows this, not the ratio.
OUT_PIECE = CHUNK
# Bytes of handled lines a continuation skips before it looks at the deadline: ~50 ms of
# counting, so every invocation moves (one started near its deadline still gets there).
SKIP_GRACE = 64 * 1024 * 1024


@lru_cache(maxsize=64)
def _object_id(bucket: str, key: str, version: str) -> str:
    """Cached: every line's event id starts with it (a SHA-256 per line was 0.5 µs)."""
    return hashlib.sha256(f"{bucket}/{key}#{version}".encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    bucket: str
    key: str
    version: str | None = None
    etag: str | None = None
    size: int | None = None
    # Where the object was written, when the notification says (region) or the key's
    # AWSLogs/<account>/ layout does (account): chalicelib/org.py s3_origin.
    # Not part of the object's identity (claims, equality): facts about where it came from.
    account: str | None = field(default=None, compare=False)
    region: str | None = field(default=None, compare=False)

    @property
    def object_id(self) -> str:
        """Stable across re-deliveries of the same object version (ids and archive keys)."""
        return _object_id(self.bucket, self.key, self.version or self.etag or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "etag": self.etag,
            "size": self.size,
            **({"account": self.account} if self.account else {}),
            **({"region": self.region} if self.region else {}),
        }


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading an object resumes: `line` lines are handled; read from byte `offset`
    of the object, where line `base + 1` starts, and skip `line - base` lines there. Plain
    text resumes at the next line (`base == line`, a ranged GET); multi-member gzip or zstd
    at the last member that starts a line (lines inside it skipped); a single member from
    the start, its lines skipped by counting newlines in the raw bytes."""

    line: int
    offset: int = 0
    base: int = 0
    kind: str = ""  # plain, gzip, zstd: the object's encoding, known from its first bytes

    @property
    def skip(self) -> int:
        return self.line - self.base

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "offset": self.offset, "base": self.base, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where a previous invocation stopped in an object, and the claim it continues: the
    state table's token for that object (without it, or with a stale one, the continuation
    is refused; the position the table holds is the one that counts)."""

    ref: ObjectRef
    line: int
    token: str | None = None
    position: Position | None = None

    def __post_init__(self) -> None:
        if self.position is None:  # from the start, skipping `line` lines
            object.__setattr__(self, "position", Position(self.line))

    @property
    def at(self) -> Position:
        return self.position or Position(self.line)

    def body(self) -> str:
        pos = self.at.to_dict()
        doc = {**self.ref.to_dict(), **pos, "line": self.line, "token": self.token}
        return orjson.dumps({"sluice_continuation": doc}).decode()


Work = ObjectRef | Continuation


def _ref_from_s3_record(r: dict[str, Any]) -> ObjectRef | None:
    name = r.get("eventName")
    if r.get("eventSource") != "aws:s3" or not (
        isinstance(name, str) and name.startswith("ObjectCreated")
    ):
        return None
    s3 = _part(r, "s3", "")
    obj, bucket = _part(s3, "object", "s3."), _part(s3, "bucket", "s3.")
    if not isinstance(bucket.get("name"), str) or not isinstance(obj.get("key"), str):
        raise DecodeError("shape", "S3 record without bucket name or object key")
    ref = _ref(bucket, obj, "s3.", "versionId", "eTag", unquote=True)
    account, region = s3_origin(ref.key, r.get("awsRegion"))
    return replace(ref, account=account, region=region)


def ref_from_eventbridge(event: Any) -> ObjectRef:
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise DecodeError("shape", "not an EventBridge event (no 'detail')")
    obj, bucket = _part(detail, "object", "detail."), _part(detail, "bucket", "detail.")
    if not isinstance(bucket.get("name"), str) or not isinstance(obj.get("key"), str):
        raise DecodeError("shape", "Object Created event without bucket name or object key")
    ref = _ref(bucket, obj, "detail.", "version-id", "etag")
    account, region = s3_origin(ref.key, event.get("region"))
    # EventBridge names the bucket's account; the key may name the log's own.
    account = account or _text(event.get("account"))
    return replace(ref, account=account, region=region)


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _part(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """An object-valued field of a notification ({} when absent or null)."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError("shape", f"{where}{key} is {envelope.kind(value)}, not an object")
    return value


def _ref(
    bucket: dict[str, Any],
    obj: dict[str, Any],
    where: str,
    version_field: str,
    etag_field: str,
    *,
    unquote: bool = False,
) -> ObjectRef:
    """The object a notification names, each attribute type-checked: bucket and key
    strings (S3's limits: 63 and 1,024 bytes, with room for URL encoding), version and
    ETag strings or absent, size a whole number or absent."""
    name = envelope.text(bucket, "name", f"{where}bucket.", required=True, limit=255)
    key = envelope.text(obj, "key", f"{where}object.", required=True, limit=3 * 1024)
    version = envelope.text(obj, version_field, f"{where}object.", limit=1024)
    etag = envelope.text(obj, etag_field, f"{where}object.", limit=1024)
    size = envelope.number(obj, "size", f"{where}object.")
    if size is not None and (type(size) is not int or size < 0):
        raise DecodeError("shape", f"{where}object.size {size} is not a whole number of bytes")
    assert name is not None and key is not None
    return ObjectRef(name, unquote_plus(key) if unquote else key, version, etag, size)


def parse_sqs_body(body: str) -> list[Work]:
    """An SQS message body -> the objects to read (empty for test events)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise DecodeError("json", f"SQS body is not JSON: {e}") from e
    if (
        isinstance(doc, dict)
        and doc.get("Type") == "Notification"
        and isinstance(doc.get("Message"), str)
    ):
        try:
            doc = orjson.loads(doc["Message"])  # SNS-wrapped notification
        except orjson.JSONDecodeError as e:
            raise DecodeError("json", f"SNS message is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise DecodeError("shape", "SQS body is not a JSON object")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if isinstance(doc.get("sluice_continuation"), dict):
        c = doc["sluice_continuation"]
        try:
            ref = _ref({"name": c.get("bucket")}, c, "", "version", "etag")
            account = envelope.text(c, "account", "", limit=64)
            region = envelope.text(c, "region", "", limit=64)
        except DecodeError as e:
            raise DecodeError("shape", f"malformed continuation: {e.reason}") from e
        ref = replace(ref, account=account, region=region)
        line = c.get("line")
        if type(line) is not int or line < 0:
            raise DecodeError(
                "shape", f"malformed continuation: line is {envelope.kind(line)}, not a count"
            )
        token = envelope.text(c, "token", "sluice_continuation.", limit=128)
        offset, base = c.get("offset", 0), c.get("base", 0)
        kind = c.get("kind") or ""
        if (
            type(offset) is not int
            or type(base) is not int
            or not 0 <= base <= line
            or offset < 0
            or kind not in ("", "plain", "gzip", "zstd")
        ):
            raise DecodeError("shape", "malformed continuation: offset, base or kind")
        return [Continuation(ref, line, token, Position(line, offset, base, kind))]
    if doc.get("detail-type") == "Object Created":
        return [ref_from_eventbridge(doc)]
    records = doc.get("Records")
    if not isinstance(records, list):
        raise DecodeError("shape", "not an S3 notification (no 'Records' list)")
    out: list[Work] = []
    for r in records:
        if isinstance(r, dict):
            found = _ref_from_s3_record(r)
            if found is not None:
                out.append(found)
    return out


def s3_origin(key: str, region: Any = None) -> tuple[str | None, str | None]:
    """(account, region) of an object: AWS's log layouts name both in the key
    (`AWSLogs/<account>/<service>/<region>/...`, `AWSLogs/<o-org>/<account>/...` for an
    organization trail); else the notification's region and no account."""
    parts = key.split("/", 8)
    account: str | None = None
    where = _text(region)
    if "AWSLogs" in parts:
        i = parts.index("AWSLogs") + 1
        if i < len(parts) and parts[i].startswith("o-"):
            i += 1
        if i < len(parts) and len(parts[i]) == 12 and parts[i].isdigit():
            account = parts[i]
            # <service>/<region>: CloudTrail, elasticloadbalancing, vpcflowlogs...
            if i + 2 < len(parts) and _looks_like_region(parts[i + 2]):
                where = parts[i + 2]
    return account, where


def _looks_like_region(s: str) -> bool:
    """`eu-west-1`, `us-gov-west-1`, `ap-southeast-3`: letters-...-digit."""
    pieces = s.split("-")
    return (
        2 < len(pieces) <= 4
        and pieces[-1].isdigit()
        and all(p.isalpha() and p.islower() for p in pieces[:-1])
    )


class _Decompressor:
    """Incremental gzip (multi-member) or zstd, chosen by magic bytes; else identity."""

    def __init__(self, head: bytes) -> None:
        self.kind = "plain"
        if head[:2] == GZIP_MAGIC:
            self.kind = "gzip"
        elif head[:4] == ZSTD_MAGIC:
            self.kind = "zstd"
        self._z: Any = self._new()
        self._mid_frame = False  # input consumed into a frame that has not ended
        self._full = False  # the last gzip piece filled OUT_PIECE: more may be pending
        self.fed = 0  # compressed bytes given to feed()
        self.out = 0  # decompressed bytes produced
        # (decompressed position, compressed offset) where each later member starts
        self.members: list[tuple[int, int]] = []

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(wbits=31)
        if self.kind == "zstd":
            try:
                import zstandard  # imported only for zstd objects
            except ImportError as e:  # not bundled: refuse the object, do not retry forever
                raise DecodeError("zstd", f"zstandard is not installed: {e}") from e

            return zstandard.ZstdDecompressor().decompressobj()
        return None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decompressed bytes of `data`, in pieces. A gzip piece is at most OUT_PIECE
        bytes: one 1 MiB read of health-check lines (~300:1) would otherwise inflate to
        300 MB at once, and be copied twice more while split into lines."""
        if self.kind == "plain":
            yield data
            return
        self.fed += len(data)
        while data:
            yield self._step(data)
            # Output stopped at OUT_PIECE: the rest of the input, or output zlib still holds.
            while self.kind == "gzip" and (self._z.unconsumed_tail or self._full):
                yield self._step(self._z.unconsumed_tail)
            if self._z.eof:
                data = self._z.unused_data
                self.members.append((self.out, self.fed - len(data)))
                self._mid_frame = False
                self._z = self._new()  # next member / frame (concatenated streams)
                magic = GZIP_MAGIC if self.kind == "gzip" else ZSTD_MAGIC
                # The read may end inside the next member's magic bytes: compare what is there.
                if data and not magic.startswith(data[: len(magic)]):
                    raise DecodeError(self.kind, "trailing garbage after the compressed stream")
            else:
                self._mid_frame = True
                data = b""

    def _step(self, data: bytes) -> bytes:
        try:
            if self.kind == "gzip":
                out: bytes = self._z.decompress(data, OUT_PIECE)
                self._full = len(out) == OUT_PIECE
            else:
                out = bytes(self._z.decompress(data))
            self.out += len(out)
            return out
        except zlib.error as e:
            raise DecodeError("gzip", str(e)) from e
        except Exception as e:  # zstandard.ZstdError
            raise DecodeError(self.kind, str(e)) from e

    @property
    def truncated(self) -> bool:
        return self._mid_frame


@dataclass(slots=True)
class Line:
    number: int  # 1-based
    text: str
    flags: dict[str, Any] | None = None  # invalid_utf8, truncated


class Cursor:
    """Where reading stands, for a continuation: the points the object can be read again
    from (object offset, lines before it), the latest last. A read that starts at
    `offset` (where line `base + 1` starts) begins with that one."""

    def __init__(self, offset: int = 0, base: int = 0, kind: str = "") -> None:
        self.start = offset
        self.base = base
        self.kind = kind
        self.marks: list[tuple[int, int]] = [(offset, base)]
        self.interrupted = False  # the deadline came while skipping lines handled before
        self.documents: bool | None = None

    def add(self, offset: int, lines: int) -> None:
        """A point after `lines` lines; older points of at most `done` lines are dropped
        but the latest of them (the consumer may still be before the newer ones)."""
        self.marks.append((offset, lines))

    def resume(self, line: int) -> Position:
        """Where to continue once lines up to `line` are handled."""
        best = self.marks[0]
        for m in self.marks:
            if m[1] > line:
                break
            best = m
        i = self.marks.index(best)
        del self.marks[:i]  # points before the chosen one can never be better
        return Position(line, best[0], best[1], self.kind)


class _Pieces:
    """The decompressed bytes of an S3 body, in pieces, sniffed for binary content;
    `truncated` tells, once exhausted, whether the compressed stream was cut. `resumed`:
    the body starts inside the object (a ranged GET), already known as text of `kind`."""

    def __init__(self, body: Any, key: str, chunk: int, kind: str = "", resumed: bool = False):
        self.body, self.key, self.chunk = body, key, chunk
        self.kind = kind or "plain"
        self.forced = kind if resumed else ""
        self.truncated = False
        self.bom = 0  # bytes of a UTF-8 BOM taken off the head
        self.dec: _Decompressor | None = None

    def members(self) -> list[tuple[int, int]]:
        """Where later gzip members or zstd frames start: (position in the bytes yielded,
        offset in the body), taken off as they are read."""
        return self.dec.members if self.dec is not None else []

    def __iter__(self) -> Iterator[bytes]:
        body, chunk = self.body, self.chunk
        first = body.read(chunk)
        # A short first read (a socket may return a few bytes) must not hide the magic bytes.
        while 0 < len(first) < len(ZSTD_MAGIC):
            more = body.read(chunk)
            if not more:
                break
            first += more
        if not first:
            return
        dec = self.dec = _Decompressor(b"" if self.forced == "plain" else first)
        self.kind = dec.kind
        sniffed = bool(self.forced)
        data = first
        while data:
            for out in dec.feed(data):
                if not sniffed and out:
                    out = self._sniffed(out)
                    sniffed = True
                yield out
            data = body.read(chunk)
        self.truncated = dec.truncated

    def _sniffed(self, head: bytes) -> bytes:
        if _looks_binary(head[:SNIFF]):
            raise DecodeError("binary", f"object {self.key!r} is not text (NUL bytes or not UTF-8)")
        # Excel's CSVs: the BOM is not part of the first column's name.
        if head.startswith(UTF8_BOM):
            self.bom = len(UTF8_BOM)
            return head[len(UTF8_BOM) :]
        return head


def iter_lines(
    body: Any,
    key: str,
    chunk: int = CHUNK,
    *,
    documents: bool | None = None,
    cursor: Cursor | None = None,
    skip: int = 0,
    stop: Callable[[], bool] | None = None,
) -> Generator[Line, None, None]:
    """Lines of an S3 body (a file-like with .read(n)); raises DecodeError on binary or
    truncated content after yielding every complete line before the damage.

    Objects of CloudWatch Logs subscription documents (written by Firehose, often with
    no separator between documents) are split into documents instead, one per `Line`
    (`documents=None` decides from the content; True or False forces it).

    `cursor`: where the body starts in the object (a ranged GET's offset, the lines
    before it, the encoding) and where a continuation may resume, kept up to date as lines
    are read. `skip`: lines handled before, skipped by counting newlines in the raw bytes
    (never decoded or split), `stop()` asked between pieces meanwhile: when it says so,
    reading ends and `cursor.interrupted` is set."""
    cursor = cursor or Cursor()
    pieces = _Pieces(body, key, chunk, cursor.kind, resumed=cursor.start > 0)
    it = timed(pieces, "decode")  # read and decompress, per block (metrics: decode_ms)
    first = next(it, None)
    if first is None:
        if pieces.truncated:
            raise DecodeError(pieces.kind, f"truncated {pieces.kind} stream after line 0")
        return
    if documents is None:
        # Enough of the head to recognise a subscription document's first keys.
        while len(first) < DOCUMENT_SNIFF and first.lstrip()[:1] == b"{":
            more = next(it, None)
            if more is None:
                break
            first += more
        documents = looks_like_documents(first)
    cursor.documents = documents
    cursor.kind = pieces.kind
    if documents:
        yield from _document_lines(first, it, pieces)
    else:
        yield from _text_lines(first, it, pieces, cursor, skip, stop)


def _document_lines(first: bytes, rest: Iterator[bytes], pieces: _Pieces) -> Iterator[Line]:
    limit = _line_limit()
    splitter = DocumentSplitter(limit)
    number = 0
    for data in _chain(first, rest):
        for raw, dropped in splitter.feed(data):
            number += 1
            yield _line(number, raw, dropped, limit)
    if pieces.truncated:
        raise DecodeError(pieces.kind, f"truncated {pieces.kind} stream after document {number}")
    for raw, dropped in splitter.finish():
        number += 1
        yield _line(number, raw, dropped, limit)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _line_limit() -> int:
    """MAX_LINE is the line limit of a 512 MB function; it scales with the memory."""
    return MAX_LINE * budget().memory_mb // DEFAULT_MEMORY_MB


def _text_lines(
    first: bytes,
    rest: Iterator[bytes],
    pieces: _Pieces,
    cursor: Cursor,
    skip: int = 0,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Line]:
    limit = _line_limit()
    number = cursor.base
    # The line being read, grown in place: joining each piece to a copy of what came
    # before made a 30 MiB line cost 30 copies of itself and several at once in memory.
    pending = bytearray()
    oversize = 0
    plain = pieces.kind == "plain"
    pos = cursor.start + pieces.bom  # plain: the object offset of the next byte of `out`
    taken = 0  # compressed kinds: bytes taken from the decompressor so far
    line_start = True  # the previous piece ended a line (or nothing was read yet)
    skipped = 0
    for out in _chain(first, rest):
        if not plain:
            _member_marks(pieces, cursor, out, taken, number, line_start)
            taken += len(out)
        if out:
            line_start = out[-1] == 0x0A
        if skip:
            # Lines handled by an earlier invocation: counted, never decoded or split
            # (bytes.count runs at memory speed; splitting and decoding at ~1/20 of it).
            skipped += len(out)
            if stop is not None and skipped > SKIP_GRACE and stop():
                cursor.interrupted = True
                return
            n = out.count(b"\n")
            if n < skip:
                skip -= n
                number += n
                pos += len(out)
                continue
            i = -1
            for _ in range(skip):
                i = out.index(b"\n", i + 1)
            number += skip
            skip = 0
            pos += i + 1
            out = out[i + 1 :]
            if not out:
                continue
        if b"\n" not in out:
            pos += len(out)
            if oversize:
                # Still inside a line already cut at the limit: count the bytes, copy
                # nothing (a 200 MB line took 8.5 s instead of 0.9 when joined).
                oversize += len(out)
                continue
            pending += out
            if len(pending) > limit:
                oversize += len(pending) - limit  # bytes of this line dropped so far
                del pending[limit:]
            continue
        parts = out.split(b"\n")
        tail = parts.pop()
        for i, raw in enumerate(parts):
            pos += len(raw) + 1
            if i == 0 and (pending or oversize):
                if oversize:
                    oversize += len(raw)  # dropped too: the line was already cut
                else:
                    pending += raw
                raw = bytes(pending)
                pending.clear()
            number += 1
            parts[i] = b""  # the line's bytes are freed once it is text
            if oversize or len(raw) > limit or raw[-1:] == b"\r":
                line = _line(number, raw, oversize, limit)
            else:  # a whole line without CR: `_line`'s common case, without the call
                try:
                    line = Line(number, raw.decode("utf-8"))
                except UnicodeDecodeError:
                    line = _line(number, raw, 0, limit)
            del raw
            oversize = 0
            if plain:
                cursor.marks[-1] = (pos, number)  # plain text resumes at the next line
            yield line
        pos += len(tail)
        pending += tail
        if len(pending) > limit:
            oversize += len(pending) - limit
            del pending[limit:]
    if pieces.truncated:
        # What follows the last newline is a line cut by the damage: not passed off as whole.
        rest_note = (
            f", then {len(pending) + oversize} bytes of an incomplete line" if pending else ""
        )
        raise DecodeError(
            pieces.kind, f"truncated {pieces.kind} stream after line {number}{rest_note}"
        )
    if pending:
        number += 1
        yield _line(number, bytes(pending), oversize, limit)


def _member_marks(
    pieces: _Pieces, cursor: Cursor, out: bytes, taken: int, number: int, line_start: bool
) -> None:
    """The gzip members (zstd frames) starting within `out` that start a line: points a
    continuation can read the object from (a ranged GET at the member, a new decompressor)."""
    members = pieces.members()
    while members and members[0][0] - pieces.bom <= taken + len(out):
        at, offset = members.pop(0)
        rel = at - pieces.bom - taken
        if rel == len(out) and out:
            members.insert(0, (at, offset))  # at the next piece's start: decided there
            return
        if rel < 0 or not (line_start if rel == 0 else out[rel - 1] == 0x0A):
            continue
        lines = number + out.count(b"\n", 0, rel)
        marks = cursor.marks
        while len(marks) > 1 and marks[1][1] <= number:
            del marks[0]  # the consumer is past these: only the latest of them matters
        marks.append((cursor.start + offset, lines))


def _looks_binary(sample: bytes) -> bool:
    """NUL bytes, or mostly not UTF-8. A few bad bytes (a Latin-1 name in a log line)
    keep the object as text; those lines are flagged `invalid_utf8`."""
    if b"\x00" in sample:
        return True
    bad = sample.decode("utf-8", "replace").count("\ufffd")
    return bad > len(sample) * 0.3


def _line(number: int, raw: bytes, dropped: int, limit: int = MAX_LINE) -> Line:
    """`dropped`: bytes of this line already discarded while it was being read."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    size = dropped + len(raw)
    if size > limit:
        raw = _whole_chars(raw[:limit])
    flags: dict[str, Any] | None = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "backslashreplace")
        flags = {"invalid_utf8": True}
    if size > limit:
        flags = {**(flags or {}), "truncated": True, "original_bytes": size}
    return Line(number, text, flags)


def _whole_chars(raw: bytes) -> bytes:
    """`raw` without a UTF-8 character that a cut left incomplete at its end."""
    for i in range(1, min(4, len(raw)) + 1):
        b = raw[-i]
        if b < 0x80:
            return raw
        if b >= 0xC0:  # the lead byte of the last character
            width = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return raw[:-i] if width > i else raw
    return raw


def tag_for(bucket: str, key: str) -> str:
    """`bucket/app/2026/...` -> `s3.bucket.app`; a key without `/` -> `s3.bucket`."""
    first = key.split("/", 1)[0] if "/" in key else ""
    # The tag names the archive path, and S3 refuses keys over 1,024 bytes: a first part
    # near that size would leave the events dead-lettered on every read. 256 bytes of it.
    if len(first) > 64:
        first = first.encode()[:256].decode("utf-8", "ignore")
    parts = ["s3", bucket.replace(".", "_")]
    if first:
        parts.append(first.replace(".", "_"))
    return ".".join(parts)
