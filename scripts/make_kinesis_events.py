"""Regenerate events/kinesis_*.json: Lambda Kinesis events as AWS delivers them.

Run: .venv/bin/python scripts/make_kinesis_events.py
"""

from __future__ import annotations

import json
from pathlib import Path

from sluice_cli import payloads

ROOT = Path(__file__).resolve().parent.parent / "events"
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-fan-in"
T0 = 1795687200.123  # 2026-11-26T10:00:00.123Z


def record(data: bytes, seq: int, pk: str = "pk-1") -> dict:
    return payloads.kinesis_record(
        data,
        sequence=payloads.sample_sequence(seq),
        partition_key=pk,
        arrival=T0 + seq,
        stream_arn=ARN,
    )


def cw_data() -> bytes:
    events = [
        {
            "id": "37891234567890123456789012345678901234567890123456789012",
            "timestamp": 1795687200500,
            "message": '{"level":"error","msg":"card processor timeout","order":"o-1842"}',
        },
        {
            "id": "37891234567890123456789012345678901234567890123456789013",
            "timestamp": 1795687200900,
            "message": "retrying order o-1842 in 2s",
        },
    ]
    doc = payloads.log_document(
        "/ecs/payments-worker", "ecs/payments/5f0b8b9c4f2d4b6e9a1e2d3c4b5a6978", events
    )
    return payloads.gzip_bytes(json.dumps(doc).encode())


def main() -> None:
    good = {
        "Records": [
            record(
                b'{"tag":"app.checkout","level":"info","message":"order placed","order":"o-1841"}',
                1,
            ),
            record(b"GET /healthz 200 1ms\nGET /cart 200 12ms\n", 2, "pk-2"),
            record(cw_data(), 3, "/ecs/payments-worker"),
            record(
                payloads.kpl_aggregate(
                    [
                        ("user-17", b'{"event":"login","user":"u17","severity":"notice"}'),
                        ("user-18", b'{"event":"logout","user":"u18"}'),
                    ]
                ),
                4,
                "agg",
            ),
        ]
    }
    poison = {
        "Records": [
            record(b'{"message":"fine"}', 10),
            record(b"\x1f\x8b\x08\x00truncated-gzip", 11),
            record(b"\xff\xfe not utf-8 \x80", 12),
            record(b"after the poison", 13),
        ]
    }
    for name, doc in (
        ("kinesis_records.json", good),
        ("malformed/kinesis_poison_records.json", poison),
    ):
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print("wrote", path.relative_to(ROOT.parent))


if __name__ == "__main__":
    main()
