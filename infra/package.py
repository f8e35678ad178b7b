"""`make package`: CloudFormation and Terraform for each stage, from Chalice's own output.

    python infra/package.py [--stage dev] [--stage prod] [--out out/package]

For each stage:
  <out>/<stage>/merge.json            resources.yaml + functions.yaml + infra/iam.py roles
  <out>/<stage>/cloudformation/       sam.yaml (`chalice package --merge-template`) + zip
  <out>/<stage>/terraform/            chalice.tf.json (patched), sluice.tf.json, resources.yaml

Needs no AWS credentials: `chalice package` only builds. The first run downloads
the Lambda wheels of requirements.txt from PyPI; later runs reuse Chalice's cache.

Terraform: Chalice's output pins Terraform < 1.4 and the AWS provider < 5, and has
no merge step. The pins are replaced, event source mappings get the properties
the CloudFormation path adds, role policies become exact (account and region from
Chalice's data sources), and the stateful resources come from infra/resources.yaml
as an `aws_cloudformation_stack` (one definition for both paths).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import iam  # infra/ holds scripts, not a package

ROOT = iam.ROOT
INFRA = ROOT / "infra"
TERRAFORM_VERSION = ">= 1.5.0"
# 5.40: aws_cloudwatch_event_rule takes `state`.
AWS_PROVIDER = ">= 5.40, < 7.0"
NULL_PROVIDER = ">= 3.0"


# ---------------------------------------------------------------- CloudFormation YAML
class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt...) as long forms."""


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_cfn(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506


def deep_merge(base: Any, over: Any) -> Any:
    """Chalice's merge semantics: maps merge key by key; lists and scalars replace."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def logical_id(function: str) -> str:
    """Chalice's CloudFormation name for a function: `s3_objects` -> `S3Objects`."""
    return "".join(part[:1].upper() + part[1:] for part in function.split("_"))


def merge_template(stage: str) -> dict[str, Any]:
    """What `--merge-template` gets for `stage`."""
    doc = deep_merge(load_cfn(INFRA / "resources.yaml"), load_cfn(INFRA / "functions.yaml"))
    # The template is built for one stage (Chalice bakes the stage into it): no other.
    doc["Parameters"]["Stage"].update({"Default": stage, "AllowedValues": [stage]})
    doc["Parameters"]["Stage"].pop("AllowedPattern", None)
    for fn in iam.FUNCTIONS:
        role = doc["Resources"].setdefault(f"{logical_id(fn)}Role", {})
        role.setdefault("Properties", {})["Policies"] = [
            {"PolicyName": "sluice", "PolicyDocument": iam.policy(stage, fn, "cfn")}
        ]
    return doc


def check_merged(template: dict[str, Any], functions: list[str]) -> None:
    """Fail loudly if the overlay and Chalice's output no longer line up."""
    problems = []
    for name, res in template["Resources"].items():
        if "Type" not in res:
            problems.append(f"{name}: in infra/ but not in Chalice's output (renamed function?)")
    for fn in functions:
        if fn not in iam.FUNCTIONS:
            problems.append(f"{fn}: function in app.py without a policy in infra/iam.py")
    if problems:
        raise SystemExit("infra/ is out of step with app.py:\n  " + "\n  ".join(problems))


def app_functions() -> list[str]:
    """Function names Chalice will package (app.py's handlers)."""
    sys.path.insert(0, str(ROOT))
    from app import app

    return sorted(app.handler_map)


# ---------------------------------------------------------------- Chalice
def chalice(*args: str) -> None:
    exe = Path(sys.executable).with_name("chalice")
    env = dict(os.environ)
    # `chalice package` builds offline from AWS's point of view but botocore wants a region.
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    # Without credentials botocore would look for them at the instance metadata
    # service (169.254.169.254): packaging needs none, so it must not reach out.
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    subprocess.run([str(exe), *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def package_cloudformation(stage: str, out: Path) -> Path:
    merge = out / "merge.json"
    merge.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
    target = out / "cloudformation"
    shutil.rmtree(target, ignore_errors=True)
    chalice(
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(merge),
        "--template-format",
        "yaml",
        str(target),
    )
    template = yaml.safe_load((target / "sam.yaml").read_text())
    check_merged(template, app_functions())
    return target / "sam.yaml"


# ---------------------------------------------------------------- Terraform
_ASYNC = ("cloudwatch_logs", "s3_object_created", "log_group_created")
_STACK = "aws_cloudformation_stack.resources"
_TF_S3 = "arn:${data.aws_partition.chalice.partition}:s3:::"
_TF_ARN = (
    "arn:${{data.aws_partition.chalice.partition}}:{service}:${{data.aws_region.chalice.name}}"
    ":${{data.aws_caller_identity.chalice.account_id}}:{resource}"
)


def _out(name: str) -> str:
    return "${%s.outputs[%s]}" % (_STACK, json.dumps(name))  # noqa: UP031


def patch_terraform(tf: dict[str, Any], stage: str) -> dict[str, Any]:
    """Chalice's chalice.tf.json made acceptable to current Terraform and complete."""
    tf["terraform"] = {
        "required_version": TERRAFORM_VERSION,
        "required_providers": {
            "aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER},
            "null": {"source": "hashicorp/null", "version": NULL_PROVIDER},
        },
    }
    res = tf["resource"]
    dlq_arn = _TF_ARN.format(service="sqs", resource=f"sluice-{stage}-dlq")
    for name, fn in res.get("aws_lambda_function", {}).items():
        fn["environment"]["variables"].update(
            {
                "SLUICE_RULES_TABLE": _out("RulesTableName"),
                "SLUICE_STATE_TABLE": _out("StateTableName"),
                "SLUICE_ARCHIVE_BUCKET": _out("ArchiveBucketName"),
                "SLUICE_DLQ_URL": _out("DeadLetterQueueUrl"),
                "SLUICE_OBJECTS_QUEUE_URL": _out("ObjectsQueueUrl"),
            }
        )
        fn["depends_on"] = [_STACK]
        if name in _ASYNC:
            res.setdefault("aws_lambda_function_event_invoke_config", {})[name] = {
                "function_name": "${aws_lambda_function.%s.function_name}" % name,  # noqa: UP031
                "maximum_retry_attempts": 2,
                "maximum_event_age_in_seconds": 21600,
                "destination_config": {"on_failure": {"destination": dlq_arn}},
            }
    for name, pol in res.get("aws_iam_role_policy", {}).items():
        fn = name.removesuffix("_role")
        if fn in iam.FUNCTIONS:
            pol["policy"] = json.dumps(iam.policy(stage, fn, "tf"))
    for name, esm in res.get("aws_lambda_event_source_mapping", {}).items():
        esm["function_response_types"] = ["ReportBatchItemFailures"]
        esm["depends_on"] = [_STACK]
        if name.startswith("kinesis_records"):
            esm["count"] = "${var.enable_kinesis ? 1 : 0}"
            esm["bisect_batch_on_function_error"] = True
            esm["maximum_retry_attempts"] = 10
            esm["destination_config"] = {"on_failure": {"destination_arn": dlq_arn}}
        elif name.startswith("s3_objects"):
            esm["scaling_config"] = {"maximum_concurrency": 10}
    for name, rule in res.get("aws_cloudwatch_event_rule", {}).items():
        # Chalice names rules `<function>-event`: two stages in one account would collide.
        rule["name"] = f"sluice-{stage}-{name.removesuffix('-event')}"
    created = res.get("aws_cloudwatch_event_rule", {}).get("s3_object_created-event")
    if created is not None:
        # As in CloudFormation: only the listed buckets, off until there is one.
        # EventBridge refuses empty arrays in patterns: the ingest bucket stands in.
        ingest = _TF_S3 + _out("IngestBucketName")
        created["event_pattern"] = (
            '${jsonencode({"source" = ["aws.s3"], "detail-type" = ["Object Created"], '
            '"resources" = length(var.source_bucket_arns) > 0 ? var.source_bucket_arns : '
            f'["{ingest}"]}})}}'
        )
        created["state"] = '${length(var.source_bucket_arns) > 0 ? "ENABLED" : "DISABLED"}'
    return tf


def terraform_extras(stage: str) -> dict[str, Any]:
    """sluice.tf.json: the resources stack, variables, and what Chalice's output lacks."""
    return {
        "variable": {
            "enable_kinesis": {
                "type": "bool",
                "default": False,
                "description": "Create the sluice-fan-in stream and its event source mapping.",
            },
            "source_bucket_arns": {
                "type": "list(string)",
                "default": [],
                "description": "Buckets with EventBridge notifications s3_object_created reads.",
            },
            "resources_parameters": {
                "type": "map(string)",
                "default": {},
                "description": "More infra/resources.yaml parameters (ArchiveExpireDays...).",
            },
        },
        "resource": {
            "aws_cloudformation_stack": {
                "resources": {
                    "name": f"sluice-{stage}-resources",
                    "template_body": '${file("${path.module}/resources.yaml")}',
                    "capabilities": ["CAPABILITY_NAMED_IAM"],
                    "parameters": (
                        "${merge(var.resources_parameters, "
                        f'{{Stage = "{stage}", '
                        'EnableKinesis = var.enable_kinesis ? "true" : "false"})}'
                    ),
                }
            },
            # Source buckets (var.source_bucket_arns) for the two S3 functions, as
            # CloudFormation's ReadSourceBuckets statement; none while the list is empty.
            "aws_iam_role_policy": {
                f"{fn}_sources": {
                    "count": "${length(var.source_bucket_arns) > 0 ? 1 : 0}",
                    "name": "sluice-sources",
                    "role": "${aws_iam_role.%s_role.id}" % fn,  # noqa: UP031
                    "policy": (
                        '${jsonencode({"Version" = "2012-10-17", "Statement" = [{'
                        '"Sid" = "ReadSourceBuckets", "Effect" = "Allow", '
                        '"Action" = ["s3:GetObject", "s3:GetObjectVersion"], '
                        '"Resource" = [for a in var.source_bucket_arns : "${a}/*"]}]})}'
                    ),
                }
                for fn in ("s3_objects", "s3_object_created")
            },
            "aws_lambda_permission": {
                "cloudwatch_logs_from_logs": {
                    "function_name": "${aws_lambda_function.cloudwatch_logs.arn}",
                    "action": "lambda:InvokeFunction",
                    "principal": "logs.amazonaws.com",
                    "source_account": "${data.aws_caller_identity.chalice.account_id}",
                    "source_arn": _TF_ARN.format(service="logs", resource="log-group:*"),
                }
            },
        },
        "output": {
            name: {"value": _out(name)}
            for name in (
                "RulesTableName",
                "ArchiveBucketName",
                "IngestBucketName",
                "DeadLetterQueueUrl",
                "AlertTopicArn",
                "SlackSecretArn",
                "AthenaWorkGroupName",
            )
        },
    }


def package_terraform(stage: str, out: Path) -> Path:
    target = out / "terraform"
    shutil.rmtree(target, ignore_errors=True)
    chalice("package", "--pkg-format", "terraform", "--stage", stage, str(target))
    path = target / "chalice.tf.json"
    tf = patch_terraform(json.loads(path.read_text()), stage)
    path.write_text(json.dumps(tf, indent=2) + "\n")
    (target / "sluice.tf.json").write_text(json.dumps(terraform_extras(stage), indent=2) + "\n")
    shutil.copyfile(INFRA / "resources.yaml", target / "resources.yaml")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", action="append", choices=iam.STAGES)
    ap.add_argument("--out", default=str(ROOT / "out" / "package"))
    ap.add_argument("--skip-terraform", action="store_true")
    args = ap.parse_args(argv)
    if iam.main(["--check"]):
        print("run `python infra/iam.py` to rewrite them from infra/iam.py", file=sys.stderr)
        return 1
    for stage in args.stage or list(iam.STAGES):
        out = Path(args.out) / stage
        out.mkdir(parents=True, exist_ok=True)
        print(f"{stage}: {package_cloudformation(stage, out)}")
        if not args.skip_terraform:
            print(f"{stage}: {package_terraform(stage, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
