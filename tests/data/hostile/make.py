r"""Builds the hostile corpus's inputs from the small recipes in this directory's JSON files.

Big inputs (a million events, a 40 MiB line, a gzip bomb) are never committed: a case
describes them and this module makes them at test time. Each `*.json` file here is a
list of cases, one per hostile shape:

    {"id": "...", "what": "what the input is", "why": "what it attacks (optional)",
     <input recipe>, "expect": {<the outcome that must follow>}}

(rules_*.json and slack.json state the outcome in the case itself: RE2's `reason` for a
refused pattern, whether an accepted one `matches`, what Slack must `never` show.)

Text recipes (`text(spec)`):
    "literal"                                   the string itself
    {"repeat": "ab", "times": 3}                "ababab"
    {"numbered": "line {i}\n", "times": 2}      "line 1\nline 2\n"
    {"concat": [spec, ...]}                     the pieces joined
    {"json": value}                             value as compact JSON, where
                                                {"json_number": "123..."} is that number
                                                and {"text_of": spec} that text
    {"nested": 65, "open": "{\"a\":", "leaf": "1", "close": "}"}
                                                open*n + leaf + close*n (defaults shown)
    {"wide": 1001}                              {"f0":0,...,"f1000":1000}

Byte recipes (`data(spec)`): a text recipe (UTF-8), or one of
    {"hex": "ff fe 80"}  {"b64": "..."}  {"file": "files/latin1.log"}  {"zeros": n}
    {"bytes": [spec, ...]}                      the pieces concatenated
    {"gzip": spec, "level": 6}  {"zstd": spec}  {"cut": spec, "keep": n}  (first n bytes)
    {"kpl": [[partition key, spec], ...], "md5": "bad"?}  a KPL aggregated record
    {"kpl_body": "0a02706b..."}                 magic + this protobuf (hex) + its MD5
    {"cloudwatch": {"group", "messages": [text spec, ...] | "events": [...]}}
                                                a subscription document, as JSON bytes;
                                                {"repeat_messages": spec, "times": n} in
                                                messages stands for n events
    {"tiny_events": n}                          a subscription document of n tiny events
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson

from sluice_cli import payloads

HERE = Path(__file__).resolve().parent
T0 = 1795687621000  # 2026-11-26T10:07:01.000Z, the time of the sample payloads
GROUP = "/aws/lambda/hostile"
KPL_MAGIC = b"\xf3\x89\x9a\xc2"
KINESIS_STREAM = "sluice-fan-in"
KINESIS_ARN = f"arn:aws:kinesis:us-east-1:123456789012:stream/{KINESIS_STREAM}"
STREAM = "2026/11/26/[$LATEST]0badc0de"
ACCOUNT = "123456789012"


def cases(name: str) -> list[dict[str, Any]]:
    """The cases of `<name>.json`, each with a unique id."""
    items: list[dict[str, Any]] = json.loads((HERE / f"{name}.json").read_text("utf-8"))
    ids = [c["id"] for c in items]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, f"{name}.json: duplicate case ids {sorted(dup)}"
    return items


# ---------------------------------------------------------------- text
def text(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if "repeat" in spec:
        return str(spec["repeat"]) * int(spec["times"])
    if "numbered" in spec:
        return "".join(str(spec["numbered"]).format(i=i) for i in range(1, int(spec["times"]) + 1))
    if "concat" in spec:
        return "".join(text(s) for s in spec["concat"])
    if "json" in spec:
        return dumps(spec["json"]).decode()
    if "nested" in spec:
        n = int(spec["nested"])
        return spec.get("open", '{"a":') * n + spec.get("leaf", "1") + spec.get("close", "}") * n
    if "wide" in spec:
        return "{" + ",".join(f'"f{i}":{i}' for i in range(int(spec["wide"]))) + "}"
    raise ValueError(f"unknown text recipe {spec!r}")


# ---------------------------------------------------------------- bytes
def data(spec: Any) -> bytes:
    if isinstance(spec, str):
        return spec.encode()
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "b64" in spec:
        return base64.b64decode(spec["b64"])
    if "file" in spec:
        return (HERE / spec["file"]).read_bytes()
    if "zeros" in spec:
        return bytes(int(spec["zeros"]))
    if "bytes" in spec:
        return b"".join(data(s) for s in spec["bytes"])
    if "gzip" in spec:
        return payloads.gzip_bytes(data(spec["gzip"]), int(spec.get("level", 6)))
    if "zstd" in spec:
        import zstandard

        return zstandard.ZstdCompressor().compress(data(spec["zstd"]))
    if "cut" in spec:
        return data(spec["cut"])[: int(spec["keep"])]
    if "kpl" in spec:
        records = [(pk, data(s)) for pk, s in spec["kpl"]]
        return payloads.kpl_aggregate(records, bad_md5=bool(spec.get("md5")))
    if "kpl_body" in spec:  # a hand-made protobuf body, framed with the magic and its MD5
        body = bytes.fromhex(spec["kpl_body"])
        return KPL_MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()
    if "cloudwatch" in spec:
        return dumps(cloudwatch_doc(**spec["cloudwatch"]))
    if "tiny_events" in spec:
        return tiny_events(int(spec["tiny_events"]))
    return text(spec).encode()


# ---------------------------------------------------------------- CloudWatch
def dumps(value: Any) -> bytes:
    """JSON bytes; `{"json_number": "123..."}` anywhere becomes that number as written
    (orjson cannot write integers beyond 64 bits, the standard library can), and
    `{"text_of": text recipe}` that text."""

    def numbers(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"json_number"}:
                return int(v["json_number"])
            if set(v) == {"text_of"}:
                return text(v["text_of"])
            return {k: numbers(x) for k, x in v.items()}
        if isinstance(v, list):
            return [numbers(x) for x in v]
        return v

    return json.dumps(numbers(value), separators=(",", ":"), ensure_ascii=False).encode()


def log_events(messages: list[Any], t0: int = T0) -> list[dict[str, Any]]:
    """CloudWatch logEvents for messages (text recipes), 1 ms apart, with 56-digit ids.
    `{"repeat_messages": spec, "times": n}` stands for n events of the same message."""
    texts: list[str] = []
    for m in messages:
        if isinstance(m, dict) and "repeat_messages" in m:
            texts.extend([text(m["repeat_messages"])] * int(m["times"]))
        else:
            texts.append(text(m))
    return [{"id": f"3791{i:052d}", "timestamp": t0 + i, "message": t} for i, t in enumerate(texts)]


def cloudwatch_doc(
    group: str = GROUP,
    messages: list[Any] | None = None,
    events: list[Any] | None = None,
    stream: str = STREAM,
    message_type: str = "DATA_MESSAGE",
) -> dict[str, Any]:
    evs = events if events is not None else log_events(messages or [])
    return payloads.log_document(group, stream, evs, owner=ACCOUNT, message_type=message_type)


awslogs = payloads.awslogs  # the cloudwatch_logs trigger event carrying raw bytes


def cloudwatch_event(**kw: Any) -> dict[str, Any]:
    return awslogs(payloads.gzip_bytes(dumps(cloudwatch_doc(**kw))))


def tiny_events(n: int, group: str = "/aws/lambda/tiny") -> bytes:
    """A subscription document of `n` events of two-character messages, built as bytes
    (json.dumps of a million dicts takes seconds; this takes a fraction of one)."""
    head = (
        b'{"messageType":"DATA_MESSAGE","owner":"'
        + ACCOUNT.encode()
        + b'","logGroup":'
        + orjson.dumps(group)
        + b',"logStream":"s","subscriptionFilters":["sluice"],"logEvents":['
    )
    body = b",".join(
        b'{"id":"%d","timestamp":%d,"message":"e%d"}' % (i, T0 + i % 1000, i % 10) for i in range(n)
    )
    return head + body + b"]}"


# ---------------------------------------------------------------- Kinesis
def kinesis_record(raw: bytes, n: int, **kinesis_fields: Any) -> dict[str, Any]:
    """One record of Lambda's Kinesis event, sequence number `n`, carrying `raw`;
    `kinesis_fields` replace or add fields of its `kinesis` part."""
    rec = payloads.kinesis_record(
        raw,
        sequence=payloads.sample_sequence(n),
        partition_key=f"pk-{n}",
        arrival=1795687621.5,
        stream_arn=KINESIS_ARN,
    )
    rec["kinesis"].update(kinesis_fields)
    return rec


def kinesis_event(case: dict[str, Any]) -> dict[str, Any]:
    """A Kinesis event from a case: `records` (byte recipes, or {"literal": record} for a
    record given whole, or {"data": recipe, "kinesis": {fields}} to change its fields)."""
    if "event" in case:
        return event(case["event"])
    out = []
    for n, r in enumerate(case["records"], start=1):
        if isinstance(r, dict) and "literal" in r:
            out.append(r["literal"])
        elif isinstance(r, dict) and "kinesis" in r:
            out.append(kinesis_record(data(r["data"]), n, **r["kinesis"]))
        else:
            out.append(kinesis_record(data(r), n))
    return {"Records": out}


# ---------------------------------------------------------------- S3 through SQS
S3_BUCKET = "app-logs-example"
OBJECTS_QUEUE = "sluice-objects"


def _sqs_template() -> dict[str, Any]:
    return dict(event({"sample": "s3_objects_sqs"})["Records"][0])


def s3_notification(key: str, etag: str, size: int, bucket: str = S3_BUCKET) -> str:
    """The sample notification body pointed at `key`, URL-encoded as S3 writes it
    (form encoding: a space is `+`, `+` is `%2B`, `%` is `%25`; `/` stays)."""
    from urllib.parse import quote_plus

    doc = json.loads(_sqs_template()["body"])
    rec = doc["Records"][0]["s3"]
    rec["bucket"]["name"] = bucket
    rec["object"].update(key=quote_plus(key, safe="/"), eTag=etag, size=size)
    return json.dumps(doc)


def sqs_event(bodies: list[Any]) -> dict[str, Any]:
    """An SQS event, one record per body, shaped like the sample's first record."""
    base = _sqs_template()
    out = []
    for i, body in enumerate(bodies):
        rec = json.loads(json.dumps(base))
        rec["messageId"] = f"2e1424d4-f796-459a-8184-{i:012d}"
        if body is None:
            rec.pop("body")
        else:
            rec["body"] = body
        out.append(rec)
    return {"Records": out}


# ---------------------------------------------------------------- events of any trigger
def event(spec: dict[str, Any]) -> Any:
    """A trigger event from a case: a sample from events/, a literal event, or data for
    `awslogs.data` (base64 of a byte recipe)."""
    if "sample" in spec:
        root = HERE.parents[2] / "events"
        return json.loads((root / f"{spec['sample']}.json").read_text("utf-8"))
    if "literal" in spec:
        return spec["literal"]
    if "awslogs_data" in spec:
        return awslogs(data(spec["awslogs_data"]))
    if "awslogs_text" in spec:  # a string that is not base64 at all
        return {"awslogs": {"data": text(spec["awslogs_text"])}}
    raise ValueError(f"unknown event recipe {sorted(spec)}")
