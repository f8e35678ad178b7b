"""The AWS resources Sluice's functions need, created idempotently.

`bootstrap` works against whatever endpoint boto3 is configured for
(`AWS_ENDPOINT_URL`: the local stack's moto server, or an account), and returns
the environment the functions read (`chalicelib.settings.Settings.from_env`).
Running it twice changes nothing; every step tolerates "already exists".
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice_cli import tables

# Default names for the local stack. On a real account the bucket name must be
# globally unique, hence `Names.for_prefix` (e.g. "sluice-dev-123456789012").
DEFAULT_PREFIX = "sluice-local"
ALERT_TOPIC = "sluice-alerts"
# app.py wires s3_objects to this queue by name (@app.on_sqs_message), as infra/ does.
OBJECTS_QUEUE = "sluice-objects"
# As infra/resources.yaml: 14 days (the SQS maximum), and 5 receives before a message
# that keeps failing moves to the objects dead-letter queue.
RETENTION_S = 14 * 24 * 3600
OBJECTS_MAX_RECEIVES = 5
# AWS guidance for Lambda event sources: at least 6x the function timeout (s3_objects:
# 300 s in .chalice/config.json). The local stack's poller shortens it per failed message.
OBJECTS_VISIBILITY_S = 1800


@dataclass(frozen=True, slots=True)
class Names:
    rules_table: str
    state_table: str
    archive_bucket: str
    dlq: str
    alert_topic: str
    slack_secret: str
    objects_queue: str = OBJECTS_QUEUE
    objects_dlq: str = f"{DEFAULT_PREFIX}-objects-dlq"

    @classmethod
    def for_prefix(cls, prefix: str = DEFAULT_PREFIX) -> Names:
        return cls(
            rules_table=f"{prefix}-rules",
            state_table=f"{prefix}-state",
            archive_bucket=f"{prefix}-archive",
            dlq=f"{prefix}-dlq",
            alert_topic=ALERT_TOPIC,
            slack_secret=f"{prefix}/slack-bot-token",
            objects_queue=OBJECTS_QUEUE,
            objects_dlq=f"{prefix}-objects-dlq",
        )


@dataclass(slots=True)
class Resources:
    """What `bootstrap` made (or found): names, URLs and the functions' environment."""

    names: Names
    dlq_url: str
    topic_arn: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    slack_api_url: str | None = None
    objects_queue_url: str = ""
    objects_dlq_url: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {
            "SLUICE_RULES_TABLE": self.names.rules_table,
            "SLUICE_STATE_TABLE": self.names.state_table,
            "SLUICE_ARCHIVE_BUCKET": self.names.archive_bucket,
            "SLUICE_DLQ_URL": self.dlq_url,
            "SLUICE_SLACK_SECRET": self.names.slack_secret,
        }
        if self.objects_queue_url:  # where s3_objects queues its continuations
            env["SLUICE_OBJECTS_QUEUE_URL"] = self.objects_queue_url
        if self.slack_api_url:  # local stack only: real deployments talk to slack.com
            env["SLUICE_SLACK_API_URL"] = self.slack_api_url
            # Its endpoints listen on 127.0.0.1 (a webhook secret may point there too).
            env["SLUICE_ALLOW_LOOPBACK_URLS"] = "true"
        return env


def local_token() -> str:
    """A bot token for the local Slack endpoint (shaped like Slack's, never a real one)."""
    return "xoxb-local-" + secrets.token_hex(12)


class ClientSource(Protocol):
    """Anything with `.get(service)`: `chalicelib.aws.Clients` or a test double."""

    def get(self, service: str) -> Any: ...


def bootstrap(
    clients: ClientSource,
    names: Names | None = None,
    *,
    slack_token: str | None = None,
    slack_api_url: str | None = None,
) -> Resources:
    """Create tables, bucket, queues, topic and the Slack secret unless they exist.

    Queues: the dead-letter queue, and the objects queue `sluice-objects` (S3
    notifications and continuations for `s3_objects`) with its own dead-letter
    queue after OBJECTS_MAX_RECEIVES receives, as infra/ declares them.

    `slack_token`: stored in the secret when it is created; when the secret
    exists, replaced only if given and different (so rerunning keeps a token an
    operator put there by hand).
    """
    names = names or Names.for_prefix()
    res = Resources(names=names, dlq_url="", topic_arn="", slack_api_url=slack_api_url)
    ddb = clients.get("dynamodb")
    _table(ddb, names.rules_table, tables.RULES, res)
    _table(ddb, names.state_table, tables.STATE, res)
    _bucket(clients.get("s3"), names.archive_bucket, res)
    # create_queue / create_topic are idempotent for identical attributes.
    sqs = clients.get("sqs")
    res.dlq_url = sqs.create_queue(
        QueueName=names.dlq,
        # 14 days, SQS's maximum: dead letters wait for an operator's replay.
        Attributes={"MessageRetentionPeriod": str(RETENTION_S)},
    )["QueueUrl"]
    res.objects_dlq_url = _queue(
        sqs, names.objects_dlq, {"MessageRetentionPeriod": str(RETENTION_S)}
    )
    dlq_arn = sqs.get_queue_attributes(QueueUrl=res.objects_dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    res.objects_queue_url = _queue(
        sqs,
        names.objects_queue,
        {
            "VisibilityTimeout": str(OBJECTS_VISIBILITY_S),
            "MessageRetentionPeriod": str(RETENTION_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": OBJECTS_MAX_RECEIVES}
            ),
        },
    )
    res.topic_arn = clients.get("sns").create_topic(Name=names.alert_topic)["TopicArn"]
    _secret(clients.get("secretsmanager"), names.slack_secret, slack_token, res)
    return res


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    """A queue's URL, creating it first if missing.

    Looked up before creating: create_queue answers QueueAlreadyExists when an
    existing queue's attributes differ (one an operator tuned, or infra/'s).
    Like the dead-letter queue and the topic, queues are not listed in
    `created`/`existing`.
    """
    try:
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except Exception as e:
        if _code(e) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
    else:
        return url
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _table(ddb: Any, name: str, table: tables.Table, res: Resources) -> None:
    created = tables.create(ddb, name, table)
    (res.created if created else res.existing).append(f"table {name}")


def _bucket(s3: Any, name: str, res: Resources) -> None:
    try:
        s3.head_bucket(Bucket=name)
    except Exception as e:
        if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    else:
        res.existing.append(f"bucket {name}")
        return
    region = s3.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":  # us-east-1 refuses an explicit constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    res.created.append(f"bucket {name}")


def _secret(sm: Any, name: str, token: str | None, res: Resources) -> None:
    try:
        current = sm.get_secret_value(SecretId=name)["SecretString"]
    except Exception as e:
        if _code(e) != "ResourceNotFoundException":
            raise
    else:
        res.existing.append(f"secret {name}")
        if token and _token_of(current) != token:
            sm.put_secret_value(SecretId=name, SecretString=json.dumps({"token": token}))
        return
    sm.create_secret(Name=name, SecretString=json.dumps({"token": token or local_token()}))
    res.created.append(f"secret {name}")


def _token_of(secret_string: str) -> str:
    try:
        doc = json.loads(secret_string)
    except ValueError:
        return secret_string
    return str(doc.get("token", "")) if isinstance(doc, dict) else secret_string


def read_token(clients: ClientSource, names: Names) -> str:
    """The bot token the functions will read (for the local Slack endpoint to expect)."""
    value = clients.get("secretsmanager").get_secret_value(SecretId=names.slack_secret)
    return _token_of(value["SecretString"])


def env_lines(env: dict[str, str]) -> list[str]:
    """`export K=V` lines, shell-quoted, in a stable order."""

    return [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
