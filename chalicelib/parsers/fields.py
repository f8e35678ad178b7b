"""Small field readers several formats share: quoted values and numbers."""

from __future__ import annotations

import math


def closing_quote(s: str, start: int) -> int:
    """Index of the `"` closing a quoted value whose content begins at `start`, or -1.
    A quote preceded by an odd run of backslashes is escaped."""
    q = start
    while (q := s.find('"', q)) != -1:
        b = q - 1
        while b >= start and s[b] == "\\":
            b -= 1
        if (q - 1 - b) % 2 == 0:  # an even run of backslashes escapes nothing
            return q
        q += 1
    return -1


def number(text: str) -> int | float | None:
    """A number the archive can write (a 64-bit integer, a finite float), else None:
    orjson refuses wider integers, and Athena's bigint is signed 64-bit."""
    if "." in text:  # decimals (102.25): int() would raise and be caught first
        try:
            f = float(text)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    try:
        n = int(text)
    except ValueError:
        try:
            f = float(text)  # 1e3, inf, nan
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return n if -(2**63) <= n < 2**64 else None
