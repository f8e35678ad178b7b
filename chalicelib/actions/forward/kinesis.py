"""`forward: {to: kinesis}`: Kinesis Data Streams, PutRecords.

Each record is the archive envelope; the partition key a template (default the
tag, so one tag's events stay in order on one shard).
"""

from __future__ import annotations

from typing import Any, ClassVar

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.aws import Item, Limits, put_all
from chalicelib.actions.forward.common import MiB, Outcome, Retry, Template, envelopes
from chalicelib.actions.forward.sink import Sink, register
from chalicelib.bounded import Bounded
from chalicelib.event import LogEvent
from chalicelib.options import Option

# PutRecords: 500 records and 5 MiB per request, 1 MiB per record, partition keys
# included (Kinesis Data Streams quotas; moto 5.2 enforces the same). Since late
# 2025 a stream can be raised to 10 MiB records (UpdateMaxRecordSize), but 1 MiB is
# every stream's default and stays valid for all of them.
KINESIS = Limits("Kinesis", 500, 5 * MiB, 1 * MiB)


# botocore's kinesis model: StreamName [a-zA-Z0-9_.-]{1,128}; StreamARN pattern.
_NAME = Bounded(r"[a-zA-Z0-9_.-]", 128)
_ARN = Bounded(r"[a-zA-Z0-9_.-]", 128, head=r"arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/")


def _check_stream(v: str) -> str | None:
    return None if _NAME.fullmatch(v) or _ARN.fullmatch(v) else "a Kinesis stream name or ARN"


@register
class KinesisSink(Sink):
    to = "kinesis"
    summary = "Kinesis Data Streams"
    order = 10
    options: ClassVar[dict[str, Option]] = {
        "stream": Option(
            str, "Kinesis stream name or ARN (to: kinesis)", required=True, check=_check_stream
        ),
        "partition_key": Option(
            str, "Kinesis partition key template (default {tag})", default="{tag}"
        ),
    }

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        stream = opts["stream"]
        self.target = {"StreamARN" if stream.startswith("arn:") else "StreamName": stream}
        self.partition_key = Template(opts.get("partition_key") or "{tag}")
        self.name = f"kinesis {stream}"

    def items(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Item]:
        out = []
        for ev, data in encoded:
            # 1-256 Unicode characters (PutRecords model); a missing field renders as "-".
            key = self.partition_key(ev)[:256] or "-"
            out.append(Item(ev, data, key, len(data) + len(key.encode())))
        return out

    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        encoded, bad = envelopes(events)
        out = Outcome(failures=bad)
        put_all(self.items(encoded), self._put, KINESIS, retry, out)
        return out

    def _put(self, chunk: list[Item]) -> list[str | None]:
        resp = self.ctx.client("kinesis").put_records(
            Records=[{"Data": it.data, "PartitionKey": it.key} for it in chunk], **self.target
        )
        return [r.get("ErrorCode") for r in resp["Records"]]

    def preview(self, events: list[LogEvent]) -> str:
        encoded, bad = envelopes(events[:1])
        if not encoded:
            return f"kinesis: not sendable: {bad[0].reason}"
        (it,) = self.items(encoded)
        return f"{self.name}: partition key {it.key!r}, {len(it.data):,} bytes"
