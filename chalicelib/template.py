"""Safe message templates: `{tag}: {message}`, `{record.user} failed {count} times`.

A small substitution, not `str.format` (which would let a template reach object
attributes). Unknown or missing fields render as `-`; nothing here raises on
log content.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

from chalicelib.event import LogEvent, format_time

_FIELD = re2.compile(r"\{([A-Za-z0-9_@.-]+)\}")
MISSING = "-"


def pieces(template: str, pattern: Any = _FIELD) -> tuple[str, ...]:
    """A template split once into literal text and field names, alternating (literal,
    field, literal, ..., literal), so rendering an event is a join, never a regex."""
    return _pieces(template, pattern)


@lru_cache(maxsize=1024)
def _pieces(template: str, pattern: Any) -> tuple[str, ...]:
    return tuple(pattern.split(template))


LEVEL_ORDER = {
    "TRACE": 0,
    "DEBUG": 1,
    "INFO": 2,
    "NOTICE": 3,
    "WARN": 4,
    "WARNING": 4,
    "ERROR": 5,
    "CRITICAL": 6,
    "FATAL": 6,
    "ALERT": 7,
    "EMERGENCY": 8,
}


def lookup(ev: LogEvent, name: str, extra: dict[str, Any]) -> Any:
    if name in extra:
        return extra[name]
    if name == "tag":
        return ev.tag
    if name == "time":
        return format_time(ev.time)
    if name == "id":
        return ev.id
    path = name.removeprefix("record.")
    cur: Any = ev.record
    if path in cur:
        return cur[path]
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def render(template: str, ev: LogEvent, extra: dict[str, Any], escape: Callable[[str], str]) -> str:
    parts = list(pieces(template))
    for i in range(1, len(parts), 2):
        v = lookup(ev, parts[i], extra)
        parts[i] = MISSING if v is None else escape(v if isinstance(v, str) else str(v))
    return "".join(parts)


def severity(events: list[LogEvent]) -> str:
    """The highest level among events (by the usual order), or INFO."""
    best, rank = "INFO", -1
    for ev in events:
        lv = ev.record.get("level")
        if isinstance(lv, str):
            r = LEVEL_ORDER.get(lv, 2)
            if r > rank:
                best, rank = lv, r
    return best


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
