"""Sluice's Lambda functions. Chalice wiring only: each handler adapts its trigger."""

import sys

from chalice import Chalice

from chalicelib import deploy_guard, handlers

# `chalice deploy` cannot turn on partial batch responses or on-failure destinations:
# it is refused for every stage but dev (chalicelib/deploy_guard.py, docs/deployment.md).
deploy_guard.check(sys.argv)

# configure_logs=False: Chalice would add a plain stdout handler to the `sluice` logger,
# which is Powertools' logger too, and every ledger line would be written twice.
app = Chalice(app_name="sluice", configure_logs=False)


@app.lambda_function(name="cloudwatch_logs")
def cloudwatch_logs(event, context):
    """Target of CloudWatch Logs subscription filters (base64+gzip payloads)."""
    return handlers.handle_cloudwatch_logs(event, context)


@app.on_kinesis_record(stream="sluice-fan-in", batch_size=100, name="kinesis_records")
def kinesis_records(event):
    """Kinesis consumer: JSON/text records, KPL aggregates, CloudWatch subscription data.

    Returns a partial batch response; `infra/` adds ReportBatchItemFailures to the
    event source mapping.
    """
    return handlers.handle_kinesis_records(event.to_dict(), event.context)


@app.schedule("rate(1 minute)", name="absence_check")
def absence_check(event):
    """Absence rules: alert when an expected tag has been silent longer than its window."""
    return handlers.handle_absence_check(event.to_dict(), event.context)


@app.on_sqs_message(queue="sluice-objects", batch_size=10, name="s3_objects")
def s3_objects(event):
    """S3 → SQS notifications (plain, SNS-wrapped, EventBridge-shaped) and continuations.

    Returns a partial batch response; `infra/` adds ReportBatchItemFailures.
    """
    return handlers.handle_s3_objects(event.to_dict(), event.context)


@app.on_cw_event(
    {"source": ["aws.s3"], "detail-type": ["Object Created"]}, name="s3_object_created"
)
def s3_object_created(event):
    """EventBridge `Object Created` events, for buckets with EventBridge notifications on."""
    return handlers.handle_s3_object_created(event.to_dict(), event.context)


@app.on_cw_event(
    {
        "source": ["aws.logs"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["logs.amazonaws.com"], "eventName": ["CreateLogGroup"]},
    },
    name="log_group_created",
)
def log_group_created(event):
    """CloudTrail CreateLogGroup via EventBridge: subscribe the group if saved patterns match."""
    return handlers.handle_log_group_created(event.to_dict(), event.context)
