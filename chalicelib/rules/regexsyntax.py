"""The structure of a rule's regex, read for its literals: a parser of RE2's syntax for the
shapes the plans use, and nothing else.

A pattern is read only to find the literals a match must contain (`required_literal`) or
the string tests that answer it (`string_plan`); matching is always RE2's. Python's `re`
is never used: its parser reads some patterns otherwise than RE2 (`x{,3}` is a repeat to
Python and the text `x{,3}` to RE2; `[[:digit:]]` a POSIX class to RE2 only). Anything
outside the shapes below, or any syntax read differently by the two, makes the whole
pattern unreadable here (`parse` returns None) and it is left to RE2 alone: a plan is an
optimisation, never needed for a correct answer. One pass over the pattern, no recursion
beyond its group nesting, which is bounded (`_MAX_DEPTH`).

Shapes read (RE2's syntax, https://github.com/google/re2/wiki/Syntax):
- leading flags `(?i)`, `(?m)`, `(?s)`, `(?U)` (any combination, before anything else);
- literal characters, and `\\` before ASCII punctuation; `\\n`, `\\t`, `\\r`, `\\f`, `\\v`;
- `.`, `^`, `$`, `\\b`, `\\B`, `\\A`, `\\z`, `\\d`, `\\D`, `\\w`, `\\W`, `\\s`, `\\S`;
- classes `[...]` and `[^...]` of characters, ranges and `\\d`/`\\w`/`\\s`/punctuation escapes;
- groups `(...)`, `(?:...)`, `(?P<name>...)`, alternation `|`;
- repeats `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each optionally lazy (`?`).
"""

from __future__ import annotations

from typing import Any

# Nodes (tuples, first item the kind):
#   ("lit", ch)               one character
#   ("set", chars | None)     one character of a class, `\d`...; chars when a positive class
#                             of at most _SET_CHARS characters spells them, else None
#   ("bol",) / ("eol",)       `^` / `$`
#   ("other",)                anything else that is one item (`.`, `\b`, `\A`...)
#   ("rep", lo, hi, node)     a repeat of one node (hi None: unbounded)
#   ("group", alts)           a group `(...)`, `(?:...)` or `(?P<name>...)`: its alternatives
# A pattern: (flags, alts), flags a string of `imsU`, alts its top-level alternatives.
Node = tuple[Any, ...]
Parsed = tuple[str, list[list[Node]]]

_SET_CHARS = 64
_MAX_DEPTH = 64
_MAX_REPEAT = 1000  # RE2's own limit
_FLAGS = frozenset("imsU")
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_DIGITS = "0123456789"  # RE2's \d: ASCII digits only
_PERL_CLASSES = frozenset("dDwWsS")
_ZERO_WIDTH = frozenset("bBAz")
_SPECIAL = frozenset("\\.^$|?*+()[]{}")


class _Unreadable(Exception):
    """A shape this parser does not read (the pattern is left to RE2)."""


def parse(pattern: str) -> Parsed | None:
    """`pattern`'s structure, or None when any part of it is outside the shapes read."""
    try:
        return _Reader(pattern).pattern()
    except _Unreadable:
        return None


def _count(text: str) -> bool:
    """`text` is a repeat count RE2 can read: ASCII digits, at most four (it refuses
    counts over 1,000; longer digit runs it reads as text)."""
    return 0 < len(text) <= 4 and text.isascii() and text.isdigit()


def _punct(ch: str) -> bool:
    return ch.isascii() and not ch.isalnum() and ch.isprintable() and ch != " "


class _Reader:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def pattern(self) -> Parsed:
        flags = ""
        while self.s.startswith("(?", self.i):
            end = self.s.find(")", self.i)
            body = self.s[self.i + 2 : end] if end > 0 else ""
            if not body or not set(body) <= _FLAGS:
                break  # a group, not a flag setting (or unreadable: `alts` decides)
            flags += body
            self.i = end + 1
        alts = self.alternatives(0)
        if self.i != len(self.s):
            raise _Unreadable  # a `)` with no group open
        return "".join(sorted(set(flags))), alts

    def alternatives(self, depth: int) -> list[list[Node]]:
        if depth > _MAX_DEPTH:
            raise _Unreadable
        alts = [self.sequence(depth)]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.sequence(depth))
        return alts

    def sequence(self, depth: int) -> list[Node]:
        seq: list[Node] = []
        while self.i < len(self.s) and self.peek() not in "|)":
            node = self.atom(depth)
            seq.append(self.repeats(node))
        return seq

    def repeats(self, node: Node) -> Node:
        """`node` with the repeat operators after it (RE2 refuses a repeat of a repeat
        such as `a**`, so patterns it compiled have at most one; two are unreadable)."""
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
        elif ch == "{":
            bounds = self.counted()
            if bounds is None:
                raise _Unreadable  # `{` as a literal (RE2) or `{,n}` (a repeat to Python)
            lo, hi = bounds
        else:
            return node
        if node[0] in ("bol", "eol", "rep"):
            raise _Unreadable
        if self.peek() == "?":
            self.i += 1  # lazy: the same matches exist, only their choice differs
        if self.peek() in ("*", "+", "?", "{"):
            raise _Unreadable
        return ("rep", lo, hi, node)

    def counted(self) -> tuple[int, int | None] | None:
        """`{n}`, `{n,}` or `{n,m}` at the cursor, read past; None (cursor kept) otherwise."""
        end = self.s.find("}", self.i)
        if end < 0:
            return None
        lo_text, comma, hi_text = self.s[self.i + 1 : end].partition(",")
        if not _count(lo_text) or (hi_text and not _count(hi_text)):
            return None  # RE2 reads a count it cannot take as text (`a{99999999999}`)
        lo = int(lo_text)
        hi = lo if not comma else (int(hi_text) if hi_text else None)
        if lo > _MAX_REPEAT or (hi is not None and (hi > _MAX_REPEAT or hi < lo)):
            raise _Unreadable
        self.i = end + 1
        return lo, hi

    def atom(self, depth: int) -> Node:
        ch = self.peek()
        self.i += 1
        if ch == "\\":
            return self.escape()
        if ch == "[":
            return self.char_class()
        if ch == "(":
            return self.group(depth)
        if ch == ".":
            return ("other",)
        if ch == "^":
            return ("bol",)
        if ch == "$":
            return ("eol",)
        if ch in _SPECIAL:
            raise _Unreadable  # `]`, `}`, `{` as literals, a repeat with nothing before it
        return ("lit", ch)

    def escape(self) -> Node:
        ch = self.peek()
        self.i += 1
        if ch in _CONTROL:
            return ("lit", _CONTROL[ch])
        if ch == "d":
            return ("set", _DIGITS)
        if ch in _PERL_CLASSES:
            return ("set", None)
        if ch in _ZERO_WIDTH:
            return ("other",)
        if ch and _punct(ch):
            return ("lit", ch)
        raise _Unreadable  # \Q...\E, \p{...}, \x41, \C, \1, a trailing backslash...

    def char_class(self) -> Node:
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        if self.peek() in ("]", ":", "-"):
            raise _Unreadable  # `[]a]`, `[:alpha:]`-like, a leading `-`: read differently
        chars: list[str] | None = []
        while True:
            if chars is not None and len(chars) > 4 * _SET_CHARS:
                chars = None  # too many to spell: still read, as a class of unknown characters
            ch = self.peek()
            if ch == "":
                raise _Unreadable
            self.i += 1
            if ch == "]":
                break
            if ch == "[":
                raise _Unreadable  # a POSIX class `[[:digit:]]` or a literal `[`
            if ch == "\\":
                e = self.peek()
                self.i += 1
                if e == "d":
                    if chars is not None:
                        chars.extend(_DIGITS)
                    continue
                if e in _PERL_CLASSES:
                    chars = None
                    continue
                if e in _CONTROL:
                    ch = _CONTROL[e]
                elif e and _punct(e):
                    ch = e
                else:
                    raise _Unreadable
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self.peek()
                self.i += 1
                if hi in ("\\", "["):
                    raise _Unreadable
                if ord(hi) < ord(ch):
                    raise _Unreadable  # RE2 refuses it
                if chars is not None:
                    if ord(hi) - ord(ch) >= _SET_CHARS:
                        chars = None
                    else:
                        chars.extend(map(chr, range(ord(ch), ord(hi) + 1)))
                continue
            if ch == "-" and self.peek() != "]":
                raise _Unreadable  # `-` inside, not as a range and not last
            if chars is not None:
                chars.append(ch)
        if negated or chars is None:
            return ("set", None)
        unique = "".join(dict.fromkeys(chars))
        if not unique:
            raise _Unreadable
        if len(unique) == 1:
            return ("lit", unique)
        return ("set", unique if len(unique) <= _SET_CHARS else None)

    def group(self, depth: int) -> Node:
        if self.peek() == "?":
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self.s.startswith("?P<", self.i):
                end = self.s.find(">", self.i)
                name = self.s[self.i + 3 : end] if end > 0 else ""
                if not name or not name.replace("_", "a").isalnum() or not name.isascii():
                    raise _Unreadable
                self.i = end + 1
            else:
                raise _Unreadable  # flags inside the pattern, `(?i:...)`, look-arounds
        alts = self.alternatives(depth + 1)
        if self.peek() != ")":
            raise _Unreadable
        self.i += 1
        return ("group", alts)
