"""What every `forward` sink shares: the record bytes, templates, size-bounded chunks,
retries with jittered backoff inside the invocation's time, and the outcome.

The outcome keeps each undelivered event with its reason, so the action raises one
ActionError naming exactly those events: only they are dead-lettered. A destination
that refuses a number of records without saying which (OTLP's partial success) is
recorded as such: every event of that request is dead-lettered with the count and
the server's message, and only the count is counted as failed.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import re2

from chalicelib.errors import ActionError
from chalicelib.event import UNENCODABLE, LogEvent, format_time
from chalicelib.template import render

MiB = 1024 * 1024
# Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And
# Jitter", 2015): sleep uniform(0, min(CAP, BASE * 2**attempt)). A 250 ms base makes
# the third wait span up to 2 s, past the 1-second window of Kinesis' per-shard
# write limits (1 MB and 1,000 records per second), so a throttled shard recovers.
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 5.0
# Time kept back from retries for what follows them in the invocation: dead-lettering
# the failures (an SQS call or a few) and the ledger report.
RESERVE_MS = 5_000

T = TypeVar("T")


def sleep(seconds: float) -> None:
    """Module-level so tests can replace it and see the waits instead of sitting them out."""
    time.sleep(seconds)


@dataclass(slots=True)
class Failure:
    event: LogEvent
    reason: str
    retryable: bool


@dataclass(slots=True)
class Unnamed:
    """`refused` of `events` (one request) refused by a destination that did not say which."""

    events: list[LogEvent]
    refused: int
    reason: str


@dataclass(slots=True)
class Outcome:
    """What one delivery did: events delivered, requests made, events left behind."""

    delivered: int = 0
    requests: int = 0
    failures: list[Failure] = field(default_factory=list)
    unnamed: list[Unnamed] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures) + sum(u.refused for u in self.unnamed)

    def fail(self, events: Sequence[LogEvent], reason: str, retryable: bool) -> None:
        self.failures.extend(Failure(ev, reason, retryable) for ev in events)

    def refuse_unnamed(self, events: list[LogEvent], refused: int, reason: str) -> None:
        """A request whose events were accepted but `refused` of them, not named: the rest
        count as delivered; all are dead-lettered (not retryable) so none is lost."""
        refused = max(0, min(refused, len(events)))
        self.delivered += len(events) - refused
        if refused:
            self.unnamed.append(Unnamed(events, refused, reason))

    def error(self, action: str, destination: str) -> ActionError:
        """One ActionError for the failures: reasons counted, events named."""
        reasons = Counter(f.reason for f in self.failures)
        for u in self.unnamed:
            reasons[f"{u.reason} ({u.refused} of {len(u.events)} refused, not named)"] += u.refused
        summary = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(5))
        if len(reasons) > 5:
            summary += f"; {len(reasons) - 5} other reason(s)"
        failed = self.failed
        total = self.delivered + failed
        return ActionError(
            action,
            f"{destination}: {failed} of {total} event(s) not delivered: {summary}",
            retryable=any(f.retryable for f in self.failures),
            failed=[f.event for f in self.failures] + [ev for u in self.unnamed for ev in u.events],
            sent=self.delivered,
            failed_count=failed if self.unnamed else None,
        )


class Retry:
    """Attempts left for one delivery: bounded by `max_retries` and the invocation's time."""

    def __init__(self, max_retries: int, remaining_ms: Callable[[], int]) -> None:
        self.max_retries = max_retries
        self.remaining_ms = remaining_ms
        self.attempt = 0  # retries made so far
        self.out_of_time = False

    def wait(self, at_least_s: float = 0.0) -> bool:
        """Sleep before the next attempt; False when no attempt is left (count or time).

        `at_least_s` is a server's Retry-After: honoured, but never past the reserve."""
        if self.attempt >= self.max_retries:
            return False
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self.attempt + 1))
        delay = max(at_least_s, random.uniform(0, ceiling))
        if self.remaining_ms() - delay * 1000 < RESERVE_MS:
            self.out_of_time = True
            return False
        self.attempt += 1
        sleep(delay)
        return True

    def gave_up(self) -> str:
        """How the attempts ended, for a dead-letter reason."""
        n = self.attempt + 1
        why = ", invocation time running out" if self.out_of_time else ""
        return f"after {n} attempt{'s' if n > 1 else ''}{why}"

    def timeout_s(self, wanted: float) -> float:
        """A request timeout that cannot run into the reserve (at least 1 s)."""
        return max(1.0, min(wanted, (self.remaining_ms() - RESERVE_MS) / 1000))


def chunks(
    items: Sequence[T], size: Callable[[T], int], max_items: int, max_bytes: int
) -> Iterator[list[T]]:
    """Consecutive runs of at most `max_items` items and `max_bytes` bytes (an item
    larger than `max_bytes` alone makes a run: the caller decides whether it may go)."""
    run: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if run and (len(run) == max_items or total + n > max_bytes):
            yield run
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield run


def envelopes(events: Sequence[LogEvent]) -> tuple[list[tuple[LogEvent, bytes]], list[Failure]]:
    """Each event's archive envelope as compact JSON, byte for byte what
    `orjson.dumps(ev.envelope())` gives, with the payload's shared `source` encoded
    once (the archive's trick: most of the envelope's 1.3 µs is the repeated source)."""
    dumps = orjson.dumps
    opts = orjson.OPT_NON_STR_KEYS
    sources: dict[int, bytes] = {}
    out: list[tuple[LogEvent, bytes]] = []
    bad: list[Failure] = []
    for ev in events:
        try:  # one event's failure (nesting past 254 levels, a 65-bit integer) is its own
            src = sources.get(id(ev.source))
            if src is None:
                s = ev.source
                # The source, then its account and region as the archive line has them.
                src = sources[id(s)] = b"".join(
                    (
                        dumps(s, option=opts, default=str),
                        b',"account":',
                        dumps(s.get("account"), default=str),
                        b',"region":',
                        dumps(s.get("region"), default=str),
                    )
                )
            body = b"".join(
                (
                    b'{"tag":',
                    dumps(ev.tag),
                    b',"time":"',
                    format_time(ev.time).encode(),
                    b'","record":',
                    dumps(ev.record, option=opts, default=str),
                    b',"source":',
                    src,
                    b',"id":',
                    dumps(ev.id),
                    b"}",
                )
            )
        except UNENCODABLE as e:
            bad.append(Failure(ev, f"record not serialisable: {type(e).__name__}: {e}", False))
            continue
        out.append((ev, body))
    return out, bad


# The field syntax of chalicelib.template.render.
_FIELD = re2.compile(r"\{([A-Za-z0-9_@.-]+)\}")
_PER_TAG = frozenset({"tag", "date"})


def _plain(s: str) -> str:
    return s


class Template:
    """An option's template (`{tag}`, `{date}` as YYYY.MM.DD, record fields), rendered
    once per (tag, day) when it uses nothing else: no per-event work in the common case."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.fields = frozenset(_FIELD.findall(text))
        self._per_tag = self.fields <= _PER_TAG
        self._cache: dict[tuple[str, int], str] = {}

    def __call__(self, ev: LogEvent) -> str:
        if not self.fields:
            return self.text
        if self._per_tag:
            key = (ev.tag, ev.time // 86_400_000)
            value = self._cache.get(key)
            if value is None:
                if len(self._cache) > 4096:  # tags are few; bound it anyway
                    self._cache.clear()
                value = self._cache[key] = self._render(ev)
            return value
        return self._render(ev)

    def _render(self, ev: LogEvent) -> str:
        extra: dict[str, Any] = {}
        if "date" in self.fields:
            extra["date"] = time.strftime("%Y.%m.%d", time.gmtime(ev.time // 1000))
        return render(self.text, ev, extra, _plain)
