"""When a rule's actions fire: throttles, thresholds, sequences, and alert dedupe.

All state lives in the state table (keys `pk`, `sk`; TTL attribute `expires_at`)
and every decision is one conditional write or atomic counter, so concurrent
invocations agree without locks:

    throttle#<rule>#<key>   <window>      sent (ADD, conditional on sent < max)
    throttle#<rule>#<key>   suppressed    suppressed (ADD; taken and cleared by the next alert)
    threshold#<rule>#<key>  <window>      ids (ADD event-id digests to a set unless fired;
                                          `n`, a counter, for very large counts),
                                          fired (SET once, conditional)
    seq#<rule>#<key>        first         time, id, message (deleted, conditionally, by the match)
    alerted#<rule>#<action> <event id>    (an alert for this event went out: retries skip it)

Windows are tumbling, aligned on the epoch: by event time for thresholds, by the
clock for throttles (an alert budget is spent when alerts are sent).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chalicelib.aws import query_items
from chalicelib.durations import parse_duration
from chalicelib.event import LogEvent, format_time
from chalicelib.rules.match import compile_where
from chalicelib.template import render

DEDUPE_TTL_S = 24 * 3600  # an invocation's retries come within minutes; a day is ample
ANY_TAKER = "-"  # a take without a batch identity (one-shot, not retry-safe)
# Thresholds count distinct event ids as 8-byte digests in a set, which holds at most
# 2 x count of them (a batch adds at most `count`; none once fired): 20,000 keeps the
# item near 320 KB, under DynamoDB's 400 KB. Larger counts use a plain counter.
MAX_DISTINCT_COUNT = 20_000


def batch_token(events: list[LogEvent]) -> str:
    """Identity of a batch of events, the same when a retry brings the same events: a
    spend (throttle budget, threshold firing, consumed precursor) made under a token is
    granted again to the same token, so a retry after a crash re-sends instead of losing."""
    h = hashlib.blake2b(digest_size=12)
    for x in sorted(e.id for e in events):
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

    def __init__(self, rule_id: str, spec: dict[str, Any]) -> None:
        self.rule_id = rule_id
        self.threshold = spec.get("threshold")
        self.sequence = spec.get("sequence")
        if self.sequence:
            self.first = compile_where(self.sequence.get("first", [])) or (lambda r: True)
            self.then = compile_where(self.sequence.get("then", [])) or (lambda r: True)

    def apply(self, events: list[LogEvent], state: Any) -> GateResult:
        if self.threshold:
            return self._threshold(events, state)
        if self.sequence:
            return self._sequence(events, state)
        return GateResult([Firing(events)])

    def _threshold(self, events: list[LogEvent], state: Any) -> GateResult:
        spec: dict[str, Any] = self.threshold or {}
        window = parse_duration(spec["window"]) or 60
        need = int(spec["count"])
        groups: dict[tuple[str, int], list[LogEvent]] = {}
        for ev in events:
            groups.setdefault(
                (render_key(spec.get("key"), ev), ev.time // 1000 // window), []
            ).append(ev)
        out = GateResult()
        for (key, win), evs in groups.items():
            pk = f"threshold#{self.rule_id}#{key}"
            token = batch_token(evs)
            if need <= MAX_DISTINCT_COUNT:
                # Counted by event id, so a retried invocation's matches count once.
                n = state.add_distinct(
                    pk, str(win), [e.id for e in evs][:need], 2 * window, token=token
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
                    Firing(evs, f"{n} matches within {spec['window']} (window from {start})")
                )
            else:
                out.suppressed += len(evs)
        return out

    def _sequence(self, events: list[LogEvent], state: Any) -> GateResult:
        spec: dict[str, Any] = self.sequence or {}
        within = (parse_duration(spec["within"]) or 600) * 1000
        out = GateResult()
        for ev in sorted(events, key=lambda e: e.time):
            key = render_key(spec.get("key"), ev)
            pk = f"seq#{self.rule_id}#{key}"
            if self.then(ev.record):
                first = state.take(pk, "first", token=ev.id)
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

    def __init__(self, rule_id: str, spec: dict[str, Any]) -> None:
        self.rule_id = rule_id
        self.window = parse_duration(spec["window"]) or 300
        self.max = int(spec.get("max", 1))
        self.key = spec.get("key")

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
            state.add(pk, "suppressed", "suppressed", 1, ttl_s=7 * 86400)
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
                state.add(pk, "suppressed", "suppressed", 1, ttl_s=7 * 86400)
                out.suppressed += len(evs)
        return out


class AlertState:
    """The state-table operations the gates need (injectable; tests use moto)."""

    def __init__(self, ddb: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self.ddb = ddb
        self.table = table
        self.clock = clock
        # Set by a refused tokened `add_below`: the tokens that spent that window.
        self.last_spenders: frozenset[str] | None = None

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _exp(self, ttl_s: int) -> dict[str, str]:
        return {"N": str(int(self.clock()) + max(ttl_s, 60))}

    def add(self, pk: str, sk: str, attr: str, n: int, *, ttl_s: int) -> int:
        r = self.ddb.update_item(
            TableName=self.table,
            Key=self._key(pk, sk),
            UpdateExpression="ADD #a :n SET expires_at = :e",
            ExpressionAttributeNames={"#a": attr},
            ExpressionAttributeValues={":n": {"N": str(n)}, ":e": self._exp(ttl_s)},
            ReturnValues="UPDATED_NEW",
        )
        return int(r["Attributes"][attr]["N"])

    def add_distinct(
        self, pk: str, sk: str, ids: list[str], ttl_s: int, *, token: str = ""
    ) -> int | None:
        """Add ids to the item's set unless it has `fired` (for another token); the set's
        size (None if fired). Ids already present add nothing: a retried batch counts once."""
        digests = [hashlib.blake2b(x.encode(), digest_size=8).digest() for x in dict.fromkeys(ids)]
        try:
            r = self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="ADD ids :ids SET expires_at = :e",
                ConditionExpression="attribute_not_exists(fired) OR fired = :tok",
                ExpressionAttributeValues={
                    ":ids": {"BS": digests},
                    ":e": self._exp(ttl_s),
                    ":tok": {"S": token or "-"},
                },
                # ALL_NEW: UPDATED_NEW may leave out a set the ADD did not change (moto does).
                ReturnValues="ALL_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        return len(r["Attributes"]["ids"]["BS"])

    def add_below(
        self, pk: str, sk: str, attr: str, limit: int, *, ttl_s: int, token: str = ""
    ) -> bool:
        """Atomically count one more if the count is below `limit`. A `token` that already
        spent here is granted again without counting (the retry of the same batch)."""
        names = {"#a": attr}
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":limit": {"N": str(limit)},
            ":e": self._exp(ttl_s),
        }
        update = "ADD #a :one SET expires_at = :e"
        condition = "attribute_not_exists(#a) OR #a < :limit"
        if token:
            update = "ADD #a :one, spenders :toks SET expires_at = :e"
            condition = f"({condition}) AND NOT contains(spenders, :tok)"
            values[":toks"] = {"SS": [token]}
            values[":tok"] = {"S": token}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except self.ddb.exceptions.ConditionalCheckFailedException:
            if not token:
                return False
            item = self.ddb.get_item(
                TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True
            ).get("Item", {})
            spenders = frozenset(item.get("spenders", {}).get("SS", []))
            if token in spenders:
                return True
            self.last_spenders = spenders
            return False

    def set_once(self, pk: str, sk: str, attr: str, *, ttl_s: int, token: str = "") -> bool:
        """Set `attr` once; the same `token` (a retry of the same batch) gets it again."""
        if token:
            condition = "attribute_not_exists(#a) OR #a = :t"
            value: dict[str, Any] = {"S": token}
        else:
            condition, value = "attribute_not_exists(#a)", {"BOOL": True}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="SET #a = :t, expires_at = :e",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#a": attr},
                ExpressionAttributeValues={":t": value, ":e": self._exp(ttl_s)},
            )
            return True
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False

    def take_counter(self, pk: str, sk: str) -> int:
        """Read and delete a counter item in one step (concurrent takers split, never double)."""
        r = self.ddb.delete_item(
            TableName=self.table, Key=self._key(pk, sk), ReturnValues="ALL_OLD"
        )
        attrs = r.get("Attributes") or {}
        return int(attrs.get("suppressed", {}).get("N", "0"))

    def put(self, pk: str, sk: str, value: dict[str, Any], *, ttl_s: int) -> None:
        item = {
            **self._key(pk, sk),
            "expires_at": self._exp(ttl_s),
            "time": {"N": str(value["time"])},
            "id": {"S": str(value.get("id", ""))},
            "message": {"S": str(value.get("message", ""))},
        }
        self.ddb.put_item(TableName=self.table, Item=item)

    def take(self, pk: str, sk: str, *, token: str = ANY_TAKER) -> dict[str, Any] | None:
        """Consume an item and return it; None if absent, expired or consumed by another
        token. Only one taker wins; the same token (a retry) wins again."""
        try:
            r = self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="SET consumed_by = :tok",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(consumed_by) OR consumed_by = :tok)",
                ExpressionAttributeValues={":tok": {"S": token}},
                ReturnValues="ALL_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        attrs = r.get("Attributes")
        if not attrs or int(attrs.get("expires_at", {}).get("N", "0")) < self.clock():
            return None
        return {
            "time": int(attrs["time"]["N"]),
            "id": attrs.get("id", {}).get("S", ""),
            "message": attrs.get("message", {}).get("S", ""),
        }

    def already_alerted(self, rule_id: str, index: int, ids: list[str]) -> set[str]:
        pk = f"alerted#{rule_id}#{index}"
        seen: set[str] = set()
        for i in range(0, len(ids), 100):  # BatchGetItem takes 100 keys
            keys = [self._key(pk, x) for x in dict.fromkeys(ids[i : i + 100])]
            req: dict[str, Any] = {self.table: {"Keys": keys, "ProjectionExpression": "sk"}}
            while req:
                r = self.ddb.batch_get_item(RequestItems=req)
                seen.update(it["sk"]["S"] for it in r.get("Responses", {}).get(self.table, []))
                req = r.get("UnprocessedKeys") or {}
        return seen

    def mark_alerted(self, rule_id: str, index: int, ids: list[str]) -> None:
        pk = f"alerted#{rule_id}#{index}"
        exp = self._exp(DEDUPE_TTL_S)
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), 25):  # BatchWriteItem takes 25 items
            req: dict[str, Any] = {
                self.table: [
                    {"PutRequest": {"Item": {**self._key(pk, x), "expires_at": exp}}}
                    for x in unique[i : i + 25]
                ]
            }
            while req:
                r = self.ddb.batch_write_item(RequestItems=req)
                req = r.get("UnprocessedItems") or {}


# ---------------------------------------------------------------- absence (heartbeats)
#   seen#<rule>   <tag>   last_seen (epoch ms, only ever raised), alerted (set once per silence),
#                         unseen (a listed tag watched since last_seen that has never logged)


def record_seen(state: AlertState, rule_id: str, events: list[LogEvent]) -> None:
    """Raise each tag's last-seen time (one conditional write per tag per batch)."""
    latest: dict[str, int] = {}
    for ev in events:
        if ev.time > latest.get(ev.tag, -1):
            latest[ev.tag] = ev.time
    for tag, t in latest.items():
        # A refused condition means a newer sighting is recorded already: nothing to do.
        with contextlib.suppress(state.ddb.exceptions.ConditionalCheckFailedException):
            state.ddb.update_item(
                TableName=state.table,
                Key=state._key(f"seen#{rule_id}", tag),
                UpdateExpression="SET last_seen = :t REMOVE alerted, unseen",
                ConditionExpression="attribute_not_exists(last_seen) OR last_seen < :t",
                ExpressionAttributeValues={":t": {"N": str(t)}},
            )


def silent_tags(
    state: AlertState, rule_id: str, window_s: int, expected: list[str], now_ms: int
) -> list[tuple[str, int]]:
    """Tags of an absence rule silent for longer than the window and not yet alerted;
    each is claimed (alerted set) so one scheduled run alerts once per silence."""
    pk = f"seen#{rule_id}"
    items = {
        it["sk"]["S"]: it
        for it in query_items(
            state.ddb,
            TableName=state.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
    }
    for tag in expected:
        if tag not in items:  # never seen: start watching now
            _start_watch(state, pk, tag, now_ms)
    out = []
    for tag, it in items.items():
        last = int(it.get("last_seen", {}).get("N", "0"))
        if "alerted" in it or now_ms - last <= window_s * 1000:
            continue
        try:
            state.ddb.update_item(
                TableName=state.table,
                Key=state._key(pk, tag),
                UpdateExpression="SET alerted = :now",
                ConditionExpression="attribute_not_exists(alerted) AND last_seen = :last",
                ExpressionAttributeValues={":now": {"N": str(now_ms)}, ":last": {"N": str(last)}},
            )
        except state.ddb.exceptions.ConditionalCheckFailedException:
            continue  # another run alerted, or the tag spoke meanwhile
        # A listed tag that never logged reports 0 ("never"), not when the watch began.
        out.append((tag, 0 if "unseen" in it else last))
    return out


def _start_watch(state: AlertState, pk: str, tag: str, now_ms: int) -> None:
    try:
        state.ddb.put_item(
            TableName=state.table,
            Item={**state._key(pk, tag), "last_seen": {"N": str(now_ms)}, "unseen": {"BOOL": True}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except state.ddb.exceptions.ConditionalCheckFailedException:
        pass


def silence_event(rule_id: str, tag: str, last_ms: int, window: str, now_ms: int) -> LogEvent:
    since = format_time(last_ms) if last_ms else "never"
    return LogEvent(
        tag,
        now_ms,
        {
            "message": f"no events from {tag} matching rule {rule_id} for over {window} "
            f"(last seen {since})",
            "level": "ERROR",
            "absence": {"rule": rule_id, "last_seen": since, "window": window},
        },
        {"kind": "absence", "rule": rule_id},
        f"absence:{rule_id}:{tag}:{last_ms}",
    )
