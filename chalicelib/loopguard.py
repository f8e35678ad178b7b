"""The loop guard: Sluice never routes, nor subscribes, its own functions' logs.

Each invocation logs a ledger line; a subscription that delivered those lines back to
Sluice would make every invocation cause another. Sluice's functions are deployed as
`<app>-<stage>-<function>` (Chalice's naming, kept by infra/functions.yaml) and log to
`/aws/lambda/<that name>`. A group is Sluice's own when it is

- any function of the running deployment's app and stage (`/aws/lambda/sluice-dev-*`),
- one of Sluice's function names (FUNCTIONS) in any stage of the app: two stages that
  subscribe each other's groups loop just the same,
- or the running function itself, whatever its name,

and nothing broader: a customer's `sluice-gate` or `sluice-gateway-prod` is routed like
any other group. The app is `SLUICE_APP_NAME` (default `sluice`, `.chalice/config.json`'s
app_name); the stage is `SLUICE_STAGE`, else read from the running function's name.
Matching is string operations only: group names are chosen by whoever creates them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from chalicelib.event import LogEvent
    from chalicelib.settings import Settings

APP_NAME = "sluice"
# app.py's functions (a test keeps the two lists equal).
FUNCTIONS = (
    "cloudwatch_logs",
    "kinesis_records",
    "s3_objects",
    "s3_object_created",
    "absence_check",
    "log_group_created",
)
LAMBDA_GROUP = "/aws/lambda/"
REASON = "Sluice's own function logs (loop guard)"


def stage_of(function_name: str, app: str = APP_NAME) -> str | None:
    """`sluice-dev-cloudwatch_logs` -> `dev` (a stage may hold dashes: the known function
    suffix is taken off first); None for a name that is not `<app>-<stage>-...`."""
    if not function_name.startswith(app + "-"):
        return None
    rest = function_name[len(app) + 1 :]
    for fn in FUNCTIONS:
        if rest.endswith("-" + fn) and len(rest) > len(fn) + 1:
            return rest[: -len(fn) - 1]
    stage, dash, tail = rest.partition("-")
    return stage if stage and dash and tail else None


class LoopGuard:
    """Which functions and log groups are this deployment's own, read-only. A plain
    class: a frozen dataclass costs ~1 ms to create on a cold start and its generated
    methods are not used (README, "Cold start")."""

    __slots__ = ("app", "own_function", "stage")

    def __init__(
        self, app: str = APP_NAME, stage: str | None = None, own_function: str | None = None
    ) -> None:
        self.app: Final = app
        self.stage: Final = stage
        self.own_function: Final = own_function

    def owns_function(self, name: str) -> bool:
        """Whether a Lambda function name is one of this deployment's (or Sluice's)."""
        if not name or "/" in name:
            return False
        if name == self.own_function:
            return True
        app = self.app + "-"
        if not name.startswith(app):
            return False
        if self.stage is not None:
            prefix = f"{app}{self.stage}-"
            if name.startswith(prefix) and len(name) > len(prefix):
                return True
        # Sluice's function names in any stage: <app>-<stage>-<function>, stage not empty.
        return any(
            name.endswith("-" + fn) and len(name) > len(app) + len(fn) + 1 for fn in FUNCTIONS
        )

    def owns(self, group: object) -> bool:
        """Whether a log group is one of Sluice's own functions' groups."""
        if not isinstance(group, str) or not group.startswith(LAMBDA_GROUP):
            return False
        return self.owns_function(group[len(LAMBDA_GROUP) :])

    def reason(self, group: object) -> str | None:
        return REASON if self.owns(group) else None

    def split(self, events: list[LogEvent]) -> tuple[list[LogEvent], int]:
        """(the events to route, how many input events the guard drops): each event is
        judged by its own group (a Kinesis record may mix groups)."""
        kept: list[LogEvent] = []
        dropped = 0
        last: object = None
        own = False
        for ev in events:
            group = ev.source.get("log_group")
            if group is not last:  # consecutive events share their group: judge it once
                last, own = group, self.owns(group)
            if own:
                dropped += ev.count
            else:
                kept.append(ev)
        return kept, dropped

    def caused_by_sluice(self, detail: dict[str, Any]) -> bool:
        """Whether a CloudTrail record's caller is one of Sluice's function roles (Chalice
        names a function's role like the function)."""
        ident = detail.get("userIdentity") or {}
        issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
        return any(self.owns_function(_role_name(a)) for a in (ident.get("arn"), issuer.get("arn")))


def _role_name(arn: object) -> str:
    """`arn:aws:sts::1:assumed-role/NAME/session` or `arn:aws:iam::1:role/path/NAME` -> NAME."""
    if not isinstance(arn, str):
        return ""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return ""
    kind, _, rest = parts[5].partition("/")
    if kind == "assumed-role":
        return rest.partition("/")[0]
    if kind == "role":
        return rest.rpartition("/")[2]
    return ""


@lru_cache(maxsize=16)
def _guard(app: str, stage: str | None, function_name: str | None) -> LoopGuard:
    return LoopGuard(
        app, stage or (stage_of(function_name, app) if function_name else None), function_name
    )


def loop_guard(settings: Settings, function_name: str | None = None) -> LoopGuard:
    """The guard of the running deployment: settings first, else the function's name (the
    invocation's, else AWS_LAMBDA_FUNCTION_NAME as read into the settings)."""
    return _guard(settings.app_name, settings.stage, function_name or settings.function_name)
