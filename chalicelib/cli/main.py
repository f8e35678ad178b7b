"""`sluice`: operate Sluice from a terminal. Each command group lives in its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sluice")
def cli() -> None:
    """Sluice: serverless log unification for AWS.

    Commands talk to whatever endpoint the AWS SDK is configured for
    (AWS_ENDPOINT_URL, AWS_PROFILE, region): your account, or the local stack
    started by `sluice local up`.
    """


def _register() -> None:
    # One line per command module; each module defines its click commands.
    from chalicelib.cli import invoke, local, rules

    cli.add_command(rules.rules)
    cli.add_command(local.local)
    cli.add_command(local.bootstrap)
    cli.add_command(local.demo)
    cli.add_command(invoke.invoke)
    from chalicelib.cli import subscribe as subs

    cli.add_command(subs.subscribe)
    cli.add_command(subs.unsubscribe)
    cli.add_command(subs.subscriptions)
    cli.add_command(__import__("chalicelib.cli.simulate", fromlist=["simulate"]).simulate)
    cli.add_command(__import__("chalicelib.cli.replay", fromlist=["replay"]).replay)
    from chalicelib.cli import dlq

    cli.add_command(dlq.dlq)


def main() -> None:
    _register()
    cli()


if __name__ == "__main__":
    main()
