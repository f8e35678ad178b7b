"""The state table: small records with a TTL (`expires_at`), written conditionally.

Object claims make S3 re-deliveries idempotent:
    pk="object#<bucket>/<key>"  sk=<version or etag>  status=in_progress|done  expires_at
A claim succeeds when no record exists, or when an in-progress lease has expired
(the invocation that held it died). A `done` record makes re-deliveries no-ops for
DONE_TTL_S. The conditional write is what makes this safe under concurrent
deliveries of the same object (S3 notifications are at-least-once).
"""

from __future__ import annotations

import time
from typing import Any, Protocol


class ObjectRef(Protocol):
    """An S3 object's address, as the state table keys it (sources.s3.ObjectRef is one)."""

    @property
    def bucket(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    @property
    def etag(self) -> str | None: ...


# Lambda's longest timeout (15 min) plus slack: a lease older than this belongs
# to an invocation that is gone.
LEASE_S = 16 * 60
# S3 re-deliveries come within minutes to hours; a week is generous.
DONE_TTL_S = 7 * 24 * 3600


class StateTable:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    @staticmethod
    def _key(ref: ObjectRef) -> dict[str, Any]:
        return {
            "pk": {"S": f"object#{ref.bucket}/{ref.key}"},
            "sk": {"S": ref.version or ref.etag or "-"},
        }

    def claim_object(self, ref: ObjectRef, holder: str) -> str:
        """'claimed', 'done' (already processed) or 'busy' (another invocation holds it)."""
        now = int(time.time())
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._key(ref),
                    "status": {"S": "in_progress"},
                    "holder": {"S": holder},
                    "expires_at": {"N": str(now + LEASE_S)},
                },
                ConditionExpression="attribute_not_exists(pk) OR (#s = :p AND expires_at < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":p": {"S": "in_progress"}, ":now": {"N": str(now)}},
            )
            return "claimed"
        except self.ddb.exceptions.ConditionalCheckFailedException:
            item = self.ddb.get_item(TableName=self.table, Key=self._key(ref), ConsistentRead=True)
            status = item.get("Item", {}).get("status", {}).get("S")
            return "done" if status == "done" else "busy"

    def renew(self, ref: ObjectRef, holder: str) -> None:
        """Extend the lease (a continuation takes the object over)."""
        self.ddb.put_item(
            TableName=self.table,
            Item={
                **self._key(ref),
                "status": {"S": "in_progress"},
                "holder": {"S": holder},
                "expires_at": {"N": str(int(time.time()) + LEASE_S)},
            },
        )

    def finish_object(self, ref: ObjectRef) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item={
                **self._key(ref),
                "status": {"S": "done"},
                "expires_at": {"N": str(int(time.time()) + DONE_TTL_S)},
            },
        )

    def release(self, ref: ObjectRef) -> None:
        """Give the claim up after a failure, so the retry can take it at once."""
        self.ddb.delete_item(TableName=self.table, Key=self._key(ref))


# Kinesis keeps records for at most 365 days; a position outlives its records by a day.
POSITION_TTL_S = 366 * 24 * 3600
# Sequence numbers are decimal strings of up to 128 digits (Kinesis's API limit); padded to
# this width they compare as strings in a DynamoDB condition (its numbers hold 38 digits).
SEQUENCE_WIDTH = 128


def padded(sequence: str) -> str:
    return sequence.rjust(SEQUENCE_WIDTH, "0")


class Positions:
    """Per stream and shard, the last sequence number whose events are archived (or dead-
    lettered): `pos_file` for a consumer with no disk. Written only forward, conditionally:
        pk="position#<stream ARN>"  sk=<shard id>  sequence=<padded>  expires_at
    """

    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    @staticmethod
    def _key(stream: str, shard: str) -> dict[str, Any]:
        return {"pk": {"S": f"position#{stream}"}, "sk": {"S": shard}}

    def get(self, stream: str, shard: str) -> str | None:
        """The shard's position (unpadded), or None before its first archived batch."""
        item = self.ddb.get_item(
            TableName=self.table, Key=self._key(stream, shard), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return str(item["sequence"]["S"]).lstrip("0") or "0"

    def advance(self, stream: str, shard: str, sequence: str) -> bool:
        """Move the position forward to `sequence`; False when it is already there or past
        it (another batch of the shard got further: batches ran concurrently)."""
        seq = padded(sequence)
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._key(stream, shard),
                    "sequence": {"S": seq},
                    "expires_at": {"N": str(int(time.time()) + POSITION_TTL_S)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #s < :s",
                ExpressionAttributeNames={"#s": "sequence"},
                ExpressionAttributeValues={":s": {"S": seq}},
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True
