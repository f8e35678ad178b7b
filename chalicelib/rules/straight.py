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

from chalicelib.rules.regexplan import compile_regex, plan_test, required_literal, string_plan
from chalicelib.rules.transforms import free_name, is_template, keep_sample

Router = Callable[..., tuple[str | None, int | None]]
BatchRouter = Callable[..., None]


class _Source:
    """Lines of source and the values they name (never written into the source)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "keep_sample": keep_sample,
            "_str": str,
            "free_name": free_name,
        }

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        """A new local variable's name (nothing bound)."""
        return self.bind(prefix, None)

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
    # Each test starts with `f in record`: most conditions name a field most records
    # lack, and a miss then costs one lookup, not a call to `record.get` and the tests
    # after it. A field that is there is read by subscript.
    if "equals" in cond and type(cond["equals"]) is str:
        c = src.bind("c", cond["equals"])
        return (
            f"({f} in record and (((t := type(v := record[{f}])) is str and v == {c}) or "
            f"((t is int or t is float) and _str(v) == {c})))"
        )
    if "in" in cond and all(type(x) is str for x in cond["in"]):
        c = src.bind("c", frozenset(cond["in"]))
        return (
            f"({f} in record and (((t := type(v := record[{f}])) is str and v in {c}) or "
            f"((t is int or t is float) and _str(v) in {c})))"
        )
    if "contains" in cond:
        c = src.bind("c", cond["contains"])
        return (
            f"({f} in record and (v := record[{f}]) is not None and "
            f"{c} in (v if type(v) is str else _str(v)))"
        )
    if "regex" in cond:
        return _inline_regex(src, f, cond["regex"])
    if "exists" in cond:
        return f"({f} in record)" if cond["exists"] else f"({f} not in record)"
    return None


def _inline_regex(src: _Source, f: str, pattern: str) -> str:
    """`conditions._compile_simple`'s regex forms: a string test that answers it (an exact
    plan), a test or a required literal that must hold before RE2 searches, or RE2 alone."""
    text = "(v if type(v) is str else _str(v))"
    got = f"{f} in record and (v := record[{f}]) is not None"  # (see `_inline_condition`)
    search = src.bind("x", compile_regex(pattern).search)
    plan = string_plan(pattern)
    if plan is not None:
        kind, args, exact = plan
        if exact:
            inline = _inline_plan(src, kind, args, text)
            if inline is not None:
                return f"({got} and {inline})"
        t = src.bind("l", plan_test(kind, args))
        if exact:
            return f"({got} and {t}({text}))"
        return f"({got} and {t}(s := {text}) and {search}(s) is not None)"
    lit = required_literal(pattern)
    if lit is None:
        return f"({got} and {search}({text}) is not None)"
    needle, folded = lit
    n = src.bind("c", needle)
    held = f"{n} in (s := {text}).casefold()" if folded else f"{n} in (s := {text})"
    return f"({got} and {held} and {search}(s) is not None)"


def _inline_plan(src: _Source, kind: str, args: tuple[Any, ...], text: str) -> str | None:
    """An exact plan's test written out over `text` (no call to a bound test: a Python
    call costs more than the test), with every word and number bound; None for the kinds
    only a bound test answers (`plan_test`)."""
    if kind == "any" and len(args) <= 4:
        first, *rest = (src.bind("c", w) for w in args)
        return "(" + " or ".join([f"{first} in (s := {text})", *(f"{c} in s" for c in rest)]) + ")"
    if kind == "eq":
        return f"({text} == {src.bind('c', args[0])})"
    if kind == "prefix":
        return f"{text}.startswith({src.bind('c', args[0])})"
    if kind == "suffix":
        return f"{text}.endswith({src.bind('c', args[0])})"
    if kind == "member":
        return f"({text} in {src.bind('c', args[0])})"
    if kind in ("head_member", "tail_member"):
        n, words = src.bind("n", args[0]), src.bind("c", args[1])
        cut = f"[:{n}]" if kind == "head_member" else f"[-{n}:]"
        return f"({text}{cut} in {words})"
    return None


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


_OTHER_STEPS = ("remove", "truncate", "redact")


def _transform(src: _Source, depth: int, rule: Any) -> None:
    """The rule's record transform: a `rename` and a `set` of fixed values (no remove,
    redact or truncate; no template) as the statements `compile_rename` and `compile_set`
    run, in order; anything else called as compiled."""
    spec = rule.transform_spec
    values = spec.get("set") or {}
    renames = spec.get("rename") or {}
    if (
        isinstance(values, dict)
        and isinstance(renames, dict)
        and (values or renames)
        and not any(spec.get(k) for k in _OTHER_STEPS)
        and not any(is_template(v) for v in values.values())
    ):
        conflict = spec.get("rename_conflict", "keep_both")
        for old, new in renames.items():
            if old != new:
                _rename(src, depth, src.bind("f", old), src.bind("f", new), conflict)
        for k, v in values.items():
            src.add(depth, f"record[{src.bind('f', k)}] = {src.bind('c', v)}")
        return
    src.add(depth, f"{src.bind('t', rule.transform)}(record, ev)")


def _rename(src: _Source, depth: int, old: str, new: str, conflict: str) -> None:
    """`compile_rename`'s step for one pair: a field `new` already there is kept
    (`skip`), kept beside it under a free name (`keep_both`), or replaced."""
    src.add(depth, f"if {old} in record:")
    if conflict == "skip":
        src.add(depth + 1, f"if {new} not in record:")
        src.add(depth + 2, f"record[{new}] = record.pop({old})")
    elif conflict == "keep_both":
        src.add(depth + 1, f"if {new} in record:")
        src.add(depth + 2, f"record[free_name(record, {new})] = record.pop({old})")
        src.add(depth + 1, "else:")
        src.add(depth + 2, f"record[{new}] = record.pop({old})")
    else:
        src.add(depth + 1, f"record[{new}] = record.pop({old})")


class _Ends:
    """How a rule's block ends an event: by returning from the per-event function, or,
    in the batch function, by recording the outcome and going on to the next event."""

    def __init__(self, src: _Source, batch: bool) -> None:
        self.src, self.batch = src, batch
        self.locals: dict[tuple[str, str], str] = {}  # (dict, rule id variable) -> count

    def count(self, depth: int, counts: str, rid: str) -> None:
        """One more for rule `rid` in `counts` (`matched` or `transformed`)."""
        if not self.batch:
            self.src.add(depth, f"{counts}[{rid}] = {counts}.get({rid}, 0) + 1")
            return
        # A local count, added once per batch; the key is inserted at the rule's first
        # count, so the dict keeps the per-event function's order.
        m = self.locals.get((counts, rid))
        if m is None:
            m = self.locals[counts, rid] = self.src.fresh("m")
        self.src.add(depth, f"if not {m}:")
        self.src.add(depth + 1, f"{counts}.setdefault({rid}, 0)")
        self.src.add(depth, f"{m} += 1")

    def drop(self, depth: int, rid: str) -> None:
        if not self.batch:
            self.src.add(depth, f"return {rid}, None")
            return
        self.src.add(depth, f"dropped[{rid}] = dropped.get({rid}, 0) + ev.count")
        self.src.add(depth, "continue")

    def stop(self, depth: int) -> None:
        if not self.batch:
            self.src.add(depth, "return None, None")
            return
        self.src.add(depth, "archive(ev)")
        self.src.add(depth, "continue")

    def rewritten(self, depth: int, ordinal: str) -> None:
        if not self.batch:
            self.src.add(depth, f"return None, {ordinal}")
            return
        self.src.add(depth, f"cont(ev, {ordinal})")
        self.src.add(depth, "continue")


def generate(
    rules: tuple[Any, ...], batch: bool = False, redact: Any = None
) -> tuple[str, dict[str, Any]]:
    """(source, namespace) of the router for `rules` (in order): the per-event `run`, or
    with `batch` the `run_all` that routes a list of events of one tag (see
    `compile_batch_router`), calling `redact(record)` on each event first if given."""
    src = _Source()
    ends = _Ends(src, batch)
    delivered: list[str] = []  # delivery list variables (batch)
    if batch:
        src.add(0, "def run_all(evs, archive, matched, transformed, deliveries, dropped, cont):")
        head = len(src.lines)  # the locals' set-up goes here, once the body is known
        src.add(1, "for ev in evs:")
        src.add(2, "record = ev.record")
        if redact is not None:
            src.add(2, f"{src.bind('x', redact)}(record)")
        base = 2
    else:
        src.add(0, "def run(ev, record, matched, transformed, deliveries):")
        base = 1
    for rule in rules:
        rid = src.bind("i", rule.id)
        if rule.parse is not None:
            src.add(base, f"{src.bind('p', rule.parse)}(record)")
        cond = _condition(src, rule)
        depth = base
        if cond is not None:
            src.add(base, f"if {cond}:")
            depth = base + 1
        ends.count(depth, "matched", rid)
        if rule.transform is not None:
            _transform(src, depth, rule)
            ends.count(depth, "transformed", rid)
        if rule.sample is not None:
            rate = src.bind("s", rule.sample)
            src.add(depth, f"if not keep_sample(ev.id, {rate}):")
            ends.drop(depth + 1, rid)
        for idx, _ in rule.actions:
            key = src.bind("k", (rule.id, idx))
            if batch:
                # The list is looked up once per batch and made at the first event it
                # takes, so `deliveries` keeps the per-event function's order.
                d = src.fresh("d")
                delivered.append(f"{d} = deliveries.get({key})")
                src.add(depth, f"if {d} is None:")
                src.add(depth + 1, f"{d} = deliveries[{key}] = [ev]")
                src.add(depth, "else:")
                src.add(depth + 1, f"{d}.append(ev)")
                continue
            src.add(depth, f"d = deliveries.get({key})")
            src.add(depth, "if d is None:")
            src.add(depth + 1, f"deliveries[{key}] = [ev]")
            src.add(depth, "else:")
            src.add(depth + 1, "d.append(ev)")
        if rule.drop:
            ends.drop(depth, rid)
            continue
        if rule.stop:
            ends.stop(depth)
            continue
        if rule.rewrite_tag is not None:
            rewrite = src.bind("r", rule.rewrite_tag)
            src.add(depth, f"n = {rewrite}(ev)")
            src.add(depth, "if n != ev.tag:")
            src.add(depth + 1, "ev.tag = n")
            ends.rewritten(depth + 1, src.bind("o", rule.ordinal))
    if not batch:
        src.add(1, "return None, None")
        return "\n".join(src.lines) + "\n", src.names
    src.add(2, "archive(ev)")
    for (counts, rid), m in ends.locals.items():
        src.add(1, f"if {m}:")
        src.add(2, f"{counts}[{rid}] += {m}")
    setup = [f"    {m} = 0" for m in ends.locals.values()] + [f"    {x}" for x in delivered]
    src.lines[head:head] = setup
    return "\n".join(src.lines) + "\n", src.names


def compile_router(rules: tuple[Any, ...]) -> Router:
    """The straight-line router for `rules` (see the module docstring)."""
    return _compiled(rules, False)


def compile_batch_router(rules: tuple[Any, ...], redact: Any = None) -> BatchRouter:
    """`run_all(evs, archive, matched, transformed, deliveries, dropped, cont)`: the same
    steps as `compile_router`'s, in one loop over a list of events of one tag. Each event
    ends archived (`archive(ev)`), counted in `dropped` by the rule that dropped it, or,
    when a rule rewrote its tag, handed to `cont(ev, ordinal)`, which routes it on by its
    new tag's later rules before the loop takes the next event. Matched counts are kept
    in locals and added once; `matched` and `deliveries` get their keys in the order the
    per-event function gives them. `redact`, if given, is called on each event's record
    before its rules (the rules file's document-level redaction)."""
    return _compiled(rules, True, redact)


def _compiled(rules: tuple[Any, ...], batch: bool, redact: Any = None) -> Any:
    source, namespace = generate(rules, batch, redact)
    code = compile(source, "<sluice rules>", "exec")
    exec(code, namespace)  # noqa: S102  # generated identifiers only: see the module docstring
    return namespace["run_all" if batch else "run"]
