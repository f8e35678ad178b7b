"""Least-privilege IAM for Sluice's functions: one spec, rendered for each way of deploying.

Every function has its own role (Chalice does this when `autogen_policy` is false)
and every permission names the resources Sluice owns. The same statements are
rendered three ways, because the three deployments know different things:

- `deploy`: `.chalice/policy-<stage>-<function>.json`, read by `chalice deploy`.
  A static file cannot know the account id or region, so ARNs carry `*` in
  those two fields and the exact resource names of the stage; the archive and
  ingest bucket names end in `-*` (their names end with account and region).
- `cfn`: the role policies `chalice package --merge-template` puts into the
  CloudFormation template, exact: `Fn::GetAtt`/`Ref` of the stack's own resources.
- `tf`: the role policies of the Terraform output, exact: the account and region
  from Chalice's data sources, names from the resources stack's outputs.

`python infra/iam.py` rewrites the `.chalice/policy-*.json` files from this spec;
tests/unit/test_policies.py fails when they differ from it. No statement uses a
wildcard action, and none needs `Resource: "*"`: every API Sluice calls takes a
resource ARN (EMF metrics are log lines, not PutMetricData calls).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("dev", "prod")
FUNCTIONS = (
    "cloudwatch_logs",
    "kinesis_records",
    "s3_objects",
    "s3_object_created",
    "absence_check",
    "log_group_created",
)
# app.py fixes these two names (on_kinesis_record / on_sqs_message take literals).
FAN_IN_STREAM = "sluice-fan-in"
OBJECTS_QUEUE = "sluice-objects"

_CFN_ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
_TF_ARN = (
    "arn:${data.aws_partition.chalice.partition}:%s:${data.aws_region.chalice.name}"
    ":${data.aws_caller_identity.chalice.account_id}:%s"
)
_TF_STACK = "${aws_cloudformation_stack.resources.outputs[%s]}"
_TF_S3 = "arn:${data.aws_partition.chalice.partition}:s3:::"
_TF_IAM = (
    "arn:${data.aws_partition.chalice.partition}:iam::"
    "${data.aws_caller_identity.chalice.account_id}:role/"
)


@dataclass(frozen=True)
class Res:
    """One resource (or ARN pattern) as each deployment mode names it."""

    deploy: str
    cfn: Any
    tf: str


def _regional(service: str, resource: str, cfn: Any = None, tf: str | None = None) -> Res:
    return Res(
        f"arn:aws:{service}:*:*:{resource}",
        cfn if cfn is not None else {"Fn::Sub": _CFN_ARN % (service, resource)},
        tf if tf is not None else _TF_ARN % (service, resource),
    )


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _tf_output(name: str) -> str:
    return _TF_STACK % json.dumps(name)


def resources(stage: str, function: str) -> dict[str, Res]:
    p = f"sluice-{stage}"
    return {
        # The function's own log group (Chalice creates it with log_retention_in_days;
        # CreateLogGroup lets Lambda recreate it if someone deletes it).
        "own_logs": _regional("logs", f"log-group:/aws/lambda/{p}-{function}:*"),
        "rules_table": _regional(
            "dynamodb", f"table/{p}-rules", {"Fn::GetAtt": ["RulesTable", "Arn"]}
        ),
        "state_table": _regional(
            "dynamodb", f"table/{p}-state", {"Fn::GetAtt": ["StateTable", "Arn"]}
        ),
        "archive_objects": Res(
            f"arn:aws:s3:::{p}-archive-*/archive/*",
            {"Fn::Sub": "${ArchiveBucket.Arn}/archive/*"},
            _TF_S3 + _tf_output("ArchiveBucketName") + "/archive/*",
        ),
        "deadletter_objects": Res(
            f"arn:aws:s3:::{p}-archive-*/deadletter/*",
            {"Fn::Sub": "${ArchiveBucket.Arn}/deadletter/*"},
            _TF_S3 + _tf_output("ArchiveBucketName") + "/deadletter/*",
        ),
        "dlq": _regional("sqs", f"{p}-dlq", {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}),
        # Lambda's on-failure destination (async invocations, Kinesis batches): Lambda
        # sends the records with the function's own role.
        "failures": _regional("sqs", f"{p}-failures", {"Fn::GetAtt": ["FailureQueue", "Arn"]}),
        # Topics a rule's `sns` action may name: the stack's alerts topic and any
        # other the operator creates under the stage's prefix.
        "topics": _regional("sns", f"{p}-*"),
        # Secrets of the stage: the Slack token (sluice/<stage>/slack) and the auth of
        # `forward` destinations. Secrets Manager appends "-" and 6 characters to the ARN.
        "stage_secrets": _regional("secretsmanager", f"secret:sluice/{stage}/*"),
        "stage_parameters": _regional("ssm", f"parameter/sluice/{stage}/*"),
        # `forward` targets Sluice may write to without a template change: named for the
        # stage. Others are listed at deploy time (ForwardStreamArns, ForwardFirehoseArns).
        # Never the fan-in stream (sluice-fan-in): forwarding there would loop.
        "forward_streams": _regional("kinesis", f"stream/{p}-*"),
        "forward_firehoses": _regional("firehose", f"deliverystream/{p}-*"),
        "fan_in": _regional(
            "kinesis", f"stream/{FAN_IN_STREAM}", {"Fn::GetAtt": ["FanInStream", "Arn"]}
        ),
        "objects_queue": _regional("sqs", OBJECTS_QUEUE, {"Fn::GetAtt": ["ObjectsQueue", "Arn"]}),
        "ingest_objects": Res(
            f"arn:aws:s3:::{p}-ingest-*/*",
            {"Fn::Sub": "${IngestBucket.Arn}/*"},
            _TF_S3 + _tf_output("IngestBucketName") + "/*",
        ),
        # Log groups of transient workloads have names nobody knows in advance:
        # every group of the account and region is the narrowest scope possible.
        "any_log_group": _regional("logs", "log-group:*"),
        "cloudwatch_logs_function": _regional(
            "lambda",
            f"function:{p}-cloudwatch_logs",
            _arn("CloudwatchLogs"),
            "${aws_lambda_function.cloudwatch_logs.arn}",
        ),
        "logs_to_kinesis_role": Res(
            f"arn:aws:iam::*:role/{p}-logs-to-kinesis",
            {"Fn::GetAtt": ["LogsToKinesisRole", "Arn"]},
            f"{_TF_IAM}{p}-logs-to-kinesis",
        ),
    }


# Deploy-time switches a statement may depend on: the CloudFormation condition's name
# and the same test over the Terraform variables (infra/terraform.py declares them).
TF_SWITCHES = {
    "HasSourceBuckets": "length(var.source_bucket_arns) > 0",
    "HasForwardStreams": "length(var.forward_stream_arns) > 0",
    "HasForwardFirehoses": "length(var.forward_firehose_arns) > 0",
    "UseArchiveKms": 'var.archive_kms_key_arn != ""',
    "UseKmsKey": 'var.kms_key != ""',
    "KinesisEnabled": "var.enable_kinesis",
}


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any] | None = None
    # The deploy-time switch (a key of TF_SWITCHES) the statement depends on: the
    # resource may not exist, or is only known at deploy time.
    switch: str | None = None
    # Whether the static `.chalice/policy-*.json` files hold a switched statement
    # (they cannot hold one whose resource is only known at deploy time).
    static: bool = False


def _pipeline(*, archive: bool = True) -> list[Grant]:
    """What a function running rules and actions needs (rules, state, archive, actions)."""
    spill = ("archive_objects", "deadletter_objects") if archive else ("deadletter_objects",)
    return [
        Grant("ReadRules", ("dynamodb:GetItem", "dynamodb:Query"), ("rules_table",)),
        # chalicelib/state.py and alerting/: object claims, thresholds, throttles, dedupe.
        Grant(
            "StateRecords",
            (
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ),
            ("state_table",),
        ),
        Grant("WriteArchive", ("s3:PutObject",), spill),
        Grant("DeadLetters", ("sqs:SendMessage",), ("dlq",)),
        Grant("AlertTopics", ("sns:Publish",), ("topics",)),
        Grant("StageSecrets", ("secretsmanager:GetSecretValue",), ("stage_secrets",)),
        Grant("StageParameters", ("ssm:GetParameter",), ("stage_parameters",)),
        Grant("ForwardStreams", ("kinesis:PutRecords",), ("forward_streams",)),
        Grant("ForwardFirehoses", ("firehose:PutRecordBatch",), ("forward_firehoses",)),
        Grant(
            "ForwardStreamsListed",
            ("kinesis:PutRecords",),
            ("listed_streams",),
            switch="HasForwardStreams",
        ),
        Grant(
            "ForwardFirehosesListed",
            ("firehose:PutRecordBatch",),
            ("listed_firehoses",),
            switch="HasForwardFirehoses",
        ),
        # Only when the archive bucket uses a customer managed KMS key (ArchiveKmsKeyArn).
        Grant(
            "ArchiveKmsKey",
            ("kms:Decrypt", "kms:GenerateDataKey"),
            ("archive_kms_key",),
            switch="UseArchiveKms",
        ),
        _data_key(),
    ]


def _data_key() -> Grant:
    """The stack's customer managed key (KmsKey), usable only through the services that
    hold Sluice's data with it: tables, queues, topic, archive."""
    return Grant(
        "DataKmsKey",
        ("kms:Decrypt", "kms:GenerateDataKey"),
        ("data_kms_key",),
        {"StringLike": {"kms:ViaService": [f"{svc}.*.amazonaws.com" for svc in _KEY_SERVICES]}},
        switch="UseKmsKey",
    )


_KEY_SERVICES = ("dynamodb", "s3", "sns", "sqs")
_FAILURE_RECORDS = Grant("FailureRecords", ("sqs:SendMessage",), ("failures",))


def _read_objects() -> list[Grant]:
    return [
        # GetObjectVersion: notifications carry a versionId on versioned buckets.
        Grant("ReadIngest", ("s3:GetObject", "s3:GetObjectVersion"), ("ingest_objects",)),
        Grant(
            "ReadSourceBuckets",
            ("s3:GetObject", "s3:GetObjectVersion"),
            ("source_objects",),
            switch="HasSourceBuckets",
        ),
        # Continuations of a large object go back on the queue.
        Grant("ContinueObjects", ("sqs:GetQueueUrl", "sqs:SendMessage"), ("objects_queue",)),
    ]


def grants(function: str) -> list[Grant]:
    logs = Grant(
        "OwnLogs",
        ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
        ("own_logs",),
    )
    if function == "cloudwatch_logs":
        return [logs, *_pipeline(), _FAILURE_RECORDS]
    if function == "kinesis_records":
        return [
            logs,
            *_pipeline(),
            _FAILURE_RECORDS,
            # What a Kinesis event source mapping reads with (Lambda developer guide).
            Grant(
                "ReadFanInStream",
                (
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ),
                ("fan_in",),
            ),
        ]
    if function == "s3_objects":
        return [
            logs,
            *_pipeline(),
            *_read_objects(),
            # What an SQS event source mapping polls with (AWSLambdaSQSQueueExecutionRole).
            Grant(
                "ConsumeObjectsQueue",
                ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"),
                ("objects_queue",),
            ),
        ]
    if function == "s3_object_created":
        return [logs, *_pipeline(), *_read_objects(), _FAILURE_RECORDS]
    if function == "absence_check":
        return [logs, *_pipeline(archive=False)]
    if function == "log_group_created":
        return [
            logs,
            Grant(
                "ReadSubscriptionConfig",
                ("dynamodb:GetItem",),
                ("rules_table",),
                # Only the pk="config" items, not the rules.
                {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["config"]}},
            ),
            Grant(
                "SubscribeAnyLogGroup",
                ("logs:DescribeSubscriptionFilters", "logs:PutSubscriptionFilter"),
                ("any_log_group",),
            ),
            # Backfill: a new group's lines from before its filter took effect are read
            # back and handed to cloudwatch_logs as subscription payloads.
            Grant("BackfillAnyLogGroup", ("logs:FilterLogEvents",), ("any_log_group",)),
            Grant(
                "BackfillToCloudwatchLogs",
                ("lambda:InvokeFunction",),
                ("cloudwatch_logs_function",),
            ),
            # Kinesis fan-in: PutSubscriptionFilter passes the role CloudWatch Logs writes with.
            Grant(
                "PassLogsToKinesisRole",
                ("iam:PassRole",),
                ("logs_to_kinesis_role",),
                {"StringEquals": {"iam:PassedToService": "logs.amazonaws.com"}},
                switch="KinesisEnabled",
                static=True,
            ),
            # Asynchronous invocations that fail every retry land here (EventInvokeConfig).
            _FAILURE_RECORDS,
            _data_key(),
        ]
    raise KeyError(function)


# Resources only known at deploy time (parameters / variables), per mode.
_CFN_SPECIAL: dict[str, Any] = {
    "archive_kms_key": {"Ref": "ArchiveKmsKeyArn"},
    "data_kms_key": {"Fn::If": ["CreateKmsKey", _arn("DataKey"), {"Ref": "KmsKey"}]},
    "listed_streams": {"Ref": "ForwardStreamArns"},
    "listed_firehoses": {"Ref": "ForwardFirehoseArns"},
    # "arn:aws:s3:::a,arn:aws:s3:::b" -> ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]
    "source_objects": {
        "Fn::Split": [
            ",",
            {
                "Fn::Sub": [
                    "${Joined}/*",
                    {"Joined": {"Fn::Join": ["/*,", {"Ref": "SourceBucketArns"}]}},
                ]
            },
        ]
    },
}
_TF_SPECIAL: dict[str, str] = {
    "archive_kms_key": "${var.archive_kms_key_arn}",
    "data_kms_key": _tf_output("KmsKeyArn"),
    "listed_streams": "${var.forward_stream_arns}",
    "listed_firehoses": "${var.forward_firehose_arns}",
    "source_objects": '${[for a in var.source_bucket_arns : "${a}/*"]}',
}
_TF_LISTS = {_TF_SPECIAL[k] for k in ("listed_streams", "listed_firehoses", "source_objects")}


def _statement(g: Grant, res: dict[str, Res], mode: str) -> dict[str, Any]:
    special = _CFN_SPECIAL if mode == "cfn" else _TF_SPECIAL
    resource: Any
    if g.resources[0] in special:
        resource = special[g.resources[0]]
    else:
        arns = [getattr(res[k], mode) for k in g.resources]
        resource = arns[0] if len(arns) == 1 else arns
    st: dict[str, Any] = {
        "Sid": g.sid,
        "Effect": "Allow",
        "Action": list(g.actions) if len(g.actions) > 1 else g.actions[0],
        "Resource": resource,
    }
    if g.condition:
        st["Condition"] = g.condition
    return st


def policy(stage: str, function: str, mode: str) -> dict[str, Any]:
    """The policy document of `function`'s role for `mode` (deploy, cfn or tf).

    cfn wraps switched statements in `Fn::If`; deploy keeps only the static ones;
    tf gives every statement, as with every switch on (`tf_policy_document` is what
    the Terraform output holds).
    """
    res = resources(stage, function)
    statements: list[Any] = []
    for g in grants(function):
        if mode == "deploy" and g.switch and not g.static:
            continue
        st = _statement(g, res, mode)
        if mode == "cfn" and g.switch:
            statements.append({"Fn::If": [g.switch, st, {"Ref": "AWS::NoValue"}]})
        else:
            statements.append(st)
    return {"Version": "2012-10-17", "Statement": statements}


def _tf_block(st: dict[str, Any]) -> dict[str, Any]:
    """One statement as an `aws_iam_policy_document` statement block."""
    actions, resource = st["Action"], st["Resource"]
    # A whole-list expression ("${var.x}", "${[for ...]}") stays one string: Terraform
    # reads it as the list it evaluates to.
    whole_list = isinstance(resource, str) and resource in _TF_LISTS
    block: dict[str, Any] = {
        "sid": st["Sid"],
        "effect": st["Effect"],
        "actions": actions if isinstance(actions, list) else [actions],
        "resources": resource if isinstance(resource, list) or whole_list else [resource],
    }
    if "Condition" in st:
        block["condition"] = [
            {"test": test, "variable": variable, "values": values}
            for test, pairs in st["Condition"].items()
            for variable, values in pairs.items()
        ]
    return block


def tf_policy_document(stage: str, function: str) -> dict[str, Any]:
    """`function`'s role policy as an `aws_iam_policy_document` data source: structured
    (no JSON inside a string), switched statements as `dynamic` blocks."""
    res = resources(stage, function)
    static: list[dict[str, Any]] = []
    dynamic: list[dict[str, Any]] = []
    for g in grants(function):
        block = _tf_block(_statement(g, res, "tf"))
        if g.switch:
            cond = TF_SWITCHES[g.switch]
            dynamic.append({"for_each": "${%s ? [1] : []}" % cond, "content": block})  # noqa: UP031
        else:
            static.append(block)
    doc: dict[str, Any] = {"version": "2012-10-17", "statement": static}
    if dynamic:
        doc["dynamic"] = {"statement": dynamic}
    return doc


def policy_path(stage: str, function: str) -> Path:
    return ROOT / ".chalice" / f"policy-{stage}-{function}.json"


def render_file(stage: str, function: str) -> str:
    return json.dumps(policy(stage, function, "deploy"), indent=2) + "\n"


def main(argv: list[str]) -> int:
    """Write (or with --check, compare) the `.chalice/policy-*.json` files."""
    check = "--check" in argv
    stale = []
    for stage in STAGES:
        for fn in FUNCTIONS:
            path, text = policy_path(stage, fn), render_file(stage, fn)
            if path.exists() and path.read_text() == text:
                continue
            stale.append(path.name)
            if not check:
                path.write_text(text)
    verb = "out of date" if check else "written"
    for name in stale:
        print(f"{name}: {verb}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
