"""Typed firing specs: what the rules schema hands the alerting gates.

A rule's `throttle`, `threshold`, `sequence` and `absence` blocks, validated and
with durations already in seconds, so the gates read numbers, never rule text.
`window` keeps the duration as the rules file wrote it (`5m`): it is what alert
notes and silence events show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Condition = dict[str, Any]  # one validated `match.where`-style condition


@dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """An alert budget: at most `max` alert messages per window, per rendered `key`."""

    window_s: int
    max: int = 1
    key: str | None = None
    window: str = ""


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """Fire once when `count` distinct matches fall in one tumbling window, per `key`."""

    count: int
    window_s: int
    key: str | None = None
    window: str = ""


@dataclass(frozen=True, slots=True)
class SequenceSpec:
    """Fire on a `then` match preceded by a `first` match of the same key within `within_s`."""

    first: tuple[Condition, ...]
    then: tuple[Condition, ...]
    within_s: int
    key: str | None = None
    within: str = ""


@dataclass(frozen=True, slots=True)
class AbsenceSpec:
    """Alert when a tag (matching the rule, or listed in `tags`) is silent for `window_s`."""

    window_s: int
    tags: tuple[str, ...] = ()
    window: str = ""


FiringSpec = ThrottleSpec | ThresholdSpec | SequenceSpec | AbsenceSpec


def label(text: str, seconds: int) -> str:
    """A duration as the rules file wrote it, or in seconds when built without one."""
    return text or f"{seconds}s"
