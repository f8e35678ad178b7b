"""`forward`: send a rule's events to Kinesis Data Streams, Firehose or an HTTP endpoint.

    actions:
      - forward: {to: kinesis, stream: app-logs, partition_key: "{tag}"}
      - forward: {to: firehose, delivery_stream: logs-to-s3}
      - forward: {to: http, url: "https://search.example", format: opensearch, secret: sluice/os}

Every destination receives the archive envelope (`{"tag","time","record","source","id"}`)
as JSON. Batches respect each service's limits, failed records or items are retried
with jittered backoff inside the invocation's time, and only the events still
undelivered are named in the ActionError, so only they are dead-lettered. The
destinations live in forward_aws (Kinesis, Firehose) and forward_http (with the body
formats in forward_formats), imported when first used.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

from chalicelib.actions import Action, Invocation, Option, register
from chalicelib.actions.forward_common import Retry, Template, envelopes
from chalicelib.actions.template import clip
from chalicelib.event import LogEvent

DESTINATIONS = ("kinesis", "firehose", "http")
FORMATS = ("jsonl", "opensearch", "loki", "splunk")
REQUIRED = {"kinesis": "stream", "firehose": "delivery_stream", "http": "url"}
# Options that belong to one destination (and, for http, to some formats only).
BELONGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stream": ("kinesis", ()),
    "partition_key": ("kinesis", ()),
    "delivery_stream": ("firehose", ()),
    "url": ("http", ()),
    "format": ("http", ()),
    "secret": ("http", ()),
    "timeout_s": ("http", ()),
    "index": ("http", ("opensearch", "splunk")),
    "op": ("http", ("opensearch",)),
    "labels": ("http", ("loki",)),
    "sourcetype": ("http", ("splunk",)),
}
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _one_of(*allowed: str) -> Any:
    def check(v: str) -> str | None:
        return None if v in allowed else f"one of {', '.join(allowed)}"

    return check


def _check_stream(v: str) -> str | None:
    # botocore's kinesis model: StreamName [a-zA-Z0-9_.-]{1,128}; StreamARN pattern.
    name = re.fullmatch(r"[a-zA-Z0-9_.-]{1,128}", v)
    arn = re.fullmatch(r"arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/[a-zA-Z0-9_.-]{1,128}", v)
    return None if name or arn else "a Kinesis stream name or ARN"


def _check_delivery_stream(v: str) -> str | None:
    # PutRecordBatch takes the name only: [a-zA-Z0-9_.-]{1,64}.
    ok = re.fullmatch(r"[a-zA-Z0-9_.-]{1,64}", v)
    return None if ok else "a Firehose delivery stream name (1-64 of a-z A-Z 0-9 _ . -)"


def _check_url(v: str) -> str | None:
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", v):
        return "an http(s) URL"
    if "@" in parts.netloc:
        return "no credentials in the URL: put them in the secret"
    return None


def _check_labels(v: dict[str, Any]) -> str | None:
    from chalicelib.actions.forward_formats import LOKI_LABEL_NAME, LOKI_MAX_LABELS

    if not v or len(v) > LOKI_MAX_LABELS:
        return f"1-{LOKI_MAX_LABELS} labels (Loki's default limit per stream)"
    for name, value in v.items():
        if not isinstance(name, str) or not LOKI_LABEL_NAME.fullmatch(name):
            return f"label name {name!r}: [a-zA-Z_][a-zA-Z0-9_]*"
        if not isinstance(value, str) or not value:
            return f"label {name}: a text template such as '{{tag}}'"
    return None


def _check_timeout(v: float) -> str | None:
    return None if not isinstance(v, bool) and 1 <= v <= 60 else "seconds, 1-60"


def _check_retries(v: int) -> str | None:
    return None if 0 <= v <= 10 else "0-10"


@register
class ForwardAction(Action):
    name = "forward"
    options: ClassVar[dict[str, Option]] = {
        "to": Option(
            str,
            "destination: kinesis, firehose or http",
            required=True,
            check=_one_of(*DESTINATIONS),
        ),
        "stream": Option(str, "Kinesis stream name or ARN (to: kinesis)", check=_check_stream),
        "partition_key": Option(
            str, "Kinesis partition key template (default {tag})", default="{tag}"
        ),
        "delivery_stream": Option(
            str, "Firehose delivery stream name (to: firehose)", check=_check_delivery_stream
        ),
        "url": Option(
            str, "endpoint URL (to: http); with no path, the format's own", check=_check_url
        ),
        "format": Option(
            str,
            "HTTP body: jsonl, opensearch, loki or splunk",
            default="jsonl",
            check=_one_of(*FORMATS),
        ),
        "index": Option(
            str, "OpenSearch index template (default sluice-{tag}-{date}) or Splunk index"
        ),
        "op": Option(
            str,
            "OpenSearch bulk action: index, or create for data streams",
            default="index",
            check=_one_of("index", "create"),
        ),
        "labels": Option(
            dict,
            "Loki labels: name -> template (default {job: sluice, tag: '{tag}'})",
            check=_check_labels,
        ),
        "sourcetype": Option(str, "Splunk sourcetype (default _json)", default="_json"),
        "secret": Option(str, "Secrets Manager secret or SSM parameter (/name) with the auth"),
        "timeout_s": Option(
            (int, float),
            "seconds per HTTP request (default 10)",
            default=10,
            check=_check_timeout,
        ),
        "max_retries": Option(
            int, "retries of what failed (default 3)", default=3, check=_check_retries
        ),
    }

    @classmethod
    def validate_options(cls, opts: dict[str, Any]) -> list[tuple[str, str]]:
        """What single options cannot see: the destination's required option, options
        that belong to another destination or format, secrets over plain HTTP."""
        from chalicelib.actions.forward_formats import NOT_INDEX

        to = opts["to"]
        fmt = opts.get("format", "jsonl")
        problems = []
        if REQUIRED[to] not in opts:
            problems.append((REQUIRED[to], f"required with to: {to}"))
        for key in sorted(opts):
            dest, formats = BELONGS.get(key, (to, ()))
            if dest != to:
                problems.append((key, f"applies to to: {dest} only"))
            elif formats and fmt not in formats:
                problems.append((key, f"applies to format: {' or '.join(formats)} only"))
        index = opts.get("index")
        if isinstance(index, str) and fmt == "splunk" and "{" in index:
            problems.append(("index", "a Splunk index is a fixed name (indexes must exist)"))
        if isinstance(index, str) and fmt == "opensearch":
            fixed = re.sub(r"\{[^}]*\}", "", index)
            if NOT_INDEX.search(fixed) or not index.strip():
                problems.append(("index", 'index names exclude \\ / * ? " < > | space , # : +'))
        url = opts.get("url")
        if to == "http" and opts.get("secret") and isinstance(url, str):
            parts = urlsplit(url)
            if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
                problems.append(("url", "https is required to send a secret (http: loopback only)"))
        return problems

    def __init__(self, rule_id: str, opts: dict[str, Any], runtime: Any) -> None:
        super().__init__(rule_id, opts, runtime)
        self._sink: Any = None

    def sink(self) -> Any:
        """The destination, built on first use (its module, clients and secret with it)."""
        if self._sink is None:
            o = self.opts
            if o["to"] == "kinesis":
                from chalicelib.actions.forward_aws import KinesisSink

                self._sink = KinesisSink(
                    self.runtime.clients.get("kinesis"), o["stream"], o["partition_key"]
                )
            elif o["to"] == "firehose":
                from chalicelib.actions.forward_aws import FirehoseSink

                self._sink = FirehoseSink(
                    self.runtime.clients.get("firehose"), o["delivery_stream"]
                )
            else:
                from chalicelib.actions.forward_formats import make
                from chalicelib.actions.forward_http import HttpSink

                self._sink = HttpSink(
                    self.runtime, o["url"], make(o), o["secret"], float(o["timeout_s"])
                )
        return self._sink

    def deliver(self, events: list[LogEvent], inv: Invocation) -> int:
        """Forward the batch; return the number of events delivered."""
        if not events:
            return 0
        sink = self.sink()
        out = sink.send(events, Retry(self.opts["max_retries"], inv.remaining_ms))
        if out.failures:
            raise out.error(self.name, sink.name)
        return out.delivered

    def preview(self, events: list[LogEvent]) -> str:
        """What the destination would receive for the first event (no I/O)."""
        encoded, bad = envelopes(events[:1])
        if not encoded:
            return f"{self.opts['to']}: not sendable: {bad[0].reason}"
        ev, data = encoded[0]
        o = self.opts
        if o["to"] == "kinesis":
            key = Template(o["partition_key"])(ev)[:256] or "-"
            return f"kinesis {o['stream']}: partition key {key!r}, {len(data):,} bytes"
        if o["to"] == "firehose":
            return f"firehose {o['delivery_stream']}: {len(data) + 1:,} bytes"
        from chalicelib.actions.forward_formats import make

        fmt = make(o)
        body = fmt.body(fmt.pieces(encoded)).decode()
        return f"http {fmt.name} {urlsplit(o['url']).hostname}: {clip(body, 300)}"
