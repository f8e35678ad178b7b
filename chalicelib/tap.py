"""`sluice tap`: while an operator watches, a few decision lines a second.

`sluice tap` writes one item to the state table and refreshes it while it runs:

    pk="tap"  sk="active"  tap=<id>  expires_at=<epoch s>  tag=<pattern>  rule=<rule id>
    rate=<lines per second>

Functions read it with the rules: one GetItem when the rules are due for a reload
(every SLUICE_RULES_TTL, 60 s), cached in between, so with no tap active nothing
is read more than once a minute and the hot path checks one cached value per slice.
While the item is there and not expired, `observe` picks events of the slice (those
the tag pattern selects, before any rule rewrites them) up to the rate, routes a copy
of each through the same rules (`route`), and writes one line per event to the
function's own log group (stdout):

    SLUICE_TAP {"tap": id, "function": …, "tag": …, "rules": [matched], "actions": […],
                "dropped_by": rule or null, "archived": bool, "id": …, "time": …, "message": …}

Those lines never come back in: the function's own group is Sluice's (the loop guard
drops it in every ingest path), and the marker makes them easy to exclude from any
other subscription (`-"SLUICE_TAP"`). The CLI reads them back from the functions'
log groups (FilterLogEvents with the tap's id).
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from chalicelib.event import LogEvent, format_time
from chalicelib.rules.tags import TagPattern

MARKER = "SLUICE_TAP "
KEY = {"pk": {"S": "tap"}, "sk": {"S": "active"}}
MAX_RATE = 50  # lines per second per function instance, whatever the item asks
MESSAGE_CHARS = 300  # of each event's message in a line
# Copies routed per slice at most (a --rule tap may look at many to find a match).
MAX_TRIES = 200

Sink = Callable[[str, list[str]], None]  # (function name, lines)


class Tap:
    """An active tap, as read from the state table. A plain class: a dataclass costs
    ~1 ms to create on a cold start and its generated methods are not used (README,
    "Cold start")."""

    __slots__ = ("expires_at", "id", "rate", "refilled", "rule", "tag", "tokens")

    def __init__(
        self,
        id: str,
        expires_at: float,
        tag: TagPattern | None = None,
        rule: str | None = None,
        rate: int = 10,
        tokens: float = -1.0,  # a full bucket on first use
        refilled: float = 0.0,
    ) -> None:
        self.id = id
        self.expires_at = expires_at
        self.tag = tag
        self.rule = rule
        self.rate = rate
        self.tokens = tokens
        self.refilled = refilled

    def refill(self, now: float) -> None:
        """A token bucket (monotonic seconds): up to `rate` lines a second, bursts of `rate`."""
        if self.tokens < 0:
            self.tokens = float(self.rate)
        else:
            self.tokens = min(float(self.rate), self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now


class _Flag:
    """One runtime's cached view of the tap item."""

    __slots__ = ("checked", "tap")

    def __init__(self) -> None:
        self.tap: Tap | None = None
        self.checked = float("-inf")


_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Where lines go instead of stdout (the local stack writes them to CloudWatch Logs,
    as Lambda does with a function's stdout); None: stdout."""
    global _sink
    _sink = sink


def read(ddb: Any, table: str, now: float) -> Tap | None:  # now: epoch seconds
    """The active tap in `table`, or None (no item, or expired: TTL deletion is lazy)."""
    item = ddb.get_item(TableName=table, Key=KEY).get("Item")
    if not item:
        return None
    expires = float(item.get("expires_at", {}).get("N", "0"))
    if expires <= now:
        return None
    tag = item.get("tag", {}).get("S") or None
    rate = int(item.get("rate", {}).get("N", "10"))
    return Tap(
        id=item.get("tap", {}).get("S", ""),
        expires_at=expires,
        tag=TagPattern(tag) if tag else None,
        rule=item.get("rule", {}).get("S") or None,
        rate=max(1, min(MAX_RATE, rate)),
    )


def active(rt: Any, now: float) -> Tap | None:
    """`rt`'s tap, read at most once per rules TTL; None when none or when unreadable."""
    flag = getattr(rt, "_tap_flag", None)
    if flag is None:
        flag = _Flag()
        try:
            rt._tap_flag = flag
        except AttributeError:  # a stand-in runtime with slots: no tap
            return None
    if now - flag.checked >= rt.settings.rules_ttl_s:
        flag.checked = now
        state = rt.state()
        previous = flag.tap
        try:
            fresh = read(state.ddb, state.table, time.time()) if state is not None else None
        except Exception:  # a tap is a convenience: never a reason to fail an invocation
            fresh = None
        if fresh is not None and previous is not None and previous.id == fresh.id:
            fresh.tokens, fresh.refilled = previous.tokens, previous.refilled
        flag.tap = fresh
    tap = flag.tap
    if tap is not None and tap.expires_at <= time.time():
        flag.tap = tap = None
    return tap


def observe(
    rt: Any,
    events: list[LogEvent],
    rules: Any,
    function: str,
    route: Callable[[list[LogEvent], Any], Any],
) -> None:
    """The pipeline's one call: when a tap is active, emit decision lines for a sample
    of `events` (before they are routed: `route` runs on copies)."""
    tap = active(rt, time.monotonic())
    if tap is None:
        return
    lines = decisions(tap, events, rules, function, route, time.monotonic())
    if lines:
        emit(function, lines)


def decisions(
    tap: Tap,
    events: Iterable[LogEvent],
    rules: Any,
    function: str,
    route: Callable[[list[LogEvent], Any], Any],
    now: float,
) -> list[str]:
    """The lines for the events `tap` selects, within its rate."""
    lines: list[str] = []
    tries = 0
    tap.refill(now)
    for ev in events:
        if tries >= MAX_TRIES or tap.tokens < 1.0:
            break
        if tap.tag is not None and not tap.tag.matches(ev.tag):
            continue
        tries += 1
        doc = decide(ev, rules, route)
        if tap.rule is not None and tap.rule not in doc["rules"]:
            continue
        tap.tokens -= 1.0
        lines.append(MARKER + orjson.dumps({"tap": tap.id, "function": function, **doc}).decode())
    return lines


def decide(ev: LogEvent, rules: Any, route: Callable[[list[LogEvent], Any], Any]) -> dict[str, Any]:
    """What the rules do with `ev`, from routing a copy of it alone."""
    twin = dataclasses.replace(ev, record=copy.deepcopy(ev.record))
    routed = route([twin], rules)
    names = {d.id: d for d in rules.defs}
    actions = []
    for rule_id, idx in routed.deliveries:
        d = names.get(rule_id)
        if d is not None and idx < len(d.actions):
            actions.append(f"{rule_id}:{d.actions[idx].name}")
    message = twin.record.get("message")
    text = message if isinstance(message, str) else orjson.dumps(twin.record).decode()
    return {
        "tag": ev.tag,
        "final_tag": twin.tag,
        "rules": list(routed.matched),
        "actions": actions,
        "dropped_by": next(iter(routed.dropped), None),
        "archived": bool(routed.archive),
        "id": ev.id,
        "time": format_time(ev.time),
        "message": text[:MESSAGE_CHARS],
    }


def emit(function: str, lines: list[str]) -> None:
    if _sink is not None:
        _sink(function, lines)
    else:
        sys.stdout.write("\n".join(lines) + "\n")
