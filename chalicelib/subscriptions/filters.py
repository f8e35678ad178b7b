"""One log group at a time: Sluice's filter put, updated, removed or inspected.

CloudWatch Logs allows two subscription filters per log group (PutSubscriptionFilter
API reference). Sluice's filter has one fixed name per stage (`sluice-<stage>`), so
it is found, updated in place (a put under an existing name does not count
against the limit) and removed without touching anyone else's filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.org import destination_region_problem, filter_name
from chalicelib.subscriptions.patterns import SubscriptionError

MAX_FILTERS = 2
# app.py: `@app.on_kinesis_record(stream="sluice-fan-in")`.
DEFAULT_STREAM = "sluice-fan-in"
DESTINATIONS = ("lambda", "kinesis")


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
    def central(cls, arn: str, region: str, role_arn: str | None = None) -> Destination:
        """An organization's central CloudWatch Logs destination, for a log group of
        `region` (a member account's): the filter is named for the region
        (chalicelib/org.py), and a destination of another region is refused here, before
        any call, with both regions named."""
        problem = destination_region_problem(arn, region)
        if problem:
            raise SubscriptionError(problem)
        return cls("destination", arn, filter_name(region), role_arn or None)

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
        principal = st.get("Principal")
        principal = principal.get("Service") if isinstance(principal, dict) else principal
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
