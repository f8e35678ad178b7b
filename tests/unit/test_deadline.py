"""Near the deadline, handlers hand work back instead of being killed mid-way."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.handlers import handle_cloudwatch_logs, handle_kinesis_records


def test_kinesis_batch_near_the_deadline_is_handed_back_whole(
    runtime: Any, lambda_context: Any, load_event: Any, archive: Any
) -> None:
    """With less time left than the margin, every record is handed back; nothing is written."""
    event = load_event("kinesis_records")
    lambda_context.remaining_ms = 1_000  # below SLUICE_DEADLINE_MARGIN_MS (20 s)
    result = handle_kinesis_records(event, lambda_context, runtime)
    sequences = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences]}
    assert archive.lines() == []


def test_alerts_near_the_deadline_go_to_the_dead_letter_queue(
    runtime: Any, lambda_context: Any, load_event: Any, archive: Any, dlq: Any, apply_rules: Any
) -> None:
    """Archived first; an alert that no longer has time is dead-lettered with the reason."""
    apply_rules({"rules": [{"id": "all", "actions": [{"sns": {"topic": "sluice-alerts"}}]}]})
    lambda_context.remaining_ms = 5_000  # enough to archive, below half the 20 s margin
    result = handle_cloudwatch_logs(load_event("cloudwatch_logs"), lambda_context, runtime)
    assert result["lost"] == 0
    assert result["archived"] == len(archive.lines()) > 0
    assert (result["alerts"], result["actions_failed"]) == (0, 1)
    (msg,) = dlq.messages()
    assert (msg["stage"], msg["action"], msg["rule"]) == ("action", "sns", "all")
    assert "deadline" in msg["reason"]
    assert msg["count"] == result["archived"]
    json.dumps(msg)
