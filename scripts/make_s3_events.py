"""Regenerate events/s3_*.json: S3 notifications as the `s3_objects` and
`s3_object_created` functions receive them.

Shapes follow the AWS documentation: the S3 event message structure (version
2.1; keys URL-encoded, "red flower.jpg" -> "red+flower.jpg"), the `s3:TestEvent`
S3 sends when a notification configuration is saved, the SNS envelope of a
topic subscription without raw message delivery, EventBridge's `Object Created`
detail (keys not encoded), and Lambda's SQS event record.

Run: .venv/bin/python scripts/make_s3_events.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sluice_cli import payloads

ROOT = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:sluice-objects"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:app-logs-objects"
BUCKET = "app-logs-example"
SENT_MS = 1795687622000  # 2026-11-26T10:07:02Z
SEQ = "0055AED6DCD90281"  # S3 sequencer prefix


def s3_record(key: str, size: int, etag: str, sequencer: str) -> dict[str, Any]:
    """One record of an S3 event notification for `key` (URL-encoded as S3 sends it)."""
    return payloads.s3_record(BUCKET, key, size, etag, sequencer)


def sqs_record(n: int, body: str, sender: str = "AIDAJHIPRHEMV73VRJEBU") -> dict[str, Any]:
    """A Lambda SQS event record carrying `body` (md5OfBody is the body's real MD5)."""
    return payloads.sqs_record(
        body,
        message_id=f"2e1424d4-f796-459a-8184-9c92662be6d{n}",
        receipt_handle=f"AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq/Lkd2K0u3mKxp2pA3tCfGhoy0{n}Ex"
        "ampleRcptHandle+zFJxJg5FQ3xN2FvDbIHlVk7Q==",
        attributes={
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(SENT_MS + n),
            "SenderId": sender,
            "ApproximateFirstReceiveTimestamp": str(SENT_MS + n + 12),
        },
        queue_arn=QUEUE_ARN,
        region=REGION,
    )


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def build() -> dict[str, Any]:
    """File name (under events/) -> document."""
    plain = s3_record(
        "app/2026/11/26/10/web-1.jsonl.gz", 412, "6f3b1c0e9a1d4e2f8a7b5c4d3e2f1a0b", SEQ + "E5"
    )
    # S3 writes this key into a notification as "app/2026/11/26/10/a+b%3Dc.log".
    encoded = s3_record(
        "app/2026/11/26/10/a b=c.log", 288, "9b2cf535f27731c974343645a3985328", SEQ + "E6"
    )
    alb_key = (
        "alb/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/26/"
        "123456789012_elasticloadbalancing_us-east-1_app.my-loadbalancer.50dc6c495c0c9188_"
        "20261126T1005Z_192.0.2.1_2et2e1mx.log.gz"
    )
    sns = payloads.sns_notification(
        dumps(
            payloads.s3_notification(
                s3_record(alb_key, 1734, "1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a", SEQ + "E7")
            )
        ),
        topic_arn=TOPIC_ARN,
        message_id="22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        timestamp="2026-11-26T10:07:02.042Z",
        subscription_id="c9135db0-26c4-47ec-8998-413945fb5a96",
        signature=(
            "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiT"
            "DN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q="
        ),
        region=REGION,
    )
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-26T10:00:00.093Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    eventbridge = payloads.eventbridge_object_created(
        BUCKET,
        # EventBridge keys are not URL-encoded: this `+` is part of the key.
        "exports/2026-11-26/orders+refunds.csv",
        218,
        "b1946ac92492d2347c6235b4d2611184",
        "00617F08299329D189",
        event_id="17793124-05d4-b198-2fde-7ededc63b103",
        time="2026-11-26T10:07:01Z",
        request_id="N4N7GDK58NMKJ12R",
        account=ACCOUNT,
        region=REGION,
    )
    return {
        "s3_objects_sqs.json": {
            "Records": [
                sqs_record(1, dumps(payloads.s3_notification(plain))),
                sqs_record(2, dumps(payloads.s3_notification(encoded))),
            ]
        },
        "s3_objects_sns_wrapped.json": {
            "Records": [sqs_record(3, dumps(sns), sender="AIDAIT2UOQQY3AUEKVGXU")]
        },
        "s3_objects_test_event.json": {"Records": [sqs_record(4, dumps(test_event))]},
        "s3_object_created_eventbridge.json": eventbridge,
        "malformed/s3_objects_not_json.json": {
            # Sent by hand from the console to the objects queue.
            "Records": [sqs_record(5, "reprocess app/2026/11/26/10/web-1.jsonl.gz please")]
        },
    }


def main() -> None:
    for name, doc in build().items():
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print("wrote", path.relative_to(ROOT.parent))


if __name__ == "__main__":
    main()
