"""forward: option validation through the rules schema, and the pieces every destination
shares (record bytes, size-bounded chunks, retry budget, templates, preview)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
import pytest

from chalicelib.actions.context import Delivery, Offline
from chalicelib.actions.forward import ForwardAction, common
from chalicelib.actions.forward import sink as sinks
from chalicelib.actions.forward.sink import Sink
from chalicelib.errors import ActionError, RulesInvalid
from chalicelib.invocation import Invocation
from chalicelib.options import Option
from chalicelib.rules.schema import load_rules

from .factories import log_event, log_events

INV = Invocation(request_id="inv-opts-1")


def problems(opts: Any) -> list[str]:
    """The schema's errors for one forward action, as 'field: reason'."""
    try:
        load_rules({"rules": [{"id": "r", "actions": [{"forward": opts}]}]})
    except RulesInvalid as e:
        return [
            f"{err.field.removeprefix('actions[0].forward.')}: {err.reason}" for err in e.errors
        ]
    return []


# ---------------------------------------------------------------- schema
@pytest.mark.parametrize(
    "opts",
    [
        pytest.param({"to": "kinesis", "stream": "app-logs"}, id="kinesis name"),
        pytest.param(
            {
                "to": "kinesis",
                "stream": "arn:aws:kinesis:eu-west-1:123456789012:stream/app-logs",
                "partition_key": "{tag}/{user}",
                "max_retries": 5,
            },
            id="kinesis arn",
        ),
        pytest.param({"to": "firehose", "delivery_stream": "logs-to-s3"}, id="firehose"),
        pytest.param({"to": "http", "url": "https://ingest.example/logs"}, id="jsonl"),
        pytest.param(
            {
                "to": "http",
                "url": "https://search.example",
                "format": "opensearch",
                "index": "logs-{tag}-{date}",
                "op": "create",
                "secret": "sluice/os",
                "timeout_s": 2.5,
            },
            id="opensearch",
        ),
        pytest.param(
            {
                "to": "http",
                "url": "https://loki.example",
                "format": "loki",
                "labels": {"app": "{tag}"},
            },
            id="loki",
        ),
        pytest.param(
            {
                "to": "http",
                "url": "https://hec.example:8088",
                "format": "splunk",
                "sourcetype": "sluice",
                "index": "main",
                "secret": "/sluice/hec",
            },
            id="splunk",
        ),
        pytest.param(
            {"to": "http", "url": "http://127.0.0.1:3100", "format": "loki", "secret": "s"},
            id="secret over loopback http",
        ),
    ],
)
def test_valid_forward_options(opts):
    """Each destination's documented options pass the rules schema."""
    assert problems(opts) == []


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        pytest.param({}, ["to: required: destination: kinesis, firehose or http"], id="no to"),
        pytest.param({"to": "sqs"}, ["to: one of kinesis, firehose, http"], id="unknown to"),
        pytest.param({"to": "kinesis"}, ["stream: required with to: kinesis"], id="no stream"),
        pytest.param(
            {"to": "firehose"}, ["delivery_stream: required with to: firehose"], id="no ds"
        ),
        pytest.param({"to": "http"}, ["url: required with to: http"], id="no url"),
        pytest.param(
            {"to": "kinesis", "stream": "s", "url": "https://x.example"},
            ["url: applies to to: http only"],
            id="url on kinesis",
        ),
        pytest.param(
            {"to": "firehose", "delivery_stream": "d", "partition_key": "{tag}"},
            ["partition_key: applies to to: kinesis only"],
            id="partition key on firehose",
        ),
        pytest.param(
            {"to": "http", "url": "https://x.example", "labels": {"a": "b"}},
            ["labels: applies to format: loki only"],
            id="labels on jsonl",
        ),
        pytest.param(
            {"to": "http", "url": "https://x.example", "format": "loki", "index": "i"},
            ["index: applies to format: opensearch or splunk only"],
            id="index on loki",
        ),
        pytest.param(
            {"to": "http", "url": "https://x.example", "format": "splunk", "index": "{tag}"},
            ["index: a Splunk index is a fixed name (indexes must exist)"],
            id="templated splunk index",
        ),
        pytest.param(
            {
                "to": "http",
                "url": "https://x.example",
                "format": "opensearch",
                "index": "a b-{tag}",
            },
            ['index: index names exclude \\ / * ? " < > | space , # : +'],
            id="bad opensearch index",
        ),
        pytest.param(
            {"to": "http", "url": "http://logs.example", "secret": "s"},
            ["url: https is required to send a secret (http: loopback only)"],
            id="secret over plain http",
        ),
        pytest.param(
            {"to": "http", "url": "https://u:p@x.example"},
            ["url: no credentials in the URL: put them in the secret"],
            id="credentials in url",
        ),
        pytest.param({"to": "http", "url": "ftp://x"}, ["url: an http(s) URL"], id="ftp"),
        pytest.param({"to": "http", "url": "https://x:99999"}, ["url: an http(s) URL"], id="port"),
        pytest.param(
            {
                "to": "http",
                "url": "https://x.example",
                "format": "loki",
                "labels": {"bad-name": "x"},
            },
            ["labels: label name 'bad-name': [a-zA-Z_][a-zA-Z0-9_]*"],
            id="loki label name",
        ),
        pytest.param(
            {"to": "http", "url": "https://x.example", "timeout_s": True},
            ["timeout_s: wrong type: seconds per HTTP request (default 10)"],
            id="bool timeout",
        ),
        pytest.param(
            {"to": "kinesis", "stream": "bad stream!"},
            ["stream: a Kinesis stream name or ARN"],
            id="bad stream",
        ),
        pytest.param(
            {"to": "kinesis", "stream": "s", "max_retries": 11}, ["max_retries: 0-10"], id="retries"
        ),
        pytest.param(
            {"to": "kinesis", "stream": "s", "shards": 2},
            [
                "shards: unknown option (allowed: delivery_stream, format, index, labels, "
                "max_retries, op, partition_key, secret, sourcetype, stream, timeout_s, to, url)"
            ],
            id="unknown option",
        ),
    ],
)
def test_invalid_forward_options_are_located(opts, expected):
    """Each mistake is reported on the option at fault, with what it expects."""
    assert problems(opts) == expected


# ---------------------------------------------------------------- shared pieces
def test_envelopes_match_orjson_of_the_envelope():
    """The pre-encoded record bytes equal orjson.dumps(ev.envelope()) exactly."""
    events = [log_event("a", user={"id": 7}), log_event("b", tag="x.y", id="ev-2")]
    encoded, bad = common.envelopes(events)
    assert bad == []
    assert [data for _, data in encoded] == [orjson.dumps(ev.envelope()) for ev in events]


def test_unserialisable_record_fails_alone():
    """An integer beyond 64 bits fails its own event, not the batch."""
    good, bad = log_event("ok"), log_event("huge", id="big", n=2**70)
    encoded, failures = common.envelopes([good, bad])
    assert [ev for ev, _ in encoded] == [good]
    assert [(f.event, f.retryable) for f in failures] == [(bad, False)]


@pytest.mark.parametrize(
    ("sizes", "max_items", "max_bytes", "expected"),
    [
        pytest.param([1] * 5, 2, 100, [2, 2, 1], id="count limit"),
        pytest.param([40, 60, 1], 10, 100, [2, 1], id="exactly the byte limit"),
        pytest.param([40, 61], 10, 100, [1, 1], id="one byte over"),
        pytest.param([150, 10], 10, 100, [1, 1], id="oversized item alone"),
        pytest.param([], 10, 100, [], id="nothing"),
    ],
)
def test_chunks_respect_count_and_bytes(sizes, max_items, max_bytes, expected):
    """Runs hold at most max_items items and max_bytes bytes, in order."""
    runs = list(common.chunks(sizes, lambda n: n, max_items, max_bytes))
    assert [len(r) for r in runs] == expected
    assert [n for r in runs for n in r] == sizes


def test_retry_budget_counts_attempts_and_honours_at_least(monkeypatch):
    """Retries stop at max_retries; a Retry-After raises the wait; waits grow but stay capped."""
    slept: list[float] = []
    monkeypatch.setattr(common, "sleep", slept.append)
    retry = common.Retry(3, lambda: 60_000)
    assert retry.wait(at_least_s=2.0) and slept[-1] >= 2.0
    assert retry.wait() and retry.wait()
    assert not retry.wait()
    assert retry.gave_up() == "after 4 attempts"
    assert all(s <= max(2.0, common.BACKOFF_CAP_S) for s in slept)


def test_retry_budget_keeps_the_reserve(monkeypatch):
    """No wait may run into the time kept for dead-lettering."""
    monkeypatch.setattr(common, "sleep", lambda s: None)
    retry = common.Retry(3, lambda: common.RESERVE_MS + 1_000)
    assert not retry.wait(at_least_s=1.5)
    assert retry.gave_up() == "after 1 attempt, invocation time running out"
    assert retry.timeout_s(10) == 1.0


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        pytest.param(None, 0, 0, id="absent"),
        pytest.param("7", 7, 7, id="delta seconds"),
        pytest.param("soon", 0, 0, id="garbage"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0, 0, id="date in the past"),
        pytest.param("in-the-future", 0, 0, id="unparseable date"),
    ],
)
def test_retry_after_header_forms(header, low, high):
    """Retry-After is read as delta-seconds or an HTTP date; anything else means no wait."""
    from chalicelib.actions.forward.http import retry_after

    assert low <= retry_after(header) <= high


def test_retry_after_http_date_in_the_future():
    """An HTTP-date Retry-After waits until that moment."""
    import email.utils
    import time

    from chalicelib.actions.forward.http import retry_after

    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after(when) <= 30


def test_template_renders_tag_date_and_fields():
    """Templates take {tag}, {date} (UTC, YYYY.MM.DD) and record fields."""
    ev = log_event(user="ann")
    assert common.Template("logs-{tag}-{date}")(ev) == "logs-aws.lambda.checkout-api-2026.11.26"
    assert common.Template("{user}@{tag}")(ev) == "ann@aws.lambda.checkout-api"
    assert common.Template("static")(ev) == "static"


# ---------------------------------------------------------------- preview
@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        pytest.param(
            {"to": "kinesis", "stream": "app-logs"},
            "kinesis app-logs: partition key 'aws.lambda.checkout-api',",
            id="kinesis",
        ),
        pytest.param(
            {"to": "firehose", "delivery_stream": "logs-to-s3"},
            "firehose logs-to-s3:",
            id="firehose",
        ),
        pytest.param(
            {"to": "http", "url": "https://loki.example", "format": "loki"},
            'http loki loki.example: {"streams":[{"stream":{"job":"sluice"',
            id="loki",
        ),
    ],
)
def test_preview_shows_what_the_destination_receives(opts, expected):
    """`sluice rules test` shows the first event as the destination would get it, without I/O."""
    act = ForwardAction("r", opts, Offline())
    assert act.preview([log_event()]).startswith(expected)


# ---------------------------------------------------------------- the sink registry
class MemorySink(Sink):
    """A sink as a module would declare one: destination, own options, send, preview."""

    to = "memory"
    options: ClassVar[dict[str, Option]] = {
        "shelf": Option(str, "where to keep events (to: memory)", required=True),
        "limit": Option(
            int,
            "events kept (default 10)",
            default=10,
            check=lambda v: None if v > 0 else "above 0",
        ),
    }
    kept: ClassVar[list[str]] = []

    def __init__(self, opts: dict[str, Any], ctx: Any) -> None:
        super().__init__(opts, ctx)
        self.name = f"memory {opts['shelf']}"

    def send(self, events: list[Any], retry: common.Retry) -> common.Outcome:
        room = self.opts["limit"] - len(self.kept)
        self.kept.extend(ev.id for ev in events[:room])
        out = common.Outcome(delivered=min(room, len(events)))
        out.fail(events[room:], "shelf full", False)
        return out

    def preview(self, events: list[Any]) -> str:
        return f"{self.name}: {events[0].id}"


@pytest.fixture
def memory_sink() -> Iterator[type[Sink]]:
    MemorySink.kept = []
    sinks.register(MemorySink)
    yield MemorySink
    sinks.unregister(MemorySink)


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        pytest.param({"to": "memory", "shelf": "a"}, [], id="its own options"),
        pytest.param({"to": "memory"}, ["shelf: required with to: memory"], id="required"),
        pytest.param(
            {"to": "memory", "shelf": "a", "limit": 0}, ["limit: above 0"], id="its own check"
        ),
        pytest.param(
            {"to": "memory", "shelf": "a", "url": "https://x.example"},
            ["url: applies to to: http only"],
            id="another sink's option",
        ),
        pytest.param(
            {"to": "kinesis", "stream": "s", "shelf": "a"},
            ["shelf: applies to to: memory only"],
            id="its option elsewhere",
        ),
        pytest.param(
            {"to": "memory", "shelf": "a", "format": "loki"},
            ["format: applies to to: http only"],
            id="no formats",
        ),
    ],
)
def test_a_registered_sink_joins_the_schema(memory_sink, opts, expected):
    """A sink module's class and @register are all it takes: the schema knows its `to`,
    checks its options and refuses them on other sinks."""
    assert problems(opts) == expected


def test_a_registered_sink_delivers_and_leaves(memory_sink):
    """The action sends through the registered sink; unregistered, `to` refuses it again."""
    act = ForwardAction("r", {"to": "memory", "shelf": "a", "limit": 2}, Offline())
    with pytest.raises(ActionError) as info:
        act.deliver(Delivery(log_events(3), INV))
    assert memory_sink.kept == ["ev-000000", "ev-000001"]
    assert info.value.sent == 2 and "memory a: 1 of 3 event(s) not delivered" in info.value.reason
    assert act.preview([log_event(id="x")]) == "memory a: x"
    with pytest.raises(ValueError, match="registered twice"):
        sinks.register(MemorySink)
    sinks.unregister(MemorySink)
    assert problems({"to": "memory"}) == ["to: one of kinesis, firehose, http"]
    sinks.register(MemorySink)  # for the fixture's teardown
