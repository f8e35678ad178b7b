"""One definition of the DynamoDB tables: sluice_cli/tables.py, checked against infra/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from sluice_cli import tables

ROOT = Path(__file__).resolve().parents[2]


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub...): a scalar argument is read as
    its plain text (`!Sub sluice-${Stage}-rules` -> "sluice-${Stage}-rules"), others as None."""


def _short_form(loader: _CfnLoader, suffix: str, node: yaml.Node) -> Any:
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


_CfnLoader.add_multi_constructor("!", _short_form)


def infra_tables() -> dict[str, dict[str, Any]]:
    """infra/resources.yaml's DynamoDB tables, by role (`sluice-${Stage}-<role>`)."""
    doc = yaml.load((ROOT / "infra" / "resources.yaml").read_text("utf-8"), Loader=_CfnLoader)
    out = {}
    for res in doc["Resources"].values():
        if res.get("Type") == "AWS::DynamoDB::Table":
            props = res["Properties"]
            out[props["TableName"].rsplit("-", 1)[-1]] = props
    return out


def test_infra_declares_the_same_tables() -> None:
    """infra/resources.yaml has exactly the tables Python creates, by role."""
    assert set(infra_tables()) == {t.role for t in tables.TABLES}


@pytest.mark.parametrize("table", tables.TABLES, ids=lambda t: t.role)
def test_infra_table_matches_the_python_definition(table: tables.Table) -> None:
    """Key schema, attribute types, billing and TTL attribute are the same in both places."""
    props = infra_tables()[table.role]
    request = tables.create_request("x")
    assert props["KeySchema"] == request["KeySchema"]
    assert props["AttributeDefinitions"] == request["AttributeDefinitions"]
    assert props["BillingMode"] == request["BillingMode"]
    ttl = props.get("TimeToLiveSpecification")
    if table.ttl_attribute is None:
        assert ttl is None
    else:
        assert ttl == {"AttributeName": table.ttl_attribute, "Enabled": True}


def test_create_is_idempotent_and_switches_on_the_ttl(aws_env: dict[str, str]) -> None:
    """Creating twice creates once; the state table expires items by `expires_at`."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        assert tables.create(ddb, "t-state", tables.STATE) is True
        assert tables.create(ddb, "t-state", tables.STATE) is False
        desc = ddb.describe_time_to_live(TableName="t-state")["TimeToLiveDescription"]
        assert desc["AttributeName"] == "expires_at"
        assert tables.create(ddb, "t-rules", tables.RULES) is True
        rules = ddb.describe_time_to_live(TableName="t-rules")["TimeToLiveDescription"]
        assert rules["TimeToLiveStatus"] == "DISABLED"
        schema = ddb.describe_table(TableName="t-rules")["Table"]["KeySchema"]
        assert schema == list(tables.KEY_SCHEMA)
