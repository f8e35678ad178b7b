"""forward to HTTP: a threaded server on 127.0.0.1 parses every body strictly (the
_bulk NDJSON pairs, Loki's push schema, HEC's concatenated objects, JSON lines)
and answers as scripted: 429 with Retry-After, 5xx, 413, per-item _bulk errors,
401 until the secret is rotated."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.actions.context import Delivery
from chalicelib.actions.forward import ForwardAction, common
from chalicelib.errors import ActionError
from chalicelib.event import LogEvent, format_time
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Pipeline

from .factories import log_event, log_events
from .local_http import Reply, serve

INV = Invocation(request_id="inv-http-1", function_name="cloudwatch_logs", account="123456789012")
ENVELOPE_KEYS = ["tag", "time", "record", "source", "account", "region", "id"]


# ---------------------------------------------------------------- the endpoint
@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    # Scripted replies, used in order; then `default`.
    script: list[Reply | Callable[[Request], Reply]] = field(default_factory=list)
    default: Callable[[Request], Reply] | None = None

    def reply(self, req: Request) -> Reply:
        if self.script:
            step = self.script.pop(0)
            return step(req) if callable(step) else step
        if self.default is not None:
            return self.default(req)
        return ok(req)


def ok(req: Request) -> Reply:
    """What each tool answers to a good request."""
    if req.path.endswith("/_bulk"):
        return bulk_reply(req, {})
    if req.path.endswith("/loki/api/v1/push"):
        return 204, {}, b""
    if req.path.endswith("/services/collector/event"):
        return 200, {"Content-Type": "application/json"}, b'{"text":"Success","code":0}'
    return 200, {}, b""


def bulk_reply(req: Request, statuses: dict[str, int]) -> Reply:
    """A _bulk response: 201 per item unless `statuses` names the event id's status."""
    items = []
    for action, _doc in parse_bulk(req.body):
        op, meta = next(iter(action.items()))
        st = statuses.get(meta["_id"], 201)
        res: dict[str, Any] = {"_index": meta["_index"], "_id": meta["_id"], "status": st}
        if st >= 300:
            kind = "es_rejected_execution_exception" if st == 429 else "mapper_parsing_exception"
            res["error"] = {"type": kind, "reason": f"failed for {meta['_id']}"}
        items.append({op: res})
    body = {"took": 3, "errors": any(s >= 300 for s in statuses.values()), "items": items}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()

    def answer(path: str, headers: dict[str, str], body: bytes) -> Reply:
        req = Request(path, headers, body)
        ep.requests.append(req)
        return ep.reply(req)

    with serve(answer) as url:
        ep.url = url
        yield ep


# ---------------------------------------------------------------- strict parsers
def check_envelope(line: str | bytes, ev: LogEvent | None = None) -> dict[str, Any]:
    doc = json.loads(line)
    assert list(doc) == ENVELOPE_KEYS
    if ev is not None:
        assert doc == json.loads(json.dumps(ev.envelope()))
    return doc


def parse_bulk(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """_bulk NDJSON: action line, document line, every line newline-terminated."""
    assert body.endswith(b"\n")
    lines = body[:-1].split(b"\n")
    assert len(lines) % 2 == 0, "action and document lines come in pairs"
    pairs = []
    for action_line, doc_line in zip(lines[::2], lines[1::2], strict=True):
        action = json.loads(action_line)
        ((op, meta),) = action.items()
        assert op in ("index", "create") and set(meta) == {"_index", "_id"}
        doc = json.loads(doc_line)
        assert list(doc) == ["@timestamp", *ENVELOPE_KEYS]
        assert doc["@timestamp"] == doc["time"]
        pairs.append((action, doc))
    return pairs


def parse_loki(body: bytes) -> list[tuple[dict[str, str], list[list[str]]]]:
    """Loki push JSON: streams of {stream: labels, values: [[ns string, line]]}."""
    doc = json.loads(body)
    assert list(doc) == ["streams"]
    out = []
    for stream in doc["streams"]:
        assert set(stream) == {"stream", "values"}
        labels = stream["stream"]
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        for value in stream["values"]:
            assert len(value) == 2 and all(isinstance(x, str) for x in value)
            assert re.fullmatch(r"\d{19}", value[0]), "unix nanoseconds as a string"
            env = check_envelope(value[1])
            assert env["time"] == format_time(int(value[0]) // 1_000_000)
        out.append((labels, stream["values"]))
    return out


def parse_hec(body: bytes) -> list[dict[str, Any]]:
    """HEC batch: JSON event objects concatenated (whitespace allowed between them)."""
    text, decoder, pos, out = body.decode(), json.JSONDecoder(), 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        assert set(obj) <= {"time", "host", "source", "sourcetype", "index", "event"}
        assert isinstance(obj["time"], float) and isinstance(obj["event"], dict)
        assert list(obj["event"]) == ENVELOPE_KEYS
        out.append(obj)
    return out


# ---------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps are recorded, not slept."""
    slept: list[float] = []
    monkeypatch.setattr(common, "sleep", slept.append)
    return slept


@pytest.fixture
def rt() -> Any:
    """A Runtime with no AWS behind it (tests without a secret need none)."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    return Runtime(Settings.from_env(), Clients())


def forward(runtime: Any, url: str, **opts: Any) -> ForwardAction:
    return ForwardAction("fwd", {"to": "http", "url": url, **opts}, runtime.services)


def secret(aws: Any, name: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    aws.secretsmanager.create_secret(Name=name, SecretString=text)
    return name


# ---------------------------------------------------------------- formats
def test_jsonl_body_is_one_envelope_per_line(rt, endpoint):
    """JSON lines: each event's envelope on its own newline-terminated line, as x-ndjson."""
    events = log_events(3)
    assert forward(rt, endpoint.url + "/ingest").deliver(Delivery(events, INV)) == 3
    (req,) = endpoint.requests
    assert req.path == "/ingest"
    assert req.headers["content-type"] == "application/x-ndjson"
    assert req.body.endswith(b"\n")
    for line, ev in zip(req.body.splitlines(), events, strict=True):
        check_envelope(line, ev)


def test_opensearch_bulk_pairs_with_index_template_and_event_ids(rt, endpoint):
    """_bulk gets index action/document pairs: index from {tag}-{date}, _id the event id."""
    events = [log_event("a", id="e1"), log_event("b", id="e2", tag="ECS.Web:prod")]
    forward(rt, endpoint.url, format="opensearch", index="logs-{tag}-{date}").deliver(
        Delivery(events, INV)
    )
    (req,) = endpoint.requests
    assert req.path == "/_bulk" and req.headers["content-type"] == "application/x-ndjson"
    pairs = parse_bulk(req.body)
    assert [a["index"] for a, _ in pairs] == [
        {"_index": "logs-aws.lambda.checkout-api-2026.11.26", "_id": "e1"},
        {"_index": "logs-ecs.web_prod-2026.11.26", "_id": "e2"},  # lowercased, ':' replaced
    ]
    assert [d["id"] for _, d in pairs] == ["e1", "e2"]


def test_opensearch_create_op_and_default_index(rt, endpoint):
    """`op: create` writes create actions (for data streams); default index sluice-{tag}-{date}."""
    forward(rt, endpoint.url + "/", format="opensearch", op="create").deliver(
        Delivery([log_event()], INV)
    )
    ((action, _),) = parse_bulk(endpoint.requests[0].body)
    assert action["create"]["_index"] == "sluice-aws.lambda.checkout-api-2026.11.26"


def test_loki_push_groups_events_by_label_set(rt, endpoint):
    """Loki gets one stream per label set, values oldest first as [ns string, envelope line]."""
    events = [
        log_event("late", id="a", time=1795687621500),
        log_event("web", id="b", tag="ecs.web", level="ERROR"),
        log_event("early", id="c", time=1795687621000),
    ]
    forward(rt, endpoint.url, format="loki").deliver(Delivery(events, INV))
    (req,) = endpoint.requests
    assert req.path == "/loki/api/v1/push" and req.headers["content-type"] == "application/json"
    streams = parse_loki(req.body)
    assert [labels for labels, _ in streams] == [
        {"job": "sluice", "tag": "aws.lambda.checkout-api"},
        {"job": "sluice", "tag": "ecs.web"},
    ]
    first = streams[0][1]
    assert [json.loads(line)["id"] for _, line in first] == ["c", "a"]
    assert first[0][0] == str(1795687621000 * 1_000_000)


def test_loki_labels_template_record_fields(rt, endpoint):
    """Custom labels render {tag} and record fields; a missing field renders as '-'."""
    events = [log_event(id="a", level="ERROR"), log_event(id="b")]
    labels = {"app": "{tag}", "level": "{level}"}
    forward(rt, endpoint.url, format="loki", labels=labels).deliver(Delivery(events, INV))
    streams = parse_loki(endpoint.requests[0].body)
    assert sorted(s[0]["level"] for s in streams) == ["-", "ERROR"]


def test_splunk_hec_concatenated_events(rt, endpoint):
    """HEC gets concatenated event objects: epoch-second time, source = tag, sourcetype, index."""
    events = [log_event(id="a", time=1795687621204), log_event(id="b", host="web-1")]
    forward(rt, endpoint.url, format="splunk", sourcetype="sluice:json", index="main").deliver(
        Delivery(events, INV)
    )
    (req,) = endpoint.requests
    assert req.path == "/services/collector/event"
    assert b"}{" in req.body, "objects follow each other directly, as HEC documents"
    objs = parse_hec(req.body)
    assert objs[0]["time"] == 1795687621.204
    assert objs[0]["host"] == "/aws/lambda/checkout-api" and objs[1]["host"] == "web-1"
    assert {(o["source"], o["sourcetype"], o["index"]) for o in objs} == {
        ("aws.lambda.checkout-api", "sluice:json", "main")
    }
    assert [o["event"]["id"] for o in objs] == ["a", "b"]


def test_batches_stay_under_the_body_limit(rt, endpoint):
    """A batch larger than one request's limit (1 MB for HEC) is split across requests."""
    events = [log_event("x" * 100_000, id=f"e{i}") for i in range(25)]  # ~2.5 MB
    forward(rt, endpoint.url, format="splunk").deliver(Delivery(events, INV))
    assert len(endpoint.requests) == 3
    assert all(len(r.body) <= 1_000_000 for r in endpoint.requests)
    ids = [o["event"]["id"] for r in endpoint.requests for o in parse_hec(r.body)]
    assert ids == [e.id for e in events]


def test_format_path_is_added_to_a_bare_url_keeping_its_query(rt, endpoint):
    """A URL without a path gets the format's endpoint path; its query string stays."""
    forward(rt, endpoint.url + "?tenant=a", format="loki").deliver(Delivery([log_event()], INV))
    assert endpoint.requests[0].path == "/loki/api/v1/push?tenant=a"


def test_refused_request_stops_later_batches(rt, endpoint):
    """A refused request (404) is not repeated for the other batches: they fail unsent."""
    endpoint.default = lambda req: (404, {}, b"no such route")
    events = [log_event("x" * 100_000, id=f"e{i}") for i in range(25)]  # 3 HEC batches
    with pytest.raises(ActionError) as info:
        forward(rt, endpoint.url, format="splunk").deliver(Delivery(events, INV))
    assert len(endpoint.requests) == 1
    assert info.value.failed == events and info.value.retryable is False
    assert "not sent: HTTP 404: no such route" in info.value.reason


# ---------------------------------------------------------------- retries
def test_429_waits_for_retry_after_then_delivers(rt, endpoint, waits):
    """429 with Retry-After is retried after at least that many seconds."""
    endpoint.script = [(429, {"Retry-After": "2"}, b"slow down")]
    assert forward(rt, endpoint.url).deliver(Delivery(log_events(2), INV)) == 2
    assert len(endpoint.requests) == 2 and endpoint.requests[0].body == endpoint.requests[1].body
    assert waits and waits[0] >= 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_backoff(rt, endpoint, waits, status):
    """Server errors are retried after a jittered backoff until the endpoint accepts."""
    endpoint.script = [(status, {}, b"oops"), (status, {}, b"oops")]
    assert forward(rt, endpoint.url, format="loki").deliver(Delivery(log_events(3), INV)) == 3
    assert len(endpoint.requests) == 3 and len(waits) == 2
    assert all(0 <= w <= common.BACKOFF_CAP_S for w in waits)


def test_4xx_is_not_retried_and_fails_every_event(rt, endpoint, waits):
    """A 400 is final: one request, every event failed, not retryable, the server's word kept."""
    endpoint.default = lambda req: (400, {}, b'{"text":"Invalid data format","code":6}')
    events = log_events(3)
    with pytest.raises(ActionError) as info:
        forward(rt, endpoint.url, format="splunk").deliver(Delivery(events, INV))
    assert len(endpoint.requests) == 1 and waits == []
    assert info.value.failed == events and info.value.retryable is False
    assert "HTTP 400" in info.value.reason and "Invalid data format" in info.value.reason


def test_retries_exhausted_fail_retryable(rt, endpoint, waits):
    """Still 503 after max_retries: the events fail, marked retryable for a later replay."""
    endpoint.default = lambda req: (503, {}, b"")
    with pytest.raises(ActionError) as info:
        forward(rt, endpoint.url, max_retries=2).deliver(Delivery(log_events(2), INV))
    assert len(endpoint.requests) == 3
    assert info.value.retryable is True and "HTTP 503 after 3 attempts" in info.value.reason


def test_retry_after_beyond_the_invocation_time_is_not_waited(rt, endpoint, waits):
    """A Retry-After that would eat the time kept for dead-lettering ends the retries."""
    endpoint.script = [(429, {"Retry-After": "30"}, b"")]
    inv = Invocation(request_id="late", remaining_ms=lambda: 20_000)
    with pytest.raises(ActionError) as info:
        forward(rt, endpoint.url).deliver(Delivery(log_events(1), inv))
    assert waits == [] and len(endpoint.requests) == 1
    assert "invocation time running out" in info.value.reason


def test_413_halves_the_batch(rt, endpoint):
    """Payload Too Large splits the batch in two until the endpoint accepts the parts."""
    endpoint.default = lambda req: (413, {}, b"") if req.body.count(b"\n") > 2 else ok(req)
    events = log_events(8)
    assert forward(rt, endpoint.url).deliver(Delivery(events, INV)) == 8
    accepted = [r for r in endpoint.requests if r.body.count(b"\n") <= 2]
    assert [json.loads(x)["id"] for r in accepted for x in r.body.splitlines()] == [
        e.id for e in events
    ]


def test_connection_refused_is_retried_then_reported(rt, waits):
    """No server at all: transport errors are retried, then every event fails retryable."""
    with pytest.raises(ActionError) as info:
        forward(rt, "http://127.0.0.1:9", max_retries=1).deliver(Delivery(log_events(2), INV))
    assert info.value.retryable is True and len(waits) == 1
    assert "Error" in info.value.reason


# ---------------------------------------------------------------- _bulk items
def test_bulk_item_errors_retry_only_rejected_items(rt, endpoint, waits):
    """Items rejected with 429 are resent alone; items refused with 400 fail at once."""
    endpoint.script = [lambda req: bulk_reply(req, {"ev-000001": 429, "ev-000003": 400})]
    events = log_events(5)
    with pytest.raises(ActionError) as info:
        forward(rt, endpoint.url, format="opensearch").deliver(Delivery(events, INV))
    first, second = (parse_bulk(r.body) for r in endpoint.requests)
    assert len(first) == 5 and [d["id"] for _, d in second] == ["ev-000001"]
    assert [e.id for e in info.value.failed] == ["ev-000003"]
    assert info.value.retryable is False and info.value.sent == 4
    assert "_bulk item 400 mapper_parsing_exception" in info.value.reason


def test_bulk_409_on_create_counts_as_delivered(rt, endpoint):
    """With op create, a 409 means an earlier attempt indexed the document: not a failure."""
    endpoint.script = [lambda req: bulk_reply(req, {"ev-000000": 409})]
    assert (
        forward(rt, endpoint.url, format="opensearch", op="create").deliver(
            Delivery(log_events(2), INV)
        )
        == 2
    )


def test_bulk_item_failures_are_dead_lettered_alone(runtime, endpoint, apply_rules, dlq):
    """Through the pipeline, only the refused _bulk item reaches the DLQ; the ledger balances."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "to-search",
                    "actions": [
                        {"forward": {"to": "http", "url": endpoint.url, "format": "opensearch"}}
                    ],
                }
            ]
        }
    )
    endpoint.default = lambda req: bulk_reply(req, {"ev-000002": 400})
    ledger = Pipeline(runtime).process(log_events(4), INV)
    assert ledger.balanced() and ledger.actions_failed == 1
    (msg,) = dlq.messages()
    assert (msg["action"], msg["count"], [e["id"] for e in msg["events"]]) == (
        "forward",
        1,
        ["ev-000002"],
    )


# ---------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("value", "fmt", "header"),
    [
        pytest.param({"authorization": "Bearer abc.def"}, "jsonl", "Bearer abc.def", id="header"),
        pytest.param(
            {"username": "sluice", "password": "s3cret!"},
            "opensearch",
            "Basic " + base64.b64encode(b"sluice:s3cret!").decode(),
            id="basic",
        ),
        pytest.param("0e6f-hec-token", "splunk", "Splunk 0e6f-hec-token", id="splunk bare"),
        pytest.param({"token": "0e6f-hec-token"}, "splunk", "Splunk 0e6f-hec-token", id="splunk"),
        pytest.param({"token": "glc_abc"}, "loki", "Bearer glc_abc", id="bearer token"),
    ],
)
def test_auth_header_from_secrets_manager(runtime, aws, endpoint, value, fmt, header):
    """The Authorization header comes from the secret, in the form its value calls for."""
    name = secret(aws, "sluice/forward", value)
    forward(runtime, endpoint.url, format=fmt, secret=name).deliver(Delivery(log_events(1), INV))
    assert endpoint.requests[0].headers["authorization"] == header


class FakeSsm:
    """GetParameter only (moto's SSM loads AWS's public parameters: seconds per test)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls: list[dict[str, Any]] = []

    def get_parameter(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        return {"Parameter": {"Name": kw["Name"], "Value": self.values[kw["Name"]]}}


def test_auth_from_ssm_parameter(rt, endpoint):
    """A secret name starting with / is an SSM SecureString parameter, read decrypted."""
    ssm = FakeSsm({"/sluice/loki": '{"authorization": "Bearer from-ssm"}'})
    rt.clients.set("ssm", ssm)
    act = forward(rt, endpoint.url, format="loki", secret="/sluice/loki")
    act.deliver(Delivery([log_event()], INV))
    act.deliver(Delivery([log_event()], INV))
    assert [r.headers["authorization"] for r in endpoint.requests] == ["Bearer from-ssm"] * 2
    assert ssm.calls == [{"Name": "/sluice/loki", "WithDecryption": True}]  # cached


def test_rotated_secret_is_read_again_after_401(runtime, aws, endpoint):
    """A 401 re-reads the secret once (bypassing the 5-minute cache), then delivers."""
    name = secret(aws, "sluice/rotating", {"token": "old-token"})
    act = forward(runtime, endpoint.url, secret=name)
    act.deliver(Delivery([log_event()], INV))
    aws.secretsmanager.put_secret_value(SecretId=name, SecretString='{"token": "new-token"}')
    endpoint.default = lambda req: (
        ok(req) if req.headers.get("authorization") == "Bearer new-token" else (401, {}, b"")
    )
    assert act.deliver(Delivery([log_event()], INV)) == 1
    assert [r.headers["authorization"] for r in endpoint.requests] == [
        "Bearer old-token",
        "Bearer old-token",
        "Bearer new-token",
    ]


def test_401_after_reading_the_secret_again_is_final(runtime, aws, endpoint):
    """A credential the endpoint still refuses after a fresh read fails the events for good."""
    name = secret(aws, "sluice/wrong", {"token": "wrong-token"})
    endpoint.default = lambda req: (401, {}, b"")
    with pytest.raises(ActionError) as info:
        forward(runtime, endpoint.url, secret=name).deliver(Delivery(log_events(2), INV))
    assert len(endpoint.requests) == 2 and info.value.retryable is False
    assert "HTTP 401" in info.value.reason


def test_secret_never_reaches_the_reason(runtime, aws, endpoint, dlq, apply_rules):
    """A server echoing the credentials in its error: the dead-letter reason shows *** instead."""
    name = secret(aws, "sluice/echo", {"username": "svc", "password": "hunter2-long"})
    endpoint.default = lambda req: (400, {}, f"bad auth {req.headers['authorization']}".encode())
    opts = {"to": "http", "url": endpoint.url, "secret": name}
    apply_rules({"rules": [{"id": "echo", "actions": [{"forward": opts}]}]})
    Pipeline(runtime).process(log_events(1), INV)
    (msg,) = dlq.messages()
    assert "***" in msg["reason"]
    basic = base64.b64encode(b"svc:hunter2-long").decode()
    assert basic not in json.dumps(msg) and "hunter2-long" not in json.dumps(msg)


def test_missing_secret_fails_without_sending(runtime, aws, endpoint):
    """A secret that does not exist: nothing is sent, the events fail, not retryable."""
    with pytest.raises(ActionError) as info:
        forward(runtime, endpoint.url, secret="sluice/absent").deliver(Delivery(log_events(2), INV))
    assert endpoint.requests == [] and info.value.retryable is False
    assert "ResourceNotFoundException" in info.value.reason


# ---------------------------------------------------------------- end to end
def test_cloudwatch_payload_forwarded_to_loki(runtime, endpoint, apply_rules, invoke, load_event):
    """A CloudWatch payload through the handler reaches Loki whole, with the ledger balanced."""
    opts = {"to": "http", "url": endpoint.url, "format": "loki"}
    apply_rules({"rules": [{"id": "to-loki", "actions": [{"forward": opts}]}]})
    result = invoke(load_event("cloudwatch_logs"))
    assert result["lost"] == 0 and result["dead_lettered"] == 0
    lines = [v[1] for r in endpoint.requests for _, values in parse_loki(r.body) for v in values]
    assert len(lines) == result["received"] - result["dropped"]
    assert {json.loads(x)["tag"] for x in lines} == {"aws.lambda.checkout-api"}
