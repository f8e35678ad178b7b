"""Chalice's Terraform output made current, exact and as complete as the CloudFormation.

`chalice package --pkg-format terraform` writes chalice.tf.json: it pins Terraform
< 1.4 and the AWS provider < 5, declares a `null_data_source` it never reads (which
needs the hashicorp/null provider) and has no merge step. `patch` fixes that, and
`extras` (sluice.tf.json) adds what infra/functions.yaml adds to the CloudFormation:
the stateful resources (infra/resources.yaml, deployed as an `aws_cloudformation_stack`
so both paths share one definition), the CloudWatch Logs invoke permission, the
account-level subscription policy, and the variables standing for the template's
parameters. Role policies are `aws_iam_policy_document` data sources rendered from
infra/iam.py: structured, so no reference ends up inside a JSON-encoded string.

The only provider needed is hashicorp/aws. tests/unit/test_terraform.py runs
`terraform validate` on the output and compares it with the CloudFormation
(infra/parity.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import iam

TERRAFORM_VERSION = ">= 1.5.0"
# 5.58 added aws_cloudwatch_log_account_policy (the account-level subscription).
AWS_PROVIDER = ">= 5.58, < 7.0"
STACK = "aws_cloudformation_stack.resources"
# Functions that exist only when the fan-in stream does (CloudFormation: Condition
# KinesisEnabled on the function and its role).
KINESIS_ONLY = ("kinesis_records",)
# Terraform variables standing for the template's parameters (infra/parity.py maps
# one onto the other to compare the two outputs).
PARAMETERS = {
    "enable_kinesis": "EnableKinesis",
    "source_bucket_arns": "SourceBucketArns",
    "forward_stream_arns": "ForwardStreamArns",
    "forward_firehose_arns": "ForwardFirehoseArns",
    "archive_kms_key_arn": "ArchiveKmsKeyArn",
    "kms_key": "KmsKey",
    "account_subscription": "AccountSubscription",
    "organization_id": "OrganizationId",
    "member_accounts": "MemberAccounts",
}
_ASYNC = ("cloudwatch_logs", "s3_object_created", "log_group_created")
_S3 = "arn:${data.aws_partition.chalice.partition}:s3:::"
_ARN = (
    "arn:${{data.aws_partition.chalice.partition}}:{service}:${{data.aws_region.chalice.name}}"
    ":${{data.aws_caller_identity.chalice.account_id}}:{resource}"
)


def out(name: str, *, optional: bool = False) -> str:
    """A reference to an output of the resources stack; `optional` for one with a
    Condition (absent from the map when false)."""
    if optional:
        return '${lookup(%s.outputs, "%s", "")}' % (STACK, name)  # noqa: UP031
    return "${%s.outputs[%s]}" % (STACK, json.dumps(name))  # noqa: UP031


def _ref(kind: str, name: str, attr: str) -> str:
    return "${%s.%s.%s}" % (kind, name, attr)  # noqa: UP031


def patch(tf: dict[str, Any], stage: str) -> dict[str, Any]:
    """Chalice's chalice.tf.json made acceptable to current Terraform and complete."""
    tf["terraform"] = {
        "required_version": TERRAFORM_VERSION,
        "required_providers": {"aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER}},
    }
    # Declared by Chalice, read by nothing; it alone needs the hashicorp/null provider.
    tf["data"].pop("null_data_source", None)
    if not tf.get("locals"):
        tf.pop("locals", None)
    res = tf["resource"]
    failures = _ARN.format(service="sqs", resource=f"sluice-{stage}-failures")
    for name, fn in res.get("aws_lambda_function", {}).items():
        fn["environment"]["variables"].update(
            {
                "SLUICE_RULES_TABLE": out("RulesTableName"),
                "SLUICE_STATE_TABLE": out("StateTableName"),
                "SLUICE_ARCHIVE_BUCKET": out("ArchiveBucketName"),
                "SLUICE_DLQ_URL": out("DeadLetterQueueUrl"),
                "SLUICE_OBJECTS_QUEUE_URL": out("ObjectsQueueUrl"),
                "SLUICE_ALLOWED_ACCOUNTS": out("AllowedAccounts"),
            }
        )
        fn["depends_on"] = [STACK]
        if name in _ASYNC:
            res.setdefault("aws_lambda_function_event_invoke_config", {})[name] = {
                "function_name": _ref("aws_lambda_function", name, "function_name"),
                "maximum_retry_attempts": 2,
                "maximum_event_age_in_seconds": 21600,
                "destination_config": {"on_failure": {"destination": failures}},
            }
    documents = tf["data"].setdefault("aws_iam_policy_document", {})
    for name, pol in res.get("aws_iam_role_policy", {}).items():
        fn = name.removesuffix("_role")
        if fn in iam.FUNCTIONS:
            documents[fn] = iam.tf_policy_document(stage, fn)
            pol["policy"] = _ref("data.aws_iam_policy_document", fn, "json")
    for name, esm in res.get("aws_lambda_event_source_mapping", {}).items():
        esm["function_response_types"] = ["ReportBatchItemFailures"]
        esm["depends_on"] = [STACK]
        if name.startswith("kinesis_records"):
            esm["count"] = "${var.enable_kinesis ? 1 : 0}"
            esm["bisect_batch_on_function_error"] = True
            esm["maximum_retry_attempts"] = 10
            esm["parallelization_factor"] = 1  # positions per shard: see functions.yaml
            esm["destination_config"] = {"on_failure": {"destination_arn": failures}}
        elif name.startswith("s3_objects"):
            esm["scaling_config"] = {"maximum_concurrency": 10}
    for name, rule in res.get("aws_cloudwatch_event_rule", {}).items():
        # Chalice names rules `<function>-event`: two stages in one account would collide.
        rule["name"] = f"sluice-{stage}-{name.removesuffix('-event')}"
    created = res.get("aws_cloudwatch_event_rule", {}).get("s3_object_created-event")
    if created is not None:
        # As in CloudFormation: only the listed buckets, off until there is one.
        # EventBridge refuses empty arrays in patterns: the ingest bucket stands in.
        ingest = _S3 + out("IngestBucketName")
        created["event_pattern"] = (
            '${jsonencode({"source" = ["aws.s3"], "detail-type" = ["Object Created"], '
            '"resources" = length(var.source_bucket_arns) > 0 ? var.source_bucket_arns : '
            f'["{ingest}"]}})}}'
        )
        created["state"] = '${length(var.source_bucket_arns) > 0 ? "ENABLED" : "DISABLED"}'
    return _gate(tf, KINESIS_ONLY, "var.enable_kinesis")


def _gate(tf: dict[str, Any], functions: tuple[str, ...], cond: str) -> dict[str, Any]:
    """Give `functions`' function, role and role policy `count = cond ? 1 : 0`, and make
    every reference to them name instance [0]."""
    res = tf["resource"]
    gated = []
    for fn in functions:
        for kind, name in (
            ("aws_lambda_function", fn),
            ("aws_iam_role", f"{fn}_role"),
            ("aws_iam_role_policy", f"{fn}_role"),
        ):
            if name in res.get(kind, {}):
                res[kind][name]["count"] = "${%s ? 1 : 0}" % cond  # noqa: UP031
                gated.append(f"{kind}.{name}")
    if not gated:
        return tf
    pattern = re.compile(r"\b(%s)\." % "|".join(map(re.escape, gated)))  # noqa: UP031
    return json.loads(pattern.sub(r"\1[0].", json.dumps(tf)))


def selection_criteria(stage: str) -> str:
    """The account policy's exclusion of Sluice's own log groups (as functions.yaml's)."""
    names = ", ".join(f'"/aws/lambda/sluice-{stage}-{fn}"' for fn in iam.FUNCTIONS)
    return f"LogGroupName NOT IN [{names}]"


def _variables() -> dict[str, Any]:
    def var(kind: str, default: Any, description: str) -> dict[str, Any]:
        return {"type": kind, "default": default, "description": description}

    return {
        "enable_kinesis": var(
            "bool", False, "Create the sluice-fan-in stream and its event source mapping."
        ),
        "source_bucket_arns": var(
            "list(string)", [], "Buckets whose new objects Sluice reads (ARNs); never the archive."
        ),
        "forward_stream_arns": var(
            "list(string)", [], "Kinesis streams `forward` may write to, besides sluice-<stage>-*."
        ),
        "forward_firehose_arns": var(
            "list(string)", [], "Firehose streams `forward` may write to, besides sluice-<stage>-*."
        ),
        "archive_kms_key_arn": var(
            "string", "", "Customer managed KMS key of the archive bucket; empty: SSE-S3."
        ),
        "kms_key": var(
            "string", "", 'KMS key of tables, queues, topic: "", "create" or a key ARN.'
        ),
        "account_subscription": {
            **var("string", "off", "off, lambda or kinesis: an account-level subscription policy."),
            "validation": [
                {
                    "condition": (
                        '${contains(["off", "lambda", "kinesis"], var.account_subscription)}'
                    ),
                    "error_message": "account_subscription is off, lambda or kinesis.",
                }
            ],
        },
        "organization_id": var(
            "string",
            "",
            "Receive logs from this AWS Organization (o-...); see docs/deployment.md.",
        ),
        "member_accounts": var(
            "list(string)", [], "Accounts admitted as senders when organization_id is empty."
        ),
        "resources_parameters": var(
            "map(string)", {}, "More infra/resources.yaml parameters (ArchiveExpireDays...)."
        ),
    }


def _stack_parameters(stage: str) -> str:
    fixed = {
        "Stage": f'"{stage}"',
        "EnableKinesis": 'var.enable_kinesis ? "true" : "false"',
        "ArchiveKmsKeyArn": "var.archive_kms_key_arn",
        "KmsKey": "var.kms_key",
        "OrganizationId": "var.organization_id",
        "MemberAccounts": 'join(",", var.member_accounts)',
    }
    pairs = ", ".join(f"{k} = {v}" for k, v in fixed.items())
    return "${merge(var.resources_parameters, {%s})}" % pairs  # noqa: UP031


def _account_policy(stage: str) -> dict[str, Any]:
    """infra/functions.yaml's AccountSubscriptionPolicy: to the function or the stream."""
    to_stream = (
        f'{{"DestinationArn" = {out("FanInStreamArn", optional=True)[2:-1]}, '
        f'"RoleArn" = {out("LogsToKinesisRoleArn", optional=True)[2:-1]}, '
        '"FilterPattern" = "", "Distribution" = "Random"}'
    )
    to_function = (
        '{"DestinationArn" = aws_lambda_function.cloudwatch_logs.arn, "FilterPattern" = ""}'
    )
    document = f'var.account_subscription == "kinesis" ? {to_stream} : {to_function}'
    return {
        "count": '${var.account_subscription == "off" ? 0 : 1}',
        "policy_name": f"sluice-{stage}",
        "policy_type": "SUBSCRIPTION_FILTER_POLICY",
        "scope": "ALL",
        "selection_criteria": selection_criteria(stage),
        "policy_document": f"${{jsonencode({document})}}",
        "depends_on": ["aws_lambda_permission.cloudwatch_logs_from_logs"],
        "lifecycle": {
            "precondition": [
                {
                    "condition": '${var.account_subscription != "kinesis" || var.enable_kinesis}',
                    "error_message": "account_subscription = kinesis needs enable_kinesis.",
                }
            ]
        },
    }


def extras(stage: str) -> dict[str, Any]:
    """sluice.tf.json: the resources stack, variables, and what Chalice's output lacks."""
    return {
        "variable": _variables(),
        "resource": {
            "aws_cloudformation_stack": {
                "resources": {
                    "name": f"sluice-{stage}-resources",
                    "template_body": '${file("${path.module}/resources.yaml")}',
                    "capabilities": ["CAPABILITY_NAMED_IAM"],
                    "parameters": _stack_parameters(stage),
                }
            },
            # PutSubscriptionFilter to a function fails until CloudWatch Logs may invoke it.
            "aws_lambda_permission": {
                "cloudwatch_logs_from_logs": {
                    "function_name": "${aws_lambda_function.cloudwatch_logs.arn}",
                    "action": "lambda:InvokeFunction",
                    "principal": "logs.amazonaws.com",
                    "source_account": "${data.aws_caller_identity.chalice.account_id}",
                    "source_arn": _ARN.format(service="logs", resource="log-group:*"),
                }
            },
            # The whole-account alternative to `sluice subscribe` (docs/deployment.md),
            # excluding Sluice's own log groups, which would otherwise feed back.
            "aws_cloudwatch_log_account_policy": {"subscription": _account_policy(stage)},
        },
        "output": {
            name: {"value": out(name)}
            for name in (
                "RulesTableName",
                "ArchiveBucketName",
                "IngestBucketName",
                "DeadLetterQueueUrl",
                "FailureQueueUrl",
                "AlertTopicArn",
                "DashboardName",
                "SlackSecretArn",
                "AthenaWorkGroupName",
            )
        }
        | {"OrgDestinationArn": {"value": out("OrgDestinationArn", optional=True)}},
    }
