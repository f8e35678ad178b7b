# ruff: noqa: F811  (the fixtures imported from test_s3_objects are parameters here)
"""CloudWatch Logs archived to S3 by Firehose, read back through `s3_objects`.

The sample documents (tests/data/s3/firehose/cloudwatch_documents.jsonl, one per
line) are written into objects in each layout Firehose produces: every record its
own gzip member with no separator (the default for a subscription), decompressed
and newline-delimited (Decompression + AppendDelimiterToRecord), decompressed with
no separator inside one gzip (Decompression + S3 compression). Whatever the layout,
each log event must come out exactly as the `cloudwatch_logs` trigger makes it.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from chalicelib import handlers
from chalicelib.sources import s3 as s3_source
from chalicelib.sources.cloudwatch import batch_from_document
from chalicelib.sources.firehose import DocumentSplitter, looks_like_documents
from chalicelib.sources.s3 import iter_lines

from .test_s3_objects import (  # noqa: F401  (fixtures)
    account,
    apply_inputs,
    near_deadline_after_first_check,
    notify,
    reports,
    rt,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "s3" / "firehose"
REGION = "us-east-1"
KEY = "cwl-archive/2026/11/26/10/sluice-cwl-archive-1-2026-11-26-10-07-01-5b9b1c3e.gz"


def documents() -> list[str]:
    return (SAMPLE / "cloudwatch_documents.jsonl").read_text().splitlines()


def members(docs: list[str]) -> bytes:
    """Firehose's default: each record (a gzip document) written as it came."""
    return b"".join(gzip.compress(d.encode(), mtime=0) for d in docs)


LAYOUTS = [
    pytest.param(members, id="gzip member per document, no separator"),
    pytest.param(lambda docs: ("\n".join(docs) + "\n").encode(), id="decompressed, newlines"),
    pytest.param(
        lambda docs: gzip.compress("".join(docs).encode(), mtime=0),
        id="decompressed, no separator, one gzip",
    ),
    pytest.param(
        lambda docs: gzip.compress(("\r\n".join(docs)).encode(), mtime=0),
        id="CRLF-delimited, no trailing newline",
    ),
]


def trigger_view(docs: list[str]) -> list[dict[str, Any]]:
    """What the `cloudwatch_logs` trigger archives for the same documents."""
    out = []
    for d in docs:
        batch = batch_from_document(json.loads(d), REGION)
        out.extend(json.loads(json.dumps(ev.envelope())) for ev in batch.events)
    return sorted(out, key=lambda x: x["id"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_firehose_object_gives_the_trigger_events(
    layout, notify, rt, archive, reports, lambda_context
):
    """Every layout gives one event per log event, tagged by log group and sourced as the
    trigger sources it; the control message is acknowledged, not archived; the ledger
    counts the log events (a joined Java trace counts its lines)."""
    docs = documents()
    result = handlers.handle_s3_objects(notify((KEY, layout(docs))), lambda_context, rt)

    assert result == {"batchItemFailures": []}
    got = sorted(archive.lines(), key=lambda x: x["id"])
    assert got == trigger_view(docs)
    assert {x["tag"] for x in got} == {"aws.lambda.checkout-api", "ecs.orders-service"}
    assert got[0]["source"]["kind"] == "cloudwatch"
    ledger, extra = reports.last
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (11, 11, 0)
    (info,) = extra["objects"]
    assert (info["format"], info["lines"], info["control_messages"]) == ("cloudwatch", 4, 1)


def test_firehose_documents_are_parsed_like_the_trigger(notify, rt, archive, lambda_context):
    """Lambda's lines keep their fields (REPORT metrics, runtime level and request id) and a
    JSON message holding `}{` and quotes is parsed whole; a Java trace joins its logger line."""
    handlers.handle_s3_objects(notify((KEY, members(documents()))), lambda_context, rt)
    by_id = {x["id"][-3:]: x["record"] for x in archive.lines()}
    assert by_id["005"]["duration_ms"] == 1612.51
    assert by_id["003"]["level"] == "ERROR"
    assert by_id["002"]["note"] == 'braces }{ and "quotes" in text'
    assert by_id["100"]["multiline_count"] == 4  # the logger header takes the trace after it
    assert by_id["100"]["logger"] == "o.e.orders.Api"


def test_sluice_own_log_group_is_dropped_by_the_loop_guard(
    notify, rt, archive, reports, lambda_context
):
    """A Firehose archive of Sluice's own log group is counted and dropped, never routed
    (routing it would log again into the archived group, forever)."""
    own = json.loads(documents()[3])
    own["logGroup"] = "/aws/lambda/sluice-dev-s3_objects"
    handlers.handle_s3_objects(notify((KEY, members([json.dumps(own)]))), lambda_context, rt)
    ledger, _ = reports.last
    assert (ledger.received, ledger.dropped, dict(ledger.dropped_by)) == (2, 2, {"loop_guard": 2})
    assert archive.lines() == []


@pytest.mark.parametrize(
    "bad, reason",
    [
        pytest.param(
            '{"messageType":"DATA_MESSAGE","owner":"1"}', "decode:shape", id="no logGroup"
        ),
        pytest.param('{"messageType":"PING","logGroup":"/x"}', "decode:shape", id="unknown type"),
        pytest.param(
            '{"messageType":"DATA_MESSAGE","logGroup":"/x","logEvents":[1,]}',
            "decode:json",
            id="invalid JSON",
        ),
    ],
)
def test_unreadable_document_is_dead_lettered_and_the_rest_read(
    bad, reason, notify, rt, archive, dlq, reports, lambda_context
):
    """A document that is not a readable subscription document is dead-lettered by
    reference (object and document number); the documents around it are archived."""
    docs = documents()
    body = members([docs[1], bad, docs[3]])
    handlers.handle_s3_objects(notify((KEY, body)), lambda_context, rt)
    ledger, _ = reports.last
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (8, 7, 1)
    assert dict(ledger.dead_letter_reasons) == {reason: 1}
    (msg,) = dlq.messages()
    assert msg["origin"]["key"] == KEY and msg["origin"]["line"] == 2


def test_document_over_the_cap_is_dead_lettered_by_reference(
    monkeypatch, notify, rt, archive, dlq, reports, lambda_context
):
    """A document longer than the line cap is not half-read: it is dead-lettered with its
    size and place, and the documents after it are still split and archived."""
    monkeypatch.setattr(s3_source, "MAX_LINE", 2000)
    docs = documents()
    big = json.loads(docs[3])
    big["logEvents"][1]["message"] = "x" * 5000
    body = members([docs[1], json.dumps(big), docs[2]])
    handlers.handle_s3_objects(notify((KEY, body)), lambda_context, rt)
    ledger, _ = reports.last
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (10, 9, 1)
    assert dict(ledger.dead_letter_reasons) == {"decode:too-large": 1}
    (msg,) = dlq.messages()
    assert "over the line limit" in msg["reason"] and msg["origin"]["line"] == 2


def test_continuation_resumes_at_the_next_document(
    monkeypatch, notify, account, rt, archive, reports
):
    """Near the deadline, reading stops between documents and the continuation resumes at
    the next one: every log event is archived exactly once."""
    from chalicelib.ingest import s3_objects as objects

    monkeypatch.setattr(objects, "CHUNK_LINES", 2)
    docs = documents() * 3  # 12 documents, 33 log events (the ids repeat: dedupe by key)
    event = notify((KEY, members(docs)))
    handlers.handle_s3_objects(event, near_deadline_after_first_check(), rt)
    queued = account.queued()
    assert len(queued) == 1 and json.loads(queued[0])["sluice_continuation"]["line"] == 2
    while queued:
        cont = {"Records": [{**event["Records"][0], "body": queued[0]}]}
        handlers.handle_s3_objects(cont, near_deadline_after_first_check(), rt)
        queued = account.queued()
    total = reports.total()
    assert (total["received"], total["archived"]) == (33, 33)


def test_input_format_cloudwatch_reads_documents_without_detection(
    apply_inputs, notify, rt, archive, reports, lambda_context
):
    """`format: cloudwatch` on an input reads the documents even when the first one would
    not be recognised (keys in another order)."""
    apply_inputs([{"prefix": "cwl-archive/", "format": "cloudwatch"}])
    doc = json.loads(documents()[3])
    reordered = json.dumps({"logEvents": doc["logEvents"], **doc})
    handlers.handle_s3_objects(notify((KEY, members([reordered] * 2))), lambda_context, rt)
    ledger, extra = reports.last
    assert (ledger.received, ledger.archived) == (4, 4)
    assert extra["objects"][0]["format"] == "cloudwatch"


# ---------------------------------------------------------------- detection and splitting
@pytest.mark.parametrize(
    "head, expected",
    [
        pytest.param(documents()[1].encode(), True, id="data message"),
        pytest.param(documents()[0].encode(), True, id="control message"),
        pytest.param(
            b'  \n{ "messageType": "DATA_MESSAGE", "logGroup": "/g", "logEvents": []}',
            True,
            id="spaced",
        ),
        pytest.param(
            b'{"level":"INFO","messageType":"DATA_MESSAGE","logGroup":"g","logEvents":1}',
            False,
            id="app line naming the same keys later",
        ),
        pytest.param(
            b'{"messageType":"order","logGroup":"g","logEvents":[]}', False, id="other messageType"
        ),
        pytest.param(b"START RequestId: 1\n", False, id="text"),
    ],
)
def test_subscription_documents_are_detected_by_their_head(head, expected):
    """Only content that begins like a subscription document is split into documents."""
    assert looks_like_documents(head) is expected


def split(data: bytes, step: int, max_bytes: int = 1 << 30) -> list[tuple[bytes, int]]:
    s = DocumentSplitter(max_bytes)
    out = []
    for i in range(0, len(data), step):
        out.extend(s.feed(data[i : i + step]))
    out.extend(s.finish())
    return out


TRICKY = [
    '{"m":"}{"}',
    '{"m":"\\\\"}',
    '{"m":"\\\\\\"}{\\""}',
    '{"a":{"b":[{"c":"}"}]},"d":"{"}',
    '{"m":"\\u007d\\u007b"}',
    '{"m":""}',
]


@pytest.mark.parametrize("sep", ["", "\n", "\r\n"], ids=["none", "LF", "CRLF"])
@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1 << 20])
def test_splitter_finds_every_document_whatever_the_pieces(sep, step):
    """Braces and escaped quotes inside strings never end a document, and a boundary or
    an escape split across two reads is still seen."""
    data = sep.join(TRICKY).encode()
    got = [json.loads(d) for d, dropped in split(data, step)]
    assert got == [json.loads(t) for t in TRICKY]


def test_splitter_agrees_with_a_parser_on_random_documents():
    """Random documents with hostile strings, random separators and read sizes: the split
    is exactly the documents written."""
    rng = random.Random(7)
    alphabet = ["}{", '\\"', "\\\\", '"', "{", "}", "x", "\n", "é"]
    for _ in range(200):
        docs = [
            {
                "messageType": "DATA_MESSAGE",
                "logEvents": [
                    {"message": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))}
                    for _ in range(rng.randint(0, 4))
                ],
            }
            for _ in range(rng.randint(1, 5))
        ]
        sep = rng.choice(["", "\n", "\r\n"])
        data = sep.join(json.dumps(d, ensure_ascii=False) for d in docs).encode()
        got = [json.loads(d) for d, _ in split(data, rng.randint(1, 40))]
        assert got == docs


def test_splitter_holds_one_document_at_most():
    """Memory follows the largest document, not the object: after each read the splitter
    keeps no more than the document still open."""
    doc = documents()[1]
    s = DocumentSplitter(1 << 30)
    data = (doc * 2000).encode()
    n = 0
    for i in range(0, len(data), 4096):
        n += len(list(s.feed(data[i : i + 4096])))
        assert s.kept + len(s.tail) <= len(doc) + 4
    n += len(list(s.finish()))
    assert n == 2000


def test_splitter_keeps_only_the_head_of_an_oversized_document():
    """A document over the cap keeps `max_bytes` of it and counts the rest."""
    big = json.dumps({"m": "x" * 1000})
    ((head, dropped), (small, _)) = split((big + '{"m":1}').encode(), 100, max_bytes=200)
    assert (len(head), dropped) == (200, len(big) - 200)
    assert json.loads(small) == {"m": 1}


def test_malformed_document_is_cut_at_the_next_boundary_and_nothing_is_lost():
    """Braces that never balance do not stall the split or take the documents after them:
    the broken piece is handed back alone (to fail parsing and be dead-lettered), and
    every byte is in some piece."""
    data = b'{"m":"ok"}{"m":{"n":1}{"m":"x"}'
    got = [d for d, _ in split(data, 5)]
    assert got == [b'{"m":"ok"}', b'{"m":{"n":1}', b'{"m":"x"}']
    assert b"".join(got) == data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"m":"unterminated}{"m":"x"}', id="unterminated string"),
        pytest.param(b'garbage{"m":"x"}', id="text before a document"),
        pytest.param(b'{"m":"x"} trailing words', id="text after a document"),
    ],
)
def test_any_bytes_come_back_whole_in_order(data):
    """Whatever the damage, the pieces handed back are the input, in order, nothing
    dropped or repeated."""
    for step in (1, 3, 64):
        assert b"".join(d for d, _ in split(data, step)) == data


def test_iter_lines_splits_a_multi_member_object_into_documents():
    """iter_lines gives one Line per document for such objects, numbered from 1."""
    docs = documents()
    lines = list(iter_lines(io.BytesIO(members(docs)), KEY, chunk=97))
    assert [json.loads(x.text) for x in lines] == [json.loads(d) for d in docs]
    assert [x.number for x in lines] == [1, 2, 3, 4]


def test_truncated_gzip_of_documents_gives_the_complete_ones_then_an_error():
    """A cut object yields the documents before the damage, then a DecodeError."""
    from chalicelib.errors import DecodeError

    body = members(documents())
    it = iter_lines(io.BytesIO(body[:-40]), KEY)
    got = []
    with pytest.raises(DecodeError, match="truncated gzip stream after document 3"):
        for line in it:
            got.append(line.number)
    assert got == [1, 2, 3]


# ---------------------------------------------------------------- expand keeps the context
@pytest.mark.parametrize(
    "inputs, in_record",
    [
        pytest.param(
            [{"prefix": "docs/", "format": "jsonl", "expand": "logEvents"}],
            None,
            id="in source only",
        ),
        pytest.param(
            [{"prefix": "docs/", "format": "jsonl", "expand": "logEvents", "context": "doc"}],
            "doc",
            id="declared key in the record too",
        ),
    ],
)
def test_expanded_events_keep_the_document_context(
    inputs, in_record, apply_inputs, notify, rt, archive, reports, lambda_context
):
    """Expanding `logEvents` keeps the document's other fields (logGroup, logStream,
    owner...) with every element: in `source.document`, and under the declared key."""
    apply_inputs(inputs)
    doc = json.loads(documents()[1])
    key = "docs/2026/11/26/batch.json"
    handlers.handle_s3_objects(notify((key, json.dumps(doc).encode())), lambda_context, rt)
    got = sorted(archive.lines(), key=lambda x: x["id"])
    context = {k: v for k, v in doc.items() if k != "logEvents"}
    assert len(got) == 5
    assert all(x["source"]["document"] == context for x in got)
    assert all(x["source"]["key"] == key for x in got)
    if in_record:
        assert all(x["record"][in_record] == context for x in got)
        assert got[0]["record"]["message"].startswith("START RequestId")
    else:
        assert all("logGroup" not in x["record"] for x in got)
    ledger, _ = reports.last
    assert (ledger.received, ledger.archived) == (5, 5)


def test_declared_context_key_never_overwrites_an_element_field(
    apply_inputs, notify, rt, archive, reports, lambda_context
):
    """An element that already has the declared key keeps its own value."""
    apply_inputs([{"prefix": "b/", "expand": "items", "context": "batch"}])
    doc = {"batch": "b-1", "items": [{"msg": "a", "batch": "own"}, {"msg": "b"}]}
    handlers.handle_s3_objects(notify(("b/1.json", json.dumps(doc).encode())), lambda_context, rt)
    got = sorted(archive.lines(), key=lambda x: x["id"])
    assert [x["record"]["batch"] for x in got] == ["own", {"batch": "b-1"}]
