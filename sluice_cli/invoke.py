"""`sluice invoke FUNCTION --event FILE`: run one handler locally on a payload file."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import click
import orjson

from chalicelib import handlers

FUNCTIONS = {
    "cloudwatch_logs": "handle_cloudwatch_logs",
    "kinesis_records": "handle_kinesis_records",
    "s3_objects": "handle_s3_objects",
    "s3_object_created": "handle_s3_object_created",
    "absence_check": "handle_absence_check",
    "log_group_created": "handle_log_group_created",
}


class LocalContext:
    """The parts of the Lambda context object Sluice reads."""

    def __init__(self, function_name: str, timeout_ms: int = 900_000) -> None:

        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:sluice-local-{function_name}"
        )
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:

        return max(0, int((self._deadline - time.monotonic()) * 1000))


@click.command()
@click.argument("function", type=click.Choice(sorted(FUNCTIONS)))
@click.option("--event", "event_file", required=True, type=click.Path(exists=True, dir_okay=False))
def invoke(function: str, event_file: str) -> None:
    """Run FUNCTION's handler in this process on the payload in FILE.

    AWS calls go wherever the SDK is configured (AWS_ENDPOINT_URL for the local
    stack); the function's settings come from the SLUICE_* environment.
    """

    event = orjson.loads(Path(event_file).read_bytes())
    result = getattr(handlers, FUNCTIONS[function])(event, LocalContext(function))
    click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
