"""Actions, registered by name. Adding one is a module plus `@register`.

Each action declares its options in one place (type, default, description), so
the rules schema rejects unknown keys and documents every option. Actions get
batches: all events one rule routed to them in one invocation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from chalicelib.event import LogEvent
from chalicelib.invocation import Invocation
from chalicelib.options import Option

__all__ = ["Action", "AlertAction", "Option", "get", "names", "register"]


class Action(ABC):
    name: ClassVar[str]
    options: ClassVar[dict[str, Option]] = {}
    alerting: ClassVar[bool] = False  # counts in the ledger's `alerts`

    def __init__(self, rule_id: str, opts: dict[str, Any], runtime: Any) -> None:
        self.rule_id = rule_id
        self.opts = {k: opts.get(k, o.default) for k, o in self.options.items()}
        self.runtime = runtime  # chalicelib.pipeline.Runtime: settings, clients, secrets

    @classmethod
    def validate_options(cls, opts: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems across options (each already passed its own check) as (option, reason)."""
        return []

    @abstractmethod
    def deliver(self, events: list[LogEvent], inv: Invocation) -> int:
        """Deliver a batch; return the number of messages sent. Raise ActionError."""


class AlertAction(Action):
    """An action that tells people (Slack, SNS): throttled, deduplicated by event id,
    counted in `alerts`; `note` carries what the firing condition adds (a threshold's
    count, a sequence's first event, alerts suppressed since the last one)."""

    alerting: ClassVar[bool] = True

    @abstractmethod
    def deliver(self, events: list[LogEvent], inv: Invocation, note: str | None = None) -> int:
        """Send one alert for the batch; return messages sent. Raise ActionError."""


_registry: dict[str, type[Action]] = {}

# Routing verbs handled by the router itself, not by an Action class.
ROUTING_VERBS = {
    "drop": "discard the event (counted as dropped by this rule); ends evaluation",
    "archive": "archive the event (the default for every event no rule drops)",
}


def register(cls: type[Action]) -> type[Action]:
    if cls.name in _registry or cls.name in ROUTING_VERBS:
        raise ValueError(f"action {cls.name!r} registered twice")
    _registry[cls.name] = cls
    return cls


def get(name: str) -> type[Action]:
    _load_builtin()
    return _registry[name]


def names() -> list[str]:
    _load_builtin()
    return sorted([*_registry, *ROUTING_VERBS])


_loaded = False


def _load_builtin() -> None:
    """Import the built-in action modules (cheap: each defers its SDK import)."""
    global _loaded
    if not _loaded:
        _loaded = True
        from chalicelib.actions import forward, slack, sns  # noqa: F401
