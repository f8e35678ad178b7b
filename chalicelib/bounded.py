"""Fullmatches with a counted repetition, without RE2's cost of compiling the count.

RE2 compiles `x{1,N}` as N copies of `x`: `https?://[^\\s<>|]{1,1000}` took ~7 ms to
compile, `[A-Za-z0-9_.*{},#@:$-]{1,512}` ~3 ms, and the checks of a rules document
compiled ~13 ms of them on a cold start's first event. `Bounded` asks RE2 for
`head(x+)tail` (microseconds to compile) and counts the repetition's characters in
Python: RE2 matches a str as UTF-8 characters, which is what `len` counts, so the
answer is the same.

The body's class must share no character with what `head` may end with or `tail` may
begin with, so a match has one parse and the group is the repetition; each pattern
written this way is checked against its counted form (tests/unit/test_bounded.py).
"""

from __future__ import annotations

from typing import Any

import re2


class Bounded:
    """`head` `body{1,most}` `tail` as a fullmatch, with `body` one character class."""

    __slots__ = ("_regex", "most")

    def __init__(self, body: str, most: int, *, head: str = "", tail: str = "") -> None:
        self._regex = re2.compile(f"{head}(?P<body>{body}+){tail}")
        self.most = most

    def fullmatch(self, text: str) -> bool:
        m: Any = self._regex.fullmatch(text)
        return m is not None and len(m.group("body")) <= self.most
