"""The import contract `make lint` checks (pyproject's [tool.importlinter]), and that it bites.

Each case copies the packages and the contract to a temporary directory, adds one
forbidden import to one module and runs `lint-imports` there: it must fail and name
the import. The unchanged copy must pass, so a failure is the added line's doing.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
FIRST_PARTY = ("chalicelib", "sluice_cli")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the packages and the contract, importable from its own directory only."""
    for name in FIRST_PARTY:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_contract_holds_on_an_unchanged_copy(project: Path) -> None:
    """`lint-imports` passes on the copy as it is, every contract kept: the failures
    below are the added line's doing."""
    result = lint_imports(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


BREACHES = [
    pytest.param(
        "chalicelib/handlers.py", "import sluice_cli.local", "sluice_cli", id="runtime imports cli"
    ),
    pytest.param("chalicelib/pipeline.py", "import yaml", "yaml", id="runtime imports yaml"),
    pytest.param("chalicelib/rules/store.py", "import click", "click", id="runtime imports click"),
    pytest.param("chalicelib/aws.py", "import moto", "moto", id="runtime imports moto"),
    pytest.param(
        "chalicelib/actions/slack.py", "from rich import print", "rich", id="runtime imports rich"
    ),
    pytest.param(
        "chalicelib/sources/kinesis.py",
        "from chalicelib import pipeline",
        "chalicelib.pipeline",
        id="source imports pipeline",
    ),
    pytest.param(
        "chalicelib/parsers/logfmt.py",
        "from chalicelib.handlers import runtime",
        "chalicelib.handlers",
        id="parser imports handlers",
    ),
    pytest.param(
        "chalicelib/actions/sns.py",
        "def _late() -> None:\n    from chalicelib import handlers  # noqa",
        "chalicelib.handlers",
        id="function-level import counts",
    ),
]


@pytest.mark.parametrize(("module", "line", "named"), BREACHES)
def test_a_forbidden_import_fails_the_lint(project: Path, module: str, line: str, named: str):
    """Adding one forbidden import (even inside a function) makes `lint-imports` fail,
    naming the module that imported and what it imported."""
    path = project / module
    path.write_text(path.read_text("utf-8") + f"\n{line}\n", "utf-8")
    result = lint_imports(project)
    assert result.returncode != 0
    out = result.stdout
    assert "BROKEN" in out
    assert module.removesuffix(".py").replace("/", ".") in out and named in out, out


def test_the_ingest_package_is_held_below_the_handlers(project: Path) -> None:
    """The contract names `ingest` (optional, so it held before the package existed): a
    source importing it, the package itself or a module of it, fails the lint."""
    ingest = project / "chalicelib" / "ingest"
    ingest.mkdir(exist_ok=True)
    if not (ingest / "__init__.py").exists():
        (ingest / "__init__.py").write_text('"""Ingest."""\n')
    (ingest / "probe.py").write_text("READ = 1\n")
    assert lint_imports(project).returncode == 0
    for line in ("from chalicelib import ingest", "from chalicelib.ingest.probe import READ"):
        source = project / "chalicelib" / "sources" / "kpl.py"
        original = source.read_text("utf-8")
        source.write_text(original + f"\n{line}  # noqa\n", "utf-8")
        result = lint_imports(project)
        source.write_text(original, "utf-8")
        assert result.returncode != 0 and "chalicelib.sources.kpl" in result.stdout, line


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
    return out


def test_app_imports_only_chalice_and_the_runtime() -> None:
    """`app.py` (a module, outside the contract's packages) imports Chalice and
    chalicelib only (and the standard library's sys, for the deploy guard): never the CLI
    or its dependencies."""
    tree = ast.parse((ROOT / "app.py").read_text("utf-8"))
    tops = {name.split(".")[0] for name, _ in _imports(tree)}
    assert tops <= {"__future__", "chalice", "chalicelib", "sys", "typing"}, tops


def test_cli_modules_import_sluice_at_the_top_only() -> None:
    """No module of sluice_cli imports chalicelib or sluice_cli inside a function:
    an import hidden there would be dodging a cycle."""
    hidden = []
    for path in sorted((ROOT / "sluice_cli").rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                hidden += [
                    f"{path.relative_to(ROOT)}:{line}: {name}"
                    for name, line in _imports(fn)
                    if name.split(".")[0] in FIRST_PARTY
                ]
    assert hidden == []
