"""The member template of an organization (infra/member.py): cfn-lint and `terraform
validate` accept it, and its CloudFormation and Terraform grant exactly the same."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .infra_scripts import load as load_infra
from .test_package import CFN_LINT
from .test_terraform import terraform_setup

cfn = load_infra("cfn")
hcl = load_infra("hcl")
iam = load_infra("iam")
member = load_infra("member")

CENTRAL = "999999999999"
ENV = cfn.Account(region="eu-west-1", account="111111111111")


def cfn_view(stage: str, params: dict[str, str]) -> dict[str, Any]:
    """Roles (name, trust, statements) and the account policy, as CloudFormation deploys them."""
    stack = cfn.Stack(member.cloudformation(stage), {"CentralAccountId": CENTRAL, **params}, ENV)
    out: dict[str, Any] = {}
    for lid, res in stack.template["Resources"].items():
        if not stack.exists(lid):
            continue
        p = stack.eval(res["Properties"])
        if res["Type"] == "AWS::IAM::Role":
            out[f"role {p['RoleName']}"] = {
                "trust": p["AssumeRolePolicyDocument"],
                "policy": p["Policies"][0]["PolicyDocument"],
            }
        else:
            out[f"policy {p['PolicyName']}"] = {
                "type": p["PolicyType"],
                "scope": p["Scope"],
                "selection": p["SelectionCriteria"],
                "document": json.loads(p["PolicyDocument"]),
            }
    return out


def tf_view(stage: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The same view of the Terraform twin, evaluated offline (infra/hcl.py)."""
    doc = member.terraform(stage)
    var = {k: v.get("default") for k, v in doc["variable"].items()}
    var.update(central_account_id=CENTRAL, **variables)
    scope: dict[str, Any] = {
        "var": var,
        "local": {},
        "data": {
            "aws_partition": {"current": {"partition": ENV.partition}},
            "aws_region": {"current": {"name": ENV.region}},
            "aws_caller_identity": {"current": {"account_id": ENV.account}},
        },
    }
    scope["local"] = hcl.evaluate(doc["locals"], scope)
    res = doc["resource"]
    roles: dict[str, Any] = {}
    for name, body in res["aws_iam_role"].items():
        n = hcl.template(body["name"], scope)
        attrs = {"name": n, "id": n, "arn": f"arn:aws:iam::{ENV.account}:role/{n}"}
        roles[name] = [attrs] if "count" in body else attrs
    scope["aws_iam_role"] = roles
    out: dict[str, Any] = {}
    for name, body in res["aws_iam_role"].items():
        if int(hcl.template(body.get("count", "1"), scope)) == 0:
            continue
        pol = res["aws_iam_role_policy"][name]
        out[f"role {hcl.template(body['name'], scope)}"] = {
            "trust": json.loads(hcl.template(body["assume_role_policy"], scope)),
            "policy": json.loads(hcl.template(pol["policy"], scope)),
        }
    for body in res["aws_cloudwatch_log_account_policy"].values():
        if int(hcl.template(body["count"], scope)) == 0:
            continue
        out[f"policy {hcl.template(body['policy_name'], scope)}"] = {
            "type": body["policy_type"],
            "scope": body["scope"],
            "selection": hcl.template(body["selection_criteria"], scope),
            "document": json.loads(hcl.template(body["policy_document"], scope)),
        }
    return out


SCENARIOS = [
    pytest.param({}, {}, id="account policy"),
    pytest.param({"Mode": "per-group"}, {"mode": "per-group"}, id="per group"),
    pytest.param(
        {"ExcludedLogGroups": "/aws/lambda/noisy,/ecs/chatty"},
        {"excluded_log_groups": ["/aws/lambda/noisy", "/ecs/chatty"]},
        id="exclusions",
    ),
]


@pytest.mark.parametrize("stage", iam.STAGES)
@pytest.mark.parametrize(("params", "variables"), SCENARIOS)
def test_member_cloudformation_and_terraform_grant_the_same(
    stage: str, params: dict[str, str], variables: dict[str, Any]
) -> None:
    """Both renderings create the same roles with the same trust and statements, and the
    same account policy, for every mode."""
    assert cfn_view(stage, params) == tf_view(stage, variables)


def test_the_account_policy_excludes_sluice_and_names_its_region() -> None:
    """The policy delivers to this region's central destination with the delivery role,
    never Sluice's own groups (any stage) nor the operator's; its name gives the region."""
    view = cfn_view("prod", {"ExcludedLogGroups": "/ecs/chatty"})
    policy = view["policy sluice-org-eu-west-1"]
    assert policy["document"] == {
        "DestinationArn": f"arn:aws:logs:eu-west-1:{CENTRAL}:destination:sluice-prod",
        "RoleArn": "arn:aws:iam::111111111111:role/sluice-org-delivery-eu-west-1",
        "FilterPattern": "",
        "Distribution": "Random",
    }
    selection = policy["selection"]
    for group in (*member.own_log_groups(), "/ecs/chatty"):
        assert json.dumps(group) in selection
    assert selection.startswith("LogGroupName NOT IN [") and selection.endswith("]")
    assert "role sluice-org-subscriber-eu-west-1" not in view


def test_each_member_role_can_do_one_thing() -> None:
    """Delivery: PutLogEvents to the destination; reader: describe only; subscriber:
    put filters to the central destination only, pass only the delivery role."""
    view = cfn_view("prod", {"Mode": "per-group"})
    actions = {
        name: sorted(a for s in v["policy"]["Statement"] for a in s["Action"])
        for name, v in view.items()
        if name.startswith("role ")
    }
    assert actions == {
        "role sluice-org-delivery-eu-west-1": ["logs:PutLogEvents"],
        "role sluice-org-reader-eu-west-1": [
            "logs:DescribeAccountPolicies",
            "logs:DescribeLogGroups",
            "logs:DescribeSubscriptionFilters",
        ],
        "role sluice-org-subscriber-eu-west-1": [
            "iam:PassRole",
            "logs:DescribeLogGroups",
            "logs:DescribeSubscriptionFilters",
            "logs:PutSubscriptionFilter",
            "logs:PutSubscriptionFilter",
        ],
    }
    assert "policy sluice-org-eu-west-1" not in view
    resources = json.dumps(view)
    assert '"*"' not in resources and ":*:*:" not in resources


def test_member_template_is_cfn_lint_clean(tmp_path: Path) -> None:
    """cfn-lint finds no error in the member template (as `make package` writes it)."""
    path = tmp_path / "member.yaml"
    path.write_text(yaml.safe_dump(member.cloudformation("prod"), sort_keys=False))
    result = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode & 2 == 0, result.stdout


def test_member_terraform_validates(tmp_path: Path) -> None:
    """`terraform validate` accepts the member module (offline provider mirror)."""
    found = terraform_setup(tmp_path)
    if isinstance(found, str):
        pytest.skip(f"terraform validate not run: {found}")
    exe, env = found
    work = tmp_path / "member"
    work.mkdir()
    (work / "member.tf.json").write_text(json.dumps(member.terraform("prod"), indent=2))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], cwd=work, env=env, capture_output=True, text=True, check=False
        )

    init = run("init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = run("validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert report["valid"] and not errors, json.dumps(errors, indent=1)[:4000]
    shutil.rmtree(work / ".terraform", ignore_errors=True)


WRONG = [
    pytest.param("", True, id="built in this region"),
    pytest.param(f"arn:aws:logs:eu-west-1:{CENTRAL}:destination:sluice-prod", True, id="same"),
    pytest.param(f"arn:aws:logs:us-east-1:{CENTRAL}:destination:sluice-prod", False, id="other"),
]


@pytest.mark.parametrize(("arn", "accepted"), WRONG)
def test_terraform_refuses_a_destination_of_another_region_at_plan(
    arn: str, accepted: bool
) -> None:
    """A member given a destination ARN of another region fails its precondition (a clear
    error at plan, naming the rule), before anything is created."""
    doc = member.terraform("prod")
    var = {k: v.get("default") for k, v in doc["variable"].items()}
    var.update(central_account_id=CENTRAL, destination_arn=arn)
    scope: dict[str, Any] = {
        "var": var,
        "data": {
            "aws_partition": {"current": {"partition": "aws"}},
            "aws_region": {"current": {"name": ENV.region}},
        },
    }
    scope["local"] = hcl.evaluate(doc["locals"], scope)
    (pre,) = doc["resource"]["aws_iam_role"]["delivery"]["lifecycle"]["precondition"]
    assert hcl.template(pre["condition"], scope) is accepted
    assert "another region" in pre["error_message"]
    if arn:
        assert scope["local"]["destination"] == arn
