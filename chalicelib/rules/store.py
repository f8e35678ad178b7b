"""Rules in DynamoDB, loaded by the functions and cached in memory.

Table layout (keys `pk`, `sk`, both strings):
    pk="rules"  sk=<rule id>  body=<rule as JSON>  priority=<n>  updated_at=<iso>
One item per rule, so `sluice rules apply` writes only what changed and removes
rules no longer in the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from chalicelib.errors import RulesInvalid
from chalicelib.rules.match import RuleSet
from chalicelib.rules.schema import RuleDef, RulesDocument, load_document

RULES_PK = "rules"


def read_rule_defs(ddb: Any, table: str) -> list[RuleDef]:
    """All current rules from the table, validated as one document."""
    return read_document(ddb, table).rules


def read_document(ddb: Any, table: str) -> RulesDocument:
    """Rules and inputs from the table, validated as one document."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": RULES_PK}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raw = [orjson.loads(it["body"]["S"]) for it in items]
    raw.sort(key=lambda r: (r.get("priority", 100), r.get("id", "")))
    doc: dict[str, Any] = {"rules": raw}
    for section in SECTIONS:
        item = ddb.get_item(TableName=table, Key=_section_key(section), ConsistentRead=True)
        if "Item" in item:
            doc[section] = orjson.loads(item["Item"]["body"]["S"])
    return load_document(doc)


# Document-level sections besides the rules, one item each under pk="config".
SECTIONS = ("inputs", "redact")


def _section_key(section: str) -> dict[str, Any]:
    return {"pk": {"S": "config"}, "sk": {"S": section}}


def write_document(ddb: Any, table: str, doc: RulesDocument) -> ApplyResult:
    """Make the table hold exactly the document's rules and sections (already validated)."""
    result = write_rule_defs(ddb, table, doc.rules)
    for section in SECTIONS:
        value = doc.sections.get(section)
        if value is None:
            ddb.delete_item(TableName=table, Key=_section_key(section))
        else:
            ddb.put_item(
                TableName=table,
                Item={**_section_key(section), "body": {"S": orjson.dumps(value).decode()}},
            )
    return result


@dataclass
class ApplyResult:
    written: list[str]
    unchanged: list[str]
    removed: list[str]


def write_rule_defs(ddb: Any, table: str, rules: list[RuleDef]) -> ApplyResult:
    """Make the table hold exactly `rules` (already validated)."""
    current: dict[str, str] = {}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": RULES_PK}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**kwargs)
        for it in page.get("Items", []):
            current[it["sk"]["S"]] = it["body"]["S"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    result = ApplyResult([], [], [])
    for r in rules:
        body = orjson.dumps(r.raw, option=orjson.OPT_SORT_KEYS).decode()
        if current.get(r.id) == body:
            result.unchanged.append(r.id)
            continue
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": RULES_PK},
                "sk": {"S": r.id},
                "body": {"S": body},
                "priority": {"N": str(r.priority)},
                "updated_at": {"S": now},
            },
        )
        result.written.append(r.id)
    keep = {r.id for r in rules}
    for rid in sorted(set(current) - keep):
        ddb.delete_item(TableName=table, Key={"pk": {"S": RULES_PK}, "sk": {"S": rid}})
        result.removed.append(rid)
    return result


class RuleStore:
    """The functions' view of the rules: cached for `ttl_s`, last good set kept.

    If DynamoDB cannot be read, the last loaded rules stay in force; a cold
    function that never loaded any runs with no rules (everything archived) and
    reports `rules_unavailable` so the ledger line and metrics show it.
    """

    def __init__(
        self, load: Callable[[], list[RuleDef] | RulesDocument], ttl_s: float = 60.0
    ) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self._rules: RuleSet | None = None
        self._loaded_at = float("-inf")
        self.last_error: str | None = None

    def get(self) -> RuleSet:
        now = time.monotonic()
        if self._rules is not None and now - self._loaded_at < self.ttl_s:
            return self._rules
        try:
            defs = self._load()
        except RulesInvalid as e:
            # Only `sluice rules apply` writes the table and it validates first,
            # so this means a hand edit: keep what we had, say why.
            self.last_error = f"rules in table invalid: {e}"
        except Exception as e:  # botocore errors: any failure to read keeps the last set
            self.last_error = f"rules unavailable: {type(e).__name__}: {e}"
        else:
            if isinstance(defs, RulesDocument):
                self._rules = RuleSet(
                    defs.rules, inputs=defs.inputs, redact=defs.sections.get("redact")
                )
            else:
                self._rules = RuleSet(defs)
            self.last_error = None
        self._loaded_at = now
        if self._rules is None:
            return RuleSet([])
        return self._rules

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
