"""Tag patterns (Fluentd-style): `*` one part, `**` any number of parts, `{a,b}` alternatives.

Tags come from log content, so matching is linear in the tag: string methods and
a two-pointer glob over parts, never a backtracking regex.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import re2

from chalicelib.bounded import Bounded

# A tag pattern's brace alternatives multiply; 64 expansions is far beyond use.
MAX_TAG_EXPANSIONS = 64
# Operator-written patterns, matched by RE2 like everything else.
_TAG_PATTERN = Bounded(r"[A-Za-z0-9_.*{},#@:$-]", 512)


def tag_pattern_problem(pattern: str) -> str | None:
    """Why a tag pattern is invalid, or None."""
    if not _TAG_PATTERN.fullmatch(pattern):
        return "tag patterns use letters, digits, _ - . * ** {a,b}"
    if pattern.count("{") != pattern.count("}"):
        return "unbalanced braces"
    try:
        expand_braces(pattern)
    except ValueError as e:
        return str(e)
    return None


def expand_braces(pattern: str) -> list[str]:
    """`app.{web,worker}.**` -> [`app.web.**`, `app.worker.**`] (no nesting)."""
    pieces = re2.split(r"(\{[^{}]*\})", pattern)
    if any("{" in p or "}" in p for p in pieces if not (p.startswith("{") and p.endswith("}"))):
        raise ValueError("nested or unbalanced braces")
    choices = [p[1:-1].split(",") if p.startswith("{") else [p] for p in pieces]
    n = 1
    for c in choices:
        n *= len(c)
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
