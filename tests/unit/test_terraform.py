"""The Terraform output: only the aws provider, `terraform validate` clean, and the same
deployment as the CloudFormation (infra/parity.py), for every stage and scenario.

`terraform validate` runs when a `terraform` binary and an offline mirror of the
hashicorp/aws provider are found at run time (TF_CLI_CONFIG_FILE naming a file, or a
`tf-plugins` directory near the filesystem root, or Terraform's own
~/.terraform.d/plugins); otherwise it is skipped, saying which was missing.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .infra_scripts import load as load_infra

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


iam = load_infra("iam")
hcl = load_infra("hcl")
cfn = load_infra("cfn")
parity = load_infra("parity")
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"


def tf_docs(out: Path, stage: str) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text()) for p in sorted((out / stage / "terraform").glob("*.tf.json"))
    ]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)


# ---------------------------------------------------------------- finding Terraform
def _mirror_dirs() -> Iterator[Path]:
    """Directories that may hold an unpacked provider mirror, nearest first."""
    yield Path.home() / ".terraform.d" / "plugins"
    roots = [Path("/")]
    for depth in range(3):
        found = []
        for root in roots:
            try:
                children = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            for entry in children:
                if entry.name == "tf-plugins":
                    yield Path(entry.path)
                if depth < 2 and entry.name not in ("proc", "sys", "dev"):
                    found.append(Path(entry.path))
        roots = found


def terraform_setup(tmp: Path) -> tuple[str, dict[str, str]] | str:
    """(terraform binary, environment) for an offline `terraform init`, or why not."""
    exe = shutil.which("terraform")
    if exe is None:
        return "no terraform binary on PATH"
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    configured = os.environ.get("TF_CLI_CONFIG_FILE", "")
    if configured and Path(configured).is_file():
        return exe, env
    for d in _mirror_dirs():
        if (d / AWS_PROVIDER).is_dir():
            rc = tmp / "terraformrc"
            rc.write_text(f'provider_installation {{\n  filesystem_mirror {{ path = "{d}" }}\n}}\n')
            env["TF_CLI_CONFIG_FILE"] = str(rc)
            return exe, env
    return f"no offline mirror of {AWS_PROVIDER} (a tf-plugins directory) was found"


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    found = terraform_setup(tmp_path_factory.mktemp("terraformrc"))
    if isinstance(found, str):
        pytest.skip(f"terraform validate not run: {found}")
    return found


@pytest.fixture(scope="module")
def out(packaged: Path) -> Path:
    return packaged


# ---------------------------------------------------------------- the output itself
@pytest.mark.parametrize("stage", iam.STAGES)
def test_terraform_needs_only_the_aws_provider(out: Path, stage: str) -> None:
    """The output requires hashicorp/aws alone and uses no other provider's resources."""
    docs = tf_docs(out, stage)
    providers = {p for d in docs for p in d.get("terraform", {}).get("required_providers", {})}
    assert providers == {"aws"}
    kinds = {k for d in docs for block in ("resource", "data") for k in d.get(block, {})}
    assert all(k.startswith("aws_") for k in kinds), kinds


@pytest.mark.parametrize("stage", iam.STAGES)
def test_no_reference_is_hidden_in_an_encoded_string(out: Path, stage: str) -> None:
    """No string holds an escaped quote inside `${...}` (what JSON-encoding a template
    that holds a reference produces, and Terraform refuses)."""
    for doc in tf_docs(out, stage):
        for text in strings(doc):
            depth, i = 0, 0
            while i < len(text):
                if text.startswith("${", i):
                    depth += 1
                elif text[i] == "}" and depth:
                    depth -= 1
                elif text.startswith('\\"', i) and depth:
                    pytest.fail(f"escaped quote inside an interpolation: {text[:200]}")
                i += 1


@pytest.mark.parametrize("stage", iam.STAGES)
def test_terraform_validate(
    out: Path, stage: str, terraform: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """`terraform init -backend=false` and `terraform validate` accept each stage's output."""
    exe, env = terraform
    work = tmp_path / stage
    shutil.copytree(out / stage / "terraform", work)

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


# ---------------------------------------------------------------- parity with CloudFormation
CASES = [(stage, name) for stage in iam.STAGES for name in parity.SCENARIOS]


@pytest.mark.parametrize(("stage", "scenario"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_cloudformation_and_terraform_deploy_the_same(out: Path, stage: str, scenario: str) -> None:
    """Evaluated for one account, both outputs hold the same functions, roles (every IAM
    statement, resources as ARNs), event sources, invoke configs, permissions, rules,
    account policy and stack parameters."""
    inventory, diffs = parity.compare(out / stage, parity.SCENARIOS[scenario])
    assert not diffs, "\n".join(diffs)
    roles = [k for k in inventory if k.startswith("role ")]
    assert len(roles) >= 5 and all(inventory[k]["statements"] for k in roles)


def _drop_dynamic(sid: str) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            for body in doc.get("data", {}).get("aws_iam_policy_document", {}).values():
                dyn = body.get("dynamic", {}).get("statement", [])
                body.get("dynamic", {})["statement"] = [
                    d for d in dyn if d["content"]["sid"] != sid
                ]

    return mutate


def _widen(docs: list[dict[str, Any]]) -> None:
    doc = docs[0]["data"]["aws_iam_policy_document"]["cloudwatch_logs"]
    doc["statement"][1]["resources"] = ["*"]


def _retry(docs: list[dict[str, Any]]) -> None:
    docs[0]["resource"]["aws_lambda_function_event_invoke_config"]["cloudwatch_logs"][
        "maximum_retry_attempts"
    ] = 0


def _no_permission(docs: list[dict[str, Any]]) -> None:
    docs[1]["resource"].pop("aws_lambda_permission")


MUTATIONS = [
    pytest.param(_drop_dynamic("ForwardStreamsListed"), "ForwardStreamsListed", id="statement"),
    pytest.param(_widen, "cloudwatch_logs", id="wider-resource"),
    pytest.param(_retry, "invoke-config", id="invoke-config"),
    pytest.param(_no_permission, "permission", id="missing-resource"),
]


@pytest.mark.parametrize(("mutate", "expected"), MUTATIONS)
def test_parity_sees_a_difference(
    out: Path, mutate: Callable[[list[dict[str, Any]]], None], expected: str
) -> None:
    """A statement dropped or widened, a setting changed or a resource missing in the
    Terraform output is reported by the comparison."""
    variables = parity.SCENARIOS["everything"]
    sam = yaml.safe_load((out / "dev" / "cloudformation" / "sam.yaml").read_text())
    params = parity.cfn_parameters(variables)
    resources_yaml = parity.load_cfn(out / "dev" / "terraform" / "resources.yaml")
    left = parity.cfn_inventory(parity.sam_to_cloudformation(sam), params, resources_yaml)
    docs = copy.deepcopy(tf_docs(out, "dev"))
    assert docs[0]["resource"].get("aws_lambda_function")  # chalice.tf.json sorts first
    mutate(docs)
    diffs = parity.differences(left, parity.tf_inventory(docs, variables, resources_yaml))
    assert diffs and any(expected in d for d in diffs), diffs


# ---------------------------------------------------------------- the evaluators
SCOPE = {
    "var": {"names": ["a", "b"], "none": [], "empty": "", "on": True, "n": 2},
    "data": {"x": {"y": {"partition": "aws"}}},
    "res": {"one": [{"arn": "arn:1"}], "m": {"k": "v"}},
}
HCL_CASES = [
    pytest.param("plain", "plain", id="text"),
    pytest.param("${var.n}", 2, id="lone-interpolation-keeps-type"),
    pytest.param("n=${var.n} ${var.on}", "n=2 true", id="interpolations-in-text"),
    pytest.param("arn:${data.x.y.partition}:s3:::b", "arn:aws:s3:::b", id="reference"),
    pytest.param('${res.m["k"]}', "v", id="index-with-quotes"),
    pytest.param("${res.one[0].arn}", "arn:1", id="count-instance"),
    pytest.param('${[for a in var.names : "${a}/*"]}', ["a/*", "b/*"], id="for"),
    pytest.param('${[for a in var.none : "${a.missing}"]}', [], id="for-over-nothing"),
    pytest.param("${length(var.names) > 0 ? [1] : []}", [1], id="conditional"),
    pytest.param('${var.empty != "" ? [1] : []}', [], id="comparison"),
    pytest.param("${!var.on || var.n >= 2}", True, id="logic"),
    pytest.param('${contains(["x", "y"], "y")}', True, id="contains"),
    pytest.param('${merge({a = 1}, {"b" = var.n})}', {"a": 1, "b": 2}, id="merge"),
    pytest.param('${lookup(res.m, "z", "")}', "", id="lookup"),
    pytest.param('${jsonencode({"k" = [var.n]})}', '{"k":[2]}', id="jsonencode"),
    pytest.param("$${literal}", "${literal}", id="escape"),
]


@pytest.mark.parametrize(("text", "expected"), HCL_CASES)
def test_hcl_evaluator(text: str, expected: Any) -> None:
    """The Terraform expression subset the output uses evaluates as Terraform would."""
    assert hcl.template(text, SCOPE) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("${var.missing}", id="unknown-variable"),
        pytest.param("${nope.x}", id="unknown-root"),
        pytest.param("${upper(var.empty)}", id="unknown-function"),
        pytest.param('${res.m[\\"k\\"]}', id="escaped-quote-in-reference"),
        pytest.param("%{ if var.on }x%{ endif }", id="directive"),
        pytest.param("${var.n", id="unterminated"),
    ],
)
def test_hcl_evaluator_refuses_what_it_does_not_know(text: str) -> None:
    """Unknown references, functions and syntax raise instead of evaluating to something."""
    with pytest.raises(hcl.HclError):
        hcl.template(text, SCOPE)


TEMPLATE = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev"},
        "Buckets": {"Type": "CommaDelimitedList", "Default": ""},
    },
    "Conditions": {
        "HasBuckets": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Buckets"}]}, ""]}]}
    },
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::Sub": "q-${Stage}"}},
        },
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "t"}},
    },
}
CFN_CASES = [
    pytest.param(
        {},
        {"Ref": "Queue"},
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q-dev",
        id="queue-url",
    ),
    pytest.param(
        {},
        {"Fn::GetAtt": ["Table", "Arn"]},
        "arn:aws:dynamodb:eu-west-1:123456789012:table/t",
        id="arn",
    ),
    pytest.param(
        {"Stage": "prod"},
        {"Fn::Sub": "${Queue.Arn}/x"},
        "arn:aws:sqs:eu-west-1:123456789012:q-prod/x",
        id="sub",
    ),
    pytest.param(
        {}, {"Fn::If": ["HasBuckets", 1, {"Ref": "AWS::NoValue"}]}, cfn.NO_VALUE, id="if-false"
    ),
    pytest.param(
        {"Buckets": "a,b"},
        {"Fn::If": ["HasBuckets", {"Ref": "Buckets"}, []]},
        ["a", "b"],
        id="if-true",
    ),
    pytest.param({}, [1, {"Ref": "AWS::NoValue"}], [1], id="novalue-in-list"),
    pytest.param(
        {},
        {"Fn::Sub": ["${X}-${!Literal}", {"X": {"Ref": "Stage"}}]},
        "dev-${Literal}",
        id="sub-map",
    ),
]


@pytest.mark.parametrize(("params", "node", "expected"), CFN_CASES)
def test_cfn_evaluator(params: dict[str, str], node: Any, expected: Any) -> None:
    """Intrinsic functions resolve to what the stack would hold for these parameters."""
    assert cfn.Stack(TEMPLATE, params).eval(node) == expected


@pytest.mark.parametrize(
    "node",
    [
        pytest.param({"Fn::GetAtt": ["Queue", "QueueUrl"]}, id="unknown-attribute"),
        pytest.param({"Ref": "Nothing"}, id="unknown-reference"),
        pytest.param({"Fn::Base64": "x"}, id="unknown-function"),
    ],
)
def test_cfn_evaluator_refuses_what_it_does_not_know(node: Any) -> None:
    """Unknown references and functions raise instead of evaluating to something."""
    with pytest.raises(cfn.CfnError):
        cfn.Stack(TEMPLATE, {}).eval(node)
