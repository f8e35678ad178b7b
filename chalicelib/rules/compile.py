"""Compiled rules: pure functions over records, built once per rule set.

Per-event cost is what matters here (the performance budget: ~5 µs per event for the
whole pipeline), so:
- the rules that apply to a tag are resolved once per tag and cached;
- conditions, parse steps and transforms are closures built here, once;
- regex conditions are answered or prefiltered by string tests (`regexplan`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.parsers import registry
from chalicelib.records import record
from chalicelib.rules.conditions import Predicate, compile_where
from chalicelib.rules.inputs import InputDef
from chalicelib.rules.origin import names_by_account
from chalicelib.rules.schema import ActionDef, RuleDef
from chalicelib.rules.straight import BatchRouter, Router, compile_batch_router, compile_router
from chalicelib.rules.tags import TagPattern
from chalicelib.rules.transforms import (
    Redactor,
    compile_rename,
    compile_rewrite_tag,
    compile_set,
    compile_truncate,
)


def compile_transform(t: dict[str, Any]) -> Callable[..., None] | None:
    """Record-level transforms, applied in this order: rename, set, remove, redact, truncate.
    Called as `transform(record, event)`: templated `set` values read the event."""
    rename = compile_rename(t.get("rename") or {}, t.get("rename_conflict", "keep_both"))
    setv = compile_set(t["set"]) if t.get("set") else None
    remove = list(t.get("remove") or [])
    truncate = compile_truncate(t["truncate"]) if t.get("truncate") else None
    redact = t.get("redact")
    redactor = Redactor({} if redact is True else redact) if redact else None
    if not (rename or setv or remove or truncate or redactor):
        return None

    def apply(r: dict[str, Any], ev: Any = None) -> None:
        if rename is not None:
            rename(r)
        if setv is not None:
            setv(r, ev)
        for k in remove:
            r.pop(k, None)
        # Redact before cutting: a cut can split a secret so its pattern no longer matches.
        if redactor is not None:
            redactor(r)
        if truncate is not None:
            truncate(r)

    return apply


def compile_parse(spec: dict[str, Any] | None) -> Callable[[dict[str, Any]], None] | None:
    """The rule's `parse` step: parsed fields merge into the record (Fluentd's
    reserve_data); a failure sets `parse_error` and changes nothing else."""
    if not spec:
        return None
    field_name = spec.get("field", "message")
    parser = registry.build(
        spec["format"], {k: v for k, v in spec.items() if k not in ("format", "field")}
    )

    def apply(r: dict[str, Any]) -> None:
        text = r.get(field_name)
        if type(text) is not str:
            return
        fields = parser(text)
        if field_name != "message" and "message" in r:
            # Parsing another field adds its fields; the record's own message stays.
            fields.pop("message", None)
        if "parse_error" in fields:
            r["parse_error"] = fields["parse_error"]
            return
        r.update(fields)

    return apply


@record()
class CompiledRule:
    """A rule compiled for routing: tag patterns, predicates and transforms as callables."""

    __slots__ = (
        "actions",
        "drop",
        "id",
        "ordinal",
        "origin",
        "parse",
        "rewrite_tag",
        "sample",
        "stop",
        "tags",
        "transform",
        "transform_spec",
        "where",
        "where_conditions",
    )

    id: str
    tags: list[TagPattern]
    where: Predicate | None
    # `match.account` / `match.region`: conditions over the event's source (rules/origin.py).
    origin: Predicate | None
    where_conditions: list[dict[str, Any]] | None  # what `where` was compiled from
    transform: Callable[..., None] | None  # (record, event)
    transform_spec: dict[str, Any]  # what `transform` was compiled from
    parse: Callable[[dict[str, Any]], None] | None
    rewrite_tag: Callable[[Any], str] | None
    sample: int | None
    ordinal: int
    actions: list[tuple[int, ActionDef]]  # (index in the rule, action): delivery key
    drop: bool
    stop: bool

    def __init__(
        self,
        id: str,
        tags: list[TagPattern],
        where: Predicate | None,
        origin: Predicate | None,
        where_conditions: list[dict[str, Any]] | None,
        transform: Callable[..., None] | None,
        transform_spec: dict[str, Any],
        parse: Callable[[dict[str, Any]], None] | None,
        rewrite_tag: Callable[[Any], str] | None,
        sample: int | None,
        ordinal: int,
        actions: list[tuple[int, ActionDef]],
        drop: bool,
        stop: bool,
    ) -> None:
        self.id = id
        self.tags = tags
        self.where = where
        self.origin = origin
        self.where_conditions = where_conditions
        self.transform = transform
        self.transform_spec = transform_spec
        self.parse = parse
        self.rewrite_tag = rewrite_tag
        self.sample = sample
        self.ordinal = ordinal
        self.actions = actions
        self.drop = drop
        self.stop = stop

    def matches_tag(self, tag: str) -> bool:
        return any(p.matches(tag) for p in self.tags)


class RuleSet:
    """An ordered, compiled rule set. Immutable once built; cheap to share."""

    MAX_CACHED_TAGS = 10_000

    def __init__(
        self,
        rules: list[RuleDef],
        version: str = "",
        inputs: list[InputDef] | None = None,
        redact: Any = None,
        accounts: Any = None,
    ) -> None:
        self.defs = [r for r in rules if r.enabled]
        # account id -> alias (the rules file's `accounts:`), for alerts.
        self.account_names = names_by_account(accounts)
        self.version = version
        self.inputs = inputs or []
        # Document-level redaction: every event, before any rule sees it.
        self.redact = Redactor({} if redact is True else redact) if redact else None
        self.rules = [self._compile(r, i) for i, r in enumerate(self.defs)]
        self._by_tag: dict[str, tuple[CompiledRule, ...]] = {}
        self._routers: dict[tuple[int, ...], Router] = {}
        self._batch_routers: dict[tuple[int, ...], BatchRouter] = {}

    @staticmethod
    def _compile(r: RuleDef, ordinal: int) -> CompiledRule:
        acts = [(i, a) for i, a in enumerate(r.actions) if a.name not in ("drop", "archive")]
        return CompiledRule(
            id=r.id,
            tags=[TagPattern(t) for t in r.tags],
            where=compile_where(r.where),
            origin=compile_where(r.origin),
            where_conditions=list(r.where) if r.where else None,
            transform=compile_transform(r.transform),
            transform_spec=dict(r.transform),
            parse=compile_parse(r.parse),
            rewrite_tag=compile_rewrite_tag(r.transform["rewrite_tag"])
            if r.transform.get("rewrite_tag")
            else None,
            sample=r.transform.get("sample"),
            ordinal=ordinal,
            actions=acts,
            drop=any(a.name == "drop" for a in r.actions),
            stop=r.stop,
        )

    def for_tag(self, tag: str) -> tuple[CompiledRule, ...]:
        hit = self._by_tag.get(tag)
        if hit is None:
            if len(self._by_tag) >= self.MAX_CACHED_TAGS:
                self._by_tag.clear()
            hit = self._by_tag[tag] = tuple(r for r in self.rules if r.matches_tag(tag))
        return hit

    def router(self, rules: tuple[CompiledRule, ...]) -> Router:
        """The straight-line function running `rules` (rules/straight.py), compiled once
        per distinct set of rules: tags that share their rules share it."""
        key = tuple(r.ordinal for r in rules)
        hit = self._routers.get(key)
        if hit is None:
            if len(self._routers) >= self.MAX_CACHED_TAGS:
                self._routers.clear()
            hit = self._routers[key] = compile_router(rules)
        return hit

    def batch_router(self, rules: tuple[CompiledRule, ...]) -> BatchRouter:
        """The batch form of `router` (rules/straight.py `compile_batch_router`), with the
        document's redaction first, compiled once per distinct set of rules."""
        key = tuple(r.ordinal for r in rules)
        hit = self._batch_routers.get(key)
        if hit is None:
            if len(self._batch_routers) >= self.MAX_CACHED_TAGS:
                self._batch_routers.clear()
            hit = self._batch_routers[key] = compile_batch_router(rules, self.redact)
        return hit

    def __len__(self) -> int:
        return len(self.rules)
