"""CloudWatch Logs destinations on the local stack: member accounts sending to the centre.

moto keeps several accounts in one server (assume a role into another account id: its
credentials act as that account), holds log groups, filters and destinations, but does
not accept a subscription filter or an account policy naming a destination, nor deliver
to one. `LocalDestinations` stands in for that part of CloudWatch Logs:

- `member_logs(account, region)` is the member's logs client as Sluice's tools use it:
  everything goes to moto, except what moto lacks, kept here: filters and account-level
  subscription policies whose destination is a CloudWatch Logs destination. It checks
  what CloudWatch checks: the destination exists, is in the log group's region (else the
  error names both regions), and a group has at most two filters.
- `deliver()` reads the covered groups' new events from moto and writes them, as
  CloudWatch Logs does, into the destination's target stream: one gzip subscription
  document (`owner` the member account, `subscriptionFilters` the filter or policy
  name) per group and stream, partition key the log group. The stack's Kinesis poller
  then hands them to `kinesis_records`.

Not modelled: the destination policy (who may subscribe) and the delivery role; the
functions' allowed-accounts check is what the tests exercise for a wrong sender.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from chalicelib import org as runtime_org
from sluice_cli.org import excluded_by

MAX_FILTERS = 2


def _error(code: str, message: str, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class _Member:
    account: str
    region: str
    client: Any
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)  # group -> filter
    policy: dict[str, Any] | None = None
    cursor: dict[str, int] = field(default_factory=dict)  # group -> last timestamp sent


class LocalDestinations:
    def __init__(self, central_logs: Any, central_kinesis: Any) -> None:
        self.central_logs = central_logs
        self.kinesis = central_kinesis
        self.members: dict[tuple[str, str], _Member] = {}

    def add_member(self, account: str, region: str, client: Any) -> MemberLogs:
        m = self.members.setdefault((account, region), _Member(account, region, client))
        return MemberLogs(self, m)

    def member_logs(self, account: str, region: str) -> MemberLogs:
        return MemberLogs(self, self.members[(account, region)])

    def target_of(self, destination_arn: str) -> str | None:
        """The destination's target ARN, or None when the central account has no such one."""
        name = destination_arn.rsplit(":", 1)[-1]
        for d in self.central_logs.describe_destinations(DestinationNamePrefix=name).get(
            "destinations", []
        ):
            if d.get("arn") == destination_arn or d.get("destinationName") == name:
                return str(d["targetArn"])
        return None

    # ------------------------------------------------------------ delivery
    def deliver(self) -> int:
        """Send every covered group's new events to its destination's stream; how many."""
        sent = 0
        for m in self.members.values():
            for group in _groups(m.client):
                route = self._route(m, group)
                if route is not None:
                    sent += self._send(m, group, *route)
        return sent

    def _route(self, m: _Member, group: str) -> tuple[str, str] | None:
        """(filter or policy name, destination ARN) covering `group`, if any."""
        if group in m.filters:
            f = m.filters[group]
            return f["filterName"], f["destinationArn"]
        if m.policy is None:
            return None
        own = m.client.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
        excluded = excluded_by(m.policy.get("selectionCriteria", ""))
        if group in excluded or len(own) >= MAX_FILTERS:
            return None
        doc = json.loads(m.policy["policyDocument"])
        return m.policy["policyName"], doc["DestinationArn"]

    def _send(self, m: _Member, group: str, name: str, destination: str) -> int:
        target = self.target_of(destination)
        if target is None:
            return 0
        start = m.cursor.get(group, -1) + 1
        by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        pages = m.client.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=max(start, 0)
        )
        for page in pages:
            for e in page.get("events", []):
                if e["timestamp"] >= start:
                    by_stream[e["logStreamName"]].append(
                        {"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]}
                    )
        n = 0
        for stream, events in by_stream.items():
            doc = {
                "messageType": "DATA_MESSAGE",
                "owner": m.account,
                "logGroup": group,
                "logStream": stream,
                "subscriptionFilters": [name],
                "logEvents": events,
            }
            self.kinesis.put_record(
                StreamARN=target,
                Data=gzip.compress(json.dumps(doc).encode(), mtime=0),
                PartitionKey=group,
            )
            m.cursor[group] = max([m.cursor.get(group, -1), *(e["timestamp"] for e in events)])
            n += len(events)
        return n


class MemberLogs:
    """A member account's logs client: moto, plus the destination features moto lacks."""

    def __init__(self, hub: LocalDestinations, member: _Member) -> None:
        self._hub = hub
        self._m = member

    def __getattr__(self, name: str) -> Any:
        return getattr(self._m.client, name)

    def put_subscription_filter(self, **kw: Any) -> dict[str, Any]:
        dest = str(kw.get("destinationArn", ""))
        if ":destination:" not in dest:
            return dict(self._m.client.put_subscription_filter(**kw))
        op = "PutSubscriptionFilter"
        problem = runtime_org.destination_region_problem(dest, self._m.region)
        if problem:
            raise _error("InvalidParameterException", problem, op)
        if self._hub.target_of(dest) is None:
            raise _error("ResourceNotFoundException", f"no destination {dest}", op)
        group = kw["logGroupName"]
        current = self.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
        names = [f["filterName"] for f in current]
        if kw["filterName"] not in names and len(names) >= MAX_FILTERS:
            raise _error("LimitExceededException", "Resource limit exceeded.", op)
        self._m.filters[group] = {
            "filterName": kw["filterName"],
            "logGroupName": group,
            "filterPattern": kw.get("filterPattern", ""),
            "destinationArn": dest,
            "roleArn": kw.get("roleArn"),
            "distribution": "ByLogStream",
        }
        return {}

    def describe_subscription_filters(self, **kw: Any) -> dict[str, Any]:
        out = dict(self._m.client.describe_subscription_filters(**kw))
        mine = self._m.filters.get(kw["logGroupName"])
        out["subscriptionFilters"] = [
            *out.get("subscriptionFilters", []),
            *([mine] if mine else []),
        ]
        return out

    def put_account_policy(self, **kw: Any) -> dict[str, Any]:
        doc = json.loads(kw["policyDocument"])
        problem = runtime_org.destination_region_problem(
            str(doc.get("DestinationArn", "")), self._m.region
        )
        if problem:
            raise _error("InvalidParameterException", problem, "PutAccountPolicy")
        self._m.policy = {
            "policyName": kw["policyName"],
            "policyType": kw["policyType"],
            "policyDocument": kw["policyDocument"],
            "selectionCriteria": kw.get("selectionCriteria", ""),
            "scope": kw.get("scope", "ALL"),
            "accountId": self._m.account,
        }
        return {"accountPolicy": self._m.policy}

    def describe_account_policies(self, **kw: Any) -> dict[str, Any]:
        return {"accountPolicies": [self._m.policy] if self._m.policy else []}


def _groups(client: Any) -> list[str]:
    out: list[str] = []
    for page in client.get_paginator("describe_log_groups").paginate():
        out += [g["logGroupName"] for g in page.get("logGroups", [])]
    return out
