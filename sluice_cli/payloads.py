"""Trigger payloads as AWS hands them to Sluice's functions, built in one place.

The local stack's emulated sources, the scripts that write `events/`, the
benchmark and the tests' payload builders all build their events here, so a
shape is corrected once. Shapes follow the AWS documentation:

- CloudWatch Logs subscription: `{"awslogs": {"data": base64(gzip(json))}}`
  ("Using CloudWatch Logs subscription filters");
- Lambda's Kinesis event record, and KPL aggregated records (magic, protobuf, MD5);
- S3 event notification records (version 2.1; keys URL-encoded as S3 writes them:
  a space is `+`, `/` stays), Lambda's SQS event record, the SNS envelope of a
  topic subscription without raw delivery, and EventBridge's `Object Created`.

Defaults are the sample values of `events/` (account 123456789012, us-east-1,
the `sluice-fan-in` stream, the `sluice-objects` queue); callers pass their own.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote_plus

from chalicelib.sources.kpl import aggregate

ACCOUNT = "123456789012"  # moto's default account, and the samples'
REGION = "us-east-1"
SHARD = "shardId-000000000000"
FAN_IN_STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/sluice-fan-in"
KINESIS_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sluice-dev-kinesis_records"
OBJECTS_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:sluice-objects"


# ---------------------------------------------------------------- CloudWatch Logs
def log_document(
    group: str,
    stream: str,
    events: Any,
    *,
    filters: Sequence[str] = ("sluice",),
    owner: str = ACCOUNT,
    message_type: str = "DATA_MESSAGE",
) -> dict[str, Any]:
    """The decoded subscription document (`events`: its `logEvents`, as given)."""
    return {
        "messageType": message_type,
        "owner": owner,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": list(filters),
        "logEvents": events,
    }


def gzip_bytes(body: bytes, level: int = 9) -> bytes:
    """gzip with mtime 0: the same input always gives the same bytes."""
    return gzip.compress(body, compresslevel=level, mtime=0)


def awslogs(data: bytes) -> dict[str, Any]:
    """The `cloudwatch_logs` trigger event carrying `data` (normally gzip of a document)."""
    return {"awslogs": {"data": base64.b64encode(data).decode()}}


def subscription_event(
    group: str, stream: str, events: list[dict[str, Any]], filter_name: str = "sluice"
) -> dict[str, Any]:
    """`{"awslogs": {"data": base64(gzip(json))}}`, as CloudWatch Logs sends it to Lambda."""
    doc = log_document(group, stream, events, filters=(filter_name,))
    return awslogs(gzip_bytes(json.dumps(doc, separators=(",", ":")).encode()))


# ---------------------------------------------------------------- Kinesis
def sample_sequence(n: int) -> str:
    """Sequence number `n` of the samples' shard: 56 digits, ordered by `n`."""
    return f"4961564478215395433017920645126906374968{n:022d}"


def kinesis_record(
    data: bytes,
    *,
    sequence: str,
    partition_key: str,
    arrival: float,
    stream_arn: str = FAN_IN_STREAM_ARN,
    shard: str = SHARD,
    region: str = REGION,
    role_arn: str = KINESIS_ROLE_ARN,
) -> dict[str, Any]:
    """One record of Lambda's Kinesis event (events/kinesis_records.json)."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kpl_aggregate(records: Iterable[tuple[str, bytes]], *, bad_md5: bool = False) -> bytes:
    """A KPL aggregated record of (partition key, data) pairs; `bad_md5` spoils its digest."""
    out = aggregate(list(records))
    if bad_md5:
        out = out[:-16] + hashlib.md5(b"something else", usedforsecurity=False).digest()
    return out


# ---------------------------------------------------------------- S3, SQS, SNS, EventBridge
def s3_record(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    sequencer: str,
    *,
    event_time: str = "2026-11-26T10:07:01.837Z",
    principal: str = "AWS:AROAEXAMPLEID:app-log-shipper",
    source_ip: str = "203.0.113.10",
    request_id: str = "C3D13FE58DE4C810",
    id_2: str = "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
    configuration_id: str = "sluice-app-logs",
    owner: str = "A3NL1KOZZKExample",
    region: str = REGION,
) -> dict[str, Any]:
    """One record of an S3 event notification for object `key` (encoded here, as S3 does)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": principal},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": id_2},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": owner},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": etag.strip('"'),
                "sequencer": sequencer,
            },
        },
    }


def s3_notification(*records: dict[str, Any]) -> dict[str, Any]:
    """The notification message S3 sends to a queue or topic."""
    return {"Records": list(records)}


def sqs_record(
    body: str,
    *,
    message_id: str,
    receipt_handle: str,
    attributes: dict[str, str],
    message_attributes: dict[str, Any] | None = None,
    md5: str | None = None,
    queue_arn: str = OBJECTS_QUEUE_ARN,
    region: str = REGION,
) -> dict[str, Any]:
    """One record of Lambda's SQS event (md5OfBody: the body's real MD5 unless given)."""
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes or {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
        if md5 is None
        else md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sns_notification(
    message: str,
    *,
    topic_arn: str,
    message_id: str,
    timestamp: str,
    subscription_id: str,
    subject: str = "Amazon S3 Notification",
    signature: str = "EXAMPLE",
    region: str = REGION,
) -> dict[str, Any]:
    """The envelope SNS delivers to an SQS subscription without raw message delivery."""
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Subject": subject,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": signature,
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/"
        "SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={topic_arn}:{subscription_id}",
    }


def eventbridge_object_created(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    sequencer: str,
    *,
    event_id: str,
    time: str,
    request_id: str,
    source_ip: str = "203.0.113.10",
    account: str = ACCOUNT,
    region: str = REGION,
) -> dict[str, Any]:
    """EventBridge's `Object Created` event (keys are not URL-encoded here)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": time,
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": sequencer},
            "request-id": request_id,
            "requester": account,
            "source-ip-address": source_ip,
            "reason": "PutObject",
        },
    }
