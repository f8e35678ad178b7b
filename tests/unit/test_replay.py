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


# ---------------------------------------------------------------- Lambda's own records
@pytest.mark.parametrize(
    ("name", "kind", "function", "qualifier"),
    [
        pytest.param(
            "onfailure/cloudwatch_logs_async",
            "async",
            "sluice-prod-cloudwatch_logs",
            "$LATEST",
            id="async $LATEST",
        ),
        pytest.param(
            "onfailure/s3_object_created_async",
            "async",
            "sluice-prod-s3_object_created",
            None,
            id="async unqualified",
        ),
        pytest.param(
            "onfailure/malformed/onfailure_unknown_function",
            "async",
            "sluice-prod-log_shipper",
            "live",
            id="async alias",
        ),
        pytest.param(
            "onfailure/kinesis_batch",
            "stream",
            "sluice-prod-kinesis_records",
            None,
            id="kinesis batch",
        ),
        pytest.param("onfailure/s3_objects_redriven", None, None, None, id="redriven message"),
        pytest.param("onfailure/malformed/dead_letter_foreign", None, None, None, id="foreign"),
    ],
)
def test_on_failure_records_are_recognised(
    load_event: Any, name: str, kind: str | None, function: str | None, qualifier: str | None
) -> None:
    """Each documented on-failure record is read as its kind, with the function's name
    apart from its qualifier; anything else is not taken for one."""
    from sluice_cli import onfailure

    record = onfailure.parse(load_event(name))
    if kind is None:
        assert record is None
        return
    assert isinstance(record, onfailure.AsyncFailure if kind == "async" else onfailure.StreamBatch)
    assert record.function == function
    if isinstance(record, onfailure.AsyncFailure):
        assert record.qualifier == qualifier and record.payload


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param(
            "onfailure/malformed/onfailure_without_payload", "no requestPayload", id="no payload"
        ),
        pytest.param(
            "onfailure/malformed/onfailure_kinesis_truncated",
            "without endSequenceNumber, streamArn",
            id="truncated range",
        ),
    ],
)
def test_incomplete_on_failure_records_say_what_is_missing(
    load_event: Any, name: str, reason: str
) -> None:
    """A record cut short is refused with what it lacks (and replay keeps the letter)."""
    from sluice_cli import onfailure

    with pytest.raises(onfailure.RecordError, match=reason):
        onfailure.parse(load_event(name))


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:lambda:us-east-1:1:function:sluice-prod-cloudwatch_logs:$LATEST",
            ("sluice-prod-cloudwatch_logs", "$LATEST"),
        ),
        ("arn:aws:lambda:us-east-1:1:function:f:live", ("f", "live")),
        ("arn:aws:lambda:us-east-1:1:function:f:12", ("f", "12")),
        ("arn:aws:lambda:us-east-1:1:function:f", ("f", None)),
        ("arn:aws-cn:lambda:cn-north-1:1:function:f:$LATEST", ("f", "$LATEST")),
        ("f:live", ("f", "live")),
        ("f", ("f", None)),
    ],
)
def test_function_names_come_without_their_qualifier(arn: str, expected: Any) -> None:
    """A function ARN or name, qualified by $LATEST, an alias or a version or not at all,
    gives the function's name and the qualifier apart."""
    from sluice_cli.onfailure import function_name

    assert function_name(arn) == expected


def _put_eventbridge_object(aws: Any, event: dict[str, Any]) -> int:
    """Put the object an EventBridge `Object Created` event names; returns its line count."""
    detail = event["detail"]
    aws.s3.create_bucket(Bucket=detail["bucket"]["name"])
    body = b"order,amount\n" + b"".join(b"o-%d,%d\n" % (i, i) for i in range(3))  # a CSV
    put = aws.s3.put_object(Bucket=detail["bucket"]["name"], Key=detail["object"]["key"], Body=body)
    detail["object"].update(etag=put["ETag"].strip('"'), size=len(body))
    return 3


def test_s3_object_created_on_failure_record_reads_the_object_once(
    aws: Any, runtime: Any, archive: Any, load_event: Any
) -> None:
    """The EventBridge function's on-failure record (unqualified ARN) sends its event back:
    the object is read once, and a second replay of the record finds it done."""
    letter = load_event("onfailure/s3_object_created_async")
    lines = _put_eventbridge_object(aws, letter["requestPayload"])
    first = replay_dead_letter(runtime, letter, "m-1", Invocation("r1"))
    again = replay_dead_letter(runtime, letter, "m-1", Invocation("r2"))
    assert first.done and again.done, (first.detail, again.detail)
    assert len(archive.lines()) == lines


def test_redriven_objects_message_is_read_once(
    aws: Any, runtime: Any, archive: Any, load_event: Any
) -> None:
    """An objects-queue message moved by SQS redrive (events/onfailure/s3_objects_redriven)
    goes back through s3_objects: each object it names is archived once."""
    from urllib.parse import unquote_plus

    body = load_event("onfailure/s3_objects_redriven")
    total = 0
    for rec in body["Records"]:
        s3 = rec["s3"]
        aws.s3.create_bucket(Bucket=s3["bucket"]["name"])
        data = b'{"message": "a"}\n{"message": "b"}\n'
        key = unquote_plus(s3["object"]["key"])
        if key.endswith(".gz"):
            import gzip

            data = gzip.compress(data)
        put = aws.s3.put_object(Bucket=s3["bucket"]["name"], Key=key, Body=data)
        s3["object"].update(eTag=put["ETag"].strip('"'), size=len(data))
        total += 2
    for n in range(2):
        outcome = replay_dead_letter(runtime, body, "m-9", Invocation(f"r{n}"))
        assert outcome.done, outcome.detail
    assert len(archive.lines()) == total


def test_list_shows_each_letters_time_left_before_expiry(aws: Any, failed_alert: Any) -> None:
    """`sluice dlq list` shows how long each letter has before the queue's retention
    deletes it, and when the oldest expires."""
    aws.sqs.set_queue_attributes(
        QueueUrl=aws.dlq_url, Attributes={"MessageRetentionPeriod": "1209600"}
    )
    result = CliRunner().invoke(dlq, ["list"])
    assert result.exit_code == 0, result.output
    assert "expires in" in result.output
    assert "the oldest expires in 13d (retention 14d)" in result.output
