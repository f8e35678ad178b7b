"""Firing conditions and alert budgets: thresholds, sequences, throttles.

A `Gate` decides which of a rule's matches fire (a threshold's count, a sequence's
first-then pair); a `Throttle` spends an alert budget per window and key. Both
take typed specs from the rules schema and keep their state in the state table
(`AlertState`), keyed as `chalicelib.alerting` describes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chalicelib.alerting.state import MAX_DISTINCT_COUNT
from chalicelib.event import LogEvent, format_time
from chalicelib.rules.conditions import compile_where
from chalicelib.rules.firing import SequenceSpec, ThresholdSpec, ThrottleSpec, label
from chalicelib.template import render


def batch_token(events: list[LogEvent]) -> str:
    """Identity of a batch of events, the same when a retry brings the same events: a
    spend (throttle budget, threshold firing, consumed precursor) made under a token is
    granted again to the same token, so a retry after a crash re-sends instead of losing."""
    h = hashlib.blake2b(digest_size=12)
    for x in sorted(e.identity() for e in events):
        h.update(x.encode())
        h.update(b"\0")
    return h.hexdigest()


def render_key(template: str | None, ev: LogEvent) -> str:
    """A throttle/threshold/sequence key (`{tag}:{record.error_code}`) for an event:
    `-` for no key (one budget per rule); each field capped so a huge value cannot
    make a huge state-table key."""
    if not template:
        return "-"
    return render(template, ev, {}, _key_field)


def _key_field(value: str) -> str:
    return value[:200]


@dataclass
class Firing:
    """A batch of events that may be delivered, and what the message should add."""

    events: list[LogEvent]
    note: str | None = None


@dataclass
class GateResult:
    firings: list[Firing] = field(default_factory=list)
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)


class Gate:
    """The firing condition of one rule (threshold or sequence), evaluated on its matches."""

    def __init__(self, rule_id: str, spec: ThresholdSpec | SequenceSpec | None) -> None:
        self.rule_id = rule_id
        self.threshold = spec if isinstance(spec, ThresholdSpec) else None
        self.sequence = spec if isinstance(spec, SequenceSpec) else None
        if self.sequence is not None:
            self.first = compile_where(list(self.sequence.first)) or (lambda r: True)
            self.then = compile_where(list(self.sequence.then)) or (lambda r: True)

    def apply(self, events: list[LogEvent], state: Any) -> GateResult:
        if self.threshold is not None:
            return self._threshold(self.threshold, events, state)
        if self.sequence is not None:
            return self._sequence(self.sequence, events, state)
        return GateResult([Firing(events)])

    def _threshold(self, spec: ThresholdSpec, events: list[LogEvent], state: Any) -> GateResult:
        window = spec.window_s
        need = spec.count
        groups: dict[tuple[str, int], list[LogEvent]] = {}
        for ev in events:
            groups.setdefault((render_key(spec.key, ev), ev.time // 1000 // window), []).append(ev)
        out = GateResult()
        for (key, win), evs in groups.items():
            pk = f"threshold#{self.rule_id}#{key}"
            token = batch_token(evs)
            if need <= MAX_DISTINCT_COUNT:
                # Counted by event identity, so a retried invocation's matches count once.
                n = state.add_distinct(
                    pk, str(win), [e.identity() for e in evs][:need], 2 * window, token=token
                )
            else:
                n = state.add(pk, str(win), "n", len(evs), ttl_s=2 * window)
            if (
                n is not None
                and n >= need
                and state.set_once(pk, str(win), "fired", ttl_s=2 * window, token=token)
            ):
                start = format_time(win * window * 1000)
                n = max(n, len(evs))  # only `need` ids of a batch are stored
                out.firings.append(
                    Firing(
                        evs,
                        f"{n} matches within {label(spec.window, window)} (window from {start})",
                    )
                )
            else:
                out.suppressed += len(evs)
        return out

    def _sequence(self, spec: SequenceSpec, events: list[LogEvent], state: Any) -> GateResult:
        within = spec.within_s * 1000
        out = GateResult()
        for ev in sorted(events, key=lambda e: e.time):
            key = render_key(spec.key, ev)
            pk = f"seq#{self.rule_id}#{key}"
            if self.then(ev.record):
                first = state.take(pk, "first", token=ev.identity())
                if first is not None and 0 <= ev.time - int(first["time"]) <= within:
                    note = (
                        f"preceded by {first.get('message', '')[:300]!r} at "
                        f"{format_time(int(first['time']))} (key {key})"
                    )
                    out.firings.append(Firing([ev], note))
                    continue
                if first is not None and ev.time < int(first["time"]):
                    state.put(pk, "first", first, ttl_s=within // 1000)  # not ours to consume
            if self.first(ev.record):
                msg = str(ev.record.get("message", ""))[:300]
                state.put(
                    pk,
                    "first",
                    {"time": ev.time, "id": ev.id, "message": msg},
                    ttl_s=within // 1000,
                )
                continue
            out.suppressed += 1
        return out


class Throttle:
    """An alert budget: at most `max` alert messages per window, per key.

    Once the table refuses a window, the batches that spent it are final for that
    window, so a warm function remembers (window, spenders) and suppresses later
    batches itself: a throttled rule then costs one counter update per invocation
    instead of four DynamoDB calls (dedupe read, conditional spend, its read-back,
    counter). A retry of a spender is still recognised by its token.
    """

    # throttle#<rule>#<key> -> (window, tokens that spent it); bounded, per container
    _exhausted: ClassVar[dict[str, tuple[str, frozenset[str]]]] = {}
    MAX_MEMO = 10_000

    def __init__(self, rule_id: str, spec: ThrottleSpec) -> None:
        self.rule_id = rule_id
        self.window = spec.window_s
        self.max = spec.max
        self.key = spec.key

    def _groups(self, events: list[LogEvent]) -> dict[str, list[LogEvent]]:
        groups: dict[str, list[LogEvent]] = {}
        for ev in events:
            groups.setdefault(render_key(self.key, ev), []).append(ev)
        return groups

    def _known_exhausted(self, pk: str, win: str, token: str) -> bool:
        memo = Throttle._exhausted.get(pk)
        return memo is not None and memo[0] == win and token not in memo[1]

    def suppress_if_exhausted(self, firing: Firing, state: Any) -> int | None:
        """If every key of the firing is known spent for this window, count the alerts as
        suppressed (in the table, for the next alert's note) and return the events held
        back; None when the table must be asked."""
        win = str(int(time.time()) // self.window)
        groups = self._groups(firing.events)
        pks = {f"throttle#{self.rule_id}#{key}": evs for key, evs in groups.items()}
        if not all(self._known_exhausted(pk, win, batch_token(evs)) for pk, evs in pks.items()):
            return None
        for pk in pks:
            state.count(pk, "suppressed", "suppressed", 1, ttl_s=7 * 86400)
        return len(firing.events)

    def apply(self, firing: Firing, state: Any) -> GateResult:
        groups = self._groups(firing.events)
        out = GateResult()
        win = str(int(time.time()) // self.window)
        for key, evs in groups.items():
            pk = f"throttle#{self.rule_id}#{key}"
            token = batch_token(evs)
            allowed = not self._known_exhausted(pk, win, token) and state.add_below(
                pk, win, "sent", self.max, ttl_s=2 * self.window, token=token
            )
            if not allowed and getattr(state, "last_spenders", None) is not None:
                if len(Throttle._exhausted) >= Throttle.MAX_MEMO:
                    Throttle._exhausted.clear()
                Throttle._exhausted[pk] = (win, state.last_spenders)
                state.last_spenders = None
            if allowed:
                held = state.take_counter(pk, "suppressed")
                note = firing.note
                if held:
                    extra = f"{held} similar alert(s) suppressed since the last one"
                    note = f"{note}; {extra}" if note else extra
                out.firings.append(Firing(evs, note))
            else:
                # The note reports suppressed alerts (messages), not the events in them.
                state.count(pk, "suppressed", "suppressed", 1, ttl_s=7 * 86400)
                out.suppressed += len(evs)
        return out
