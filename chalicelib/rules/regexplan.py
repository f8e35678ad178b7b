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
    """A string test equivalent to, or necessary for, an RE2 search of `pattern`:
    (test, exact). Exact plans (a literal, `^lit`, `lit$`, `^lit$`, `a|b|c`, without
    `(?i)`) replace the regex; the others only prefilter it. None when the pattern
    has no such shape (then `required_literal`, or RE2 alone)."""
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
            contains = _contains_any(tuple(w.casefold() for w in words))
            return (lambda s: contains(s.casefold())), False
        return _contains_any(words), True
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
