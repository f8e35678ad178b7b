"""Actions, registered by name: archive and dead letters are the pipeline's own; the
rules' actions (forward, slack, sns) register here. Adding one is a module with
`@register` (see `base.py`) and its line in `BUILTIN`.

Each module is imported the first time its action is asked for by name (the rules
schema checking a rule that names it, or the pipeline building it), not when this
package is: a function whose rules name no forward never loads the sinks, nor Slack's
client without a Slack rule. Action modules import `chalicelib.actions.base`, never
this package, so importing them makes no cycle.
"""

from chalicelib.actions.base import (
    ROUTING_VERBS,
    Action,
    AlertAction,
    get,
    names,
    register,
    register_module,
)
from chalicelib.actions.context import ActionContext, Delivery
from chalicelib.options import Option

# Action name -> the module that registers it.
BUILTIN = {
    "forward": "chalicelib.actions.forward",
    "slack": "chalicelib.actions.slack",
    "sns": "chalicelib.actions.sns",
}
for _name, _module in BUILTIN.items():
    register_module(_name, _module)

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
    "register_module",
]
