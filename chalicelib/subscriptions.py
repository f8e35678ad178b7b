"""Subscribing log groups to Sluice: patterns, the loop guard, one group at a time.

Used by `sluice subscribe|unsubscribe|subscriptions` (many groups, an operator's
credentials) and by the `log_group_created` function (one new group, the
function's role). Everything takes its boto3 clients as arguments.

CloudWatch Logs allows two subscription filters per log group (PutSubscriptionFilter
API reference). Sluice's filter has one fixed name per stage (`sluice-<stage>`), so
it is found, updated in place (a put under an existing name does not count
against the limit) and removed without touching anyone else's filter.
"""

from __future__ import annotations

import base64
import gzip
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson

from chalicelib.errors import SluiceError

MAX_FILTERS = 2
FUNCTIONS = ("cloudwatch_logs", "kinesis_records", "s3_objects", "log_group_created")
# app.py: `@app.on_kinesis_record(stream="sluice-fan-in")`.
DEFAULT_STREAM = "sluice-fan-in"
DESTINATIONS = ("lambda", "kinesis")
# Loop guard. Sluice's functions log to /aws/lambda/sluice-<stage>-<function>;
# subscribing those groups feeds Sluice its own ledger lines, and each invocation
# then logs more. Every stage is excluded, not only this one: two stages that
# subscribe each other's groups loop just the same.
SLUICE_GROUPS = ("/aws/lambda/sluice-*",)
# Roles Sluice's functions run as (Chalice names them <app>-<stage>-<function>):
# a CreateLogGroup made by one of them is a Sluice function creating its own group.
_SLUICE_ROLE = re.compile(r"(?:assumed-role|role)/sluice-[^/]*")
# Log group names: letters, digits and _ - / . # (CreateLogGroup API reference).
_NAME_CHARS = re.compile(r"[A-Za-z0-9_\-/.#*?{},]+")

CONFIG_PK = "config"
CONFIG_SK = "subscriptions"


class SubscriptionError(SluiceError):
    """A subscription pattern, setting or destination that cannot be used."""


# ---------------------------------------------------------------- patterns
def _glob(pattern: str) -> str:
    """A log group pattern as a regex: `*` one path part, `**` any number, `{a,b}` either."""
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
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def literal_prefix(pattern: str) -> str:
    """The part before the first wildcard: what DescribeLogGroups can filter on."""
    m = re.search(r"[*?{]", pattern)
    return pattern if m is None else pattern[: m.start()]


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

    def __post_init__(self) -> None:
        if not self.include:
            raise SubscriptionError("at least one pattern is needed")
        for p in (*self.include, *self.exclude):
            check_pattern(p)

    @cached_property
    def _include(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{_glob(p)})" for p in self.include))

    @cached_property
    def _excludes(self) -> list[tuple[str, re.Pattern[str]]]:
        return [(p, re.compile(_glob(p))) for p in self.exclude]

    def skip_reason(self, name: str) -> str | None:
        """None when `name` is to be subscribed, else why not (loop guard first)."""
        return loop_guard_reason(name, self.own_function) or self.selection_reason(name)

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


_GUARD = [re.compile(_glob(p)) for p in SLUICE_GROUPS]


def loop_guard_reason(name: str, own_function: str | None = None) -> str | None:
    """Why `name` must never be subscribed (Sluice's own logs), or None."""
    if any(rx.fullmatch(name) for rx in _GUARD) or (
        own_function and name == f"/aws/lambda/{own_function}"
    ):
        return "Sluice's own function logs (loop guard)"
    return None


def is_sluice_log_group(name: str) -> bool:
    """For the pipeline: a payload from one of Sluice's own groups must not be routed."""
    return loop_guard_reason(name) is not None


def caused_by_sluice(detail: dict[str, Any]) -> bool:
    """Whether a CloudTrail record's caller is one of Sluice's function roles."""
    ident = detail.get("userIdentity") or {}
    issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
    arns = (ident.get("arn"), issuer.get("arn"))
    return any(isinstance(a, str) and _SLUICE_ROLE.search(a) for a in arns)


# ---------------------------------------------------------------- destination
@dataclass(frozen=True)
class Destination:
    """Where Sluice's filter delivers, and the filter's name (`sluice-<stage>`)."""

    kind: str
    arn: str
    filter_name: str
    role_arn: str | None = None

    @classmethod
    def for_stage(
        cls,
        prefix: str,
        kind: str,
        *,
        partition: str,
        region: str,
        account: str,
        function_arn: str | None = None,
        stream: str | None = None,
        role_arn: str | None = None,
    ) -> Destination:
        """Names follow the deployment: `<prefix>-cloudwatch_logs`, `<prefix>-logs-to-kinesis`.

        `prefix` is `sluice-<stage>`. `stream` is a name or an ARN.
        """
        if kind == "lambda":
            arn = function_arn or (
                f"arn:{partition}:lambda:{region}:{account}:function:{prefix}-cloudwatch_logs"
            )
            return cls("lambda", arn, prefix)
        if kind == "kinesis":
            stream = stream or DEFAULT_STREAM
            arn = (
                stream
                if stream.startswith("arn:")
                else f"arn:{partition}:kinesis:{region}:{account}:stream/{stream}"
            )
            # Kinesis needs a role CloudWatch Logs assumes to write (infra/resources.yaml);
            # Lambda destinations use the function's resource policy instead.
            role = role_arn or f"arn:{partition}:iam::{account}:role/{prefix}-logs-to-kinesis"
            return cls("kinesis", arn, prefix, role)
        raise SubscriptionError(f"destination {kind!r}: expected one of {', '.join(DESTINATIONS)}")

    @classmethod
    def from_function_arn(
        cls, function_arn: str, kind: str, *, stream: str | None = None
    ) -> Destination:
        """From the running `log_group_created` function's ARN (same account, region, stage)."""
        parts = function_arn.split(":")
        suffix = "log_group_created"
        if len(parts) < 7 or parts[2] != "lambda" or not parts[6].endswith(suffix):
            raise SubscriptionError(f"not a log_group_created function ARN: {function_arn!r}")
        prefix = parts[6][: -len(suffix)].rstrip("-_")
        return cls.for_stage(
            prefix, kind, partition=parts[1], region=parts[3], account=parts[4], stream=stream
        )


# ---------------------------------------------------------------- saved config
@dataclass(frozen=True)
class SubscriptionConfig:
    """What `sluice subscribe --save` keeps for `log_group_created` (rules table)."""

    patterns: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    filter_pattern: str = ""
    destination: str = "lambda"
    updated_at: str = ""

    _KEYS = frozenset({"patterns", "excludes", "filter_pattern", "destination", "updated_at"})

    def __post_init__(self) -> None:
        if self.destination not in DESTINATIONS:
            raise SubscriptionError(
                f"destination {self.destination!r}: expected one of {', '.join(DESTINATIONS)}"
            )
        Patterns(self.patterns, self.excludes)  # validates every pattern

    @classmethod
    def from_dict(cls, doc: Any) -> SubscriptionConfig:
        if not isinstance(doc, dict):
            raise SubscriptionError("subscription config: expected an object")
        unknown = set(doc) - cls._KEYS
        if unknown:
            raise SubscriptionError(f"subscription config: unknown key(s) {sorted(unknown)}")
        try:
            return cls(
                patterns=tuple(doc.get("patterns") or ()),
                excludes=tuple(doc.get("excludes") or ()),
                filter_pattern=str(doc.get("filter_pattern") or ""),
                destination=str(doc.get("destination") or "lambda"),
                updated_at=str(doc.get("updated_at") or ""),
            )
        except TypeError as e:
            raise SubscriptionError(f"subscription config: {e}") from e

    def as_dict(self) -> dict[str, Any]:
        return {
            "patterns": list(self.patterns),
            "excludes": list(self.excludes),
            "filter_pattern": self.filter_pattern,
            "destination": self.destination,
            "updated_at": self.updated_at,
        }

    def patterns_for(self, own_function: str | None = None) -> Patterns:
        return Patterns(self.patterns, self.excludes, own_function)


def read_config(ddb: Any, table: str) -> SubscriptionConfig | None:
    item = ddb.get_item(
        TableName=table,
        Key={"pk": {"S": CONFIG_PK}, "sk": {"S": CONFIG_SK}},
        ConsistentRead=True,
    ).get("Item")
    if not item:
        return None
    return SubscriptionConfig.from_dict(orjson.loads(item["body"]["S"]))


def write_config(ddb: Any, table: str, cfg: SubscriptionConfig) -> SubscriptionConfig:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    saved = SubscriptionConfig(cfg.patterns, cfg.excludes, cfg.filter_pattern, cfg.destination, now)
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": CONFIG_PK},
            "sk": {"S": CONFIG_SK},
            "body": {"S": orjson.dumps(saved.as_dict()).decode()},
            "updated_at": {"S": now},
        },
    )
    return saved


# ---------------------------------------------------------------- one group
@dataclass
class Outcome:
    """What happened to (or what is true of) one log group."""

    log_group: str
    status: str
    detail: str = ""
    filters: list[str] = field(default_factory=list)
    backfilled: int = 0


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def describe_filters(logs: Any, group: str) -> list[dict[str, Any]]:
    """The group's subscription filters (at most two; paginated all the same)."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group}
    while True:
        page = logs.describe_subscription_filters(**kwargs)
        out.extend(page.get("subscriptionFilters", []))
        token = page.get("nextToken")
        if not token:
            return out
        kwargs["nextToken"] = token


def subscribe_group(
    logs: Any,
    group: str,
    dest: Destination,
    filter_pattern: str = "",
    *,
    dry_run: bool = False,
    filters: list[dict[str, Any]] | None = None,
) -> Outcome:
    """Give `group` Sluice's filter, idempotently, never displacing another filter.

    Statuses: subscribed, updated, unchanged, covered (another filter already
    delivers to Sluice: a second would duplicate every event), blocked (two
    filters already), gone (the group was deleted), failed; with `dry_run`,
    would-subscribe and would-update.
    """
    try:
        current = describe_filters(logs, group) if filters is None else filters
    except Exception as e:
        if _code(e) == "ResourceNotFoundException":
            return Outcome(group, "gone", "log group no longer exists")
        raise
    names = [f["filterName"] for f in current]
    ours = next((f for f in current if f["filterName"] == dest.filter_name), None)
    if ours is not None:
        same = (
            ours.get("destinationArn") == dest.arn
            and (ours.get("filterPattern") or "") == filter_pattern
            and (ours.get("roleArn") or None) == dest.role_arn
        )
        if same:
            return Outcome(group, "unchanged", "", names)
        if dry_run:
            return Outcome(group, "would-update", "filter differs from the requested one", names)
        status = "updated"
    else:
        other = next((f for f in current if f.get("destinationArn") == dest.arn), None)
        if other is not None:
            return Outcome(
                group,
                "covered",
                f"filter {other['filterName']!r} already delivers to Sluice",
                names,
            )
        if len(current) >= MAX_FILTERS:
            return Outcome(
                group, "blocked", f"{MAX_FILTERS} filters already: {', '.join(names)}", names
            )
        if dry_run:
            return Outcome(group, "would-subscribe", "", names)
        status = "subscribed"
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "filterName": dest.filter_name,
        "filterPattern": filter_pattern,
        "destinationArn": dest.arn,
    }
    if dest.role_arn:
        kwargs["roleArn"] = dest.role_arn
    try:
        logs.put_subscription_filter(**kwargs)
    except Exception as e:
        code = _code(e)
        if code == "LimitExceededException":  # a filter was added since we looked
            return Outcome(group, "blocked", "subscription filter limit reached", names)
        if code == "ResourceNotFoundException":
            return Outcome(group, "gone", "log group no longer exists", names)
        if code in ("InvalidParameterException", "AccessDeniedException"):
            return Outcome(group, "failed", f"{code}: {_message(e)}", names)
        raise
    return Outcome(group, status, "", sorted({*names, dest.filter_name}))


def unsubscribe_group(logs: Any, group: str, filter_name: str, *, dry_run: bool = False) -> Outcome:
    """Remove Sluice's filter from `group`; every other filter stays."""
    try:
        names = [f["filterName"] for f in describe_filters(logs, group)]
        if filter_name not in names:
            return Outcome(group, "absent", "", names)
        if dry_run:
            return Outcome(group, "would-remove", "", names)
        logs.delete_subscription_filter(logGroupName=group, filterName=filter_name)
    except Exception as e:
        if _code(e) == "ResourceNotFoundException":
            return Outcome(group, "gone", "log group no longer exists")
        raise
    return Outcome(group, "removed", "", [n for n in names if n != filter_name])


def coverage(logs: Any, group: str, dest: Destination) -> Outcome:
    """subscribed, covered (another filter delivers to Sluice), blocked, or not-subscribed."""
    try:
        current = describe_filters(logs, group)
    except Exception as e:
        if _code(e) == "ResourceNotFoundException":
            return Outcome(group, "gone", "log group no longer exists")
        raise
    names = [f["filterName"] for f in current]
    if dest.filter_name in names:
        return Outcome(group, "subscribed", "", names)
    other = next((f for f in current if f.get("destinationArn") == dest.arn), None)
    if other is not None:
        return Outcome(group, "covered", f"by filter {other['filterName']!r}", names)
    if len(current) >= MAX_FILTERS:
        return Outcome(
            group, "blocked", f"{MAX_FILTERS} filters already: {', '.join(names)}", names
        )
    return Outcome(group, "not-subscribed", "", names)


def _message(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Message", "")) or str(e)


def ensure_logs_permission(lam: Any, function_arn: str) -> bool:
    """Let CloudWatch Logs invoke the function from any log group of its account and region.

    PutSubscriptionFilter to a Lambda function fails until this resource policy
    exists. The CloudFormation package sets it in the template; `chalice deploy`
    does not, so the CLI adds it once. True when it was added.
    """
    parts = function_arn.split(":")
    partition, region, account = parts[1], parts[3], parts[4]
    try:
        policy = orjson.loads(lam.get_policy(FunctionName=function_arn)["Policy"])
    except Exception as e:
        if _code(e) != "ResourceNotFoundException":  # no policy at all yet
            raise
        policy = {"Statement": []}
    for st in policy.get("Statement", []):
        principal = (st.get("Principal") or {}).get("Service")
        if principal == "logs.amazonaws.com" and st.get("Effect") == "Allow":
            return False
    try:
        lam.add_permission(
            FunctionName=function_arn,
            StatementId="sluice-logs-invoke",
            Action="lambda:InvokeFunction",
            Principal="logs.amazonaws.com",
            SourceArn=f"arn:{partition}:logs:{region}:{account}:log-group:*",
            SourceAccount=account,
        )
    except Exception as e:
        if _code(e) != "ResourceConflictException":  # added concurrently
            raise
        return False
    return True


# ---------------------------------------------------------------- many groups
def iter_log_groups(logs: Any, prefixes: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every log group under the prefixes, once each (DescribeLogGroups pages of 50)."""
    seen: set[str] = set()
    paginator = logs.get_paginator("describe_log_groups")
    for prefix in prefixes:
        kwargs = {"logGroupNamePrefix": prefix} if prefix else {}
        for page in paginator.paginate(**kwargs):
            for g in page.get("logGroups", []):
                name = g["logGroupName"]
                if name not in seen:
                    seen.add(name)
                    yield g


def unsupported_reason(group: dict[str, Any]) -> str | None:
    """The Infrequent Access log class has no subscription filters (CloudWatch Logs log classes)."""
    cls = group.get("logGroupClass")
    if cls == "INFREQUENT_ACCESS":
        return "Infrequent Access log class does not support subscription filters"
    return None


# ---------------------------------------------------------------- log_group_created
# A group created a moment ago may not be visible to DescribeSubscriptionFilters yet
# (eventual consistency); the delays add up to 3 s of a 30 s timeout.
_NOT_YET_DELAYS = (0.5, 1.0, 1.5)


def on_log_group_created(
    event: dict[str, Any],
    function_arn: str,
    *,
    logs: Any,
    ddb: Any,
    rules_table: str,
    own_function: str | None = None,
    stream: str | None = None,
    deliver: Callable[[dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """A CloudTrail CreateLogGroup event (via EventBridge) -> subscribe the group if it matches.

    Skips (status `skipped`, with the reason): failed API calls, events caused
    by Sluice's own roles, Sluice's own groups, groups no saved pattern matches,
    and everything while no subscription config has been saved. With `deliver`,
    what the group received before its filter took effect is backfilled.
    """
    detail = event.get("detail") or {}
    params = detail.get("requestParameters") or {}
    group = params.get("logGroupName")
    if not isinstance(group, str) or not group:
        return Outcome("", "skipped", "event carries no requestParameters.logGroupName")
    if detail.get("errorCode"):
        # CloudTrail records failed calls too (AccessDenied, ResourceAlreadyExists).
        return Outcome(group, "skipped", f"CreateLogGroup failed: {detail['errorCode']}")
    if caused_by_sluice(detail):
        return Outcome(group, "skipped", "created by a Sluice function (loop guard)")
    guard = loop_guard_reason(group, own_function)
    if guard:
        return Outcome(group, "skipped", guard)
    cfg = read_config(ddb, rules_table)
    if cfg is None:
        return Outcome(group, "skipped", "no subscription config saved (sluice subscribe --save)")
    why = cfg.patterns_for(own_function).skip_reason(group)
    if why:
        return Outcome(group, "skipped", why)
    unsupported = unsupported_reason(params)
    if unsupported:
        return Outcome(group, "blocked", unsupported)
    dest = Destination.from_function_arn(function_arn, cfg.destination, stream=stream)
    for delay in (*_NOT_YET_DELAYS, None):
        out = subscribe_group(logs, group, dest, cfg.filter_pattern)
        if out.status != "gone" or delay is None:
            break
        sleep(delay)
    if out.status == "subscribed" and deliver is not None:
        sleep(BACKFILL_SETTLE_S)
        owner = function_arn.split(":")[4]
        n, truncated = backfill(logs, group, deliver, owner=owner, filter_name=dest.filter_name)
        out.backfilled = n
        if truncated:
            out.detail = f"backfill stopped at {n} events (BACKFILL_MAX_EVENTS)"
    return out


# The transient-workload gap: a group's first lines are written before EventBridge
# brings its CreateLogGroup (seconds, sometimes more), and a subscription only
# delivers events ingested after it takes effect. So once subscribed, the lines
# already in the group are read back and sent to cloudwatch_logs as subscription
# payloads. The settle delay covers the filter's activation: events ingested in it
# may arrive twice (same CloudWatch event id, so alerts stay deduplicated), never
# not at all unless activation takes longer (AWS documents no figure).
BACKFILL_SETTLE_S = 5.0
# A job that wrote more than this before being subscribed is backfilled in part
# and says so; 10,000 events is ~1 s of pipeline and a few FilterLogEvents pages.
BACKFILL_MAX_EVENTS = 10_000
# Raw JSON per payload: gzip+base64 of it stays under the 256 KB asynchronous
# invocation payload quota even for incompressible text (x1.34).
BACKFILL_CHUNK_BYTES = 180_000


def backfill(
    logs: Any,
    group: str,
    deliver: Callable[[dict[str, Any]], None],
    *,
    owner: str,
    filter_name: str,
    max_events: int = BACKFILL_MAX_EVENTS,
) -> tuple[int, bool]:
    """Send what `group` holds so far as subscription payloads; (events sent, truncated)."""
    by_stream: dict[str, list[dict[str, Any]]] = {}
    n, truncated = 0, False
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        for ev in page.get("events", []):
            if n >= max_events:
                truncated = True
                break
            by_stream.setdefault(ev["logStreamName"], []).append(
                {"id": ev["eventId"], "timestamp": ev["timestamp"], "message": ev["message"]}
            )
            n += 1
        if truncated:
            break
    for log_stream, events in by_stream.items():
        chunk: list[dict[str, Any]] = []
        size = 0
        for ev in events:
            ev_size = len(ev["message"]) + 100
            if chunk and size + ev_size > BACKFILL_CHUNK_BYTES:
                deliver(_payload(owner, group, log_stream, filter_name, chunk))
                chunk, size = [], 0
            chunk.append(ev)
            size += ev_size
        if chunk:
            deliver(_payload(owner, group, log_stream, filter_name, chunk))
    return n, truncated


def _payload(
    owner: str, group: str, log_stream: str, filter_name: str, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The exact shape CloudWatch Logs sends a subscribed Lambda function."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": group,
        "logStream": log_stream,
        "subscriptionFilters": [f"{filter_name}-backfill"],
        "logEvents": events,
    }
    data = base64.b64encode(gzip.compress(orjson.dumps(doc), compresslevel=6)).decode()
    return {"awslogs": {"data": data}}


def handle_log_group_created(
    event: dict[str, Any], context: Any, clients: Any = None
) -> dict[str, Any]:
    """The `log_group_created` function: subscribe the new group, log one line, return it."""
    import os

    from chalicelib.aws import clients as default_clients
    from chalicelib.observe import logger
    from chalicelib.settings import get_settings

    c = clients or default_clients
    settings = get_settings()
    # SLUICE_KINESIS_STREAM: optional; the stream app.py's kinesis_records reads by default.
    stream = getattr(settings, "kinesis_stream", "") or os.environ.get("SLUICE_KINESIS_STREAM")
    arn = context.invoked_function_arn
    target = Destination.from_function_arn(arn, "lambda").arn  # cloudwatch_logs

    def deliver(payload: dict[str, Any]) -> None:
        # Asynchronous, like CloudWatch Logs' own delivery: failures retry and then
        # reach cloudwatch_logs' on-failure destination (the dead-letter queue).
        c.get("lambda").invoke(
            FunctionName=target, InvocationType="Event", Payload=orjson.dumps(payload)
        )

    out = on_log_group_created(
        event,
        arn,
        logs=c.get("logs"),
        ddb=c.get("dynamodb"),
        rules_table=settings.rules_table,
        own_function=getattr(context, "function_name", None),
        stream=stream or None,
        deliver=deliver,
    )
    result = {
        "function": "log_group_created",
        "event_id": event.get("id"),
        "log_group": out.log_group,
        "status": out.status,
        "detail": out.detail,
        "filters": out.filters,
        "backfilled": out.backfilled,
    }
    (logger().warning if out.status in ("blocked", "failed") else logger().info)(
        "log_group_created", extra=result
    )
    return result
