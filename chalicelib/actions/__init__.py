"""Actions, registered by name: archive and dead letters are the pipeline's own; the
rules' actions (forward, slack, sns) register here. Adding one is a module with
`@register` (see `base.py`) and its import below.

Action modules import `chalicelib.actions.base`, never this package, so importing
them here makes no cycle.
"""

from chalicelib.actions import forward, slack, sns
from chalicelib.actions.base import (
    ROUTING_VERBS,
    Action,
    AlertAction,
    get,
    names,
    register,
)
from chalicelib.actions.context import ActionContext, Delivery
from chalicelib.options import Option

BUILTIN = (forward, slack, sns)

__all__ = [
    "BUILTIN",
    "ROUTING_VERBS",
    "Action",
    "ActionContext",
    "AlertAction",
    "Delivery",
    "Option",
    "get",
    "names",
    "register",
]
