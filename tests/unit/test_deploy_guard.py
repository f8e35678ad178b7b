"""`chalice deploy` is refused for every stage but dev, before it reaches the account."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import deploy_guard

ROOT = Path(__file__).resolve().parents[2]
CHALICE = "/work/project/.venv/bin/chalice"


@pytest.mark.parametrize(
    ("argv", "stage"),
    [
        pytest.param([CHALICE, "deploy"], "dev", id="default-stage"),
        pytest.param([CHALICE, "deploy", "--stage", "prod"], "prod", id="stage"),
        pytest.param([CHALICE, "--profile", "x", "deploy", "--stage=prod"], "prod", id="equals"),
        pytest.param(["/site-packages/chalice/cli/__init__.py", "deploy"], "dev", id="module"),
        pytest.param([CHALICE, "package", "--stage", "prod", "out"], None, id="package"),
        pytest.param([CHALICE, "local"], None, id="local"),
        pytest.param(["/var/runtime/bootstrap.py"], None, id="lambda-runtime"),
        pytest.param([], None, id="no-argv"),
    ],
)
def test_deploy_stage_is_read_from_the_command_line(argv: list[str], stage: str | None) -> None:
    """Only a `chalice deploy` command line names a stage (dev when it names none)."""
    assert deploy_guard.deploy_stage(argv) == stage


@pytest.mark.parametrize("stage", ["prod", "staging"])
def test_other_stages_are_refused_with_the_reason(stage: str) -> None:
    """Deploying any stage but dev stops with why and what to use instead."""
    with pytest.raises(SystemExit) as e:
        deploy_guard.check([CHALICE, "deploy", "--stage", stage])
    message = str(e.value)
    assert "partial batch responses" in message and "CloudFormation or Terraform" in message


def test_dev_deploys_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """dev is allowed, with a pointer to the commands that complete it."""
    deploy_guard.check([CHALICE, "deploy"])
    assert "docs/deployment.md 2b" in capsys.readouterr().err


def test_chalice_deploy_prod_stops_before_any_aws_call(tmp_path: Path) -> None:
    """The real CLI, on a copy of the project, exits with the refusal; AWS is unreachable
    (a closed loopback port), so reaching it would have failed differently."""
    for name in ("app.py", "chalicelib", ".chalice"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, tmp_path / name)
    (tmp_path / "requirements.txt").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    exe = Path(sys.executable).with_name("chalice")
    result = subprocess.run(
        [str(exe), "deploy", "--stage", "prod"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "`chalice deploy --stage prod` refused" in result.stdout + result.stderr
