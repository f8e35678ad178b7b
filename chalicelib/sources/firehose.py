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

import re2

from chalicelib.sources.cloudwatch import CloudWatchBatch, batch_from_text

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


# Documents end where a `}` is followed by the next document's `{`, directly (Firehose's
# default) or after a newline (its delimiter option). Within one JSON value a `}` is only
# ever followed by `,`, `]`, `}` or the end, so such a pair outside a string is a boundary;
# inside a string (a message holding `}{`) it is not, and the string state decides.
# One RE2 search (linear time, one pass) finds the nearest of the three forms; three
# bytes.find calls took 3.7x as long on a 900 KB piece.
_BOUNDARY = re2.compile(rb"\}(?:\r?\n)?\{")
_LONGEST = len(b"}\r\n{")
_WS = b" \t\r\n"


class DocumentSplitter:
    """Concatenated or newline-delimited JSON objects -> one bytes object per document.

    Candidates are found by one RE2 search each; whether one lies inside a string is the
    parity of the real quotes before it, counted over whole segments with bytes methods
    (escaped backslashes removed, escaped quotes counted apart). Each byte is looked at a
    constant number of times whatever the content: linear, no per-character Python loop
    (`bench/firehose_split.py`: 0.86x the cost of parsing the documents; a string full of
    `}{` and escaped quotes costs more per byte, the same at 4x the size). Malformed input never
    stalls it and loses nothing: it is cut at the candidates it has, and a piece that is
    not a JSON document fails to parse downstream (and is dead-lettered).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.parts: list[memoryview] = []  # the open document's bytes, scanned
        self.kept = 0  # bytes in `parts`
        self.dropped = 0  # bytes of the open document past max_bytes, counted only
        self.tail = b""  # bytes received but not scanned yet (a possible boundary's start)
        self.in_str = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes, int]]:
        """(document bytes, bytes dropped from it) for each document `data` completes."""
        buf = self.tail + data if self.tail else data
        self.tail = b""
        i = 0
        n = len(buf)
        while i < n:
            if not self.parts and not self.dropped:
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
                cut = n - (_LONGEST - 1)
                while cut > i and buf[cut - 1] == 0x5C:
                    cut -= 1
                if cut > i:
                    self._take(buf, i, cut)
                    self.tail = buf[cut:]
                else:
                    self.tail = buf[i:]
                return
            self._take(buf, i, end + 1)
            i = end + 1
            if not self.in_str:
                yield self._close()
                continue
            # A candidate inside a string (a message holding `}{`): go to the string's end
            # quote by quote, skipping whatever other candidates the string holds.
            while self.in_str:
                q = buf.find(b'"', i)
                if q < 0:
                    break
                self._take(buf, i, q + 1)
                i = q + 1

    def finish(self) -> Iterator[tuple[bytes, int]]:
        """The last document (what remains, if anything but whitespace)."""
        if self.tail:
            self._take(self.tail, 0, len(self.tail))
            self.tail = b""
        if self.parts or self.dropped:
            doc, dropped = self._close()
            if doc.strip(_WS) or dropped:
                yield doc.rstrip(_WS), dropped

    @staticmethod
    def _next_boundary(buf: bytes, i: int) -> int:
        """Index of the `}` of the nearest candidate boundary at or after `i`, or -1."""
        m = _BOUNDARY.search(buf, i)
        return -1 if m is None else int(m.start())

    def _take(self, buf: bytes, i: int, j: int) -> None:
        """Advance the string state over `buf[i:j]`, and keep those bytes (a view: no copy
        until the document is joined)."""
        quotes = buf.count(b'"', i, j)
        if quotes:
            if buf.find(b"\\\\", i, j) < 0:
                quotes -= buf.count(b'\\"', i, j)
            else:  # escaped backslashes out first: in `\\\\"` the quote is real
                quotes -= buf[i:j].replace(b"\\\\", b"").count(b'\\"')
        if quotes & 1:
            self.in_str = not self.in_str
        size = j - i
        room = self.max_bytes - self.kept
        if size > room:
            self.dropped += size - max(room, 0)
            j = i + max(room, 0)
            size = j - i
        if size:
            self.parts.append(memoryview(buf)[i:j])
            self.kept += size

    def _close(self) -> tuple[bytes, int]:
        doc = b"".join(self.parts)
        dropped = self.dropped
        self.parts, self.kept, self.dropped = [], 0, 0
        self.in_str = False
        return doc, dropped


def document_batch(text: str, region: str) -> CloudWatchBatch:
    """One subscription document's text -> its batch, exactly as the `cloudwatch_logs`
    trigger makes it (tag from the log group, CloudWatch source and event ids); a long
    document is read incrementally, its events made as the pipeline takes them."""
    return batch_from_text(text, region)
