"""The member side of an organization: what each member account and region deploys
(a StackSet instance, or a Terraform module per account and region).

    <out>/<stage>/member/member.yaml        CloudFormation (StackSets)
    <out>/<stage>/member/member.tf.json     Terraform

It subscribes the member's log groups to the central account's CloudWatch Logs
destination `sluice-<stage>` of the same region (infra/resources.yaml, OrgDestination):

- Mode `account-policy` (default): one account-level subscription filter policy named
  `sluice-org-<region>` covering every log group but Sluice's own (any stage of any
  Sluice deployment in the member) and the operator's exclusions. The name tells the
  central functions the region (chalicelib/org.py): CloudWatch data carries none.
- Mode `per-group`: no policy; a role the central account assumes to put per-group
  filters (`sluice org subscribe`), as log_group_created does in its own account.

The destination ARN is built from the central account id and the member's own region:
a destination serves the log groups of its region only, so a StackSet deployed to
several regions subscribes each to its own region's destination and cannot name one
elsewhere. Every role is named with the region (IAM names are global to the account,
and one StackSet instance per region creates them), and can do exactly one thing:

- `sluice-org-delivery-<region>`: assumed by CloudWatch Logs of this account and region
  to deliver to the destination (an organization-wide destination policy requires it);
- `sluice-org-reader-<region>`: assumed by the central account to read coverage
  (`sluice org status`): list groups, their filters, the account policies;
- `sluice-org-subscriber-<region>` (per-group only): assumed by the central account to
  put Sluice's filter on groups, to this destination only.

One statement spec, rendered for CloudFormation and Terraform, so both grant the same
(tests/unit/test_org_member.py evaluates both and compares).
"""

from __future__ import annotations

import json
from typing import Any

import iam  # infra/ holds scripts, not a package

# Placeholders of the spec, per rendering.
_CFN = {
    "P": "${AWS::Partition}",
    "R": "${AWS::Region}",
    "A": "${AWS::AccountId}",
    "C": "${CentralAccountId}",
    "D": "${DestinationName}",
}
_TF = {
    "P": "${data.aws_partition.current.partition}",
    "R": "${data.aws_region.current.name}",
    "A": "${data.aws_caller_identity.current.account_id}",
    "C": "${var.central_account_id}",
    "D": "${var.destination_name}",
}
DESTINATION = "{X}"  # the central destination: built, or Terraform's destination_arn
_BUILT = "arn:{P}:logs:{R}:{C}:destination:{D}"
_CFN["X"] = _BUILT
_TF["X"] = "${local.destination}"
GROUPS = "arn:{P}:logs:{R}:{A}:log-group:*"
ROLES = {
    "delivery": "sluice-org-delivery-{R}",
    "reader": "sluice-org-reader-{R}",
    "subscriber": "sluice-org-subscriber-{R}",
}
POLICY_NAME = "sluice-org-{R}"  # chalicelib/org.py FILTER_PREFIX + region


def own_log_groups() -> list[str]:
    """Sluice's own function log groups in every stage: never subscribed back."""
    return [f"/aws/lambda/sluice-{s}-{fn}" for s in iam.STAGES for fn in iam.FUNCTIONS]


def trust(role: str) -> dict[str, Any]:
    if role == "delivery":
        return {
            "Effect": "Allow",
            "Principal": {"Service": "logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringLike": {"aws:SourceArn": "arn:{P}:logs:{R}:{A}:*"}},
        }
    return {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:{P}:iam::{C}:root"},
        "Action": "sts:AssumeRole",
    }


def statements(role: str) -> list[dict[str, Any]]:
    if role == "delivery":
        return [
            {
                "Sid": "DeliverToCentralDestination",
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents"],
                "Resource": [DESTINATION],
            }
        ]
    if role == "reader":
        return [
            {
                "Sid": "ReadCoverage",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters"],
                "Resource": [GROUPS],
            },
            {
                "Sid": "ReadAccountPolicies",
                "Effect": "Allow",
                "Action": ["logs:DescribeAccountPolicies"],
                "Resource": ["arn:{P}:logs:{R}:{A}:*"],
            },
        ]
    if role == "subscriber":
        return [
            {
                "Sid": "SubscribeGroups",
                "Effect": "Allow",
                "Action": [
                    "logs:DescribeLogGroups",
                    "logs:DescribeSubscriptionFilters",
                    "logs:PutSubscriptionFilter",
                ],
                "Resource": [GROUPS],
            },
            {
                "Sid": "ToTheCentralDestinationOnly",
                "Effect": "Allow",
                "Action": ["logs:PutSubscriptionFilter"],
                "Resource": [DESTINATION],
            },
            {
                "Sid": "PassTheDeliveryRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": ["arn:{P}:iam::{A}:role/" + ROLES["delivery"]],
                "Condition": {"StringEquals": {"iam:PassedToService": "logs.amazonaws.com"}},
            },
        ]
    raise KeyError(role)


def _fill(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, str):
        out = node.replace("{X}", names["X"])  # first: it may hold the other placeholders
        for k, v in names.items():
            out = out.replace("{" + k + "}", v)
        return out
    if isinstance(node, list):
        return [_fill(x, names) for x in node]
    if isinstance(node, dict):
        return {k: _fill(v, names) for k, v in node.items()}
    return node


def _cfn_sub(node: Any) -> Any:
    """Every string holding `${...}` as a Fn::Sub."""
    if isinstance(node, str):
        return {"Fn::Sub": node} if "${" in node else node
    if isinstance(node, list):
        return [_cfn_sub(x) for x in node]
    if isinstance(node, dict):
        return {k: _cfn_sub(v) for k, v in node.items()}
    return node


# ---------------------------------------------------------------- CloudFormation
def cloudformation(stage: str) -> dict[str, Any]:
    roles: dict[str, Any] = {}
    logical = {"delivery": "DeliveryRole", "reader": "ReaderRole", "subscriber": "SubscriberRole"}
    for role, lid in logical.items():
        props = {
            "RoleName": _cfn_sub(_fill(ROLES[role], _CFN)),
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [_cfn_sub(_fill(trust(role), _CFN))],
            },
            "Policies": [
                {
                    "PolicyName": "sluice",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": _cfn_sub(_fill(statements(role), _CFN)),
                    },
                }
            ],
        }
        roles[lid] = {"Type": "AWS::IAM::Role", "Properties": props}
    roles["SubscriberRole"]["Condition"] = "PerGroup"
    own = ", ".join(json.dumps(g) for g in own_log_groups())
    policy_doc = _fill(
        '{"DestinationArn":"' + DESTINATION + '","RoleArn":"${DeliveryRole.Arn}",'
        '"FilterPattern":"","Distribution":"Random"}',
        _CFN,
    )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "Sluice member account: subscribes this account's log groups (this region) to "
            "the central account's destination; roles to read coverage and, per-group, to "
            "subscribe. Deploy with StackSets to every member account and region."
        ),
        "Parameters": {
            "CentralAccountId": {
                "Type": "String",
                "AllowedPattern": "^[0-9]{12}$",
                "Description": "The account running Sluice (its destination's owner).",
            },
            "DestinationName": {
                "Type": "String",
                "Default": f"sluice-{stage}",
                "AllowedPattern": "^[^:*]{1,512}$",
                "Description": "The central destination, the same name in every region.",
            },
            "Mode": {
                "Type": "String",
                "Default": "account-policy",
                "AllowedValues": ["account-policy", "per-group"],
                "Description": "One account-level subscription policy, or per-group filters.",
            },
            "ExcludedLogGroups": {
                "Type": "CommaDelimitedList",
                "Default": "",
                "Description": "Log groups never sent (besides Sluice's own), exact names.",
            },
        },
        "Conditions": {
            "AccountPolicy": {"Fn::Equals": [{"Ref": "Mode"}, "account-policy"]},
            "PerGroup": {"Fn::Equals": [{"Ref": "Mode"}, "per-group"]},
            "HasExclusions": {
                "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "ExcludedLogGroups"}]}, ""]}]
            },
        },
        "Resources": {
            **roles,
            "SubscriptionPolicy": {
                "Type": "AWS::Logs::AccountPolicy",
                "Condition": "AccountPolicy",
                "Properties": {
                    "PolicyName": {"Fn::Sub": _fill(POLICY_NAME, _CFN)},
                    "PolicyType": "SUBSCRIPTION_FILTER_POLICY",
                    "Scope": "ALL",
                    "PolicyDocument": {"Fn::Sub": policy_doc},
                    "SelectionCriteria": {
                        "Fn::Sub": [
                            "LogGroupName NOT IN [${Own}${More}]",
                            {
                                "Own": own,
                                "More": {
                                    "Fn::If": [
                                        "HasExclusions",
                                        {
                                            "Fn::Join": [
                                                "",
                                                [
                                                    ', "',
                                                    {
                                                        "Fn::Join": [
                                                            '", "',
                                                            {"Ref": "ExcludedLogGroups"},
                                                        ]
                                                    },
                                                    '"',
                                                ],
                                            ]
                                        },
                                        "",
                                    ]
                                },
                            },
                        ]
                    },
                },
            },
        },
        "Outputs": {
            "DeliveryRoleArn": {"Value": {"Fn::GetAtt": ["DeliveryRole", "Arn"]}},
            "ReaderRoleName": {"Value": {"Ref": "ReaderRole"}},
            "DestinationArn": {"Value": {"Fn::Sub": _fill(DESTINATION, _CFN)}},
        },
    }


# ---------------------------------------------------------------- Terraform
def terraform(stage: str) -> dict[str, Any]:
    from terraform import AWS_PROVIDER, TERRAFORM_VERSION

    def var(kind: str, description: str, default: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": kind, "description": description}
        if default is not None:
            out["default"] = default
        return out

    role_names = {"delivery": "delivery", "reader": "reader", "subscriber": "subscriber"}
    roles: dict[str, Any] = {}
    policies: dict[str, Any] = {}
    for role, name in role_names.items():
        assume = _hcl(_fill({"Version": "2012-10-17", "Statement": [trust(role)]}, _TF))
        grants = _hcl(_fill({"Version": "2012-10-17", "Statement": statements(role)}, _TF))
        roles[name] = {
            "name": _fill(ROLES[role], _TF),
            "assume_role_policy": f"${{jsonencode({assume})}}",
        }
        policies[name] = {
            "name": "sluice",
            "role": f"${{aws_iam_role.{name}.id}}",
            "policy": f"${{jsonencode({grants})}}",
        }
    roles["delivery"]["lifecycle"] = {
        "precondition": [
            {
                "condition": (
                    '${split(":", local.destination)[3] == data.aws_region.current.name}'
                ),
                "error_message": (
                    "destination_arn is a destination of another region: CloudWatch Logs "
                    "delivers a log group only to a destination of its own region. Use the "
                    "central destination of this region (docs/deployment.md, Organization)."
                ),
            }
        ]
    }
    per_group = '${var.mode == "per-group" ? 1 : 0}'
    roles["subscriber"]["count"] = per_group
    policies["subscriber"]["count"] = per_group
    policies["subscriber"]["role"] = "${aws_iam_role.subscriber[0].id}"
    document = (
        '{"DestinationArn" = local.destination, "RoleArn" = aws_iam_role.delivery.arn, '
        '"FilterPattern" = "", "Distribution" = "Random"}'
    )
    return {
        "terraform": {
            "required_version": TERRAFORM_VERSION,
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER}},
        },
        "variable": {
            "central_account_id": {
                **var("string", "The account running Sluice (its destination's owner)."),
                "validation": [
                    {
                        "condition": "${length(var.central_account_id) == 12 && "
                        "can(tonumber(var.central_account_id))}",
                        "error_message": "central_account_id is a 12-digit account id.",
                    }
                ],
            },
            "destination_name": var(
                "string",
                "The central destination, the same name in every region.",
                f"sluice-{stage}",
            ),
            "mode": {
                **var("string", "account-policy or per-group.", "account-policy"),
                "validation": [
                    {
                        "condition": '${contains(["account-policy", "per-group"], var.mode)}',
                        "error_message": "mode is account-policy or per-group.",
                    }
                ],
            },
            "destination_arn": var(
                "string",
                "The central destination's ARN, if not central_account_id's destination_name "
                "in this region; it must be in this region (checked at plan).",
                "",
            ),
            "excluded_log_groups": var(
                "list(string)", "Log groups never sent (besides Sluice's own), exact names.", []
            ),
        },
        "locals": {
            "sluice_log_groups": own_log_groups(),
            # The central destination of this region, unless destination_arn names one.
            "destination": (
                '${var.destination_arn != "" ? var.destination_arn : '
                + json.dumps(_fill(_BUILT, _TF))
                + "}"
            ),
        },
        "data": {
            "aws_partition": {"current": {}},
            "aws_region": {"current": {}},
            "aws_caller_identity": {"current": {}},
        },
        "resource": {
            "aws_iam_role": roles,
            "aws_iam_role_policy": policies,
            "aws_cloudwatch_log_account_policy": {
                "subscription": {
                    "count": '${var.mode == "account-policy" ? 1 : 0}',
                    "policy_name": _fill(POLICY_NAME, _TF),
                    "policy_type": "SUBSCRIPTION_FILTER_POLICY",
                    "scope": "ALL",
                    "selection_criteria": (
                        'LogGroupName NOT IN [${join(", ", [for g in concat('
                        "local.sluice_log_groups, var.excluded_log_groups) : jsonencode(g)])}]"
                    ),
                    "policy_document": f"${{jsonencode({document})}}",
                }
            },
        },
        "output": {
            "delivery_role_arn": {"value": "${aws_iam_role.delivery.arn}"},
            "destination_arn": {"value": "${local.destination}"},
        },
    }


def _hcl(value: Any) -> str:
    """A JSON-like value as an HCL expression: strings keep their `${...}` references
    as template interpolations (no escaped quotes inside an interpolation)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_hcl(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}") and value.count("${") == 1:
            return value[2:-1]
        return json.dumps(value)
    return json.dumps(value)
