"""Regex plans: RE2 compilation, and the string tests that answer or prefilter a regex.

An RE2 search costs ~1.6 µs, a substring test ~0.2 µs (measured here), so a condition
first asks a literal the pattern requires, and a pattern that is only a literal
(`lit`, `^lit`, `lit$`, `a|b|c`) is answered by string tests alone. Python's regex
parser only reads the pattern's structure here; matching log text is RE2's.
"""

from __future__ import annotations

# Python's regex *parser* reads a rule pattern's structure (its literals) after RE2 has
# accepted it; nothing is ever matched with `re`.
import re  # noqa: TID251
from collections.abc import Callable
from functools import lru_cache
from re import _constants as C  # type: ignore[attr-defined]  # noqa: TID251
from typing import Any

import re2


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
    try:
        parsed = re._parser.parse(pattern)  # type: ignore[attr-defined]
    except Exception:
        return None
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
            return "fold_any", tuple(w.casefold() for w in words), False
        return "any", words, True
    start = bool(data) and data[0] == (C.AT, C.AT_BEGINNING)
    end = bool(data) and data[-1] == (C.AT, C.AT_END)
    if (start or end) and parsed.state.flags & re.MULTILINE:
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
        return "eq", (body,), True
    if start:
        return "prefix", (body,), True
    if end:
        return "suffix", (body,), True
    return "any", (body,), True


# A class may spell at most this many characters, a pattern this many words.
_CLASS_CHARS = 64
_MAX_WORDS = 256
_DIGITS = "0123456789"  # RE2's \d: ASCII digits only
# Syntax Python's parser reads otherwise than RE2 (`[[:digit:]]` is a POSIX class to
# RE2, a set holding `[`, `:`... to Python): such a pattern gets no word plan.
_OTHER_SYNTAX = ("[:", "[[", "\\p", "\\P", "\\Q", "\\C")


def _class_chars(op: Any, av: Any) -> str | None:
    """The characters one element matches: a literal or a positive class of literals,
    ranges and `\\d`; None for anything else."""
    if op is C.LITERAL:
        return chr(av)
    if op is not C.IN:
        return None
    chars: list[str] = []
    for item, arg in av:
        if item is C.LITERAL:
            chars.append(chr(arg))
        elif item is C.RANGE and arg[1] - arg[0] < _CLASS_CHARS:
            chars.extend(map(chr, range(arg[0], arg[1] + 1)))
        elif item is C.CATEGORY and arg is C.CATEGORY_DIGIT:
            chars.extend(_DIGITS)
        else:
            return None  # a negated class, \w, \s, a large range
    unique = "".join(dict.fromkeys(chars))
    return unique if len(unique) <= _CLASS_CHARS else None


def _word_plan(pattern: str, seq: list[Any], start: bool, end: bool) -> Plan | None:
    """The exact plan of a sequence of literals, small classes and fixed repeats of one of
    them: the words it spells (at most `_MAX_WORDS`), all of one length, tested as a set
    (`^...$`, `^...`, `...$`) or by containment (four words at most). Every word is
    checked to be an RE2 match, which catches syntax the two parsers read differently."""
    if not seq or any(x in pattern for x in _OTHER_SYNTAX):
        return None
    sets: list[str] = []
    for op, av in seq:
        if op is C.MAX_REPEAT or op is C.MIN_REPEAT:
            lo, hi, item = av
            if lo != hi or lo > 8 or len(item) != 1:
                return None
            chars = _class_chars(*item[0])
            if chars is None:
                return None
            sets.extend([chars] * lo)
            continue
        chars = _class_chars(op, av)
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
