"""Compiled rules: pure functions over records, built once per rule set.

Per-event cost is what matters here (DESIGN.md budget: ~5 µs per event for the
whole pipeline), so:
- the rules that apply to a tag are resolved once per tag and cached;
- each condition is a closure over a precompiled getter and operator;
- a regex condition first checks a literal the pattern requires (an RE2 search
  costs ~1.6 µs, a substring test ~0.2 µs) and only then runs RE2.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from chalicelib.rules.inputs import InputDef
from chalicelib.rules.schema import ActionDef, RuleDef

Predicate = Callable[[dict[str, Any]], bool]
_MISSING = object()


# ---------------------------------------------------------------- tag patterns
def expand_braces(pattern: str) -> list[str]:
    """`app.{web,worker}.**` -> [`app.web.**`, `app.worker.**`] (no nesting)."""
    pieces = re.split(r"(\{[^{}]*\})", pattern)
    if any("{" in p or "}" in p for p in pieces if not (p.startswith("{") and p.endswith("}"))):
        raise ValueError("nested or unbalanced braces")
    choices = [p[1:-1].split(",") if p.startswith("{") else [p] for p in pieces]
    n = 1
    for c in choices:
        n *= len(c)
    from chalicelib.rules.schema import MAX_TAG_EXPANSIONS

    if n > MAX_TAG_EXPANSIONS:
        raise ValueError(f"braces expand to {n} patterns (at most {MAX_TAG_EXPANSIONS})")
    return ["".join(combo) for combo in itertools.product(*choices)]


def _part_matcher(part: str) -> Callable[[str], bool]:
    if "*" not in part:
        return part.__eq__
    # `*` inside a part matches any characters but '.'; the part never holds a dot.
    # String methods, not a regex: `re` backtracks, and `*a*a*a*a*b` against a 300-character
    # tag (tags come from log content) took 12 s. The literals between stars are taken
    # leftmost-first, which is exact for `*`-only globs and linear in the tag.
    first, *middle, last = part.split("*")
    least = len(first) + len(last) + sum(map(len, middle))

    def match(s: str) -> bool:
        if len(s) < least or not s.startswith(first) or not s.endswith(last):
            return False
        pos, end = len(first), len(s) - len(last)
        for lit in middle:
            i = s.find(lit, pos, end)
            if i < 0:
                return False
            pos = i + len(lit)
        return True

    return match


class TagPattern:
    """Fluentd-style: `*` one part, `**` zero or more parts, `{a,b}` alternatives."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._alts = [self._compile(p) for p in expand_braces(pattern)]

    @staticmethod
    def _compile(p: str) -> list[Callable[[str], bool] | None]:
        # None stands for `**`; consecutive `**` collapse.
        out: list[Callable[[str], bool] | None] = []
        for part in p.split("."):
            if part == "**":
                if not out or out[-1] is not None:
                    out.append(None)
            else:
                out.append(_part_matcher(part))
        return out

    def matches(self, tag: str) -> bool:
        parts = tag.split(".")
        return any(_match(alt, parts) for alt in self._alts)


def _match(pat: list[Callable[[str], bool] | None], parts: list[str]) -> bool:
    """Iterative glob over parts (linear-time two-pointer with backtrack to last `**`)."""
    p = t = 0
    star_p, star_t = -1, 0
    while t < len(parts):
        if p < len(pat) and pat[p] is None:
            star_p, star_t = p, t
            p += 1
        elif p < len(pat) and pat[p](parts[t]):  # type: ignore[misc]
            p += 1
            t += 1
        elif star_p >= 0:
            star_t += 1
            t = star_t
            p = star_p + 1
        else:
            return False
    while p < len(pat) and pat[p] is None:
        p += 1
    return p == len(pat)


# ---------------------------------------------------------------- conditions
class RegexError(ValueError):
    """A pattern RE2 refuses (backreferences, lookarounds, bad syntax)."""


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """RE2 (linear time: log text is untrusted). Raises RegexError on syntax RE2 refuses."""
    options = re2.Options()
    options.log_errors = False  # the error is reported to the operator, not to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        detail = e.args[0] if e.args else e
        raise RegexError(detail.decode() if isinstance(detail, bytes) else str(detail)) from e


def required_literal(pattern: str) -> tuple[str, bool] | None:
    """A literal every match must contain, and whether to compare case-folded.

    Parsed with Python's own regex parser (only to read the pattern's structure:
    matching is RE2's). Only top-level literal runs count, so the result is
    never wrong, merely absent for patterns with top-level alternation.
    """
    try:
        parsed = re._parser.parse(pattern)  # type: ignore[attr-defined]
    except Exception:
        return None
    from re import _constants as C  # type: ignore[attr-defined]

    ignore_case = bool(parsed.state.flags & re.IGNORECASE)
    best = ""
    run: list[str] = []
    for op, av in [*parsed.data, (None, None)]:
        if op is C.LITERAL:
            run.append(chr(av))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
        if op is C.BRANCH:
            return None
    if len(best) < 3:
        return None
    if ignore_case:
        if not best.isascii():
            return None
        return best.casefold(), True
    return best, False


def literal_plan(pattern: str) -> tuple[Callable[[str], bool], bool] | None:
    """A string test equivalent to, or necessary for, an RE2 search of `pattern`:
    (test, exact). Exact plans (a literal, `^lit`, `lit$`, `^lit$`, `a|b|c`, without
    `(?i)`) replace the regex; the others only prefilter it. None when the pattern
    has no such shape (then `required_literal`, or RE2 alone)."""
    try:
        parsed = re._parser.parse(pattern)  # type: ignore[attr-defined]
    except Exception:
        return None
    from re import _constants as C  # type: ignore[attr-defined]

    folded = bool(parsed.state.flags & re.IGNORECASE)
    data = list(parsed.data)
    if len(data) == 1 and data[0][0] is C.SUBPATTERN and not data[0][1][1] and not data[0][1][2]:
        data = list(data[0][1][3])  # one plain group around everything: look inside

    def literal(seq: list[Any]) -> str | None:
        if not all(op is C.LITERAL for op, _ in seq):
            return None
        return "".join(chr(av) for _, av in seq)

    if len(data) == 1 and data[0][0] is C.BRANCH:
        alts = [literal(list(b)) for b in data[0][1][1]]
        if any(a is None or a == "" for a in alts):
            return None
        words = tuple(a for a in alts if a is not None)
        if folded:
            if not all(w.isascii() for w in words):
                return None
            lowered = tuple(w.casefold() for w in words)
            return (lambda s: any(w in s.casefold() for w in lowered)), False
        return (lambda s: any(w in s for w in words)), True
    start = bool(data) and data[0] == (C.AT, C.AT_BEGINNING)
    end = bool(data) and data[-1] == (C.AT, C.AT_END)
    body = literal(data[int(start) : len(data) - int(end)])
    if body is None or (folded and not body.isascii()):
        return None
    if folded:  # prefilter only: casefold is not RE2's simple case folding
        low = body.casefold()
        return (lambda s: low in s.casefold()), False
    if start and end:
        return body.__eq__, True
    if start:
        return (lambda s: s.startswith(body)), True
    if end:
        return (lambda s: s.endswith(body)), True
    return (lambda s: body in s), True


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    if "." not in path:
        return lambda r: r.get(path, _MISSING)
    keys = path.split(".")

    def get(r: dict[str, Any]) -> Any:
        if path in r:  # a literal dotted key wins ("http.status" written flat)
            return r[path]
        cur: Any = r
        for k in keys:
            if type(cur) is not dict:
                return _MISSING
            cur = cur.get(k, _MISSING)
            if cur is _MISSING:
                return _MISSING
        return cur

    return get


def _text(v: Any) -> str | None:
    if v is _MISSING or v is None:
        return None
    return v if type(v) is str else str(v)


def compile_condition(cond: dict[str, Any]) -> Predicate:
    if "not" in cond:
        inner = compile_condition(cond["not"])
        return lambda r: not inner(r)
    field_name = cond["field"]
    if "." not in field_name:
        fast = _compile_simple(cond, field_name)
        if fast is not None:
            return fast
    get = _getter(field_name)
    if "exists" in cond:
        want = cond["exists"]
        return lambda r: (get(r) is not _MISSING) is want
    if "equals" in cond:
        return _equals(get, cond["equals"])
    if "in" in cond:
        # Each item compared as `equals` compares it: `null` is not "None", `true` not 1.
        tests = [_equals(get, x) for x in cond["in"]]
        return lambda r: any(t(r) for t in tests)
    if "contains" in cond:
        needle = cond["contains"]
        return lambda r: (s := _text(get(r))) is not None and needle in s
    rx = compile_regex(cond["regex"])
    search = rx.search
    lit = required_literal(cond["regex"])
    if lit is None:
        return lambda r: (s := _text(get(r))) is not None and search(s) is not None
    needle, folded = lit
    if folded:
        return lambda r: (
            (s := _text(get(r))) is not None and needle in s.casefold() and search(s) is not None
        )
    return lambda r: (s := _text(get(r))) is not None and needle in s and search(s) is not None


def _compile_simple(cond: dict[str, Any], f: str) -> Predicate | None:
    """The common conditions on a top-level field, with the lookup inlined (`r.get` is a
    C call; a getter closure was a second Python call per rule and event, ~0.1 µs).
    Text values take the first branch; anything else falls back to `str()` as the
    general form does."""
    if "equals" in cond and type(cond["equals"]) is str:
        text = cond["equals"]
        return lambda r: (
            (v if type(v := r.get(f)) is str else (type(v) in (int, float) and str(v))) == text
        )
    if "in" in cond and all(type(x) is str for x in cond["in"]):
        allowed = frozenset(cond["in"])
        return lambda r: (
            ((t := type(v := r.get(f))) is str and v in allowed)
            or ((t is int or t is float) and str(v) in allowed)
        )
    if "contains" in cond:
        needle = cond["contains"]
        return lambda r: (v := r.get(f)) is not None and needle in (v if type(v) is str else str(v))
    if "regex" in cond:
        search = compile_regex(cond["regex"]).search
        plan = literal_plan(cond["regex"])
        if plan is not None:
            test, exact = plan
            if exact:
                return lambda r: (
                    (v := r.get(f)) is not None and test(v if type(v) is str else str(v))
                )
            return lambda r: (
                (v := r.get(f)) is not None
                and test(s := v if type(v) is str else str(v))
                and search(s) is not None
            )
        lit = required_literal(cond["regex"])
        if lit is None:
            return lambda r: (
                (v := r.get(f)) is not None and search(v if type(v) is str else str(v)) is not None
            )
        needle, folded = lit
        if folded:
            return lambda r: (
                (v := r.get(f)) is not None
                and needle in (s := v if type(v) is str else str(v)).casefold()
                and search(s) is not None
            )
        return lambda r: (
            (v := r.get(f)) is not None
            and needle in (s := v if type(v) is str else str(v))
            and search(s) is not None
        )
    if "exists" in cond:
        if cond["exists"]:
            return lambda r: f in r
        return lambda r: f not in r
    return None


def _equals(get: Callable[[dict[str, Any]], Any], target: Any) -> Predicate:
    """Equality without Python's surprises: `true` is not 1, `null` is not the text
    "None"; a number in the record equals its text in the rule ("500" and 500)."""
    if target is None:
        return lambda r: get(r) is None
    if type(target) is bool:
        return lambda r: get(r) is target
    if type(target) in (int, float):
        return lambda r: (
            (type(v := get(r)) in (int, float) and v == target)
            or (type(v) is str and v == str(target))
        )
    text = str(target)

    def eq(r: dict[str, Any]) -> bool:
        v = get(r)
        if type(v) is str:
            return v == text
        return type(v) in (int, float) and str(v) == text

    return eq


def compile_where(conds: list[dict[str, Any]]) -> Predicate | None:
    preds = [compile_condition(c) for c in conds]
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    return lambda r: all(p(r) for p in preds)


# ---------------------------------------------------------------- transforms
def compile_transform(t: dict[str, Any]) -> Callable[..., None] | None:
    """Record-level transforms, applied in this order: rename, set, remove, redact, truncate.
    Called as `transform(record, event)`: templated `set` values read the event."""
    from chalicelib.rules.transforms import Redactor, compile_rename, compile_set, compile_truncate

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
    from chalicelib.parsers import registry

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


# ---------------------------------------------------------------- rule sets
@dataclass(slots=True)
class CompiledRule:
    id: str
    tags: list[TagPattern]
    where: Predicate | None
    transform: Callable[..., None] | None  # (record, event)
    parse: Callable[[dict[str, Any]], None] | None
    rewrite_tag: Callable[[Any], str] | None
    sample: int | None
    ordinal: int
    actions: list[tuple[int, ActionDef]]  # (index in the rule, action): delivery key
    drop: bool
    stop: bool

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
    ) -> None:
        from chalicelib.rules.transforms import Redactor

        self.defs = [r for r in rules if r.enabled]
        self.version = version
        self.inputs = inputs or []
        # Document-level redaction: every event, before any rule sees it.
        self.redact = Redactor({} if redact is True else redact) if redact else None
        self.rules = [self._compile(r, i) for i, r in enumerate(self.defs)]
        self._by_tag: dict[str, tuple[CompiledRule, ...]] = {}

    @staticmethod
    def _compile(r: RuleDef, ordinal: int) -> CompiledRule:
        from chalicelib.rules.transforms import compile_rewrite_tag

        acts = [(i, a) for i, a in enumerate(r.actions) if a.name not in ("drop", "archive")]
        return CompiledRule(
            id=r.id,
            tags=[TagPattern(t) for t in r.tags],
            where=compile_where(r.where),
            transform=compile_transform(r.transform),
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

    def __len__(self) -> int:
        return len(self.rules)
