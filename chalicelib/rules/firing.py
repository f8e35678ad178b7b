"""Typed firing specs: what the rules schema hands the alerting gates.

A rule's `throttle`, `threshold`, `sequence` and `absence` blocks, validated and
with durations already in seconds, so the gates read numbers, never rule text.
`window` keeps the duration as the rules file wrote it (`5m`): it is what alert
notes and silence events show.
"""

from __future__ import annotations

from typing import Any, Final

from chalicelib.records import record

Condition = dict[str, Any]  # one validated `match.where`-style condition


@record(frozen=True)
class ThrottleSpec:
    """An alert budget: at most `max` alert messages per window, per rendered `key`."""

    __slots__ = ("key", "max", "window", "window_s")

    window_s: Final[int]
    max: Final[int]
    key: Final[str | None]
    window: Final[str]

    def __init__(
        self,
        window_s: int,
        max: int = 1,
        key: str | None = None,
        window: str = "",
    ) -> None:
        self.window_s = window_s
        self.max = max
        self.key = key
        self.window = window


@record(frozen=True)
class ThresholdSpec:
    """Fire once when `count` distinct matches fall in one tumbling window, per `key`."""

    __slots__ = ("count", "key", "window", "window_s")

    count: Final[int]
    window_s: Final[int]
    key: Final[str | None]
    window: Final[str]

    def __init__(
        self,
        count: int,
        window_s: int,
        key: str | None = None,
        window: str = "",
    ) -> None:
        self.count = count
        self.window_s = window_s
        self.key = key
        self.window = window


@record(frozen=True)
class SequenceSpec:
    """Fire on a `then` match preceded by a `first` match of the same key within `within_s`."""

    __slots__ = ("first", "key", "then", "within", "within_s")

    first: Final[tuple[Condition, ...]]
    then: Final[tuple[Condition, ...]]
    within_s: Final[int]
    key: Final[str | None]
    within: Final[str]

    def __init__(
        self,
        first: tuple[Condition, ...],
        then: tuple[Condition, ...],
        within_s: int,
        key: str | None = None,
        within: str = "",
    ) -> None:
        self.first = first
        self.then = then
        self.within_s = within_s
        self.key = key
        self.within = within


@record(frozen=True)
class AbsenceSpec:
    """Alert when a tag (matching the rule, or listed in `tags`) is silent for `window_s`."""

    __slots__ = ("tags", "window", "window_s")

    window_s: Final[int]
    tags: Final[tuple[str, ...]]
    window: Final[str]

    def __init__(
        self,
        window_s: int,
        tags: tuple[str, ...] = (),
        window: str = "",
    ) -> None:
        self.window_s = window_s
        self.tags = tags
        self.window = window


FiringSpec = ThrottleSpec | ThresholdSpec | SequenceSpec | AbsenceSpec


def label(text: str, seconds: int) -> str:
    """A duration as the rules file wrote it, or in seconds when built without one."""
    return text or f"{seconds}s"
