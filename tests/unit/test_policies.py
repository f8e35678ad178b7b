"""IAM least privilege: every policy Sluice deploys, parsed and checked.

The `.chalice/policy-<stage>-<function>.json` files (chalice deploy), and the
CloudFormation and Terraform renderings of the same spec (infra/iam.py), plus the
inline policies of infra/resources.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .infra_scripts import load as load_infra

ROOT = Path(__file__).resolve().parents[2]
CHALICE = ROOT / ".chalice"
# `Resource: "*"` is allowed only where the service has nothing narrower, each with
# its reason. None is needed today: every API Sluice calls takes a resource ARN.
STAR_RESOURCE_ALLOWED: dict[str, str] = {}
DESIGN_SETTINGS = (
    "SLUICE_RULES_TABLE",
    "SLUICE_STATE_TABLE",
    "SLUICE_ARCHIVE_BUCKET",
    "SLUICE_DLQ_URL",
    "SLUICE_SLACK_SECRET",
)


iam = load_infra("iam")
package = load_infra("package")
CONFIG = json.loads((CHALICE / "config.json").read_text())


def app_functions() -> list[str]:
    from app import app

    return sorted(app.handler_map)


def statements(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Statements of a policy document, CloudFormation `Fn::If` branches included."""
    sts = doc["Statement"]
    for st in sts if isinstance(sts, list) else [sts]:
        if "Fn::If" in st:
            yield from (b for b in st["Fn::If"][1:] if "Ref" not in b)
        else:
            yield st


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def policy_files() -> list[Path]:
    return sorted(CHALICE.glob("policy-*.json"))


def all_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, document) for every identity policy Sluice ships, in every mode."""
    for path in policy_files():
        yield path.name, json.loads(path.read_text())
    for stage in iam.STAGES:
        for fn in iam.FUNCTIONS:
            for mode in ("cfn", "tf"):
                yield f"{mode}:{stage}:{fn}", iam.policy(stage, fn, mode)
    resources = package.load_cfn(ROOT / "infra" / "resources.yaml")["Resources"]
    for name, res in resources.items():
        for p in res.get("Properties", {}).get("Policies", []):
            yield f"resources.yaml:{name}", p["PolicyDocument"]


DOCUMENTS = list(all_documents())


# ---------------------------------------------------------------- every policy
@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_no_wildcard_action(where: str, doc: dict[str, Any]) -> None:
    """No Allow statement grants a wildcard action (`*`, `s3:*`, `s3:Get*`) or uses NotAction."""
    for st in statements(doc):
        assert st["Effect"] == "Allow", (where, st)
        assert "NotAction" not in st and "NotResource" not in st, (where, st)
        for action in as_list(st["Action"]):
            assert "*" not in action and "?" not in action, f"{where}: {st.get('Sid')}: {action}"


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_no_star_resource_without_a_reason(where: str, doc: dict[str, Any]) -> None:
    """`Resource: "*"` appears only in statements listed, with the reason, in this module."""
    for st in statements(doc):
        if "*" in as_list(st["Resource"]):
            assert st.get("Sid") in STAR_RESOURCE_ALLOWED, f"{where}: {st.get('Sid')}"


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_statements_have_sids(where: str, doc: dict[str, Any]) -> None:
    """Every statement carries a Sid saying what it is for (JSON policies take no comments)."""
    for st in statements(doc):
        assert st.get("Sid", "").isalnum(), (where, st)


# ---------------------------------------------------------------- chalice deploy files
def test_policy_files_are_generated_from_the_spec() -> None:
    """`.chalice/policy-*.json` equal what infra/iam.py renders (run `python infra/iam.py`)."""
    assert iam.main(["--check"]) == 0
    expected = {iam.policy_path(s, f).name for s in iam.STAGES for f in iam.FUNCTIONS}
    assert {p.name for p in policy_files()} == expected


@pytest.mark.parametrize("stage", iam.STAGES)
def test_policy_files_name_only_their_stage(stage: str) -> None:
    """A stage's policies name that stage's resources and never another stage's."""
    others = [s for s in iam.STAGES if s != stage]
    for fn in iam.FUNCTIONS:
        text = iam.policy_path(stage, fn).read_text()
        assert f"sluice-{stage}-" in text or f"sluice/{stage}/" in text
        for other in others:
            assert f"sluice-{other}-" not in text and f"sluice/{other}/" not in text


def test_readers_of_objects_cannot_read_the_archive() -> None:
    """No role may read the archive bucket, so archived objects can never feed back in."""
    for where, doc in DOCUMENTS:
        for st in statements(doc):
            if any(a.startswith("s3:Get") for a in as_list(st["Action"])):
                assert "archive" not in json.dumps(st["Resource"]), where


def test_forwarding_cannot_reach_the_fan_in_stream() -> None:
    """`forward` may write to sluice-<stage>-* streams, never to sluice-fan-in (a loop)."""
    for where, doc in DOCUMENTS:
        for st in statements(doc):
            if "kinesis:PutRecords" in as_list(st["Action"]):
                assert iam.FAN_IN_STREAM not in json.dumps(st["Resource"]), where


# ---------------------------------------------------------------- .chalice/config.json
def test_every_function_has_its_own_role_per_stage() -> None:
    """autogen_policy is off and each function of app.py names its stage's policy file."""
    assert CONFIG["autogen_policy"] is False
    assert sorted(iam.FUNCTIONS) == app_functions()
    for stage in iam.STAGES:
        fns = CONFIG["stages"][stage]["lambda_functions"]
        assert sorted(fns) == app_functions()
        for fn, cfg in fns.items():
            assert cfg["iam_policy_file"] == f"policy-{stage}-{fn}.json"
            assert (CHALICE / cfg["iam_policy_file"]).exists()
            assert cfg["lambda_memory_size"] >= 128 and cfg["lambda_timeout"] >= 10


@pytest.mark.parametrize("stage", iam.STAGES)
def test_stage_sets_the_design_settings(stage: str) -> None:
    """Each stage sets the documented environment variables, named for the stage."""
    env = CONFIG["stages"][stage]["environment_variables"]
    for key in DESIGN_SETTINGS:
        assert env.get(key), key
    assert env["SLUICE_RULES_TABLE"] == f"sluice-{stage}-rules"
    assert env["SLUICE_DLQ_URL"].endswith(f"/sluice-{stage}-dlq")
    assert env["SLUICE_SLACK_SECRET"] == f"sluice/{stage}/slack"


def test_objects_queue_outlasts_six_function_timeouts() -> None:
    """The objects queue's visibility timeout is at least 6x s3_objects' timeout (AWS guidance)."""
    queue = package.load_cfn(ROOT / "infra" / "resources.yaml")["Resources"]["ObjectsQueue"]
    for stage in iam.STAGES:
        timeout = CONFIG["stages"][stage]["lambda_functions"]["s3_objects"]["lambda_timeout"]
        assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout
