"""Regex: an operator's RE2 pattern; each named group `(?P<name>...)` becomes a field.

RE2 because log text is untrusted: matching is linear in the text, whatever the
pattern (no backreferences or lookarounds, which RE2 refuses at configuration
time). The pattern is searched (unanchored): anchor it with `^`/`$` when needed.
Groups that did not take part in the match are absent. Like the other field
parsers (logfmt, csv, xml), it adds no `message` of its own: a rule's parse step
merges the fields into a record that already has one, and a copy of the parsed
text would overwrite it when the rule parses some other field.

Also home of the `types` option shared with the CSV parser: field values are
text unless the operator declares `int`, `float` or `bool`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

from chalicelib.normalise import normalise
from chalicelib.options import Option
from chalicelib.parsers.registry import Parser, failed, register

# orjson refuses integers beyond 64 bits and Athena's bigint is signed 64-bit:
# a larger number stays text.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def to_int(text: str) -> int | None:
    """ASCII decimal (optional sign) within 64 bits -> int; else None.

    Stricter than int(): no underscores, surrounding spaces or non-ASCII digits.
    """
    body = text[1:] if text[:1] in ("-", "+") else text
    if not (body.isascii() and body.isdigit()) or len(body) > 20:
        return None
    value = int(text)
    return value if _INT_MIN <= value <= _INT_MAX else None


_FLOAT_CHARS = frozenset("0123456789.eE+-")


def to_float(text: str) -> float | None:
    """A finite decimal number (JSON-like: `1.5`, `-2`, `3e-4`) -> float; else None."""
    body = text[1:] if text[:1] in ("-", "+") else text
    if not body or not body[0].isdigit() or not _FLOAT_CHARS.issuperset(body):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def to_bool(text: str) -> bool | None:
    return _BOOLS.get(text.lower()) if len(text) <= 5 else None


CONVERTERS: dict[str, Callable[[str], Any]] = {"int": to_int, "float": to_float, "bool": to_bool}
# Values that mean "no value" in typed columns (CSV blanks, Apache-style dashes).
_ABSENT = ("", "-")


def check_types(types: dict[str, Any]) -> str | None:
    for field, name in types.items():
        if not isinstance(field, str) or name not in CONVERTERS:
            return f"{field!r}: expected one of {', '.join(CONVERTERS)}"
    return None


def typer(types: dict[str, str] | None) -> Callable[[dict[str, Any]], str | None] | None:
    """A function converting declared fields in place, returning a failure reason or None.

    A declared field holding "" or "-" is removed (no value); one that does not
    convert fails the text, since the operator said what the field holds.
    """
    if not types:
        return None
    plan = [(field, name, CONVERTERS[name]) for field, name in types.items()]

    def convert(rec: dict[str, Any]) -> str | None:
        for field, name, conv in plan:
            raw = rec.get(field)
            if raw is None:
                continue
            if raw in _ABSENT:
                del rec[field]
                continue
            value = conv(raw)
            if value is None:
                return f"field {field!r} is not {name}: {raw[:40]!r}"
            rec[field] = value
        return None

    return convert


def types_option() -> Option:
    return Option(
        dict,
        "field -> int | float | bool; other fields stay text",
        default=None,
        check=check_types,
    )


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """RE2-compile `pattern`; ValueError with RE2's reason if it refuses it."""
    options = re2.Options()
    options.log_errors = False  # reported to the operator, not written to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        detail = e.args[0] if e.args else e
        raise ValueError(detail.decode() if isinstance(detail, bytes) else str(detail)) from e


Groups = Callable[[str], tuple[str | None, ...] | None]


def _public_groups(rx: Any) -> Groups:
    search = rx.search

    def groups(text: str) -> tuple[str | None, ...] | None:
        m = search(text)
        return None if m is None else m.groups()

    return groups


def _direct_groups(rx: Any) -> Groups:
    """RE2's own Match on the UTF-8 bytes, decoding only the groups' slices.

    The google-re2 wrapper maps every byte offset back to a str offset in Python
    and builds each group through several calls: 12 µs for a five-group log4j
    line against 3 µs for this. RE2 never splits a UTF-8 character (only `\\C`
    can, hence `replace`).
    """
    match = rx._regexp.Match
    unanchored = re2._Anchor.UNANCHORED

    def groups(text: str) -> tuple[str | None, ...] | None:
        data = text.encode()
        spans = match(unanchored, data, 0, len(data))
        if spans[0][0] == -1:
            return None
        return tuple(
            None if start == -1 else data[start:end].decode("utf-8", "replace")
            for start, end in spans[1:]
        )

    return groups


def _direct_works() -> bool:
    """Whether this google-re2 still has the internals `_direct_groups` uses."""
    try:
        rx = compile_pattern(r"(?P<a>é+)(x)?\s(?P<b>\S*)")
        sample = "zzéé ñ!"
        return _direct_groups(rx)(sample) == _public_groups(rx)(sample) == ("éé", None, "ñ!")
    except Exception:  # any change in the private API: use the public one
        return False


def group_reader(rx: Any) -> Groups:
    """text -> the groups of `rx`'s first match (a search), or None without a match."""
    return _direct_groups(rx) if _DIRECT else _public_groups(rx)


def check_pattern(pattern: str) -> str | None:
    try:
        rx = compile_pattern(pattern)
    except ValueError as e:
        return f"not an RE2 pattern: {e}"
    if not rx.groupindex:
        return "needs at least one named group (?P<name>...)"
    return None


@register(
    "regex",
    description="an RE2 pattern whose named groups become fields",
    options={
        "pattern": Option(
            str, "RE2 pattern with named groups (?P<name>...)", required=True, check=check_pattern
        ),
        "types": types_option(),
    },
)
def regex_parser(opts: dict[str, Any]) -> Parser:
    rx = compile_pattern(opts["pattern"])
    types: dict[str, str] = opts.get("types") or {}
    unknown = sorted(set(types) - set(rx.groupindex))
    if unknown:
        raise ValueError(f"types name fields the pattern has no group for: {', '.join(unknown)}")
    convert = typer(types)
    groups = group_reader(rx)
    # (field, group position): unnamed groups are read but not kept
    named = sorted((index - 1, name) for name, index in rx.groupindex.items())

    def parse(text: str) -> dict[str, Any]:
        values = groups(text)
        if values is None:
            return failed(text, "regex", "no match")
        rec = {name: v for i, name in named if (v := values[i]) is not None}
        if convert is not None and (problem := convert(rec)):
            return failed(text, "regex", problem)
        return normalise(rec)[0]

    return parse


_DIRECT = _direct_works()
