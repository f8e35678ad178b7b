"""Sluice's Lambda functions. Chalice wiring only: each handler adapts its trigger."""

from chalice import Chalice

from chalicelib import handlers

app = Chalice(app_name="sluice")


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
