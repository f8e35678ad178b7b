"""`make bench` for the other two triggers: `kinesis_records` and `s3_objects`.

Same method as `run.py` (the CloudWatch Logs bench), whose helpers this module
imports: the full handler in process with a real `Runtime` on botocore clients
answered by `before-send` hooks (`stubs.AwsAnswers`: S3 PutObject with its CRC32
trailer and SigV4, the in-memory DynamoDB for claims, dedupe and throttles, SNS,
Secrets Manager), Slack on loopback, the same 20 rules (`workload.RULES`), the
floor measured in the same run and interleaved with the handler, medians, one
core, stdout (ledger line, EMF) sent to /dev/null while timing, and peak RSS
(ru_maxrss) from fresh interpreters started through a forked `sh`
(`sources_child.py`; see `child.py` for why).

kinesis_records
---------------
* Workload: Lambda Kinesis events of 100 records from one shard (the function's
  `batch_size`), a fan-in stream's mix, in shuffled order: 40 JSON records with a
  `tag` (one event each; app.checkout, app.payments, ecs.web-frontend), 25 text
  records of 10 newline-separated lines (two thirds JSON lines, the rest plain and
  Python-runtime text), 20 CloudWatch Logs subscription records (gzip level 6 of
  the subscription document, as a subscription to a stream writes them; 50
  events each from `workload.document`, Lambda START/END/REPORT lines included)
  and 15 KPL-aggregated records (`kpl.aggregate` of 20 user records: 70% JSON
  with a tag, 30% one text line). 1,590 events a batch; four distinct batches.
  Every repetition gets fresh sequence numbers and CloudWatch event ids (alert
  dedupe would otherwise, rightly, skip a replayed batch's alerts).
* Floor: base64 of every record, gunzip of the gzip ones, orjson of each
  subscription document, JSON record and JSON line/message (text lines become
  `{"message": line}` after a UTF-8 decode), orjson of every record. KPL
  framing (protobuf walk + MD5) is not in the floor: it is handed each
  aggregate's user records, so the ratio is, if anything, understated.
* Peak RSS: a fresh interpreter handling one 100-record batch of the same mix
  made large (subscription records of 1,000 events, text records of 300 lines,
  KPL records of 200 user records), ~4 MB of event JSON, under Lambda's 6 MB
  invocation payload limit.

s3_objects
----------
* Workload: an SQS event (the `s3_objects` trigger) whose S3 notification names a
  gzip (level 6) object of log lines: a 16,000-line pool of a busy Lambda
  function's and an ECS web tier's lines (`workload._Gen`: ~50% JSON application
  lines in three logger dialects, Lambda platform lines, plain and runtime text,
  nginx access lines; 188 bytes a line), repeated until the size is reached. The
  first line is JSON, so the object reads as `jsonl` (every line parsed, text
  lines as log messages). The pool (~3 MB) is far beyond gzip's 32 KiB window,
  so the repetition does not flatter the compression ratio (6.7:1).
* GetObject is answered at the botocore level: a `before-send.s3.GetObject` hook
  returns an `AWSResponse` whose `raw` is a file-like. For streaming operations
  botocore wraps `raw` in a `StreamingBody` and never reads it itself
  (`botocore.endpoint.convert_to_response_dict`), so the core's 1 MiB reads reach
  the stub one at a time: the stub S3 client was not needed, and GetObject keeps
  its real request path (SigV4, If-Match on the notification's ETag, response
  parsing, checksum mode). For the throughput object the body is prepared in
  memory beforehand and served with its Content-Length and x-amz-checksum-crc32,
  which botocore verifies as it streams. For the large object the body is made as
  it is read (`GzipLines`: lines from the pool, gzip-compressed incrementally), so
  the object never exists in memory or on disk; its length and checksum are not
  known up front, so those headers are left out (botocore then skips its length
  count and CRC check). The generator's time is measured and subtracted.
* Throughput: THROUGHPUT_MIB of text (~10 MB gzip), one invocation per
  repetition, each on a new object key (the state table's claims would otherwise
  skip a re-delivery, rightly). Floor: gunzip in 1 MiB reads, split at line feeds,
  orjson of each JSON line (`{"message": text}` for the others), orjson of every
  record.
* Peak RSS: a fresh interpreter handling a 1 GiB object (LARGE_MIB; another size
  with BENCH_LARGE_MIB=n, e.g. 256 for a quicker run: with 1 GiB the whole
  `make bench` takes ~2 minutes), with SLUICE_MAX_OBJECT_BYTES above it and a
  context whose clock starts at 15 minutes (a real countdown: running out would
  show as a continuation, which fails the bench); then a SMALL_MIB object beside
  it, so memory growing with object size would show. The child also decompresses
  every archive object it is sent and counts its lines (timed and subtracted like
  the generator), so the 1 GiB run's archive is checked against its ledger.
* Stage detail: `stages.py`'s timing wrappers (route, archive encode / gzip /
  PutObject, alert deliveries, report) around one extra Kinesis round and the S3
  checked round; the source's own reading and parsing is the rest.

Gates (a broken pipeline must not produce a fast number): every invocation's
ledger (captured from the handler's own `report` call) balances with nothing
dead-lettered, no failed records or messages, no continuation, received == the
events put in; archive bytes were produced; in a checked round the archive
objects decode to lines standing for exactly `archived` events with the rules'
transforms visible (`run.check_archive`); rules dropped events.

Prints detail, then two lines:
    bench: kinesis_records events_per_s=N floor_events_per_s=N ratio=R peak_rss_mb=N
    bench: s3_objects events_per_s=N floor_events_per_s=N ratio=R peak_rss_mb=N
(the second preceded by one detail line: object size, events, wall time, RSS).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # puts the repo root on sys.path
import orjson
import workload
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from stubs import ACCOUNT, REGION, AwsAnswers, LambdaContext, SlackServer

from chalicelib.sources import kpl
from sluice_cli.payloads import (
    gzip_bytes,
    kinesis_record,
    kpl_aggregate,
    s3_notification,
    s3_record,
    sqs_record,
)

# -- sizes ---------------------------------------------------------------------------
K_REPS = 7  # medians of 7, as run.py
K_ROUNDS = 2  # each repetition: the 4 batches twice, 12,720 events (~0.15 s)
K_BATCHES = 4
K_RSS_RUNS = 3
S3_REPS = 3  # one 64 MiB invocation is ~3 s: 3 reps keep the bench short
THROUGHPUT_MIB = 64  # 64 MiB of text: ~357,000 lines, 10 MB gzip
SMALL_MIB = 16  # the peak-RSS comparison point
# 1 GiB: ~90 s (74 handler + 16 generator) of make bench's ~2 min. BENCH_LARGE_MIB=256
# for a quicker run.
LARGE_MIB = 1024
GZIP_LEVEL = 6  # gzip's default; what log shippers and `gzip` write
FIFTEEN_MIN_MS = 900_000
LAMBDA_MEMORY_MB = 512  # the product issue: a 1 GB object within a 512 MB function
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024  # synchronous invocation payload (Kinesis batches)

STREAM = "sluice-fan-in"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}"
QUEUE = "sluice-objects"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{QUEUE}"
BUCKET = "acme-app-logs"
JSON_TAGS = ("app.checkout", "app.payments", "ecs.web-frontend")
GZ = b"\x1f\x8b"


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def row(label: str, value: str) -> None:
    print(f"  {label:44} {value}")


# -- AWS answers: GetObject streamed, GetQueueUrl ----------------------------------------
class MemoryRaw:
    """A prepared body, served `read(n)` by `read(n)` like urllib3's response."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int | None = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else self._pos + n
        out = bytes(self._view[self._pos : end])
        self._pos += len(out)
        return out

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:  # error bodies: `.content`
        yield self.read()

    def close(self) -> None:
        pass


class GzipLines:
    """A gzip object of log lines made as it is read: `read(n)` compresses lines from
    `pool` (cycled) until n bytes of gzip are ready, so memory holds one block and
    zlib's state, never the object. Whole lines, until `size` plain bytes are reached
    (the object exceeds `size` by less than one line)."""

    BLOCK = 256 * 1024  # plain bytes compressed per step (~40 KB of gzip)

    def __init__(self, pool: Sequence[bytes], size: int, level: int = GZIP_LEVEL) -> None:
        self._pool = pool
        self._size = size
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._buf = bytearray()
        self._next = 0
        self._done = False
        self.plain_bytes = 0
        self.gz_bytes = 0
        self.lines = 0
        self.make_ns = 0  # time spent making the object: the stub's, not the handler's
        self.reads = 0
        self.largest_read = 0

    def read(self, n: int | None = -1) -> bytes:
        t0 = time.perf_counter_ns()
        while not self._done and (n is None or n < 0 or len(self._buf) < n):
            self._step()
        take = len(self._buf) if n is None or n < 0 else min(n, len(self._buf))
        with memoryview(self._buf) as view:
            out = bytes(view[:take])
        del self._buf[:take]
        self.gz_bytes += take
        self.reads += 1
        self.largest_read = max(self.largest_read, take)
        self.make_ns += time.perf_counter_ns() - t0
        return out

    def _step(self) -> None:
        pool, i, got = self._pool, self._next, 0
        left = self._size - self.plain_bytes
        take: list[bytes] = []
        while got < self.BLOCK and got < left:
            line = pool[i]
            take.append(line)
            got += len(line)
            i = i + 1 if i + 1 < len(pool) else 0
        self._next = i
        self.lines += len(take)
        self.plain_bytes += got
        self._buf += self._z.compress(b"".join(take))
        if self.plain_bytes >= self._size:
            self._buf += self._z.flush()
            self._done = True

    def close(self) -> None:
        pass


@dataclass
class S3Object:
    etag: str
    open: Callable[[], Any]  # a fresh `raw` per GetObject
    length: int | None = None  # gzip bytes, when known up front
    crc32: str | None = None  # base64 of the big-endian CRC32, when known
    opened: list[Any] = field(default_factory=list)


class SourceAnswers(AwsAnswers):
    """`stubs.AwsAnswers` plus what the two triggers also ask: S3 GetObject (streamed,
    see the module docstring), SQS GetQueueUrl, and optionally a line count of every
    archive object (decompressed as it arrives, then discarded; time kept apart)."""

    def __init__(self, rule_items: list[dict[str, Any]]) -> None:
        super().__init__(rule_items)
        self.objects: dict[tuple[str, str], S3Object] = {}
        self.count_archive_lines = False
        self.archive_lines = 0
        self.count_ns = 0

    def __call__(self, request: AWSPreparedRequest, event_name: str, **kw: Any) -> AWSResponse:
        if event_name == "before-send.s3.GetObject":
            self.calls["s3.GetObject"] += 1
            return self._get_object(request)
        return super().__call__(request, event_name, **kw)

    def _get_object(self, request: AWSPreparedRequest) -> AWSResponse:
        url = urlsplit(request.url)
        host_bucket = url.netloc.split(".s3.", 1)[0] if ".s3." in url.netloc else ""
        if host_bucket:  # virtual-hosted style (botocore's default)
            bucket, key = host_bucket, unquote(url.path[1:])
        else:
            bucket, _, key = unquote(url.path[1:]).partition("/")
        obj = self.objects.get((bucket, key))
        rid = {"x-amz-request-id": uuid.uuid4().hex[:16].upper()}
        if obj is None:
            body = b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
            body += b"</Message></Error>"
            return AWSResponse(
                request.url, 404, {**rid, "Content-Type": "application/xml"}, MemoryRaw(body)
            )
        match = request.headers.get("If-Match")
        if isinstance(match, bytes):
            match = match.decode()
        if match is not None and match.strip('"') != obj.etag:
            body = b"<Error><Code>PreconditionFailed</Code><Message>At least one of the "
            body += b"pre-conditions you specified did not hold</Message></Error>"
            return AWSResponse(
                request.url, 412, {**rid, "Content-Type": "application/xml"}, MemoryRaw(body)
            )
        headers = {
            **rid,
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes).decode(),
            "Content-Type": "application/gzip",
            "ETag": f'"{obj.etag}"',
            "Last-Modified": formatdate(workload.T0_MS / 1000 + 3600, usegmt=True),
            "Accept-Ranges": "bytes",
            "x-amz-server-side-encryption": "AES256",
        }
        if obj.length is not None:
            headers["Content-Length"] = str(obj.length)
        if obj.crc32 is not None:
            headers["x-amz-checksum-crc32"] = obj.crc32
            headers["x-amz-checksum-type"] = "FULL_OBJECT"
        raw = obj.open()
        obj.opened.append(raw)
        return AWSResponse(request.url, 200, headers, raw)

    def _sqs_GetQueueUrl(self, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        return self._json({"QueueUrl": QUEUE_URL})

    def _s3_PutObject(self, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if not self.count_archive_lines:
            return super()._s3_PutObject(request)
        keep, self.keep_bodies = self.keep_bodies, True
        try:
            answer = super()._s3_PutObject(request)
        finally:
            self.keep_bodies = keep
        t0 = time.perf_counter_ns()
        _, gz = self.bodies.pop()
        self.archive_lines += zlib.decompress(gz, 47).count(b"\n")
        self.count_ns += time.perf_counter_ns() - t0
        return answer


# -- contexts and the ledger ---------------------------------------------------------------
class KinesisContext(LambdaContext):
    function_name = "sluice-dev-kinesis_records"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
    log_group_name = f"/aws/lambda/{function_name}"


class S3Context(LambdaContext):
    function_name = "sluice-dev-s3_objects"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
    log_group_name = f"/aws/lambda/{function_name}"


class CountdownContext(S3Context):
    """A context whose remaining time counts down from `ms` as Lambda's does."""

    def __init__(self, ms: int = FIFTEEN_MIN_MS) -> None:
        super().__init__()
        self._deadline = time.monotonic() + ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


class Ledgers:
    """The ledger each invocation reports (the handlers answer only with
    `batchItemFailures`): `chalicelib.handlers.report` wrapped while active. The
    wrapper keeps references; the dicts are built after timing."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, dict[str, Any]]] = []

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        from chalicelib import handlers

        original = handlers.report

        def report(
            function: str, ledger: Any, namespace: str, extra: dict[str, Any] | None = None
        ) -> None:
            self.seen.append((function, ledger, extra or {}))
            original(function, ledger, namespace, extra)

        handlers.report = report
        try:
            yield
        finally:
            handlers.report = original

    def take(self) -> list[dict[str, Any]]:
        out = [{"function": f, **lg.as_dict(), **extra} for f, lg, extra in self.seen]
        self.seen.clear()
        return out


def alert_note(r: dict[str, Any]) -> str:
    """What the two alerting rules did in one invocation (Slack's is throttled to 3 per
    5 minutes across the whole bench, so later rounds mostly count suppressions)."""
    parts = []
    for rule in ("computer-alerts", "connection-errors"):
        c = r["rules"].get(rule, {})
        if c.get("matched"):
            parts.append(
                f"{rule} matched {c['matched']}, alerted {c.get('alerted', 0)}, "
                f"suppressed {c.get('suppressed', 0)}"
            )
    return "; ".join(parts) or "no alert rule matched"


def check_invocation(r: dict[str, Any], expect: int, where: str) -> None:
    """`run.check_result` plus what the two triggers add: no failed record or message,
    no continuation, no object error or skip."""
    import run

    run.check_result(r, expect, where)
    assert r.get("failed_records", 0) == 0 and r.get("failed_messages", 0) == 0, f"{where}: {r}"
    assert "errors" not in r, f"{where}: {r['errors']}"
    for info in r.get("objects", ()):
        assert not {"error", "skipped", "continued_at_line"} & set(info), f"{where}: {info}"


# -- kinesis workload -----------------------------------------------------------------------
@dataclass
class KRecord:
    kind: str  # json | text | cw | kpl
    pk: str
    data: bytes = b""  # json, text
    doc: dict[str, Any] | None = None  # cw: the subscription document
    users: list[tuple[str, bytes]] = field(default_factory=list)  # kpl
    events: int = 0


@dataclass
class KSpec:
    """One batch's content; `materialise` gives it sequence numbers and ids."""

    shard: int
    records: list[KRecord]

    @property
    def events(self) -> int:
        return sum(r.events for r in self.records)

    def kinds(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for r in self.records:
            c[r.kind] += r.events
        return c


def _json_record(g: Any, ms: int, tag: str) -> bytes:
    return orjson.dumps({"tag": tag, **orjson.loads(g.json_line(ms))})


def kinesis_spec(
    seed: int,
    *,
    n_json: int = 40,
    n_text: int = 25,
    text_lines: int = 10,
    n_cw: int = 20,
    cw_events: int = 50,
    n_kpl: int = 15,
    kpl_users: int = 20,
) -> KSpec:
    rng = random.Random(seed)
    g = workload._Gen("/ecs/web-frontend", seed)  # the workload's line generator
    ms = workload.T0_MS
    recs: list[KRecord] = []

    def pk() -> str:
        return uuid.UUID(int=rng.getrandbits(128)).hex[:16]

    for _ in range(n_json):
        ms += rng.randint(0, 20)
        recs.append(KRecord("json", pk(), _json_record(g, ms, rng.choice(JSON_TAGS)), events=1))
    for _ in range(n_text):
        lines = []
        for _ in range(text_lines):
            ms += rng.randint(0, 5)
            lines.append(g.app_line(ms))
        recs.append(KRecord("text", pk(), "\n".join(lines).encode(), events=text_lines))
    for i in range(n_cw):
        group = workload.LOG_GROUPS[i % len(workload.LOG_GROUPS)]
        doc = workload.document(group, cw_events, seed=seed * 100 + i)
        recs.append(KRecord("cw", pk(), doc=doc, events=len(doc["logEvents"])))
    for _ in range(n_kpl):
        users = []
        for _ in range(kpl_users):
            ms += rng.randint(0, 5)
            line = (
                _json_record(g, ms, rng.choice(JSON_TAGS))
                if rng.random() < 0.7
                else g.plain_line(ms).encode()
            )
            users.append((pk(), line))
        recs.append(KRecord("kpl", pk(), users=users, events=kpl_users))
    rng.shuffle(recs)
    return KSpec(seed % 4, recs)


def _cw_data(doc: dict[str, Any], k: int) -> bytes:
    """gzip of the document with event ids made unique to `k` (as `workload.variant`)."""
    evs = [{**le, "id": le["id"][:26] + f"{k:06d}" + le["id"][32:]} for le in doc["logEvents"]]
    return gzip_bytes(orjson.dumps({**doc, "logEvents": evs}), level=6)


def materialise(spec: KSpec, k: int, batch: int) -> tuple[dict[str, Any], dict[int, list[bytes]]]:
    """(Lambda's Kinesis event, each KPL record's user payloads for the floor)."""
    shard = f"shardId-{spec.shard:012d}"
    records = []
    kpl_payloads: dict[int, list[bytes]] = {}
    arrival = workload.T0_MS / 1000
    for i, r in enumerate(spec.records):
        seq = f"4959{k:010d}{batch:06d}{i:036d}"  # 56 digits, unique per shard
        if r.kind == "cw":
            assert r.doc is not None
            data = _cw_data(r.doc, k)
        elif r.kind == "kpl":
            data = kpl_aggregate(r.users)
            kpl_payloads[i] = [u for _, u in r.users]
        else:
            data = r.data
        records.append(
            kinesis_record(
                data,
                sequence=seq,
                partition_key=r.pk,
                arrival=round(arrival + i * 0.01, 3),
                stream_arn=STREAM_ARN,
                shard=shard,
                region=REGION,
                role_arn=f"arn:aws:iam::{ACCOUNT}:role/sluice-dev",
            )
        )
    return {"Records": records}, kpl_payloads


K_FLOOR_STAGES = (
    "base64 decode",
    "gunzip (subscription records)",
    "orjson.loads (documents, records, lines)",
    "orjson.dumps(records)",
)


def kinesis_floor(
    event: dict[str, Any], kpl_payloads: dict[int, list[bytes]]
) -> tuple[list[int], int]:
    """The bare minimum with one Kinesis batch (module docstring), stage marks, events."""
    now = time.perf_counter_ns
    loads, dumps, b64 = orjson.loads, orjson.dumps, base64.b64decode
    t0 = now()
    datas = [b64(r["kinesis"]["data"]) for r in event["Records"]]
    t1 = now()
    bodies = [zlib.decompress(d, 47) if d[:2] == GZ else d for d in datas]
    t2 = now()
    records: list[Any] = []
    append = records.append

    def text(b: bytes) -> None:
        if b[:1] == b"{" and b"\n" not in b:
            append(loads(b))
            return
        for line in b.split(b"\n"):
            if line:
                append(loads(line) if line[:1] == b"{" else {"message": line.decode()})

    for i, body in enumerate(bodies):
        users = kpl_payloads.get(i)
        if users is not None:
            for u in users:
                text(u)
        elif datas[i][:2] == GZ:
            for le in loads(body)["logEvents"]:
                m = le["message"]
                append(loads(m) if m[:1] == "{" else {"message": m})
        else:
            text(body)
    t3 = now()
    lines = [dumps(r) for r in records]
    t4 = now()
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3], len(lines)


# -- s3 workload ------------------------------------------------------------------------------
def line_pool(n: int = 16_000, seed: int = 7) -> list[bytes]:
    """Log lines of a busy Lambda function (3/4) and an ECS web tier (1/4), in time
    order, starting at a JSON line (so the object's format is detected as `jsonl`)."""
    fn = workload._Gen("/aws/lambda/checkout-api", seed).lambda_messages(n * 3 // 4)
    web = workload._Gen(workload.ECS_GROUP, seed + 1).ecs_messages(n - len(fn))
    lines = [m for _, m in sorted(fn + web, key=lambda x: x[0])]
    first = next(i for i, m in enumerate(lines) if m.startswith("{"))
    return [(m + "\n").encode() for m in lines[first:] + lines[:first]]


def s3_event(key: str, etag: str, size: int) -> dict[str, Any]:
    """The `s3_objects` trigger: SQS delivering S3's ObjectCreated notification."""
    record = s3_record(
        BUCKET,
        key,
        size,
        etag,
        "0066A1B2C3D4E5F601",
        event_time="2026-11-26T11:00:02.120Z",
        principal="AWS:AROAEXAMPLEID:firehose",
        source_ip="10.0.4.17",
        configuration_id="sluice-objects",
        region=REGION,
    )
    body = orjson.dumps(s3_notification(record)).decode()
    message = sqs_record(
        body,
        message_id=str(uuid.uuid4()),
        receipt_handle="AQEB" + base64.b64encode(os.urandom(48)).decode(),
        attributes={
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(workload.T0_MS + 3_602_000),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(workload.T0_MS + 3_602_050),
        },
        queue_arn=QUEUE_ARN,
        region=REGION,
    )
    return {"Records": [message]}


def object_key(n: int) -> str:
    return f"checkout-api/2026/11/26/10/checkout-api-logs-{n:04d}.jsonl.gz"


S3_FLOOR_STAGES = (
    "gunzip (1 MiB reads)",
    "split at line feeds",
    "orjson.loads(JSON lines)",
    "orjson.dumps(records)",
)


def s3_floor(gz: bytes, chunk: int = 1024 * 1024) -> tuple[list[int], int]:
    """The bare minimum with one streamed gzip object of lines (module docstring)."""
    now = time.perf_counter_ns
    loads, dumps = orjson.loads, orjson.dumps
    acc = [0, 0, 0, 0]
    n = 0
    d = zlib.decompressobj(31)
    pending = b""
    view = memoryview(gz)
    for off in range(0, len(gz) + 1, chunk):
        t0 = now()
        out = d.decompress(view[off : off + chunk]) if off < len(gz) else d.flush()
        t1 = now()
        parts = (pending + out).split(b"\n")
        pending = parts.pop()
        t2 = now()
        recs = [loads(p) if p[:1] == b"{" else {"message": p.decode()} for p in parts]
        t3 = now()
        lines = [dumps(r) for r in recs]
        t4 = now()
        n += len(lines)
        acc[0] += t1 - t0
        acc[1] += t2 - t1
        acc[2] += t3 - t2
        acc[3] += t4 - t3
    assert not pending and d.eof
    return acc, n


def stage_rows(acc: Counter[str], total: int, n: int, rest: str, route: str) -> None:
    """Exclusive µs/event of the stages `stages.py` can time in these handlers; what the
    source's own reading and parsing costs is the rest."""
    other = total - acc["route"] - acc["archive"] - acc["deliveries"] - acc["report"]
    for label, ns in (
        (rest, other),
        (route, acc["route"]),
        ("archive encode (JSON lines)", acc["encode"]),
        ("archive gzip", acc["gzip"]),
        ("archive S3 PutObject via botocore", acc["archive"] - acc["encode"] - acc["gzip"]),
        ("alert gates + Slack/SNS", acc["deliveries"]),
        ("ledger log + EMF metrics", acc["report"]),
        ("handler total", total),
    ):
        row("  " + label, f"{ns / 1000 / n:6.2f}")


# -- fresh processes ----------------------------------------------------------------------
def spawn(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run `sources_child.py` on `spec` through a forked `sh` (ru_maxrss survives exec:
    see child.py) and return its report."""
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        out = Path(tmp) / "out.json"
        spec_path.write_bytes(orjson.dumps(spec))
        child = str(Path(__file__).with_name("sources_child.py"))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                "/bin/sh",
                "-c",
                '"$@"; exit $?',
                "sh",
                sys.executable,
                child,
                str(spec_path),
                str(out),
            ],
            env=env,
            cwd=harness.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise AssertionError(
                f"sources child failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}"
            )
        rep: dict[str, Any] = orjson.loads(out.read_bytes())
    rep["wall_s"] = wall
    return rep


# -- kinesis_records ------------------------------------------------------------------------
def bench_kinesis(
    rt: Any, answers: SourceAnswers, slack: SlackServer, env: dict[str, str], rules_path: Path
) -> tuple[float, float, float]:
    from chalicelib.handlers import handle_kinesis_records

    specs = [kinesis_spec(2000 + b) for b in range(K_BATCHES)]
    per_batch = specs[0].events
    kinds: Counter[str] = Counter()
    for s in specs:
        kinds.update(s.kinds())
    ledgers = Ledgers()

    def run_batches(
        batches: list[tuple[dict[str, Any], Any]], instrument: Counter[str] | None = None
    ) -> tuple[int, list[Any]]:
        import stages

        ctxs = [KinesisContext() for _ in batches]
        answers_ = []
        absent: set[str] = set()
        with (
            ledgers.capture(),
            stages.instrumented(instrument, absent)
            if instrument is not None
            else contextlib.nullcontext(),
            harness.quiet_stdout(),
        ):
            t0 = time.perf_counter_ns()
            for (ev, _), ctx in zip(batches, ctxs, strict=True):
                answers_.append(handle_kinesis_records(ev, ctx, rt))
            t1 = time.perf_counter_ns()
        return t1 - t0, answers_

    def check(expected: list[int], replies: list[Any], where: str) -> list[dict[str, Any]]:
        results = ledgers.take()
        assert len(results) == len(expected) == len(replies), where
        for r, n, reply in zip(results, expected, replies, strict=True):
            assert reply == {"batchItemFailures": []}, f"{where}: {reply}"
            assert r["records"] == 100, r
            check_invocation(r, n, where)
        return results

    # Checked round: warms clients, rules, Slack; proves the archive.
    import run

    batches = [materialise(s, 0, b) for b, s in enumerate(specs)]
    answers.keep_bodies = True
    _, replies = run_batches(batches)
    answers.keep_bodies = False
    results = check([s.events for s in specs], replies, "kinesis checked round")
    archived = sum(r["archived"] for r in results)
    lines, seen = run.check_archive(answers.bodies, archived)
    tags = Counter(
        unquote(u).split("/archive/tag=", 1)[1].split("/", 1)[0] for u, _ in answers.bodies
    )
    answers.bodies.clear()
    dropped = sum(r["dropped"] for r in results)
    assert answers.archive_bytes > 0 and dropped > 0, (answers.archive_bytes, dropped)
    print(
        f"\nkinesis_records: batches of 100 records, {per_batch:,} events each "
        f"(events by record kind over {K_BATCHES} batches: {dict(kinds)}); checked round: "
        f"{lines} archive lines decoded, {dropped} dropped; "
        f"{'; '.join(alert_note(r) for r in results[:1])}; archive objects by tag: {dict(tags)}"
    )
    print(f"  records with a transform's field: {dict(seen)}")

    # Timed: REPS x (floor, handler), each rep on fresh sequence numbers and ids.
    n = sum(s.events for s in specs) * K_ROUNDS
    floor_ns: list[int] = []
    floor_st: list[list[int]] = []
    pipe_ns: list[int] = []
    for rep in range(K_REPS):
        evs = [
            (materialise(s, 1 + rep * K_ROUNDS + r, b), s.events)
            for r in range(K_ROUNDS)
            for b, s in enumerate(specs)
        ]
        marks = [0] * len(K_FLOOR_STAGES)
        fn = 0
        for (ev, payloads), _ in evs:
            m, k = kinesis_floor(ev, payloads)
            fn += k
            marks = [a + b for a, b in zip(marks, m, strict=True)]
        assert fn == n, (fn, n)
        floor_st.append(marks)
        floor_ns.append(sum(marks))
        ns, replies = run_batches([e for e, _ in evs])
        check([c for _, c in evs], replies, f"kinesis rep {rep}")
        pipe_ns.append(ns)
    print(f"  floor ({K_REPS} reps of {n:,} events, median µs/event):")
    for i, name in enumerate(K_FLOOR_STAGES):
        row("  " + name, f"{median([s[i] for s in floor_st]) / 1000 / n:6.2f}")
    floor_per_s = n / (median(floor_ns) / 1e9)
    row("  total", f"{median(floor_ns) / 1000 / n:6.2f}   ({floor_per_s:,.0f} events/s)")
    eps = n / (median(pipe_ns) / 1e9)
    print(
        f"  handler, end to end: {median(pipe_ns) / 1000 / n:.2f} µs/event, {eps:,.0f} events/s "
        f"(reps {min(pipe_ns) / 1000 / n:.2f}-{max(pipe_ns) / 1000 / n:.2f}); "
        f"{median(pipe_ns) / 1e6 / (K_BATCHES * K_ROUNDS):.1f} ms per 100-record batch"
    )
    acc: Counter[str] = Counter()
    extra_round = [materialise(s, 1 + K_REPS * K_ROUNDS, b) for b, s in enumerate(specs)]
    total, replies = run_batches(extra_round, instrument=acc)
    check([s.events for s in specs], replies, "kinesis instrumented")
    print("  handler by stage (one more round, instrumented, µs/event):")
    stage_rows(
        acc,
        total,
        sum(s.events for s in specs),
        "records: b64+KPL+gunzip+parse (+ the rest)",
        "route (20 rules)",
    )
    aggregates = [kpl_aggregate(r.users) for s in specs for r in s.records if r.kind == "kpl"]
    t0 = time.perf_counter_ns()
    for data in aggregates:
        kpl.deaggregate(data)
    t_kpl = time.perf_counter_ns() - t0
    print(
        f"  (KPL de-aggregation, in the handler but not in the floor: "
        f"{t_kpl / 1000 / sum(s.events for s in specs):.2f} µs per batch event; Slack posts "
        f"so far {len(slack.posts)})"
    )

    # Peak RSS: one large batch in fresh interpreters.
    big = kinesis_spec(2999, cw_events=1000, text_lines=300, kpl_users=200)
    big_event, _ = materialise(big, 0, 99)
    raw = orjson.dumps(big_event)
    assert len(raw) < LAMBDA_PAYLOAD_LIMIT, len(raw)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        ev_path = Path(tmp) / "kinesis.json"
        ev_path.write_bytes(raw)
        children = [
            spawn({"kind": "kinesis", "rules": str(rules_path), "event": str(ev_path)}, env)
            for _ in range(K_RSS_RUNS)
        ]
    for child in children:
        check_invocation(child["result"], big.events, "kinesis rss")
        assert child["reply"] == {"batchItemFailures": []} and child["archive_bytes"] > 0, child
    rss = median([r["rss_kb"] / 1024 for r in children])
    handler_ms = median([r["handler_s"] for r in children]) * 1000
    print(
        f"  peak RSS ({K_RSS_RUNS} fresh interpreters, one 100-record batch of "
        f"{big.events:,} events, {len(raw) / 1e6:.1f} MB event): "
        f"{median([r['rss_before_kb'] / 1024 for r in children]):.1f} MB after imports, "
        f"{rss:.1f} MB after the handler ({handler_ms:.0f} ms)"
    )
    return eps, floor_per_s, rss


# -- s3_objects -------------------------------------------------------------------------------
def large_mib() -> int:
    return int(os.environ.get("BENCH_LARGE_MIB") or LARGE_MIB)


def prepared_object(pool: Sequence[bytes], mib: int) -> tuple[bytes, int]:
    """(gzip bytes, lines) of a `mib` MiB object, made once, outside timing."""
    g = GzipLines(pool, mib * 1024 * 1024)
    gz = g.read()
    return gz, g.lines


def bench_s3(
    rt: Any, answers: SourceAnswers, env: dict[str, str], rules_path: Path
) -> tuple[float, float, float, str]:
    from chalicelib.handlers import handle_s3_objects

    pool = line_pool()
    gz, n_lines = prepared_object(pool, THROUGHPUT_MIB)
    crc = base64.b64encode((zlib.crc32(gz) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    etag = hashlib.md5(gz, usedforsecurity=False).hexdigest()
    ledgers = Ledgers()
    keys = iter(range(1, 10_000))

    def invoke(*, instrument: Counter[str] | None = None) -> tuple[int, dict[str, Any]]:
        key = object_key(next(keys))
        # A new key each time: a re-delivered object is (rightly) skipped by its claim.
        answers.objects[(BUCKET, key)] = S3Object(etag, lambda: MemoryRaw(gz), len(gz), crc)
        ev = s3_event(key, etag, len(gz))
        ctx = S3Context()
        import stages

        absent: set[str] = set()
        with (
            ledgers.capture(),
            stages.instrumented(instrument, absent)
            if instrument is not None
            else contextlib.nullcontext(),
            harness.quiet_stdout(),
        ):
            t0 = time.perf_counter_ns()
            reply = handle_s3_objects(ev, ctx, rt)
            t1 = time.perf_counter_ns()
        assert reply == {"batchItemFailures": []}, reply
        (r,) = ledgers.take()
        check_invocation(r, n_lines, f"s3 {key}")
        (info,) = r["objects"]
        assert info["lines"] == n_lines and info["format"] == "jsonl", info
        del answers.objects[(BUCKET, key)]
        return t1 - t0, r

    # Checked round, instrumented: where the time goes, and the archive proven.
    import run

    acc: Counter[str] = Counter()
    answers.keep_bodies = True
    before = answers.archive_bytes
    total, r = invoke(instrument=acc)
    answers.keep_bodies = False
    lines, seen = run.check_archive(answers.bodies, r["archived"])
    n_objects = len(answers.bodies)
    answers.bodies.clear()
    assert answers.archive_bytes > before and r["dropped"] > 0, r
    print(
        f"\ns3_objects: one SQS message naming a {THROUGHPUT_MIB} MiB object "
        f"({len(gz) / 1e6:.1f} MB gzip level {GZIP_LEVEL}, {n_lines:,} lines, "
        f"{THROUGHPUT_MIB * 1024 * 1024 / n_lines:.0f} B/line, "
        f"{100 * sum(p[:1] == b'{' for p in pool) / len(pool):.0f}% JSON); checked round: "
        f"{lines:,} archive lines in {n_objects} objects decoded, dropped "
        f"{r['dropped']:,} {r['dropped_by']}; {alert_note(r)}"
    )
    print(f"  records with a transform's field: {dict(seen)}")
    print("  handler by stage (checked round, µs/event):")
    stage_rows(
        acc,
        total,
        n_lines,
        "read+gunzip+split+parse (+ the rest)",
        "route (20 rules; 8 apply to s3.* tags)",
    )

    floor_ns: list[int] = []
    floor_st: list[list[int]] = []
    pipe_ns: list[int] = []
    for _ in range(S3_REPS):
        marks, fn = s3_floor(gz)
        assert fn == n_lines, (fn, n_lines)
        floor_st.append(marks)
        floor_ns.append(sum(marks))
        ns, _ = invoke()
        pipe_ns.append(ns)
    print(f"  floor ({S3_REPS} reps of {n_lines:,} events, median µs/event):")
    for i, name in enumerate(S3_FLOOR_STAGES):
        row("  " + name, f"{median([s[i] for s in floor_st]) / 1000 / n_lines:6.2f}")
    floor_per_s = n_lines / (median(floor_ns) / 1e9)
    row("  total", f"{median(floor_ns) / 1000 / n_lines:6.2f}   ({floor_per_s:,.0f} events/s)")
    eps = n_lines / (median(pipe_ns) / 1e9)
    mb_s = THROUGHPUT_MIB * 1024 * 1024 / 1e6 / (median(pipe_ns) / 1e9)
    print(
        f"  handler, end to end ({S3_REPS} reps): {median(pipe_ns) / 1000 / n_lines:.2f} "
        f"µs/event, {eps:,.0f} events/s, {mb_s:.1f} MB/s of text "
        f"(reps {min(pipe_ns) / 1e9:.2f}-{max(pipe_ns) / 1e9:.2f} s)"
    )

    # Peak RSS: fresh interpreters, one object each, streamed from the generator.
    big_mib = large_mib()
    s3_env = {**env, "SLUICE_MAX_OBJECT_BYTES": str(4 * big_mib * 1024 * 1024)}
    runs = {}
    for mib in (SMALL_MIB, big_mib):
        rep = spawn({"kind": "s3", "rules": str(rules_path), "mib": mib}, s3_env)
        check_invocation(rep["result"], rep["lines"], f"s3 rss {mib} MiB")
        assert rep["reply"] == {"batchItemFailures": []}, rep
        assert rep["archive_bytes"] > 0 and rep["archive_lines"] == rep["result"]["archived"], rep
        assert rep["plain_bytes"] >= mib * 1024 * 1024, rep
        runs[mib] = rep
    print("  peak RSS (fresh interpreters; object made as it is read, 15 min on the clock):")
    for mib, rep in runs.items():
        handler_s = rep["handler_s"] - rep["stub_s"]
        row(
            f"  {mib:,} MiB object ({rep['gz_bytes'] / 1e6:,.0f} MB gzip)",
            f"{rep['rss_kb'] / 1024:6.1f} MB   ({rep['rss_before_kb'] / 1024:.1f} after imports; "
            f"{rep['reads']} reads of <= {rep['largest_read'] / 2**20:.0f} MiB; handler "
            f"{handler_s:.1f} s + stub {rep['stub_s']:.1f} s; {rep['lines'] / handler_s:,.0f} "
            "events/s)",
        )
    big = runs[big_mib]
    rss = big["rss_kb"] / 1024
    handler_s = big["handler_s"] - big["stub_s"]
    # A 512 MB function has ~512/1769 of a vCPU (Lambda allots CPU in proportion to memory).
    lambda_min = handler_s * 1769 / LAMBDA_MEMORY_MB / 60
    detail = (
        f"  s3_objects peak RSS run: {big['plain_bytes']:,}-byte object ({big_mib:,} MiB of text, "
        f"{big['gz_bytes'] / 1e6:,.0f} MB gzip), {big['lines']:,} events in {big['wall_s']:.1f} s "
        f"wall (handler {handler_s:.1f} s, ~{lambda_min:.0f} min at 512 MB's CPU share), peak RSS "
        f"{rss:.0f} MB ({'within' if rss < LAMBDA_MEMORY_MB else 'OVER'} {LAMBDA_MEMORY_MB} MB; "
        f"{runs[SMALL_MIB]['rss_kb'] / 1024:.0f} MB for {SMALL_MIB} MiB)"
    )
    return eps, floor_per_s, rss, detail


def main() -> int:
    """Both benches; prints their detail and, last, their two `bench:` lines."""
    t_start = time.perf_counter()
    harness.pin_one_core()
    with SlackServer() as slack:
        harness.set_env(slack.url)
        items = workload.rule_items()
        answers = SourceAnswers(items)
        rt = harness.make_runtime(answers)
        env = harness.child_env(slack.url)
        with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
            rules_path = Path(tmp) / "rules.json"
            rules_path.write_bytes(orjson.dumps(items))
            k_eps, k_floor, k_rss = bench_kinesis(rt, answers, slack, env, rules_path)
            s_eps, s_floor, s_rss, detail = bench_s3(rt, answers, env, rules_path)
    print(f"  (kinesis_records and s3_objects benches took {time.perf_counter() - t_start:.0f} s)")
    print(
        f"bench: kinesis_records events_per_s={k_eps:.0f} floor_events_per_s={k_floor:.0f} "
        f"ratio={k_eps / k_floor:.2f} peak_rss_mb={k_rss:.0f}"
    )
    print(detail)
    print(
        f"bench: s3_objects events_per_s={s_eps:.0f} floor_events_per_s={s_floor:.0f} "
        f"ratio={s_eps / s_floor:.2f} peak_rss_mb={s_rss:.0f}"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
