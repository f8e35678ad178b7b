"""`forward: {to: http, format: jsonl}`: one archive envelope per line, newline-terminated
(the last line too), `application/x-ndjson`, POSTed to the URL as given. The default
format of `to: http`."""

from __future__ import annotations

from chalicelib.actions.forward.http import HttpSink
from chalicelib.actions.forward.sink import register


@register
class JsonLines(HttpSink):
    format = "jsonl"
    summary = "JSON lines"
    order = 30
    default = True
