#!/usr/bin/env python3
"""Regenerate the sample trigger payloads in `events/` (and their decoded form in `tests/data/`).

CloudWatch Logs delivers a subscription to Lambda as
`{"awslogs": {"data": base64(gzip(json))}}` (AWS docs, "Using CloudWatch Logs
subscription filters"). The files are built here from readable documents so
they can be reviewed and rebuilt byte for byte: gzip runs with mtime=0 and a
fixed level, and JSON keeps a fixed layout.

    scripts/make_events.py           write the files
    scripts/make_events.py --check   exit 1 if any file differs from what would be written
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from sluice_cli import payloads

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
DECODED = ROOT / "tests" / "data" / "cloudwatch"

ACCOUNT = "123456789012"
LOG_GROUP = "/aws/lambda/checkout-api"
LOG_STREAM = "2026/11/26/[$LATEST]6f8e2c1d9b0a4e7f8a3b5c6d7e8f9a0b"
FILTERS = ["sluice-checkout-api"]
REQUEST_ID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"
# 2026-11-26T10:07:01.000Z: the CloudWatch (ingestion-side) timestamp of the first line.
T0 = 1795687621000
# Real event ids are 56-digit decimal strings, consecutive within a stream.
ID0 = 37901234567890123456789012345678901234567890123456789000
# CloudWatch Logs' largest event: 256 KB (AWS "CloudWatch Logs quotas").
MAX_EVENT_BYTES = 256 * 1024


def event_id(n: int) -> str:
    s = str(ID0 + n)
    assert len(s) == 56, s
    return s


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def lambda_log_document() -> dict[str, Any]:
    """One invocation of a Lambda function as its log group records it."""
    messages = [
        "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: "
        "arn:aws:lambda:us-east-1::runtime:7b620fc2e66107a1046b140b9d320295811af3ad5d4c6a011fad1fa65127e9e6\n",
        f"START RequestId: {REQUEST_ID} Version: $LATEST\n",
        _dumps(
            {
                "event": "order received",
                "severity": "info",
                "order_id": "o-1842",
                "amount_cents": 4599,
                "time": "2026-11-26T10:07:01.201Z",
            }
        )
        + "\n",
        _dumps(
            {
                "level": 30,
                "time": 1795687621315,
                "pid": 8,
                "hostname": "169.254.10.1",
                "msg": "payment authorised",
                "user": "alice",
                "order_id": "o-1842",
            }
        )
        + "\n",
        _dumps(
            {
                "severity": "warning",
                "message": "inventory low",
                "sku": "SKU-77",
                "http": {"status": 200, "path": "/checkout"},
                "timestamp": 1795687621.399,
            }
        )
        + "\n",
        f"[ERROR]\t2026-11-26T10:07:01.537Z\t{REQUEST_ID}\tpayment gateway timeout after 3000 ms\n",
        "Retrying card authorisation for order o-1842 (attempt 2 of 3)\n",
        f"END RequestId: {REQUEST_ID}\n",
        f"REPORT RequestId: {REQUEST_ID}\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 118 MB\tInit Duration: 412.83 ms\t\n",
    ]
    # Lambda writes INIT_START before START. CloudWatch stamps a line when the runtime
    # hands it over, a few ms after the time an application writes into its record.
    offsets = [-450, 0, 204, 318, 402, 540, 612, 1234, 1235]
    events = [
        {"id": event_id(i), "timestamp": T0 + off, "message": msg}
        for i, (msg, off) in enumerate(zip(messages, offsets, strict=True))
    ]
    return payloads.log_document(LOG_GROUP, LOG_STREAM, events, filters=FILTERS, owner=ACCOUNT)


def control_document() -> dict[str, Any]:
    """What CloudWatch Logs sends to check that a destination is reachable."""
    event = {
        "id": "",
        "timestamp": T0,
        "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
    }
    return payloads.log_document(
        "", "", [event], filters=(), owner="CloudwatchLogs", message_type="CONTROL_MESSAGE"
    )


def large_message() -> str:
    """A 256 KB plain-text message (a dumped stack), exactly MAX_EVENT_BYTES of ASCII."""
    lines = []
    n = 0
    size = 0
    while size < MAX_EVENT_BYTES:
        line = (
            f'  File "/var/task/checkout/cart.py", line {100 + n % 400}, in render_line_{n % 50}\n'
        )
        lines.append(line)
        size += len(line)
        n += 1
    text = "Traceback (most recent call last):\n" + "".join(lines)
    tail = "\nRecursionError: maximum recursion depth exceeded"
    return text[: MAX_EVENT_BYTES - len(tail)] + tail


def large_document() -> dict[str, Any]:
    doc = lambda_log_document()
    doc["logEvents"] = [{"id": event_id(100), "timestamp": T0 + 2000, "message": large_message()}]
    return doc


def subscription(body: bytes) -> dict[str, Any]:
    return payloads.awslogs(payloads.gzip_bytes(body, level=9))


def build() -> dict[Path, str]:
    """Every file this script owns -> its exact text."""
    out: dict[Path, Any] = {}

    good = {
        "cloudwatch_logs": lambda_log_document(),
        "cloudwatch_logs_control": control_document(),
        "cloudwatch_logs_256kb": large_document(),
    }
    for name, doc in good.items():
        out[EVENTS / f"{name}.json"] = subscription(_dumps(doc).encode())
        if name != "cloudwatch_logs_256kb":  # the big one is checked against large_message()
            out[DECODED / f"{name}.decoded.json"] = doc

    valid_gzip = base64.b64decode(out[EVENTS / "cloudwatch_logs.json"]["awslogs"]["data"])
    not_a_list = lambda_log_document()
    not_a_list["logEvents"] = {
        "id": event_id(0),
        "timestamp": T0,
        "message": "one event, not a list",
    }
    latin1 = _dumps(lambda_log_document()).replace("o-1842", "commande réglée").encode("latin-1")
    unknown_type = lambda_log_document()
    unknown_type["messageType"] = "HEALTH_MESSAGE"

    malformed: dict[str, Any] = {
        # '!' and '*' are outside the base64 alphabet.
        "bad_base64": {"awslogs": {"data": "H4sIAAAAAAAA/!!not*base64!!"}},
        "truncated_gzip": payloads.awslogs(valid_gzip[: len(valid_gzip) // 2]),
        "not_gzip": payloads.awslogs(_dumps(lambda_log_document()).encode()),
        "invalid_json": subscription(_dumps(lambda_log_document()).encode()[:-40]),
        "non_utf8": subscription(latin1),
        "json_not_object": subscription(b'["DATA_MESSAGE", "123456789012"]'),
        "unknown_message_type": subscription(_dumps(unknown_type).encode()),
        "log_events_not_list": subscription(_dumps(not_a_list).encode()),
        "empty_object": {},
        "s3_notification": s3_notification(),
    }
    for name, ev in malformed.items():
        out[EVENTS / "malformed" / f"{name}.json"] = ev
    return {path: json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for path, doc in out.items()}


def s3_notification() -> dict[str, Any]:
    """An S3 ObjectCreated notification: a real event, for the wrong function."""
    record = payloads.s3_record(
        "app-logs-example",
        "app/2026/11/26/10/web-1.log.gz",
        1024,
        "d41d8cd98f00b204e9800998ecf8427e",
        "0055AED6DCD90281E5",
        event_time="2026-11-26T10:07:01.000Z",
        principal="AWS:AIDAEXAMPLE",
        id_2="FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvAN",
    )
    return payloads.s3_notification(record)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report stale files, write nothing")
    args = ap.parse_args(argv)
    stale = []
    for path, text in sorted(build().items()):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "stale" if args.check else "wrote"
    for p in stale:
        print(f"{verb}: {p}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
