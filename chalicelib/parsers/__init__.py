"""Message parsers, registered by name (see registry.py).

`parse_message` is the automatic path every source uses: JSON objects are
detected by their first character (no parse attempt on plain text), AWS Lambda's
platform and runtime lines by their prefix (text or JSON log format, every managed
runtime's text lines, JVM logger headers); anything else stays in `message`.
Named parsers are selectable per rule.
"""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.budget import Budget, budget
from chalicelib.normalise import normalise, to_epoch_ms
from chalicelib.parsers.lambda_json import is_platform as _is_platform
from chalicelib.parsers.lambda_json import platform_record as _platform_record
from chalicelib.parsers.lambda_json import runtime_record as _runtime_record
from chalicelib.parsers.lambda_platform import PREFIXES as _PLATFORM_PREFIXES
from chalicelib.parsers.lambda_platform import parse_platform as _parse_platform
from chalicelib.parsers.lambda_platform import parse_runtime_line as _parse_runtime
from chalicelib.parsers.lambda_runtime import parse_runtime_text as _parse_runtime_text

# [DEBUG] [ERROR] [INFO] [WARN] [TRACE] [FATAL] [CRITICAL]
_RUNTIME_LEVEL_STARTS = frozenset("DEIWTFC")
# The first characters of Lambda's platform lines: one set lookup spares every other
# text line (a JVM's, an access log's) the six prefix tests.
_PLATFORM_STARTS = frozenset(p[0] for p in _PLATFORM_PREFIXES)
# Node.js, .NET and JVM lines start with a time; Ruby's with a level letter and ", [".
_RUNTIME_TEXT_STARTS = frozenset("0123456789DIWEFA")

# Limits on what one message may become (the archive, Athena and Slack all have
# their own ceilings; past these the text is kept, flagged, not structured). The live
# values come from the function's memory (`chalicelib.budget`); these are the floors:
# 256 KiB is CloudWatch's largest event, so nothing CloudWatch sends is cut.
MAX_MESSAGE_CHARS = 256 * 1024
# Glue/Athena handle nested structs to a few dozen levels; orjson refuses past 254.
MAX_DEPTH = 64
# A record wider than this (values at every depth, list elements included) is almost
# always data mistaken for a log line.
MAX_FIELDS = 1000
# A JSON text shorter than this cannot hold MAX_FIELDS values (each but the first of a
# container needs a comma) nor a string over the field limit: no walk is needed.
_WALK_MIN = 2 * MAX_FIELDS
# Flagged paths listed per record at most (the flag itself says how many were cut).
_MAX_FLAGGED = 20


def _depth(v: Any, d: int = 1) -> int:
    if d > MAX_DEPTH:
        return d
    if type(v) is dict:
        return max((_depth(x, d + 1) for x in v.values()), default=d)
    if type(v) is list:
        return max((_depth(x, d + 1) for x in v), default=d)
    return d - 1


def fit_record(rec: dict[str, Any], b: Budget | None = None) -> str | None:
    """Hold `rec` to the budget, in place: every string at every depth longer than the
    field limit is cut, and once the record's strings reach the record limit later ones
    are cut to what remains; cut fields are flagged (`truncated`, `truncated_fields`
    {path: original length}, and `original_length` for `message`). Returns why the
    record cannot be kept structured (too many values, too deep, a key too long), or None.
    Iterative: a document nested past the limit is refused, not recursed into."""
    b = b or budget()
    field, room, limit = b.field_chars, b.record_chars, b.max_fields
    values = len(rec)
    if values > limit:
        return f"over {limit} fields"
    cut: dict[str, int] = {}
    stack: list[tuple[Any, str, int]] = [(rec, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        items = node.items() if type(node) is dict else enumerate(node)
        for k, v in items:
            t = type(v)
            if t is str:
                n = len(v)
                keep = max(0, min(n, field, room))
                if keep < n:
                    node[k] = v[:keep]
                    cut[f"{path}{k}"] = n
                room -= keep
            elif t is dict or t is list:
                if depth >= b.max_depth:
                    return f"nested over {b.max_depth} levels"
                values += len(v)
                if values > limit:
                    return f"over {limit} fields"
                stack.append((v, f"{path}{k}.", depth + 1))
            if type(k) is str:
                if len(k) > field:
                    return f"a key over {field} characters"
                room -= len(k)
    if cut:
        rec["truncated"] = True
        if "message" in cut:
            rec["original_length"] = cut["message"]
        rec["truncated_fields"] = dict(list(cut.items())[:_MAX_FLAGGED])
    return None


def unparsed(text: str, reason: str) -> dict[str, Any]:
    """The record of a text that stays text: cut to the field limit, with the reason."""
    cut, flags = cap_message(text)
    return {"message": cut, "parse_error": reason, **(flags or {})}


def json_refusal(doc: dict[str, Any], text: str) -> str | None:
    """Why the object parsed from `text` cannot be a record (checked, and its strings cut,
    in place), or None. A short flat record (the common case) costs one pass over its
    values: nesting depth and 64-bit integers are only examined where they can occur."""
    if len(text) > _WALK_MIN or len(doc) > MAX_FIELDS:
        problem = fit_record(doc)
        if problem is not None:
            return f"json: {problem}"
        return _INTEGER_REFUSAL if rounded_integer(doc, text) else None
    nested = big = False
    for x in doc.values():
        t = type(x)
        if t is str or t is int:  # most values: tested first, the loop's cost is per value
            continue
        if t is float:
            if x >= _INT64 or x <= _MINUS_INT64:
                big = True
        elif t is dict or t is list:
            nested = True
    if nested:
        # Depth needs at least that many brackets: count them (C speed) before walking.
        if text.count("{") + text.count("[") > MAX_DEPTH and _depth(doc) > MAX_DEPTH:
            return f"json: nested over {MAX_DEPTH} levels"
        return _INTEGER_REFUSAL if rounded_integer(doc, text) else None
    return _INTEGER_REFUSAL if big and rounded_integer(doc, text) else None


_INTEGER_REFUSAL = "json: integer beyond 64 bits"


# orjson reads an integer beyond 64 bits as the nearest double (a 30-digit id would be
# archived as 1.2345678901234568e+29): such a JSON message keeps its exact text instead.
_INT64 = 2.0**63
_MINUS_INT64 = -_INT64
# Every ASCII digit to "0": a run of 19 digits becomes a run of 19 zeros (no other
# character is "0"). One linear pass in C, run only when a double could be such an integer.
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")
_NINETEEN_DIGITS = "0" * 19


def _has_long_integer(text: str) -> bool:
    """Whether `text` holds a run of 19 ASCII digits (2**63 has 19)."""
    return _NINETEEN_DIGITS in text.translate(_DIGITS_AS_ZERO)


def rounded_integer(v: Any, text: str) -> bool:
    """True if the parsed `v` (a dict or list) holds a float orjson made from an integer
    of `text` beyond 64 bits. A flat record costs ~0.2 µs; only integral floats from
    +-2**63 outward are then confirmed against a run of 19 digits in the text (a linear
    scan, not a regex: the text is untrusted)."""
    for x in v.values() if type(v) is dict else v:
        t = type(x)
        if t is float:
            if (x >= _INT64 or x <= -_INT64) and x.is_integer() and _has_long_integer(text):
                return True
        elif (t is dict or t is list) and rounded_integer(x, text):
            return True
    return False


def cap_message(message: str) -> tuple[str, dict[str, Any] | None]:
    """Cut a message above the field limit; the flags say it was cut and from what."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message, None
    limit = budget().field_chars
    if len(message) <= limit:
        return message, None
    return message[:limit], {"truncated": True, "original_length": len(message)}


def lambda_json(doc: dict[str, Any], text: str) -> dict[str, Any]:
    """A JSON object in Lambda's JSON log format as the text format's record (platform
    events flattened, the runtime's request id named `request_id`); any other object as
    it is. Before `normalise`, for every source of JSON lines."""
    if "record" in doc and _is_platform(doc):
        return _platform_record(doc, text)
    if "timestamp" in doc and ("requestId" in doc or "AWSRequestId" in doc):
        _runtime_record(doc)
    return doc


def parse_message(
    message: str, max_chars: int | None = MAX_MESSAGE_CHARS
) -> tuple[dict[str, Any], int | None]:
    """Message text -> (record, event time in epoch ms if the record carries one).

    Never raises: a message that looks like JSON but is not keeps its text in
    `message` with `parse_error` set.
    """
    if message[-1:] == "\n":  # (cheaper than a call to endswith)
        message = message.rstrip("\r\n")
    if max_chars is not None and len(message) > max_chars and len(message) > budget().field_chars:
        cut, flags = cap_message(message)
        return {"message": cut, **(flags or {})}, None
    first = message[:1]
    if first == "{":
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError as e:
            return unparsed(message, f"json: {e}"), None
        if type(doc) is dict:
            problem = json_refusal(doc, message)
            if problem is not None:
                return unparsed(message, problem), None
            if "record" in doc or "timestamp" in doc:
                doc = lambda_json(doc, message)
            return normalise(doc)
        return {"message": message}, None
    # Runtime lines come out already in the one vocabulary (`message`, `level`, `time`
    # text): only the level's case and the time are left to do, not `normalise`'s search.
    if first == "[" and message[1:2] in _RUNTIME_LEVEL_STARTS:
        rec = _parse_runtime(message)
        if rec is not None:
            rec["level"] = rec["level"].upper()
            return rec, to_epoch_ms(rec["time"])
    elif first in _PLATFORM_STARTS and message.startswith(_PLATFORM_PREFIXES):
        rec = _parse_platform(message)
        if rec is not None:
            return rec, None
    elif first in _RUNTIME_TEXT_STARTS:
        rec = _parse_runtime_text(message)
        if rec is not None:
            return rec, to_epoch_ms(rec["time"])
    return {"message": message}, None
