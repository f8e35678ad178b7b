"""Fixtures of the packaging tests: both stages packaged once per test session.

`make package` runs infra/package.py; the tests run it too, without AWS credentials,
on a copy of the project whose requirements.txt is empty: the templates do not
depend on the wheels, and `chalice package` would otherwise download them (tests
reach no network but loopback). tests/unit/test_package_zip.py builds the real zip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both stages packaged into a temporary directory, with no credentials in reach."""
    target = tmp_path_factory.mktemp("package")
    project = tmp_path_factory.mktemp("project")
    # Everything `chalice package` could see from the project root, the CLI included.
    for name in ("app.py", "chalicelib", "sluice_cli", ".chalice", "infra"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, project / name, ignore=shutil.ignore_patterns("__pycache__", "deployments")
            )
        else:
            shutil.copy2(src, project / name)
    (project / "requirements.txt").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    subprocess.run(
        [sys.executable, str(project / "infra" / "package.py"), "--out", str(target)],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return target
