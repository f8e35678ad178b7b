"""JSON lines of S3 objects: one record, or a list field expanded into one event per element.

A line `{"Records": [...]}` (CloudTrail's files, or any `expand: <field>`) is a
container, not a record: the 1,000-field limit and the per-record byte limit apply to
each element, never to the document. A line longer than `stream_bytes` is read
incrementally (`jsonstream`): the whole line is checked first (a malformed one stays
text, as a short one does), then its elements are parsed one at a time as the
pipeline takes them, so a 24 KB gzip line of two million `{}` never becomes two
million dicts at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from chalicelib.budget import Budget
from chalicelib.errors import DecodeError
from chalicelib.normalise import normalise
from chalicelib.parsers import fit_record, json_refusal, parse_message, unparsed
from chalicelib.sources import jsonstream

# (element, characters of JSON text it came from)
Items = Iterator[tuple[Any, int]]


def _expandable(doc: dict[str, Any], field: str | None) -> list[Any] | None:
    if field is not None:
        v = doc.get(field)
        return v if isinstance(v, list) else None
    v = doc.get("Records")  # CloudTrail's shape, expanded without being asked
    if isinstance(v, list) and (not v or isinstance(v[0], dict)):
        return v
    return None


Expanded = tuple[Callable[[], Items], dict[str, Any]]


def parse_line(
    text: str, field: str | None, b: Budget
) -> tuple[dict[str, Any] | None, Expanded | None]:
    """A JSON line -> (its record, held to the budget, None) or (None, (a maker of its
    elements with the characters each came from, the document's other fields))."""
    name = field or "Records"
    if len(text) > b.stream_bytes:
        context = _scan(text, name, field is None, b)
        if context is not None:
            return None, (lambda: _elements(text, name), context)
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return unparsed(text, f"json: {e}"), None
    if type(doc) is not dict:  # a line starting with "{" parses to an object or fails
        return unparsed(text, "json: not an object"), None
    items = _expandable(doc, field) if name in doc else None  # most lines: no list to expand
    if items is not None:
        if len(items) > b.payload_events:
            raise DecodeError("too-large", f"{len(items)} elements in one line")
        context = {k: v for k, v in doc.items() if k != name}
        fit_record(context, b)
        # Any element may be as long as the line: each is checked unless the line is short.
        size = len(text)
        return None, (lambda: ((x, size) for x in items), context)
    problem = json_refusal(doc, text)
    if problem is not None:
        return unparsed(text, problem), None
    return doc, None


def _scan(text: str, name: str, auto: bool, b: Budget) -> dict[str, Any] | None:
    """The document's other fields when the line holds the list to expand, the whole
    line checked as JSON; None sends it to the whole-line path (which keeps a malformed
    line as text). `auto`: `Records` expands only as CloudTrail's list of objects."""
    if f'"{name}"' not in text and "\\u" not in text:  # the key, unless written escaped
        return None
    reader = jsonstream.Reader(text)
    found = False
    context: dict[str, Any] = {}
    try:
        for key in reader.members():
            if key == name and reader.peek() == "[" and not found:
                found = True
                for count, x in enumerate(reader.elements(), 1):
                    if count == 1 and auto and not isinstance(x, dict):
                        return None  # `Records` of something else: not CloudTrail's shape
                    if count > b.payload_events:
                        raise DecodeError("too-large", f"over {b.payload_events} elements")
            else:
                context[key] = reader.value()
        reader.end()
    except DecodeError as e:
        if e.stage == "too-large":
            raise
        return None
    if not found:
        return None
    return context if fit_record(context, b) is None else {}


def _elements(text: str, name: str) -> Items:
    reader = jsonstream.Reader(text)
    for key in reader.members():
        if key == name and reader.peek() == "[":
            start = reader.pos
            for x in reader.elements():
                yield x, reader.pos - start
                start = reader.pos
            return
        reader.value()


def element_record(item: Any, size: int, b: Budget) -> tuple[dict[str, Any], int | None]:
    """One expanded element -> (its record held to the budget, its time), as a line's."""
    if isinstance(item, dict):
        if size > 2 * b.max_fields:
            problem = fit_record(item, b)
            if problem is not None:
                text = orjson.dumps(item, default=str).decode()
                return unparsed(text, f"json: {problem}"), None
        return normalise(item)
    if isinstance(item, str):
        return parse_message(item)
    return {"message": item}, None
