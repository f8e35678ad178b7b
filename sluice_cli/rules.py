"""`sluice rules apply|list|test`: manage routing rules from a YAML file."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from chalicelib.actions import get as get_action
from chalicelib.actions.context import Offline
from chalicelib.errors import DecodeError, RulesInvalid
from chalicelib.event import LogEvent, format_time
from chalicelib.parsers import parse_message
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.lint import warnings as lint_warnings
from chalicelib.rules.schema import RuleDef, RulesDocument, load_document
from chalicelib.rules.store import (
    current_version,
    list_versions,
    read_rule_defs,
    read_version,
    write_document,
)
from chalicelib.sources import cloudwatch
from sluice_cli import jsonout
from sluice_cli.errors import read_json
from sluice_cli.explain import explain
from sluice_cli.rules_check import CasesInvalid, diff_lines, dump_yaml, load_cases, run_case
from sluice_cli.yamlfile import load_yaml

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _table_name(table: str | None) -> str:
    name = table or os.environ.get("SLUICE_RULES_TABLE")
    if not name:
        raise click.UsageError("no rules table: pass --table or set SLUICE_RULES_TABLE")
    return name


def read_rules_file(path: str) -> list[RuleDef]:
    """Load and validate a rules file; on any problem print every error and exit 2."""
    return read_document_file(path).rules


def read_document_file(path: str) -> RulesDocument:
    """The validated document of a rules file; exit 2 on any problem."""

    try:
        doc = load_yaml(path)
    except (OSError, Exception) as e:  # yaml.YAMLError and file errors
        err_console.print(f"[red]error[/]: cannot read {path}: {e}")
        sys.exit(2)
    try:
        return load_document(doc)
    except RulesInvalid as e:
        err_console.print(f"[red]{len(e.errors)} error(s)[/] in {path}; nothing was written:")
        for er in e.errors:
            err_console.print(
                f"  rule [bold]{er.rule_id}[/], {er.field}: {er.reason}",
                markup=True,
                highlight=False,
            )
        sys.exit(2)


def print_warnings(rule_defs: list[RuleDef], path: str) -> None:
    """Valid rules that are probably a mistake (a drop of everything), on stderr."""
    for w in lint_warnings(rule_defs):
        err_console.print(f"[yellow]warning[/] {path}: {w}", highlight=False)


@click.group()
def rules() -> None:
    """Validate, apply, list and test routing rules."""


@rules.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--table", help="rules table (default: $SLUICE_RULES_TABLE)")
@click.option("--dry-run", is_flag=True, help="validate only; write nothing")
def apply_cmd(file: str, table: str | None, dry_run: bool) -> None:
    """Validate FILE, then make the rules table hold exactly its rules.

    An invalid file writes nothing and lists every error with its rule and field.
    """
    doc = read_document_file(file)
    print_warnings(doc.rules, file)
    if dry_run:
        console.print(
            f"{file}: {len(doc.rules)} rule(s), {len(doc.inputs)} input(s) valid (dry run)"
        )
        return
    import boto3

    result = write_document(boto3.client("dynamodb"), _table_name(table), doc, source=file)
    console.print(
        f"applied {file} as version {result.version}: {len(result.written)} written, "
        f"{len(result.unchanged)} unchanged, {len(result.removed)} removed"
    )
    for rid in result.written:
        console.print(f"  [green]+[/] {rid}")
    for rid in result.removed:
        console.print(f"  [red]-[/] {rid}")


@rules.command("versions")
@click.option("--table", help="rules table (default: $SLUICE_RULES_TABLE)")
@jsonout.option
def versions_cmd(table: str | None, as_json: bool) -> None:
    """Every applied version of the rules, newest last; the current one marked."""
    import boto3

    name = _table_name(table)
    ddb = boto3.client("dynamodb")
    current = current_version(ddb, name)
    if as_json:
        jsonout.emit_lines(
            {**v, "current": v["version"] == current} for v in list_versions(ddb, name)
        )
        return
    t = Table(title=f"rules versions (current: {current or 'none'})")
    for col in ("version", "applied at", "rules", "source"):
        t.add_column(col)
    for v in list_versions(ddb, name):
        mark = " *" if v["version"] == current else ""
        t.add_row(f"{v['version']}{mark}", v["applied_at"], str(v["rules"]), v["source"])
    console.print(t)


@rules.command("rollback")
@click.option(
    "--to", "to_version", type=int, help="version to restore (default: the one before current)"
)
@click.option("--table", help="rules table (default: $SLUICE_RULES_TABLE)")
def rollback_cmd(to_version: int | None, table: str | None) -> None:
    """Restore an earlier version's rules, as a new version (the history stays whole)."""
    import boto3

    ddb = boto3.client("dynamodb")
    name = _table_name(table)
    current = current_version(ddb, name)
    target = to_version if to_version is not None else current - 1
    if target < 1 or target > current:
        raise click.ClickException(f"no version {target} to roll back to (current: {current})")
    try:
        raw, _meta = read_version(ddb, name, target)
    except KeyError as e:
        raise click.ClickException(str(e)) from e
    result = write_document(ddb, name, load_document(raw), source=f"rollback to version {target}")
    console.print(
        f"rolled back to version {target}: now version {result.version} "
        f"({len(result.written)} written, {len(result.removed)} removed)"
    )


@rules.command("list")
@click.option("--table", help="rules table (default: $SLUICE_RULES_TABLE)")
@jsonout.option
def list_cmd(table: str | None, as_json: bool) -> None:
    """Show the rules the functions will load, in evaluation order."""
    import boto3

    name = _table_name(table)
    defs = read_rule_defs(boto3.client("dynamodb"), name)
    if as_json:
        jsonout.emit_lines(
            {
                "priority": d.priority,
                "id": d.id,
                "enabled": d.enabled,
                "tags": list(d.tags),
                "where": d.where,
                "transform": sorted(d.transform),
                "actions": [a.name for a in d.actions],
                "stop": d.stop,
            }
            for d in defs
        )
        return
    t = Table(title=f"{len(defs)} rule(s)")
    for col in ("priority", "id", "tag", "where", "transform", "actions", "stop"):
        t.add_column(col)
    for d in defs:
        t.add_row(
            str(d.priority),
            d.id + ("" if d.enabled else " (disabled)"),
            ", ".join(d.tags),
            str(len(d.where)),
            ", ".join(d.transform) or "-",
            ", ".join(a.name for a in d.actions) or "-",
            "yes" if d.stop else "",
        )
    console.print(t)


def events_from_file(path: str) -> list[LogEvent]:
    """A CloudWatch subscription event, or `{"tag", "message"|"record", "time"?}` (or a list)."""
    doc: Any = read_json(path, "events/cloudwatch_logs.json or a {tag, message} document")
    if isinstance(doc, dict) and "awslogs" in doc:
        try:
            return list(
                cloudwatch.decode(doc, os.environ.get("AWS_DEFAULT_REGION", "us-east-1")).events
            )
        except DecodeError as e:
            raise click.ClickException(f"{path}: {e}") from e
    items = doc if isinstance(doc, list) else [doc]
    out = []

    for i, it in enumerate(items):
        if not isinstance(it, dict) or "tag" not in it:
            raise click.ClickException(
                f"{path}: item {i} needs a 'tag' and a 'message' or 'record'"
            )
        if "record" in it:
            record, t = dict(it["record"]), None
        else:
            record, t = parse_message(str(it.get("message", "")))
        now = int(time.time() * 1000)
        out.append(
            LogEvent(it["tag"], t or it.get("time") or now, record, {"kind": "test"}, f"test-{i}")
        )
    return out


@rules.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False),
    help="a trigger payload (events/cloudwatch_logs.json) or {tag, message|record}",
)
@click.option(
    "--tests",
    "tests_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML test cases: events and their expected outcome; exit 1 on any mismatch",
)
def test_cmd(file: str, event_file: str | None, tests_file: str | None) -> None:
    """Show, for each event, which rules of FILE match and why, and what the event becomes.

    With --tests, check each case's expected tag, matched rules, actions, drop, fields and
    alert text instead, print a diff of every mismatch and exit 1 if any (for CI).
    """
    if (event_file is None) == (tests_file is None):
        raise click.UsageError("pass --event (explain) or --tests (check), one of them")
    rule_defs = read_rules_file(file)
    print_warnings(rule_defs, file)
    ruleset = RuleSet(rule_defs)
    if tests_file is not None:
        raise SystemExit(_check(ruleset, tests_file))
    assert event_file is not None
    defs = {d.id: d for d in ruleset.defs}
    for ev in events_from_file(event_file):
        ex = explain(ev, ruleset)
        console.rule(f"{ev.tag} @ {format_time(ev.time)}  id={ev.id}")
        for v in ex.verdicts:
            mark = "[green]match[/]" if v.matched else "[dim]skip[/] "
            console.print(f"  {mark} {v.rule_id}: {v.reason}", highlight=False)
            if v.matched and v.actions:
                console.print(
                    f"        actions: {', '.join(v.actions)}" + ("  (stop)" if v.stopped else "")
                )
        for rule_id, idx in ex.deliveries:
            adef = defs[rule_id].actions[idx]
            act = get_action(adef.name)(rule_id, adef.opts, Offline())
            preview = getattr(act, "preview", None)
            if callable(preview):
                console.print(
                    f"  [yellow]{adef.name}[/] from {rule_id}: {preview([ex.event])}",
                    highlight=False,
                )
        console.print(f"  outcome: [bold]{ex.outcome}[/]")
        console.print_json(orjson.dumps(ex.event.envelope()).decode())


def _check(ruleset: RuleSet, tests_file: str) -> int:
    try:
        cases = load_cases(load_yaml(tests_file))
    except (OSError, Exception) as e:  # yaml.YAMLError, CasesInvalid, file errors
        kind = "invalid" if isinstance(e, CasesInvalid) else "cannot read"
        err_console.print(f"[red]error[/]: {tests_file} {kind}: {e}", highlight=False)
        return 2
    failed = 0
    for case in cases:
        o = run_case(case, ruleset)
        if o.mismatches:
            failed += 1
            click.echo("\n".join(diff_lines(o)))
        else:
            click.echo(f"ok   {case.name}")
    click.echo(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


@rules.command("export")
@click.option("--version", "version", type=int, help="stored version (default: the current one)")
@click.option("--table", help="rules table (default: $SLUICE_RULES_TABLE)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write here, not stdout")
def export_cmd(version: int | None, table: str | None, output: str | None) -> None:
    """Write a stored version of the rules back to YAML (byte-stable: export, apply and
    export again give the same bytes), e.g. to review a rollback as a diff."""
    import boto3

    ddb = boto3.client("dynamodb")
    name = _table_name(table)
    v = version if version is not None else current_version(ddb, name)
    try:
        raw, _meta = read_version(ddb, name, v)
    except KeyError as e:
        raise click.ClickException(f"{e.args[0]} (see `sluice rules versions`)") from e
    text = dump_yaml(raw)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
