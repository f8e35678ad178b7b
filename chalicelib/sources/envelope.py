"""Typed reads of the envelope fields sources copy from a trigger's payload.

A trigger's envelope (a CloudWatch subscription document's `logGroup`, a Kinesis record's
`partitionKey`, an S3 notification's `object.key`) is JSON that anyone able to write to
the stream, queue or subscription can shape. A field of the wrong type copied into an
event's `source` would fail far from where it came in: an object nested 300 deep is read
by orjson (1,024 levels) but cannot be written by it (254), so the archive refused the
whole batch. Each read here checks the type and raises a DecodeError that names the
field and what it held (by type, never its text: the value may be megabytes or nested
1,000 deep), so the record or message carrying it is dead-lettered alone.

Absent and null are the same: an optional field is None. The one coercion is an
integer where text is expected, for fields whose text is a number anyway (a CloudWatch
event id, a Kinesis sequence number): its decimal text, as AWS writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.errors import DecodeError


def kind(value: Any) -> str:
    """What a JSON value is, in words (never its content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def text(
    doc: Mapping[str, Any],
    key: str,
    where: str,
    *,
    required: bool = False,
    numeric: bool = False,
    limit: int = 4096,
) -> str | None:
    """`doc[key]` as a string (None when absent or null and not `required`); an integer
    when `numeric` becomes its decimal text. Longer than `limit` characters is refused:
    these fields name things (groups, streams, keys), they do not carry log text."""
    value = doc.get(key)
    if value is None and not required:
        return None
    if numeric and type(value) is int and value >= 0:
        return str(value)
    if not isinstance(value, str):
        raise DecodeError("shape", f"{where}{key} is {kind(value)}, not a string")
    if len(value) > limit:
        raise DecodeError("shape", f"{where}{key} is {len(value)} characters (limit {limit})")
    return value


def texts(doc: Mapping[str, Any], key: str, where: str, *, limit: int = 100) -> list[str]:
    """`doc[key]` as a list of strings (empty when absent or null)."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError("shape", f"{where}{key} is {kind(value)}, not a list of strings")
    if len(value) > limit:
        raise DecodeError("shape", f"{where}{key} has {len(value)} items (limit {limit})")
    for i, item in enumerate(value):
        if not isinstance(item, str) or len(item) > 4096:
            raise DecodeError("shape", f"{where}{key}[{i}] is {kind(item)}, not a string")
    return value


def number(doc: Mapping[str, Any], key: str, where: str) -> int | float | None:
    """`doc[key]` as a number (None when absent or null); booleans are not numbers."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError("shape", f"{where}{key} is {kind(value)}, not a number")
    return value
