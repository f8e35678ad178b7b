"""Each kind of AWS or configuration failure becomes one line that names the problem and the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from chalicelib.errors import SettingsError
from sluice_cli import errors


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeModel:
    def __init__(self, service: str, name: str) -> None:
        self.name = name
        self.service_model = type("S", (), {"service_name": service})()


CASES = [
    pytest.param(
        NoRegionError(), None, ["no AWS region configured", "AWS_DEFAULT_REGION"], id="no region"
    ),
    pytest.param(
        NoCredentialsError(), None, ["no AWS credentials found", "AWS_PROFILE"], id="no credentials"
    ),
    pytest.param(
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        None,
        ["incomplete AWS credentials", "AWS_SECRET_ACCESS_KEY"],
        id="partial credentials",
    ),
    pytest.param(
        ProfileNotFound(profile="ops"),
        None,
        ["profile 'ops' does not exist", "unset AWS_PROFILE"],
        id="profile not found",
    ),
    pytest.param(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:4599/"),
        None,
        ["http://127.0.0.1:4599/ did not answer", "sluice local up"],
        id="local endpoint down",
    ),
    pytest.param(
        ConnectTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
        None,
        ["did not answer in time", "network"],
        id="remote endpoint timeout",
    ),
    pytest.param(
        client_error(
            "ResourceNotFoundException", "Requested resource not found", "TransactWriteItems"
        ),
        (
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "team-rules", "Item": {}}}]},
        ),
        ["DynamoDB table team-rules does not exist", "sluice bootstrap"],
        id="table missing, named inside a transaction",
    ),
    pytest.param(
        client_error(
            "ResourceNotFoundException",
            "Requested resource not found: Table: t1 not found",
            "DescribeTable",
        ),
        None,
        ["DynamoDB table t1 does not exist"],
        id="table named by the message",
    ),
    pytest.param(
        client_error("AWS.SimpleQueueService.NonExistentQueue", "no queue", "ReceiveMessage"),
        ("sqs", "ReceiveMessage", {"QueueUrl": "http://q/1/dlq"}),
        ["SQS queue http://q/1/dlq does not exist", "SLUICE_DLQ_URL"],
        id="queue missing",
    ),
    pytest.param(
        client_error("NoSuchBucket", "gone", "ListObjectsV2"),
        ("s3", "ListObjectsV2", {"Bucket": "arch"}),
        ["S3 bucket arch does not exist", "SLUICE_ARCHIVE_BUCKET"],
        id="bucket missing",
    ),
    pytest.param(
        client_error("ExpiredTokenException", "expired", "Query"),
        None,
        ["credentials have expired", "aws sso login"],
        id="expired credentials",
    ),
    pytest.param(
        client_error("AccessDeniedException", "no", "Query"),
        ("dynamodb", "Query", {"TableName": "t"}),
        ["denied", "dynamodb:Query"],
        id="access denied",
    ),
    pytest.param(
        client_error("ThrottlingException", "slow down", "Query"),
        None,
        ["Query failed: ThrottlingException: slow down", "--debug"],
        id="anything else",
    ),
    pytest.param(
        SettingsError("missing environment variable(s): SLUICE_DLQ_URL"),
        None,
        ["Sluice is not configured", "SLUICE_DLQ_URL", "sluice local up"],
        id="settings missing",
    ),
    pytest.param(
        json.JSONDecodeError("Expecting value", "{x", 1),
        None,
        ["not JSON (line 1, column 2: Expecting value)"],
        id="JSON that is not",
    ),
    pytest.param(ValueError("boom"), None, ["unexpected ValueError: boom", "--debug"], id="a bug"),
]


@pytest.mark.parametrize(("exc", "call", "expected"), CASES)
def test_failure_becomes_one_actionable_line(
    exc: BaseException, call: tuple[str, str, dict[str, Any]] | None, expected: list[str]
) -> None:
    """The message is one line, `<what>; <fix>`, and says what the operator needs."""
    errors.forget_calls()
    if call is not None:
        service, op, params = call
        errors._on_call(params, FakeModel(service, op))

    err = errors.explain(exc)

    text = err.format_message()
    assert "\n" not in text and "; " in text
    assert err.exit_code == 1
    for piece in expected:
        assert piece in text, text
