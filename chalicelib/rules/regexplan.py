"""Regex plans: RE2 compilation, and the string tests that answer or prefilter a regex.

An RE2 search costs ~1.6 µs, a substring test ~0.2 µs (measured here), so a condition
first asks a literal the pattern requires, and a pattern that is only a literal
(`lit`, `^lit`, `lit$`, `a|b|c`) is answered by string tests alone. A pattern's structure
is read by `regexsyntax` (RE2's syntax, after RE2 has compiled the pattern), never by
Python's `re`; matching log text is RE2's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

from chalicelib.rules.regexsyntax import Node, parse


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

    Only top-level runs of literal characters count (a match is the concatenation of
    the top-level items' matches, so each run is in it whole), so the result is never
    wrong, merely absent for patterns with top-level alternation or no run of three."""
    parsed = _structure(pattern)
    if parsed is None:
        return None
    flags, alts = parsed
    if len(alts) != 1:
        return None
    best = ""
    run: list[str] = []
    for node in [*alts[0], None]:
        if node is not None and node[0] == "lit":
            run.append(node[1])
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    if len(best) < 3:
        return None
    if "i" in flags:
        if not best.isascii():
            return None
        return best.casefold(), True
    return best, False


def _structure(pattern: str) -> tuple[str, list[list[Node]]] | None:
    """`regexsyntax.parse` of a pattern RE2 compiles; None for one it refuses."""
    try:
        compile_regex(pattern)
    except RegexError:
        return None
    return parse(pattern)


def literal_plan(pattern: str) -> tuple[Callable[[str], bool], bool] | None:
    """`string_plan`'s test as a function of the text: (test, exact), or None."""
    plan = string_plan(pattern)
    return None if plan is None else (plan_test(plan[0], plan[1]), plan[2])


# A plan: (kind, arguments, exact). Its test of a text `s`, by kind (`plan_test`; the
# compiled router writes the exact kinds inline, rules/straight.py):
#   any          one of the words (arguments) is in s
#   fold_any     one of the (case-folded) words is in s.casefold()
#   eq           s == word
#   prefix       s.startswith(word)
#   suffix       s.endswith(word)
#   fold_in      word in s.casefold()
#   member       s in words (a frozenset)
#   head_member  s[:n] in words     (arguments: n, words)
#   tail_member  s[-n:] in words    (arguments: n, words)
Plan = tuple[str, tuple[Any, ...], bool]


def plan_test(kind: str, args: tuple[Any, ...]) -> Callable[[str], bool]:
    """The test a plan of `kind` with `args` describes, as a function of the text."""
    if kind == "any":
        return _contains_any(args)
    if kind == "fold_any":
        contains = _contains_any(args)
        return lambda s: contains(s.casefold())
    if kind == "eq":
        return args[0].__eq__
    if kind == "prefix":
        (prefix,) = args
        return lambda s: s.startswith(prefix)
    if kind == "suffix":
        (suffix,) = args
        return lambda s: s.endswith(suffix)
    if kind == "fold_in":
        (low,) = args
        return lambda s: low in s.casefold()
    if kind == "member":
        return args[0].__contains__
    n, allowed = args
    if kind == "head_member":
        return lambda s: s[:n] in allowed
    if kind == "tail_member":
        return lambda s: s[-n:] in allowed
    raise ValueError(f"unknown plan kind {kind!r}")


def string_plan(pattern: str) -> Plan | None:
    """A string test equivalent to, or necessary for, an RE2 search of `pattern`:
    (kind, arguments, exact). Exact plans replace the regex: a literal, `^lit`, `lit$`, `^lit$`,
    `a|b|c`, and sequences of literals and small character classes (`[Cc]omputer`,
    `^5[0-9][0-9]$`, `^5\\d\\d`) read as the set of words they spell, all without `(?i)`.
    Case-folded literals only prefilter the regex. None when the pattern has no such
    shape (then `required_literal`, or RE2 alone). With `(?m)` the anchors hold at every
    line, which no string test here answers: such anchored patterns get no plan."""
    parsed = _structure(pattern)
    if parsed is None:
        return None
    flags, alts = parsed
    folded = "i" in flags
    if len(alts) == 1 and len(alts[0]) == 1 and alts[0][0][0] == "group":
        alts = alts[0][0][1]  # one group around everything: look inside

    def literal(seq: list[Node]) -> str | None:
        if not all(node[0] == "lit" for node in seq):
            return None
        return "".join(node[1] for node in seq)

    if len(alts) > 1:
        found = [literal(seq) for seq in alts]
        if any(w is None or w == "" for w in found):
            return None
        words = tuple(w for w in found if w is not None)
        if folded:
            if not all(w.isascii() for w in words):
                return None
            return "fold_any", tuple(w.casefold() for w in words), False
        return _confirmed(pattern, ("any", words, True))
    data = alts[0]
    start = bool(data) and data[0][0] == "bol"
    end = len(data) > int(start) and data[-1][0] == "eol"
    if (start or end) and "m" in flags:
        return None
    seq = data[int(start) : len(data) - int(end)]
    body = literal(seq)
    if body is None:
        if folded:
            return None
        return _word_plan(pattern, seq, start, end)
    if folded and not body.isascii():
        return None
    if folded:  # prefilter only: casefold is not RE2's simple case folding
        return "fold_in", (body.casefold(),), False
    if start and end:
        return _confirmed(pattern, ("eq", (body,), True))
    if start:
        return _confirmed(pattern, ("prefix", (body,), True))
    if end:
        return _confirmed(pattern, ("suffix", (body,), True))
    return _confirmed(pattern, ("any", (body,), True))


def _confirmed(pattern: str, plan: Plan) -> Plan | None:
    """`plan` if RE2 finds a match in each of its words (a check against reading the
    pattern otherwise than RE2 does), else None."""
    search = compile_regex(pattern).search
    return plan if all(search(w) is not None for w in plan[1]) else None


# A pattern may spell at most this many words.
_MAX_WORDS = 256


def _node_chars(node: Node) -> str | None:
    """The characters one item matches: a literal, or a positive class that spells them
    (`regexsyntax` spells a class of at most 64 characters); None for anything else."""
    if node[0] == "lit" or node[0] == "set":
        return node[1]
    return None


def _word_plan(pattern: str, seq: list[Node], start: bool, end: bool) -> Plan | None:
    """The exact plan of a sequence of literals, small classes and fixed repeats of one of
    them: the words it spells (at most `_MAX_WORDS`), all of one length, tested as a set
    (`^...$`, `^...`, `...$`) or by containment (four words at most). Every word is
    checked to be an RE2 match (`regexsyntax` reads RE2's syntax; this checks it)."""
    if not seq:
        return None
    sets: list[str] = []
    for node in seq:
        if node[0] == "rep":
            _, lo, hi, item = node
            if lo != hi or lo > 8:
                return None
            chars = _node_chars(item)
            if chars is None:
                return None
            sets.extend([chars] * lo)
            continue
        chars = _node_chars(node)
        if chars is None:
            return None
        sets.append(chars)
    count = 1
    for chars in sets:
        count *= len(chars)
        if count > _MAX_WORDS:
            return None
    words = [""]
    for chars in sets:
        words = [w + c for w in words for c in chars]
    if not words or not words[0]:
        return None
    search = compile_regex(pattern).search
    if not all(search(w) is not None for w in words):
        return None
    n = len(words[0])
    allowed = frozenset(words)
    if start and end:
        return "member", (allowed,), True
    if start:
        return "head_member", (n, allowed), True
    if end:
        return "tail_member", (n, allowed), True
    if len(words) <= 4:
        return "any", tuple(words), True
    return None


def _contains_any(words: tuple[str, ...]) -> Callable[[str], bool]:
    """`s` contains one of `words`: written out for up to four (a generator over the words
    costs more than the tests themselves), a loop beyond."""
    if len(words) == 1:
        (a,) = words
        return lambda s: a in s
    if len(words) == 2:
        a, b = words
        return lambda s: a in s or b in s
    if len(words) == 3:
        a, b, c = words
        return lambda s: a in s or b in s or c in s
    if len(words) == 4:
        a, b, c, d = words
        return lambda s: a in s or b in s or c in s or d in s
    return lambda s: any(w in s for w in words)
