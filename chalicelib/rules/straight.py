"""The rules that apply to a tag, compiled into one straight-line Python function.

The interpreted router (`chalicelib.pipeline.route_interpreted`) asks every rule, for
every event, whether it has a parse step, a condition, a transform, a sample rate,
actions, a drop, a stop and a tag rewrite: ~8 attribute loads and tests per rule and
event, most answering "no". Here the answers are read once per tag and only the
steps a rule has are written out, in order, as Python source; the top-level
conditions of the common kinds (`conditions._compile_simple`: equals, in, contains,
exists, regex with its literal prefilter) are written inline as the same expressions.

Generated source, safely: NO text from a rules file or a log ever appears in it.
Field names, values, patterns, rule ids and delivery keys are bound as variables of
the generated function (`c0`, `f3`, ...) in the namespace it is compiled in; the
source holds only identifiers this module makes from counters, and fixed code. A rule
set that tries to break out (quotes, newlines, `__import__` in ids, values or field
names) compiles to the same source as any other (tests/unit/test_rules_straight.py).
Results are the interpreter's: tests/unit/test_rules_straight.py runs both over the
test corpus and compares every outcome.

The function: `run(ev, record, matched, transformed, deliveries) -> (dropped_by,
restart_after)`; `dropped_by` the id of the rule that dropped the event (a drop or a
sample), `restart_after` the ordinal of a rule that rewrote the event's tag (the
router continues with the new tag's rules after it), else None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.rules.regexplan import compile_regex, literal_plan, required_literal
from chalicelib.rules.transforms import is_template, keep_sample

Router = Callable[..., tuple[str | None, int | None]]


class _Source:
    """Lines of source and the values they name (never written into the source)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"keep_sample": keep_sample, "_str": str}

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _inline_condition(src: _Source, cond: dict[str, Any]) -> str | None:
    """An expression over `record` equal to `conditions._compile_simple(cond)`'s
    predicate, for the kinds it inlines; None for the others (called as bound)."""
    if len(cond) == 1 and type(cond.get("not")) is dict:
        inner = _inline_condition(src, cond["not"])
        return None if inner is None else f"(not {inner})"
    if len(cond) != 2 or "field" not in cond or "." in cond["field"]:
        return None  # `not`, dotted paths, other kinds: the interpreter's own predicate
    f = src.bind("f", cond["field"])
    if "equals" in cond and type(cond["equals"]) is str:
        c = src.bind("c", cond["equals"])
        return (
            f"((v if type(v := record.get({f})) is str else "
            f"(type(v) in (int, float) and _str(v))) == {c})"
        )
    if "in" in cond and all(type(x) is str for x in cond["in"]):
        c = src.bind("c", frozenset(cond["in"]))
        return (
            f"(((t := type(v := record.get({f}))) is str and v in {c}) or "
            f"((t is int or t is float) and _str(v) in {c}))"
        )
    if "contains" in cond:
        c = src.bind("c", cond["contains"])
        return f"((v := record.get({f})) is not None and {c} in (v if type(v) is str else _str(v)))"
    if "regex" in cond:
        return _inline_regex(src, f, cond["regex"])
    if "exists" in cond:
        return f"({f} in record)" if cond["exists"] else f"({f} not in record)"
    return None


def _inline_regex(src: _Source, f: str, pattern: str) -> str:
    """`conditions._compile_simple`'s regex forms: a string test that answers it (an exact
    plan), a test or a required literal that must hold before RE2 searches, or RE2 alone."""
    text = "(v if type(v) is str else _str(v))"
    search = src.bind("x", compile_regex(pattern).search)
    plan = literal_plan(pattern)
    if plan is not None:
        test, exact = plan
        t = src.bind("l", test)
        if exact:
            return f"((v := record.get({f})) is not None and {t}({text}))"
        return (
            f"((v := record.get({f})) is not None and {t}(s := {text}) and {search}(s) is not None)"
        )
    lit = required_literal(pattern)
    if lit is None:
        return f"((v := record.get({f})) is not None and {search}({text}) is not None)"
    needle, folded = lit
    n = src.bind("c", needle)
    held = f"{n} in (s := {text}).casefold()" if folded else f"{n} in (s := {text})"
    return f"((v := record.get({f})) is not None and {held} and {search}(s) is not None)"


def _condition(src: _Source, rule: Any) -> str | None:
    """The rule's whole condition as an expression, or None (no condition): `where` over
    the record, then `match.account`/`match.region` over the event's source."""
    where = _where(src, rule)
    origin = None if rule.origin is None else f"{src.bind('g', rule.origin)}(ev.source)"
    if where is None or origin is None:
        return where or origin
    return f"({where}) and {origin}"


def _where(src: _Source, rule: Any) -> str | None:
    if rule.where is None:
        return None
    conds = rule.where_conditions
    parts: list[str] = []
    if conds is not None:
        for cond in conds:
            expr = _inline_condition(src, cond)
            if expr is None:
                break
            parts.append(expr)
        else:
            return " and ".join(parts)
    return f"{src.bind('w', rule.where)}(record)"


_RECORD_STEPS = ("rename", "remove", "truncate", "redact")


def _transform(src: _Source, depth: int, rule: Any) -> None:
    """The rule's record transform: a `set` of fixed values alone (no rename, remove,
    redact or truncate; no template) as the assignments `compile_set` makes, in order;
    anything else called as compiled."""
    spec = rule.transform_spec
    values = spec.get("set")
    if (
        isinstance(values, dict)
        and values
        and not any(spec.get(k) for k in _RECORD_STEPS)
        and not any(is_template(v) for v in values.values())
    ):
        for k, v in values.items():
            src.add(depth, f"record[{src.bind('f', k)}] = {src.bind('c', v)}")
        return
    src.add(depth, f"{src.bind('t', rule.transform)}(record, ev)")


def generate(rules: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """(source, namespace) of the router for `rules` (in order)."""
    src = _Source()
    src.add(0, "def run(ev, record, matched, transformed, deliveries):")
    for rule in rules:
        rid = src.bind("i", rule.id)
        if rule.parse is not None:
            src.add(1, f"{src.bind('p', rule.parse)}(record)")
        cond = _condition(src, rule)
        depth = 1
        if cond is not None:
            src.add(1, f"if {cond}:")
            depth = 2
        src.add(depth, f"matched[{rid}] = matched.get({rid}, 0) + 1")
        if rule.transform is not None:
            _transform(src, depth, rule)
            src.add(depth, f"transformed[{rid}] = transformed.get({rid}, 0) + 1")
        if rule.sample is not None:
            rate = src.bind("s", rule.sample)
            src.add(depth, f"if not keep_sample(ev.id, {rate}):")
            src.add(depth + 1, f"return {rid}, None")
        for idx, _ in rule.actions:
            key = src.bind("k", (rule.id, idx))
            src.add(depth, f"d = deliveries.get({key})")
            src.add(depth, "if d is None:")
            src.add(depth + 1, f"deliveries[{key}] = [ev]")
            src.add(depth, "else:")
            src.add(depth + 1, "d.append(ev)")
        if rule.drop:
            src.add(depth, f"return {rid}, None")
            continue
        if rule.stop:
            src.add(depth, "return None, None")
            continue
        if rule.rewrite_tag is not None:
            rewrite = src.bind("r", rule.rewrite_tag)
            src.add(depth, f"n = {rewrite}(ev)")
            src.add(depth, "if n != ev.tag:")
            src.add(depth + 1, "ev.tag = n")
            src.add(depth + 1, f"return None, {src.bind('o', rule.ordinal)}")
    src.add(1, "return None, None")
    return "\n".join(src.lines) + "\n", src.names


def compile_router(rules: tuple[Any, ...]) -> Router:
    """The straight-line router for `rules` (see the module docstring)."""
    source, namespace = generate(rules)
    code = compile(source, "<sluice rules>", "exec")
    exec(code, namespace)  # noqa: S102  # generated identifiers only: see the module docstring
    run: Router = namespace["run"]
    return run
