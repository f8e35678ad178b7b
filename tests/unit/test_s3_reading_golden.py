"""s3_objects: what reading an object hands the pipeline is pinned to a recorded file.

Representative objects (JSON lines in several dialects, Lambda's JSON and text lines,
JVM, Ruby and Node.js runtime text, nginx and plain text, blank and CRLF lines, invalid
UTF-8, malformed and refused JSON, CloudTrail `Records` and a configured expansion,
ALB, CloudFront and CSV files with their headers, a line over the limit) are read by
`process_object` into a capturing pipeline, in chunks of a few lines. Every batch's
name, every event's archive line (`encode_lines`, the bytes the archive writes), its
dedupe identity, count, size and arrival, the ledger and the dead-letter reasons must
equal `tests/data/s3/reading_golden.json`, recorded from the reader before its per-line
costs were cut. `SLUICE_RECORD_GOLDEN=1` writes the file again (review the diff).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.actions.archive import encode_lines
from chalicelib.budget import budget
from chalicelib.event import Ledger, LogEvent
from chalicelib.ingest import s3_objects
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Slices
from chalicelib.rules.inputs import InputDef
from chalicelib.sources import s3 as s3_source
from chalicelib.sources.s3 import ObjectRef

DATA = Path(__file__).resolve().parents[1] / "data" / "s3"
GOLDEN = DATA / "reading_golden.json"
RECORD = bool(os.environ.get("SLUICE_RECORD_GOLDEN"))  # read before the fixtures scrub it
BUCKET = "app-logs-example"
# 2026-11-26T11:00:00Z: the objects' LastModified (the time of lines without one).
MODIFIED = dt.datetime(2026, 11, 26, 11, 0, tzinfo=dt.UTC)

MIXED_LINES = [
    '{"level":"INFO","location":"handler:185","message":"invoice 40233 declined",'
    '"timestamp":"2026-11-26 10:07:02,410+0000","service":"checkout-api","cold_start":false,'
    '"function_request_id":"c6732559-8782-192d-9875-90b1479f795a"}',
    '{"level":40,"time":1795687621180,"pid":8,"hostname":"169.254.12.1","reqId":"6018366c",'
    '"msg":"order cache hit for /api/cart/3872/items","usr":"u62134","latency_ms":23}',
    '{"severity":"info","ts":"2026-11-26T10:07:02.410Z","event":"request","method":"GET",'
    '"path":"/api/cart","status":200,"duration_ms":12.5,"user_agent":"Mozilla/5.0","env":"prod"}',
    '{"time":"2026-11-26T10:07:03.000Z","type":"platform.start","record":'
    '{"requestId":"8f1c","version":"$LATEST"}}',
    '{"time":"2026-11-26T10:07:03.100Z","type":"platform.report","record":{"requestId":"8f1c",'
    '"metrics":{"durationMs":2.5,"billedDurationMs":3,"memorySizeMB":128,"maxMemoryUsedMB":64},'
    '"status":"success"}}',
    '{"timestamp":"2026-11-26T10:07:03.050Z","level":"ERROR","requestId":"8f1c",'
    '"message":"payment failed","errorType":"TimeoutError"}',
    "START RequestId: 8f1c Version: $LATEST",
    "END RequestId: 8f1c",
    "REPORT RequestId: 8f1c\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 64 MB",
    "[ERROR]\t2026-11-26T10:07:04.123Z\t8f1c\tboom: card declined",
    "[INFO] no time here",
    "2026-11-26T10:07:04.200Z\t8f1c\tINFO\tnode says hello",
    "2026-11-26 10:07:04.300 [main] INFO  com.acme.checkout.Handler - order o-1 placed",
    "2026-11-26 10:07:04,301 ERROR [http-nio-8080-exec-3] c.a.c.Payments: card declined",
    "I, [2026-11-26T10:07:04.400000 #8]  INFO -- : ruby says hello",
    "E, [2026-11-26T10:07:04.500000 #8] ERROR -- Checkout: ruby failed",
    '10.0.4.17 - - [26/Nov/2026:10:07:05 +0000] "GET /api/cart HTTP/1.1" 200 512 "-" "curl/8.0"',
    "worker-3 restarted after OOM (exit 137)",
    "",
    "   ",
    "a line ending in CR\r",
    '{"broken":',
    '{"nested":{"a":{"b":[1,2,{"c":"d"}]}},"message":"deep"}',
    '{"id":123456789012345678901234567890,"message":"big integer"}',
    '{"x":1e19,"ref":"1234567890123456789","message":"big float and 19 digits"}',
    '{"x":1e19,"message":"big float alone"}',
    '{"n":-9223372036854775808,"m":18446744073709551615,"message":"64-bit edges"}',
    "[1, 2]",
    '{"Records":[{"eventName":"PutObject","eventTime":"2026-11-26T10:07:06Z"},'
    '{"eventName":"GetObject","eventTime":"2026-11-26T10:07:07Z"}],"digest":"x"}',
    '{"Records":["not","objects"],"message":"kept whole"}',
    '{"message":"' + "long " * 30 + '","level":"warn"}',
    '{"level":"info","msg":"unicode caf\\u00e9 \\u2028 sep","n":1.5,"ok":true,"none":null}',
]
MIXED = (
    "\n".join(MIXED_LINES).encode()
    + b"\nbad \xff byte\n"
    + b"y" * 6000
    + b'\n{"big":"'
    + b"z" * 5100
    + b'"}\nlast'
)

EXPAND_LINES = [
    '{"batch":"b-1","items":[{"msg":"one","level":"info"},"two as text",3],"host":"h1"}',
    '{"batch":"b-2","items":[],"host":"h2"}',
    '{"batch":"b-3","host":"h3","message":"no items"}',
    '{"batch":"b-4","items":[' + ",".join(f'{{"msg":"e{i}"}}' for i in range(9)) + '],"host":"h4"}',
    '{"batch":"b-5","host":"h5","message":"after a chunk of elements"}',
    "a text line",
    '{"batch":"b-6","items":[{"msg":"x"},{"msg":"y"}]}',
    *(f"text line {i}" for i in range(8)),
]


def _objects() -> list[tuple[str, bytes]]:
    s3 = DATA
    return [
        ("app/2026/11/26/mixed.log.gz", gzip.compress(MIXED, mtime=0)),
        ("app/2026/11/26/plain.log", MIXED.replace(b"\n{", b"\nx{")[1:]),
        ("expand/2026/11/26/batches.jsonl", "\n".join(EXPAND_LINES).encode()),
        ("AWSLogs/123456789012/elasticloadbalancing/x/alb.log", (s3 / "alb.log").read_bytes()),
        (
            "cdn/E2EXAMPLE.2026-11-26-10.abcd1234.gz",
            gzip.compress((s3 / "cloudfront.log").read_bytes(), mtime=0),
        ),
        ("exports/orders.csv", (s3 / "orders.csv").read_bytes()),
        ("trail/2026/11/26/cloudtrail.json", (s3 / "cloudtrail.json").read_bytes()),
        ("app/2026/11/26/app.jsonl", (s3 / "app.jsonl").read_bytes()),
    ]


INPUTS = [InputDef("expand", prefix="expand/", expand="items", context="doc", tag="app.batches")]


class _S3:
    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.bodies[Key]), "LastModified": MODIFIED}


class _Capture:
    """The pipeline's part that process_object uses; every slice is kept, not processed."""

    def __init__(self) -> None:
        from chalicelib.settings import Settings

        settings = Settings.from_env()
        rules = SimpleNamespace(inputs=INPUTS)
        self.rt = SimpleNamespace(settings=settings, rules=SimpleNamespace(get=lambda: rules))
        self.batches: list[tuple[str, list[LogEvent]]] = []

    def slices(self, inv: Invocation, batch_id: str, *, isolate: bool = False) -> Slices:
        return Slices(self, inv, batch_id, budget())  # type: ignore[arg-type]

    def process_slice(
        self, events: list[LogEvent], inv: Invocation, batch_id: str, **_: Any
    ) -> Ledger:
        self.batches.append((batch_id, list(events)))
        n = sum(ev.count for ev in events)
        return Ledger(received=n, archived=n)


def _read(key: str, body: bytes) -> dict[str, Any]:
    pipeline = _Capture()
    dead: list[list[Any]] = []
    ref = ObjectRef(BUCKET, key, None, "etag-" + key.rsplit("/", 1)[-1], len(body))
    outcome = s3_objects.process_object(
        _S3({key: body}),
        pipeline,  # type: ignore[arg-type]
        ref,
        Invocation("req-1", "sluice-test-s3_objects"),
        margin_ms=-1,
        dead_letter=lambda reason, n: dead.append([reason, n]),
    )
    batches = []
    for batch_id, events in pipeline.batches:
        by_tag: dict[str, list[LogEvent]] = {}
        for ev in events:
            by_tag.setdefault(ev.tag, []).append(ev)
        lines: list[str] = []
        for evs in by_tag.values():
            data, bad = encode_lines(evs)
            assert not bad
            lines += data.decode().split("\n")[:-1]
        extra = [[ev.identity(), ev.count, ev.size, ev.arrival] for ev in events]
        batches.append({"batch": batch_id, "lines": lines, "events": extra})
    led = outcome.ledger
    return {
        "key": key,
        "format": outcome.format,
        "lines": outcome.lines,
        "metadata_lines": outcome.metadata_lines,
        "ledger": [led.received, led.archived, led.dropped, led.dead_lettered],
        "dead_letter_reasons": dict(sorted(led.dead_letter_reasons.items())),
        "dead_letters": dead,
        "batches": batches,
    }


def _read_all() -> list[dict[str, Any]]:
    return [_read(key, body) for key, body in _objects()]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 lines and a 5,000-byte line limit, so both boundaries are crossed."""
    monkeypatch.setattr(s3_objects, "CHUNK_LINES", 7)
    monkeypatch.setattr(s3_source, "_line_limit", lambda: 5000)  # the 6,000-byte line is cut


def test_reading_matches_the_recorded_output(small_chunks: None) -> None:
    """Every object's batches, archive lines, identities, sizes, ledger and dead letters
    are byte for byte what the recorded reader produced."""
    got = _read_all()
    if RECORD:
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert [o["key"] for o in got] == [o["key"] for o in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, g["key"]
