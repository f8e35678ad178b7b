"""forward to OTLP/HTTP: a threaded server on 127.0.0.1 gunzips every body and checks it
against OTLP's JSON encoding of ExportLogsServiceRequest (field names, int64 as decimal
strings, enums as integers, typed AnyValues, unique attribute keys, no empty envelopes),
then answers as scripted: 429/502/503/504 (retryable), 400/401/413/500 (final), and 200
with a partialSuccess."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.actions.context import Delivery, Offline
from chalicelib.actions.forward import ForwardAction, common
from chalicelib.actions.forward.otlp import severity
from chalicelib.errors import ActionError, RulesInvalid
from chalicelib.event import LogEvent
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Pipeline
from chalicelib.rules.schema import load_rules

from .factories import SOURCE, T0, log_event, log_events
from .local_http import Reply, serve

INV = Invocation(request_id="inv-otlp-1", function_name="cloudwatch_logs", account="123456789012")
INT64 = 2**63


# ---------------------------------------------------------------- the spec's structure
def keys(obj: Any, allowed: set[str], what: str) -> dict[str, Any]:
    assert isinstance(obj, dict), f"{what} is an object"
    assert set(obj) <= allowed, f"{what}: unknown fields {set(obj) - allowed}"
    return obj


def uint64_string(v: Any, what: str) -> int:
    """fixed64 in OTLP/JSON: a decimal string."""
    assert isinstance(v, str) and re.fullmatch(r"[0-9]{1,20}", v), f"{what}: {v!r}"
    assert int(v) < 2**64
    return int(v)


def any_value(v: Any) -> Any:
    """Check an AnyValue and return the Python value it carries."""
    keys(
        v,
        {
            "stringValue",
            "boolValue",
            "intValue",
            "doubleValue",
            "arrayValue",
            "kvlistValue",
            "bytesValue",
        },
        "AnyValue",
    )
    assert len(v) <= 1, f"AnyValue holds one value: {v}"
    if not v:
        return None
    ((kind, x),) = v.items()
    if kind == "stringValue":
        assert isinstance(x, str)
        return x
    if kind == "boolValue":
        assert isinstance(x, bool)
        return x
    if kind == "intValue":
        assert isinstance(x, str) and re.fullmatch(r"-?[0-9]+", x), "int64 as a decimal string"
        assert -INT64 <= int(x) < INT64
        return int(x)
    if kind == "doubleValue":
        assert (isinstance(x, float | int) and not isinstance(x, bool)) or x in (
            "NaN",
            "Infinity",
            "-Infinity",
        )
        return float(x)
    if kind == "arrayValue":
        keys(x, {"values"}, "ArrayValue")
        return [any_value(e) for e in x.get("values", [])]
    if kind == "kvlistValue":
        keys(x, {"values"}, "KeyValueList")
        return key_values(x.get("values", []))
    base64.b64decode(x, validate=True)
    return x


def key_values(kvs: Any) -> dict[str, Any]:
    """A KeyValue list (keys unique) as a dict."""
    assert isinstance(kvs, list)
    out: dict[str, Any] = {}
    for kv in kvs:
        keys(kv, {"key", "value"}, "KeyValue")
        assert isinstance(kv["key"], str) and kv["key"] not in out, f"duplicate key {kv['key']}"
        out[kv["key"]] = any_value(kv.get("value", {}))
    return out


@dataclass
class Record:
    resource: dict[str, Any]
    scope: dict[str, Any]
    doc: dict[str, Any]  # the LogRecord as sent
    attributes: dict[str, Any]
    body: Any


LOG_RECORD_FIELDS = {
    "timeUnixNano",
    "observedTimeUnixNano",
    "severityNumber",
    "severityText",
    "body",
    "attributes",
    "droppedAttributesCount",
    "flags",
    "traceId",
    "spanId",
    "eventName",
}


def parse_otlp(body: bytes) -> list[Record]:
    """ExportLogsServiceRequest, OTLP/JSON: every level checked, records returned."""
    doc = keys(json.loads(body), {"resourceLogs"}, "ExportLogsServiceRequest")
    out = []
    assert doc["resourceLogs"], "no empty envelopes"
    for rl in doc["resourceLogs"]:
        keys(rl, {"resource", "scopeLogs", "schemaUrl"}, "ResourceLogs")
        res = keys(rl.get("resource", {}), {"attributes", "droppedAttributesCount"}, "Resource")
        resource = key_values(res.get("attributes", []))
        assert rl["scopeLogs"], "no empty envelopes"
        for sl in rl["scopeLogs"]:
            keys(sl, {"scope", "logRecords", "schemaUrl"}, "ScopeLogs")
            scope = keys(
                sl.get("scope", {}),
                {"name", "version", "attributes", "droppedAttributesCount"},
                "InstrumentationScope",
            )
            assert sl["logRecords"], "no empty envelopes"
            for lr in sl["logRecords"]:
                keys(lr, LOG_RECORD_FIELDS, "LogRecord")
                if "timeUnixNano" in lr:
                    uint64_string(lr["timeUnixNano"], "timeUnixNano")
                uint64_string(lr["observedTimeUnixNano"], "observedTimeUnixNano")
                if "severityNumber" in lr:
                    n = lr["severityNumber"]
                    assert isinstance(n, int) and 0 <= n <= 24, "enum as an integer"
                if "severityText" in lr:
                    assert isinstance(lr["severityText"], str)
                attrs = key_values(lr.get("attributes", []))
                body = any_value(lr["body"]) if "body" in lr else None
                out.append(Record(resource, scope, lr, attrs, body))
    return out


# ---------------------------------------------------------------- the endpoint
@dataclass
class Request:
    path: str
    headers: dict[str, str]
    records: list[Record]


OK: Reply = (200, {"Content-Type": "application/json"}, b"{}")


def status(code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """A failure as OTLP/HTTP sends it: a google.rpc.Status in the body."""
    body = json.dumps({"code": 14 if code >= 500 else 3, "message": message}).encode()
    return code, {"Content-Type": "application/json", **(headers or {})}, body


def partial(rejected: int | str, message: str = "") -> Reply:
    doc: dict[str, Any] = {"partialSuccess": {"rejectedLogRecords": rejected}}
    if message:
        doc["partialSuccess"]["errorMessage"] = message
    return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


@dataclass
class Endpoint:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    script: list[Reply] = field(default_factory=list)  # replies in order, then `default`
    default: Callable[[Request], Reply] = lambda req: OK
    errors: list[str] = field(default_factory=list)  # what the validator refused

    def records(self) -> list[Record]:
        return [r for req in self.requests for r in req.records]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()

    def answer(path: str, headers: dict[str, str], raw: bytes) -> Reply:
        try:
            assert headers["content-type"] == "application/json"
            assert headers["content-encoding"] == "gzip"
            req = Request(path, headers, parse_otlp(gzip.decompress(raw)))
        except (AssertionError, KeyError, ValueError, OSError) as e:
            ep.errors.append(f"{type(e).__name__}: {e}")
            return 400, {}, b'{"message": "invalid request"}'
        ep.requests.append(req)
        return ep.script.pop(0) if ep.script else ep.default(req)

    with serve(answer) as url:
        ep.url = url
        yield ep
    assert ep.errors == [], "every request was valid OTLP/JSON"


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps are recorded, not slept."""
    slept: list[float] = []
    monkeypatch.setattr(common, "sleep", slept.append)
    return slept


def otlp(url: str, runtime: Any = None, **opts: Any) -> ForwardAction:
    ctx = runtime.services if runtime is not None else Offline()
    return ForwardAction("to-otel", {"to": "http", "format": "otlp", "url": url, **opts}, ctx)


# ---------------------------------------------------------------- the mapping
def test_request_is_gzipped_otlp_json_at_v1_logs(endpoint):
    """A bare URL gets /v1/logs; the body is gzip-compressed OTLP/JSON, one record per event."""
    assert otlp(endpoint.url).deliver(Delivery(log_events(3), INV)) == 3
    (req,) = endpoint.requests
    assert req.path == "/v1/logs"
    assert [r.body for r in req.records] == ["event 0", "event 1", "event 2"]


def test_url_with_a_path_is_used_as_given(endpoint):
    """A URL that names its own path (a gateway's route) keeps it, and its query."""
    otlp(endpoint.url + "/otlp/v1/logs?tenant=a").deliver(Delivery([log_event()], INV))
    assert endpoint.requests[0].path == "/otlp/v1/logs?tenant=a"


def test_record_fields_become_typed_attributes(endpoint):
    """message -> body, level -> severity, the rest -> typed attributes, with tag and id."""
    ev = log_event(
        "payment failed",
        id="ev-42",
        level="ERROR",
        user={"id": 7, "roles": ["admin", "ops"]},
        amount=12.5,
        retry=False,
        big=2**64 - 1,
        nothing=None,
        nested=[{"a": 1}, [True, "x"]],
    )
    otlp(endpoint.url).deliver(Delivery([ev], INV))
    (rec,) = endpoint.records()
    assert rec.doc["timeUnixNano"] == str(T0 * 1_000_000)
    assert (rec.doc["severityNumber"], rec.doc["severityText"]) == (17, "ERROR")
    assert rec.doc["body"] == {"stringValue": "payment failed"}
    assert rec.attributes == {
        "user": {"id": 7, "roles": ["admin", "ops"]},
        "amount": 12.5,
        "retry": False,
        "big": str(2**64 - 1),  # beyond int64: the exact digits as text
        "nothing": None,
        "nested": [{"a": 1}, [True, "x"]],
        "sluice.source.subscription_filters": ["sluice-checkout-api"],
        "sluice.tag": "aws.lambda.checkout-api",
        "log.record.uid": "ev-42",
    }
    assert rec.doc["attributes"][0] == {
        "key": "user",
        "value": {
            "kvlistValue": {
                "values": [
                    {"key": "id", "value": {"intValue": "7"}},
                    {
                        "key": "roles",
                        "value": {
                            "arrayValue": {
                                "values": [{"stringValue": "admin"}, {"stringValue": "ops"}]
                            }
                        },
                    },
                ]
            }
        },
    }
    assert int(rec.doc["observedTimeUnixNano"]) > T0 * 1_000_000 // 2
    assert rec.scope["name"] == "sluice" and rec.scope["version"]


@pytest.mark.parametrize(
    ("level", "number", "text"),
    [
        pytest.param("TRACE", 1, "TRACE", id="trace"),
        pytest.param("DEBUG", 5, "DEBUG", id="debug"),
        pytest.param("FINE", 6, "FINE", id="java fine"),
        pytest.param("INFO", 9, "INFO", id="info"),
        pytest.param("Information", 9, "Information", id="dotnet information"),
        pytest.param("NOTICE", 10, "NOTICE", id="syslog notice"),
        pytest.param("WARN", 13, "WARN", id="warn"),
        pytest.param("WARNING", 13, "WARNING", id="warning"),
        pytest.param("ERROR", 17, "ERROR", id="error"),
        pytest.param("ERR", 17, "ERR", id="err"),
        pytest.param("SEVERE", 17, "SEVERE", id="java severe"),
        pytest.param("CRITICAL", 18, "CRITICAL", id="syslog critical"),
        pytest.param("ALERT", 19, "ALERT", id="syslog alert"),
        pytest.param("EMERGENCY", 21, "EMERGENCY", id="syslog emergency"),
        pytest.param("FATAL", 21, "FATAL", id="fatal"),
        pytest.param("ERROR3", 19, "ERROR3", id="short name with a step"),
        pytest.param("FATAL4", 24, "FATAL4", id="highest"),
        pytest.param("LOUD", None, "LOUD", id="unknown level keeps its text only"),
    ],
)
def test_severity_from_level(endpoint, level, number, text):
    """Levels map into OTel's ranges (TRACE 1-4 ... FATAL 21-24), the text kept as sent."""
    otlp(endpoint.url).deliver(Delivery([log_event(level=level)], INV))
    (rec,) = endpoint.records()
    assert rec.doc.get("severityNumber") == number
    assert rec.doc["severityText"] == text
    assert "level" not in rec.attributes


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param({"message": "m"}, None, id="no level"),
        pytest.param({"message": "m", "level": 30}, None, id="a number is not a text level"),
        pytest.param({"message": "m", "level": "  "}, None, id="blank"),
    ],
)
def test_records_without_a_text_level_have_no_severity(record, expected):
    """Only a text level gives a severity; anything else stays an attribute."""
    assert severity(record.get("level")) is expected


def test_non_text_message_and_missing_message(endpoint):
    """A structured message is a structured body; an event without one has no body."""
    events = [
        LogEvent("t", T0, {"message": {"op": "pay", "n": 2}}, SOURCE, "a"),
        LogEvent("t", T0, {"level": 30, "msg": "x"}, SOURCE, "b"),
    ]
    otlp(endpoint.url).deliver(Delivery(events, INV))
    first, second = endpoint.records()
    assert first.body == {"op": "pay", "n": 2}
    assert "body" not in second.doc and second.attributes["level"] == 30


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(float("nan"), "NaN", id="nan"),
        pytest.param(float("inf"), "Infinity", id="inf"),
        pytest.param(-(2**63), {"intValue": str(-(2**63))}, id="int64 min"),
        pytest.param(2**63, {"stringValue": str(2**63)}, id="past int64"),
        pytest.param(b"\x00\x01", {"bytesValue": "AAE="}, id="bytes"),
        pytest.param(
            (1, "a"),
            {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}},
            id="tuple",
        ),
    ],
)
def test_any_value_edges(value, encoded):
    """Values JSON cannot say plainly follow the proto3 JSON mapping."""
    from chalicelib.actions.forward.otlp import any_value as encode

    got = encode(value)
    assert got == encoded or got == {"doubleValue": encoded}


# ---------------------------------------------------------------- resources
S3_SOURCE = {
    "kind": "s3",
    "bucket": "app-logs",
    "key": "app/2026/11/26/web.log.gz",
    "version": None,
    "etag": "abc",
    "line": 7,
}
KINESIS_SOURCE = {
    "kind": "kinesis",
    "stream": "app-events",
    "shard": "shardId-000000000001",
    "sequence": "4959",
    "partition_key": "k",
    "account": "123456789012",
    "region": "eu-west-1",
}
ECS_SOURCE = {**SOURCE, "log_group": "/ecs/web", "log_stream": "web/app/1"}


@pytest.mark.parametrize(
    ("source", "resource", "record_attrs"),
    [
        pytest.param(
            SOURCE,
            {
                "cloud.provider": "aws",
                "cloud.account.id": "123456789012",
                "cloud.region": "us-east-1",
                "aws.log.group.names": ["/aws/lambda/checkout-api"],
                "aws.log.group.arns": [
                    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/checkout-api:*"
                ],
                "aws.log.stream.names": [SOURCE["log_stream"]],
                "aws.log.stream.arns": [
                    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/checkout-api"
                    f":log-stream:{SOURCE['log_stream']}"
                ],
                "cloud.platform": "aws_lambda",
                "faas.name": "checkout-api",
                "service.name": "checkout-api",
                "sluice.source.kind": "cloudwatch",
            },
            {"sluice.source.subscription_filters": ["sluice-checkout-api"]},
            id="lambda log group",
        ),
        pytest.param(
            ECS_SOURCE,
            {
                "cloud.provider": "aws",
                "cloud.account.id": "123456789012",
                "cloud.region": "us-east-1",
                "aws.log.group.names": ["/ecs/web"],
                "aws.log.group.arns": ["arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web:*"],
                "aws.log.stream.names": ["web/app/1"],
                "aws.log.stream.arns": [
                    "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web:log-stream:web/app/1"
                ],
                "sluice.source.kind": "cloudwatch",
            },
            {"sluice.source.subscription_filters": ["sluice-checkout-api"]},
            id="other log group",
        ),
        pytest.param(
            S3_SOURCE,
            {
                "cloud.provider": "aws",
                "aws.s3.bucket": "app-logs",
                "aws.s3.key": "app/2026/11/26/web.log.gz",
                "sluice.source.kind": "s3",
            },
            {"sluice.source.etag": "abc", "sluice.source.line": 7},
            id="s3 object",
        ),
        pytest.param(
            KINESIS_SOURCE,
            {
                "cloud.provider": "aws",
                "cloud.account.id": "123456789012",
                "cloud.region": "eu-west-1",
                "aws.kinesis.stream_name": "app-events",
                "sluice.source.kind": "kinesis",
            },
            {
                "sluice.source.shard": "shardId-000000000001",
                "sluice.source.sequence": "4959",
                "sluice.source.partition_key": "k",
            },
            id="kinesis record",
        ),
    ],
)
def test_resource_from_the_source(endpoint, source, resource, record_attrs):
    """The source becomes the resource by OTel's semantic conventions; what varies per
    event (line, shard, sequence) stays on the record as sluice.source.* attributes."""
    otlp(endpoint.url).deliver(Delivery([log_event(source=source)], INV))
    (rec,) = endpoint.records()
    assert rec.resource == resource
    assert {k: v for k, v in rec.attributes.items() if k.startswith("sluice.source.")} == (
        record_attrs
    )


def test_events_are_grouped_by_resource(endpoint):
    """One resourceLogs per distinct source, each holding its own events in order."""
    s3_line = {**S3_SOURCE, "line": 8}  # another line of the same object: same resource
    events = [
        log_event("a", id="a"),
        log_event("b", id="b", source=S3_SOURCE),
        log_event("c", id="c"),
        log_event("d", id="d", source=s3_line),
    ]
    otlp(endpoint.url).deliver(Delivery(events, INV))
    (req,) = endpoint.requests
    groups: dict[str, list[str]] = {}
    for r in req.records:
        groups.setdefault(r.resource["sluice.source.kind"], []).append(r.body)
    assert groups == {"cloudwatch": ["a", "c"], "s3": ["b", "d"]}


# ---------------------------------------------------------------- retries
@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_retryable_statuses_are_retried(endpoint, waits, code):
    """429, 502, 503 and 504 are OTLP's retryable codes: sent again until accepted."""
    endpoint.script = [status(code, "busy"), status(code, "busy")]
    assert otlp(endpoint.url).deliver(Delivery(log_events(2), INV)) == 2
    assert len(endpoint.requests) == 3 and len(waits) == 2
    assert endpoint.requests[0].records[0].doc == endpoint.requests[2].records[0].doc


@pytest.mark.parametrize(
    ("code", "header"),
    [
        pytest.param(429, "7", id="429 seconds"),
        pytest.param(503, "4", id="503 seconds"),
    ],
)
def test_retry_after_is_honoured(endpoint, waits, code, header):
    """The server's Retry-After sets the least wait before the next attempt."""
    endpoint.script = [status(code, "throttled", {"Retry-After": header})]
    assert otlp(endpoint.url).deliver(Delivery(log_events(1), INV)) == 1
    assert waits and waits[0] >= float(header)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(400, id="bad data"),
        pytest.param(401, id="unauthorised"),
        pytest.param(403, id="forbidden"),
        pytest.param(404, id="not found"),
        pytest.param(413, id="too large: not split, not retried"),
        pytest.param(500, id="internal error is not retryable in OTLP"),
        pytest.param(501, id="not implemented"),
    ],
)
def test_other_statuses_are_final(endpoint, waits, code):
    """Every other 4xx/5xx is not sent again: one request, every event failed for good,
    the Status message in the reason."""
    endpoint.default = lambda req: status(code, f"refused with {code}")
    events = log_events(4)
    with pytest.raises(ActionError) as info:
        otlp(endpoint.url).deliver(Delivery(events, INV))
    assert len(endpoint.requests) == 1 and waits == []
    assert info.value.failed == events and info.value.retryable is False
    assert f"HTTP {code}: refused with {code}" in info.value.reason


def test_retries_exhausted_are_retryable_failures(endpoint, waits):
    """Still 503 after max_retries: every event failed, marked retryable for a replay."""
    endpoint.default = lambda req: status(503, "down")
    with pytest.raises(ActionError) as info:
        otlp(endpoint.url, max_retries=2).deliver(Delivery(log_events(2), INV))
    assert len(endpoint.requests) == 3
    assert info.value.retryable is True and "HTTP 503: down after 3 attempts" in info.value.reason


def test_connection_refused_is_retried(waits):
    """No server: the transport error is retried with backoff, then reported retryable."""
    with pytest.raises(ActionError) as info:
        otlp("http://127.0.0.1:9", max_retries=1).deliver(Delivery(log_events(2), INV))
    assert info.value.retryable is True and len(waits) == 1


def test_refused_credentials_are_read_again_for_the_next_request(runtime, aws, endpoint):
    """A 401 is final for its request (OTLP), and the next delivery reads the secret afresh."""
    aws.secretsmanager.create_secret(Name="sluice/otel", SecretString='{"token": "old-token"}')
    act = otlp(endpoint.url, runtime, secret="sluice/otel")
    act.deliver(Delivery([log_event()], INV))
    aws.secretsmanager.put_secret_value(SecretId="sluice/otel", SecretString='{"token": "new"}')
    endpoint.default = lambda req: (
        OK if req.headers["authorization"] == "Bearer new" else status(401, "bad token")
    )
    with pytest.raises(ActionError):
        act.deliver(Delivery([log_event()], INV))
    assert act.deliver(Delivery([log_event()], INV)) == 1
    assert [r.headers["authorization"] for r in endpoint.requests] == [
        "Bearer old-token",
        "Bearer old-token",
        "Bearer new",
    ]


# ---------------------------------------------------------------- partial success
@pytest.mark.parametrize(
    "rejected",
    [pytest.param("2", id="int64 as a string"), pytest.param(2, id="as a number")],
)
def test_partial_success_is_reported_not_retried(endpoint, waits, rejected):
    """rejectedLogRecords > 0: no retry; that many count as failed, with the server's
    message; the request's events are all named, since the server does not say which."""
    endpoint.script = [partial(rejected, "2 log records had an invalid timestamp")]
    events = log_events(5)
    with pytest.raises(ActionError) as info:
        otlp(endpoint.url).deliver(Delivery(events, INV))
    err = info.value
    assert len(endpoint.requests) == 1 and waits == []
    assert err.failed_count == 2 and err.sent == 3 and err.failed == events
    assert err.retryable is False
    assert "2 of 5 event(s) not delivered" in err.reason
    assert "2 log records had an invalid timestamp" in err.reason


def test_partial_success_with_nothing_rejected_is_success(endpoint):
    """A partialSuccess that only warns (0 rejected, a message) delivers everything."""
    endpoint.script = [partial(0, "attribute limits will apply soon")]
    assert otlp(endpoint.url).deliver(Delivery(log_events(3), INV)) == 3


def test_partial_success_is_dead_lettered_and_counted(runtime, endpoint, apply_rules, dlq):
    """Through the pipeline: the request's events reach the DLQ with the server's message,
    the rule counts 2 failed and 3 forwarded, the ledger balances."""
    opts = {"to": "http", "format": "otlp", "url": endpoint.url}
    apply_rules({"rules": [{"id": "to-otel", "actions": [{"forward": opts}]}]})
    endpoint.script = [partial("2", "2 records over the attribute limit")]
    ledger = Pipeline(runtime).process(log_events(5), INV)
    assert ledger.balanced() and ledger.actions_failed == 1
    assert (ledger.rule("to-otel")["failed"], ledger.rule("to-otel")["forwarded"]) == (2, 3)
    (msg,) = dlq.messages()
    assert msg["count"] == 5 and "2 records over the attribute limit" in msg["reason"]


# ---------------------------------------------------------------- schema and preview
@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        pytest.param({"url": "https://otel.example:4318"}, [], id="valid"),
        pytest.param(
            {"url": "https://otel.example", "secret": "s", "timeout_s": 5}, [], id="with auth"
        ),
        pytest.param(
            {"url": "https://otel.example", "labels": {"a": "b"}},
            ["labels: applies to format: loki only"],
            id="loki option",
        ),
        pytest.param(
            {"url": "https://otel.example", "index": "i"},
            ["index: applies to format: opensearch or splunk only"],
            id="index",
        ),
        pytest.param(
            {"url": "https://otel.example", "stream": "s"},
            ["stream: applies to to: kinesis only"],
            id="kinesis option",
        ),
        pytest.param({}, ["url: required with to: http"], id="no url"),
    ],
)
def test_otlp_options_in_the_rules_schema(opts, expected):
    """The schema accepts the OTLP sink's options and names the rule and option it refuses."""
    doc = {
        "rules": [
            {"id": "otel", "actions": [{"forward": {"to": "http", "format": "otlp", **opts}}]}
        ]
    }
    try:
        load_rules(doc)
        problems: list[str] = []
    except RulesInvalid as e:
        assert all(err.rule_id == "otel" and "rule 'otel'" in str(err) for err in e.errors)
        problems = [f"{e.field.removeprefix('actions[0].forward.')}: {e.reason}" for e in e.errors]
    assert problems == expected


def test_preview_shows_the_log_record():
    """`sluice rules test` shows the record OTLP would carry, without I/O."""
    text = otlp("https://otel.example").preview([log_event(level="WARN")])
    assert text.startswith('http otlp otel.example: {"timeUnixNano":"')
    assert '"severityNumber":13' in text
