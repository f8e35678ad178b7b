"""`make package`: CloudFormation and Terraform for each stage, from Chalice's own output.

    python infra/package.py [--stage dev] [--stage prod] [--out out/package]

For each stage:
  <out>/<stage>/merge.json            resources.yaml + functions.yaml + infra/iam.py roles
  <out>/<stage>/cloudformation/       sam.yaml (`chalice package --merge-template`) + zip
  <out>/<stage>/terraform/            chalice.tf.json (patched), sluice.tf.json, resources.yaml
  <out>/<stage>/member/               member.yaml + member.tf.json: what each member account
                                      of an organization deploys (infra/member.py)

Needs no AWS credentials: `chalice package` only builds. Each deployment.zip then gets
the runtime's bytecode (infra/bytecode.py): Lambda's /var/task is read-only. The first run downloads
the Lambda wheels of requirements.txt from PyPI; later runs reuse Chalice's cache.

Terraform: Chalice's output is patched by infra/terraform.py (current pins, only the
hashicorp/aws provider, exact role policies, what the CloudFormation path adds).
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
import bytecode  # infra/ holds scripts, not a package
import iam
import member
import terraform
import wheels

ROOT = iam.ROOT
INFRA = ROOT / "infra"


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
WHEELHOUSE: Path | None = None  # --wheelhouse: pip reads only this directory


def chalice(*args: str) -> None:
    exe = Path(sys.executable).with_name("chalice")
    env = dict(os.environ)
    if WHEELHOUSE is not None:
        # Chalice runs pip to collect the Lambda wheels: from the wheelhouse only
        # (infra/wheels.py), so the zip `make package` builds is the one the tests run.
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE))
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
    bytecode.add(target / "deployment.zip", wheels.runtime())
    template = yaml.safe_load((target / "sam.yaml").read_text())
    check_merged(template, app_functions())
    return target / "sam.yaml"


# ---------------------------------------------------------------- Terraform
def package_terraform(stage: str, out: Path) -> Path:
    target = out / "terraform"
    shutil.rmtree(target, ignore_errors=True)
    chalice("package", "--pkg-format", "terraform", "--stage", stage, str(target))
    bytecode.add(target / "deployment.zip", wheels.runtime())
    path = target / "chalice.tf.json"
    tf = terraform.patch(json.loads(path.read_text()), stage)
    path.write_text(json.dumps(tf, indent=2) + "\n")
    (target / "sluice.tf.json").write_text(json.dumps(terraform.extras(stage), indent=2) + "\n")
    shutil.copyfile(INFRA / "resources.yaml", target / "resources.yaml")
    return path


# ---------------------------------------------------------------- organization members
def package_member(stage: str, out: Path) -> Path:
    """The member template (StackSets) and its Terraform twin (infra/member.py)."""
    target = out / "member"
    target.mkdir(parents=True, exist_ok=True)
    (target / "member.yaml").write_text(
        yaml.safe_dump(member.cloudformation(stage), sort_keys=False, width=100)
    )
    (target / "member.tf.json").write_text(json.dumps(member.terraform(stage), indent=2) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", action="append", choices=iam.STAGES)
    ap.add_argument("--out", default=str(ROOT / "out" / "package"))
    ap.add_argument("--skip-terraform", action="store_true")
    ap.add_argument("--wheelhouse", help="build from these wheels only (infra/wheels.py)")
    args = ap.parse_args(argv)
    problem = wheels.check_interpreter()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    if args.wheelhouse:
        global WHEELHOUSE
        WHEELHOUSE = Path(args.wheelhouse).resolve()
    if iam.main(["--check"]):
        print("run `python infra/iam.py` to rewrite them from infra/iam.py", file=sys.stderr)
        return 1
    for stage in args.stage or list(iam.STAGES):
        out = Path(args.out) / stage
        out.mkdir(parents=True, exist_ok=True)
        print(f"{stage}: {package_cloudformation(stage, out)}")
        print(f"{stage}: {package_member(stage, out)}")
        if not args.skip_terraform:
            print(f"{stage}: {package_terraform(stage, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
