"""`sluice`: operate Sluice from a terminal. Each command group lives in its own module."""

from __future__ import annotations

import click

from sluice_cli import (
    dlq,
    invoke,
    local,
    query,
    replay,
    rules,
    scenario,
    search,
    simulate,
    streams,
    tap,
    top,
)
from sluice_cli import org as org_cli
from sluice_cli import subscribe as subs
from sluice_cli.errors import SluiceGroup, remember_calls


@click.group(cls=SluiceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sluice")
@click.option("--debug", is_flag=True, help="on an error, show the traceback (or SLUICE_DEBUG=1)")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Sluice: serverless log unification for AWS.

    Commands talk to whatever endpoint the AWS SDK is configured for
    (AWS_ENDPOINT_URL, AWS_PROFILE, region): your account, or the local stack
    started by `sluice local up`. A failure ends with one line on stderr saying
    what is wrong and how to fix it (exit 1; 2 for a usage error); stdout holds
    only the command's result.
    """
    ctx.call_on_close(streams.install())
    remember_calls()


def _register() -> None:
    # One line per command; each module defines its click commands.
    cli.add_command(rules.rules)
    cli.add_command(local.local)
    cli.add_command(local.bootstrap)
    cli.add_command(scenario.demo)
    cli.add_command(invoke.invoke)
    cli.add_command(subs.subscribe)
    cli.add_command(subs.unsubscribe)
    cli.add_command(subs.subscriptions)
    cli.add_command(simulate.simulate)
    cli.add_command(replay.replay)
    cli.add_command(dlq.dlq)
    cli.add_command(search.search)
    cli.add_command(query.query)
    cli.add_command(org_cli.org)
    cli.add_command(tap.tap)
    cli.add_command(top.top)


def main() -> None:
    _register()
    cli()


if __name__ == "__main__":
    main()
