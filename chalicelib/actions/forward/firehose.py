"""`forward: {to: firehose}`: Amazon Data Firehose, PutRecordBatch.

Each record is the archive envelope, newline-terminated: Firehose concatenates
records into one S3 object, and JSON lines is what Athena, Glue and the archive read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.aws import Item, Limits, put_all
from chalicelib.actions.forward.common import MiB, Outcome, Retry, envelopes
from chalicelib.actions.forward.sink import Sink, register
from chalicelib.bounded import Bounded
from chalicelib.event import LogEvent
from chalicelib.options import Option

# PutRecordBatch: 500 records, 4 MiB per request, 1,000 KiB per record before base64
# (botocore's firehose model: Data max 1024000; API reference).
FIREHOSE = Limits("Firehose", 500, 4 * MiB, 1_024_000)


# PutRecordBatch takes the name only: [a-zA-Z0-9_.-]{1,64}.
_NAME = Bounded(r"[a-zA-Z0-9_.-]", 64)


def _check_delivery_stream(v: str) -> str | None:
    if _NAME.fullmatch(v):
        return None
    return "a Firehose delivery stream name (1-64 of a-z A-Z 0-9 _ . -)"


@register
class FirehoseSink(Sink):
    to = "firehose"
    summary = "Firehose"
    order = 20
    options: ClassVar[dict[str, Option]] = {
        "delivery_stream": Option(
            str,
            "Firehose delivery stream name (to: firehose)",
            required=True,
            check=_check_delivery_stream,
        ),
    }

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        self.delivery_stream = opts["delivery_stream"]
        self.name = f"firehose {self.delivery_stream}"

    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        encoded, bad = envelopes(events)
        out = Outcome(failures=bad)
        items = [Item(ev, data + b"\n", "", len(data) + 1) for ev, data in encoded]
        put_all(items, self._put, FIREHOSE, retry, out)
        return out

    def _put(self, chunk: list[Item]) -> list[str | None]:
        resp = self.ctx.client("firehose").put_record_batch(
            DeliveryStreamName=self.delivery_stream, Records=[{"Data": it.data} for it in chunk]
        )
        return [r.get("ErrorCode") for r in resp["RequestResponses"]]

    def preview(self, events: list[LogEvent]) -> str:
        encoded, bad = envelopes(events[:1])
        if not encoded:
            return f"firehose: not sendable: {bad[0].reason}"
        return f"{self.name}: {len(encoded[0][1]) + 1:,} bytes"
