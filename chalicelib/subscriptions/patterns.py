"""Which log groups Sluice subscribes: glob patterns, excludes, and the loop guard."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import re2

from chalicelib.errors import SluiceError
from chalicelib.loopguard import LoopGuard, stage_of

# Log group names: letters, digits and _ - / . # (CreateLogGroup API reference).
_NAME_CHARS = re2.compile(r"[A-Za-z0-9_\-/.#*?{},]+")


class SubscriptionError(SluiceError):
    """A subscription pattern, setting or destination that cannot be used."""


def _glob(pattern: str) -> str:
    """A log group pattern as a regex: `*` one path part, `**` any number, `{a,b}` either.

    Run by RE2 only (`_compile`): group names are chosen by whoever creates the group,
    and a backtracking engine took over 10 s on `*-*-*-*-prod` against a 493-character
    name, multiplied by the name's length for each further star. RE2 is linear in it."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            before = i == 0 or pattern[i - 1] == "/"
            after = i + 2 == n or pattern[i + 2] == "/"
            if before and after and i + 2 < n:  # `a/**/b` and `**/b`: zero or more parts
                out.append("(?:.*/)?")
                i += 3
            elif before and i > 0 and i + 2 == n:  # trailing `a/**`: `a` itself too
                out[-1:] = ["(?:/.*)?"]
                i += 2
            else:
                out.append(".*")
                i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "{":
            end = pattern.find("}", i)
            if end < 0:
                raise SubscriptionError(f"pattern {pattern!r}: '{{' without '}}'")
            alts = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_glob(a) for a in alts) + ")")
            i = end + 1
        else:
            out.append(re2.escape(c))
            i += 1
    return "".join(out)


def _compile(regex: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(regex, options)


def literal_prefix(pattern: str) -> str:
    """The part before the first wildcard: what DescribeLogGroups can filter on."""
    cut = [i for i in (pattern.find(c) for c in "*?{") if i >= 0]
    return pattern[: min(cut)] if cut else pattern


def check_pattern(pattern: str) -> str:
    if not pattern or not _NAME_CHARS.fullmatch(pattern):
        raise SubscriptionError(
            f"pattern {pattern!r}: log group names take letters, digits and _ - / . # only"
        )
    return pattern


@dataclass(frozen=True)
class Patterns:
    """Which log groups Sluice subscribes: any include, no exclude, never its own."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    own_function: str | None = None  # the running function's name, guarded too
    guard: LoopGuard | None = None  # default: the deployment read from own_function

    def __post_init__(self) -> None:
        if not self.include:
            raise SubscriptionError("at least one pattern is needed")
        for p in (*self.include, *self.exclude):
            check_pattern(p)

    @cached_property
    def _include(self) -> Any:
        return _compile("|".join(f"(?:{_glob(p)})" for p in self.include))

    @cached_property
    def _excludes(self) -> list[tuple[str, Any]]:
        return [(p, _compile(_glob(p))) for p in self.exclude]

    def skip_reason(self, name: str) -> str | None:
        """None when `name` is to be subscribed, else why not (loop guard first)."""
        guard = self.guard or _default_guard(self.own_function)
        return guard.reason(name) or self.selection_reason(name)

    def selection_reason(self, name: str) -> str | None:
        """The patterns alone, without the loop guard (removing Sluice's filter is always safe)."""
        for p, rx in self._excludes:
            if rx.fullmatch(name):
                return f"excluded by {p!r}"
        if not self._include.fullmatch(name):
            return "no pattern matches"
        return None

    def prefixes(self) -> list[str]:
        """The fewest DescribeLogGroups prefixes that cover every include ('' = all)."""
        found = sorted({literal_prefix(p) for p in self.include})
        out: list[str] = []
        for p in found:
            if not any(p.startswith(q) for q in out):
                out.append(p)
        return out


def _default_guard(own_function: str | None) -> LoopGuard:
    return LoopGuard(
        stage=stage_of(own_function) if own_function else None, own_function=own_function
    )


def loop_guard_reason(name: str, own_function: str | None = None) -> str | None:
    """Why `name` must never be subscribed (Sluice's own logs), or None."""
    return _default_guard(own_function).reason(name)


def is_sluice_log_group(name: str) -> bool:
    """Whether `name` is one of Sluice's function groups, in any stage (the pipeline
    uses the running deployment's guard: chalicelib/loopguard.py)."""
    return LoopGuard().owns(name)


def caused_by_sluice(detail: dict[str, Any], own_function: str | None = None) -> bool:
    """Whether a CloudTrail record's caller is one of Sluice's function roles."""
    return _default_guard(own_function).caused_by_sluice(detail)
