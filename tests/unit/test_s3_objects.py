"""s3_objects and s3_object_created end to end over moto: notifications in, archive and DLQ out.

Each test puts real objects in a mocked bucket, delivers the sample notifications
from events/ (their eTags pointed at the objects put), and reads back what the
archive and the dead-letter queue hold. The ledger every invocation reports is
captured and must balance: received == archived + dropped + dead_lettered.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import zstandard

from chalicelib import handlers
from chalicelib.ingest import s3_objects as objects
from chalicelib.sources import s3 as s3_source
from chalicelib.sources.s3 import ObjectRef
from sluice_cli import tables

DATA = Path(__file__).resolve().parents[1] / "data" / "s3"
BUCKET = "app-logs-example"
OBJECTS_QUEUE = "sluice-objects"
STATE_TABLE = "sluice-state"  # SLUICE_STATE_TABLE in the shared fixtures' environment
REGION = "us-east-1"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def gz(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)


# ---------------------------------------------------------------- fixtures
@dataclass
class ObjectsAccount:
    """The objects bucket, the state table and the objects queue in the mocked account."""

    s3: Any
    sqs: Any
    ddb: Any
    queue_url: str

    def put(self, key: str, body: bytes, bucket: str = BUCKET) -> str:
        """Put an object; its eTag as a notification carries it (no quotes)."""
        return str(self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]).strip('"')

    def queued(self) -> list[str]:
        """Bodies waiting on the objects queue (continuations), received and deleted."""
        out: list[str] = []
        while True:
            msgs = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(m["Body"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def claim(self, key: str, etag: str) -> dict[str, Any] | None:
        item = self.ddb.get_item(
            TableName=STATE_TABLE,
            Key={"pk": {"S": f"object#{BUCKET}/{key}"}, "sk": {"S": etag}},
            ConsistentRead=True,
        ).get("Item")
        return item

    def hold(
        self, key: str, etag: str, expires_in_s: int, holder: str = "other-invocation"
    ) -> None:
        """Write a claim as another invocation holding the object would."""
        self.ddb.put_item(
            TableName=STATE_TABLE,
            Item={
                "pk": {"S": f"object#{BUCKET}/{key}"},
                "sk": {"S": etag},
                "status": {"S": "in_progress"},
                "holder": {"S": holder},
                "expires_at": {"N": str(int(time.time()) + expires_in_s)},
            },
        )


@pytest.fixture
def account(aws: Any) -> ObjectsAccount:
    aws.s3.create_bucket(Bucket=BUCKET)
    url = aws.sqs.create_queue(QueueName=OBJECTS_QUEUE)["QueueUrl"]
    if STATE_TABLE in aws.dynamodb.list_tables()["TableNames"]:  # the shared account may have it
        return ObjectsAccount(aws.s3, aws.sqs, aws.dynamodb, url)
    tables.create(aws.dynamodb, STATE_TABLE, tables.STATE)
    return ObjectsAccount(aws.s3, aws.sqs, aws.dynamodb, url)


@pytest.fixture
def rt(aws: Any, account: ObjectsAccount) -> Any:
    """A Runtime whose EventBridge continuations go to the objects queue."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    return Runtime(replace(Settings.from_env(), objects_queue_url=account.queue_url), Clients())


@dataclass
class Reports:
    """The ledger line of every invocation, as `report` was called."""

    calls: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)

    @property
    def last(self) -> tuple[Any, dict[str, Any]]:
        _, ledger, extra = self.calls[-1]
        return ledger, extra

    def total(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for _, ledger, _ in self.calls:
            for k in ("received", "archived", "dropped", "dead_lettered"):
                out[k] += getattr(ledger, k)
        return out


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[Reports]:
    """Captures the handlers' ledger reports; every one must balance."""
    rec = Reports()

    def capture(function: str, ledger: Any, namespace: str, extra: Any = None) -> None:
        rec.calls.append((function, copy.deepcopy(ledger), dict(extra or {})))

    monkeypatch.setattr(handlers, "report", capture)
    yield rec
    for function, ledger, extra in rec.calls:
        assert ledger.balanced(), (function, ledger.as_dict(), extra)


@pytest.fixture
def apply_inputs(aws: Any, rt: Any) -> Callable[[list[dict[str, Any]]], None]:
    """`apply_inputs([...])`: the `inputs` section of the rules document, as applied."""
    from chalicelib.rules.schema import load_document
    from chalicelib.rules.store import write_document

    def apply(inputs: list[dict[str, Any]]) -> None:
        write_document(
            aws.dynamodb, aws.rules_table, load_document({"rules": [], "inputs": inputs})
        )
        rt.rules.invalidate()

    return apply


@dataclass
class Context:
    """Lambda's context. `remaining` maps the n-th call (0-based) to the milliseconds left."""

    remaining: Callable[[int], int] = lambda n: 60_000
    aws_request_id: str = "c0ffee00-0000-4000-8000-00000000000a"
    function_name: str = "sluice-dev-s3_objects"
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:sluice-dev-s3_objects"
    )
    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:
        n = self.calls
        self.calls += 1
        return self.remaining(n)


def near_deadline_after_first_check(
    request_id: str = "c0ffee00-0000-4000-8000-00000000000b",
) -> Context:
    """Plenty of time when the handler looks at the message; below the margin (20 s) at
    every later look, i.e. after the first chunk of lines."""
    return Context(lambda n: 60_000 if n == 0 else 5_000, aws_request_id=request_id)


# ---------------------------------------------------------------- event helpers
def sqs_event(template: dict[str, Any], bodies: list[str]) -> dict[str, Any]:
    """An SQS event shaped like `template`'s first record, one record per body."""
    base = template["Records"][0]
    recs = []
    for i, body in enumerate(bodies):
        r = copy.deepcopy(base)
        r["messageId"] = f"{base['messageId'][:-4]}{i:04d}"
        r["body"] = body
        r["md5OfBody"] = hashlib.md5(body.encode()).hexdigest()
        recs.append(r)
    return {"Records": recs}


def notification_body(template: dict[str, Any], key: str, etag: str, size: int) -> str:
    """The sample S3 notification body re-pointed at `key` (URL-encoded, as S3 writes it)."""
    doc = json.loads(template["Records"][0]["body"])
    obj = doc["Records"][0]["s3"]["object"]
    obj.update(key=quote_plus(key, safe="/"), eTag=etag, size=size)
    return json.dumps(doc)


@pytest.fixture
def notify(load_event: Any, account: ObjectsAccount) -> Callable[..., dict[str, Any]]:
    """`notify(key, body)`: put the object and return the SQS event announcing it."""
    template = load_event("s3_objects_sqs")

    def make(*objs: tuple[str, bytes]) -> dict[str, Any]:
        bodies = []
        for key, body in objs:
            etag = account.put(key, body)
            bodies.append(notification_body(template, key, etag, len(body)))
        return sqs_event(template, bodies)

    return make


def lines_of(archived: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Archived events of one object, in line order."""
    return sorted(
        (x for x in archived if x["source"]["key"] == key),
        key=lambda x: (x["source"]["line"], x["id"]),
    )


def failures(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


# ---------------------------------------------------------------- the samples
def test_sqs_sample_archives_both_objects_line_by_line(
    load_event, account, rt, archive, reports, lambda_context
):
    """Both notified objects (gzip JSON lines; a plain text object whose key arrives
    URL-encoded) become one event per non-blank line with bucket, key and line."""
    event = load_event("s3_objects_sqs")
    bodies = []
    for rec, (key, body) in zip(
        event["Records"],
        [
            ("app/2026/11/26/10/web-1.jsonl.gz", gz(data("app.jsonl"))),
            ("app/2026/11/26/10/a b=c.log", data("app.log")),
        ],
        strict=True,
    ):
        doc = json.loads(rec["body"])
        doc["Records"][0]["s3"]["object"]["eTag"] = account.put(key, body)
        bodies.append(json.dumps(doc))
        rec["body"] = bodies[-1]

    result = handlers.handle_s3_objects(event, lambda_context, rt)

    assert result == {"batchItemFailures": []}
    archived = archive.lines()
    jsonl = lines_of(archived, "app/2026/11/26/10/web-1.jsonl.gz")
    text = lines_of(archived, "app/2026/11/26/10/a b=c.log")
    assert [x["source"]["line"] for x in jsonl] == [1, 2, 3, 4, 5]
    assert [x["source"]["line"] for x in text] == [1, 2, 3, 5]  # line 4 is blank
    assert jsonl[0]["record"] == {
        "time": "2026-11-26T10:07:01.120Z",
        "level": "INFO",
        "message": "order placed",
        "order": "o-1841",
        "amount_cents": 4599,
    }
    assert jsonl[0]["time"] == "2026-11-26T10:07:01.120Z"
    assert jsonl[3]["record"] == {"message": "worker-3 restarted after OOM (exit 137)"}
    assert text[0]["record"]["message"].startswith("Nov 26 10:07:01 web-1 nginx:")
    assert {x["tag"] for x in archived} == {"s3.app-logs-example.app"}
    assert jsonl[0]["source"] == {
        "kind": "s3",
        "bucket": BUCKET,
        "key": "app/2026/11/26/10/web-1.jsonl.gz",
        "version": None,
        "etag": json.loads(bodies[0])["Records"][0]["s3"]["object"]["eTag"],
        "line": 1,
        "account": None,  # the key names none (no AWSLogs/<account>/ layout)
        "region": "us-east-1",  # the notification's awsRegion
    }
    ledger, extra = reports.last
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (9, 9, 0)
    assert [(o["key"], o["format"], o["lines"]) for o in extra["objects"]] == [
        ("app/2026/11/26/10/web-1.jsonl.gz", "jsonl", 5),
        ("app/2026/11/26/10/a b=c.log", "text", 5),
    ]


def test_event_ids_are_object_id_and_line(notify, rt, archive, reports, lambda_context):
    """Each event's id is `<object id>:<line>`, the object id derived from bucket, key, eTag."""
    key = "app/ids.log"
    event = notify((key, b"one\ntwo\n"))
    handlers.handle_s3_objects(event, lambda_context, rt)
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    oid = ObjectRef(BUCKET, key, None, etag).object_id
    assert [x["id"] for x in lines_of(archive.lines(), key)] == [f"{oid}:1", f"{oid}:2"]


def test_sns_wrapped_alb_log_is_read_as_alb(
    load_event, account, rt, archive, reports, lambda_context
):
    """The SNS-wrapped sample's ALB log (gzip) gives one event per documented entry,
    timed by the entry's own time."""
    event = load_event("s3_objects_sns_wrapped")
    sns = json.loads(event["Records"][0]["body"])
    inner = json.loads(sns["Message"])
    obj = inner["Records"][0]["s3"]["object"]
    key = obj["key"]  # nothing to decode in this key
    obj["eTag"] = account.put(key, gz(data("alb.log")))
    sns["Message"] = json.dumps(inner)
    event["Records"][0]["body"] = json.dumps(sns)

    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}

    got = lines_of(archive.lines(), key)
    assert len(got) == 7
    assert {x["tag"] for x in got} == {"s3.app-logs-example.alb"}
    assert got[0]["time"] == "2018-07-02T22:23:00.186Z"
    assert got[0]["record"]["elb_status_code"] == 200
    assert got[6]["record"]["error_reason"] == "LambdaInvalidResponse"


def test_test_event_is_acknowledged_and_reads_nothing(
    load_event, account, rt, archive, dlq, reports, lambda_context
):
    """The s3:TestEvent S3 sends when notifications are configured is acknowledged quietly."""
    result = handlers.handle_s3_objects(load_event("s3_objects_test_event"), lambda_context, rt)
    assert result == {"batchItemFailures": []}
    assert archive.keys() == []
    assert dlq.messages() == []
    ledger, extra = reports.last
    assert ledger.received == 0 and extra["objects"] == []


def test_eventbridge_object_created_reads_the_key_as_written(
    load_event, account, rt, archive, reports, lambda_context
):
    """The EventBridge sample's key (a literal `+`) is read as is; its CSV rows become events,
    the short row with a parse_error, the others with their columns."""
    event = load_event("s3_object_created_eventbridge")
    key = event["detail"]["object"]["key"]
    assert "+" in key
    event["detail"]["object"]["etag"] = account.put(key, data("orders.csv"))

    result = handlers.handle_s3_object_created(event, lambda_context, rt)

    assert (result["received"], result["archived"], result["lost"]) == (4, 4, 0)
    assert (result["format"], result["lines"], result["key"]) == ("csv", 5, key)
    got = lines_of(archive.lines(), key)
    assert [x["source"]["line"] for x in got] == [2, 3, 4, 5]
    assert got[0]["record"] == {
        "order_id": "o-1841",
        "placed_at": "2026-11-26T10:07:01Z",
        "customer": "c-77",
        "total": "45.99",
        "currency": "EUR",
        "message": "o-1841,2026-11-26T10:07:01Z,c-77,45.99,EUR",
    }
    assert got[2]["record"] == {
        "message": "o-1843,2026-11-26T10:07:09Z,c-12,8.00",
        "parse_error": "csv: expected 5 columns, found 4",
    }
    assert {x["tag"] for x in got} == {"s3.app-logs-example.exports"}


def test_eventbridge_event_without_detail_is_dead_lettered(rt, dlq, reports, lambda_context):
    """An EventBridge event that names no object is dead-lettered, not raised."""
    result = handlers.handle_s3_object_created(
        {"detail-type": "Object Created"}, lambda_context, rt
    )
    assert (result["received"], result["dead_lettered"]) == (1, 1)
    (msg,) = dlq.messages()
    assert msg["stage"] == "decode" and msg["reason"].startswith("shape: ")


# ---------------------------------------------------------------- every format through the handler
@pytest.mark.parametrize(
    ("sample", "key", "codec", "fmt", "events"),
    [
        pytest.param("alb.log", "alb/AWSLogs/x_app.my-lb.log.gz", gz, "alb", 7, id="ALB gzip"),
        pytest.param("elb.log", "elb/AWSLogs/x_my-loadbalancer.log", None, "elb", 4, id="ELB"),
        pytest.param("vpcflow.log", "vpc/AWSLogs/x_fl-1.log.gz", gz, "vpcflow", 7, id="VPC gzip"),
        pytest.param("cloudfront.log", "cf/E1.2019-12-04-21.ab.gz", gz, "cloudfront", 6, id="CF"),
        pytest.param("cloudtrail.json", "ct/AWSLogs/x_CloudTrail.json.gz", gz, "jsonl", 3, id="CT"),
        pytest.param("app.jsonl", "app/x.jsonl.zst", "zstd", "jsonl", 5, id="JSON lines zstd"),
        pytest.param("orders.tsv", "exports/orders.tsv", None, "tsv", 2, id="TSV"),
        pytest.param("app.log", "app/x.log", None, "text", 4, id="text"),
    ],
)
def test_every_format_is_read_through_the_handler(
    notify, rt, archive, reports, lambda_context, sample, key, codec, fmt, events
):
    """Each documented sample, compressed as AWS delivers it, becomes one event per record."""
    body = data(sample)
    if codec == "zstd":
        body = zstandard.ZstdCompressor().compress(body)
    elif codec is not None:
        body = codec(body)
    handlers.handle_s3_objects(notify((key, body)), lambda_context, rt)
    ledger, extra = reports.last
    assert extra["objects"][0]["format"] == fmt
    assert (ledger.received, ledger.archived) == (events, events)
    assert len(lines_of(archive.lines(), key)) == events


def test_cloudtrail_records_become_one_event_each(notify, rt, archive, reports, lambda_context):
    """The CloudTrail file's `Records` are three events, each timed by its eventTime and
    identified by line and position; no event holds the whole document."""
    key = "ct/AWSLogs/123456789012/CloudTrail/us-east-1/2023/07/19/x.json.gz"
    handlers.handle_s3_objects(notify((key, gz(data("cloudtrail.json")))), lambda_context, rt)
    got = lines_of(archive.lines(), key)
    assert [x["record"]["eventName"] for x in got] == [
        "StartInstances",
        "StopInstances",
        "StartLogging",
    ]
    assert [x["time"] for x in got] == [
        "2023-07-19T21:17:28.000Z",
        "2023-07-19T21:14:20.000Z",
        "2023-07-19T21:33:41.000Z",
    ]
    assert [x["id"].rsplit(":", 2)[1:] for x in got] == [["1", "0"], ["1", "1"], ["1", "2"]]
    assert all("Records" not in x["record"] for x in got)


# ---------------------------------------------------------------- inputs (per-prefix settings)
def test_input_chooses_format_and_tag_for_a_prefix(
    notify, rt, apply_inputs, archive, reports, lambda_context
):
    """An input names the format of objects under its prefix (here TSV in a .txt) and their tag."""
    apply_inputs([{"prefix": "exports/", "format": "tsv", "tag": "exports.orders"}])
    key = "exports/2026-11-26/orders.txt"
    handlers.handle_s3_objects(notify((key, data("orders.tsv"))), lambda_context, rt)
    got = lines_of(archive.lines(), key)
    assert [x["record"]["order_id"] for x in got] == ["o-1841", "o-1842"]
    assert {x["tag"] for x in got} == {"exports.orders"}


def test_input_expand_names_the_list_field(
    notify, rt, apply_inputs, archive, reports, lambda_context
):
    """`expand: items` makes each element of a JSON document's `items` one event."""
    apply_inputs([{"prefix": "batches/", "expand": "items"}])
    doc = {"batch": "b-1", "items": [{"msg": "a", "level": "warn"}, {"msg": "b"}, "plain c"]}
    key = "batches/b-1.json"
    handlers.handle_s3_objects(notify((key, json.dumps(doc).encode())), lambda_context, rt)
    got = lines_of(archive.lines(), key)
    assert [x["record"] for x in got] == [
        {"message": "a", "level": "WARN"},
        {"message": "b"},
        {"message": "plain c"},
    ]
    ledger, _ = reports.last
    assert (ledger.received, ledger.archived) == (3, 3)


@pytest.mark.parametrize(
    ("inputs", "tag"),
    [
        pytest.param(
            [{"prefix": "app/", "tag": "short"}, {"prefix": "app/web/", "tag": "long"}],
            "long",
            id="longest prefix",
        ),
        pytest.param(
            [
                {"prefix": "app/", "tag": "any.bucket"},
                {"bucket": BUCKET, "prefix": "app/", "tag": "this.bucket"},
            ],
            "this.bucket",
            id="bucket-specific over any bucket",
        ),
        pytest.param(
            [{"bucket": "other-bucket", "prefix": "app/", "tag": "other"}],
            "s3.app-logs-example.app",
            id="other bucket's input ignored",
        ),
        pytest.param([], "s3.app-logs-example.app", id="no input: bucket and first segment"),
    ],
)
def test_the_most_specific_input_sets_the_tag(
    notify, rt, apply_inputs, archive, reports, lambda_context, inputs, tag
):
    """The longest matching prefix wins, a bucket-specific input before a generic one."""
    apply_inputs(inputs)
    key = "app/web/x.log"
    handlers.handle_s3_objects(notify((key, b"hello\n")), lambda_context, rt)
    assert {x["tag"] for x in lines_of(archive.lines(), key)} == {tag}


# ---------------------------------------------------------------- idempotency
def test_redelivery_of_a_done_object_is_skipped(
    notify, account, rt, archive, reports, lambda_context
):
    """A second notification of the same object (S3 delivers at least once) archives nothing."""
    key = "app/once.log"
    event = notify((key, b"a\nb\nc\n"))
    handlers.handle_s3_objects(event, lambda_context, rt)
    before = archive.objects()
    result = handlers.handle_s3_objects(event, lambda_context, rt)
    assert result == {"batchItemFailures": []}
    assert archive.objects() == before
    ledger, extra = reports.last
    assert ledger.received == 0
    assert extra["objects"][0]["skipped"] == "already processed (re-delivery)"
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    assert account.claim(key, etag)["status"]["S"] == "done"


def test_object_held_by_another_invocation_returns_the_message(
    notify, account, rt, archive, reports, lambda_context
):
    """While another invocation holds the object's claim, the message goes back to the queue."""
    key = "app/busy.log"
    event = notify((key, b"a\n"))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    account.hold(key, etag, expires_in_s=600)
    result = handlers.handle_s3_objects(event, lambda_context, rt)
    assert failures(result) == [event["Records"][0]["messageId"]]
    assert archive.keys() == []
    assert account.claim(key, etag)["holder"]["S"] == "other-invocation"


def test_expired_claim_is_taken_over(notify, account, rt, archive, reports, lambda_context):
    """A claim whose lease expired (its invocation died) is taken and the object read."""
    key = "app/orphan.log"
    event = notify((key, b"a\nb\n"))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    account.hold(key, etag, expires_in_s=-5)
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    assert len(lines_of(archive.lines(), key)) == 2
    assert account.claim(key, etag)["status"]["S"] == "done"


def test_reprocessing_rewrites_the_same_archive_objects(
    notify, account, rt, archive, reports, lambda_context
):
    """Once the done record has expired, a re-delivery rewrites the same archive keys with
    the same events: nothing is archived twice."""
    key = "app/again.log"
    event = notify((key, "".join(f"line {i}\n" for i in range(30)).encode()))
    handlers.handle_s3_objects(event, lambda_context, rt)
    first = archive.objects()
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    account.ddb.delete_item(
        TableName=STATE_TABLE, Key={"pk": {"S": f"object#{BUCKET}/{key}"}, "sk": {"S": etag}}
    )
    other = Context(aws_request_id="d00d0000-0000-4000-8000-000000000002")
    handlers.handle_s3_objects(event, other, rt)
    assert archive.objects() == first
    assert Counter(x["id"] for x in archive.lines()).most_common(1)[0][1] == 1


def test_a_new_version_of_the_object_is_read_again(notify, rt, archive, reports, lambda_context):
    """Overwriting the object (new eTag) is a new object: read again, with new ids."""
    key = "app/rewritten.log"
    handlers.handle_s3_objects(notify((key, b"v1\n")), lambda_context, rt)
    handlers.handle_s3_objects(notify((key, b"v2\n")), lambda_context, rt)
    got = lines_of(archive.lines(), key)
    assert [x["record"]["message"] for x in got] == ["v1", "v2"] or [
        x["record"]["message"] for x in got
    ] == ["v2", "v1"]
    assert len({x["id"] for x in got}) == 2


def test_notification_for_an_object_since_replaced_is_dead_lettered(
    notify, account, rt, archive, dlq, reports, lambda_context
):
    """A notification whose eTag no longer matches (the key was overwritten) reads nothing
    of the newer object: PreconditionFailed goes to the DLQ and the message is acknowledged."""
    key = "app/replaced.log"
    event = notify((key, b"old\n"))
    account.put(key, b"new\n")
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    assert archive.keys() == []
    (msg,) = dlq.messages()
    assert "PreconditionFailed" in msg["reason"]


# ---------------------------------------------------------------- continuation near the deadline
@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(objects, "CHUNK_LINES", 10)
    return 10


def test_near_the_deadline_a_continuation_is_queued_and_finishes_the_object(
    notify, account, rt, archive, reports, small_chunks
):
    """When the time left drops below the margin after the first chunk, the line reached
    goes to the queue the notification came from; feeding that message back reads the
    rest; every line is archived exactly once."""
    key = "app/long.log"
    content = "".join(f"line {i}\n" for i in range(1, 26)).encode()
    event = notify((key, content))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]

    result = handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)

    assert result == {"batchItemFailures": []}
    (body,) = account.queued()
    doc = json.loads(body)["sluice_continuation"]
    token = doc.pop("token")
    assert doc == {
        "bucket": BUCKET,
        "key": key,
        "version": None,
        "etag": etag,
        "size": len(content),
        "region": "us-east-1",  # where it came from travels with the continuation
        "line": 10,
        "offset": len("".join(f"line {i}\n" for i in range(1, 11))),  # where line 11 starts
        "base": 10,
        "kind": "plain",
    }
    assert token and token == account.claim(key, etag)["token"]["S"]
    assert [x["source"]["line"] for x in lines_of(archive.lines(), key)] == list(range(1, 11))
    assert account.claim(key, etag)["status"]["S"] == "in_progress"
    assert reports.last[1]["objects"][0]["continued_at_line"] == 10

    again = sqs_event(event, [body])
    assert handlers.handle_s3_objects(again, Context(), rt) == {"batchItemFailures": []}

    got = lines_of(archive.lines(), key)
    assert [x["source"]["line"] for x in got] == list(range(1, 26))
    assert [x["record"]["message"] for x in got] == [f"line {i}" for i in range(1, 26)]
    assert len({x["id"] for x in got}) == 25
    assert account.queued() == []
    assert account.claim(key, etag)["status"]["S"] == "done"
    assert reports.total()["archived"] == 25


def test_continuations_chain_until_the_object_is_done(
    notify, account, rt, archive, reports, small_chunks
):
    """With the deadline near at every chunk, each invocation reads one chunk and queues
    the next; the chain ends with every line archived once, the ledgers summing to the object."""
    key = "app/chain.log"
    event = notify((key, "".join(f"entry {i}\n" for i in range(1, 36)).encode()))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    reached = []
    for _ in range(10):
        queued = account.queued()
        if not queued:
            break
        reached.append(json.loads(queued[0])["sluice_continuation"]["line"])
        handlers.handle_s3_objects(sqs_event(event, queued), near_deadline_after_first_check(), rt)
    assert reached == [10, 20, 30]
    got = lines_of(archive.lines(), key)
    assert [x["source"]["line"] for x in got] == list(range(1, 36))
    assert reports.total() == Counter(received=35, archived=35, dropped=0, dead_lettered=0)


def test_duplicate_continuation_rewrites_never_duplicates(
    notify, account, rt, archive, reports, small_chunks
):
    """SQS may deliver the continuation twice: the second run rewrites the same archive
    objects (keys from the object id and chunk start line)."""
    key = "app/dup.log"
    event = notify((key, "".join(f"l{i}\n" for i in range(1, 16)).encode()))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    (body,) = account.queued()
    handlers.handle_s3_objects(sqs_event(event, [body]), Context(), rt)
    once = archive.objects()
    handlers.handle_s3_objects(sqs_event(event, [body]), Context(), rt)
    assert archive.objects() == once
    assert len(archive.lines()) == 15


def test_header_formats_resume_with_their_header(
    notify, account, rt, archive, reports, small_chunks
):
    """A continuation of a VPC flow log re-reads the header line, so fields keep their names."""
    header = data("vpcflow.log").splitlines()[0]
    row = data("vpcflow.log").splitlines()[1]
    key = "vpc/AWSLogs/x_fl-1.log.gz"
    event = notify((key, gz(header + b"\n" + b"\n".join([row] * 14) + b"\n")))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    (body,) = account.queued()
    handlers.handle_s3_objects(sqs_event(event, [body]), Context(), rt)
    got = lines_of(archive.lines(), key)
    assert len(got) == 14
    assert {x["record"]["dstport"] for x in got} == {22}


def test_eventbridge_continuation_goes_to_the_objects_queue(
    load_event, account, rt, archive, reports, small_chunks
):
    """An EventBridge-triggered read near its deadline queues its continuation on
    SLUICE_OBJECTS_QUEUE_URL, where s3_objects finishes it."""
    event = load_event("s3_object_created_eventbridge")
    key = event["detail"]["object"]["key"]
    event["detail"]["object"]["etag"] = account.put(key, b"a,b\n" + b"1,2\n" * 24)
    # No message check comes first here: the first look at the clock is after chunk one.
    result = handlers.handle_s3_object_created(event, Context(lambda n: 5_000), rt)
    assert result["continued_at_line"] == 10
    (body,) = account.queued()
    handlers.handle_s3_objects(sqs_event(load_event("s3_objects_sqs"), [body]), Context(), rt)
    assert len(lines_of(archive.lines(), key)) == 24


def test_without_a_queue_the_object_is_read_to_the_end(
    load_event, account, aws, archive, reports, small_chunks
):
    """With nowhere to queue a continuation, the reader ignores the deadline and finishes."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    no_queue = Runtime(Settings.from_env(), Clients())
    assert no_queue.settings.objects_queue_url is None
    event = load_event("s3_object_created_eventbridge")
    key = event["detail"]["object"]["key"]
    event["detail"]["object"]["etag"] = account.put(key, b"a,b\n" + b"1,2\n" * 24)
    result = handlers.handle_s3_object_created(event, Context(lambda n: 5_000), no_queue)
    assert "continued_at_line" not in result
    assert result["archived"] == 24
    assert account.queued() == []


def test_messages_left_when_the_deadline_is_near_are_returned(notify, rt, archive, reports):
    """Messages the invocation has no time left for are returned untouched for a fresh one."""
    event = notify(("app/a.log", b"a\n"), ("app/b.log", b"b\n"))
    result = handlers.handle_s3_objects(event, Context(lambda n: 1_000), rt)
    assert failures(result) == [r["messageId"] for r in event["Records"]]
    assert archive.keys() == []


# ---------------------------------------------------------------- partial batch failure
def test_only_the_failed_message_is_reported(
    load_event, notify, account, rt, archive, dlq, reports, lambda_context
):
    """In a batch of a good object, a busy object, a non-JSON body and a test event, only the
    busy object's message is in batchItemFailures."""
    good = notify(("app/good.log", b"fine\n"))
    busy = notify(("app/busy.log", b"later\n"))
    busy_etag = json.loads(busy["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    account.hold("app/busy.log", busy_etag, expires_in_s=600)
    bodies = [
        good["Records"][0]["body"],
        busy["Records"][0]["body"],
        load_event("malformed/s3_objects_not_json")["Records"][0]["body"],
        load_event("s3_objects_test_event")["Records"][0]["body"],
    ]
    event = sqs_event(load_event("s3_objects_sqs"), bodies)
    result = handlers.handle_s3_objects(event, lambda_context, rt)
    assert failures(result) == [event["Records"][1]["messageId"]]
    assert [x["record"]["message"] for x in archive.lines()] == ["fine"]
    (msg,) = dlq.messages()
    assert msg["origin"] == {"message_id": event["Records"][2]["messageId"]}


def test_s3_throttling_returns_the_message_and_releases_the_claim(
    notify, account, rt, archive, reports, lambda_context
):
    """An S3 error that a retry may cure (SlowDown) fails the message and gives up the claim,
    so the retry can take the object at once."""
    from botocore.exceptions import ClientError

    real = rt.clients.get("s3")

    class Throttled:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def get_object(self, **kw: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Reduce your rate"}}, "GetObject"
            )

    key = "app/throttled.log"
    event = notify((key, b"x\n"))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    rt.clients.set("s3", Throttled())
    result = handlers.handle_s3_objects(event, lambda_context, rt)
    assert failures(result) == [event["Records"][0]["messageId"]]
    assert account.claim(key, etag) is None
    rt.clients.set("s3", real)
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    assert len(archive.lines()) == 1


# ---------------------------------------------------------------- bad input
def test_truncated_gzip_archives_complete_lines_and_dead_letters_the_rest(
    notify, rt, archive, dlq, reports, lambda_context
):
    """A gzip object cut short: the complete lines before the damage are archived; the DLQ
    says why and which line was reached; the message is acknowledged."""
    key = "app/cut.log.gz"
    whole = gz("".join(f"request {i} served in {i % 7} ms\n" for i in range(1, 400)).encode())
    event = notify((key, whole[: len(whole) // 2]))
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    got = lines_of(archive.lines(), key)
    n = len(got)
    assert n > 10
    assert [x["record"]["message"] for x in got] == [
        f"request {i} served in {i % 7} ms" for i in range(1, n + 1)
    ]
    (msg,) = dlq.messages()
    assert msg["stage"] == "decode"
    assert f"truncated gzip stream after line {n}" in msg["reason"]
    assert msg["origin"]["key"] == key and msg["origin"]["line"] == n
    ledger, _ = reports.last
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (n + 1, n, 1)
    assert dict(ledger.dead_letter_reasons) == {"decode:gzip": 1}


def test_binary_object_is_dead_lettered(notify, rt, archive, dlq, reports, lambda_context):
    """A binary object (here a PNG) archives nothing and is dead-lettered as `binary`."""
    key = "app/screenshot.png"
    event = notify((key, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300)))
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    assert archive.keys() == []
    (msg,) = dlq.messages()
    assert msg["reason"].startswith("binary: ")
    assert msg["origin"]["key"] == key
    assert dict(reports.last[0].dead_letter_reasons) == {"decode:binary": 1}


def test_deleted_object_is_dead_lettered_and_the_message_acknowledged(
    notify, account, rt, archive, dlq, reports, lambda_context
):
    """A notification for a key deleted before it was read: NoSuchKey goes to the DLQ with
    the object's address, and the message is not retried."""
    key = "app/gone.log"
    event = notify((key, b"x\n"))
    account.s3.delete_object(Bucket=BUCKET, Key=key)
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    (msg,) = dlq.messages()
    assert msg["reason"] == f"s3 get_object: NoSuchKey: s3://{BUCKET}/{key}"
    assert (msg["stage"], msg["origin"]["key"], msg["origin"]["bucket"]) == ("read", key, BUCKET)
    ledger, extra = reports.last
    assert (ledger.received, ledger.dead_lettered) == (1, 1)
    assert extra["objects"][0]["error"] == msg["reason"]


def test_body_that_is_not_json_is_dead_lettered(
    load_event, rt, archive, dlq, reports, lambda_context
):
    """The malformed sample (a hand-sent text body) is dead-lettered with its bytes and reason."""
    import base64

    event = load_event("malformed/s3_objects_not_json")
    assert handlers.handle_s3_objects(event, lambda_context, rt) == {"batchItemFailures": []}
    (msg,) = dlq.messages()
    assert msg["reason"].startswith("json: SQS body is not JSON")
    assert json.loads(base64.b64decode(msg["raw"])) == event["Records"][0]["body"]
    assert dict(reports.last[0].dead_letter_reasons) == {"decode:json": 1}


def test_not_an_sqs_event_is_dead_lettered(rt, dlq, reports, lambda_context):
    """An event without `Records` is dead-lettered whole and reports no failures."""
    assert handlers.handle_s3_objects({"hello": "world"}, lambda_context, rt) == {
        "batchItemFailures": []
    }
    (msg,) = dlq.messages()
    assert msg["reason"].startswith("shape: ")


def test_dead_letter_queue_down_fails_only_the_undecodable_message(
    load_event, notify, aws, rt, archive, reports, lambda_context
):
    """If the DLQ cannot take an undecodable body, that message is returned to the queue
    (not lost), and the rest of the batch is still processed."""
    good = notify(("app/ok.log", b"ok\n"))
    event = sqs_event(
        load_event("s3_objects_sqs"),
        [
            load_event("malformed/s3_objects_not_json")["Records"][0]["body"],
            good["Records"][0]["body"],
        ],
    )
    aws.sqs.delete_queue(QueueUrl=aws.dlq_url)
    result = handlers.handle_s3_objects(event, lambda_context, rt)
    assert failures(result) == [event["Records"][0]["messageId"]]
    assert [x["record"]["message"] for x in archive.lines()] == ["ok"]


def test_dead_letter_queue_down_during_a_damaged_object_returns_its_message(
    notify, account, aws, rt, archive, reports, lambda_context
):
    """If the DLQ fails while recording a damaged object, its message is retried and the
    claim released: the damage is never silently dropped."""
    key = "app/damaged.log.gz"
    whole = gz("".join(f"request {i}\n" for i in range(400)).encode())
    event = notify((key, whole[: len(whole) // 2]))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    aws.sqs.delete_queue(QueueUrl=aws.dlq_url)
    result = handlers.handle_s3_objects(event, lambda_context, rt)
    assert failures(result) == [event["Records"][0]["messageId"]]
    assert account.claim(key, etag) is None


def test_invalid_utf8_and_over_long_lines_are_flagged_in_the_record(
    notify, rt, archive, reports, lambda_context, monkeypatch
):
    """A Latin-1 line is archived flagged `invalid_utf8`; a line above MAX_LINE is archived
    cut, flagged `truncated` with its real size."""
    monkeypatch.setattr(s3_source, "MAX_LINE", 100)
    key = "app/mixed.log"
    body = b"plain\n" + "Müller paid\n".encode("latin-1") + b"y" * 250 + b"\n"
    handlers.handle_s3_objects(notify((key, body)), lambda_context, rt)
    got = lines_of(archive.lines(), key)
    assert got[0]["record"] == {"message": "plain"}
    assert got[1]["record"] == {"message": "M\\xfcller paid", "invalid_utf8": True}
    assert got[2]["record"] == {"message": "y" * 100, "truncated": True, "original_bytes": 250}


def test_json_document_above_max_line_is_dead_lettered_not_half_read(
    notify, rt, archive, dlq, reports, lambda_context, monkeypatch
):
    """A single-line JSON document longer than MAX_LINE cannot be expanded: it goes to the
    dead-letter queue with its address and size, and no cut copy is archived."""
    monkeypatch.setattr(s3_source, "MAX_LINE", 1000)
    key = "ct/AWSLogs/big_CloudTrail.json.gz"
    doc = {
        "Records": [
            {"eventName": f"Call{i}", "eventTime": "2023-07-19T21:17:28Z"} for i in range(100)
        ]
    }
    result = handlers.handle_s3_objects(
        notify((key, gz(json.dumps(doc).encode()))), lambda_context, rt
    )
    assert result == {"batchItemFailures": []}
    assert lines_of(archive.lines(), key) == []
    (msg,) = dlq.messages()
    assert f"JSON document of {len(json.dumps(doc))} bytes, over the line limit" in msg["reason"]
    assert msg["origin"]["key"] == key


def test_cloudtrail_file_larger_than_a_message_is_expanded(
    notify, rt, archive, reports, lambda_context
):
    """A CloudTrail file over 256 KiB (the message cap) still becomes one event per record."""
    key = "ct/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/26/big.json.gz"
    records = [
        {"eventName": f"Call{i}", "eventTime": "2026-11-26T09:00:00Z", "pad": "x" * 400}
        for i in range(1000)
    ]
    body = json.dumps({"Records": records}).encode()
    assert len(body) > 256 * 1024
    handlers.handle_s3_objects(notify((key, gz(body))), lambda_context, rt)
    got = lines_of(archive.lines(), key)
    assert len(got) == 1000
    assert {g["record"]["eventName"] for g in got} == {f"Call{i}" for i in range(1000)}


def test_object_at_the_notified_version_is_read(
    account, aws, rt, archive, reports, lambda_context, load_event
):
    """In a versioned bucket the notified versionId is read, not the newest version."""
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    key = "app/versioned.log"
    v1 = aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"first\n")
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"second\n")
    template = load_event("s3_objects_sqs")
    doc = json.loads(notification_body(template, key, v1["ETag"].strip('"'), 6))
    doc["Records"][0]["s3"]["object"]["versionId"] = v1["VersionId"]
    handlers.handle_s3_objects(sqs_event(template, [json.dumps(doc)]), lambda_context, rt)
    (ev,) = lines_of(archive.lines(), key)
    assert ev["record"]["message"] == "first"
    assert ev["source"]["version"] == v1["VersionId"]


def test_blank_lines_on_chunk_boundaries_do_not_stop_chunking(
    notify, account, rt, archive, reports, small_chunks, monkeypatch
):
    """A double-spaced log (every even line blank, so every chunk boundary too) is still read
    in chunks of CHUNK_LINES lines, each a bounded batch, and continues near the deadline."""
    from chalicelib.pipeline import Pipeline

    sizes: list[int] = []
    real = Pipeline.process_slice

    def recording(
        self: Any, events: list[Any], inv: Any, batch_id: str | None = None, **kw: Any
    ) -> Any:
        sizes.append(len(events))
        return real(self, events, inv, batch_id=batch_id, **kw)

    monkeypatch.setattr(Pipeline, "process_slice", recording)
    key = "app/double-spaced.log"
    event = notify((key, "".join(f"entry {i}\n\n" for i in range(1, 31)).encode()))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    (body,) = account.queued()
    assert json.loads(body)["sluice_continuation"]["line"] == 10
    assert sizes == [5]
    handlers.handle_s3_objects(sqs_event(event, [body]), Context(), rt)
    assert max(sizes) <= 10
    assert [x["record"]["message"] for x in lines_of(archive.lines(), key)] == [
        f"entry {i}" for i in range(1, 31)
    ]


def test_deadline_is_the_configured_margin(
    notify, account, aws, archive, reports, small_chunks, monkeypatch
):
    """SLUICE_DEADLINE_MARGIN_MS sets how close to the deadline reading stops: with a 3 s
    margin, 5 s left is enough to keep reading."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    monkeypatch.setenv("SLUICE_DEADLINE_MARGIN_MS", "3000")
    short_margin = Runtime(Settings.from_env(), Clients())
    key = "app/margin.log"
    event = notify((key, "".join(f"m{i}\n" for i in range(25)).encode()))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), short_margin)
    assert account.queued() == []
    assert len(lines_of(archive.lines(), key)) == 25


# ---------------------------------------------------------------- continuations: claims, offsets
def numbered(n: int) -> bytes:
    return "".join(f"line {i}\n" for i in range(1, n + 1)).encode()


def gzip_members(body: bytes, cuts: list[int]) -> bytes:
    """`body` as gzip members split at byte positions `cuts` (mid-line or not)."""
    bounds = [0, *cuts, len(body)]
    return b"".join(gz(body[a:b]) for a, b in pairwise(bounds))


def every_nth_line(body: bytes, n: int) -> list[int]:
    """Byte positions after every n-th line: members that each start a line."""
    ends = [i + 1 for i, c in enumerate(body) if c == 0x0A]
    return ends[n - 1 : -1 : n]


def follow(
    account: ObjectsAccount, rt: Any, event: dict[str, Any], *, rounds: int = 20
) -> list[dict[str, Any]]:
    """Deliver `event` near its deadline, then each queued continuation the same way, until
    none is queued: the continuation bodies, in order."""
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    seen = []
    for _ in range(rounds):
        queued = account.queued()
        if not queued:
            return seen
        seen.extend(json.loads(b)["sluice_continuation"] for b in queued)
        handlers.handle_s3_objects(sqs_event(event, queued), near_deadline_after_first_check(), rt)
    raise AssertionError("continuations did not end")


@pytest.fixture
def ranges(rt: Any) -> list[str]:
    """The Range of every GetObject the runtime makes ("" for a whole object)."""
    got: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        got.append(str(params.get("Range", "")))

    rt.clients.get("s3").meta.events.register("before-parameter-build.s3.GetObject", record)
    return got


LINES = 47
RESUME_CASES = [
    pytest.param("app/plain.log", numbered(LINES), "plain", True, id="plain text: ranged GET"),
    pytest.param(
        "app/members.log.gz",
        gzip_members(numbered(LINES), every_nth_line(numbered(LINES), 7)),
        "gzip",
        True,
        id="gzip, a member every 7 lines: ranged GET at a member",
    ),
    pytest.param(
        "app/members-mid-line.log.gz",
        gzip_members(numbered(LINES), [5, 61, 63, 130, 271, 333]),  # 63, 271: lines 10, 36
        "gzip",
        True,
        id="gzip, members cut mid-line: only members starting a line are used",
    ),
    pytest.param("app/one.log.gz", gz(numbered(LINES)), "gzip", False, id="single gzip member"),
    pytest.param(
        "app/one.log.zst",
        zstandard.ZstdCompressor().compress(numbered(LINES)),
        "zstd",
        False,
        id="single zstd frame",
    ),
]


@pytest.mark.parametrize(("key", "body", "kind", "ranged"), RESUME_CASES)
def test_continuations_resume_where_they_stopped_and_archive_each_line_once(
    notify, account, rt, archive, reports, small_chunks, ranges, key, body, kind, ranged
):
    """A chain of continuations (the deadline near after every chunk of 10 lines) archives
    every line of the object exactly once, in order. Plain text and multi-member gzip
    resume by a ranged GET at a byte offset (the next line; a member that starts a line);
    a single member is read from the start, the lines handled before skipped."""
    chain = follow(account, rt, notify((key, body)))
    assert [c["line"] for c in chain] == [10, 20, 30, 40]
    assert {c["kind"] for c in chain} == {kind}
    offsets = [c["offset"] for c in chain]
    assert (min(offsets) > 0) if ranged else (offsets == [0, 0, 0, 0])
    if kind == "plain":  # exactly where the next line starts
        assert offsets == [len(numbered(n)) for n in (10, 20, 30, 40)]
    assert [r for r in ranges if r] == [f"bytes={o}-" for o in offsets if o]
    got = lines_of(archive.lines(), key)
    assert [x["record"]["message"] for x in got] == [f"line {i}" for i in range(1, LINES + 1)]
    assert len({x["id"] for x in got}) == LINES
    assert reports.total()["archived"] == LINES


def test_csv_resumed_by_offset_keeps_its_columns(
    notify, account, rt, archive, reports, small_chunks, ranges
):
    """A plain CSV continued by a ranged GET reads its header line again from the object's
    head (a GET of the head only), so rows past the first chunk keep their column names."""
    key = "app/rows.csv"
    body = b"user,action\n" + b"".join(b"u%d,login\n" % i for i in range(1, 26))
    chain = follow(account, rt, notify((key, body)))
    assert chain and all(c["offset"] > 0 for c in chain)
    got = lines_of(archive.lines(), key)
    assert [x["record"]["user"] for x in got] == [f"u{i}" for i in range(1, 26)]


def test_deadline_while_skipping_continues_again_from_the_same_place(
    notify, account, rt, archive, reports, small_chunks, monkeypatch
):
    """A single-member gzip continuation whose invocation has no time left while it skips
    the lines handled before stops skipping (the deadline is looked at between pieces) and
    queues the same continuation again under a new token; the next one, with time, finishes
    the object: every line archived once."""
    monkeypatch.setattr(s3_source, "SKIP_GRACE", 0)
    monkeypatch.setattr(s3_source, "CHUNK", 64)  # many pieces: a check between each
    key = "app/skip.log.gz"
    event = notify((key, gz(numbered(LINES))))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    (first,) = account.queued()
    handlers.handle_s3_objects(sqs_event(event, [first]), near_deadline_after_first_check(), rt)
    (again,) = account.queued()
    a, b = json.loads(first)["sluice_continuation"], json.loads(again)["sluice_continuation"]
    assert (a["line"], b["line"]) == (10, 10) and a["token"] != b["token"]
    assert reports.last[1]["objects"][0]["lines"] == 0  # nothing read twice
    handlers.handle_s3_objects(sqs_event(event, [again]), Context(), rt)
    got = lines_of(archive.lines(), key)
    assert [x["source"]["line"] for x in got] == list(range(1, LINES + 1))


def forge(body: str, **changes: Any) -> str:
    doc = json.loads(body)
    doc["sluice_continuation"].update(changes)
    return json.dumps(doc)


FORGERIES = [
    pytest.param(
        {"token": None, "line": 95, "offset": 0, "base": 95}, "no claim token", id="no token"
    ),
    pytest.param({"token": "0" * 32, "line": 95}, "not the object's current claim", id="guessed"),
    pytest.param(
        {"etag": "0" * 32, "line": 95}, "no claim in progress", id="another object version"
    ),
]


@pytest.mark.parametrize(("changes", "why"), FORGERIES)
def test_forged_continuation_is_refused_and_the_object_still_archived_whole(
    notify, account, rt, archive, reports, small_chunks, changes, why
):
    """A continuation that does not carry the object's current claim (no token, a guessed
    one, another version's) is refused with the reason: it reads nothing, skips nothing and
    cannot mark the object done; the genuine continuation then archives every line once."""
    key = "app/forged.log"
    event = notify((key, numbered(100)))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    (genuine,) = account.queued()
    result = handlers.handle_s3_objects(
        sqs_event(event, [forge(genuine, **changes)]), Context(), rt
    )
    assert result == {"batchItemFailures": []}
    (info,) = reports.last[1]["objects"]
    assert why in info["refused"]
    assert account.claim(key, etag)["status"]["S"] == "in_progress"
    assert len(lines_of(archive.lines(), key)) == 10
    handlers.handle_s3_objects(sqs_event(event, [genuine]), Context(), rt)
    got = lines_of(archive.lines(), key)
    assert [x["source"]["line"] for x in got] == list(range(1, 101))
    assert account.claim(key, etag)["status"]["S"] == "done"


def test_forged_continuation_before_any_claim_cannot_finish_the_object(
    notify, account, rt, archive, reports, small_chunks
):
    """The measured attack: a continuation for an object nobody has read yet, claiming its
    100 lines handled. It is refused; the notification that comes next reads all 100."""
    key = "app/first-forged.log"
    event = notify((key, numbered(100)))
    body = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]
    forged = {"bucket": BUCKET, "key": key, "etag": body["object"]["eTag"], "line": 100}
    handlers.handle_s3_objects(
        sqs_event(event, [json.dumps({"sluice_continuation": forged})]), Context(), rt
    )
    assert "refused" in reports.last[1]["objects"][0]
    assert lines_of(archive.lines(), key) == []
    handlers.handle_s3_objects(event, Context(), rt)
    assert len(lines_of(archive.lines(), key)) == 100


@pytest.mark.parametrize("which", ["first", "last"])
def test_stale_continuation_is_refused(notify, account, rt, archive, reports, small_chunks, which):
    """A continuation delivered again after the chain moved on (its token replaced by the
    next one's) or after the object finished is refused: the archive is unchanged and the
    object stays done."""
    key = f"app/stale-{which}.log"
    event = notify((key, numbered(35)))
    etag = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"]
    chain = follow(account, rt, event)
    before = archive.objects()
    stale = chain[0] if which == "first" else chain[-1]
    body = json.dumps({"sluice_continuation": stale})
    handlers.handle_s3_objects(sqs_event(event, [body]), Context(), rt)
    (info,) = reports.last[1]["objects"]
    assert "already finished" in info["refused"]
    assert archive.objects() == before
    assert account.claim(key, etag)["status"]["S"] == "done"
    assert len(lines_of(archive.lines(), key)) == 35
