"""Sluice's DynamoDB tables, as Python creates them: the local stack, tests and tools.

Both tables are keyed by two strings, `pk` (partition) and `sk` (sort), which is
what `chalicelib.rules.store` and `chalicelib.state` read and write; the state
table's items expire through `expires_at` (epoch seconds). Deployments get the
same tables from infra/resources.yaml (CloudFormation); tests/unit/test_tables.py
checks that both say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEY_SCHEMA: tuple[dict[str, str], ...] = (
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
)
ATTRIBUTE_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
)
BILLING_MODE = "PAY_PER_REQUEST"
TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True, slots=True)
class Table:
    """One of Sluice's tables: its role and the attribute its items expire by, if any."""

    role: str
    ttl_attribute: str | None = None


RULES = Table("rules")
STATE = Table("state", TTL_ATTRIBUTE)
TABLES = (RULES, STATE)


def create_request(name: str) -> dict[str, Any]:
    """The CreateTable parameters of a table named `name` (a fresh copy each call)."""
    return {
        "TableName": name,
        "KeySchema": [dict(k) for k in KEY_SCHEMA],
        "AttributeDefinitions": [dict(a) for a in ATTRIBUTE_DEFINITIONS],
        "BillingMode": BILLING_MODE,
    }


def create(ddb: Any, name: str, table: Table) -> bool:
    """Create `name` as `table` if missing, wait until it is active, switch on its TTL.

    Returns whether it was created (False: it existed). Idempotent.
    """
    try:
        ddb.create_table(**create_request(name))
    except Exception as e:
        if _code(e) != "ResourceInUseException":
            raise
        created = False
    else:
        created = True
    # A fresh table is CREATING for a few seconds on AWS (instant on moto);
    # update_time_to_live refuses tables that are not ACTIVE.
    ddb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    if table.ttl_attribute:
        desc = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if desc.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
    return created


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
