"""AWS Lambda's own lines in a function's log group.

Platform lines (written by Lambda, tab-separated):
    START RequestId: 6f8e... Version: $LATEST
    END RequestId: 6f8e...
    REPORT RequestId: 6f8e...\tDuration: 102.25 ms\tBilled Duration: 103 ms\t
        Memory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 180.37 ms
    INIT_START Runtime Version: python:3.12.v18\tRuntime Version ARN: arn:...
    REPORT ...\tStatus: timeout            (a timed-out invocation)
    REPORT ...\tStatus: error\tError Type: Runtime.ExitError
    INIT_REPORT Init Duration: 10002.61 ms\tPhase: init\tStatus: timeout
    XRAY TraceId: 1-5e1b4151-5ac6c58f...\tSegmentId: 6a3e7d9c0b1a2f3e\tSampled: true
        (its own line after REPORT's, in the same event, when tracing is active)
Runtime lines (Python runtime's default text format):
    [ERROR]\t2026-11-26T10:07:01.123Z\t6f8e...\tsomething failed
Parsed with str.split: no regex on the hot path.
"""

from __future__ import annotations

from typing import Any

from chalicelib.parsers.fields import number as _number
from chalicelib.parsers.lambda_runtime import parse_runtime_text
from chalicelib.parsers.registry import failed, simple

PREFIXES: tuple[str, ...] = (
    "START RequestId: ",
    "END RequestId: ",
    "REPORT RequestId: ",
    "INIT_START ",
    "INIT_REPORT ",
    "XRAY TraceId: ",
)

# REPORT field label -> (record key, unit suffix stripped)
_REPORT_FIELDS = {
    "Duration": ("duration_ms", " ms"),
    "Billed Duration": ("billed_duration_ms", " ms"),
    "Memory Size": ("memory_size_mb", " MB"),
    "Max Memory Used": ("max_memory_used_mb", " MB"),
    "Init Duration": ("init_duration_ms", " ms"),
    "Restore Duration": ("restore_duration_ms", " ms"),
    "Billed Restore Duration": ("billed_restore_duration_ms", " ms"),
}
# Labels whose values stay text (the same names platform.report's JSON gives).
_TEXT_FIELDS = {
    "Status": "status",
    "Error Type": "error_type",
    "Phase": "phase",
    "XRAY TraceId": "trace_id",
    "SegmentId": "segment_id",
}


def _fields(rec: dict[str, Any], parts: list[str]) -> None:
    """`Label: value` parts (tab-separated, an XRAY line after a newline) into `rec`."""
    for part in parts:
        field = _PARTS.get(part, _UNREAD)
        if field is _UNREAD:
            field = _field(part)
            if len(part) <= _PART_MAX:
                if len(_PARTS) >= _PARTS_MAX:
                    _PARTS.clear()
                _PARTS[part] = field
        if field is not None:
            rec[field[0]] = field[1]


# What each short part read before gave: a function's REPORT lines repeat most of theirs
# (`Memory Size: 512 MB`, `Max Memory Used: 123 MB`, `Billed Duration: 503 ms`), and a
# part read again costs one lookup instead of ~3,000 instructions. Bounded: parts up to
# 64 characters, 1,024 of them (then the table starts again).
_PARTS: dict[str, tuple[str, Any] | None] = {}
_PART_MAX = 64
_PARTS_MAX = 1024
_UNREAD: Any = object()


def _field(part: str) -> tuple[str, Any] | None:
    """One `Label: value` part -> (record key, value), or None when it gives none."""
    label, sep, value = part.strip().partition(": ")
    if not sep:
        return None
    spec = _REPORT_FIELDS.get(label)
    if spec is not None:
        key, unit = spec
        n = _number(value.removesuffix(unit).strip())
        return None if n is None else (key, n)
    if label in _TEXT_FIELDS:
        return _TEXT_FIELDS[label], value.strip()
    if label == "Sampled":
        return "sampled", value.strip() == "true"
    return None


@simple("lambda_platform", description="AWS Lambda START/END/REPORT/INIT_START lines")
def parse_platform_required(message: str) -> dict[str, Any]:
    rec = parse_platform(message)
    return failed(message, "lambda_platform", "not a platform line") if rec is None else rec


# The lines Lambda writes for every invocation, by their first character: (prefix, kind).
_REQUEST_LINES = {
    "S": ("START RequestId: ", "start"),
    "E": ("END RequestId: ", "end"),
    "R": ("REPORT RequestId: ", "report"),
}


def parse_platform(message: str) -> dict[str, Any] | None:
    """A START/END/REPORT/INIT_START line -> fields, or None if it is not one."""
    line = _REQUEST_LINES.get(message[:1])
    if line is not None and message.startswith(line[0]):
        return _request_line(message, len(line[0]), line[1])
    head, _, rest = message.partition(" ")
    kind = head.lower()
    rec: dict[str, Any] = {"message": message, "level": "INFO", "lambda_event": kind}
    if kind in ("init_report", "xray"):
        _fields(rec, (rest if kind == "init_report" else message).rstrip().split("\t"))
        return rec
    if kind == "init_start":
        for part in rest.split("\t"):
            label, sep, value = part.partition(": ")
            if sep and label == "Runtime Version":
                rec["runtime_version"] = value.strip()
            elif sep and label == "Runtime Version ARN":
                rec["runtime_version_arn"] = value.strip()
        return rec
    parts = rest.rstrip().split("\t")
    label, sep, value = parts[0].partition(": ")
    if label != "RequestId" or not sep:
        return None
    request_id, _, tail = value.partition(" ")
    rec["request_id"] = request_id
    if kind == "start" and tail.startswith("Version: "):
        rec["function_version"] = tail[len("Version: ") :]
    elif kind == "report":
        _fields(rec, parts[1:])
    return rec


def _request_line(message: str, start: int, kind: str) -> dict[str, Any] | None:
    """A START, END or REPORT line whose prefix (`start` characters, through
    `RequestId: `) is known: what the general path above makes of it, without taking
    the prefix apart again (1 in 5 events of a busy function is one of these)."""
    body = message[start:].rstrip()
    if not body:  # `RequestId:` and nothing after it: no request id
        return None
    rec: dict[str, Any] = {"message": message, "level": "INFO", "lambda_event": kind}
    if kind == "report":
        parts = body.split("\t")
        request_id = parts[0].partition(" ")[0]
        rec["request_id"] = request_id
        _fields(rec, parts[1:])
        return rec
    tab = body.find("\t")
    request_id, _, tail = (body if tab < 0 else body[:tab]).partition(" ")
    rec["request_id"] = request_id
    if kind == "start" and tail.startswith("Version: "):
        rec["function_version"] = tail[9:]
    return rec


@simple(
    "lambda_runtime",
    description="managed runtimes' text lines (Python, Node.js, .NET, Ruby, JVM loggers)",
)
def parse_runtime_required(message: str) -> dict[str, Any]:
    rec = parse_runtime_line(message) or parse_runtime_text(message)
    return failed(message, "lambda_runtime", "not a runtime line") if rec is None else rec


def parse_runtime_line(message: str) -> dict[str, Any] | None:
    """`[LEVEL]\\t<iso time>\\t<request id>\\t<message>` -> fields, or None."""
    parts = message.split("\t", 3)
    if len(parts) != 4 or not parts[0].endswith("]"):
        return None
    level = parts[0][1:-1]
    if not level.isalpha():
        return None
    return {"level": level, "time": parts[1], "request_id": parts[2], "message": parts[3]}
