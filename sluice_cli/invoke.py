"""`sluice invoke FUNCTION --event FILE`: run one handler locally on a payload file."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import click
import orjson

from chalicelib import handlers
from sluice_cli.errors import OperatorError, read_json
from sluice_cli.streams import function_output

FUNCTIONS = {
    "cloudwatch_logs": "handle_cloudwatch_logs",
    "kinesis_records": "handle_kinesis_records",
    "s3_objects": "handle_s3_objects",
    "s3_object_created": "handle_s3_object_created",
    "absence_check": "handle_absence_check",
    "log_group_created": "handle_log_group_created",
}
# A sample of each trigger's payload, to name in a message.
SAMPLES = {
    "cloudwatch_logs": "events/cloudwatch_logs.json",
    "kinesis_records": "events/kinesis_records.json",
    "s3_objects": "events/s3_objects_sqs.json",
    "s3_object_created": "events/s3_object_created_eventbridge.json",
    "absence_check": "events/absence_check.json",
    "log_group_created": "events/log_group_created.json",
}
APP = "sluice"
ACCOUNT = "123456789012"  # moto's account: used when the caller's cannot be asked


def stage() -> str:
    """The stage `invoke`, `subscribe` and `local up` share: SLUICE_STAGE, else `dev`."""
    return os.environ.get("SLUICE_STAGE") or "dev"


def function_name(function: str, stage_name: str | None = None) -> str:
    """`<app>-<stage>-<function>`, as Chalice and infra/ name deployed functions."""
    return f"{APP}-{stage_name or stage()}-{function}"


class LocalContext:
    """The parts of the Lambda context object Sluice reads."""

    def __init__(
        self,
        function_name: str,
        timeout_ms: int = 900_000,
        *,
        region: str = "us-east-1",
        account: str = ACCOUNT,
        qualified_name: str | None = None,
    ) -> None:
        name = qualified_name or f"{APP}-{stage()}-{function_name}"
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def configured_region() -> str:
    """The region the SDK is configured for (AWS_REGION, AWS_DEFAULT_REGION, profile)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    import boto3

    region = boto3.session.Session().region_name
    if not region:
        from botocore.exceptions import NoRegionError

        raise NoRegionError()
    return str(region)


def _account() -> str:
    """The caller's account (STS), as the function's ARN names it in AWS."""
    import boto3

    return str(boto3.client("sts").get_caller_identity()["Account"])


# ---------------------------------------------------------------- payload shapes
def _records(event: Any) -> list[Any]:
    recs = event.get("Records") if isinstance(event, dict) else None
    return recs if isinstance(recs, list) and recs else []


def _record_source(event: Any) -> str:
    rec = _records(event)[0] if _records(event) else None
    if not isinstance(rec, dict):
        return ""
    return str(rec.get("eventSource") or rec.get("EventSource") or "")


def _detail_type(event: Any) -> str:
    return str(event.get("detail-type", "")) if isinstance(event, dict) else ""


SHAPES: dict[str, tuple[str, Any]] = {
    # function: (what its payload looks like, a test of the payload)
    "cloudwatch_logs": (
        'a CloudWatch Logs subscription event ({"awslogs": {"data": …}})',
        lambda e: isinstance(e, dict) and isinstance(e.get("awslogs"), dict),
    ),
    "kinesis_records": (
        'a Kinesis batch ({"Records": [{"kinesis": …, "eventSource": "aws:kinesis"}]})',
        lambda e: (
            _record_source(e) == "aws:kinesis"
            or bool(
                _records(e) and isinstance(_records(e)[0], dict) and "kinesis" in _records(e)[0]
            )
        ),
    ),
    "s3_objects": (
        'an SQS batch of S3 notifications ({"Records": [{"eventSource": "aws:sqs", "body": …}]})',
        lambda e: _record_source(e) == "aws:sqs",
    ),
    "s3_object_created": (
        'an EventBridge "Object Created" event from aws.s3',
        lambda e: _detail_type(e) == "Object Created",
    ),
    "absence_check": (
        'an EventBridge "Scheduled Event"',
        lambda e: _detail_type(e) == "Scheduled Event",
    ),
    "log_group_created": (
        'an EventBridge "AWS API Call via CloudTrail" event (CreateLogGroup)',
        lambda e: _detail_type(e) == "AWS API Call via CloudTrail",
    ),
}


def looks_like(event: Any) -> str | None:
    """The function whose trigger payload `event` looks like, if any."""
    for fn, (_what, test) in SHAPES.items():
        if test(event):
            return fn
    if _record_source(event) == "aws:s3":
        return "s3-notification"
    return None


def check_shape(function: str, event: Any, path: str) -> None:
    """Raise an OperatorError when `event` is not shaped like `function`'s trigger."""
    what, test = SHAPES[function]
    if test(event):
        return
    other = looks_like(event)
    if other == "s3-notification":
        seen = "an S3 event notification (s3_objects reads them from SQS: wrap it in an "
        seen += "SQS message)"
        fix = f"send it through the objects queue, or pass a payload like {SAMPLES['s3_objects']}"
    elif other is not None:
        seen = f"a {other} payload"
        fix = f"run `sluice invoke {other} --event {path}`"
    else:
        seen = "no trigger Sluice knows"
        fix = f"pass a payload like {SAMPLES[function]}"
    raise OperatorError(
        f"{path} does not look like {what} for {function}: it looks like {seen}",
        f"{fix}, or add --force to send it anyway (it will be dead-lettered)",
    )


def read_event(path: str) -> Any:
    """The JSON document in `path`, or an OperatorError naming the line and column."""
    return read_json(path, "a trigger payload like events/cloudwatch_logs.json")


@click.command()
@click.argument("function", type=click.Choice(sorted(FUNCTIONS)))
@click.option("--event", "event_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="send a payload that does not look like the trigger")
@click.option("--json", "as_json", is_flag=True, help="the result as one line of JSON")
def invoke(function: str, event_file: str, force: bool, as_json: bool) -> None:
    """Run FUNCTION's handler in this process on the payload in FILE.

    AWS calls go wherever the SDK is configured (AWS_ENDPOINT_URL for the local
    stack); the function's settings come from the SLUICE_* environment, its name
    from SLUICE_STAGE (sluice-<stage>-FUNCTION) and its region from AWS_REGION.
    The result goes to stdout (`| jq` works); the function's log lines to stderr.
    """
    event = read_event(event_file)
    if force:
        try:
            check_shape(function, event, event_file)
        except OperatorError as e:
            click.echo(f"Warning: {e.what} (sent anyway: --force)", err=True)
    else:
        check_shape(function, event, event_file)
    context = LocalContext(function, region=configured_region(), account=_account())
    with function_output():
        result = getattr(handlers, FUNCTIONS[function])(event, context)
    option = 0 if as_json else orjson.OPT_INDENT_2
    click.echo(orjson.dumps(result, option=option | orjson.OPT_NON_STR_KEYS).decode())
