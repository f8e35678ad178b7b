"""Lambda's JSON log format (advanced logging controls, `LogFormat: JSON`).

The runtime writes application lines as
    {"timestamp": "2026-11-26T10:07:01.537Z", "level": "ERROR", "message": "...",
     "logger": "root", "requestId": "6f8e..."}
(Java's `AWSRequestId`; Python's uncaught errors `log_level`, `errorMessage`,
`errorType`, `stackTrace`), and the platform writes its events in the Telemetry API
schema:
    {"time": "...", "type": "platform.report",
     "record": {"requestId": "6f8e...", "status": "success",
                "metrics": {"durationMs": 102.25, "billedDurationMs": 103,
                            "memorySizeMB": 128, "maxMemoryUsedMB": 70,
                            "initDurationMs": 180.37},
                "tracing": {"spanId": "...", "type": "X-Amzn-Trace-Id",
                            "value": "Root=1-...;Parent=...;Sampled=1"}}}
Both come out with the names the text format gives (`request_id`, `duration_ms`,
`lambda_event: report`, `status`, `trace_id`...), so one rule matches either.
"""

from __future__ import annotations

from typing import Any

PLATFORM = "platform."

# Telemetry API metric -> the text REPORT line's field.
_METRICS = {
    "durationMs": "duration_ms",
    "billedDurationMs": "billed_duration_ms",
    "memorySizeMB": "memory_size_mb",
    "maxMemoryUsedMB": "max_memory_used_mb",
    "initDurationMs": "init_duration_ms",
    "restoreDurationMs": "restore_duration_ms",
    "billedRestoreDurationMs": "billed_restore_duration_ms",
    "producedBytes": "produced_bytes",
}
# The phase reports time their phase: the text INIT_REPORT says "Init Duration".
_PHASE_DURATION = {"init_report": "init_duration_ms", "restore_report": "restore_duration_ms"}
_RECORD = {
    "requestId": "request_id",
    "version": "function_version",
    "runtimeVersion": "runtime_version",
    "runtimeVersionArn": "runtime_version_arn",
    "errorType": "error_type",
    "initializationType": "initialization_type",
}
# Runtime lines: the text format's names for the request id.
REQUEST_ID_KEYS = ("requestId", "AWSRequestId")


def snake(name: str) -> str:
    """`runtimeDone` -> `runtime_done`, `initStart` -> `init_start`."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def is_platform(doc: dict[str, Any]) -> bool:
    t = doc.get("type")
    return type(t) is str and t.startswith(PLATFORM) and type(doc.get("record")) is dict


def platform_record(doc: dict[str, Any], text: str) -> dict[str, Any]:
    """A platform event -> the fields its text line gives; `message` keeps the line."""
    event = snake(doc["type"][len(PLATFORM) :])
    rec: dict[str, Any] = {
        "time": doc.get("time"),
        "type": doc["type"],
        "message": text,
        "level": "INFO",
        "lambda_event": event,
    }
    for k, v in doc["record"].items():
        if k == "metrics" and type(v) is dict:
            for mk, mv in v.items():
                name = _METRICS.get(mk) or snake(mk)
                if mk == "durationMs" and event in _PHASE_DURATION:
                    name = _PHASE_DURATION[event]
                rec[name] = mv
        elif k == "tracing" and type(v) is dict:
            rec.update(trace_fields(v))
        else:
            rec[_RECORD.get(k) or snake(k)] = v
    return rec


def trace_fields(tracing: dict[str, Any]) -> dict[str, Any]:
    """`{"spanId", "type": "X-Amzn-Trace-Id", "value": "Root=..;Parent=..;Sampled=1"}` ->
    trace_id, segment_id, sampled, as the text `XRAY TraceId:` line gives them."""
    out: dict[str, Any] = {}
    value = tracing.get("value")
    if type(value) is str:
        for part in value.split(";"):
            k, _, v = part.partition("=")
            if k == "Root":
                out["trace_id"] = v
            elif k == "Parent":
                out["segment_id"] = v
            elif k == "Sampled":
                out["sampled"] = v == "1"
    span = tracing.get("spanId")
    if type(span) is str:
        out["segment_id"] = span
    return out


def runtime_record(doc: dict[str, Any]) -> None:
    """A runtime's JSON line, in place: the request id under the text format's name
    (`request_id`), an uncaught error's `errorMessage` as the message."""
    if "request_id" not in doc:
        for k in REQUEST_ID_KEYS:
            v = doc.get(k)
            if type(v) is str:
                doc["request_id"] = doc.pop(k)
                break
    if "message" not in doc and type(doc.get("errorMessage")) is str:
        doc["message"] = doc.pop("errorMessage")
