"""`log_group_created`: a CloudTrail CreateLogGroup (via EventBridge) -> subscribe, backfill."""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Callable
from typing import Any

import orjson

from chalicelib.observe import logger
from chalicelib.settings import Settings
from chalicelib.subscriptions.config import read_config
from chalicelib.subscriptions.filters import (
    Destination,
    Outcome,
    subscribe_group,
    unsupported_reason,
)
from chalicelib.subscriptions.patterns import (
    SubscriptionError,
    caused_by_sluice,
    loop_guard_reason,
)

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
    central: tuple[str, str | None] | None = None,
) -> Outcome:
    """A CloudTrail CreateLogGroup event (via EventBridge) -> subscribe the group if it matches.

    Skips (status `skipped`, with the reason): failed API calls, events caused
    by Sluice's own roles, Sluice's own groups, groups no saved pattern matches,
    and everything while no subscription config has been saved. With `deliver`,
    what the group received before its filter took effect is backfilled. With
    `central` (an organization member: the central destination's ARN and the delivery
    role), the group is subscribed to that destination instead, not backfilled (there
    is no function here to hand the lines to); a destination of another region fails
    with both regions named.
    """
    detail = event.get("detail") or {}
    params = detail.get("requestParameters") or {}
    group = params.get("logGroupName")
    if not isinstance(group, str) or not group:
        return Outcome("", "skipped", "event carries no requestParameters.logGroupName")
    if detail.get("errorCode"):
        # CloudTrail records failed calls too (AccessDenied, ResourceAlreadyExists).
        return Outcome(group, "skipped", f"CreateLogGroup failed: {detail['errorCode']}")
    if caused_by_sluice(detail, own_function):
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
    if central is not None:
        try:
            dest = Destination.central(central[0], function_arn.split(":")[3], central[1])
        except SubscriptionError as e:
            return Outcome(group, "failed", str(e))
        deliver = None
    else:
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


def on_created_event(
    event: dict[str, Any], context: Any, clients: Any, settings: Settings
) -> dict[str, Any]:
    """The `log_group_created` workflow: subscribe the new group, log one line, return it."""
    arn = context.invoked_function_arn
    target = Destination.from_function_arn(arn, "lambda").arn  # cloudwatch_logs

    def deliver(payload: dict[str, Any]) -> None:
        # Asynchronous, like CloudWatch Logs' own delivery: failures retry and then
        # reach cloudwatch_logs' on-failure destination (the dead-letter queue).
        clients.get("lambda").invoke(
            FunctionName=target, InvocationType="Event", Payload=orjson.dumps(payload)
        )

    out = on_log_group_created(
        event,
        arn,
        logs=clients.get("logs"),
        ddb=clients.get("dynamodb"),
        rules_table=settings.rules_table,
        own_function=getattr(context, "function_name", None),
        # SLUICE_KINESIS_STREAM: optional; the stream app.py's kinesis_records reads by default.
        stream=settings.kinesis_stream,
        deliver=deliver,
        # An organization member's log_group_created: groups go to the central destination.
        central=(settings.destination_arn, settings.destination_role_arn)
        if settings.destination_arn
        else None,
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
