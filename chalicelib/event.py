"""The event model (Fluentd's tag/time/record plus source and id) and the ledger."""

from __future__ import annotations

import hashlib
import time as _time
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

from chalicelib.records import record

# The source fields an event id is unique within. CloudWatch Logs documents an event's id,
# not its scope: the same id may appear in two log groups, and Kinesis fan-in and
# cross-account destinations mix groups and accounts. The Kinesis record or S3 object
# that carried a CloudWatch event is transport, not origin: the same event re-sent in
# another record stays the same event. Other kinds build ids from their transport's
# position (stream:shard:sequence, the object's digest), unique within account and region.
ORIGIN_FIELDS: dict[str, tuple[str, ...]] = {"cloudwatch": ("account", "log_group", "log_stream")}
_ORIGIN = ("account", "region")


@record()
class LogEvent:
    """One log event.

    `time` is UTC epoch milliseconds (formatted only when archived). `source` is
    shared by every event of one payload and must be treated as read-only.
    """

    __slots__ = ("arrival", "count", "id", "record", "size", "source", "tag", "time")

    tag: str
    time: int
    record: dict[str, Any]
    source: dict[str, Any]
    id: str
    # How many input events this one stands for (a joined stack trace stands for
    # all its lines); the ledger counts input events.
    count: int
    # Characters of input text it came from, when large: pipeline slices are cut by
    # events and by these (chalicelib.budget), so a slice of big events stays small.
    size: int
    # When the source received it (epoch ms; -1: unknown). The archive partitions an
    # event by its own time only within a sane window around this (actions/archive.py).
    arrival: int

    def __init__(
        self,
        tag: str,
        time: int,
        record: dict[str, Any],
        source: dict[str, Any],
        id: str,
        count: int = 1,
        size: int = 0,
        arrival: int = -1,
    ) -> None:
        self.tag = tag
        self.time = time
        self.record = record
        self.source = source
        self.id = id
        self.count = count
        self.size = size
        self.arrival = arrival

    def identity(self) -> str:
        """Who this event is, for dedupe across invocations: its id qualified by the origin
        the id is unique within (`ORIGIN_FIELDS`), as a 32-character digest. A retry brings
        the same origin and id (the same identity); another log group, stream or account
        with the same id is another event."""
        src = self.source
        kind = str(src.get("kind"))
        parts = [kind, *(str(src.get(f) or "") for f in ORIGIN_FIELDS.get(kind, _ORIGIN))]
        parts.append(self.id)
        return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()

    def envelope(self) -> dict[str, Any]:
        """The archive line's shape, as a dict (the archive builds the bytes itself)."""
        return {
            "tag": self.tag,
            "time": format_time(self.time),
            "record": self.record,
            "source": self.source,
            "account": self.source.get("account"),
            "region": self.source.get("region"),
            "id": self.id,
        }


class LazyEvents:
    """Events made each time they are iterated, from input held compactly (a record's
    text, a payload's gzip bytes): a 1 MiB input can stand for a million events, which
    the pipeline takes a slice at a time. `len()` is the number of input events when
    the source counted them while checking the input."""

    __slots__ = ("_count", "_make")

    def __init__(self, make: Callable[[], Iterator[LogEvent]], count: int = -1) -> None:
        self._make = make
        self._count = count

    def __iter__(self) -> Iterator[LogEvent]:
        return self._make()

    def __len__(self) -> int:
        if self._count < 0:
            self._count = sum(ev.count for ev in self._make())
        return self._count


def in_time_order(events: list[LogEvent]) -> list[LogEvent]:
    """`events` from the earliest to the latest time (stable for equal times). Batches are
    in arrival order, which is not time order (a Kinesis stream mixing groups, a retried
    delivery, a clock-skewed host): alerts name the first and last events by time."""
    if all(a.time <= b.time for a, b in pairwise(events)):
        return events
    return sorted(events, key=_event_time)


def _event_time(ev: LogEvent) -> int:
    return ev.time


# What encoding one event as JSON can raise: orjson's TypeError (nesting past 254 levels,
# integers beyond 64 bits, non-string keys), a time the calendar cannot format
# (OverflowError, ValueError, OSError), recursion. Caught per event wherever events are
# written (archive, forwards, dead letters), so one event's failure is its own.
UNENCODABLE = (TypeError, ValueError, OverflowError, OSError, RecursionError)

_second_cache: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{i:03d}Z" for i in range(1000))  # 0.12 µs against 0.36 for an f-string


def format_time(ms: int) -> str:
    """Epoch ms -> '2026-11-26T10:07:01.123Z'. Events of one payload share seconds,
    so the formatted second is cached (strftime is ~1 µs; the cache hit ~0.15)."""
    global _second_cache
    s, frac = divmod(ms, 1000)
    cached_s, prefix = _second_cache
    if s != cached_s:
        t = _time.gmtime(s)
        # Built by hand: strftime's %Y does not zero-pad years below 1000.
        prefix = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        _second_cache = (s, prefix)
    return prefix + _MILLIS[frac]


@record()
class Ledger:
    """What happened to each input event of one invocation.

    Every received event ends in exactly one of archived, dropped (by a named rule)
    or dead_lettered (with a reason). `alerts` counts messages sent (Slack, SNS);
    `actions_failed` counts action deliveries sent to the dead-letter queue whose
    events were nevertheless archived or dropped.
    """

    __slots__ = (
        "actions_failed",
        "alerts",
        "archived",
        "dead_letter_reasons",
        "dead_lettered",
        "dropped",
        "dropped_by",
        "errors",
        "received",
        "rules",
    )

    received: int
    archived: int
    dropped: int
    dead_lettered: int
    alerts: int
    actions_failed: int
    dropped_by: Counter[str]
    dead_letter_reasons: Counter[str]
    # rule id -> matched, dropped, alerted, suppressed, forwarded, failed
    rules: dict[str, Counter[str]]
    errors: list[str]

    def __init__(
        self,
        received: int = 0,
        archived: int = 0,
        dropped: int = 0,
        dead_lettered: int = 0,
        alerts: int = 0,
        actions_failed: int = 0,
        dropped_by: Counter[str] | None = None,
        dead_letter_reasons: Counter[str] | None = None,
        rules: dict[str, Counter[str]] | None = None,
        errors: list[str] | None = None,
    ) -> None:
        self.received = received
        self.archived = archived
        self.dropped = dropped
        self.dead_lettered = dead_lettered
        self.alerts = alerts
        self.actions_failed = actions_failed
        self.dropped_by = Counter() if dropped_by is None else dropped_by
        self.dead_letter_reasons = Counter() if dead_letter_reasons is None else dead_letter_reasons
        self.rules = {} if rules is None else rules
        self.errors = [] if errors is None else errors

    def rule(self, rule_id: str) -> Counter[str]:
        c = self.rules.get(rule_id)
        if c is None:
            c = self.rules[rule_id] = Counter()
        return c

    def add_counts(self, rule_id: str, counts: dict[str, int]) -> None:
        """Add `counts` to the rule's counters (a rule new to the ledger takes them as
        they are, without Counter.update's mapping check)."""
        c = self.rules.get(rule_id)
        if c is None:
            c = self.rules[rule_id] = Counter()
            dict.update(c, counts)
        else:
            for name, n in counts.items():
                c[name] += n

    @property
    def lost(self) -> int:
        return self.received - self.archived - self.dropped - self.dead_lettered

    def balanced(self) -> bool:
        return self.lost == 0

    def drop(self, rule_id: str, n: int = 1) -> None:
        self.dropped += n
        self.dropped_by[rule_id] += n

    def dead_letter(self, reason: str, n: int) -> None:
        self.dead_lettered += n
        self.dead_letter_reasons[reason] += n

    def merge(self, other: Ledger) -> None:
        self.received += other.received
        self.archived += other.archived
        self.dropped += other.dropped
        self.dead_lettered += other.dead_lettered
        self.alerts += other.alerts
        self.actions_failed += other.actions_failed
        self.dropped_by.update(other.dropped_by)
        self.dead_letter_reasons.update(other.dead_letter_reasons)
        for rule_id, c in other.rules.items():
            self.rule(rule_id).update(c)
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "archived": self.archived,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "alerts": self.alerts,
            "actions_failed": self.actions_failed,
            "lost": self.lost,
            "dropped_by": dict(self.dropped_by),
            "dead_letter_reasons": dict(self.dead_letter_reasons),
            "rules": {k: dict(v) for k, v in self.rules.items()},
            **({"errors": self.errors[:20]} if self.errors else {}),
        }
