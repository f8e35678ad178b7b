"""Rules versions: every apply is a version, functions read one snapshot, rollback restores."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.rules.schema import load_document
from chalicelib.rules.store import (
    ConcurrentApply,
    current_version,
    list_versions,
    read_document,
    read_version,
    write_document,
)

V1 = {
    "rules": [
        {
            "id": "drop-health",
            "match": {"where": [{"field": "path", "equals": "/healthz"}]},
            "actions": ["drop"],
        }
    ]
}
V2 = {
    "rules": [{"id": "mark", "transform": {"set": {"seen": True}}}],
    "redact": {"patterns": ["email"]},
}


def apply(aws: Any, doc: dict[str, Any], source: str = "rules.yaml") -> int:
    return write_document(aws.dynamodb, aws.rules_table, load_document(doc), source=source).version


def test_each_apply_writes_a_new_current_version(aws: Any) -> None:
    """Two applies make versions 1 and 2; the current one is what functions read."""
    assert apply(aws, V1) == 1
    assert apply(aws, V2) == 2
    assert current_version(aws.dynamodb, aws.rules_table) == 2
    doc = read_document(aws.dynamodb, aws.rules_table)
    assert ([r.id for r in doc.rules], doc.version, doc.sections) == (
        ["mark"],
        2,
        {"redact": V2["redact"]},
    )
    assert [v["version"] for v in list_versions(aws.dynamodb, aws.rules_table)] == [1, 2]


def test_a_version_is_kept_whole_after_later_applies(aws: Any) -> None:
    """Version 1's document can be read back exactly as applied, after version 2 replaced it."""
    apply(aws, V1, source="first.yaml")
    apply(aws, V2)
    raw, meta = read_version(aws.dynamodb, aws.rules_table, 1)
    assert load_document(raw).rules[0].id == "drop-health"
    assert (meta["source"], meta["rules"]) == ("first.yaml", 1)


def test_an_apply_racing_another_is_refused(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """If `current` moves while an apply writes, that apply fails instead of interleaving."""
    apply(aws, V1)
    import chalicelib.rules.store as store

    real = store.current_version
    monkeypatch.setattr(store, "current_version", lambda ddb, table: real(ddb, table) - 1 or 0)
    with pytest.raises(ConcurrentApply):
        write_document(aws.dynamodb, aws.rules_table, load_document(V2))


def test_archive_lines_record_the_rules_version(
    aws: Any, runtime: Any, invoke: Any, load_event: Any, archive: Any
) -> None:
    """Events routed under version 2 carry `rules_version: "2"` in the archive."""
    apply(aws, V1)
    apply(aws, V2)
    runtime.rules.invalidate()
    invoke(load_event("cloudwatch_logs"))
    lines = archive.lines()
    assert lines and {line["rules_version"] for line in lines} == {"2"}
    assert all(line["record"].get("seen") is True for line in lines)


def test_rollback_restores_an_earlier_version_as_a_new_one(aws: Any) -> None:
    """`sluice rules rollback` makes version 3 with version 1's rules; the history stays."""
    from sluice_cli.rules import rules

    apply(aws, V1)
    apply(aws, V2)
    result = CliRunner().invoke(rules, ["rollback", "--table", aws.rules_table])
    assert result.exit_code == 0, result.output
    assert "now version 3" in result.output
    doc = read_document(aws.dynamodb, aws.rules_table)
    assert ([r.id for r in doc.rules], doc.version, doc.sections) == (["drop-health"], 3, {})
    listed = CliRunner().invoke(rules, ["versions", "--table", aws.rules_table])
    assert "rollback to version 1" in listed.output


def test_rollback_to_a_missing_version_says_so(aws: Any) -> None:
    """Rolling back past the first version is refused with a clear message."""
    from sluice_cli.rules import rules

    apply(aws, V1)
    result = CliRunner().invoke(rules, ["rollback", "--to", "7", "--table", aws.rules_table])
    assert result.exit_code != 0
    assert "no version 7" in result.output


# ---------------------------------------------------------------- every apply path versions
def _apply_with_cli(aws: Any, tmp_path: Any, apply_rules: Any) -> None:
    from sluice_cli.rules import rules

    path = tmp_path / "rules.yaml"
    path.write_text(__import__("json").dumps(V2), encoding="utf-8")
    result = CliRunner().invoke(rules, ["apply", str(path)])
    assert result.exit_code == 0, result.output


def _apply_with_helper(aws: Any, tmp_path: Any, apply_rules: Any) -> None:
    apply_rules(V2)


def _apply_rule_defs(aws: Any, tmp_path: Any, apply_rules: Any) -> None:
    from chalicelib.rules.schema import load_rules
    from chalicelib.rules.store import write_rule_defs

    write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(V2))


def _rollback_with_cli(aws: Any, tmp_path: Any, apply_rules: Any) -> None:
    from sluice_cli.rules import rules

    apply(aws, V2)
    apply(aws, V1)
    result = CliRunner().invoke(rules, ["rollback"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "apply_path",
    [
        pytest.param(_apply_with_cli, id="sluice rules apply"),
        pytest.param(_rollback_with_cli, id="sluice rules rollback"),
        pytest.param(_apply_with_helper, id="the tests' apply_rules helper"),
        pytest.param(_apply_rule_defs, id="write_rule_defs"),
    ],
)
def test_every_way_of_applying_rules_makes_archive_lines_name_a_version(
    aws: Any,
    runtime: Any,
    invoke: Any,
    load_event: Any,
    archive: Any,
    apply_rules: Any,
    tmp_path: Any,
    apply_path: Any,
) -> None:
    """However rules reach the table, they form a version, and every archive line of the
    events they routed carries it as `rules_version`."""
    apply_path(aws, tmp_path, apply_rules)
    runtime.rules.invalidate()
    version = current_version(aws.dynamodb, aws.rules_table)
    invoke(load_event("cloudwatch_logs"))
    lines = archive.lines()
    assert version > 0
    assert lines and {line.get("rules_version") for line in lines} == {str(version)}
    assert all(line["record"].get("seen") is True for line in lines)
