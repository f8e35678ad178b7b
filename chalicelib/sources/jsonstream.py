"""One JSON document read a value at a time: a big list's elements one by one.

A CloudWatch payload of a million tiny events is ~50 MB of JSON that orjson turns into
~1 GB of dicts at once; a single S3 line `{"Records": [...]}` likewise. Here the
document's top-level members are read in order and the elements of one list member
are yielded one at a time, so memory holds the text being read (whole for an S3 line,
1 MiB pieces for a decompressed payload) and one element, never the whole tree.

Values are parsed by the standard library's C scanner (`JSONDecoder.raw_decode`,
which, unlike orjson, parses one value at an offset and says where it ended), held to
what orjson would accept: NaN/Infinity refused, integers beyond 64 bits read as the
nearest double (as orjson does; the caller flags them).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any

from chalicelib.errors import DecodeError

_WS = frozenset(" \t\n\r")
# A piece appended when a value does not end within the text held: doubled each time
# one value still does not fit, so a long value is rescanned O(log n) times.
PIECE = 1024 * 1024


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(text: str) -> int | float:
    n = int(text)
    return n if -(2**63) <= n < 2**64 else float(n)


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_int)


class Reader:
    """JSON text from `pieces` (str), read value by value."""

    def __init__(self, pieces: Iterator[str] | str) -> None:
        self._pieces: Iterator[str]
        if isinstance(pieces, str):
            self.buf, self._pieces, self.eof = pieces, iter(()), True
        else:
            self.buf, self._pieces, self.eof = "", pieces, False
        self.pos = 0

    def _more(self, at_least: int = 1) -> bool:
        """Append `at_least` characters (or what is left); False at the end."""
        got: list[str] = []
        n = 0
        while n < at_least and not self.eof:
            piece = next(self._pieces, None)
            if piece is None:
                self.eof = True
            else:
                got.append(piece)
                n += len(piece)
        if not got:
            return False
        self.buf = self.buf[self.pos :] + "".join(got)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end), not consumed."""
        while True:
            buf, pos = self.buf, self.pos
            n = len(buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self.pos = pos
            if pos < n:
                return buf[pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise DecodeError("json", f"expected {chars!r}, found {c or 'the end'!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        """The next value, parsed."""
        self.peek()
        grow = PIECE
        while True:
            try:
                v, end = _decoder.raw_decode(self.buf, self.pos)
            except (json.JSONDecodeError, ValueError, RecursionError) as e:
                if self._more(grow):  # the value may continue in the next piece
                    grow *= 2
                    continue
                raise DecodeError("json", str(e)) from e
            # A number ending where the text held ends may go on in the next piece.
            if end == len(self.buf) and not self.eof and type(v) in (int, float):
                if self._more():
                    continue
            self.pos = end
            return v

    def members(self) -> Iterator[str]:
        """The keys of the object starting here; after each, the caller reads its value."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            key = self.value()
            if type(key) is not str:
                raise DecodeError("json", "object key is not a string")
            self.expect(":")
            yield key
            if self.expect(",}") == "}":
                return

    def elements(self) -> Iterator[Any]:
        """The elements of the list starting here, parsed one at a time."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.expect(",]") == "]":
                return

    def end(self) -> None:
        """Only whitespace may follow the document."""
        if self.peek():
            raise DecodeError("json", f"data after the document at offset {self.pos}")


def text_pieces(chunks: Iterator[bytes]) -> Iterator[str]:
    """UTF-8 bytes in pieces -> text in pieces (a character split between pieces joined)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in chunks:
            yield dec.decode(chunk)
        yield dec.decode(b"", final=True)
    except UnicodeDecodeError as e:
        raise DecodeError("utf-8", str(e)) from e
