"""The parse path gives byte-identical results to the reference it was frozen from.

Every message of the test corpus (tests/data, events, sluice_cli/corpus, the bench
workload's payloads, the hostile cases) and a table of shapes near the fast path's
edges go through `parse_message`; every CloudWatch document of the corpus and the
bench through `batch_from_document`. Each output is encoded (keys in their order,
times, ids) and compared by digest with tests/data/parse_reference.json, frozen
from the implementation before the fast path. Regenerate it only from that
implementation: `python tests/unit/test_parse_equivalence.py --freeze` run from a
checkout of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "data" / "parse_reference.json"
CORPUS_DIRS = ("tests/data", "events", "sluice_cli/corpus")
TEXT_SUFFIXES = (".txt", ".log", ".jsonl", ".csv", ".tsv")

# Shapes at the edges of the cheap prefix tests: each must take the same path as before.
EDGE_MESSAGES: tuple[str, ...] = (
    "",
    "\n",
    "{",
    "{}",
    '{"a":1}\n',
    '{"a":1}\r\n',
    "[]",
    "[1, 2]",
    "[INFO]",
    "[INFO]\t",
    "[INFO]\t2026-11-26T10:07:01.123Z\tabc\tmessage",
    "[ERROR]\t2026-11-26T10:07:01.123Z\t0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\tboom\n",
    "[WARNING]\t2026-11-26T10:07:01Z\tid\twarn",
    "[DEBUG] 2026-11-26T10:07:01.123Z no tabs",
    "[Info]\tlower",
    "START RequestId: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 Version: $LATEST",
    "END RequestId: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    "REPORT RequestId: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\tDuration: 12.34 ms\t"
    "Billed Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t",
    "START",
    "END ",
    "REPORT",
    "INIT_START Runtime Version: python:3.12.v30",
    "2026-11-26T10:07:01.123Z\t0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\tINFO\thello",
    "2026-11-26T10:07:01.123Z 0b1c2d3e INFO hello",
    "I, [2026-11-26T10:07:01.123456 #1]  INFO -- : hi",
    "plain text line",
    "  indented",
    "Traceback (most recent call last):",
    '{"level":"info","msg":"x","time":"2026-11-26T10:07:01.123Z"}',
    '{"level":30,"msg":"x","time":1764151621123}',
    '{"severity":"warn","event":"x","ts":1764151621.5}',
    '{"message":"m","timestamp":"2026-11-26T10:07:01.123456Z"}',
    '{"message":"m","timestamp":"2026-11-26T10:07:01Z"}',
    '{"message":"m","timestamp":"2026-11-26T10:07:01.1Z"}',
    '{"message":"m","timestamp":"2026-11-26T10:07:01.Z"}',
    '{"message":"m","timestamp":"2026-11-26T10:07:01+00:00"}',
    '{"message":"m","timestamp":"2026-11-26 10:07:00,123+0000"}',
    '{"message":"m","@timestamp":"1764151621"}',
    '{"message":"m","eventTime":"2026-13-26T10:07:01.123Z"}',
    '{"n":123456789012345678901234567890}',
    '{"n":-9223372036854775809}',
    '{"n":9223372036854775807}',
    '{"n":1e30}',
    '{"timestamp":"2026-11-26T10:07:01.123Z","requestId":"r","level":"INFO","message":"m"}',
    '{"time":"2026-11-26T10:07:01.123Z","type":"platform.start","record":{"requestId":"r"}}',
    '{"msg":1,"log":"text"}',
    '{"level":null,"lvl":"x"}',
    '{"level":true}',
    '{"level":[1]}',
    '{"time":99999999999}',
    '{"time":100000000000}',
    '{"time":99999999999999}',
    '{"time":100000000000000}',
    '{"time":-100000000000}',
    '{"time":1.5e12}',
    '{"time":NaN}',
    '{"time":1e400}',
    '{"a":1.0,"b":{"c":12345678901234567890123}}',
    '{"a":[123456789012345678901]}',
    '{"a":"x","b":[{"c":[9223372036854775808]}]}',
    # Refusal order: nesting is named before a wide integer, wherever each sits.
    '{"n":1e19,"d":' + "[" * 70 + "]" * 70 + "}",
    '{"n":12345678901234567890123,"d":' + "[" * 70 + "1" + "]" * 70 + "}",
    '{"d":' + "[" * 70 + "]" * 70 + ',"n":12345678901234567890123}',
    '{"d":' + "{" * 30 + "}" * 30 + ',"n":12345678901234567890123}',
    '{"n":-12345678901234567890123,"m":"' + "x" * 2100 + '"}',
    '{"n":1e30,"m":[1,2]}',
    '{"n":-9.3e18}',
    '{"n":9.3e18,"t":"1234567890123456789"}',
    # Times: separators, fractions, zones (digits of other scripts: test_normalise.py).
    '{"message":"m","time":"2026-11-26 10:07:01"}',
    '{"message":"m","time":"2026-11-26T10:07:01,5Z"}',
    '{"message":"m","time":"2026-11-26T10:07:01.123456789Z"}',
    '{"message":"m","time":"2026-11-26T10:07:01.1234567890123Z"}',
    '{"message":"m","time":"2026-11-26T10:07:01+00"}',
    '{"message":"m","time":"2026-11-26T10:07:01.5-00:00"}',
    '{"message":"m","time":"2026-11-26T10:07:01.5+01:00"}',
    '{"message":"m","time":"2026-11-26T10:07:01z"}',
    '{"message":"m","time":"2026-02-29T10:07:01Z"}',
    '{"message":"m","time":"2026-11-26T24:00:00Z"}',
    '{"message":"m","time":"0001-01-01T00:00:00Z"}',
    "2026-11-26 10:07:01,537 ERROR [main] c.e.Handler - boom",
    "2026-11-26T10:07:01.537+0000 ERROR 8 --- [main] c.e.o.Handler : boom",
    "10:07:01.537 [main] ERROR c.e.orders.Handler - boom",
    "2026-11-26 10:07:01 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 ERROR Handler - boom",
    '10.0.1.2 - - [26/Nov/2026:10:07:01 +0000] "GET / HTTP/1.1" 200 1',
    "1:2:3 ERROR x - y",
    "12:3",
    "2026-",
)


def _ungzipped(v: str) -> Any:
    """The JSON inside base64(gzip(JSON)) text (at most 32 MiB of it), or None."""
    try:
        raw = zlib.decompressobj(wbits=31).decompress(base64.b64decode(v), 32 << 20)
        return orjson.loads(raw)
    except (ValueError, zlib.error, binascii.Error, orjson.JSONDecodeError):
        return None


def _strings(v: Any) -> Iterator[str]:
    """Every string value in a JSON document, and the messages inside any
    base64(gzip(JSON)) string (CloudWatch's `awslogs.data`, Kinesis records)."""
    if type(v) is str:
        yield v
        if len(v) > 20 and v[:4] == "H4sI":
            inner = _ungzipped(v)
            if inner is not None:
                yield from _strings(inner)
    elif type(v) is dict:
        for x in v.values():
            yield from _strings(x)
    elif type(v) is list:
        for x in v:
            yield from _strings(x)


def _documents(v: Any) -> Iterator[dict[str, Any]]:
    """Every CloudWatch subscription document in a JSON value (decoded or gzipped)."""
    if type(v) is dict:
        if v.get("messageType") == "DATA_MESSAGE" and type(v.get("logEvents")) is list:
            yield v
        for x in v.values():
            yield from _documents(x)
    elif type(v) is list:
        for x in v:
            yield from _documents(x)
    elif type(v) is str and len(v) > 20 and v[:4] == "H4sI":
        inner = _ungzipped(v)
        if inner is not None:
            yield from _documents(inner)


def corpus(root: Path) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """(messages, named CloudWatch documents) of the corpus under `root`, deduplicated."""
    sys.path.insert(0, str(root / "bench"))
    try:
        import workload
    finally:
        sys.path.pop(0)
    messages: dict[str, None] = dict.fromkeys(EDGE_MESSAGES)
    docs: list[tuple[str, dict[str, Any]]] = []
    for d in CORPUS_DIRS:
        for path in sorted((root / d).rglob("*")):
            if not path.is_file():
                continue
            name = str(path.relative_to(root))
            raw = path.read_bytes()
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                continue
            if path.suffix == ".json":
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    messages.update(dict.fromkeys(text.splitlines()))
                    continue
                messages.update(dict.fromkeys(_strings(value)))
                docs.extend((f"{name}#{i}", doc) for i, doc in enumerate(_documents(value)))
            elif path.suffix in TEXT_SUFFIXES:
                messages.update(dict.fromkeys(text.splitlines()))
                messages[text] = None
    for i, (doc, _event) in enumerate(workload.payloads(1000)):
        messages.update(dict.fromkeys(le["message"] for le in doc["logEvents"]))
        docs.append((f"workload#{i}", doc))
    return list(messages), docs


def _digest(v: Any) -> str:
    return hashlib.blake2b(orjson.dumps(v, default=repr), digest_size=8).hexdigest()


def outputs(root: Path) -> dict[str, dict[str, str]]:
    """Digest of every input -> digest of what the parse path made of it."""
    from chalicelib.errors import DecodeError
    from chalicelib.parsers import parse_message
    from chalicelib.sources.cloudwatch import batch_from_document

    messages, docs = corpus(root)
    parsed = {_digest(m): _digest(parse_message(m)) for m in messages}
    batches: dict[str, str] = {}
    for name, doc in docs:
        try:
            events = list(batch_from_document(doc, "eu-west-1").events)
        except DecodeError as e:
            batches[name] = _digest(str(e))
            continue
        batches[name] = _digest(
            [(e.tag, e.time, e.record, e.id, e.count, e.size, e.arrival) for e in events]
        )
    return {"parse": parsed, "batches": batches}


@pytest.fixture(scope="module")
def frozen() -> dict[str, dict[str, str]]:
    reference: dict[str, dict[str, str]] = orjson.loads(REFERENCE.read_bytes())
    return reference


@pytest.fixture(scope="module")
def current() -> dict[str, dict[str, str]]:
    return outputs(ROOT)


def test_every_frozen_message_parses_the_same(
    frozen: dict[str, dict[str, str]], current: dict[str, dict[str, str]]
) -> None:
    """Every corpus message gives the record and time the reference implementation gave."""
    ref, now = frozen["parse"], current["parse"]
    common = ref.keys() & now.keys()
    # The corpus may grow; it may not have lost what the reference was frozen from.
    assert len(common) >= 0.95 * len(ref)
    assert len(ref) > 1000
    assert {k: now[k] for k in common} == {k: ref[k] for k in common}


def test_every_frozen_document_gives_the_same_events(
    frozen: dict[str, dict[str, str]], current: dict[str, dict[str, str]]
) -> None:
    """Every CloudWatch document gives the same events (tag, time, record, id, count,
    size, arrival), in the same order, as the reference implementation."""
    ref, now = frozen["batches"], current["batches"]
    workload_docs = [k for k in ref if k.startswith("workload#")]
    assert workload_docs and all(k in now for k in workload_docs)
    common = ref.keys() & now.keys()
    assert {k: now[k] for k in common} == {k: ref[k] for k in common}


def test_edge_shapes_are_all_frozen(frozen: dict[str, dict[str, str]]) -> None:
    """Every edge shape of the fast path's prefix tests is in the frozen reference."""
    assert all(_digest(m) in frozen["parse"] for m in EDGE_MESSAGES)


if __name__ == "__main__" and sys.argv[1:] == ["--freeze"]:
    # Run from the checkout whose implementation is the reference (its root on sys.path).
    here = Path.cwd()
    sys.path.insert(0, str(here))
    REFERENCE.write_bytes(orjson.dumps(outputs(here), option=orjson.OPT_INDENT_2))
