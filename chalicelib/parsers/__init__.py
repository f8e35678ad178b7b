"""Message parsers, registered by name.

`parse_message` is the automatic path every source uses: JSON objects are
detected by their first character (no parse attempt on plain text), AWS Lambda's
platform and runtime lines by their prefix; anything else stays in `message`.
Named parsers (`@register("logfmt")`...) are selectable per rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from chalicelib.normalise import normalise

Parser = Callable[[str], dict[str, Any]]
_registry: dict[str, Parser] = {}


def register(name: str) -> Callable[[Parser], Parser]:
    def deco(fn: Parser) -> Parser:
        if name in _registry:
            raise ValueError(f"parser {name!r} registered twice")
        _registry[name] = fn
        return fn

    return deco


def get(name: str) -> Parser:
    return _registry[name]


def names() -> list[str]:
    return sorted(_registry)


from chalicelib.parsers import lambda_platform  # noqa: E402  (registers parsers)

_PLATFORM_PREFIXES: tuple[str, ...] = lambda_platform.PREFIXES
_parse_platform = lambda_platform.parse_platform
_parse_runtime = lambda_platform.parse_runtime_line


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


_RUNTIME_LEVEL_STARTS = frozenset(
    "DEIWTFC"
)  # [DEBUG] [ERROR] [INFO] [WARN] [TRACE] [FATAL] [CRITICAL]
