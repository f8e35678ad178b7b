"""`sluice org status`: is every account and region of the organization sending to Sluice?

For each member account and region it assumes the member template's read-only role
(`sluice-org-reader-<region>`, infra/member.py) and reports:

- how the account is subscribed: `account-policy` (an account-level subscription filter
  policy delivering to the central destination), `per-group` (filters on groups), `none`;
- every log group not covered, and why: `excluded` (Sluice's own or the policy's
  exclusions), `blocked` (two filters of others: CloudWatch Logs allows two per group),
  `too-new` (created minutes ago: log_group_created may not have run), `not-subscribed`;
- when the account and region last sent data to the central account (the state table's
  last-seen items, chalicelib/org.py), and how long ago.

Accounts come from `--account` (repeatable) or, without it, from AWS Organizations
(ListAccounts: the management account or a delegated administrator). `--json` prints
one object per account and region.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from chalicelib import org as runtime_org
from chalicelib.loopguard import LoopGuard
from chalicelib.rules.origin import names_by_account
from chalicelib.subscriptions.filters import (
    Destination,
    describe_filters,
    iter_log_groups,
    subscribe_group,
)
from chalicelib.subscriptions.patterns import Patterns, SubscriptionError

MAX_FILTERS = 2
TOO_NEW_MS = 10 * 60 * 1000  # log_group_created subscribes within seconds; 10 min is late
READER_ROLE = "sluice-org-reader-{region}"


@dataclass
class Uncovered:
    log_group: str
    reason: str  # excluded | blocked | too-new | not-subscribed
    detail: str = ""


@dataclass
class Coverage:
    account: str
    region: str
    alias: str | None = None
    mode: str = "none"  # account-policy | per-group | none | unreachable
    groups: int = 0
    covered: int = 0
    uncovered: list[Uncovered] = field(default_factory=list)
    last_seen_ms: int | None = None
    last_seen_age_s: int | None = None
    error: str | None = None


def destination_arn(partition: str, region: str, central: str, name: str) -> str:
    return f"arn:{partition}:logs:{region}:{central}:destination:{name}"


def excluded_by(selection: str) -> set[str]:
    """The names in `LogGroupName NOT IN ["a", "b"]` (the only operator CloudWatch takes)."""
    _, sep, rest = selection.partition("[")
    if not sep:
        return set()
    try:
        names = json.loads("[" + rest.rsplit("]", 1)[0] + "]")
    except ValueError:
        return set()
    return {n for n in names if isinstance(n, str)}


def _account_policy(logs: Any, dest: str) -> dict[str, Any] | None:
    """The account-level subscription filter policy delivering to `dest`, if any."""
    try:
        policies = logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")
    except Exception as e:
        # An endpoint without account policies (the local stack's moto answers 500 "not
        # implemented"): no policy there. Access denied and the rest are real errors.
        response = getattr(e, "response", None) or {}
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in (500, 501) or "not been implemented" in str(e):
            return None
        raise
    for p in policies.get("accountPolicies", []):
        try:
            doc = json.loads(p.get("policyDocument") or "{}")
        except ValueError:
            continue
        if doc.get("DestinationArn") == dest:
            return dict(p)
    return None


def coverage(
    logs: Any,
    account: str,
    region: str,
    dest: str,
    *,
    now_ms: int,
    guard: LoopGuard | None = None,
) -> Coverage:
    """One account and region's coverage, read through `logs` (the member's client)."""
    guard = guard or LoopGuard()
    out = Coverage(account, region)
    policy = _account_policy(logs, dest)
    excluded = excluded_by(policy.get("selectionCriteria", "")) if policy else set()
    per_group = 0
    for g in iter_log_groups(logs, [""]):
        name = g["logGroupName"]
        out.groups += 1
        if guard.owns(name) or name in excluded:
            why = "Sluice's own logs (loop guard)" if guard.owns(name) else "policy exclusion"
            out.uncovered.append(Uncovered(name, "excluded", why))
            continue
        filters = describe_filters(logs, name)
        ours = [f for f in filters if f.get("destinationArn") == dest]
        others = [f["filterName"] for f in filters if f.get("destinationArn") != dest]
        if ours:
            per_group += 1
            out.covered += 1
        elif len(others) >= MAX_FILTERS:
            detail = f"{MAX_FILTERS} filters of others: {', '.join(others)}"
            out.uncovered.append(Uncovered(name, "blocked", detail))
        elif policy is not None:
            out.covered += 1
        elif now_ms - int(g.get("creationTime") or 0) < TOO_NEW_MS:
            out.uncovered.append(Uncovered(name, "too-new", "created less than 10 min ago"))
        else:
            out.uncovered.append(Uncovered(name, "not-subscribed"))
    out.mode = "account-policy" if policy else "per-group" if per_group else "none"
    return out


def status(
    accounts: Iterable[str],
    regions: Iterable[str],
    logs_for: Callable[[str, str], Any],
    *,
    central: str,
    destination_name: str,
    partition: str = "aws",
    last_seen: dict[tuple[str, str], dict[str, Any]] | None = None,
    aliases: dict[str, str] | None = None,
    now_ms: int | None = None,
) -> list[Coverage]:
    """Coverage of every (account, region); an unreachable one says why, the rest go on."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    seen = last_seen or {}
    out: list[Coverage] = []
    for account in accounts:
        for region in regions:
            dest = destination_arn(partition, region, central, destination_name)
            try:
                cov = coverage(logs_for(account, region), account, region, dest, now_ms=now)
            except Exception as e:
                cov = Coverage(
                    account, region, mode="unreachable", error=f"{type(e).__name__}: {e}"
                )
            cov.alias = (aliases or {}).get(account)
            last = seen.get((account, region))
            if last is not None:
                cov.last_seen_ms = int(last["last_ms"])
                cov.last_seen_age_s = max(0, (now - cov.last_seen_ms) // 1000)
            out.append(cov)
    return out


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def assume_role_logs(partition: str, role: str) -> Callable[[str, str], Any]:
    """A factory of member logs clients through the reader role of each account and region."""
    import boto3

    sts = boto3.client("sts")

    def logs_for(account: str, region: str) -> Any:
        arn = f"arn:{partition}:iam::{account}:role/{role.format(region=region)}"
        creds = sts.assume_role(RoleArn=arn, RoleSessionName="sluice-org-status")["Credentials"]
        return boto3.client(
            "logs",
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    return logs_for


def organization_accounts() -> list[str]:
    """Active accounts of the organization (management or delegated administrator)."""
    import boto3

    out: list[str] = []
    for page in boto3.client("organizations").get_paginator("list_accounts").paginate():
        out += [a["Id"] for a in page["Accounts"] if a.get("Status", "ACTIVE") == "ACTIVE"]
    return out


@click.group("org")
def org() -> None:
    """One Sluice for an AWS Organization (docs/deployment.md, Organization)."""


@org.command("status")
@click.option("--account", "accounts", multiple=True, help="member account id (default: all)")
@click.option("--region", "regions", multiple=True, help="region (default: this one)")
@click.option("--stage", default="prod", show_default=True, help="destination sluice-<stage>")
@click.option("--role", default=READER_ROLE, show_default=True, help="role assumed in members")
@click.option("--table", help="state table (default: $SLUICE_STATE_TABLE)")
@click.option("--rules", "rules_file", type=click.Path(exists=True), help="aliases from this file")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per account and region")
def status_command(
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    stage: str,
    role: str,
    table: str | None,
    rules_file: str | None,
    as_json: bool,
) -> None:
    """Which accounts and regions send to Sluice, what is not covered and why, when each
    last sent data."""
    import os

    import boto3

    region = boto3.session.Session().region_name
    if not regions and not region:
        raise click.UsageError("no region: pass --region or set AWS_REGION")
    ident = boto3.client("sts").get_caller_identity()
    partition, central = ident["Arn"].split(":")[1], ident["Account"]
    table = table or os.environ.get("SLUICE_STATE_TABLE")
    last = runtime_org.read_last_seen(boto3.client("dynamodb"), table) if table else {}
    aliases: dict[str, str] = {}
    if rules_file:
        import yaml

        with open(rules_file, encoding="utf-8") as f:
            aliases = names_by_account((yaml.safe_load(f) or {}).get("accounts"))
    report = status(
        accounts or organization_accounts(),
        regions or [str(region)],
        assume_role_logs(partition, role),
        central=central,
        destination_name=f"sluice-{stage}",
        partition=partition,
        last_seen=last,
        aliases=aliases,
    )
    emit(report, as_json)


def emit(report: list[Coverage], as_json: bool) -> None:
    if as_json:
        for cov in report:
            click.echo(json.dumps(asdict(cov)))
        return
    for cov in report:
        who = f"{cov.alias} ({cov.account})" if cov.alias else cov.account
        head = (
            f"{who} {cov.region}: {cov.mode}, {cov.covered}/{cov.groups} group(s) covered, "
            f"last data {_age(cov.last_seen_age_s)}"
        )
        click.echo(head + (f" - {cov.error}" if cov.error else ""))
        for u in cov.uncovered:
            click.echo(f"  {u.reason:<15} {u.log_group}" + (f"  ({u.detail})" if u.detail else ""))


SUBSCRIBER_ROLE = "sluice-org-subscriber-{region}"
DELIVERY_ROLE = "sluice-org-delivery-{region}"


def subscribe_member(
    logs: Any,
    account: str,
    region: str,
    dest_arn: str,
    *,
    patterns: Any,
    partition: str = "aws",
    dry_run: bool = False,
) -> list[Any]:
    """Per-group mode: Sluice's filter (`sluice-org-<region>`) on every matching group of
    one member account and region, to the central destination, with the member's
    delivery role; the same idempotent, two-filter-respecting put as `sluice subscribe`.
    A destination of another region fails before any call (SubscriptionError)."""

    role = f"arn:{partition}:iam::{account}:role/{DELIVERY_ROLE.format(region=region)}"
    dest = Destination.central(dest_arn, region, role)
    out = []
    for g in iter_log_groups(logs, patterns.prefixes()):
        name = g["logGroupName"]
        if patterns.skip_reason(name) is None:
            out.append(subscribe_group(logs, name, dest, dry_run=dry_run))
    return out


@org.command("subscribe")
@click.option("--account", "accounts", multiple=True, required=True, help="member account id")
@click.option("--region", "regions", multiple=True, help="region (default: this one)")
@click.option("--pattern", "patterns", multiple=True, required=True, help="log groups: * / **")
@click.option("--exclude", "excludes", multiple=True, help="log groups never to subscribe")
@click.option("--stage", default="prod", show_default=True, help="destination sluice-<stage>")
@click.option("--destination", "destination", help="destination ARN (default: this account's)")
@click.option("--dry-run", is_flag=True, help="report what would change; change nothing")
def subscribe_command(
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    patterns: tuple[str, ...],
    excludes: tuple[str, ...],
    stage: str,
    destination: str | None,
    dry_run: bool,
) -> None:
    """Per-group mode: put Sluice's filter on member log groups, through each member's
    `sluice-org-subscriber-<region>` role (member template, Mode=per-group)."""
    import boto3

    region = boto3.session.Session().region_name
    ident = boto3.client("sts").get_caller_identity()
    partition, central = ident["Arn"].split(":")[1], ident["Account"]
    try:
        selection = Patterns(tuple(patterns), tuple(excludes))
    except SubscriptionError as e:
        raise click.UsageError(str(e)) from e
    logs_for = assume_role_logs(partition, SUBSCRIBER_ROLE)
    failed = 0
    for r in regions or [str(region)]:
        dest = destination or destination_arn(partition, r, central, f"sluice-{stage}")
        for account in accounts:
            try:
                outcomes = subscribe_member(
                    logs_for(account, r),
                    account,
                    r,
                    dest,
                    patterns=selection,
                    partition=partition,
                    dry_run=dry_run,
                )
            except SubscriptionError as e:
                raise click.ClickException(str(e)) from e
            for o in outcomes:
                failed += o.status in ("failed", "blocked")
                click.echo(f"{account} {r} {o.status:<15} {o.log_group} {o.detail}".rstrip())
    if failed:
        raise SystemExit(1)
