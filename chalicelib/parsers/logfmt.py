"""logfmt: `level=info msg="user logged in" user=alice dur=1.5ms count=3 ok=true`.

Grammar as go-logfmt reads it: pairs separated by whitespace; a key is any run
of characters other than whitespace, `=` and `"`; a value is bare (up to the
next whitespace) or double-quoted with JSON-style escapes (`\\"`, `\\\\`, `\\n`,
`\\u00e9`). A key without `=` is a flag (true); `key=` is the empty string.
Bare values are typed: `true`/`false`, integers within 64 bits and finite
decimals; quoted values stay text (quoting is the writer saying "a string").
`=` inside a bare value is kept (`url=/a?b=c`), where go-logfmt would refuse it.

Parsed with str.split between quoted values: the text is walked by C-speed
string methods, never character by character in Python.
"""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.normalise import normalise
from chalicelib.parsers import MAX_FIELDS
from chalicelib.parsers.fields import closing_quote
from chalicelib.parsers.regex import to_float, to_int
from chalicelib.parsers.registry import failed, simple

_LITERALS: dict[str, Any] = {"true": True, "false": False}
_NUMBER_START = frozenset("-0123456789")


def typed(value: str) -> Any:
    """A bare value -> bool, int or float when it reads as one, else the text."""
    literal = _LITERALS.get(value)
    if literal is not None:
        return literal
    if value[:1] not in _NUMBER_START:
        return value
    digits = value[1:] if value[0] == "-" else value
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return value  # 007 is an identifier, not seven
    if digits.isdigit():
        n = to_int(value)
        return value if n is None else n  # beyond 64 bits: an id, kept exact as text
    f = to_float(value)
    return value if f is None else f


class _Malformed(ValueError):
    pass


def _pairs(tokens: list[str], rec: dict[str, Any]) -> int:
    """Bare pairs and flags into `rec`; the number of key=value pairs among them."""
    pairs = 0
    for token in tokens:
        key, sep, value = token.partition("=")
        if not key:
            raise _Malformed("empty key")
        if sep:
            pairs += 1
            rec[key] = typed(value) if value else ""
        else:
            rec[key] = True
    return pairs


def _closing_quote(text: str, start: int) -> int:
    """Index of the `"` ending a quoted value whose content begins at `start`."""
    q = closing_quote(text, start)
    if q == -1:
        raise _Malformed("unterminated quoted value")
    return q


def _unquote(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        value = orjson.loads(f'"{raw}"')
    except orjson.JSONDecodeError:
        # Not JSON-escaped (a raw tab, say): undo only the escapes that framed it.
        return "\\".join(part.replace('\\"', '"') for part in raw.split("\\\\"))
    return value if type(value) is str else raw


def parse_pairs(text: str) -> tuple[dict[str, Any], int]:
    """logfmt text -> (its fields, later duplicates winning; how many were key=value).

    Raises _Malformed where go-logfmt would stop with a syntax error.
    """
    rec: dict[str, Any] = {}
    pairs = 0
    pos = 0
    n = len(text)
    while pos < n:
        q = text.find('"', pos)
        if q == -1:
            pairs += _pairs(text[pos:].split(), rec)
            break
        # A quote may only open a value, right after `key=`.
        stem = text[pos:q]
        if not stem.endswith("="):
            raise _Malformed(f"unexpected quote at {q}")
        tokens = stem[:-1].split()
        if not tokens or stem[-2:-1].isspace():
            raise _Malformed(f"empty key before the quote at {q}")
        key = tokens.pop()
        if "=" in key:
            raise _Malformed(f"unexpected quote at {q}")
        pairs += _pairs(tokens, rec) + 1
        end = _closing_quote(text, q + 1)
        rec[key] = _unquote(text[q + 1 : end])
        pos = end + 1
        if pos < n and not text[pos].isspace():
            raise _Malformed(f"text right after a quoted value at {pos}")
    return rec, pairs


@simple("logfmt", description="logfmt key=value pairs; numbers and true/false typed")
def parse_logfmt(text: str) -> dict[str, Any]:
    try:
        rec, pairs = parse_pairs(text)
    except _Malformed as e:
        return failed(text, "logfmt", str(e))
    if not pairs:
        return failed(text, "logfmt", "no key=value pair")
    if len(rec) > MAX_FIELDS:
        return failed(text, "logfmt", f"over {MAX_FIELDS} fields")
    return normalise(rec)[0]
