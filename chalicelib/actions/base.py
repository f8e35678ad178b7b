"""The Action base classes and the registry. Adding an action is a module plus
`@register`, and one line in `BUILTIN` of `chalicelib/actions/__init__.py` (its module
is imported when a rule first names the action).

Each action declares its options in one place (type, default, description), so
the rules schema rejects unknown keys and documents every option. An action is
built with an ActionContext (settings, clients, secrets: `context.py`), never the
Runtime, and every kind has one `deliver(Delivery)`: all events one rule routed to
it in one batch, with the invocation, the firing condition's note and where the
events were archived.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from importlib import import_module
from typing import Any, ClassVar

from chalicelib.actions.context import ActionContext, Delivery
from chalicelib.options import Option


class Action(ABC):
    name: ClassVar[str]
    options: ClassVar[Mapping[str, Option]] = {}
    alerting: ClassVar[bool] = False  # counts in the ledger's `alerts`

    def __init__(self, rule_id: str, opts: dict[str, Any], ctx: ActionContext) -> None:
        self.rule_id = rule_id
        self.opts = {k: opts.get(k, o.default) for k, o in self.options.items()}
        self.ctx = ctx

    @classmethod
    def validate_options(cls, opts: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems across options (each already passed its own check) as (option, reason)."""
        return []

    @abstractmethod
    def deliver(self, batch: Delivery) -> int:
        """Deliver a batch; return the number of messages sent (alerts) or events delivered
        (forwards). Raise ActionError."""


class AlertAction(Action):
    """An action that tells people (Slack, SNS): throttled, deduplicated by event id,
    counted in `alerts`; the batch's `note` carries what the firing condition adds (a
    threshold's count, a sequence's first event, alerts suppressed since the last one)."""

    alerting: ClassVar[bool] = True


_registry: dict[str, type[Action]] = {}

# Routing verbs handled by the router itself, not by an Action class.
ROUTING_VERBS = {
    "drop": "discard the event (counted as dropped by this rule); ends evaluation",
    "archive": "archive the event (the default for every event no rule drops)",
}


# Action name -> the module that registers it, imported the first time the name is
# asked for (`get`): a function whose rules name no forward never loads the sinks.
_modules: dict[str, str] = {}


def register(cls: type[Action]) -> type[Action]:
    if cls.name in _registry or cls.name in ROUTING_VERBS:
        raise ValueError(f"action {cls.name!r} registered twice")
    _registry[cls.name] = cls
    return cls


def register_module(name: str, module: str) -> None:
    """Declare that importing `module` registers the action `name`."""
    if name in ROUTING_VERBS:
        raise ValueError(f"action {name!r} is a routing verb")
    _modules[name] = module


def get(name: str) -> type[Action]:
    """The action class registered as `name`, importing its module on first use
    (KeyError for a name nothing registers)."""
    cls = _registry.get(name)
    if cls is None:
        module = _modules.get(name)
        if module is None:
            raise KeyError(name)
        import_module(module)
        cls = _registry.get(name)
        if cls is None:
            raise KeyError(f"{module} does not register action {name!r}")
    return cls


def names() -> list[str]:
    return sorted({*_registry, *_modules, *ROUTING_VERBS})
