"""One module per trigger's ingest workflow, between the handlers and the pipeline.

`s3_objects`: S3 objects with claims, continuations and final errors (SQS batches
and EventBridge events). `kinesis`: Kinesis batches with stable archive keys and
failure bookkeeping. `batch`: the partial batch response both report with.
"""
