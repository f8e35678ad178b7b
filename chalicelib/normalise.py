"""Field-name reconciliation: one vocabulary for message, level and time.

Applications disagree on names (`event`, `msg`, `log` for the message;
`severity`, `lvl`, `loglevel` for the level). Sluice moves them to `message` and
`level` (upper-cased) so rules and dashboards see one schema. The record keeps
its time field as written (the archive is an audit trail); the event's own time
is taken from it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

MESSAGE_ALIASES = ("event", "msg", "log")
LEVEL_ALIASES = ("severity", "lvl", "loglevel", "log_level")
TIME_FIELDS = ("time", "timestamp", "@timestamp", "ts", "eventTime")

# An event's own time chooses its archive partition while it lies within this window
# around its arrival (CloudWatch Logs' own limits on PutLogEvents: 14 days back, 2 hours
# ahead). Outside it (a clock in 1999 or 2300) the event is archived under its arrival
# hour, where Athena's partition projection finds it; its time is kept as it is.
PAST_MS = 14 * 86_400_000
FUTURE_MS = 2 * 3_600_000


# pino / bunyan numeric levels
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}


def normalise(record: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """Reconcile aliases in place; return (record, time in epoch ms or None).

    The common record (`message` and a string `level` already named so, its time in
    `time` or `timestamp`) costs a few dict lookups; the alias loops run only for the rest."""
    # `in` and `[]` rather than `.get()`: a method call costs more than the two lookups
    # (most probes here miss, and a miss is one lookup).
    if "message" not in record:
        # MESSAGE_ALIASES in order, written out (a loop costs more than the tests).
        if "event" in record and type(record["event"]) is str:
            record["message"] = record.pop("event")
        elif "msg" in record and type(record["msg"]) is str:
            record["message"] = record.pop("msg")
        elif "log" in record and type(record["log"]) is str:
            record["message"] = record.pop("log")
    level = record["level"] if "level" in record else None
    if level is None:  # LEVEL_ALIASES in order, written out
        if "severity" in record:
            level = record.pop("severity")
        elif "lvl" in record:
            level = record.pop("lvl")
        elif "loglevel" in record:
            level = record.pop("loglevel")
        elif "log_level" in record:
            level = record.pop("log_level")
    if level is not None:
        t = type(level)
        if t is str:
            record["level"] = level.upper()
        elif t is int:
            record["level"] = _NUMERIC_LEVELS.get(level, str(level))
        else:
            record["level"] = level
    if "time" in record and (value := record["time"]) is not None:
        pass
    elif "timestamp" in record and (value := record["timestamp"]) is not None:
        pass
    else:
        for key in _OTHER_TIME_FIELDS:
            if key in record and (value := record[key]) is not None:
                break
        else:
            return record, None
    t = type(value)
    if t is str:
        # A time in a second already read (the events of a batch share seconds, in
        # every shape a batch mixes): only its milliseconds are left to read.
        second = _SECOND_MS.get(value[:19])
        if second is not None:
            ms = _MILLIS.get(value[19:23])
            if ms is not None and value[23:] in _MS_TAILS:
                return record, second + ms
    elif t is int and 100_000_000_000 <= value < 100_000_000_000_000:
        return record, value  # epoch ms, the commonest number (as `to_epoch_ms` reads it)
    return record, to_epoch_ms(value)


def _ascii_digits(s: str) -> bool:
    """`s` is one or more ASCII digits (`str.isdigit` also accepts superscripts, which
    `int` refuses, and other scripts' digits, which `int` reads)."""
    return s.isdigit() and s.isascii()


_OTHER_TIME_FIELDS = TIME_FIELDS[2:]
_INFINITIES = (float("inf"), float("-inf"))
# `YYYY-MM-DD[T ]HH:MM:SS` -> its epoch second in ms, for every second `_iso_fast` has
# read (it checks the shape and the calendar before it adds one). Keyed by the text, so
# a batch that mixes `T` and space forms, or several clocks, still finds its seconds.
_SECOND_MS: dict[str, int] = {}
_SECOND_CACHE_MAX = 4096
# The milliseconds of `.fff` / `,fff` (exactly three ASCII digits) and of no fraction at
# all: a table, so a time in a known second costs two lookups (`int` would also read
# `1_2`, ` 12` or other scripts' digits, which a time must not contain).
_MILLIS: dict[str, int] = {"": 0, **{f"{p}{i:03d}": i for p in ".," for i in range(1000)}}


def to_epoch_ms(value: Any) -> int | None:
    """ISO 8601 text or epoch seconds / ms / µs / ns -> epoch ms (UTC); None if neither.

    Magnitude decides the unit: 1e11 s is the year 5138, 1e11 ms is 1973.
    """
    t = type(value)
    if t is int and 100_000_000_000 <= value < 100_000_000_000_000:
        # Epoch ms, the commonest number (exact: below 2**53, as the float path reads it).
        return value if value <= _MAX_MS else None
    if t is int or t is float:
        v = float(value)
        if v != v or v in _INFINITIES:
            return None
        a = abs(v)
        if a < 1e11:
            # Seconds with a fraction are rarely exact in binary (1.001 * 1000 is
            # 1000.9999999999999): take the nearest ms when within float error.
            f = v * 1000
            ms = round(f) if abs(f - round(f)) < 1e-3 else int(f)
        elif a < 1e14:
            ms = int(v)
        elif a < 1e17:
            ms = int(v // 1000)
        else:
            ms = int(v // 1_000_000)
        # Years 1-9999 only: {"time": 1e300} would overflow time.gmtime in the archive.
        return ms if _MIN_MS <= ms <= _MAX_MS else None
    if t is str:
        if not value or len(value) > 64:
            return None
        second = _SECOND_MS.get(value[:19])
        if second is not None:
            millis = _MILLIS.get(value[19:23])
            if millis is not None and value[23:] in _MS_TAILS:
                return second + millis
        if len(value) >= 19 and value[4] == "-" and value[13] == ":":
            fast = _iso_fast(value)
            if fast is not None:
                return fast
        if _ascii_digits(value.replace(".", "", 1)):
            return to_epoch_ms(float(value))
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
        # Integer arithmetic on timedeltas: float seconds * 1000 loses a millisecond
        # for ~0.6% of ISO times (…46.529Z read as …46.528).
        if dt.tzinfo is None:
            # A time without a zone is taken as UTC (what AWS services write).
            return (dt - _EPOCH_NAIVE) // _ONE_MS
        return (dt - _EPOCH_UTC) // _ONE_MS
    return None


# UTC offsets `_iso_fast` reads besides `Z` (any other offset takes the general path).
_UTC_OFFSETS = frozenset(("+00:00", "+0000", "+00"))
# What may follow `.fff` in a time read from a known second.
_MS_TAILS = frozenset(("", "Z", *_UTC_OFFSETS))


def _iso_fast(value: str) -> int | None:
    """`YYYY-MM-DD[T ]HH:MM:SS[(.|,)fraction][Z|+00:00|+0000|+00]` or no zone (taken as
    UTC), the shapes most logs and loggers write: the events of a batch share seconds,
    so the second is parsed once (cached) and only the fraction per event; ~0.1 µs
    against ~0.6 for the general path. None: not this shape (the general path decides);
    where it answers, it answers as `datetime.fromisoformat` would (a property test)."""
    head, tail = value[:19], value[19:]
    if tail:
        if tail[-1] == "Z":
            tail = tail[:-1]
        else:
            plus = tail.find("+")
            if plus >= 0:
                if tail[plus:] not in _UTC_OFFSETS:
                    return None  # another offset: the general path
                tail = tail[:plus]
    if tail and (tail[0] not in ".," or not _ascii_digits(tail[1:]) or len(tail) > 10):
        return None
    second = _SECOND_MS.get(head)
    if second is None:
        if head[10] not in "T " or not _ascii_digits(head[:4]):
            return None
        try:
            dt = datetime.fromisoformat(head)
        except ValueError:
            return None
        if dt.tzinfo is not None:
            return None
        second = (dt - _EPOCH_NAIVE) // _ONE_S * 1000
        if len(_SECOND_MS) >= _SECOND_CACHE_MAX:
            _SECOND_MS.clear()
        _SECOND_MS[head] = second
    return second + (int(tail[1:4].ljust(3, "0")) if tail else 0)


_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_ONE_S = timedelta(seconds=1)
_MIN_MS = (datetime(1, 1, 1) - _EPOCH_NAIVE) // _ONE_MS
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000) - _EPOCH_NAIVE) // _ONE_MS


def in_range(ms: int | float) -> bool:
    """Whether epoch ms lies in years 1-9999, the times the archive can partition and
    format (`time.gmtime` overflows past them)."""
    return _MIN_MS <= ms <= _MAX_MS
