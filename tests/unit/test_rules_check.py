"""`sluice rules test --tests` (expected outcomes, diff, exit code) and `sluice rules export`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from chalicelib.rules.schema import load_document
from chalicelib.rules.store import write_document
from sluice_cli.rules import rules

DATA = Path(__file__).parents[2] / "sluice_cli" / "data"
RULES = str(DATA / "demo-rules.yaml")
OK_CASE = {
    "name": "computer mention",
    "event": {"tag": "demo.web", "record": {"path": "/cart", "message": "Computer down"}},
    "expect": {"matched": ["computer-alerts"], "actions": ["slack"], "dropped": False,
               "alert": "Computer down", "tag": "demo.web", "fields": {"path": "/cart"}},
}  # fmt: skip


def run(tmp_path: Path, cases: Any) -> Any:
    f = tmp_path / "t.yaml"
    f.write_text(yaml.safe_dump(cases))
    return CliRunner().invoke(rules, ["test", RULES, "--tests", str(f)])


def test_the_shipped_example_passes() -> None:
    """The demo rules' own test file passes and the command exits 0."""
    res = CliRunner().invoke(rules, ["test", RULES, "--tests", str(DATA / "demo-rules.test.yaml")])
    assert res.exit_code == 0, res.output
    assert "3 passed, 0 failed" in res.output


@pytest.mark.parametrize(
    ("key", "wrong", "shown"),
    [
        pytest.param("matched", ["health-noise"], '- expected ["health-noise"]', id="matched"),
        pytest.param("actions", ["sns"], '+ actual   ["slack"]', id="actions"),
        pytest.param("dropped", True, "+ actual   false", id="dropped"),
        pytest.param("tag", "other", '- expected "other"', id="tag"),
        pytest.param("fields", {"path": "/x"}, "fields.path:", id="field value"),
        pytest.param("fields", {"message": None}, "fields.message:", id="field should be absent"),
        pytest.param("alert", "no such text", "alert:", id="alert text"),
    ],
)  # fmt: skip
def test_each_mismatch_fails_with_a_diff(tmp_path: Path, key: str, wrong: Any, shown: str) -> None:
    """A wrong expectation of any kind exits 1 and shows expected and actual for that key."""
    case = {**OK_CASE, "expect": {**OK_CASE["expect"], key: wrong}}
    res = run(tmp_path, {"tests": [OK_CASE, case]})
    assert res.exit_code == 1, res.output
    assert "FAIL computer mention" in res.output and shown in res.output
    assert "1 passed, 1 failed" in res.output


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"cases": []}, id="no tests list"),
        pytest.param({"tests": [{"event": {"message": "x"}}]}, id="event without tag"),
        pytest.param({"tests": [{"event": {"tag": "a"}, "expect": {"alerts": "x"}}]},
                     id="unknown expect key"),
    ],
)  # fmt: skip
def test_an_invalid_test_file_is_a_usage_error(tmp_path: Path, doc: Any) -> None:
    """A test file of the wrong shape exits 2 with one line naming the problem."""
    res = run(tmp_path, doc)
    assert res.exit_code == 2
    assert "invalid" in res.output


def test_explain_is_kept_without_a_test_file() -> None:
    """Without --tests, --event still explains (and passing neither is a usage error)."""
    assert CliRunner().invoke(rules, ["test", RULES]).exit_code == 2


DOCS = [
    pytest.param(yaml.safe_load(Path(RULES).read_text()), id="demo rules"),
    pytest.param(
        {"rules": [{"id": "u", "match": {"where": [{"field": "msg", "regex": "é: {x}\n'\""}]},
                    "transform": {"set": {"a": 1.5, "b": None, "c": "yes", "d": "0012"}}}],
         "redact": {"patterns": ["email"]}},
        id="quoting, unicode, numbers-as-text"),
]  # fmt: skip


@pytest.mark.parametrize("doc", DOCS)
def test_export_is_byte_stable(aws: Any, tmp_path: Path, doc: dict[str, Any]) -> None:
    """export -> apply -> export gives identical bytes, and the export loads to the document."""
    write_document(aws.dynamodb, aws.rules_table, load_document(doc), source="x")
    first = CliRunner().invoke(rules, ["export", "--table", aws.rules_table])
    assert first.exit_code == 0, first.output
    f = tmp_path / "exported.yaml"
    f.write_text(first.stdout)
    assert CliRunner().invoke(rules, ["apply", str(f), "--table", aws.rules_table]).exit_code == 0
    again = CliRunner().invoke(rules, ["export", "--table", aws.rules_table])
    older = CliRunner().invoke(rules, ["export", "--version", "1", "--table", aws.rules_table])
    assert again.stdout == first.stdout == older.stdout
    assert load_document(yaml.safe_load(first.stdout)).rules == load_document(doc).rules


def test_export_of_a_missing_version_says_so(aws: Any) -> None:
    """An unknown version is one clear error, exit 1."""
    res = CliRunner().invoke(rules, ["export", "--version", "9", "--table", aws.rules_table])
    assert res.exit_code == 1 and "rules version 9 not found" in res.output
