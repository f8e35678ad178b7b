"""The state table: small records with a TTL (`expires_at`), written conditionally.

Object claims make S3 re-deliveries idempotent:
    pk="object#<bucket>/<key>"  sk=<version or etag>  status=in_progress|done  expires_at
    holder  token  line offset base kind (where a continuation resumes)
A claim succeeds when no record exists, or when an in-progress lease has expired
(the invocation that held it died). A `done` record makes re-deliveries no-ops for
DONE_TTL_S. The conditional write is what makes this safe under concurrent
deliveries of the same object (S3 notifications are at-least-once).

A claim carries a random token. Handing an object to a continuation writes the position
reached and a new token (only while the old one is the claim's); the continuation message
carries that token, and taking the object over requires it, so a forged continuation (no
token, a guessed one) or a stale one (the object finished, or continued since) is refused
and can neither skip lines nor mark the object done: the position read is the table's.
"""

from __future__ import annotations

import secrets
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
QUEUED = "queued"  # the holder of an object handed to a continuation message


def new_token() -> str:
    """A claim token: 128 random bits, not guessable from anything a message shows."""
    return secrets.token_hex(16)


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

    def claim_object(self, ref: ObjectRef, holder: str, token: str = "") -> str:
        """'claimed', 'done' (already processed) or 'busy' (another invocation holds it).
        `token`: the claim's, which a continuation of this read must carry."""
        now = int(time.time())
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._key(ref),
                    "status": {"S": "in_progress"},
                    "holder": {"S": holder},
                    "expires_at": {"N": str(now + LEASE_S)},
                    **({"token": {"S": token}} if token else {}),
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

    def hand_off(self, ref: ObjectRef, token: str, position: dict[str, Any]) -> str | None:
        """Record where reading stopped and put the object in the queue's hands under a new
        token (returned), if `token` is still the claim's; None when it is not (the claim
        was taken over after its lease expired: that reader continues, not this one)."""
        new = new_token()
        fields = {k: {"S": str(v)} if k == "kind" else {"N": str(v)} for k, v in position.items()}
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._key(ref),
                    "status": {"S": "in_progress"},
                    "holder": {"S": QUEUED},
                    "token": {"S": new},
                    "expires_at": {"N": str(int(time.time()) + LEASE_S)},
                    **fields,
                },
                ConditionExpression="#s = :p AND #t = :t",
                ExpressionAttributeNames={"#s": "status", "#t": "token"},
                ExpressionAttributeValues={":p": {"S": "in_progress"}, ":t": {"S": token}},
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        return new

    def take_over(
        self, ref: ObjectRef, token: str | None, holder: str
    ) -> tuple[str, dict[str, Any] | None]:
        """A continuation takes the object: ('taken', the position the table holds) when
        `token` is the claim's and the object waits for it (or its last reader's lease
        expired); else ('busy', None) while another invocation reads it under this token,
        or ('refused: <why>', None): no token, another token, no claim, finished."""
        if not token:
            return "refused: the continuation carries no claim token", None
        now = int(time.time())
        try:
            item = self.ddb.update_item(
                TableName=self.table,
                Key=self._key(ref),
                UpdateExpression="SET holder = :h, expires_at = :e",
                ConditionExpression="#s = :p AND #t = :t AND (holder = :q OR expires_at < :now)",
                ExpressionAttributeNames={"#s": "status", "#t": "token"},
                ExpressionAttributeValues={
                    ":p": {"S": "in_progress"},
                    ":t": {"S": token},
                    ":q": {"S": QUEUED},
                    ":h": {"S": holder},
                    ":e": {"N": str(now + LEASE_S)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self.ddb.exceptions.ConditionalCheckFailedException:
            got = self.ddb.get_item(TableName=self.table, Key=self._key(ref), ConsistentRead=True)
            current = got.get("Item")
            if current is None:
                return "refused: no claim in progress for this object version", None
            if current.get("status", {}).get("S") == "done":
                return "refused: the object is already finished", None
            if current.get("token", {}).get("S") != token:
                return "refused: the token is not the object's current claim", None
            return "busy", None
        position: dict[str, Any] = {"kind": item.get("kind", {}).get("S", "")}
        for k in ("line", "offset", "base"):
            position[k] = int(item.get(k, {}).get("N", "0"))
        return "taken", position

    def hand_back(self, ref: ObjectRef, token: str) -> None:
        """A continuation that failed for a transient reason gives the object back to the
        queue under the same token and position, so its message's retry takes it again."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(ref),
                UpdateExpression="SET holder = :q",
                ConditionExpression="#t = :t AND #s = :p",
                ExpressionAttributeNames={"#s": "status", "#t": "token"},
                ExpressionAttributeValues={
                    ":q": {"S": QUEUED},
                    ":t": {"S": token},
                    ":p": {"S": "in_progress"},
                },
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass

    def finish_object(self, ref: ObjectRef, token: str | None = None) -> bool:
        """Mark the object done; with `token`, only while it is the claim's (False if not:
        the claim was taken over, and its reader finishes it)."""
        cond: dict[str, Any] = {}
        if token:
            cond = {
                "ConditionExpression": "#t = :t",
                "ExpressionAttributeNames": {"#t": "token"},
                "ExpressionAttributeValues": {":t": {"S": token}},
            }
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._key(ref),
                    "status": {"S": "done"},
                    "expires_at": {"N": str(int(time.time()) + DONE_TTL_S)},
                },
                **cond,
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

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
