"""`forward: {to: http, format: splunk}`: Splunk HTTP Event Collector.

`/services/collector/event`, event objects concatenated with nothing between them
(HEC's documented batch form), `time` in epoch seconds with milliseconds, `source`
the tag, `host` the record's or where the event came from. Bare tokens in the
secret are sent as `Splunk <token>`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.http import HTTP_OPTIONS, HttpSink, ItemError, Piece
from chalicelib.actions.forward.sink import register
from chalicelib.event import LogEvent
from chalicelib.options import Option


def _check_index(v: str) -> str | None:
    return "a Splunk index is a fixed name (indexes must exist)" if "{" in v else None


@register
class SplunkHec(HttpSink):
    format = "splunk"
    summary = "Splunk HEC"
    order = 33
    options: ClassVar[dict[str, Option]] = {
        **HTTP_OPTIONS,
        "index": Option(str, "Splunk index (a fixed name)", check=_check_index),
        "sourcetype": Option(str, "Splunk sourcetype (default _json)", default="_json"),
    }
    content_type = "application/json"
    path = "/services/collector/event"
    auth_scheme = "Splunk"
    # 1 MB keeps inside the smaller body limits HEC deployments set (limits.conf
    # [http_input] max_content_length); a 413 also splits a batch.
    max_body = 1_000_000

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        tail = b',"sourcetype":' + orjson.dumps(opts.get("sourcetype") or "_json")
        if opts.get("index"):
            tail += b',"index":' + orjson.dumps(opts["index"])
        self._tail = tail + b',"event":'

    def pieces(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Piece]:
        out = []
        for ev, line in encoded:
            s, ms = divmod(ev.time, 1000)
            data = b"".join(
                (
                    b'{"time":',
                    f"{s}.{ms:03d}".encode(),
                    b',"host":',
                    orjson.dumps(hec_host(ev)),
                    b',"source":',
                    orjson.dumps(ev.tag),
                    self._tail,
                    line,
                    b"}",
                )
            )
            out.append(Piece(ev, data, (), len(data)))
        return out

    def check(self, status: int, body: bytes, pieces: list[Piece]) -> list[ItemError]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return []  # 2xx is HEC's success; the JSON text is informative only
        code = doc.get("code") if isinstance(doc, dict) else None
        if code in (None, 0):
            return []
        reason = f"HEC code {code}: {str(doc.get('text', ''))[:160]}"
        return [ItemError(i, reason, False) for i in range(len(pieces))]


def hec_host(ev: LogEvent) -> str:
    """The record's `host` when it has one, else where the event came from."""
    host = ev.record.get("host")
    if isinstance(host, str) and host:
        return host
    src = ev.source
    return str(src.get("log_group") or src.get("stream") or src.get("bucket") or "sluice")
