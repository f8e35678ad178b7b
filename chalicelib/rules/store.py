"""Rules in DynamoDB, loaded by the functions and cached in memory.

Table layout (keys `pk`, `sk`, both strings):
    pk="rules"    sk=<rule id>   body=<rule as JSON>  priority  updated_at
    pk="config"   sk=<section>   body=<inputs | redact | accounts as JSON>
    pk="version"  sk=<00000042>  doc=<gzip of the whole document as JSON>  applied_at  source
    pk="config"   sk="version"   current=<n>
Every apply (`sluice rules apply` and rollback, the local stack, `write_rule_defs`)
writes a new version (the whole document in one item)
and moves `current` to it with a conditional write, so two operators applying at
once cannot interleave. Functions read `current` and that one version item: a
consistent snapshot even while an apply is writing. The per-rule items mirror the
current version for people and `sluice rules list`.

A version never changes once written, so a function's reload reads `current` only
and re-reads, re-validates and recompiles nothing while it stays the same.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from chalicelib.aws import query_items
from chalicelib.errors import RulesInvalid
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import RuleDef, RulesDocument, load_document

RULES_PK = "rules"
COLD_RETRY_S = 5.0


def read_rule_defs(ddb: Any, table: str) -> list[RuleDef]:
    """All current rules from the table, validated as one document."""
    return read_document(ddb, table).rules


def current_version(ddb: Any, table: str) -> int:
    item = ddb.get_item(TableName=table, Key=_VERSION_KEY, ConsistentRead=True).get("Item")
    return int(item["current"]["N"]) if item else 0


def read_version(ddb: Any, table: str, version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document as written, metadata) of one version."""
    key = {"pk": {"S": "version"}, "sk": {"S": f"{version:08d}"}}
    item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        raise KeyError(f"rules version {version} not found")
    doc = orjson.loads(zlib.decompress(item["doc"]["B"]))
    meta = {
        "version": version,
        "applied_at": item.get("applied_at", {}).get("S", ""),
        "source": item.get("source", {}).get("S", ""),
        "rules": int(item.get("rules", {}).get("N", "0")),
    }
    return doc, meta


def list_versions(ddb: Any, table: str) -> list[dict[str, Any]]:
    items = query_items(
        ddb,
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "version"}},
        ProjectionExpression="sk, applied_at, #s, #r",
        ExpressionAttributeNames={"#s": "source", "#r": "rules"},
    )
    return [
        {
            "version": int(it["sk"]["S"]),
            "applied_at": it.get("applied_at", {}).get("S", ""),
            "source": it.get("source", {}).get("S", ""),
            "rules": int(it.get("rules", {}).get("N", "0")),
        }
        for it in items
    ]


def _rule_items(ddb: Any, table: str) -> Iterator[dict[str, Any]]:
    """The per-rule items (pk="rules"), read consistently."""
    return query_items(
        ddb,
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": RULES_PK}},
        ConsistentRead=True,
    )


def read_document(ddb: Any, table: str) -> RulesDocument:
    """The current rules document: the current version's snapshot, or (for a table
    written without versions) the per-rule items and sections."""
    return read_document_at(ddb, table, current_version(ddb, table))


def read_document_at(ddb: Any, table: str, version: int) -> RulesDocument:
    """One version's document, validated (version 0: the per-rule items and sections)."""
    if version:
        raw, _ = read_version(ddb, table, version)
        doc = load_document(raw)
        doc.version = version
        return doc
    return _read_items(ddb, table)


def _read_items(ddb: Any, table: str) -> RulesDocument:
    raw = [orjson.loads(it["body"]["S"]) for it in _rule_items(ddb, table)]
    raw.sort(key=lambda r: (r.get("priority", 100), r.get("id", "")))
    doc: dict[str, Any] = {"rules": raw}
    for section in SECTIONS:
        item = ddb.get_item(TableName=table, Key=_section_key(section), ConsistentRead=True)
        if "Item" in item:
            doc[section] = orjson.loads(item["Item"]["body"]["S"])
    return load_document(doc)


# Document-level sections besides the rules, one item each under pk="config".
SECTIONS = ("inputs", "redact", "accounts")


def _section_key(section: str) -> dict[str, Any]:
    return {"pk": {"S": "config"}, "sk": {"S": section}}


_VERSION_KEY = {"pk": {"S": "config"}, "sk": {"S": "version"}}


class ConcurrentApply(Exception):
    """Another apply moved the current version while this one was writing."""


def write_document(ddb: Any, table: str, doc: RulesDocument, *, source: str = "") -> ApplyResult:
    """Write `doc` (already validated) as a new version and make it current."""
    raw: dict[str, Any] = {"rules": [r.raw for r in doc.rules], **doc.sections}
    previous = current_version(ddb, table)
    version = previous + 1
    now = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": "version"},
                "sk": {"S": f"{version:08d}"},
                "doc": {"B": zlib.compress(orjson.dumps(raw), 6)},
                "applied_at": {"S": now},
                "source": {"S": source[:500]},
                "rules": {"N": str(len(doc.rules))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ddb.exceptions.ConditionalCheckFailedException as e:
        raise ConcurrentApply(f"version {version} was written by another apply; apply again") from e
    result = _write_current(ddb, table, doc)
    try:
        ddb.update_item(
            TableName=table,
            Key=_VERSION_KEY,
            UpdateExpression="SET #c = :v",
            ConditionExpression="attribute_not_exists(#c) OR #c = :p",
            ExpressionAttributeNames={"#c": "current"},
            ExpressionAttributeValues={":v": {"N": str(version)}, ":p": {"N": str(previous)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException as e:
        raise ConcurrentApply(f"another apply made a version after {previous}; apply again") from e
    result.version = version
    return result


def _write_current(ddb: Any, table: str, doc: RulesDocument) -> ApplyResult:
    result = _write_rule_items(ddb, table, doc.rules)
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


class ApplyResult:
    """What an apply wrote. A plain class: a dataclass costs ~1 ms to create on a cold
    start and its generated methods are not used (README, "Cold start")."""

    __slots__ = ("removed", "unchanged", "version", "written")

    def __init__(
        self, written: list[str], unchanged: list[str], removed: list[str], version: int = 0
    ) -> None:
        self.written = written
        self.unchanged = unchanged
        self.removed = removed
        self.version = version


def write_rule_defs(ddb: Any, table: str, rules: list[RuleDef], *, source: str = "") -> ApplyResult:
    """Apply `rules` (already validated) as a document of rules only: a new version, like
    every apply, so the events they route are archived with their `rules_version`."""
    return write_document(ddb, table, RulesDocument(rules), source=source)


def _write_rule_items(ddb: Any, table: str, rules: list[RuleDef]) -> ApplyResult:
    """Make the per-rule items mirror `rules` (already validated)."""
    current = {it["sk"]["S"]: it["body"]["S"] for it in _rule_items(ddb, table)}
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


@runtime_checkable
class RuleSource(Protocol):
    """Where a RuleStore reads rules: a current version (0: not versioned) and a document."""

    def current_version(self) -> int: ...

    def read(self, version: int) -> RulesDocument | list[RuleDef]: ...


class TableRules:
    """The rules table as a RuleSource: one GetItem for the pointer, one for a version."""

    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def current_version(self) -> int:
        return current_version(self.ddb, self.table)

    def read(self, version: int) -> RulesDocument:
        return read_document_at(self.ddb, self.table, version)


class _Unversioned:
    """A plain loader as a RuleSource: no version to compare, so every reload reads it."""

    def __init__(self, load: Callable[[], RulesDocument | list[RuleDef]]) -> None:
        self._load = load

    def current_version(self) -> int:
        return 0

    def read(self, version: int) -> RulesDocument | list[RuleDef]:
        return self._load()


class RuleStore:
    """The functions' view of the rules: cached for `ttl_s`, last good set kept.

    After the TTL, a reload asks the source for the current version (one read); only
    a version it has not read yet is read, validated and compiled. A version that
    failed validation is remembered with its error, since a version never changes.
    Sources without versions (0) are read whole on every reload.

    If DynamoDB cannot be read, the last loaded rules stay in force; a cold
    function that never loaded any runs with no rules (everything archived) and
    reports `rules_unavailable` so the ledger line and metrics show it.
    """

    def __init__(
        self,
        source: RuleSource | Callable[[], list[RuleDef] | RulesDocument],
        ttl_s: float = 60.0,
    ) -> None:
        self._source: RuleSource = (
            source if isinstance(source, RuleSource) else _Unversioned(source)
        )
        self.ttl_s = ttl_s
        self._rules: RuleSet | None = None
        self._loaded_at = float("-inf")
        # The last version read (0: none) and its validation error (None: in force).
        self._version = 0
        self._version_error: str | None = None
        self.last_error: str | None = None

    def get(self) -> RuleSet:
        now = time.monotonic()
        if self._rules is not None and now - self._loaded_at < self.ttl_s:
            return self._rules
        self._reload()
        self._loaded_at = now
        if self._rules is None:
            # Never loaded: try again after COLD_RETRY_S rather than a full TTL, so a
            # short outage at cold start does not leave a minute without rules.
            self._loaded_at = now - self.ttl_s + min(self.ttl_s, COLD_RETRY_S)
            return RuleSet([])
        return self._rules

    def _reload(self) -> None:
        version = 0
        try:
            version = self._source.current_version()
            if version and version == self._version:
                self.last_error = self._version_error  # nothing new: nothing re-read
                return
            defs = self._source.read(version)
        except RulesInvalid as e:
            # Only `sluice rules apply` writes the table and it validates first,
            # so this means a hand edit: keep what we had, say why.
            self.last_error = f"rules in table invalid: {e}"
            self._version, self._version_error = version, self.last_error
        except Exception as e:  # botocore errors: any failure to read keeps the last set
            self.last_error = f"rules unavailable: {type(e).__name__}: {e}"
        else:
            if isinstance(defs, RulesDocument):
                self._rules = RuleSet(
                    defs.rules,
                    version=str(defs.version or ""),
                    inputs=defs.inputs,
                    redact=defs.sections.get("redact"),
                    accounts=defs.sections.get("accounts"),
                )
            else:
                self._rules = RuleSet(defs)
            self._version, self._version_error = version, None
            self.last_error = None

    def invalidate(self) -> None:
        """Reload on the next `get`, reading the current version whole even if unchanged."""
        self._loaded_at = float("-inf")
        self._version = 0
