"""HTTP body formats of the `forward` action, as the receiving tools document them.

Each format turns (event, envelope JSON) pairs into pieces, joins pieces into one
request body, and reads a 2xx response for per-item failures (only OpenSearch's
`_bulk` and Splunk HEC report any). Pieces are sized so a batch of them stays
under the format's body limit.

- jsonl: one envelope per line, `application/x-ndjson`.
- opensearch: `_bulk` NDJSON, an action line then the document, every line
  newline-terminated including the last (OpenSearch Bulk API). The document is
  the envelope with `@timestamp` first: index patterns and data streams key on it.
- loki: `POST /loki/api/v1/push` JSON, `{"streams": [{"stream": {labels},
  "values": [["<unix ns as a string>", "<line>"], ...]}]}`, one stream per label set.
- splunk: HEC `/services/collector/event`, event objects concatenated with nothing
  between them (HEC's documented batch form), `time` in epoch seconds with
  milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from chalicelib.actions.forward_common import MiB, Template
from chalicelib.event import LogEvent, format_time

DEFAULT_INDEX = "sluice-{tag}-{date}"
DEFAULT_LABELS = {"job": "sluice", "tag": "{tag}"}
# Loki's defaults: label values up to 2048 characters (`max_label_value_length`),
# 15 labels per stream (`max_label_names_per_series`).
LOKI_MAX_LABEL_VALUE = 2048
LOKI_MAX_LABELS = 15
LOKI_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# OpenSearch index names: lowercase, none of \ / * ? " < > | space , # : +, not
# starting with _ - +, at most 255 bytes.
NOT_INDEX = re.compile(r'[\\/*?"<>| ,#:+]')


@dataclass(slots=True)
class Piece:
    event: LogEvent
    data: bytes
    key: tuple[tuple[str, str], ...] = ()  # Loki label set
    size: int = 0


@dataclass(slots=True)
class ItemError:
    index: int
    reason: str
    retryable: bool


class Format:
    name = "jsonl"
    content_type = "application/x-ndjson"
    path = ""  # appended when the URL has no path of its own
    # 5 MiB per request: under Loki's default per-tenant burst (ingestion_burst_size_mb
    # 6 MB: a larger push gets 429 however often it is retried) and OpenSearch's
    # http.max_content_length (100 MB; 10 MiB on the smallest Amazon OpenSearch
    # Service instance types), and large enough for a thousand typical events.
    max_body = 5 * MiB

    def pieces(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Piece]:
        return [Piece(ev, line + b"\n", (), len(line) + 1) for ev, line in encoded]

    def body(self, pieces: list[Piece]) -> bytes:
        return b"".join(p.data for p in pieces)

    def check(self, status: int, body: bytes, pieces: list[Piece]) -> list[ItemError]:
        """Per-item failures reported inside a 2xx response."""
        return []


class OpenSearchBulk(Format):
    name = "opensearch"
    path = "/_bulk"

    def __init__(self, index: str | None, op: str) -> None:
        self.index = Template(index or DEFAULT_INDEX)
        self.op = op
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


class LokiPush(Format):
    name = "loki"
    content_type = "application/json"
    path = "/loki/api/v1/push"

    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = [(k, Template(v)) for k, v in sorted((labels or DEFAULT_LABELS).items())]

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
        streams: dict[tuple[tuple[str, str], ...], list[Piece]] = {}
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


class SplunkHec(Format):
    name = "splunk"
    content_type = "application/json"
    path = "/services/collector/event"
    # 1 MB keeps inside the smaller body limits HEC deployments set (limits.conf
    # [http_input] max_content_length); a 413 also splits a batch (forward_http).
    max_body = 1_000_000

    def __init__(self, sourcetype: str, index: str | None) -> None:
        tail = b',"sourcetype":' + orjson.dumps(sourcetype)
        if index:
            tail += b',"index":' + orjson.dumps(index)
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


def make(opts: dict[str, Any]) -> Format:
    fmt = opts.get("format") or "jsonl"
    if fmt == "opensearch":
        return OpenSearchBulk(opts.get("index"), opts.get("op") or "index")
    if fmt == "loki":
        return LokiPush(opts.get("labels"))
    if fmt == "splunk":
        return SplunkHec(opts.get("sourcetype") or "_json", opts.get("index"))
    return Format()
