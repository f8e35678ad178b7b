"""Declared options of a component (action, parser): one place for type, default, description.

Schemas read these to reject unknown keys and to say what a key expects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final


class Option:
    """One declared option, read-only. A plain class: a frozen dataclass costs ~1 ms to
    create on a cold start and its generated methods are not used (README, "Cold start")."""

    __slots__ = ("check", "default", "description", "required", "type")

    def __init__(
        self,
        type: type | tuple[type, ...],
        description: str,
        required: bool = False,
        default: Any = None,
        check: Callable[[Any], str | None] | None = None,  # returns an error text, or None
    ) -> None:
        self.type: Final = type
        self.description: Final = description
        self.required: Final = required
        self.default: Final = default
        self.check: Final = check


def check_options(opts: Any, spec: Mapping[str, Option], path: str) -> list[tuple[str, str]]:
    """Problems with `opts` against `spec`, as (field path, reason) pairs."""
    if not isinstance(opts, dict):
        return [(path, "options must be a mapping")]
    problems: list[tuple[str, str]] = []
    for key in sorted(set(opts) - set(spec)):
        problems.append((f"{path}.{key}", f"unknown option (allowed: {', '.join(sorted(spec))})"))
    for key, option in spec.items():
        if key not in opts:
            if option.required:
                problems.append((f"{path}.{key}", f"required: {option.description}"))
            continue
        value = opts[key]
        types = option.type if isinstance(option.type, tuple) else (option.type,)
        bad_bool = (
            isinstance(value, bool) and bool not in types and (int in types or float in types)
        )
        if bad_bool or not isinstance(value, option.type):
            problems.append((f"{path}.{key}", f"wrong type: {option.description}"))
        elif option.check is not None and (problem := option.check(value)):
            problems.append((f"{path}.{key}", problem))
    return problems
