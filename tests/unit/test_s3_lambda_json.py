"""Lambda's JSON log format read from S3 gives the records it gives through CloudWatch.

Lambda can deliver its logs to S3 (and Firehose writes them there), one JSON object per
line in the format of `LogFormat: JSON`: platform events in the Telemetry API schema and
application lines with `requestId`. A rule written for one transport must match the
other: each line's record and time are those `parse_message` gives the same text.
"""

from __future__ import annotations

import orjson
import pytest

from chalicelib.ingest import s3_objects
from chalicelib.parsers import parse_message
from chalicelib.sources import s3, s3_formats

REF = s3.ObjectRef("acme-logs", "AWSLogs/123456789012/lambda/x.log", None, "e1", 10)

LINES = [
    pytest.param(
        {
            "time": "2026-11-26T10:07:01.537Z",
            "type": "platform.report",
            "record": {
                "requestId": "6f8e1c2d-0000-4000-8000-000000000001",
                "status": "success",
                "metrics": {
                    "durationMs": 102.25,
                    "billedDurationMs": 103,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 70,
                    "initDurationMs": 180.37,
                },
                "tracing": {
                    "spanId": "54565fb41ac79632",
                    "type": "X-Amzn-Trace-Id",
                    "value": (
                        "Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"
                    ),
                },
            },
        },
        id="platform.report",
    ),
    pytest.param(
        {
            "time": "2026-11-26T10:07:00.001Z",
            "type": "platform.start",
            "record": {"requestId": "6f8e1c2d-0000-4000-8000-000000000001", "version": "$LATEST"},
        },
        id="platform.start",
    ),
    pytest.param(
        {
            "time": "2026-11-26T10:06:59.000Z",
            "type": "platform.initStart",
            "record": {
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": "python:3.12.v18",
                "runtimeVersionArn": "arn:aws:lambda:us-east-1::runtime:abc",
            },
        },
        id="platform.initStart",
    ),
    pytest.param(
        {
            "timestamp": "2026-11-26T10:07:01.100Z",
            "level": "ERROR",
            "message": "payment declined",
            "logger": "root",
            "requestId": "6f8e1c2d-0000-4000-8000-000000000001",
        },
        id="runtime line (Python, Node.js)",
    ),
    pytest.param(
        {
            "timestamp": "2026-11-26T10:07:01.200Z",
            "level": "WARN",
            "message": "slow downstream",
            "AWSRequestId": "6f8e1c2d-0000-4000-8000-000000000001",
        },
        id="runtime line (Java)",
    ),
]


@pytest.mark.parametrize("line", LINES)
def test_lambda_json_lines_from_s3_read_as_from_cloudwatch(line):
    """A Lambda JSON-format line in an S3 object of JSON lines has the record and time
    the same text has through CloudWatch (`request_id`, `lambda_event`, metrics...)."""
    text = orjson.dumps(line).decode()
    fmt = s3_formats.FORMATS["jsonl"]()
    (ev,) = s3_objects.line_events(fmt, s3.Line(1, text), REF, "t", 5, None)
    rec, t = parse_message(text)
    assert ev.record == rec
    assert ev.time == (5 if t is None else t)
    assert "request_id" in rec or "runtime_version" in rec
