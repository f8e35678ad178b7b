"""`forward: {to: http, format: opensearch}`: OpenSearch/Elasticsearch `_bulk`.

NDJSON, an action line then the document, every line newline-terminated including
the last (OpenSearch Bulk API). The document is the envelope with `@timestamp`
first: index patterns and data streams key on it. `_id` is the event id, so `index`
is idempotent; per-item failures in the 2xx response are retried (429, 5xx) or
failed alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import re2

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.common import Template
from chalicelib.actions.forward.http import HTTP_OPTIONS, HttpSink, ItemError, Piece
from chalicelib.actions.forward.sink import register
from chalicelib.event import LogEvent, format_time
from chalicelib.options import Option

# Not `logs-…`: Elasticsearch 8's built-in `logs-*-*` template turns such names into
# data streams, which refuse `index` actions.
DEFAULT_INDEX = "sluice-{tag}-{date}"
# OpenSearch index names: lowercase, none of \ / * ? " < > | space , # : +, not
# starting with _ - +, at most 255 bytes.
NOT_INDEX = re2.compile(r'[\\/*?"<>| ,#:+]')


def _check_index(v: str) -> str | None:
    fixed = re2.sub(r"\{[^}]*\}", "", v)  # the template's fields render to cleaned text
    if NOT_INDEX.search(fixed) or not v.strip():
        return 'index names exclude \\ / * ? " < > | space , # : +'
    return None


def _one_of(*allowed: str) -> Any:
    def check(v: str) -> str | None:
        return None if v in allowed else f"one of {', '.join(allowed)}"

    return check


@register
class OpenSearchBulk(HttpSink):
    format = "opensearch"
    summary = "OpenSearch/Elasticsearch _bulk"
    order = 31
    options: ClassVar[dict[str, Option]] = {
        **HTTP_OPTIONS,
        "index": Option(
            str, "OpenSearch index template (default sluice-{tag}-{date})", check=_check_index
        ),
        "op": Option(
            str,
            "OpenSearch bulk action: index, or create for data streams",
            default="index",
            check=_one_of("index", "create"),
        ),
    }
    path = "/_bulk"

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        self.index = Template(opts.get("index") or DEFAULT_INDEX)
        self.op = opts.get("op") or "index"
        self._names: dict[str, bytes] = {}

    def index_name(self, ev: LogEvent) -> bytes:
        raw = self.index(ev)
        name = self._names.get(raw)
        if name is None:
            clean = NOT_INDEX.sub("_", raw.lower()).lstrip("_-+")[:255] or "sluice"
            if len(self._names) > 4096:
                self._names.clear()
            name = self._names[raw] = orjson.dumps(clean)
        return name

    def pieces(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Piece]:
        out = []
        head = b'{"' + self.op.encode() + b'":{"_index":'
        for ev, line in encoded:
            data = b"".join(
                (
                    head,
                    self.index_name(ev),
                    b',"_id":',
                    orjson.dumps(ev.id),
                    b'}}\n{"@timestamp":"',
                    format_time(ev.time).encode(),
                    b'",',
                    line[1:],
                    b"\n",
                )
            )
            out.append(Piece(ev, data, (), len(data)))
        return out

    def check(self, status: int, body: bytes, pieces: list[Piece]) -> list[ItemError]:
        try:
            doc = orjson.loads(body)
            if not doc.get("errors"):
                return []
            items = doc["items"]
            if len(items) != len(pieces):
                raise ValueError(f"{len(items)} items for {len(pieces)} actions")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
            # `index` with our _id is idempotent, so a replay cannot duplicate.
            reason = f"unreadable _bulk response: {type(e).__name__}"
            return [ItemError(i, reason, True) for i in range(len(pieces))]
        errors = []
        for i, item in enumerate(items):
            result: dict[str, Any] = next(iter(item.values()), {}) if item else {}
            st = int(result.get("status") or 0)
            if 200 <= st < 300 or (st == 409 and self.op == "create"):
                continue  # 409 on create: indexed by an earlier attempt whose answer was lost
            err = result.get("error") or {}
            kind = err.get("type", "error") if isinstance(err, dict) else str(err)
            text = str(err.get("reason", ""))[:160] if isinstance(err, dict) else ""
            errors.append(
                ItemError(i, f"_bulk item {st} {kind}: {text}".rstrip(": "), st == 429 or st >= 500)
            )
        return errors
