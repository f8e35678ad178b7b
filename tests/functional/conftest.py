"""Fixtures for the local stack: moto's server and the Slack endpoint on loopback ports.

The root conftest scrubs the environment before each test; the stack sets its
own (and its boto3 clients are bound to its endpoint), then restores it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sluice_cli.local import LocalStack


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """A fresh local stack on free ports, polling every 50 ms."""
    with LocalStack(poll_interval_s=0.05) as s:
        yield s


@pytest.fixture
def archived(stack: LocalStack) -> Callable[[], dict[str, list[dict[str, Any]]]]:
    """`archived()`: archive key -> decoded JSON lines, read back from the stack's bucket."""
    from chalicelib.actions.archive import read_lines

    def read() -> dict[str, list[dict[str, Any]]]:
        s3 = stack.clients.get("s3")
        bucket = stack.names.archive_bucket
        out: dict[str, list[dict[str, Any]]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="archive/"):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[obj["Key"]] = read_lines(body)
        return out

    return read


@pytest.fixture
def stored_ids(stack: LocalStack) -> Callable[[str], dict[str, str]]:
    """`stored_ids(group)`: event id -> message, as CloudWatch Logs (moto) holds them."""

    def read(group: str) -> dict[str, str]:
        logs = stack.clients.get("logs")
        out: dict[str, str] = {}
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            out.update({e["eventId"]: e["message"] for e in page["events"]})
        return out

    return read
