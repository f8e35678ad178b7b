"""The rules format: validation of a whole document, every error located.

    rules:
      - id: unify-payload          # required, unique: [A-Za-z0-9_.-]+
        priority: 10               # lower runs first (default 100); ties keep file order
        description: text          # optional
        enabled: true              # optional (default true)
        match:
          tag: "app.**"            # pattern or list of patterns (default "**")
          where:                   # all must hold (default: none)
            - {field: message, regex: "[Cc]omputer"}
            - {not: {field: level, in: [DEBUG, TRACE]}}
        transform: {rename: {event: message}, set: {transformed: true}, remove: [password]}
        actions: [drop | archive | {slack: {...}} | {sns: {...}} | {forward: {...}}]
        stop: false                # true: no later rule sees the event

Conditions: `field` (dotted path into the record) with exactly one of
`equals`, `in`, `regex` (RE2 syntax, linear time), `contains`, `exists`;
or `not: <condition>`.
"""

from __future__ import annotations

from typing import Any, Final

import re2

from chalicelib import actions as actions_registry
from chalicelib.bounded import Bounded
from chalicelib.durations import parse_duration
from chalicelib.errors import RuleError, RulesInvalid
from chalicelib.options import check_options
from chalicelib.parsers import registry
from chalicelib.records import record
from chalicelib.rules import origin
from chalicelib.rules.firing import (
    AbsenceSpec,
    FiringSpec,
    SequenceSpec,
    ThresholdSpec,
    ThrottleSpec,
)
from chalicelib.rules.inputs import InputDef, load_inputs
from chalicelib.rules.regexplan import RegexError, compile_regex
from chalicelib.rules.tags import tag_pattern_problem
from chalicelib.rules.transforms import BUILTIN, RENAME_CONFLICTS, set_template_problem

RULE_KEYS = {
    "id",
    "priority",
    "description",
    "enabled",
    "match",
    "parse",
    "transform",
    "actions",
    "stop",
    "throttle",
    "threshold",
    "sequence",
    "absence",
}
MATCH_KEYS = {"tag", "where", "account", "region"}
TRANSFORM_KEYS = {
    "rename",
    "rename_conflict",
    "set",
    "remove",
    "truncate",
    "redact",
    "rewrite_tag",
    "sample",
}
OPERATORS = ("equals", "in", "regex", "contains", "exists")
_ID = Bounded(r"[A-Za-z0-9_.-]", 128)


@record(frozen=True)
class ActionDef:
    """One of a rule's actions: its name and validated options."""

    __slots__ = ("name", "opts")

    name: Final[str]
    opts: Final[dict[str, Any]]

    def __init__(
        self,
        name: str,
        opts: dict[str, Any],
    ) -> None:
        self.name = name
        self.opts = opts


@record()
class RuleDef:
    """One validated rule, as the rules document states it."""

    __slots__ = (
        "absence",
        "actions",
        "description",
        "enabled",
        "id",
        "origin",
        "parse",
        "priority",
        "raw",
        "sequence",
        "stop",
        "tags",
        "threshold",
        "throttle",
        "transform",
        "where",
    )

    id: str
    priority: int
    description: str
    enabled: bool
    tags: list[str]
    where: list[dict[str, Any]]
    transform: dict[str, Any]
    actions: list[ActionDef]
    stop: bool
    parse: dict[str, Any] | None  # {format, field, <parser options>}
    throttle: ThrottleSpec | None
    threshold: ThresholdSpec | None
    sequence: SequenceSpec | None
    absence: AbsenceSpec | None
    raw: dict[str, Any]  # as written, for storage
    # `match.account` / `match.region` as conditions over the event's source (the same
    # conditions as `where`, aliases resolved): chalicelib/rules/origin.py.
    origin: list[dict[str, Any]]

    def __init__(
        self,
        id: str,
        priority: int = 100,
        description: str = "",
        enabled: bool = True,
        tags: list[str] | None = None,
        where: list[dict[str, Any]] | None = None,
        transform: dict[str, Any] | None = None,
        actions: list[ActionDef] | None = None,
        stop: bool = False,
        parse: dict[str, Any] | None = None,
        throttle: ThrottleSpec | None = None,
        threshold: ThresholdSpec | None = None,
        sequence: SequenceSpec | None = None,
        absence: AbsenceSpec | None = None,
        raw: dict[str, Any] | None = None,
        origin: list[dict[str, Any]] | None = None,
    ) -> None:
        self.id = id
        self.priority = priority
        self.description = description
        self.enabled = enabled
        self.tags = ["**"] if tags is None else tags
        self.where = [] if where is None else where
        self.transform = {} if transform is None else transform
        self.actions = [] if actions is None else actions
        self.stop = stop
        self.parse = parse
        self.throttle = throttle
        self.threshold = threshold
        self.sequence = sequence
        self.absence = absence
        self.raw = {} if raw is None else raw
        self.origin = [] if origin is None else origin


@record()
class RulesDocument:
    """A validated rules document: its rules, inputs and document-level sections."""

    __slots__ = ("inputs", "rules", "sections", "version")

    rules: list[RuleDef]
    inputs: list[InputDef]
    sections: dict[str, Any]  # document-level, as written
    version: int  # the stored version it was read from (0: not from a version)

    def __init__(
        self,
        rules: list[RuleDef],
        inputs: list[InputDef] | None = None,
        sections: dict[str, Any] | None = None,
        version: int = 0,
    ) -> None:
        self.rules = rules
        self.inputs = [] if inputs is None else inputs
        self.sections = {} if sections is None else sections
        self.version = version


def load_rules(doc: Any) -> list[RuleDef]:
    """Validate a whole rules document; raise RulesInvalid listing every error."""
    return load_document(doc).rules


def load_document(doc: Any) -> RulesDocument:
    """Validate a rules document (rules and inputs); raise RulesInvalid listing every error."""
    errors: list[RuleError] = []
    if doc is None:
        doc = {"rules": []}
    if not isinstance(doc, dict):
        raise RulesInvalid([RuleError("-", "(document)", "must be a mapping with a 'rules' list")])
    inputs = load_inputs(doc.get("inputs"), errors)
    aliases = origin.load_aliases(
        doc.get("accounts"), lambda f, r: errors.append(RuleError("-", f, r))
    )
    if doc.get("redact") is not None:
        redact_problems(doc["redact"], "redact", lambda f, r: errors.append(RuleError("-", f, r)))
    unknown = set(doc) - {"rules", "inputs", "redact", "accounts"}
    if unknown:
        errors.append(RuleError("-", "(document)", f"unknown key(s) {sorted(unknown)}"))
    items = doc.get("rules") or []
    if not isinstance(items, list):
        raise RulesInvalid([RuleError("-", "rules", "must be a list")])
    rules: list[RuleDef] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        rid = item.get("id") if isinstance(item, dict) else None
        if isinstance(rid, str):
            if rid in seen:
                errors.append(RuleError(rid, "id", "duplicate rule id"))
            seen.add(rid)
        rule = _rule(item, i, errors, aliases)
        if rule is not None:
            rules.append(rule)
    if errors:
        raise RulesInvalid(errors)
    sections = {k: doc[k] for k in ("inputs", "redact", "accounts") if doc.get(k) is not None}
    return RulesDocument(sort_rules(rules), inputs, sections)


def sort_rules(rules: list[RuleDef]) -> list[RuleDef]:
    return sorted(rules, key=lambda r: r.priority)  # stable: ties keep file order


def _rule(
    item: Any, index: int, errors: list[RuleError], aliases: dict[str, str] | None = None
) -> RuleDef | None:
    if not isinstance(item, dict):
        errors.append(RuleError(f"#{index + 1}", "(rule)", "must be a mapping"))
        return None
    rid = item.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        errors.append(RuleError(f"#{index + 1}", "id", "required: 1-128 of A-Z a-z 0-9 _ . -"))
        rid = f"#{index + 1}"
    n_before = len(errors)

    def err(fld: str, reason: str) -> None:
        errors.append(RuleError(rid, fld, reason))

    for key in sorted(set(item) - RULE_KEYS):
        err(key, f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    rule = RuleDef(id=rid, raw=item)
    prio = item.get("priority", 100)
    if type(prio) is not int:
        err("priority", "must be an integer")
    else:
        rule.priority = prio
    for key in ("stop", "enabled"):
        v = item.get(key, getattr(rule, key))
        if type(v) is not bool:
            err(key, "must be true or false")
        else:
            setattr(rule, key, v)
    desc = item.get("description", "")
    if not isinstance(desc, str):
        err("description", "must be text")
    else:
        rule.description = desc

    match = item.get("match", {})
    if not isinstance(match, dict):
        err("match", "must be a mapping")
        match = {}
    for key in sorted(set(match) - MATCH_KEYS):
        err(f"match.{key}", "unknown key (allowed: tag, where, account, region)")
    tags = match.get("tag", "**")
    tags = [tags] if isinstance(tags, str) else tags
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        err("match.tag", "must be a pattern or a non-empty list of patterns")
    else:
        for t in tags:
            problem = tag_pattern_problem(t)
            if problem:
                err("match.tag", f"{t!r}: {problem}")
        rule.tags = tags
    where = match.get("where", [])
    if not isinstance(where, list):
        err("match.where", "must be a list of conditions")
    else:
        for j, cond in enumerate(where):
            _condition(cond, f"match.where[{j}]", err)
        rule.where = where
    for key in ("account", "region"):
        if key in match:
            cond = origin.condition(key, match[key], aliases or {}, err)
            if cond is not None:
                rule.origin.append(cond)

    if "parse" in item:
        rule.parse = _parse(item["parse"], err)
    _firing(item, rule, err)

    transform = item.get("transform", {})
    if not isinstance(transform, dict):
        err("transform", "must be a mapping")
    else:
        _transform(transform, err)
        rule.transform = transform

    acts = item.get("actions", [])
    if not isinstance(acts, list):
        err("actions", "must be a list")
    else:
        for j, a in enumerate(acts):
            ad = _action(a, f"actions[{j}]", err)
            if ad is not None:
                rule.actions.append(ad)
    return rule if len(errors) == n_before else None


def _condition(cond: Any, path: str, err: Any) -> None:
    if not isinstance(cond, dict):
        err(path, "a condition must be a mapping")
        return
    if "not" in cond:
        if len(cond) != 1:
            err(path, "'not' stands alone: {not: {field: ..., <operator>: ...}}")
            return
        _condition(cond["not"], f"{path}.not", err)
        return
    fld = cond.get("field")
    if not isinstance(fld, str) or not fld:
        err(f"{path}.field", "required: the record field to test (dotted path for nested)")
    ops = [k for k in cond if k in OPERATORS]
    for key in sorted(set(cond) - {"field", *OPERATORS}):
        err(f"{path}.{key}", f"unknown key (operators: {', '.join(OPERATORS)}, or not)")
    if len(ops) != 1:
        err(path, f"exactly one operator of {', '.join(OPERATORS)} (found {len(ops)})")
        return
    op = ops[0]
    value = cond[op]
    if op == "in" and not isinstance(value, list):
        err(f"{path}.in", "must be a list")
    elif op == "exists" and type(value) is not bool:
        err(f"{path}.exists", "must be true or false")
    elif op == "contains" and not isinstance(value, str):
        err(f"{path}.contains", "must be text")
    elif op == "equals" and isinstance(value, dict | list):
        err(f"{path}.equals", "must be a scalar (text, number, boolean or null)")
    elif op == "regex":
        if not isinstance(value, str):
            err(f"{path}.regex", "must be text")
            return
        try:
            compile_regex(value)
        except RegexError as e:
            err(f"{path}.regex", f"invalid RE2 pattern {value!r}: {e}")


_FIRING = {
    "throttle": ({"window", "max", "key"}, {"window"}),
    "threshold": ({"count", "window", "key"}, {"count", "window"}),
    "sequence": ({"first", "then", "within", "key"}, {"first", "then", "within"}),
    "absence": ({"window", "tags"}, {"window"}),
}


def _firing(item: dict[str, Any], rule: RuleDef, err: Any) -> None:
    """throttle, threshold, sequence, absence: shapes, durations, and what combines."""
    kinds = [k for k in ("threshold", "sequence", "absence") if k in item]
    if len(kinds) > 1:
        err(kinds[1], f"a rule fires on one condition: {' or '.join(kinds)}, not both")
    for kind, (allowed, required) in _FIRING.items():
        if kind not in item:
            continue
        spec = item[kind]
        if not isinstance(spec, dict):
            err(kind, f"a mapping with {', '.join(sorted(allowed))}")
            continue
        n = 0
        for key in sorted(set(spec) - allowed):
            err(f"{kind}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
            n += 1
        for key in sorted(required - set(spec)):
            err(f"{kind}.{key}", "required")
            n += 1
        for key in ("window", "within"):
            if key in spec and parse_duration(spec[key]) is None:
                err(f"{kind}.{key}", "a duration: 30s, 5m, 1h, 2d or seconds")
                n += 1
        for key in ("max", "count"):
            if key in spec and (type(spec[key]) is not int or spec[key] < 1):
                err(f"{kind}.{key}", "a positive integer")
                n += 1
        if "key" in spec and not isinstance(spec["key"], str):
            err(f"{kind}.key", "a template such as {tag}:{record.error_code}")
            n += 1
        for key in ("first", "then"):
            if key in spec:
                if not isinstance(spec[key], list) or not spec[key]:
                    err(f"{kind}.{key}", "a non-empty list of conditions")
                    n += 1
                else:
                    for j, cond in enumerate(spec[key]):
                        _condition(cond, f"{kind}.{key}[{j}]", err)
        if "tags" in spec and (
            not isinstance(spec["tags"], list) or not all(isinstance(t, str) for t in spec["tags"])
        ):
            err(f"{kind}.tags", "a list of tags expected to keep logging")
            n += 1
        if n == 0:
            setattr(rule, kind, _firing_spec(kind, spec))
    if "absence" in item and not item.get("actions"):
        err("absence", "an absence rule needs actions to alert with")


def _firing_spec(kind: str, spec: dict[str, Any]) -> FiringSpec:
    """A validated firing block as its typed spec (durations in seconds)."""
    key = spec.get("key")
    if kind == "throttle":
        window = spec["window"]
        return ThrottleSpec(_seconds(window), spec.get("max", 1), key, str(window))
    if kind == "threshold":
        window = spec["window"]
        return ThresholdSpec(spec["count"], _seconds(window), key, str(window))
    if kind == "sequence":
        within = spec["within"]
        first, then = tuple(spec["first"]), tuple(spec["then"])
        return SequenceSpec(first, then, _seconds(within), key, str(within))
    window = spec["window"]
    return AbsenceSpec(_seconds(window), tuple(spec.get("tags", [])), str(window))


def _seconds(v: Any) -> int:
    seconds = parse_duration(v)
    if seconds is None:  # `_firing` checked every duration before building a spec
        raise ValueError(f"not a duration: {v!r}")
    return seconds


def _parse(spec: Any, err: Any) -> dict[str, Any] | None:
    if not isinstance(spec, dict) or not isinstance(spec.get("format"), str):
        err("parse", "a mapping with `format` (and optional `field`, default message)")
        return None
    fmt = spec["format"]
    if fmt not in registry.names():
        err("parse.format", f"unknown format {fmt!r} (known: {', '.join(registry.names())})")
        return None
    if not isinstance(spec.get("field", "message"), str):
        err("parse.field", "must be a field name")
        return None
    opts = {k: v for k, v in spec.items() if k not in ("format", "field")}
    problems = check_options(opts, registry.spec(fmt).options, "parse")
    if not problems:
        try:  # checks across options (a typed field the pattern lacks) live in the factory
            registry.build(fmt, opts)
        except ValueError as e:
            problems = [("parse", str(e))]
    for fld, reason in problems:
        err(fld, reason)
    return None if problems else dict(spec)


def _transform(transform: dict[str, Any], err: Any) -> None:
    for key in sorted(set(transform) - TRANSFORM_KEYS):
        err(f"transform.{key}", f"unknown key (allowed: {', '.join(sorted(TRANSFORM_KEYS))})")
    rename = transform.get("rename", {})
    if not isinstance(rename, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in rename.items()
    ):
        err("transform.rename", "must map field names to new field names")
    conflict = transform.get("rename_conflict", "keep_both")
    if conflict not in RENAME_CONFLICTS:
        err(
            "transform.rename_conflict",
            f"{conflict!r}: what rename does to an existing target field, one of "
            f"{', '.join(RENAME_CONFLICTS)} (default keep_both: nothing is lost)",
        )
    setv = transform.get("set", {})
    if not isinstance(setv, dict) or not all(isinstance(k, str) for k in setv):
        err("transform.set", "must map field names to values")
    else:
        for k, v in setv.items():
            problem = set_template_problem(v)
            if problem:
                err(f"transform.set.{k}", problem)
    remove = transform.get("remove", [])
    if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        err("transform.remove", "must be a list of field names")
    trunc = transform.get("truncate", {})
    if not isinstance(trunc, dict) or not all(
        isinstance(k, str) and type(v) is int and v > 0 for k, v in trunc.items()
    ):
        err("transform.truncate", "must map field names to maximum lengths (positive integers)")
    if "redact" in transform:
        redact_problems(transform["redact"], "transform.redact", err)
    tag = transform.get("rewrite_tag")
    if tag is not None and (not isinstance(tag, str) or not _tag_template(tag)):
        err("transform.rewrite_tag", "a tag template: letters, digits, . _ - and {field} parts")
    rate = transform.get("sample")
    if rate is not None and (type(rate) is not int or rate < 1):
        err("transform.sample", "keep 1 event in N: a positive integer N")


# `(?:[A-Za-z0-9_.-]|\{[A-Za-z0-9_@.-]+\}){1,256}`, counted in Python (chalicelib/bounded.py).
_TAG_TEMPLATE = re2.compile(r"(?:[A-Za-z0-9_.-]|\{[A-Za-z0-9_@.-]+\})+")


def _tag_template(tag: str) -> bool:
    """A tag template of 1-256 parts, each a character or a `{field}`."""
    if not _TAG_TEMPLATE.fullmatch(tag):
        return False
    # One part per character outside braces, one per `{field}` (braces never nest).
    return len(tag) - sum(p.index("}") + 1 for p in tag.split("{")[1:]) <= 256


REDACT_KEYS = {"patterns", "custom", "fields", "replacement"}


def redact_problems(spec: Any, path: str, err: Any) -> None:
    """Validate a redact spec (`true` for every built-in pattern on every field)."""
    if spec is True:
        return
    if not isinstance(spec, dict):
        err(path, "true, or a mapping of patterns, custom, fields, replacement")
        return
    for key in sorted(set(spec) - REDACT_KEYS):
        err(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(REDACT_KEYS))})")
    pats = spec.get("patterns", [])
    if not isinstance(pats, list) or not all(p in BUILTIN for p in pats):
        err(f"{path}.patterns", f"a list of built-in patterns: {', '.join(sorted(BUILTIN))}")
    custom = spec.get("custom", [])
    if not isinstance(custom, list) or not all(isinstance(c, str) for c in custom):
        err(f"{path}.custom", "a list of RE2 patterns")
    else:
        for c in custom:
            try:
                rx = compile_regex(c)
            except RegexError as e:
                err(f"{path}.custom", f"invalid RE2 pattern {c!r}: {e}")
                continue
            if rx.search("") is not None:
                # It would insert the replacement between every two characters.
                err(f"{path}.custom", f"{c!r} matches empty text; a redaction must match something")
    fields = spec.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        err(f"{path}.fields", "a list of field names (dotted for nested)")
    if not isinstance(spec.get("replacement", ""), str):
        err(f"{path}.replacement", "text; {name} stands for the pattern's name")


def _action(a: Any, path: str, err: Any) -> ActionDef | None:
    opts: Any
    if isinstance(a, str):
        name, opts = a, {}
    elif isinstance(a, dict) and len(a) == 1:
        name, opts = next(iter(a.items()))
        opts = {} if opts is None else opts
    else:
        err(path, "an action is a name (drop) or a one-key mapping ({slack: {...}})")
        return None
    known = actions_registry.names()
    if name not in known:
        err(path, f"unknown action {name!r} (known: {', '.join(known)})")
        return None
    if name in actions_registry.ROUTING_VERBS:
        if opts:
            err(f"{path}.{name}", "takes no options")
        return ActionDef(name, {})
    cls = actions_registry.get(name)
    problems = check_options(opts, cls.options, f"{path}.{name}")
    if not problems:
        problems = [(f"{path}.{name}.{k}", r) for k, r in cls.validate_options(opts)]
    for fld, reason in problems:
        err(fld, reason)
    return None if problems else ActionDef(name, dict(opts))
