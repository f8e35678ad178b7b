"""Dead-letter list and replay, and replay from the archive."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.invocation import Invocation
from sluice_cli.dlq import dlq
from sluice_cli.redeliver import archived_events, replay_archive, replay_dead_letter

PAGER = {"rules": [{"id": "pager", "actions": [{"sns": {"topic": "late-topic"}}]}]}


def queue_depth(aws: Any) -> int:
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=aws.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def read_topic(aws: Any, topic_arn: str) -> Any:
    """Subscribe a queue to the topic; returns a function reading what arrived."""
    url = aws.sqs.create_queue(QueueName="topic-reader")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict[str, Any]]:
        msgs = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in msgs]

    return read


@pytest.fixture
def failed_alert(aws: Any, apply_rules: Any, invoke: Any, load_event: Any) -> dict[str, Any]:
    """An invocation whose SNS topic does not exist yet: its alert is dead-lettered."""
    apply_rules(PAGER)
    result = invoke(load_event("cloudwatch_logs"))
    assert (result["actions_failed"], result["lost"]) == (1, 0)
    return result


def test_list_shows_dead_letters_without_consuming_them(aws: Any, failed_alert: Any) -> None:
    """`sluice dlq list` names stage, rule/action and count; the messages stay in the queue."""
    result = CliRunner().invoke(dlq, ["list"])
    assert result.exit_code == 0, result.output
    assert "action" in result.output and "pager/sns" in result.output
    assert f"{failed_alert['archived']} event(s) in 1 message(s)" in result.output
    assert queue_depth(aws) == 1


def test_replay_after_the_fix_sends_the_alert_and_deletes_the_letter(
    aws: Any, failed_alert: Any
) -> None:
    """Once the topic exists, replay publishes the alert once and empties the queue."""
    arn = aws.sns.create_topic(Name="late-topic")["TopicArn"]
    read = read_topic(aws, arn)
    result = CliRunner().invoke(dlq, ["replay"])
    assert result.exit_code == 0, result.output
    assert "replayed 1, kept 0" in result.output
    assert queue_depth(aws) == 0
    (note,) = read()
    assert "pager" in note["Subject"]
    again = CliRunner().invoke(dlq, ["replay"])
    assert "replayed 0, kept 0" in again.output
    assert read() == []


def test_replay_that_fails_again_keeps_the_letter(aws: Any, failed_alert: Any) -> None:
    """Without the fix, replay reports the failure, exits non-zero and keeps the message."""
    result = CliRunner().invoke(dlq, ["replay"])
    assert result.exit_code == 1
    assert "replayed 0, kept 1" in result.output
    assert queue_depth(aws) == 1


def test_filters_select_what_is_replayed(aws: Any, failed_alert: Any) -> None:
    """--action and --since leave other letters alone (not replayed, not deleted)."""
    aws.sns.create_topic(Name="late-topic")
    result = CliRunner().invoke(dlq, ["replay", "--action", "slack"])
    assert "replayed 0, kept 0, not selected 1" in result.output
    result = CliRunner().invoke(dlq, ["replay", "--since", "2999-01-01T00:00:00Z"])
    assert "not selected 1" in result.output
    assert queue_depth(aws) == 1


def test_undecodable_payload_stays_in_the_queue(
    aws: Any, runtime: Any, invoke: Any, load_event: Any, dlq: Any
) -> None:
    """A payload that still cannot be decoded is kept, with the decode error as the reason."""
    invoke(load_event("malformed/truncated_gzip"))
    (body,) = dlq.messages()
    outcome = replay_dead_letter(runtime, body, "m-1", Invocation("replay"))
    assert not outcome.done
    assert "still undecodable" in outcome.detail


def test_archive_failure_replays_into_the_archive(
    aws: Any, runtime: Any, archive: Any, load_event: Any, invoke: Any
) -> None:
    """A dead letter of stage archive is archived on replay, under a key stable per message."""
    invoke(load_event("cloudwatch_logs"))
    lines = archive.lines()
    for key in aws.keys("archive/"):
        aws.s3.delete_object(Bucket=aws.bucket, Key=key)
    body = {"stage": "archive", "events": lines, "count": len(lines), "function": "cloudwatch_logs"}
    first = replay_dead_letter(runtime, body, "m-7", Invocation("r1"))
    again = replay_dead_letter(runtime, body, "m-7", Invocation("r2"))
    assert first.done and again.done
    assert sorted(x["id"] for x in archive.lines()) == sorted(x["id"] for x in lines)


def test_archive_replay_realerts_without_archiving_again(
    aws: Any, runtime: Any, archive: Any, apply_rules: Any, load_event: Any, invoke: Any
) -> None:
    """Events archived before an alert rule existed alert when replayed; nothing is re-archived."""
    invoke(load_event("cloudwatch_logs"))
    keys_before = aws.keys("archive/")
    topic = aws.sns.create_topic(Name="late-topic")["TopicArn"]
    read = read_topic(aws, topic)
    apply_rules(PAGER)
    lines = archive.lines()
    times = sorted(json.dumps(x["time"]) for x in lines)
    from chalicelib.normalise import to_epoch_ms

    since = to_epoch_ms(json.loads(times[0]))
    until = to_epoch_ms(json.loads(times[-1])) + 1
    assert since is not None and until is not None
    events = list(archived_events(runtime, "aws.lambda.*", since, until))
    assert len(events) == len(lines)
    ledger = replay_archive(runtime, iter(events), Invocation("replay", account="123456789012"))
    assert (ledger.received, ledger.alerts) == (len(lines), 1)
    assert len(read()) == 1
    assert aws.keys("archive/") == keys_before
    assert list(archived_events(runtime, "other.**", since, until)) == []


def test_cli_replays_the_archive_through_a_chosen_rules_version(
    aws: Any, runtime: Any, archive: Any, load_event: Any, invoke: Any
) -> None:
    """`sluice replay --from-archive --rules-version V` alerts under version V's rules and
    writes no archive object."""
    from chalicelib.rules.schema import load_document
    from chalicelib.rules.store import write_document
    from sluice_cli.replay import replay

    invoke(load_event("cloudwatch_logs"))
    keys_before = aws.keys("archive/")
    topic = aws.sns.create_topic(Name="late-topic")["TopicArn"]
    read = read_topic(aws, topic)
    write_document(aws.dynamodb, aws.rules_table, load_document(PAGER))  # version 1: pages
    write_document(aws.dynamodb, aws.rules_table, load_document({"rules": []}))  # version 2
    args = ["--from-archive", "--tag", "aws.lambda.**", "--since", "2000-01-01T00:00:00Z"]
    quiet = CliRunner().invoke(replay, args)
    assert quiet.exit_code == 0, quiet.output
    assert "alerts=0" in quiet.output
    loud = CliRunner().invoke(replay, [*args, "--rules-version", "1"])
    assert loud.exit_code == 0, loud.output
    assert f"replayed {len(archive.lines())} archived event(s)" in loud.output
    assert "alerts=1" in loud.output
    assert len(read()) == 1
    assert aws.keys("archive/") == keys_before


def test_cli_replay_needs_a_file_or_the_archive() -> None:
    """Without FILE or --from-archive, replay says what it needs."""
    from sluice_cli.replay import replay

    result = CliRunner().invoke(replay, [])
    assert result.exit_code == 2
    assert "--from-archive" in result.output
