"""A rule that drops everything does not validate silently.

`actions: [drop]` on a rule whose tag patterns match every tag and that has no `where`
condition discards every event Sluice receives, archive included. Such a document is
still valid (an operator may mean it), but `sluice rules apply` (and `--dry-run`) warns,
naming the rule, and `sluice rules test` shows the same warning above its verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from chalicelib.rules.lint import drops_everything, warnings
from chalicelib.rules.schema import load_rules
from sluice_cli.rules import rules as rules_cli


def rule(**kw: Any) -> dict[str, Any]:
    return {"id": "r", "actions": ["drop"], **kw}


@pytest.mark.parametrize(
    ("spec", "everything"),
    [
        pytest.param(rule(), True, id="no match at all"),
        pytest.param(rule(match={"tag": "**"}), True, id="double star"),
        pytest.param(rule(match={"tag": "**.*"}), True, id="one part at least"),
        pytest.param(rule(match={"tag": "*.**.**"}), True, id="one star and double stars"),
        pytest.param(rule(match={"tag": ["app.**", "**"]}), True, id="one pattern of a list"),
        pytest.param(rule(match={"tag": "{app.**,**}"}), True, id="one alternative"),
        pytest.param(rule(match={"tag": "**"}, stop=True), True, id="with stop"),
        pytest.param(rule(match={"tag": "*"}), False, id="one-part tags only"),
        pytest.param(rule(match={"tag": "*.*"}), False, id="two parts at least"),
        pytest.param(rule(match={"tag": "app.**"}), False, id="a prefix"),
        pytest.param(
            rule(match={"tag": "**", "where": [{"field": "a", "exists": True}]}),
            False,
            id="a condition",
        ),
        pytest.param(rule(match={"tag": "**"}, enabled=False), False, id="disabled"),
        pytest.param(
            {"id": "r", "match": {"tag": "**"}, "actions": ["archive"]}, False, id="archive"
        ),
        pytest.param({"id": "r", "match": {"tag": "**"}}, False, id="no actions"),
    ],
)
def test_drop_everything_is_recognised(spec: dict[str, Any], everything: bool) -> None:
    """A drop rule is flagged exactly when it is enabled, has no condition, and one of its
    tag patterns matches every possible tag."""
    (r,) = load_rules({"rules": [spec]})
    assert drops_everything(r) is everything
    assert bool(warnings([r])) is everything


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    doc = {
        "rules": [
            {"id": "keep-app", "match": {"tag": "app.**"}},
            {"id": "silence", "match": {"tag": "**"}, "actions": ["drop"]},
        ]
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_rules_apply_warns_about_a_drop_everything_rule(rules_file: Path) -> None:
    """`sluice rules apply --dry-run` still accepts the file but warns, naming the rule."""
    result = CliRunner().invoke(rules_cli, ["apply", "--dry-run", str(rules_file)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "silence" in result.output
    assert "every event" in result.output


def test_rules_test_shows_the_warning(rules_file: Path, tmp_path: Path) -> None:
    """`sluice rules test` prints the same warning before the verdicts."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"tag": "app.web", "message": "hello"}))
    result = CliRunner().invoke(rules_cli, ["test", str(rules_file), "--event", str(event)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "silence" in result.output
    assert result.output.index("warning") < result.output.index("outcome")
