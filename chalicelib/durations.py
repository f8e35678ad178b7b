"""Durations as rules write them: `30s`, `5m`, `1h`, `2d`, or a number of seconds."""

from __future__ import annotations

from typing import Any

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(v: Any) -> int | None:
    """`30s`, `5m`, `1h`, `2d` or a positive number of seconds -> seconds (None if malformed)."""
    if type(v) is int:
        return v if v > 0 else None
    if not isinstance(v, str) or len(v) < 2:
        return None
    n, unit = v[:-1], v[-1]
    if unit not in UNITS or not n.isdigit() or int(n) <= 0:
        return None
    return int(n) * UNITS[unit]
