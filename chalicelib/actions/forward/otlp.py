"""`forward: {to: http, format: otlp}`: OpenTelemetry logs over OTLP/HTTP, JSON encoding.

The body is an `ExportLogsServiceRequest` in OTLP's JSON encoding (the proto3 JSON
mapping with OTLP's deviations: lowerCamelCase keys, enums as integers, 64-bit
integers as decimal strings), gzip-compressed (`Content-Encoding: gzip`; every OTLP
server must accept it), POSTed to `/v1/logs` when the URL has no path:

    {"resourceLogs": [{"resource": {"attributes": [...]},          <- event.source
                       "scopeLogs": [{"scope": {"name": "sluice", "version": ...},
                                      "logRecords": [{"timeUnixNano": "...",
                                                      "observedTimeUnixNano": "...",
                                                      "severityNumber": 17,   <- level
                                                      "severityText": "ERROR",
                                                      "body": {"stringValue": ...},  <- message
                                                      "attributes": [...]}]}]}]}  <- the rest

Resource attributes follow the semantic conventions where they exist: `cloud.provider`
(aws), `cloud.account.id`, `cloud.region`; `aws.log.group.names`/`arns`,
`aws.log.stream.names`/`arns` for CloudWatch (and `cloud.platform`, `faas.name`,
`service.name` for a Lambda function's group); `aws.s3.bucket`, `aws.s3.key`;
`aws.kinesis.stream_name`; plus `sluice.source.kind`. Source fields that vary per
event (line, shard, sequence...) become `sluice.source.<name>` log attributes, next
to `sluice.tag` and `log.record.uid` (the event id: a receiver may drop repeats).

Responses, as the OTLP/HTTP specification says: 429, 502, 503 and 504 are retried
(Retry-After honoured, else jittered backoff), as are transport errors; every other
4xx/5xx is final, 413 included. A 200 whose `partialSuccess.rejectedLogRecords` is
above zero is not retried: the server does not say which records it refused, so
the request's events are dead-lettered with its `errorMessage`, and that number is
counted as failed.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

import orjson

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.common import Failure
from chalicelib.actions.forward.http import HttpSink, Piece
from chalicelib.actions.forward.sink import register
from chalicelib.event import LogEvent
from chalicelib.template import clip

SCOPE = {"name": "sluice", "version": "0.1.0"}
# OTLP/HTTP "Retryable Response Codes": these SHOULD be retried, all others MUST NOT.
RETRYABLE = frozenset({429, 502, 503, 504})
_INT64 = 2**63

# SeverityNumber from `level`: the data model's ranges (TRACE 1-4, DEBUG 5-8, INFO
# 9-12, WARN 13-16, ERROR 17-20, FATAL 21-24) and its Appendix B example mappings
# (syslog, Windows Event Log, log4j, zap, java.util.logging, .NET).
SEVERITY: dict[str, int] = {
    # The short names themselves: TRACE, TRACE2 .. TRACE4 = 1..4, DEBUG = 5, ...
    **{
        f"{name}{'' if step == 0 else step + 1}": 1 + 4 * rank + step
        for rank, name in enumerate(("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"))
        for step in range(4)
    },
    "FINEST": 1,
    "TRC": 1,
    "VRB": 1,
    "FINER": 5,
    "VERBOSE": 5,
    "DBG": 5,
    "FINE": 6,
    "CONFIG": 7,
    "INFORMATION": 9,
    "INFORMATIONAL": 9,
    "INF": 9,
    "NOTICE": 10,
    "WARNING": 13,
    "WRN": 13,
    "ERR": 17,
    "SEVERE": 17,
    "CRITICAL": 18,
    "CRIT": 18,
    "DPANIC": 18,
    "ALERT": 19,
    "PANIC": 19,
    "EMERGENCY": 21,
    "EMERG": 21,
    "FTL": 21,
}


def severity(level: Any) -> tuple[int, str] | None:
    """(severityNumber, severityText) of a record's level, the number 0 (unspecified)
    when the text is not a level OTel knows; None when there is no text level."""
    if not isinstance(level, str) or not level.strip():
        return None
    return SEVERITY.get(level.strip().upper(), 0), level


def any_value(v: Any) -> dict[str, Any]:
    """A value as an OTLP AnyValue (JSON encoding: int64 as a decimal string)."""
    t = type(v)
    if t is str:
        return {"stringValue": v}
    if t is bool:
        return {"boolValue": v}
    if t is int:
        # Beyond int64 there is no intValue: the exact digits, as text.
        return {"intValue" if -_INT64 <= v < _INT64 else "stringValue": str(v)}
    if t is float:
        if math.isfinite(v):
            return {"doubleValue": v}
        return {"doubleValue": "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")}
    if t is dict:
        return {"kvlistValue": {"values": key_values(v)}}
    if t is list or t is tuple:
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if v is None:
        return {}  # an empty AnyValue: the field is there, with no value
    # Subclasses (an IntEnum, an OrderedDict a transform made) as their base type.
    if isinstance(v, bool):
        return {"boolValue": bool(v)}
    if isinstance(v, int):
        return any_value(int(v))
    if isinstance(v, float):
        return any_value(float(v))
    if isinstance(v, str):
        return {"stringValue": str(v)}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": key_values(v)}}
    if isinstance(v, list | tuple):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, bytes | bytearray):
        return {"bytesValue": base64.b64encode(v).decode()}
    return {"stringValue": str(v)}


def key_values(d: dict[Any, Any]) -> list[dict[str, Any]]:
    return [{"key": str(k), "value": any_value(x)} for k, x in d.items()]


def _arn_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


# Source fields the resource describes, per source kind: the rest vary per event.
_RESOURCE_FIELDS = {
    "cloudwatch": ("account", "region", "log_group", "log_stream"),
    "s3": ("bucket", "key"),
    "kinesis": ("account", "region", "stream"),
}
_ALWAYS = ("kind", "account", "region")
_KEY_FIELDS = tuple(dict.fromkeys(f for fs in _RESOURCE_FIELDS.values() for f in (*_ALWAYS, *fs)))


def resource_attributes(src: dict[str, Any]) -> dict[str, Any]:
    """The OTel resource of an event's source, by the semantic conventions."""
    attrs: dict[str, Any] = {"cloud.provider": "aws"}
    account, region = src.get("account"), src.get("region")
    if account:
        attrs["cloud.account.id"] = str(account)
    if region:
        attrs["cloud.region"] = str(region)
    kind = src.get("kind")
    group, stream = src.get("log_group"), src.get("log_stream")
    if kind == "cloudwatch" and isinstance(group, str) and group:
        attrs["aws.log.group.names"] = [group]
        arn = None
        if account and region:
            arn = f"arn:{_arn_partition(str(region))}:logs:{region}:{account}:log-group:{group}"
            attrs["aws.log.group.arns"] = [f"{arn}:*"]
        if isinstance(stream, str) and stream:
            attrs["aws.log.stream.names"] = [stream]
            if arn:
                attrs["aws.log.stream.arns"] = [f"{arn}:log-stream:{stream}"]
        function = group.removeprefix("/aws/lambda/")
        if function != group and function:
            attrs["cloud.platform"] = "aws_lambda"
            attrs["faas.name"] = function
            attrs["service.name"] = function
    elif kind == "s3":
        if src.get("bucket"):
            attrs["aws.s3.bucket"] = str(src["bucket"])
        if src.get("key"):
            attrs["aws.s3.key"] = str(src["key"])
    elif kind == "kinesis" and src.get("stream"):
        attrs["aws.kinesis.stream_name"] = str(src["stream"])
    if kind:
        attrs["sluice.source.kind"] = str(kind)
    return attrs


def record_source(src: dict[str, Any]) -> dict[str, Any]:
    """The source fields the resource leaves out (they vary per event), as attributes."""
    described = _RESOURCE_FIELDS.get(str(src.get("kind")), ())
    return {
        f"sluice.source.{k}": v
        for k, v in src.items()
        if v is not None and k not in described and k not in _ALWAYS
    }


@register
class OtlpLogs(HttpSink):
    format = "otlp"
    summary = "OpenTelemetry OTLP/HTTP logs"
    order = 34
    content_type = "application/json"
    content_encoding = "gzip"
    path = "/v1/logs"
    # The specification lists what may be retried; a 413 or a refused credential
    # must not be sent again (the secret is still re-read for the next batch).
    split_too_large = False
    resend_after_reauth = False

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        self._resources: dict[tuple[Any, ...], bytes] = {}

    def encode(self, events: list[LogEvent]) -> tuple[list[tuple[LogEvent, bytes]], list[Failure]]:
        # Every value has an AnyValue (integers beyond 64 bits as text): nothing is refused.
        return [(ev, b"") for ev in events], []

    def _resource(self, src: dict[str, Any]) -> bytes:
        """The encoded resource, built once per distinct source (an S3 object's lines
        each have their own source dict, with one resource)."""
        key = tuple(map(src.get, _KEY_FIELDS))
        resource = self._resources.get(key)
        if resource is None:
            if len(self._resources) > 4096:  # sources per warm function are few; bound it
                self._resources.clear()
            attrs = resource_attributes(src)
            resource = self._resources[key] = orjson.dumps({"attributes": key_values(attrs)})
        return resource

    def log_record(self, ev: LogEvent, observed: str, extra: dict[str, Any]) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        if ev.time >= 0:  # fixed64: a time before 1970 cannot be said; left unset (unknown)
            rec["timeUnixNano"] = str(ev.time * 1_000_000)
        rec["observedTimeUnixNano"] = observed
        attrs = dict(ev.record)
        sev = severity(attrs.get("level"))
        if sev is not None:
            del attrs["level"]
            if sev[0]:
                rec["severityNumber"] = sev[0]
            rec["severityText"] = sev[1]
        if "message" in attrs:
            rec["body"] = any_value(attrs.pop("message"))
        attrs.update(extra)
        attrs["sluice.tag"] = ev.tag
        attrs["log.record.uid"] = ev.id
        rec["attributes"] = key_values(attrs)
        return rec

    def pieces(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Piece]:
        observed = str(time.time_ns())
        out = []
        src: Any = None
        resource, extra = b"", {}
        for ev, _ in encoded:
            if ev.source is not src:  # a payload's events share one source dict
                src = ev.source
                resource, extra = self._resource(src), record_source(src)
            data = orjson.dumps(self.log_record(ev, observed, extra))
            # Counted as if each record carried its resource and scope: an upper bound.
            out.append(Piece(ev, data, resource, len(data) + len(resource) + 120))
        return out

    def body(self, pieces: list[Piece]) -> bytes:
        groups: dict[Any, list[bytes]] = {}
        for p in pieces:
            groups.setdefault(p.key, []).append(p.data)
        scope = orjson.dumps(SCOPE)
        parts = [
            b'{"resource":'
            + resource
            + b',"scopeLogs":[{"scope":'
            + scope
            + b',"logRecords":['
            + b",".join(records)
            + b"]}]}"
            for resource, records in groups.items()
        ]
        return b'{"resourceLogs":[' + b",".join(parts) + b"]}"

    def retryable(self, status: int) -> bool:
        return status in RETRYABLE

    def preview(self, events: list[LogEvent]) -> str:
        """The first event's log record (its resource would fill the line)."""
        if not events:
            return "http otlp: nothing to send"
        ev = events[0]
        record = orjson.dumps(self.log_record(ev, str(time.time_ns()), record_source(ev.source)))
        return f"http otlp {self.host}: {clip(record.decode(), 300)}"

    def refused(self, body: bytes) -> tuple[int, str] | None:
        """`partialSuccess.rejectedLogRecords` (a number or, as int64, a decimal string)."""
        try:
            doc = orjson.loads(body) if body.strip() else {}
            partial = doc.get("partialSuccess") or {}
            rejected = int(partial.get("rejectedLogRecords") or 0)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return None  # not JSON (or not ours): the 200 says the request was accepted
        message = str(partial.get("errorMessage") or "no errorMessage")[:300]
        return rejected, f"OTLP partial success: {message}"

    def detail(self, data: bytes) -> str:
        """A Status message's `message` (OTLP's error body), else the body's text."""
        try:
            doc = orjson.loads(data)
            if isinstance(doc, dict) and isinstance(doc.get("message"), str):
                return str(doc["message"])
        except orjson.JSONDecodeError:
            pass
        return super().detail(data)
