"""The dead-letter queue: what could not be decoded or delivered, with the reason.

Message body (JSON):
    {"version": 1, "reason": "...", "stage": "decode|archive|action", "action": "slack",
     "rule": "computer-alerts", "invocation": "<request id>", "function": "cloudwatch_logs",
     "time": "...Z", "count": N, "events": [<archive envelope>, ...]}
or, for input that never became events, `"raw": <base64 of the payload bytes>`.
SQS takes at most 256 KiB a message, so events are split across messages, and a
single item too large for one message (a whole undecodable payload) is stored
in the archive bucket under `deadletter/` with the message pointing at it.
If the queue itself fails, the error propagates: the trigger retries the
invocation rather than Sluice losing the events.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from chalicelib.event import UNENCODABLE, LogEvent, format_time

# 256 KiB SQS limit, less room for the envelope fields and attribute overhead.
MAX_BODY = 240 * 1024
PREFIX = "deadletter"


class DeadLetters:
    def __init__(self, sqs: Any, queue_url: str, s3: Any, bucket: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.s3 = s3
        self.bucket = bucket
        self._n = 0

    def send_events(
        self,
        events: list[LogEvent],
        reason: str,
        *,
        stage: str,
        invocation: str,
        function: str,
        action: str | None = None,
        rule: str | None = None,
        action_index: int | None = None,
    ) -> int:
        """Dead-letter events; returns the number of SQS messages sent."""
        head = self._head(reason, stage, invocation, function, action, rule)
        if action_index is not None:
            head["action_index"] = action_index  # which of the rule's actions, for replay
        # The envelope around the lines counts too: without it a chunk filled to
        # MAX_BODY came out a few hundred bytes over and was spilled to S3 whole.
        base = len(orjson.dumps({**head, "count": len(events)})) + len(',"events":[]')
        chunk: list[bytes] = []
        size = base
        sent = 0
        for ev in events:
            line = _dumps(ev.envelope())
            if chunk and size + len(line) > MAX_BODY:
                sent += self._send_chunk(head, chunk)
                chunk, size = [], base
            chunk.append(line)
            size += len(line) + 1
        if chunk:
            sent += self._send_chunk(head, chunk)
        return sent

    def send_raw(
        self,
        raw: bytes,
        reason: str,
        *,
        stage: str,
        invocation: str,
        function: str,
        origin: dict[str, Any] | None = None,
    ) -> int:
        """Dead-letter input that never became events; `origin` says where it came from
        (e.g. a Kinesis record's stream, shard and sequence number)."""
        head = self._head(reason, stage, invocation, function, None, None)
        head["count"] = 1
        if origin:
            head["origin"] = origin
        encoded = base64.b64encode(raw).decode()
        if len(encoded) + 1024 > MAX_BODY:
            key = self._spill(invocation, raw)
            head["raw_s3"] = f"s3://{self.bucket}/{key}"
            head["raw_bytes"] = len(raw)
        else:
            head["raw"] = encoded
        self._put(_dumps(head))
        return 1

    def send_reference(
        self,
        reason: str,
        *,
        stage: str,
        invocation: str,
        function: str,
        origin: dict[str, Any],
        count: int = 1,
    ) -> int:
        """Dead-letter input that stays where it is (an S3 object): its address and the reason."""
        head = self._head(reason, stage, invocation, function, None, None)
        head["count"] = count
        head["origin"] = origin
        self._put(_dumps(head))
        return 1

    def _head(
        self,
        reason: str,
        stage: str,
        invocation: str,
        function: str,
        action: str | None,
        rule: str | None,
    ) -> dict[str, Any]:
        return {
            "version": 1,
            "reason": reason[:2000],
            "stage": stage,
            "action": action,
            "rule": rule,
            "invocation": invocation,
            "function": function,
            "time": format_time(int(time.time() * 1000)),
        }

    def _send_chunk(self, head: dict[str, Any], lines: list[bytes]) -> int:
        body = (
            orjson.dumps({**head, "count": len(lines)})[:-1]
            + b',"events":['
            + b",".join(lines)
            + b"]}"
        )
        if len(body) > MAX_BODY:  # one event alone above the limit (a 256 KB message)
            key = self._spill(head["invocation"], body)
            body = orjson.dumps(
                {**head, "count": len(lines), "events_s3": f"s3://{self.bucket}/{key}"}
            )
        self._put(body)
        return 1

    def _spill(self, invocation: str, data: bytes) -> str:
        self._n += 1
        key = f"{PREFIX}/{time.strftime('%Y-%m-%d', time.gmtime())}/{invocation}-{self._n}.bin"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def _put(self, body: bytes) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body.decode())


def _dumps(doc: dict[str, Any]) -> bytes:
    """orjson, or the standard library for what orjson refuses (integers beyond 64
    bits a transform set, nesting past orjson's 254 levels), or, when neither can write
    it, the envelope with the parts that failed as JSON text (`json_text`, flagged
    `unencodable`): the dead-letter queue must take anything the archive refused."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS, default=str)
    except UNENCODABLE:
        pass
    import json

    try:
        return json.dumps(doc, default=str, ensure_ascii=False).encode()
    except UNENCODABLE:
        pass
    safe: dict[str, Any] = {"unencodable": True}
    for k, v in doc.items():
        try:
            orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS, default=str)
            safe[str(k)] = v
        except UNENCODABLE:
            safe[str(k)] = {"json_text": json_text(v)}
    return orjson.dumps(safe, option=orjson.OPT_NON_STR_KEYS, default=str)


def json_text(value: Any) -> str:
    """`value` as JSON text, at any depth (iterative: no recursion limit), integers of
    any size; keys and other values that are not JSON become their text."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, _Lit):
            out.append(v.text)
        elif isinstance(v, dict):
            items: list[Any] = [_Lit("{")]
            for i, (k, x) in enumerate(v.items()):
                items.append(_Lit(("," if i else "") + orjson.dumps(str(k)).decode() + ":"))
                items.append(x)
            items.append(_Lit("}"))
            stack.extend(reversed(items))
        elif isinstance(v, list | tuple):
            items = [_Lit("[")]
            for i, x in enumerate(v):
                if i:
                    items.append(_Lit(","))
                items.append(x)
            items.append(_Lit("]"))
            stack.extend(reversed(items))
        elif isinstance(v, bool) or v is None or isinstance(v, float | str):
            out.append(orjson.dumps(v).decode())
        elif isinstance(v, int):
            out.append(str(v))
        else:
            out.append(orjson.dumps(str(v)).decode())
    return "".join(out)


class _Lit:
    """Text `json_text` writes as it is (punctuation between values)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
