"""The ledger invariant, checked by reading back where events can end up.

Nothing here trusts what the handlers report. After a scenario, every archive
object is read from the (moto) bucket, every dead-letter message from the queue
(spilled ones from `deadletter/` in the bucket), every message the local Slack
endpoint accepted, and, when a scenario forwards or pages, the Kinesis stream and
the SQS queue subscribed to the SNS topic. Then, per input event id:

    archived lines + dead-lettered (stages decode/archive/read) + dropped-by-rule == 1

A `0` is a lost event, anything above `1` a duplicate; an archive line whose id
appears twice anywhere in the archive (after every retry and replay of the scenario)
is a duplicate too, whether or not the scenario sent that id. Events whose alert or
forward failed are legitimately archived AND in the queue under stage `action`: those
are counted apart, and must be events that were kept. Alerts are traced by a token
each test event carries in its message (`evt-0007`): a token in two Slack messages (or
two SNS messages, or an id twice in the forward stream) is a duplicate alert.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chalicelib.actions.archive import read_lines

TOKEN = re.compile(r"\bevt-\d{4}\b")


@dataclass
class Inputs:
    """What went in: event id -> input events it stands for; ids the rules drop; inputs
    that never became events (undecodable payloads and records); token -> event id."""

    units: dict[str, int] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    raw_units: int = 0
    tokens: dict[str, str] = field(default_factory=dict)

    def __iadd__(self, other: Inputs) -> Inputs:
        self.units.update(other.units)
        self.dropped |= other.dropped
        self.raw_units += other.raw_units
        self.tokens.update(other.tokens)
        return self

    @property
    def events_in(self) -> int:
        return sum(self.units.values()) + self.raw_units


@dataclass
class Figures:
    """One scenario's outcome, read back (what `make faults` sums)."""

    events_in: int = 0
    archived: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    # the detail tests assert on
    archive_ids: Counter[str] = field(default_factory=Counter)
    dlq_ids: Counter[str] = field(default_factory=Counter)  # stages decode/archive/read
    action_ids: Counter[str] = field(default_factory=Counter)  # stage action
    alerted: Counter[str] = field(default_factory=Counter)  # token -> Slack messages
    paged: Counter[str] = field(default_factory=Counter)  # token -> SNS messages
    forwarded: Counter[str] = field(default_factory=Counter)  # event id -> stream records
    dlq_messages: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "events_in": self.events_in,
            "archived": self.archived,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "lost": self.lost,
            "duplicates": self.duplicates,
        }

    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and not self.problems

    def explain(self) -> str:
        return f"{self.as_dict()} problems={self.problems[:10]}"


class Readback:
    """Reads the mocked account and the local Slack endpoint. Dead letters are taken off
    the queue as they are read (kept here), so several reads in one test see them all."""

    def __init__(
        self,
        aws: Any,
        slack: Any = None,
        *,
        pager_queue_url: str | None = None,
        stream: str | None = None,
    ) -> None:
        self.aws = aws
        self.slack = slack
        self.pager_queue_url = pager_queue_url
        self.stream = stream
        self._dlq: list[dict[str, Any]] = []
        self._pages: list[str] = []

    # ------------------------------------------------------------- sources of truth
    def archive_lines(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in self.aws.keys("archive/"):
            out.extend(read_lines(self.aws.get_object(key)["Body"].read()))
        return out

    def dead_letters(self) -> list[dict[str, Any]]:
        for body in _drain(self.aws.sqs, self.aws.dlq_url):
            try:
                msg = json.loads(body)
            except json.JSONDecodeError:  # a letter nobody could read: one unit, kept
                msg = {"unreadable": body}
            if "events_s3" in msg:  # spilled: the events are in the bucket
                key = msg["events_s3"].split("/", 3)[3]
                msg["events"] = json.loads(self.aws.get_object(key)["Body"].read())["events"]
            self._dlq.append(msg)
        return list(self._dlq)

    def slack_messages(self) -> list[dict[str, Any]]:
        return self.slack.messages() if self.slack is not None else []

    def pages(self) -> list[str]:
        """Messages SNS delivered to the queue subscribed to the topic."""
        if self.pager_queue_url:
            for body in _drain(self.aws.sqs, self.pager_queue_url):
                self._pages.append(json.loads(body)["Message"])
        return list(self._pages)

    def forwarded(self) -> list[dict[str, Any]]:
        """Every record in the forward stream (all shards), decoded."""
        if not self.stream:
            return []
        kinesis = self.aws.kinesis
        out = []
        shards = kinesis.list_shards(StreamName=self.stream)["Shards"]
        for shard in shards:
            it = kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while it:
                page = kinesis.get_records(ShardIterator=it, Limit=1000)
                out.extend(json.loads(r["Data"]) for r in page["Records"])
                if not page["Records"]:
                    break
                it = page.get("NextShardIterator")
        return out

    # ------------------------------------------------------------- the invariant
    def settle(self, inputs: Inputs) -> Figures:
        """Read everything back and account for every input event."""
        f = Figures(events_in=inputs.events_in)
        lines = self.archive_lines()
        f.archive_ids = Counter(str(line["id"]) for line in lines)
        raw_units = 0
        for msg in self.dead_letters():
            f.dlq_messages.append(msg)
            ids = [str(e["id"]) for e in msg.get("events") or []]
            if msg.get("stage") == "action":
                f.action_ids.update(ids)
            elif ids:
                f.dlq_ids.update(ids)
            else:  # raw input, or an object left in S3: its `count` units
                raw_units += int(msg.get("count") or 1)
        for token, n in self._tokens(m for m in self.slack_messages()).items():
            f.alerted[token] = n
        f.paged = Counter(t for page in self.pages() for t in set(TOKEN.findall(page)))
        f.forwarded = Counter(str(r.get("id")) for r in self.forwarded())

        for id_, units in inputs.units.items():
            placed = f.archive_ids[id_] + f.dlq_ids[id_] + (1 if id_ in inputs.dropped else 0)
            if placed == 0:
                f.lost += units
                f.problems.append(f"lost {id_}")
            elif placed > 1:
                f.duplicates += placed - 1
                f.problems.append(f"{id_} placed {placed} times")
            if f.archive_ids[id_]:
                f.archived += units
            elif f.dlq_ids[id_]:
                f.dead_lettered += units
            elif id_ in inputs.dropped:
                f.dropped += units
        f.dead_lettered += min(raw_units, inputs.raw_units)
        if raw_units < inputs.raw_units:
            f.lost += inputs.raw_units - raw_units
            f.problems.append(f"{inputs.raw_units - raw_units} undecodable input(s) lost")
        elif raw_units > inputs.raw_units:
            f.duplicates += raw_units - inputs.raw_units
            f.problems.append(f"{raw_units - inputs.raw_units} extra raw dead letter(s)")

        for id_, n in f.archive_ids.items():  # the whole archive, not only the inputs' ids
            if n > 1 and id_ not in inputs.units:
                f.duplicates += n - 1
                f.problems.append(f"{id_} archived {n} times")
        strays = set(f.archive_ids) | set(f.dlq_ids) | set(f.action_ids)
        strays -= set(inputs.units)
        if strays:
            f.problems.append(f"ids nobody sent: {sorted(strays)[:5]}")
        for id_ in f.action_ids:  # a failed action's events are still kept (or dropped)
            if id_ in inputs.units and not (
                f.archive_ids[id_] or f.dlq_ids[id_] or id_ in inputs.dropped
            ):
                f.problems.append(f"{id_} only in the queue under stage action")
        for name, seen in (("slack", f.alerted), ("sns", f.paged)):
            for token, n in seen.items():
                if n > 1:
                    f.duplicates += n - 1
                    f.problems.append(f"{token} alerted {n} times on {name}")
        for id_, n in f.forwarded.items():
            if n > 1:
                f.duplicates += n - 1
                f.problems.append(f"{id_} forwarded {n} times")
        return f

    @staticmethod
    def _tokens(messages: Any) -> Counter[str]:
        """token -> number of Slack messages showing it (blocks and fallback text)."""
        out: Counter[str] = Counter()
        for msg in messages:
            texts = [msg.get("text", ""), json.dumps(msg.get("blocks", []))]
            out.update(set(TOKEN.findall(" ".join(texts))))
        return out


def _drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
