"""From routed events to actions: firing conditions, alert budgets, dedupe, delivery.

For each rule with matches in this batch:
1. its firing condition (threshold or sequence, if any) decides which events fire;
2. each action of the rule gets the firing batches; alerting actions (Slack, SNS)
   first pass the rule's throttle and skip events already alerted, known by their
   identity (origin and id: a retried invocation never alerts twice);
3. what an action fails to deliver goes to the dead-letter queue with the reason.
Per-rule counters (matched, dropped, alerted, suppressed, forwarded, failed) go
into the ledger for metrics with the rule id as a dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.actions.context import ArchiveLinks, Delivery
from chalicelib.alerting.absence import record_seen
from chalicelib.alerting.gates import Firing, Gate, Throttle
from chalicelib.alerting.state import AlertState
from chalicelib.errors import ActionError
from chalicelib.event import Ledger, LogEvent
from chalicelib.invocation import Invocation
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.firing import ThrottleSpec
from chalicelib.rules.schema import RuleDef

DeadLetter = Callable[..., None]


def deliver(
    deliveries: dict[tuple[str, int], list[LogEvent]],
    rules: RuleSet,
    rt: Any,
    inv: Invocation,
    ledger: Ledger,
    dead_letter: DeadLetter,
    archive: ArchiveLinks | None = None,
) -> None:
    """Each rule's matches through its firing condition and actions; `archive` says where
    the batch's events were archived (alerts link to it)."""
    defs = {r.id: r for r in rules.defs}
    state_table = rt.state()
    state = AlertState(state_table.ddb, state_table.table) if state_table is not None else None
    by_rule: dict[str, list[tuple[int, list[LogEvent]]]] = {}
    for (rule_id, idx), evs in deliveries.items():
        by_rule.setdefault(rule_id, []).append((idx, evs))
    for rule_id, actions in by_rule.items():
        d = defs[rule_id]
        counts = ledger.rule(rule_id)
        events = actions[0][1]  # every action of a rule receives the same matches
        if d.absence:
            # Matches of an absence rule are heartbeats: recorded, never alerted on.
            # The scheduled `absence_check` alerts when a tag falls silent.
            if state is None:
                ledger.errors.append(f"rule {rule_id}: absence needs SLUICE_STATE_TABLE")
            else:
                record_seen(state, rule_id, events)
            continue
        firings = [Firing(events)]
        if d.threshold or d.sequence:
            if state is None:
                ledger.errors.append(f"rule {rule_id}: threshold/sequence need SLUICE_STATE_TABLE")
            else:
                gated = Gate(rule_id, d.threshold or d.sequence).apply(events, state)
                firings = gated.firings
                counts["suppressed"] += gated.suppressed
        indices = [idx for idx, _ in actions]
        send(d, indices, firings, rt, inv, state, ledger, dead_letter, archive, rules.version)


def send(
    d: RuleDef,
    indices: list[int],
    firings: list[Firing],
    rt: Any,
    inv: Invocation,
    state: AlertState | None,
    ledger: Ledger,
    dead_letter: DeadLetter,
    archive: ArchiveLinks | None = None,
    version: str = "",
) -> None:
    """Every firing of rule `d` through its actions at `indices`: throttled and deduplicated
    when alerting, dead-lettered with the reason when unsent. Routed matches and absence
    silences both come this way. `version` is the rules version `d` comes from (actions
    are kept per version)."""
    rule_id = d.id
    counts = ledger.rule(rule_id)
    # Half the reader's margin: by now the archive is written; only sends remain.
    margin_ms = rt.settings.deadline_margin_ms // 2
    if state is None and d.throttle:
        ledger.errors.append(f"rule {rule_id}: throttle needs SLUICE_STATE_TABLE (not applied)")
    for idx in indices:
        adef = d.actions[idx]
        left = inv.remaining_ms()
        if left < margin_ms:
            # Near the deadline: hand the deliveries to the dead-letter queue (replayed
            # with `sluice dlq replay`) rather than be killed halfway through a send.
            _give_up(
                firings, f"deadline: {left} ms left", adef.name, rule_id, idx, ledger, dead_letter
            )
            continue
        try:
            act = rt.action(rule_id, idx, adef, version=version)
        except Exception as e:  # a bad secret, a missing option: the events still count
            _give_up(firings, str(e), adef.name, rule_id, idx, ledger, dead_letter)
            continue
        for firing in firings:
            _deliver_one(
                act,
                adef.name,
                rule_id,
                idx,
                firing,
                d.throttle,
                state,
                inv,
                ledger,
                counts,
                dead_letter,
                archive,
            )


def _give_up(
    firings: list[Firing],
    reason: str,
    name: str,
    rule_id: str,
    idx: int,
    ledger: Ledger,
    dead_letter: DeadLetter,
) -> None:
    """Dead-letter every firing of one action, unsent, with the reason."""
    for f in firings:
        dead_letter(
            f.events, f"{name}: {reason}", "action", action=name, rule=rule_id, action_index=idx
        )
        ledger.actions_failed += 1


def _deliver_one(
    act: Any,
    name: str,
    rule_id: str,
    idx: int,
    firing: Firing,
    throttle: ThrottleSpec | None,
    state: AlertState | None,
    inv: Invocation,
    ledger: Ledger,
    counts: dict[str, int],
    dead_letter: DeadLetter,
    archive: ArchiveLinks | None,
) -> None:
    batches = [firing]
    # Each event's identity, computed once for the dedupe read and the dedupe records
    # (a blake2b over its origin, ~2.5 µs an event), by the event object.
    identities: dict[int, str] = {}
    if act.alerting and state is not None:
        if throttle:
            held = Throttle(rule_id, throttle).suppress_if_exhausted(firing, state)
            if held is not None:  # the window's budget is known spent: no table reads
                counts["suppressed"] += held
                return
        # By identity, not id: the same id from another log group is another event.
        keys = [e.identity() for e in firing.events]
        identities = {id(e): k for e, k in zip(firing.events, keys, strict=True)}
        seen = state.already_alerted(rule_id, idx, keys)
        evs = [e for e, k in zip(firing.events, keys, strict=True) if k not in seen]
        counts["suppressed"] += len(firing.events) - len(evs)
        if not evs:
            return
        batches = [Firing(evs, firing.note)]
        if throttle:
            gated = Throttle(rule_id, throttle).apply(batches[0], state)
            counts["suppressed"] += gated.suppressed
            batches = gated.firings
    for batch in batches:
        try:
            sent = act.deliver(Delivery(batch.events, inv, batch.note, archive))
        except ActionError as e:
            undelivered = batch.events if e.failed is None else e.failed
            dead_letter(undelivered, str(e), "action", action=name, rule=rule_id, action_index=idx)
            ledger.actions_failed += 1
            counts["failed"] += len(undelivered) if e.failed_count is None else e.failed_count
            if act.alerting:
                ledger.alerts += e.sent
            else:
                counts["forwarded"] += e.sent
            continue
        if act.alerting:
            ledger.alerts += sent
            counts["alerted"] += sent
            if state is not None:
                try:
                    done = [identities.get(id(e)) or e.identity() for e in batch.events]
                    state.mark_alerted(rule_id, idx, done)
                except Exception as e:  # throttled past the SDK's retries, table gone...
                    # The alert is out: failing the invocation now would make Lambda's
                    # retry post it again. Only the dedupe record is missing; say so.
                    ledger.errors.append(
                        f"rule {rule_id}: alert sent, dedupe record not written: "
                        f"{type(e).__name__}: {e}"[:500]
                    )
        else:
            counts["forwarded"] += len(batch.events)
