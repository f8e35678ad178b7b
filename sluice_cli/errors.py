"""Errors an operator can act on: one line on stderr, what is wrong and how to fix it.

`SluiceGroup` (the `sluice` group's class) catches what escapes a command and turns
it into an `OperatorError`: `Error: <what is wrong>; <how to fix it>`, exit code 1
(click keeps 2 for usage errors). `--debug` (or SLUICE_DEBUG=1) lets the original
exception through, traceback and all.

AWS errors rarely say which resource they are about (DynamoDB's GetItem answers
"Requested resource not found"), so `remember_calls` keeps, per thread, the
service, operation and resource names of the last AWS call made through the
default boto3 session: the line can then name the table and the command that
creates it.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlparse

import click

# The parameters that name the resource an AWS call is about.
_NAMES = (
    "TableName",
    "QueueUrl",
    "QueueName",
    "Bucket",
    "StreamName",
    "logGroupName",
    "FunctionName",
    "SecretId",
    "WorkGroup",
    "TopicArn",
)
_last = threading.local()

# The fix for each kind of missing resource: what creates it.
_CREATE = (
    "create it with `sluice bootstrap` (the local stack: `sluice local up`) or deploy the stage, "
    "or point {setting} at one that exists"
)


class OperatorError(click.ClickException):
    """A failure the operator can fix: printed as `Error: <what>; <fix>`, one line, exit 1."""

    exit_code = 1

    def __init__(self, what: str, fix: str) -> None:
        self.what = _one_line(what)
        self.fix = _one_line(fix)
        super().__init__(f"{self.what}; {self.fix}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------- the last AWS call
def _on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    _last.call = (model.service_model.service_name, model.name, resource_names(params))


def resource_names(params: Any, depth: int = 0) -> dict[str, str]:
    """The first value of each resource-naming parameter, at any depth up to 4
    (TransactWriteItems names its table inside each item)."""
    found: dict[str, str] = {}
    if depth > 4:
        return found
    if isinstance(params, dict):
        for k, v in params.items():
            if k in _NAMES and isinstance(v, str):
                found.setdefault(k, v)
            elif isinstance(v, (dict, list)):
                for name, value in resource_names(v, depth + 1).items():
                    found.setdefault(name, value)
    elif isinstance(params, list):
        for v in params[:10]:
            for name, value in resource_names(v, depth + 1).items():
                found.setdefault(name, value)
    return found


def remember_calls(session: Any = None) -> None:
    """Record each AWS call's service, operation and resource names on this process's
    default boto3 session (clients made afterwards); idempotent."""
    import boto3

    session = session or boto3._get_default_session()
    session.events.register(
        "before-parameter-build.*.*", _on_call, unique_id="sluice-cli-last-call"
    )


def last_call() -> tuple[str, str, dict[str, str]]:
    """(service, operation, resource names) of this thread's last AWS call, if known."""
    return getattr(_last, "call", ("", "", {}))


def forget_calls() -> None:
    _last.call = ("", "", {})


# ---------------------------------------------------------------- explaining
def explain(e: BaseException) -> OperatorError:
    """The one line for any exception that escaped a command."""
    if isinstance(e, OperatorError):
        return e
    for kind in type(e).__mro__:
        handler = _HANDLERS.get(kind.__name__)
        if handler is not None:
            found = handler(e)
            if found is not None:
                return found
    return OperatorError(
        f"unexpected {type(e).__name__}: {e}",
        "run the command again with --debug for the traceback, and report it if it persists",
    )


def _no_region(e: BaseException) -> OperatorError:
    return OperatorError(
        "no AWS region configured",
        "set AWS_DEFAULT_REGION (for example `export AWS_DEFAULT_REGION=eu-west-1`) or `region` "
        "in your AWS profile; for the local stack, export what `sluice local up` prints",
    )


def _no_credentials(e: BaseException) -> OperatorError:
    profile = os.environ.get("AWS_PROFILE") or "default"
    creds = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    return OperatorError(
        "no AWS credentials found (looked for AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        f"profile '{profile}' in {creds} and {config}, SSO, the container and the instance "
        "metadata)",
        "set AWS_PROFILE or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables (or run "
        "`aws sso login`); for the local stack, export what `sluice local up` prints",
    )


def _partial_credentials(e: BaseException) -> OperatorError:
    return OperatorError(
        f"incomplete AWS credentials: {e}",
        "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a profile (AWS_PROFILE)",
    )


def _profile_not_found(e: BaseException) -> OperatorError:
    config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    return OperatorError(
        f"the AWS profile '{getattr(e, 'kwargs', {}).get('profile', '?')}' does not exist "
        f"in {config}",
        "unset AWS_PROFILE or create the profile (`aws configure --profile NAME`)",
    )


def _endpoint(e: BaseException) -> OperatorError:
    url = str(getattr(e, "kwargs", {}).get("endpoint_url", "")) or "the AWS endpoint"
    host = urlparse(url).hostname or ""
    waited = "did not answer in time" if "Timeout" in type(e).__name__ else "did not answer"
    if host in ("127.0.0.1", "localhost", "::1"):
        fix = (
            "start the local stack with `sluice local up` (and export what it prints), or "
            "unset AWS_ENDPOINT_URL to use AWS"
        )
    elif os.environ.get("AWS_ENDPOINT_URL"):
        fix = f"check AWS_ENDPOINT_URL ({os.environ['AWS_ENDPOINT_URL']}) and that it is up"
    else:
        fix = "check the region (AWS_DEFAULT_REGION) and your network or proxy settings"
    return OperatorError(f"the endpoint {url} {waited}", fix)


def _client_error(e: BaseException) -> OperatorError | None:
    response = getattr(e, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", ""))
    operation = str(getattr(e, "operation_name", "") or "")
    service, last_op, names = last_call()
    if last_op and last_op != operation:
        names = {}  # the recorded call is not the one that failed
    if code in ("ResourceNotFoundException", "TableNotFoundException") and (
        service == "dynamodb" or "TableName" in names or "table" in message.lower()
    ):
        table = names.get("TableName") or _table_from(message)
        region = _region()
        return OperatorError(
            f"the DynamoDB table {table} does not exist in {region} ({operation})",
            _CREATE.format(setting="--table / SLUICE_RULES_TABLE"),
        )
    if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        queue = names.get("QueueUrl") or names.get("QueueName") or "the queue"
        return OperatorError(
            f"the SQS queue {queue} does not exist ({operation})",
            _CREATE.format(setting="--queue-url / SLUICE_DLQ_URL"),
        )
    if code in ("NoSuchBucket",):
        bucket = names.get("Bucket") or str(response.get("Error", {}).get("BucketName", "?"))
        return OperatorError(
            f"the S3 bucket {bucket} does not exist ({operation})",
            _CREATE.format(setting="--bucket / SLUICE_ARCHIVE_BUCKET"),
        )
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return OperatorError(
            "the AWS credentials have expired",
            "refresh them (`aws sso login`, or new temporary credentials) and try again",
        )
    if code in (
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthFailure",
    ):
        return OperatorError(
            f"AWS rejected the credentials ({code})",
            "check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and the region",
        )
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return OperatorError(
            f"not allowed: {service or 'AWS'} {operation} was denied ({message})",
            f"use credentials whose role allows {service or 'the service'}:{operation}",
        )
    if code == "ResourceNotFoundException":
        what = next(iter(names.values()), "") or message
        return OperatorError(
            f"{service or 'AWS'} {operation}: not found: {what}",
            "check the name, region (AWS_DEFAULT_REGION) and stage, or create it first",
        )
    return OperatorError(
        f"{service or 'AWS'} {operation} failed: {code}: {message}",
        "run the command again with --debug for the full response",
    )


def _table_from(message: str) -> str:
    # DescribeTable says "Requested resource not found: Table: NAME not found".
    marker = "Table: "
    if marker in message:
        return message.split(marker, 1)[1].split(" ", 1)[0]
    return os.environ.get("SLUICE_RULES_TABLE") or "(unnamed)"


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "the region"


def read_json(path: str, example: str = "events/cloudwatch_logs.json") -> Any:
    """The JSON document in file `path`, or an OperatorError naming the line and column."""
    import orjson

    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read())
    except orjson.JSONDecodeError as e:
        raise OperatorError(
            f"{path} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            f"pass a JSON file, e.g. {example}",
        ) from e


def _json(e: BaseException) -> OperatorError:
    return OperatorError(
        f"the input is not JSON (line {getattr(e, 'lineno', '?')}, column "
        f"{getattr(e, 'colno', '?')}: {getattr(e, 'msg', e)})",
        "check the file or the response it came from",
    )


def _settings(e: BaseException) -> OperatorError:
    return OperatorError(
        f"Sluice is not configured: {e}",
        "export the SLUICE_* variables `sluice local up` or `sluice bootstrap` prints, or the "
        "stage's (its CloudFormation outputs)",
    )


_HANDLERS: dict[str, Any] = {
    "NoRegionError": _no_region,
    "NoCredentialsError": _no_credentials,
    "PartialCredentialsError": _partial_credentials,
    "ProfileNotFound": _profile_not_found,
    "EndpointConnectionError": _endpoint,
    "ConnectTimeoutError": _endpoint,
    "ReadTimeoutError": _endpoint,
    "ConnectionClosedError": _endpoint,
    "ClientError": _client_error,
    "SettingsError": _settings,
    "JSONDecodeError": _json,
}


# ---------------------------------------------------------------- the group
class SluiceGroup(click.Group):
    """A click group whose commands fail with one actionable line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            if debug_enabled(ctx):
                raise
            raise explain(e) from e


def debug_enabled(ctx: click.Context | None = None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    if root is not None and root.params.get("debug"):
        return True
    return os.environ.get("SLUICE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
