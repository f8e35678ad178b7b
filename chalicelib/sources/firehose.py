"""CloudWatch Logs archived to S3 by Amazon Data Firehose.

A subscription filter whose destination is a Firehose stream hands Firehose one
record per subscription document (the same gzip JSON the `cloudwatch_logs`
trigger receives, `messageType`/`owner`/`logGroup`/`logStream`/`logEvents`), and
Firehose writes the records of a buffer back to back into one S3 object:
- with no processors, each record stays its own gzip member: the object is a
  multi-member gzip whose content is the documents with no separator, `{…}{…}`;
- with the Decompression processor, the documents are written decompressed, and
  newline-delimited when the AppendDelimiterToRecord processor is on too.
`CONTROL_MESSAGE` documents (CloudWatch Logs checking the destination) come in
the same stream and hold no log events.

The documents are split incrementally with a linear-time scanner over the
decompressed bytes (string methods at C speed, see `DocumentSplitter`); the
object is never held whole, and a document over the size cap keeps only its
first bytes (and its real size) so it can be dead-lettered by reference.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from chalicelib.errors import DecodeError
from chalicelib.sources.cloudwatch import CloudWatchBatch, batch_from_document

_SNIFF = 4096


def looks_like_documents(head: bytes) -> bool:
    """True if decompressed content begins with a CloudWatch Logs subscription document:
    `messageType` first, as CloudWatch Logs writes it (AWS docs, "Subscription filters"),
    with one of its two values, and a `logGroup`."""
    start = head[:_SNIFF].lstrip()
    if not start.startswith(b"{"):
        return False
    first = start[1:64].lstrip()
    if not first.startswith(b'"messageType"'):
        return False
    return b'"logGroup"' in start and (
        b'"DATA_MESSAGE"' in start[:128] or b'"CONTROL_MESSAGE"' in start[:128]
    )


# A document ends at a `}` that closes its outermost object. Candidates are `}` followed by
# the next document's `{`, directly (Firehose's default) or after a newline (its delimiter
# option); the scanner's state decides whether a candidate is a real end.
_BOUNDARIES = (b"}{", b"}\n{", b"}\r\n{")
_WS = b" \t\r\n"


class DocumentSplitter:
    """Concatenated or newline-delimited JSON objects -> one bytes object per document.

    State between candidates is computed over whole segments with bytes methods
    (escapes removed, quotes split, braces counted outside strings), so each byte is
    looked at a constant number of times whatever the content: linear, no regex, no
    per-character Python loop. Malformed input never stalls it: a document whose
    braces never balance runs to the end of the object and is then handed back as
    one (unparsable) document, to be dead-lettered.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.parts: list[bytes] = []  # the open document's bytes, scanned
        self.kept = 0  # bytes in `parts`
        self.dropped = 0  # bytes of the open document past max_bytes, counted only
        self.tail = b""  # bytes received but not scanned yet (a possible boundary's start)
        self.depth = 0
        self.in_str = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes, int]]:
        """(document bytes, bytes dropped from it) for each document `data` completes."""
        buf = self.tail + data if self.tail else data
        self.tail = b""
        i = 0
        n = len(buf)
        while i < n:
            if not self.parts and not self.dropped and self.depth == 0:
                # Between documents: skip the separators.
                while i < n and buf[i] in _WS:
                    i += 1
                if i >= n:
                    return
            end = self._next_boundary(buf, i)
            if end < 0:
                # No boundary in what is here. Scan all but what could start one (its `}`
                # is within the last 3 bytes when its `{` is in the next piece), and never
                # end a scan inside a run of backslashes (one may escape the next byte).
                cut = n - (len(_BOUNDARIES[-1]) - 1)
                while cut > i and buf[cut - 1] == 0x5C:
                    cut -= 1
                if cut > i:
                    self._take(buf[i:cut])
                    self.tail = buf[cut:]
                else:
                    self.tail = buf[i:]
                return
            self._take(buf[i : end + 1])
            i = end + 1
            if self.depth <= 0 and not self.in_str:
                yield self._close()

    def finish(self) -> Iterator[tuple[bytes, int]]:
        """The last document (what remains, if anything but whitespace)."""
        if self.tail:
            self._take(self.tail)
            self.tail = b""
        if self.parts or self.dropped:
            doc, dropped = self._close()
            if doc.strip(_WS) or dropped:
                yield doc.rstrip(_WS), dropped

    @staticmethod
    def _next_boundary(buf: bytes, i: int) -> int:
        """Index of the `}` of the nearest candidate boundary at or after `i`, or -1."""
        best = -1
        for pattern in _BOUNDARIES:
            j = buf.find(pattern, i, best + len(pattern) if best >= 0 else len(buf))
            if j >= 0 and (best < 0 or j < best):
                best = j
        return best

    def _take(self, seg: bytes) -> None:
        """Advance the brace depth and string state over `seg`, and keep its bytes."""
        s = seg
        if b"\\" in s:
            # `\\` first, then `\"`: what remains of the quotes are real string delimiters.
            s = s.replace(b"\\\\", b"").replace(b'\\"', b"")
        if b'"' in s:
            pieces = s.split(b'"')
            outside = b"".join(pieces[1 if self.in_str else 0 :: 2])
            if len(pieces) % 2 == 0:
                self.in_str = not self.in_str
        else:
            outside = b"" if self.in_str else s
        self.depth += outside.count(b"{") - outside.count(b"}")
        room = self.max_bytes - self.kept
        if len(seg) <= room:
            self.parts.append(seg)
            self.kept += len(seg)
        else:
            if room > 0:
                self.parts.append(seg[:room])
                self.kept += room
            self.dropped += len(seg) - max(room, 0)

    def _close(self) -> tuple[bytes, int]:
        doc = b"".join(self.parts)
        dropped = self.dropped
        self.parts, self.kept, self.dropped = [], 0, 0
        self.depth, self.in_str = 0, False
        return doc, dropped


def document_batch(text: str, region: str) -> CloudWatchBatch:
    """One subscription document's text -> its batch, exactly as the `cloudwatch_logs`
    trigger makes it (tag from the log group, CloudWatch source and event ids)."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise DecodeError("json", f"not a JSON document: {e}") from e
    if not isinstance(doc, dict):
        raise DecodeError("shape", f"expected a JSON object, got {type(doc).__name__}")
    return batch_from_document(doc, region)
