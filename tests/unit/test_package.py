"""`make package`: Chalice's CloudFormation and Terraform output with infra/ merged in.

The templates come from the session's `packaged` fixture (tests/unit/conftest.py):
infra/package.py run once, without credentials or wheels. tests/unit/test_terraform.py
validates and compares the Terraform output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .infra_scripts import load as load_infra

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


iam = load_infra("iam")
package = load_infra("package")


def app_functions() -> list[str]:
    from app import app

    return sorted(app.handler_map)


CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.fixture(scope="module")
def out(packaged: Path) -> Path:
    """Both stages packaged (tests/unit/conftest.py)."""
    return packaged


def sam(out: Path, stage: str) -> dict[str, Any]:
    return yaml.safe_load((out / stage / "cloudformation" / "sam.yaml").read_text())


def cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CFN_LINT), *map(str, paths)], capture_output=True, text=True, check=False
    )


# ---------------------------------------------------------------- CloudFormation
def test_cloudformation_output_is_cfn_lint_clean(out: Path) -> None:
    """cfn-lint finds no error (exit bit 2) in either stage's template."""
    result = cfn_lint(*(out / s / "cloudformation" / "sam.yaml" for s in iam.STAGES))
    # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational.
    assert result.returncode & 2 == 0, result.stdout


def test_resources_template_deploys_alone_cleanly() -> None:
    """infra/resources.yaml (the chalice deploy path's stack) is cfn-lint clean by itself."""
    result = cfn_lint(ROOT / "infra" / "resources.yaml")
    assert result.returncode & 2 == 0, result.stdout


@pytest.mark.parametrize("stage", iam.STAGES)
def test_every_role_gets_exact_arns(out: Path, stage: str) -> None:
    """Each function role's policy is infra/iam.py's exact one, not the `*`-account file."""
    res = sam(out, stage)["Resources"]
    for fn in app_functions():
        role = res[f"{package.logical_id(fn)}Role"]["Properties"]
        assert role["Policies"] == [
            {"PolicyName": "sluice", "PolicyDocument": iam.policy(stage, fn, "cfn")}
        ]
        assert ":*:*:" not in json.dumps(role["Policies"])
        assert role["RoleName"] == {"Fn::Sub": f"sluice-${{Stage}}-{fn}"}


@pytest.mark.parametrize("stage", iam.STAGES)
def test_functions_are_named_and_wired_to_the_stack(out: Path, stage: str) -> None:
    """Functions get Sluice's names and settings that reference the stack's own resources."""
    t = sam(out, stage)
    assert t["Parameters"]["Stage"]["AllowedValues"] == [stage]
    for fn in app_functions():
        props = t["Resources"][package.logical_id(fn)]["Properties"]
        assert props["FunctionName"] == {"Fn::Sub": f"sluice-${{Stage}}-{fn}"}
        env = props["Environment"]["Variables"]
        assert env["SLUICE_DLQ_URL"] == {"Ref": "DeadLetterQueue"}
        assert env["SLUICE_ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
        assert env["SLUICE_RULES_TTL"] == "60"  # Chalice's own values stay


def test_event_sources_gain_properties_and_keep_their_arns(out: Path) -> None:
    """Partial batch responses are switched on; the ARNs are still the ones Chalice wrote."""
    res = sam(out, "prod")["Resources"]
    kin = res["KinesisRecords"]["Properties"]["Events"]["KinesisRecordsKinesisEventSource"]
    sqs = res["S3Objects"]["Properties"]["Events"]["S3ObjectsSqsEventSource"]
    for ev in (kin, sqs):
        assert ev["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert kin["Properties"]["Stream"]["Fn::Sub"].endswith(":stream/sluice-fan-in")
    assert kin["Properties"]["BatchSize"] == 100
    assert sqs["Properties"]["Queue"]["Fn::Sub"].endswith(":sluice-objects")
    assert res["KinesisRecords"]["Condition"] == "KinesisEnabled"


def test_kinesis_reads_each_shard_one_batch_at_a_time(out: Path) -> None:
    """The Kinesis mapping pins ParallelizationFactor to 1: positions per shard are a
    watermark, correct only while a shard's batches run in order."""
    res = sam(out, "prod")["Resources"]
    kin = res["KinesisRecords"]["Properties"]["Events"]["KinesisRecordsKinesisEventSource"]
    assert kin["Properties"]["ParallelizationFactor"] == 1


def test_logs_may_invoke_cloudwatch_logs(out: Path) -> None:
    """The template lets CloudWatch Logs invoke cloudwatch_logs from this account's groups."""
    perm = sam(out, "prod")["Resources"]["CloudWatchLogsInvokePermission"]["Properties"]
    assert perm["Principal"] == "logs.amazonaws.com"
    assert perm["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert perm["SourceArn"]["Fn::Sub"].endswith(":log-group:*")


def test_account_policy_excludes_every_sluice_group(out: Path) -> None:
    """The optional account-level subscription excludes each of Sluice's log groups."""
    policy = sam(out, "prod")["Resources"]["AccountSubscriptionPolicy"]
    assert policy["Condition"] == "AccountPolicyOn"
    criteria = policy["Properties"]["SelectionCriteria"]["Fn::Sub"]
    names = set(re.findall(r'"(/aws/lambda/[^"]+)"', criteria))
    assert names == {f"/aws/lambda/sluice-${{Stage}}-{fn}" for fn in app_functions()}


def test_sam_translation_then_cfn_lint(out: Path, tmp_path: Path) -> None:
    """AWS SAM accepts the template and its plain CloudFormation is cfn-lint clean."""
    pytest.importorskip("samtranslator")
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    t = sam(out, "prod")
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"  # `cloudformation package`
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    plain = transform(t, {}, NoManagedPolicies())
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(plain, default=str))
    result = cfn_lint(path)
    assert result.returncode & 2 == 0, result.stdout
    esm = plain["Resources"]["KinesisRecordsKinesisRecordsKinesisEventSource"]
    assert esm["Condition"] == "KinesisEnabled"
    assert esm["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("stage", iam.STAGES)
def test_deployment_zip_holds_the_runtime_only(
    out: Path, stage: str, record_property: Callable[[str, object], None]
) -> None:
    """The function code Chalice zips is app.py, chalicelib and Chalice's runtime (with their
    bytecode): no CLI, local stack, simulator, redelivery or explain tooling (the size is
    printed and recorded)."""
    path = out / stage / "cloudformation" / "deployment.zip"
    names = zipfile.ZipFile(path).namelist()
    assert {"app.py", "chalicelib/__init__.py", "chalicelib/handlers.py"} <= set(names)
    # chalice/: the slice of Chalice's runtime it adds to every package; __pycache__/:
    # app.py's bytecode (infra/bytecode.py).
    top = {n.split("/")[0] for n in names}
    assert top == {"app.py", "__pycache__", "chalicelib", "chalice"}, sorted(names)
    cli = [
        n
        for n in names
        if n.startswith("chalicelib/cli/")
        or Path(n).name in ("redeliver.py", "explain.py", "replay.py", "simulate.py", "local.py")
    ]
    assert cli == []
    size = path.stat().st_size
    record_property(f"deployment_zip_bytes_{stage}", size)
    print(f"{stage} deployment.zip (code only, no wheels): {size:,} bytes, {len(names)} files")


# ---------------------------------------------------------------- Terraform
def tf(out: Path, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    d = out / stage / "terraform"
    return (
        json.loads((d / "chalice.tf.json").read_text()),
        json.loads((d / "sluice.tf.json").read_text()),
    )


@pytest.mark.parametrize("stage", iam.STAGES)
def test_terraform_pins_accept_current_terraform(out: Path, stage: str) -> None:
    """Chalice's `< 1.4` and `< 5` pins are gone: Terraform 1.5+ and AWS provider 5/6 accept it."""
    main, _ = tf(out, stage)
    pins = main["terraform"]
    assert "<" not in pins["required_version"]
    assert pins["required_providers"]["aws"]["version"] == package.terraform.AWS_PROVIDER
    assert pins["required_providers"]["aws"]["source"] == "hashicorp/aws"


@pytest.mark.parametrize("stage", iam.STAGES)
def test_terraform_is_complete_and_consistent(out: Path, stage: str) -> None:
    """Every `${type.name...}` reference resolves; mappings report batch failures; roles exact."""
    main, extra = tf(out, stage)
    declared = {
        f"{kind}.{name}"
        for doc in (main, extra)
        for kind, rs in doc["resource"].items()
        for name in rs
    }
    declared |= {f"data.{kind}.{name}" for kind, rs in main["data"].items() for name in rs}
    declared |= {f"var.{name}" for name in extra["variable"]}
    text = json.dumps([main, extra])
    refs = set(re.findall(r"\b((?:data\.)?aws_[a-z_]+\.[A-Za-z0-9_-]+|var\.[a-z_]+)", text))
    missing = {r for r in refs if r not in declared and not r.startswith("aws_cloudformation")}
    assert not missing
    assert "aws_cloudformation_stack.resources" in declared
    for esm in main["resource"]["aws_lambda_event_source_mapping"].values():
        assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    for name, pol in main["resource"]["aws_iam_role_policy"].items():
        fn = name.removesuffix("_role")
        assert pol["policy"] == f"${{data.aws_iam_policy_document.{fn}.json}}"
        assert main["data"]["aws_iam_policy_document"][fn] == iam.tf_policy_document(stage, fn)
    assert (out / stage / "terraform" / "resources.yaml").read_text() == (
        ROOT / "infra" / "resources.yaml"
    ).read_text()
