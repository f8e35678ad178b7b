"""One Sluice for a whole AWS Organization: who may send, and when each sender last did.

Member accounts subscribe their log groups to the central account's CloudWatch Logs
destination, whose policy admits the organization or a list of accounts. A payload's
`owner` is the account whose log group it came from; with a list of allowed accounts
configured (`SLUICE_ALLOWED_ACCOUNTS`, set by the template from MemberAccounts), data
from any other account was let through by a misconfigured destination policy: it is
dead-lettered with the account named, never archived under a tag that would pass it
off as one of ours.

Last seen: the state table keeps, per (account, region), when data last arrived, for
`sluice org status`. One UpdateItem per (account, region) per invocation at most, and
never one that moves the time backwards.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from chalicelib.event import LogEvent

SEEN_PK = "org#seen"
REFUSED_STAGE = "sender"


def refused_reason(account: object) -> str:
    return (
        f"account {account} is not an allowed sender (SLUICE_ALLOWED_ACCOUNTS): "
        "check the destination policy"
    )


def split_senders(
    events: list[LogEvent], allowed: frozenset[str]
) -> tuple[list[LogEvent], dict[str, list[LogEvent]], set[tuple[str, str]]]:
    """(events to route, refused events by account, the (account, region) pairs the
    routed events came from), in one pass that looks at each shared source once. Only
    CloudWatch data names its sender (`owner`); S3 objects and Kinesis records come
    through resources this account controls. With nothing refused (the rule), the
    input list is returned as it is."""
    pairs: set[tuple[str, str]] = set()
    refused_sources: set[int] = set()
    last: object = None
    for ev in events:
        src = ev.source
        if src is last:
            continue
        last = src
        acct, region = src.get("account"), src.get("region")
        if allowed and src.get("kind") == "cloudwatch" and acct not in allowed:
            refused_sources.add(id(src))
        elif isinstance(acct, str) and acct and isinstance(region, str) and region:
            pairs.add((acct, region))
    if not refused_sources:
        return events, {}, pairs
    kept: list[LogEvent] = []
    refused: dict[str, list[LogEvent]] = {}
    for ev in events:
        if id(ev.source) in refused_sources:
            refused.setdefault(str(ev.source.get("account")), []).append(ev)
        else:
            kept.append(ev)
    return kept, refused, pairs


# A warm container writes a pair's last-seen time at most once a minute: at 100
# invocations/s a write per invocation would be 8.6 M writes a day (~$11 on demand) for
# a figure `sluice org status` shows to the minute.
REFRESH_MS = 60_000
# DynamoDB client -> (table, account, region) -> when this process wrote it. By client:
# another client (another runtime, a test's fresh account) starts afresh.
_written: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str], int]] = (
    weakref.WeakKeyDictionary()
)
_MAX_REMEMBERED = 10_000


class LastSeen:
    """Records when each (account, region) last sent data: once per invocation each at
    most, and once a minute per warm container."""

    def __init__(self, ddb: Any, table: str, refresh_ms: int = REFRESH_MS) -> None:
        self.ddb = ddb
        self.table = table
        self.refresh_ms = refresh_ms
        self.done: set[tuple[str, str]] = set()
        try:
            self.written = _written.setdefault(ddb, {})
        except TypeError:  # a client that takes no weak reference: this invocation only
            self.written = {}

    def note(self, pairs: Iterable[tuple[str, str]], source: str, now_ms: int | None = None) -> int:
        """Record the new pairs; returns how many writes it made. A failed write is not
        an event lost: it is counted by the caller and retried by the next invocation."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        n = 0
        for acct, region in sorted(set(pairs) - self.done):
            self.done.add((acct, region))
            key = (self.table, acct, region)
            if now - self.written.get(key, -self.refresh_ms) < self.refresh_ms:
                continue
            if len(self.written) >= _MAX_REMEMBERED:
                self.written.clear()
            self.written[key] = now
            try:
                self._write(acct, region, source, now)
            except Exception as e:
                if _code(e) != "ConditionalCheckFailedException":
                    raise
            n += 1
        return n

    def _write(self, acct: str, region: str, source: str, now: int) -> None:
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": SEEN_PK}, "sk": {"S": f"{acct}#{region}"}},
            UpdateExpression="SET last_ms = :t, account = :a, #r = :r, via = :s",
            ConditionExpression="attribute_not_exists(last_ms) OR last_ms < :t",
            ExpressionAttributeNames={"#r": "region"},
            ExpressionAttributeValues={
                ":t": {"N": str(now)},
                ":a": {"S": acct},
                ":r": {"S": region},
                ":s": {"S": source},
            },
        )


def _code(e: Exception) -> str:
    response = getattr(e, "response", None)
    return (
        str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    )


def read_last_seen(ddb: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (account, region) -> {"last_ms": int, "via": str} from the state table."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": SEEN_PK}},
    }
    while True:
        page = ddb.query(**kwargs)
        for item in page.get("Items", []):
            acct = item.get("account", {}).get("S")
            region = item.get("region", {}).get("S")
            if acct and region:
                out[(acct, region)] = {
                    "last_ms": int(item["last_ms"]["N"]),
                    "via": item.get("via", {}).get("S", ""),
                }
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def name_accounts(events: Iterable[LogEvent], names: dict[str, str]) -> None:
    """Give each event whose account has an alias in the rules file a source naming it
    (`account_name`). Sources are shared and read-only: events that shared one share
    its named copy (the archive encodes a source once)."""
    if not names:
        return
    copies: dict[int, dict[str, Any]] = {}
    last: object = None
    named: dict[str, Any] | None = None
    for ev in events:
        src = ev.source
        if src is not last:
            last = src
            named = copies.get(id(src))
            if named is None:
                name = names.get(src.get("account"))  # type: ignore[arg-type]
                if name is not None and src.get("account_name") != name:
                    named = copies[id(src)] = {**src, "account_name": name}
        if named is not None:
            ev.source = named


def origin_label(source: dict[str, Any]) -> str | None:
    """`shop-prod (111111111111) · eu-west-1`: where an event came from, for alerts."""
    acct, region = source.get("account"), source.get("region")
    name = source.get("account_name")
    who = f"{name} ({acct})" if name and acct else (str(acct) if acct else None)
    parts = [p for p in (who, str(region) if region else None) if p]
    return " · ".join(parts) or None


def console_url(source: dict[str, Any]) -> str | None:
    """The AWS console page of an event's log group, object or stream, in its region
    (the console opens in the account signed in: alerts name the account beside it)."""
    region = source.get("region")
    if not isinstance(region, str) or not region:
        return None
    base = f"https://{region}.console.aws.amazon.com"
    kind = source.get("kind")
    group = source.get("log_group")
    if kind == "cloudwatch" and isinstance(group, str):
        # The console's own encoding of a group in its URL fragment: "/" as "$252F".
        encoded = quote(group, safe="").replace("%", "$25")
        return f"{base}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{encoded}"
    if kind == "s3" and source.get("bucket"):
        key = quote(str(source.get("key") or ""), safe="")
        return (
            f"https://s3.console.aws.amazon.com/s3/object/{quote(str(source['bucket']))}"
            f"?region={region}&prefix={key}"
        )
    if kind == "kinesis" and source.get("stream"):
        stream = quote(str(source["stream"]), safe="")
        return f"{base}/kinesis/home?region={region}#/streams/details/{stream}/monitoring"
    return None


# Member accounts name their subscription (account policy or per-group filter)
# `sluice-org-<region>`: CloudWatch data carries no region, and a destination may
# deliver into a stream of another region, so the name says where the group is.
FILTER_PREFIX = "sluice-org-"


def filter_name(region: str) -> str:
    return FILTER_PREFIX + region


def region_from_filters(filters: object) -> str | None:
    """The region a member's subscription names, if one of `filters` is Sluice's."""
    if not isinstance(filters, list):
        return None
    for f in filters:
        if isinstance(f, str) and f.startswith(FILTER_PREFIX):
            region = f[len(FILTER_PREFIX) :]
            pieces = region.split("-")
            if 2 < len(pieces) <= 4 and pieces[-1].isdigit():
                return region
    return None


def destination_region_problem(destination_arn: str, region: str) -> str | None:
    """Why a member in `region` cannot subscribe to `destination_arn` (CloudWatch Logs
    takes a destination of the log group's own region only), or None."""
    parts = destination_arn.split(":")
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "logs" or parts[5] != "destination":
        return f"{destination_arn!r} is not a CloudWatch Logs destination ARN"
    if parts[3] != region:
        return (
            f"destination {destination_arn} is in {parts[3]}, the log groups in {region}: "
            f"a destination serves its own region only; deploy the central stack's "
            f"destination in {region} (docs/deployment.md, Organization)"
        )
    return None
