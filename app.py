"""Sluice's Lambda functions. Chalice wiring only: each handler adapts its trigger."""

from chalice import Chalice

from chalicelib import handlers

app = Chalice(app_name="sluice")


@app.lambda_function(name="cloudwatch_logs")
def cloudwatch_logs(event, context):
    """Target of CloudWatch Logs subscription filters (base64+gzip payloads)."""
    return handlers.handle_cloudwatch_logs(event, context)
