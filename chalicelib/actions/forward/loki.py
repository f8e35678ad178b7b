"""`forward: {to: http, format: loki}`: Grafana Loki's push API.

`POST /loki/api/v1/push` JSON, `{"streams": [{"stream": {labels}, "values":
[["<unix ns as a string>", "<line>"], ...]}]}`, one stream per label set, each
line the archive envelope.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import re2

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.common import Template
from chalicelib.actions.forward.http import HTTP_OPTIONS, HttpSink, Piece
from chalicelib.actions.forward.sink import register
from chalicelib.event import LogEvent
from chalicelib.options import Option

DEFAULT_LABELS = {"job": "sluice", "tag": "{tag}"}
# Loki's defaults: label values up to 2048 characters (`max_label_value_length`),
# 15 labels per stream (`max_label_names_per_series`).
LOKI_MAX_LABEL_VALUE = 2048
LOKI_MAX_LABELS = 15
LOKI_LABEL_NAME = re2.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _check_labels(v: dict[str, Any]) -> str | None:
    if not v or len(v) > LOKI_MAX_LABELS:
        return f"1-{LOKI_MAX_LABELS} labels (Loki's default limit per stream)"
    for name, value in v.items():
        if not isinstance(name, str) or not LOKI_LABEL_NAME.fullmatch(name):
            return f"label name {name!r}: [a-zA-Z_][a-zA-Z0-9_]*"
        if not isinstance(value, str) or not value:
            return f"label {name}: a text template such as '{{tag}}'"
    return None


@register
class LokiPush(HttpSink):
    format = "loki"
    summary = "Loki push"
    order = 32
    options: ClassVar[dict[str, Option]] = {
        **HTTP_OPTIONS,
        "labels": Option(
            dict,
            "Loki labels: name -> template (default {job: sluice, tag: '{tag}'})",
            check=_check_labels,
        ),
    }
    content_type = "application/json"
    path = "/loki/api/v1/push"

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        labels = opts.get("labels") or DEFAULT_LABELS
        self.labels = [(k, Template(v)) for k, v in sorted(labels.items())]

    def pieces(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Piece]:
        out = []
        for ev, line in encoded:
            key = tuple((k, t(ev)[:LOKI_MAX_LABEL_VALUE]) for k, t in self.labels)
            data = orjson.dumps([str(ev.time * 1_000_000), line.decode()])
            # Counted as if each piece carried its stream's labels: an upper bound.
            size = len(data) + 1 + sum(len(k) + len(v) + 8 for k, v in key)
            out.append(Piece(ev, data, key, size))
        return out

    def body(self, pieces: list[Piece]) -> bytes:
        streams: dict[Any, list[Piece]] = {}
        for p in pieces:
            streams.setdefault(p.key, []).append(p)
        parts = []
        for key, group in streams.items():
            # Oldest first within a stream: Loki before 2.4 (and any tenant with
            # unordered_writes off) refuses entries older than the stream's last.
            group.sort(key=lambda p: p.event.time)
            parts.append(
                b'{"stream":'
                + orjson.dumps(dict(key))
                + b',"values":['
                + b",".join(p.data for p in group)
                + b"]}"
            )
        return b'{"streams":[' + b",".join(parts) + b"]}"
