"""Field-name reconciliation: one vocabulary for message, level and time.

Applications disagree on names (`event`, `msg`, `log` for the message;
`severity`, `lvl`, `loglevel` for the level). Sluice moves them to `message` and
`level` (upper-cased) so rules and dashboards see one schema. The record keeps
its time field as written (the archive is an audit trail); the event's own time
is taken from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MESSAGE_ALIASES = ("event", "msg", "log")
LEVEL_ALIASES = ("severity", "lvl", "loglevel", "log_level")
TIME_FIELDS = ("time", "timestamp", "@timestamp", "ts")

# pino / bunyan numeric levels
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}


def normalise(record: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """Reconcile aliases in place; return (record, time in epoch ms or None)."""
    if "message" not in record:
        for alias in MESSAGE_ALIASES:
            value = record.get(alias)
            if type(value) is str:
                record["message"] = record.pop(alias)
                break
    level = record.get("level")
    if level is None:
        for alias in LEVEL_ALIASES:
            if alias in record:
                level = record.pop(alias)
                break
    if level is not None:
        if type(level) is str:
            record["level"] = level.upper()
        elif type(level) is int:
            record["level"] = _NUMERIC_LEVELS.get(level, str(level))
        else:
            record["level"] = level
    for key in TIME_FIELDS:
        value = record.get(key)
        if value is not None:
            return record, to_epoch_ms(value)
    return record, None


def to_epoch_ms(value: Any) -> int | None:
    """ISO 8601 text or epoch seconds / ms / µs / ns -> epoch ms (UTC); None if neither.

    Magnitude decides the unit: 1e11 s is the year 5138, 1e11 ms is 1973.
    """
    t = type(value)
    if t is int or t is float:
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            return None
        a = abs(v)
        if a < 1e11:
            return int(v * 1000)
        if a < 1e14:
            return int(v)
        if a < 1e17:
            return int(v // 1000)
        return int(v // 1_000_000)
    if t is str:
        if not value or len(value) > 64:
            return None
        if value[0].isdigit() and value.replace(".", "", 1).isdigit():
            return to_epoch_ms(float(value))
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
        if dt.tzinfo is None:
            # A time without a zone is taken as UTC (what AWS services write).
            return int((dt - _EPOCH_NAIVE).total_seconds() * 1000)
        return int(dt.timestamp() * 1000)
    return None


_EPOCH_NAIVE = datetime(1970, 1, 1)
