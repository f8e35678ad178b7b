"""Lambda's logs in every shape a function writes them: each managed runtime's text lines,
the JSON log format (runtime and platform lines), REPORT's status and X-Ray fields; and
both formats of one function read end to end through `cloudwatch_logs`.

Samples: tests/data/parsers/lambda_runtime_lines.json (one line per runtime and logger
layout, from each runtime's logging documentation) and tests/data/cloudwatch/
lambda_{json,text}_format.decoded.json (the same three invocations -- a success, an
uncaught error, a timeout -- as a function writes them in each format).
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.parsers import parse_message, registry
from chalicelib.parsers.multiline import is_throwable_line
from chalicelib.sources.cloudwatch import batch_from_document

DATA = Path(__file__).resolve().parents[2] / "data"
RUNTIME = json.loads((DATA / "parsers" / "lambda_runtime_lines.json").read_text())
RID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"


def doc(name: str) -> dict[str, Any]:
    return json.loads((DATA / "cloudwatch" / name).read_text())


# ---------------------------------------------------------------- runtime text lines
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in RUNTIME["lines"]])
def test_runtime_text_line_gives_level_time_request_id(case):
    """Each runtime's line (and each JVM logger layout) is split into its documented
    fields, the level in one upper-case vocabulary, the event time from the line."""
    record, t = parse_message(case["line"] + "\n")
    assert record == case["record"]
    assert t == case["time_ms"]


@pytest.mark.parametrize("line", RUNTIME["plain"])
def test_lines_of_other_shapes_stay_plain_text(line):
    """Lines that only start like a runtime line (an access log, a date then prose) are
    kept whole as text."""
    assert parse_message(line) == ({"message": line}, None)


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in RUNTIME["lines"]])
def test_named_lambda_runtime_parser_reads_every_runtime(case):
    """`parse: {format: lambda_runtime}` in a rule reads the same lines."""
    parsed = registry.build("lambda_runtime")(case["line"])
    assert "parse_error" not in parsed and parsed["message"] == case["record"]["message"]


# ---------------------------------------------------------------- platform lines
@pytest.mark.parametrize(
    "line, fields",
    [
        pytest.param(
            f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 71 MB\tStatus: timeout",
            {"status": "timeout", "duration_ms": 3000.0},
            id="timeout",
        ),
        pytest.param(
            f"REPORT RequestId: {RID}\tDuration: 812.04 ms\tBilled Duration: 813 ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\t"
            "Error Type: Runtime.OutOfMemory",
            {"status": "error", "error_type": "Runtime.OutOfMemory", "max_memory_used_mb": 128},
            id="error with type",
        ),
        pytest.param(
            f"REPORT RequestId: {RID}\tDuration: 20.00 ms\tBilled Duration: 21 ms\t"
            "Memory Size: 256 MB\tMax Memory Used: 90 MB\t\n"
            "XRAY TraceId: 1-5e1b4151-5ac6c58f5b5dbd6a3f4a4c1d\tSegmentId: 6a3e7d9c0b1a2f3e\t"
            "Sampled: true\t\n",
            {
                "trace_id": "1-5e1b4151-5ac6c58f5b5dbd6a3f4a4c1d",
                "segment_id": "6a3e7d9c0b1a2f3e",
                "sampled": True,
                "duration_ms": 20.0,
            },
            id="xray line in the report event",
        ),
        pytest.param(
            "XRAY TraceId: 1-5e1b4151-5ac6c58f5b5dbd6a3f4a4c1d\tSegmentId: 6a3e7d9c0b1a2f3e\t"
            "Sampled: false",
            {
                "lambda_event": "xray",
                "trace_id": "1-5e1b4151-5ac6c58f5b5dbd6a3f4a4c1d",
                "sampled": False,
            },
            id="xray line alone",
        ),
        pytest.param(
            "INIT_REPORT Init Duration: 10002.61 ms\tPhase: init\tStatus: timeout",
            {
                "lambda_event": "init_report",
                "init_duration_ms": 10002.61,
                "phase": "init",
                "status": "timeout",
            },
            id="init report",
        ),
    ],
)
def test_platform_text_lines_give_status_error_type_and_trace(line, fields):
    """REPORT's `Status` and `Error Type`, the X-Ray line and INIT_REPORT are read under
    the names the JSON format's platform events give."""
    record, _ = parse_message(line)
    assert {k: record.get(k) for k in fields} == fields
    assert record["level"] == "INFO"


REPORT_KEYS = (
    "lambda_event request_id duration_ms billed_duration_ms memory_size_mb max_memory_used_mb "
    "init_duration_ms status error_type trace_id segment_id sampled"
).split()


def reports(name: str) -> list[dict[str, Any]]:
    batch = batch_from_document(doc(name), "us-east-1")
    return [
        {k: ev.record[k] for k in REPORT_KEYS if k in ev.record}
        for ev in batch.events
        if ev.record.get("lambda_event") == "report"
    ]


def test_json_platform_report_gives_the_text_report_fields():
    """The same invocations give the same REPORT fields in either log format (the JSON
    format also says `status: success`, which the text line leaves unsaid)."""
    text, js = (
        reports("lambda_text_format.decoded.json"),
        reports("lambda_json_format.decoded.json"),
    )
    assert len(text) == len(js) == 3
    for t, j in zip(text, js, strict=True):
        assert {**t, "status": t.get("status", "success")} == j
    assert [j["status"] for j in js] == ["success", "error", "timeout"]


@pytest.mark.parametrize(
    "line, fields",
    [
        pytest.param(
            '{"timestamp":"2026-11-26T10:07:01.201Z","level":"INFO","message":"order received",'
            f'"logger":"root","requestId":"{RID}"}}',
            {"level": "INFO", "message": "order received", "request_id": RID, "logger": "root"},
            id="python runtime",
        ),
        pytest.param(
            '{"timestamp":"2026-11-26T10:07:01.201Z","level":"WARN",'
            f'"requestId":"{RID}","message":"slow"}}',
            {"level": "WARN", "message": "slow", "request_id": RID},
            id="nodejs runtime",
        ),
        pytest.param(
            '{"timestamp":"2026-11-26T10:07:01.201Z","level":"ERROR","message":"boom",'
            f'"AWSRequestId":"{RID}"}}',
            {"level": "ERROR", "message": "boom", "request_id": RID},
            id="java runtime",
        ),
        pytest.param(
            '{"timestamp":"2026-11-26T10:07:01.201Z","log_level":"ERROR","errorMessage":"boom",'
            f'"errorType":"ValueError","requestId":"{RID}","stackTrace":["  File x"]}}',
            {"level": "ERROR", "message": "boom", "request_id": RID, "errorType": "ValueError"},
            id="python uncaught error",
        ),
        pytest.param(
            '{"time":"2026-11-26T10:07:01.180Z","type":"platform.start",'
            f'"record":{{"requestId":"{RID}","version":"$LATEST"}}}}',
            {"lambda_event": "start", "request_id": RID, "function_version": "$LATEST"},
            id="platform.start",
        ),
        pytest.param(
            '{"time":"2026-11-26T10:07:01.180Z","type":"platform.runtimeDone",'
            f'"record":{{"requestId":"{RID}","status":"failure","errorType":"Runtime.ExitError",'
            '"metrics":{"durationMs":12.5,"producedBytes":0}}}',
            {
                "lambda_event": "runtime_done",
                "status": "failure",
                "error_type": "Runtime.ExitError",
                "duration_ms": 12.5,
                "produced_bytes": 0,
            },
            id="platform.runtimeDone",
        ),
        pytest.param(
            '{"time":"2026-11-26T10:07:01.180Z","type":"platform.initReport",'
            '"record":{"initializationType":"on-demand","phase":"init","status":"timeout",'
            '"metrics":{"durationMs":10002.61}}}',
            {
                "lambda_event": "init_report",
                "status": "timeout",
                "init_duration_ms": 10002.61,
                "phase": "init",
            },
            id="platform.initReport",
        ),
    ],
)
def test_json_log_format_lines_are_normalised(line, fields):
    """Runtime JSON lines give level, message and `request_id`; platform events give the
    fields of their text line; the event time is the line's own."""
    record, t = parse_message(line)
    assert {k: record.get(k) for k in fields} == fields
    assert t in (1795687621201, 1795687621180)


def test_a_json_line_that_only_has_a_type_field_is_left_alone():
    """An application's own `type`/`record` fields are not taken for a platform event."""
    line = '{"type":"order","record":{"id":7},"message":"stored"}'
    assert parse_message(line)[0] == {"type": "order", "record": {"id": 7}, "message": "stored"}


# ---------------------------------------------------------------- traces after a header
def lines_to_events(lines: list[str]) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/ecs/orders-service",
        "logStream": "ecs/orders/3f1c9d7e",
        "subscriptionFilters": ["sluice"],
        "logEvents": [
            {"id": f"{i:056d}", "timestamp": 1795687621000 + i, "message": m}
            for i, m in enumerate(lines)
        ],
    }


JAVA_TRACE = (DATA / "parsers" / "java_trace.txt").read_text().splitlines()


@pytest.mark.parametrize(
    "header, fields",
    [
        pytest.param(
            "10:07:01.537 [main] ERROR c.e.orders.Handler - payment failed",
            {"level": "ERROR", "logger": "c.e.orders.Handler", "thread": "main"},
            id="logback",
        ),
        pytest.param(
            f"2026-11-26 10:07:01 {RID} ERROR Handler - payment failed",
            {"level": "ERROR", "logger": "Handler", "request_id": RID},
            id="lambda log4j2",
        ),
        pytest.param(
            "2026-11-26T10:07:01.537Z ERROR 8 --- [main] c.e.orders.Handler : payment failed",
            {"level": "ERROR", "logger": "c.e.orders.Handler", "pid": 8},
            id="spring boot",
        ),
    ],
)
def test_header_line_takes_the_trace_that_follows_it(header, fields):
    """A logger's header, the exception line, its frames, `Caused by:` and `... N more`
    become one event with the header's level and logger; nothing is counted twice."""
    exception = "java.lang.IllegalStateException: A book has a null property"
    lines = [header, exception, *JAVA_TRACE[1:], "10:07:02.000 [main] INFO c.e.Api - next"]
    batch = batch_from_document(lines_to_events(lines), "us-east-1")
    first, nxt = batch.events
    assert {k: first.record[k] for k in fields} == fields
    assert first.record["message"] == "\n".join(["payment failed", exception, *JAVA_TRACE[1:]])
    assert first.record["multiline_count"] == first.count == len(lines) - 1
    assert nxt.record["message"] == "next" and nxt.record["level"] == "INFO"
    assert sum(ev.count for ev in batch.events) == len(lines)


def test_header_does_not_swallow_an_ordinary_next_line():
    """A header followed by a line that is no trace stays alone; so does that line."""
    frame = "\tat com.example.A.b(A.java:1)"
    lines = ["10:07:01.537 [main] INFO c.e.Config - loaded", "Config: 5 entries", frame]
    events = batch_from_document(lines_to_events(lines), "us-east-1").events
    assert [ev.record["message"] for ev in events] == ["loaded", f"Config: 5 entries\n{frame}"]


def test_json_line_with_a_level_never_heads_a_text_trace():
    """A JSON record is not a header: indented lines after it do not join onto it."""
    lines = ['{"level":"ERROR","message":"boom"}', "\tat com.example.A.b(A.java:1)"]
    events = batch_from_document(lines_to_events(lines), "us-east-1").events
    assert [ev.count for ev in events] == [1, 1]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("java.lang.IllegalStateException: boom", True),
        ("java.lang.OutOfMemoryError: Java heap space", True),
        ('Exception in thread "main" java.lang.RuntimeException', True),
        ("com.example.orders.StockException", True),
        ("Config: loaded", False),
        ("ValueError: bad", False),
        ("see java.lang.Exception: docs", False),
    ],
)
def test_throwable_line_is_recognised_strictly(line, expected):
    """Only a qualified class name ending like a throwable opens a JVM trace after a header."""
    assert is_throwable_line(line) is expected


# ---------------------------------------------------------------- end to end
def subscription(d: dict[str, Any]) -> dict[str, Any]:
    body = gzip.compress(json.dumps(d).encode(), mtime=0)
    return {"awslogs": {"data": base64.b64encode(body).decode()}}


TIMEOUT_RULE = {
    "id": "lambda-timeouts",
    "match": {"tag": "aws.lambda.**", "where": [{"field": "status", "in": ["timeout", "error"]}]},
    "transform": {"set": {"alert": "invocation failed"}},
}


@pytest.mark.parametrize(
    "name", ["lambda_json_format.decoded.json", "lambda_text_format.decoded.json"]
)
def test_one_rule_matches_either_log_format_end_to_end(name, invoke, apply_rules, archive):
    """Through `cloudwatch_logs`, one rule on `status` matches the failed invocations'
    REPORT in either format; every event is archived and the ledger balances."""
    apply_rules({"rules": [TIMEOUT_RULE]})
    d = doc(name)
    result = invoke(subscription(d))
    assert (result["received"], result["archived"], result["lost"]) == (
        len(d["logEvents"]),
        len(d["logEvents"]),
        0,
    )
    assert result["rules"]["lambda-timeouts"]["matched"] == 2
    lines = archive.lines()
    failed = [x["record"] for x in lines if x["record"].get("alert")]
    assert [(r["status"], r["request_id"][:8]) for r in failed] == [
        ("error", "0b7c1a2e"),
        ("timeout", "5e6f7a8b"),
    ]
    errors = [x["record"] for x in lines if x["record"].get("level") == "ERROR"]
    assert errors and all(r.get("request_id") for r in errors)


@pytest.mark.parametrize(
    "line, pid",
    [
        pytest.param("E, [2026-11-26T10:07:01.537120 #8] ERROR -- : boom", 8, id="ascii"),
        pytest.param("E, [2026-11-26T10:07:01.537120 #²] ERROR -- : boom", None, id="superscript"),
        pytest.param(
            "E, [2026-11-26T10:07:01.537120 #\u0668] ERROR -- : boom", None, id="arabic-indic"
        ),
        pytest.param(
            "E, [2026-11-26T10:07:01.537120 #" + "1" * 5000 + "] ERROR -- : boom",
            None,
            id="beyond int() digits",
        ),
        pytest.param(
            "E, [2026-11-26T10:07:01.537120 #" + "9" * 19 + "] ERROR -- : boom",
            None,
            id="beyond 64 bits",
        ),
        pytest.param(
            "2026-11-26T10:07:01.537Z ERROR ² --- [main] c.e.Handler : boom", None, id="spring ²"
        ),
        pytest.param(
            "2026-11-26T10:07:01.537Z ERROR 12 --- [main] c.e.Handler : boom", 12, id="spring"
        ),
    ],
)
def test_a_pid_is_one_to_eighteen_ascii_digits_and_never_raises(line, pid):
    """A Ruby or Spring Boot pid is read only from 1-18 ASCII digits (a 64-bit integer);
    other digits (`²`, Arabic-Indic, thousands of them) leave no pid and raise nothing."""
    record, _ = parse_message(line)
    assert record.get("pid") == pid
    assert record["level"] == "ERROR"
