"""`chalice deploy` is for the dev stage only: it stops any other stage, saying why.

`chalice deploy` cannot set what Sluice relies on to lose nothing: partial batch
responses on the Kinesis and SQS event source mappings (without them Lambda ignores
the `batchItemFailures` the handlers return, so records handed back are never
retried), on-failure destinations for asynchronous invocations and the Kinesis
mapping (without them a payload that fails every retry is dropped), and role
policies naming the account. `make package` with CloudFormation or Terraform sets
all three (docs/deployment.md, 2a and 2c).

The Chalice CLI imports `app.py` in its own process before it deploys, so `app.py`
calls `check(sys.argv)`: a few list operations, and nothing when Lambda imports the
app (its argv is the runtime's, not Chalice's).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

ALLOWED = ("dev",)


class ChaliceDeployRefused(SystemExit):
    """Raised (a SystemExit, so the CLI stops with the message) for a refused stage."""


def deploy_stage(argv: Sequence[str]) -> str | None:
    """The stage `chalice deploy` was asked for (Chalice's default is dev), or None when
    `argv` is not a `chalice deploy` command line."""
    program = argv[0].replace("\\", "/") if argv else ""
    if not (program.rsplit("/", 1)[-1].startswith("chalice") or "/chalice/" in program):
        return None
    args = list(argv[1:])
    if "deploy" not in args:
        return None
    stage = "dev"
    for i, arg in enumerate(args):
        if arg == "--stage" and i + 1 < len(args):
            stage = args[i + 1]
        elif arg.startswith("--stage="):
            stage = arg.split("=", 1)[1]
    return stage


def check(argv: Sequence[str]) -> None:
    """Refuse `chalice deploy` of any stage but dev; warn for dev."""
    stage = deploy_stage(argv)
    if stage is None:
        return
    if stage not in ALLOWED:
        raise ChaliceDeployRefused(
            f"sluice: `chalice deploy --stage {stage}` refused. chalice deploy cannot turn on "
            "partial batch responses or on-failure destinations, so failed records would be "
            "dropped. Deploy this stage with `make package` and CloudFormation or Terraform "
            "(docs/deployment.md, 2a and 2c)."
        )
    print(
        "sluice: chalice deploy (dev): run the commands of docs/deployment.md 2b right after "
        "it (partial batch responses, on-failure destinations) or failed records are dropped.",
        file=sys.stderr,
    )
