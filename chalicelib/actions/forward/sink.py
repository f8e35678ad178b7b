"""The sinks of `forward`, registered by (`to`, `format`). Adding one is one module.

A sink module in this package declares a `Sink` subclass with its destination
(`to`, and `format` for HTTP bodies), its own options (type, default, description)
and, when options depend on each other, `validate`; `@register` enters it here.
`load()` imports every module of the package, so nothing else lists the sinks: the
`forward` action builds its option table, its `to`/`format` choices and the
"applies to ... only" errors from what is registered.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.common import Outcome, Retry
from chalicelib.event import LogEvent
from chalicelib.options import Option


class Sink(ABC):
    """One destination of `forward`. Built from the rule's options (defaults filled in)
    and the action's context; builds no client and reads no secret before `send`, so
    `preview` works without AWS."""

    to: ClassVar[str]
    format: ClassVar[str | None] = None  # set for sinks that share a `to` (HTTP bodies)
    summary: ClassVar[str] = ""  # one line for the option descriptions
    # Where the sink is listed in `to`/`format` choices and messages (lowest first).
    order: ClassVar[int] = 100
    default: ClassVar[bool] = False  # the format of its `to` when a rule names none
    options: ClassVar[dict[str, Option]] = {}

    name: str  # the destination in reasons: "kinesis app-logs", "http loki logs.example"

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        self.opts = opts
        self.ctx = ctx  # what the action was given: clients, secrets (never used by preview)

    @classmethod
    def validate(cls, opts: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems across this sink's options (each already passed its own check)."""
        return []

    @abstractmethod
    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        """Deliver the batch within `retry`'s budget; report what was not delivered."""

    @abstractmethod
    def preview(self, events: list[LogEvent]) -> str:
        """What the destination would receive for the first event (no I/O)."""


_sinks: dict[tuple[str, str | None], type[Sink]] = {}
_listeners: list[Callable[[], None]] = []


def register(cls: type[Sink]) -> type[Sink]:
    key = (cls.to, cls.format)
    if key in _sinks:
        raise ValueError(f"forward sink {key} registered twice")
    _sinks[key] = cls
    changed()
    return cls


def unregister(cls: type[Sink]) -> None:
    """Remove a sink (one a test or an extension registered)."""
    if _sinks.get((cls.to, cls.format)) is cls:
        del _sinks[(cls.to, cls.format)]
        changed()


def on_change(listener: Callable[[], None]) -> None:
    """Call `listener` whenever the set of sinks changes (the action's option table)."""
    _listeners.append(listener)


def changed() -> None:
    for listener in _listeners:
        listener()


_loaded = False


def load() -> None:
    """Import every module of this package (each sink registers itself)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = __name__.rpartition(".")[0]
    path = importlib.import_module(package).__path__
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def sinks() -> list[type[Sink]]:
    """Every registered sink, in listing order."""
    load()
    return sorted(_sinks.values(), key=lambda s: (s.order, s.to, s.format or ""))


def find(to: str, fmt: str | None) -> type[Sink] | None:
    """The sink for `to` and `format` (None for destinations without formats)."""
    load()
    return _sinks.get((to, fmt))


def destinations() -> list[str]:
    """The `to` values, in listing order."""
    return list(dict.fromkeys(s.to for s in sinks()))


def formats(to: str) -> list[str]:
    """The `format` values of one destination (empty when it has none)."""
    return [s.format for s in sinks() if s.to == to and s.format is not None]


def default_format(to: str) -> str | None:
    """The format used when a rule names none: the one marked `default`, else the first."""
    choices = [s for s in sinks() if s.to == to and s.format is not None]
    marked = [s for s in choices if s.default] or choices
    return marked[0].format if marked else None
