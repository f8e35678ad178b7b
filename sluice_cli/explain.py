"""Why a rule did or did not apply to an event: what `sluice rules test` shows."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from chalicelib.event import LogEvent
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.conditions import compile_condition
from chalicelib.rules.schema import RuleDef


@dataclass
class RuleVerdict:
    rule_id: str
    matched: bool
    reason: str
    actions: list[str] = field(default_factory=list)
    stopped: bool = False


@dataclass
class Explanation:
    verdicts: list[RuleVerdict]
    outcome: str  # "archived" or "dropped by <rule>"
    event: LogEvent
    deliveries: list[tuple[str, int]]  # (rule id, action index)


def _describe(cond: dict[str, Any]) -> str:
    if "not" in cond:
        return f"not ({_describe(cond['not'])})"
    op = next(k for k in cond if k != "field")
    return f"{cond['field']} {op} {cond[op]!r}"


def explain(event: LogEvent, rules: RuleSet) -> Explanation:
    """Run `event` (a copy) through `rules` as `pipeline.route` would, saying why at each rule."""
    ev = LogEvent(event.tag, event.time, copy.deepcopy(event.record), event.source, event.id)
    verdicts: list[RuleVerdict] = []
    deliveries: list[tuple[str, int]] = []
    outcome = "archived"
    done = False
    defs: dict[str, RuleDef] = {d.id: d for d in rules.defs}
    for rule in rules.rules:
        d = defs[rule.id]
        if done:
            verdicts.append(RuleVerdict(rule.id, False, "not evaluated (an earlier rule stopped)"))
            continue
        if not rule.matches_tag(ev.tag):
            verdicts.append(RuleVerdict(rule.id, False, f"tag {ev.tag!r} does not match {d.tags}"))
            continue
        if rule.parse is not None:
            rule.parse(ev.record)
        failed = [c for c in d.where if not compile_condition(c)(ev.record)]
        # match.account / match.region: conditions over the event's source.
        failed += [c for c in d.origin if not compile_condition(c)(ev.source)]
        if failed:
            verdicts.append(
                RuleVerdict(rule.id, False, "condition false: " + "; ".join(map(_describe, failed)))
            )
            continue
        if rule.transform is not None:
            rule.transform(ev.record, ev)
        v = RuleVerdict(rule.id, True, "tag and all conditions match", [a.name for a in d.actions])
        deliveries.extend((rule.id, i) for i, _ in rule.actions)
        if rule.drop:
            outcome, done, v.stopped = f"dropped by {rule.id}", True, True
        elif rule.stop:
            done, v.stopped = True, True
        verdicts.append(v)
    return Explanation(verdicts, outcome, ev, deliveries)
