"""Absence rules (heartbeats): matches raise a tag's last-seen time; a scheduled check
alerts, once per silence, for each tag silent longer than the rule's window.

    seen#<rule>   <tag>   last_seen (epoch ms, only ever raised), alerted (set once per
                          silence), unseen (a listed tag watched since last_seen that has
                          never logged)
"""

from __future__ import annotations

import contextlib

from chalicelib.alerting.state import AlertState
from chalicelib.aws import query_items
from chalicelib.event import LogEvent, format_time


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
