"""Message parsers, registered by name (see registry.py).

`parse_message` is the automatic path every source uses: JSON objects are
detected by their first character (no parse attempt on plain text), AWS Lambda's
platform and runtime lines by their prefix; anything else stays in `message`.
Named parsers are selectable per rule.
"""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.normalise import normalise
from chalicelib.parsers.lambda_platform import PREFIXES as _PLATFORM_PREFIXES
from chalicelib.parsers.lambda_platform import parse_platform as _parse_platform
from chalicelib.parsers.lambda_platform import parse_runtime_line as _parse_runtime

# [DEBUG] [ERROR] [INFO] [WARN] [TRACE] [FATAL] [CRITICAL]
_RUNTIME_LEVEL_STARTS = frozenset("DEIWTFC")


def parse_message(message: str) -> tuple[dict[str, Any], int | None]:
    """Message text -> (record, event time in epoch ms if the record carries one).

    Never raises: a message that looks like JSON but is not keeps its text in
    `message` with `parse_error` set.
    """
    if message.endswith("\n"):
        message = message.rstrip("\r\n")
    first = message[:1]
    if first == "{":
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError as e:
            return {"message": message, "parse_error": f"json: {e}"}, None
        if type(doc) is dict:
            return normalise(doc)
        return {"message": message}, None
    if first == "[" and message[1:2] in _RUNTIME_LEVEL_STARTS:
        rec = _parse_runtime(message)
        if rec is not None:
            return normalise(rec)
    elif message.startswith(_PLATFORM_PREFIXES):
        rec = _parse_platform(message)
        if rec is not None:
            return rec, None
    return {"message": message}, None
