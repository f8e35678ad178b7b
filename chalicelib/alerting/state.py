"""The state-table operations the alert gates need: conditional counters, sets and takes.

Item layout: see `chalicelib.alerting`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from chalicelib.actions.prepared import prepared_client

DEDUPE_TTL_S = 24 * 3600  # an invocation's retries come within minutes; a day is ample
ANY_TAKER = "-"  # a take without a batch identity (one-shot, not retry-safe)
# Thresholds count distinct event ids as 8-byte digests in a set, which holds at most
# 2 x count of them (a batch adds at most `count`; none once fired): 20,000 keeps the
# item near 320 KB, under DynamoDB's 400 KB. Larger counts use a plain counter.
MAX_DISTINCT_COUNT = 20_000


class AlertState:
    """The state-table operations the gates need (injectable; tests use moto). Calls take
    the prepared path (`chalicelib.actions.prepared`): the same requests and outcomes as
    botocore's, at a fraction of its per-call CPU."""

    def __init__(self, ddb: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self.ddb = prepared_client(ddb)
        self.table = table
        self.clock = clock
        # Set by a refused tokened `add_below`: the tokens that spent that window.
        self.last_spenders: frozenset[str] | None = None

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _exp(self, ttl_s: int) -> dict[str, str]:
        return {"N": str(int(self.clock()) + max(ttl_s, 60))}

    def add(self, pk: str, sk: str, attr: str, n: int, *, ttl_s: int) -> int:
        r = self._add(pk, sk, attr, n, ttl_s, ReturnValues="UPDATED_NEW")
        return int(r["Attributes"][attr]["N"])

    def count(self, pk: str, sk: str, attr: str, n: int, *, ttl_s: int) -> None:
        """`add` when the new count is not needed (a suppressed alert): DynamoDB answers
        with nothing to parse."""
        self._add(pk, sk, attr, n, ttl_s)

    def _add(self, pk: str, sk: str, attr: str, n: int, ttl_s: int, **returns: str) -> Any:
        return self.ddb.update_item(
            TableName=self.table,
            Key=self._key(pk, sk),
            UpdateExpression="ADD #a :n SET expires_at = :e",
            ExpressionAttributeNames={"#a": attr},
            ExpressionAttributeValues={":n": {"N": str(n)}, ":e": self._exp(ttl_s)},
            **returns,
        )

    def add_distinct(
        self, pk: str, sk: str, ids: list[str], ttl_s: int, *, token: str = ""
    ) -> int | None:
        """Add ids to the item's set unless it has `fired` (for another token); the set's
        size (None if fired). Ids already present add nothing: a retried batch counts once."""
        digests = [hashlib.blake2b(x.encode(), digest_size=8).digest() for x in dict.fromkeys(ids)]
        try:
            r = self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="ADD ids :ids SET expires_at = :e",
                ConditionExpression="attribute_not_exists(fired) OR fired = :tok",
                ExpressionAttributeValues={
                    ":ids": {"BS": digests},
                    ":e": self._exp(ttl_s),
                    ":tok": {"S": token or "-"},
                },
                # ALL_NEW: UPDATED_NEW may leave out a set the ADD did not change (moto does).
                ReturnValues="ALL_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        return len(r["Attributes"]["ids"]["BS"])

    def add_below(
        self, pk: str, sk: str, attr: str, limit: int, *, ttl_s: int, token: str = ""
    ) -> bool:
        """Atomically count one more if the count is below `limit`. A `token` that already
        spent here is granted again without counting (the retry of the same batch)."""
        names = {"#a": attr}
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":limit": {"N": str(limit)},
            ":e": self._exp(ttl_s),
        }
        update = "ADD #a :one SET expires_at = :e"
        condition = "attribute_not_exists(#a) OR #a < :limit"
        if token:
            update = "ADD #a :one, spenders :toks SET expires_at = :e"
            condition = f"({condition}) AND NOT contains(spenders, :tok)"
            values[":toks"] = {"SS": [token]}
            values[":tok"] = {"S": token}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except self.ddb.exceptions.ConditionalCheckFailedException:
            if not token:
                return False
            item = self.ddb.get_item(
                TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True
            ).get("Item", {})
            spenders = frozenset(item.get("spenders", {}).get("SS", []))
            if token in spenders:
                return True
            self.last_spenders = spenders
            return False

    def set_once(self, pk: str, sk: str, attr: str, *, ttl_s: int, token: str = "") -> bool:
        """Set `attr` once; the same `token` (a retry of the same batch) gets it again."""
        if token:
            condition = "attribute_not_exists(#a) OR #a = :t"
            value: dict[str, Any] = {"S": token}
        else:
            condition, value = "attribute_not_exists(#a)", {"BOOL": True}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="SET #a = :t, expires_at = :e",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#a": attr},
                ExpressionAttributeValues={":t": value, ":e": self._exp(ttl_s)},
            )
            return True
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False

    def take_counter(self, pk: str, sk: str) -> int:
        """Read and delete a counter item in one step (concurrent takers split, never double)."""
        r = self.ddb.delete_item(
            TableName=self.table, Key=self._key(pk, sk), ReturnValues="ALL_OLD"
        )
        attrs = r.get("Attributes") or {}
        return int(attrs.get("suppressed", {}).get("N", "0"))

    def put(self, pk: str, sk: str, value: dict[str, Any], *, ttl_s: int) -> None:
        item = {
            **self._key(pk, sk),
            "expires_at": self._exp(ttl_s),
            "time": {"N": str(value["time"])},
            "id": {"S": str(value.get("id", ""))},
            "message": {"S": str(value.get("message", ""))},
        }
        self.ddb.put_item(TableName=self.table, Item=item)

    def take(self, pk: str, sk: str, *, token: str = ANY_TAKER) -> dict[str, Any] | None:
        """Consume an item and return it; None if absent, expired or consumed by another
        token. Only one taker wins; the same token (a retry) wins again."""
        try:
            r = self.ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="SET consumed_by = :tok",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(consumed_by) OR consumed_by = :tok)",
                ExpressionAttributeValues={":tok": {"S": token}},
                ReturnValues="ALL_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        attrs = r.get("Attributes")
        if not attrs or int(attrs.get("expires_at", {}).get("N", "0")) < self.clock():
            return None
        return {
            "time": int(attrs["time"]["N"]),
            "id": attrs.get("id", {}).get("S", ""),
            "message": attrs.get("message", {}).get("S", ""),
        }

    def already_alerted(self, rule_id: str, index: int, ids: list[str]) -> set[str]:
        pk = f"alerted#{rule_id}#{index}"
        seen: set[str] = set()
        for i in range(0, len(ids), 100):  # BatchGetItem takes 100 keys
            keys = [self._key(pk, x) for x in dict.fromkeys(ids[i : i + 100])]
            req: dict[str, Any] = {self.table: {"Keys": keys, "ProjectionExpression": "sk"}}
            while req:
                r = self.ddb.batch_get_item(RequestItems=req)
                seen.update(it["sk"]["S"] for it in r.get("Responses", {}).get(self.table, []))
                req = r.get("UnprocessedKeys") or {}
        return seen

    def mark_alerted(self, rule_id: str, index: int, ids: list[str]) -> None:
        pk = {"S": f"alerted#{rule_id}#{index}"}  # one value shared by the batch's items
        exp = self._exp(DEDUPE_TTL_S)
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), 25):  # BatchWriteItem takes 25 items
            req: dict[str, Any] = {
                self.table: [
                    {"PutRequest": {"Item": {"pk": pk, "sk": {"S": x}, "expires_at": exp}}}
                    for x in unique[i : i + 25]
                ]
            }
            while req:
                r = self.ddb.batch_write_item(RequestItems=req)
                req = r.get("UnprocessedItems") or {}
