"""`sluice subscribe|unsubscribe|subscriptions`: CloudWatch Logs coverage of an account.

Work goes through `chalicelib.subscriptions` (the same code `log_group_created`
runs). Groups are listed with DescribeLogGroups under the patterns' literal
prefixes, then handled by a few threads: the CloudWatch Logs control-plane
APIs have low per-account quotas, so the clients use botocore's adaptive retry
mode, which slows down on throttling instead of failing.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from chalicelib.subscriptions import (
    DEFAULT_STREAM,
    DESTINATIONS,
    Destination,
    Outcome,
    Patterns,
    SubscriptionConfig,
    SubscriptionError,
    coverage,
    ensure_logs_permission,
    iter_log_groups,
    read_config,
    subscribe_group,
    unsubscribe_group,
    unsupported_reason,
    write_config,
)
from sluice_cli import jsonout

console = Console(soft_wrap=True)
err_console = Console(stderr=True)

# Rows listed under the summary unless --show all: the ones an operator acts on.
PROBLEMS = frozenset({"blocked", "failed", "not-subscribed", "would-subscribe", "would-update"})
STYLE = {
    "subscribed": "green",
    "updated": "green",
    "removed": "green",
    "unchanged": "dim",
    "covered": "cyan",
    "blocked": "yellow",
    "not-subscribed": "yellow",
    "failed": "red",
    "excluded": "dim",
}


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Adaptive: client-side rate limiting once throttled, up to 10 attempts.
    return boto3.client(service, config=Config(retries={"mode": "adaptive", "max_attempts": 10}))


@dataclass
class Account:
    partition: str
    account: str
    region: str

    @classmethod
    def current(cls) -> Account:
        import boto3

        region = boto3.session.Session().region_name
        if not region:
            raise click.UsageError("no AWS region: set AWS_REGION or AWS_DEFAULT_REGION")
        arn = _client("sts").get_caller_identity()["Arn"]
        parts = arn.split(":")
        return cls(partition=parts[1], account=parts[4], region=region)


def _stage_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--stage",
        default=lambda: os.environ.get("SLUICE_STAGE", "dev"),
        show_default="$SLUICE_STAGE or dev",
        help="Sluice's stage: its filter is named sluice-<stage>",
    )(f)


def _table_name(table: str | None) -> str | None:
    return table or os.environ.get("SLUICE_RULES_TABLE") or None


def _saved(table: str | None) -> SubscriptionConfig | None:
    name = _table_name(table)
    if not name:
        return None
    try:
        return read_config(_client("dynamodb"), name)
    except SubscriptionError as e:
        raise click.ClickException(f"saved subscription config in {name}: {e}") from e


def _destination(
    acct: Account,
    stage: str,
    kind: str,
    function_arn: str | None,
    stream: str | None,
    role_arn: str | None,
    *,
    resolve: bool,
) -> Destination:
    """Sluice's destination; with `resolve`, the Lambda function must exist."""
    prefix = f"sluice-{stage}"
    if kind == "lambda" and resolve and not function_arn:
        name = f"{prefix}-cloudwatch_logs"
        try:
            function_arn = _client("lambda").get_function(FunctionName=name)["Configuration"][
                "FunctionArn"
            ]
        except Exception as e:
            raise click.ClickException(
                f"cannot find the function {name} ({e}); deploy Sluice first or pass --function-arn"
            ) from e
    if kind == "kinesis" and resolve and not (stream or "").startswith("arn:"):
        name = stream or DEFAULT_STREAM
        try:
            stream = _client("kinesis").describe_stream_summary(StreamName=name)[
                "StreamDescriptionSummary"
            ]["StreamARN"]
        except Exception as e:
            raise click.ClickException(f"cannot find the Kinesis stream {name}: {e}") from e
    try:
        return Destination.for_stage(
            prefix,
            kind,
            partition=acct.partition,
            region=acct.region,
            account=acct.account,
            function_arn=function_arn,
            stream=stream,
            role_arn=role_arn,
        )
    except SubscriptionError as e:
        raise click.UsageError(str(e)) from e


def _select(logs: Any, patterns: Patterns, *, guard: bool) -> tuple[list[str], list[Outcome], int]:
    """(groups to work on, groups excluded with the reason, groups listed)."""
    chosen: list[str] = []
    excluded: list[Outcome] = []
    listed = 0
    with err_console.status("listing log groups…") as status:
        for g in iter_log_groups(logs, patterns.prefixes()):
            listed += 1
            if listed % 500 == 0:
                status.update(f"listing log groups… {listed}")
            name = g["logGroupName"]
            why = patterns.skip_reason(name) if guard else patterns.selection_reason(name)
            if why == "no pattern matches":
                continue
            if why:
                excluded.append(Outcome(name, "excluded", why))
                continue
            unsupported = unsupported_reason(g) if guard else None
            if unsupported:
                excluded.append(Outcome(name, "blocked", unsupported))
                continue
            chosen.append(name)
    return chosen, excluded, listed


def _run(
    groups: list[str], work: Callable[[str], Outcome], workers: int, label: str
) -> list[Outcome]:
    """`work` on every group with a progress bar; an unexpected error fails that group only."""
    results: list[Outcome] = []
    if not groups:
        return results
    columns = (
        SpinnerColumn(),
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        Progress(*columns, console=err_console, transient=True) as progress,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        task = progress.add_task(label, total=len(groups))
        futures = {pool.submit(work, g): g for g in groups}
        for fut in as_completed(futures):
            try:
                results.append(fut.result())
            except Exception as e:  # one group's error must not stop the others
                results.append(Outcome(futures[fut], "failed", f"{type(e).__name__}: {e}"))
            progress.advance(task)
    return sorted(results, key=lambda o: o.log_group)


def _report(
    title: str, outcomes: Iterable[Outcome], show: str, as_json: bool = False
) -> Counter[str]:
    outcomes = list(outcomes)
    counts = Counter(o.status for o in outcomes)
    if as_json:  # every group, whatever --show says: a script filters with jq
        jsonout.emit_lines(
            {"log_group": o.log_group, "status": o.status, "detail": o.detail, "filters": o.filters}
            for o in outcomes
        )
        return counts
    summary = Table(title=title)
    summary.add_column("status")
    summary.add_column("log groups", justify="right")
    for status, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        summary.add_row(f"[{STYLE.get(status, 'white')}]{status}[/]", str(n))
    summary.add_row("[bold]total[/]", f"[bold]{sum(counts.values())}[/]")
    console.print(summary)
    rows = [
        o
        for o in outcomes
        if show == "all" or (show == "problems" and (o.status in PROBLEMS or o.detail))
    ]
    # One plain line per group, status first: log group names can be long and must
    # never be wrapped or cut, and `awk '$1 == "blocked" {print $2}'` should work.
    width = max((len(o.status) for o in rows), default=0)
    for o in rows:
        why = f"  {o.detail}" if o.detail else ""
        filters = f"  (filters: {', '.join(o.filters)})" if o.filters else ""
        style = STYLE.get(o.status, "white")
        text = escape(f"{o.log_group}{why}{filters}")
        console.print(f"[{style}]{o.status:<{width}}[/]  {text}", highlight=False)
    return counts


_show = click.option(
    "--show",
    type=click.Choice(["problems", "all", "none"]),
    default="problems",
    show_default=True,
    help="which log groups to list under the summary",
)
_workers = click.option(
    "--workers", type=click.IntRange(1, 16), default=4, show_default=True, help="parallel calls"
)


@click.command()
@click.option("--pattern", "patterns", multiple=True, help="log groups: * one part, ** any")
@click.option("--exclude", "excludes", multiple=True, help="log groups never to subscribe")
@click.option("--filter-pattern", default=None, help="CloudWatch filter pattern (default: all)")
@click.option("--destination", type=click.Choice(DESTINATIONS), default=None, help="default lambda")
@click.option("--dry-run", is_flag=True, help="report what would change; change nothing")
@click.option("--save", is_flag=True, help="keep these settings for log_group_created")
@_stage_option
@click.option(
    "--function-arn", help="cloudwatch_logs ARN (default: sluice-<stage>-cloudwatch_logs)"
)
@click.option("--stream", help="Kinesis stream name or ARN (default: sluice-fan-in)")
@click.option(
    "--role-arn", help="role CloudWatch Logs uses for Kinesis (sluice-<stage>-logs-to-kinesis)"
)
@click.option("--table", help="rules table for --save (default: $SLUICE_RULES_TABLE)")
@_workers
@_show
@jsonout.option
def subscribe(
    patterns: tuple[str, ...],
    excludes: tuple[str, ...],
    filter_pattern: str | None,
    destination: str | None,
    dry_run: bool,
    save: bool,
    stage: str,
    function_arn: str | None,
    stream: str | None,
    role_arn: str | None,
    table: str | None,
    workers: int,
    show: str,
    as_json: bool,
) -> None:
    """Subscribe every existing log group that matches to Sluice.

    Idempotent; never removes or replaces another filter: a group that already
    has two is reported as blocked. Sluice's own groups are never subscribed.
    Without --pattern, the settings saved with --save are used.
    """
    saved = None if patterns else _saved(table)
    if not patterns and saved is None:
        raise click.UsageError("give at least one --pattern (no saved subscription config found)")
    try:
        cfg = SubscriptionConfig(
            patterns=patterns or (saved.patterns if saved else ()),
            excludes=excludes or (saved.excludes if saved and not patterns else ()),
            filter_pattern=filter_pattern
            if filter_pattern is not None
            else (saved.filter_pattern if saved else ""),
            destination=destination or (saved.destination if saved else "lambda"),
        )
    except SubscriptionError as e:
        raise click.UsageError(str(e)) from e
    if save and not _table_name(table):
        raise click.UsageError("--save needs --table or SLUICE_RULES_TABLE")
    acct = Account.current()
    dest = _destination(
        acct, stage, cfg.destination, function_arn, stream, role_arn, resolve=not dry_run
    )
    if (
        dest.kind == "lambda"
        and not dry_run
        and ensure_logs_permission(_client("lambda"), dest.arn)
    ):
        err_console.print(f"allowed CloudWatch Logs to invoke {dest.arn}")
    logs = _client("logs")
    chosen, excluded, listed = _select(logs, cfg.patterns_for(), guard=True)
    verb = "checking" if dry_run else "subscribing"
    results = _run(
        chosen,
        lambda g: subscribe_group(logs, g, dest, cfg.filter_pattern, dry_run=dry_run),
        workers,
        verb,
    )
    title = f"{listed} log groups listed, {len(chosen)} to {dest.kind} as {dest.filter_name}"
    counts = _report(
        title + (" (dry run)" if dry_run else ""), [*results, *excluded], show, as_json
    )
    if save:
        if dry_run:
            err_console.print("dry run: subscription config not saved")
        else:
            name = _table_name(table)
            assert name
            write_config(_client("dynamodb"), name, cfg)
            err_console.print(f"saved for log_group_created in {name}: {', '.join(cfg.patterns)}")
    if counts.get("failed"):
        sys.exit(1)


@click.command()
@click.option("--pattern", "patterns", multiple=True, help="log groups (default: all)")
@click.option("--exclude", "excludes", multiple=True, help="log groups to leave as they are")
@click.option("--dry-run", is_flag=True, help="report what would be removed; remove nothing")
@_stage_option
@_workers
@_show
@jsonout.option
def unsubscribe(
    patterns: tuple[str, ...],
    excludes: tuple[str, ...],
    dry_run: bool,
    stage: str,
    workers: int,
    show: str,
    as_json: bool,
) -> None:
    """Remove Sluice's own filter (sluice-<stage>) from matching log groups; others stay."""
    try:
        selection = Patterns(patterns or ("**",), excludes)
    except SubscriptionError as e:
        raise click.UsageError(str(e)) from e
    filter_name = f"sluice-{stage}"
    logs = _client("logs")
    chosen, excluded, listed = _select(logs, selection, guard=False)
    results = _run(
        chosen,
        lambda g: unsubscribe_group(logs, g, filter_name, dry_run=dry_run),
        workers,
        "checking" if dry_run else "unsubscribing",
    )
    title = f"{listed} log groups listed, {filter_name} removed where present"
    counts = _report(
        title + (" (dry run)" if dry_run else ""), [*results, *excluded], show, as_json
    )
    if counts.get("failed"):
        sys.exit(1)


@click.command()
@click.option("--pattern", "patterns", multiple=True, help="default: saved patterns, else all")
@click.option("--exclude", "excludes", multiple=True)
@click.option("--destination", type=click.Choice(DESTINATIONS), default=None)
@_stage_option
@click.option(
    "--function-arn", help="cloudwatch_logs ARN (default: sluice-<stage>-cloudwatch_logs)"
)
@click.option("--stream", help="Kinesis stream name or ARN (default: sluice-fan-in)")
@click.option("--table", help="rules table with saved settings (default: $SLUICE_RULES_TABLE)")
@_workers
@_show
@jsonout.option
def subscriptions(
    patterns: tuple[str, ...],
    excludes: tuple[str, ...],
    destination: str | None,
    stage: str,
    function_arn: str | None,
    stream: str | None,
    table: str | None,
    workers: int,
    show: str,
    as_json: bool,
) -> None:
    """Coverage: which log groups are subscribed, not subscribed, blocked or excluded."""
    saved = None if patterns else _saved(table)
    try:
        selection = Patterns(
            patterns or (saved.patterns if saved else ("**",)),
            excludes or (saved.excludes if saved and not patterns else ()),
        )
    except SubscriptionError as e:
        raise click.UsageError(str(e)) from e
    kind = destination or (saved.destination if saved else "lambda")
    acct = Account.current()
    dest = _destination(acct, stage, kind, function_arn, stream, None, resolve=False)
    logs = _client("logs")
    chosen, excluded, listed = _select(logs, selection, guard=True)
    results = _run(chosen, lambda g: coverage(logs, g, dest), workers, "checking")
    source = "the given patterns" if patterns else ("saved patterns" if saved else "all groups")
    _report(
        f"{listed} log groups listed; coverage of {source} by {dest.filter_name}",
        [*results, *excluded],
        show,
        as_json,
    )
