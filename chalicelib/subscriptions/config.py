"""What `sluice subscribe --save` keeps for `log_group_created`, in the rules table.

    pk="config"  sk="subscriptions"  body=<JSON: patterns, excludes, filter_pattern, destination>
The destination is a kind (lambda or kinesis), never an ARN: the function derives
ARNs from its own, so writing the table cannot redirect anyone's logs elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from chalicelib.subscriptions.filters import DESTINATIONS
from chalicelib.subscriptions.patterns import Patterns, SubscriptionError

CONFIG_PK = "config"
CONFIG_SK = "subscriptions"


@dataclass(frozen=True)
class SubscriptionConfig:
    """What `sluice subscribe --save` keeps for `log_group_created` (rules table)."""

    patterns: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    filter_pattern: str = ""
    destination: str = "lambda"
    updated_at: str = ""

    _KEYS = frozenset({"patterns", "excludes", "filter_pattern", "destination", "updated_at"})

    def __post_init__(self) -> None:
        if self.destination not in DESTINATIONS:
            raise SubscriptionError(
                f"destination {self.destination!r}: expected one of {', '.join(DESTINATIONS)}"
            )
        Patterns(self.patterns, self.excludes)  # validates every pattern

    @classmethod
    def from_dict(cls, doc: Any) -> SubscriptionConfig:
        if not isinstance(doc, dict):
            raise SubscriptionError("subscription config: expected an object")
        unknown = set(doc) - cls._KEYS
        if unknown:
            raise SubscriptionError(f"subscription config: unknown key(s) {sorted(unknown)}")
        try:
            return cls(
                patterns=tuple(doc.get("patterns") or ()),
                excludes=tuple(doc.get("excludes") or ()),
                filter_pattern=str(doc.get("filter_pattern") or ""),
                destination=str(doc.get("destination") or "lambda"),
                updated_at=str(doc.get("updated_at") or ""),
            )
        except TypeError as e:
            raise SubscriptionError(f"subscription config: {e}") from e

    def as_dict(self) -> dict[str, Any]:
        return {
            "patterns": list(self.patterns),
            "excludes": list(self.excludes),
            "filter_pattern": self.filter_pattern,
            "destination": self.destination,
            "updated_at": self.updated_at,
        }

    def patterns_for(self, own_function: str | None = None) -> Patterns:
        return Patterns(self.patterns, self.excludes, own_function)


def read_config(ddb: Any, table: str) -> SubscriptionConfig | None:
    item = ddb.get_item(
        TableName=table,
        Key={"pk": {"S": CONFIG_PK}, "sk": {"S": CONFIG_SK}},
        ConsistentRead=True,
    ).get("Item")
    if not item:
        return None
    return SubscriptionConfig.from_dict(orjson.loads(item["body"]["S"]))


def write_config(ddb: Any, table: str, cfg: SubscriptionConfig) -> SubscriptionConfig:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    saved = SubscriptionConfig(cfg.patterns, cfg.excludes, cfg.filter_pattern, cfg.destination, now)
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": CONFIG_PK},
            "sk": {"S": CONFIG_SK},
            "body": {"S": orjson.dumps(saved.as_dict()).decode()},
            "updated_at": {"S": now},
        },
    )
    return saved
