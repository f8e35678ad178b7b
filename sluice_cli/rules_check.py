"""Rules tested like code (`sluice rules test RULES --tests FILE`) and stored versions
written back to YAML (`sluice rules export`).

A test file:

    tests:
      - name: billing errors page the on-call channel
        event: {tag: lambda.billing, message: '{"level": "ERROR", "message": "card declined"}'}
        expect:
          tag: lambda.billing            # the event's tag after the rules
          matched: [billing-errors]      # the rules that matched, in order
          actions: [slack]               # the actions they took, in order
          dropped: false
          fields: {level: ERROR, card: null}   # record after transforms (null: absent)
          alert: "card declined"         # some alert's text contains this

Every key of `expect` is optional; a test checks only what it names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.actions import get as get_action
from chalicelib.actions.context import Offline
from chalicelib.event import LogEvent
from chalicelib.parsers import parse_message
from chalicelib.rules.compile import RuleSet
from sluice_cli.explain import explain

EXPECT_KEYS = ("tag", "matched", "actions", "dropped", "fields", "alert")
_ABSENT = object()


class CasesInvalid(ValueError):
    """A test file that does not have the documented shape; the message says where."""


@dataclass
class Case:
    name: str
    event: LogEvent
    expect: dict[str, Any]


@dataclass
class Outcome:
    case: Case
    actual: dict[str, Any]
    mismatches: list[tuple[str, Any, Any]] = field(default_factory=list)  # (key, want, got)


def load_cases(doc: Any, now_ms: int | None = None) -> list[Case]:
    """The cases of a parsed test file; CasesInvalid names the first problem."""
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise CasesInvalid("a test file is a mapping with a list under 'tests'")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    out = []
    for i, item in enumerate(doc["tests"]):
        where = f"tests[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "event", "expect"}:
            raise CasesInvalid(f"{where}: keys are name, event, expect")
        ev = item.get("event")
        if not isinstance(ev, dict) or not isinstance(ev.get("tag"), str):
            raise CasesInvalid(f"{where}.event: needs a 'tag' and a 'message' or 'record'")
        if "record" in ev:
            if not isinstance(ev["record"], dict):
                raise CasesInvalid(f"{where}.event.record: must be a mapping")
            record, t = dict(ev["record"]), None
        else:
            record, t = parse_message(str(ev.get("message", "")))
        expect = item.get("expect") or {}
        if not isinstance(expect, dict):
            raise CasesInvalid(f"{where}.expect: must be a mapping")
        unknown = sorted(set(expect) - set(EXPECT_KEYS))
        if unknown:
            raise CasesInvalid(
                f"{where}.expect.{unknown[0]}: unknown key (allowed: {', '.join(EXPECT_KEYS)})"
            )
        if "fields" in expect and not isinstance(expect["fields"], dict):
            raise CasesInvalid(f"{where}.expect.fields: must be a mapping")
        name = str(item.get("name") or f"test {i + 1}")
        when = t or (ev["time"] if isinstance(ev.get("time"), int) else now)
        out.append(
            Case(name, LogEvent(ev["tag"], when, record, {"kind": "test"}, f"test-{i}"), expect)
        )
    return out


def _field(record: dict[str, Any], path: str) -> Any:
    if path in record:
        return record[path]
    cur: Any = record
    for k in path.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return _ABSENT
        cur = cur[k]
    return cur


def run_case(case: Case, ruleset: RuleSet) -> Outcome:
    """What the rules make of the case's event, compared with what it expects."""
    ex = explain(case.event, ruleset)
    defs = {d.id: d for d in ruleset.defs}
    alerts = []
    for rule_id, idx in ex.deliveries:
        adef = defs[rule_id].actions[idx]
        preview = getattr(get_action(adef.name)(rule_id, adef.opts, Offline()), "preview", None)
        if callable(preview):
            alerts.append(str(preview([ex.event])))
    matched = [v for v in ex.verdicts if v.matched]
    actual: dict[str, Any] = {
        "tag": ex.event.tag,
        "matched": [v.rule_id for v in matched],
        "actions": [a for v in matched for a in v.actions],
        "dropped": ex.outcome.startswith("dropped"),
        "fields": ex.event.record,
        "alert": alerts,
    }
    out = Outcome(case, actual)
    for key, want in case.expect.items():
        if key == "fields":
            for path, v in want.items():
                got = _field(ex.event.record, path)
                if (v is None and got is not _ABSENT) or (v is not None and got != v):
                    out.mismatches.append((f"fields.{path}", v, None if got is _ABSENT else got))
        elif key == "alert":
            if not any(str(want) in a for a in alerts):
                out.mismatches.append(("alert", want, alerts))
        elif actual[key] != want:
            out.mismatches.append((key, want, actual[key]))
    return out


def diff_lines(o: Outcome) -> list[str]:
    """A readable diff of one failed case: `- expected` / `+ actual` per key."""

    def show(v: Any) -> str:
        return orjson.dumps(v, default=str).decode()

    lines = [f"FAIL {o.case.name} ({o.case.event.tag})"]
    for key, want, got in o.mismatches:
        lines.append(f"  {key}:")
        lines.append(f"    - expected {show(want)}")
        lines.append(f"    + actual   {show(got)}")
    return lines


def dump_yaml(doc: dict[str, Any]) -> str:
    """A rules document as YAML, byte-stable: the same document always gives the same text,
    and loading it gives the same document back (key order kept, no aliases, no wrapping)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
    )
