"""One Settings object, built lazily from the environment (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Final

from chalicelib.errors import SettingsError
from chalicelib.records import record


@record(frozen=True)
class Settings:
    """The function's configuration, read once from the environment (`from_env`) and
    read-only after that (`dataclasses.replace` gives a changed copy)."""

    __slots__ = (
        "allow_loopback_urls",
        "allowed_accounts",
        "allowed_url_ports",
        "app_name",
        "archive_bucket",
        "archive_gzip_level",
        "deadline_margin_ms",
        "destination_arn",
        "destination_role_arn",
        "dlq_url",
        "function_name",
        "kinesis_stream",
        "max_object_chars",
        "metrics_namespace",
        "objects_queue_url",
        "region",
        "rules_table",
        "rules_ttl_s",
        "slack_api_url",
        "slack_secret",
        "stage",
        "state_table",
    )

    rules_table: Final[str]
    state_table: Final[str]
    archive_bucket: Final[str]
    dlq_url: Final[str]
    slack_secret: Final[str]
    slack_api_url: Final[str | None]
    region: Final[str]
    rules_ttl_s: Final[float]
    archive_gzip_level: Final[int]
    metrics_namespace: Final[str]
    objects_queue_url: Final[str | None]
    deadline_margin_ms: Final[int]
    max_object_chars: Final[int]
    # Fan-in stream (name or ARN) log_group_created subscribes to in Kinesis mode.
    kinesis_stream: Final[str | None]
    # Outbound URLs from secrets (Slack webhooks): non-default ports allowed, and whether
    # loopback hosts are (the local stack only). See chalicelib/urlpolicy.py.
    allowed_url_ports: Final[frozenset[int]]
    allow_loopback_urls: Final[bool]
    # The deployment, for the loop guard (chalicelib/loopguard.py): functions are named
    # <app>-<stage>-<function>; the stage defaults to the one in the function's own name.
    app_name: Final[str]
    stage: Final[str | None]
    function_name: Final[str | None]
    # Organization (docs/deployment.md): accounts whose CloudWatch data is accepted;
    # empty = no list (the destination policy alone admits senders).
    allowed_accounts: Final[frozenset[str]]
    # An organization member running log_group_created: new groups subscribe to the
    # central account's destination (with this delivery role) instead of this account's.
    destination_arn: Final[str | None]
    destination_role_arn: Final[str | None]

    def __init__(
        self,
        rules_table: str,
        state_table: str,
        archive_bucket: str,
        dlq_url: str,
        slack_secret: str,
        slack_api_url: str | None,
        region: str,
        rules_ttl_s: float,
        archive_gzip_level: int,
        metrics_namespace: str,
        objects_queue_url: str | None = None,
        deadline_margin_ms: int = 20_000,
        max_object_chars: int = 2 * 1024**3,
        kinesis_stream: str | None = None,
        allowed_url_ports: frozenset[int] = frozenset(),
        allow_loopback_urls: bool = False,
        app_name: str = "sluice",
        stage: str | None = None,
        function_name: str | None = None,
        allowed_accounts: frozenset[str] = frozenset(),
        destination_arn: str | None = None,
        destination_role_arn: str | None = None,
    ) -> None:
        self.rules_table = rules_table
        self.state_table = state_table
        self.archive_bucket = archive_bucket
        self.dlq_url = dlq_url
        self.slack_secret = slack_secret
        self.slack_api_url = slack_api_url
        self.region = region
        self.rules_ttl_s = rules_ttl_s
        self.archive_gzip_level = archive_gzip_level
        self.metrics_namespace = metrics_namespace
        self.objects_queue_url = objects_queue_url
        self.deadline_margin_ms = deadline_margin_ms
        self.max_object_chars = max_object_chars
        self.kinesis_stream = kinesis_stream
        self.allowed_url_ports = allowed_url_ports
        self.allow_loopback_urls = allow_loopback_urls
        self.app_name = app_name
        self.stage = stage
        self.function_name = function_name
        self.allowed_accounts = allowed_accounts
        self.destination_arn = destination_arn
        self.destination_role_arn = destination_role_arn

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        missing = [
            k
            for k in ("SLUICE_RULES_TABLE", "SLUICE_ARCHIVE_BUCKET", "SLUICE_DLQ_URL")
            if not e.get(k)
        ]
        if missing:
            raise SettingsError("missing environment variable(s): " + ", ".join(missing))
        try:
            rules_ttl_s = float(e.get("SLUICE_RULES_TTL", "60"))
            # gzip level 1: 1.28 µs/event against 3.39 at level 6 (measured per event),
            # for archives ~10-15% larger on log text. Storage is cheaper than CPU here.
            gzip_level = int(e.get("SLUICE_ARCHIVE_GZIP_LEVEL", "1"))
            # Stop taking new work when less than this remains of the invocation.
            margin_ms = int(e.get("SLUICE_DEADLINE_MARGIN_MS", "20000"))
            # Text read from one object per invocation before it continues in the next:
            # 2 GiB at the ~40 MB/s a 512 MB function parses leaves time to spare in 15 min.
            max_object_chars = int(e.get("SLUICE_MAX_OBJECT_BYTES", str(2 * 1024**3)))
            ports = frozenset(
                int(p) for p in e.get("SLUICE_ALLOWED_URL_PORTS", "").split(",") if p.strip()
            )
        except ValueError as err:
            raise SettingsError(f"malformed numeric setting: {err}") from err
        if not 0 <= gzip_level <= 9:
            raise SettingsError(f"SLUICE_ARCHIVE_GZIP_LEVEL must be 0-9, not {gzip_level}")
        return cls(
            rules_table=e["SLUICE_RULES_TABLE"],
            state_table=e.get("SLUICE_STATE_TABLE", ""),
            archive_bucket=e["SLUICE_ARCHIVE_BUCKET"],
            dlq_url=e["SLUICE_DLQ_URL"],
            slack_secret=e.get("SLUICE_SLACK_SECRET", ""),
            slack_api_url=e.get("SLUICE_SLACK_API_URL") or None,
            region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or "us-east-1",
            rules_ttl_s=rules_ttl_s,
            archive_gzip_level=gzip_level,
            metrics_namespace=e.get("POWERTOOLS_METRICS_NAMESPACE", "Sluice"),
            objects_queue_url=e.get("SLUICE_OBJECTS_QUEUE_URL") or None,
            deadline_margin_ms=margin_ms,
            max_object_chars=max_object_chars,
            kinesis_stream=e.get("SLUICE_KINESIS_STREAM") or None,
            allowed_url_ports=ports,
            allow_loopback_urls=_flag(e.get("SLUICE_ALLOW_LOOPBACK_URLS", "")),
            app_name=e.get("SLUICE_APP_NAME") or "sluice",
            stage=e.get("SLUICE_STAGE") or None,
            function_name=e.get("AWS_LAMBDA_FUNCTION_NAME") or None,
            allowed_accounts=_accounts(e.get("SLUICE_ALLOWED_ACCOUNTS", "")),
            destination_arn=e.get("SLUICE_DESTINATION_ARN") or None,
            destination_role_arn=e.get("SLUICE_DESTINATION_ROLE_ARN") or None,
        )


def _accounts(value: str) -> frozenset[str]:
    ids = frozenset(a.strip() for a in value.split(",") if a.strip())
    bad = sorted(a for a in ids if not (len(a) == 12 and a.isdigit()))
    if bad:
        raise SettingsError(f"SLUICE_ALLOWED_ACCOUNTS: not 12-digit account ids: {bad}")
    return ids


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; `get_settings.cache_clear()` in tests."""
    return Settings.from_env()
