"""Lazy, injectable boto3 clients.

boto3 costs ~180 ms to import and each client ~20-60 ms to build, so nothing is
created until first use, and tests (or the local stack) inject their own with
`clients.set(...)`. Endpoints follow the SDK's own settings (AWS_ENDPOINT_URL),
so the same code runs against moto or AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any


class Clients:
    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    import boto3  # deferred: see module docstring
                    from botocore.config import Config

                    # Standard retry mode: jittered backoff on throttling and 5xx, 3
                    # retries after the first attempt (botocore's `max_attempts` counts
                    # retries: 4 attempts in all), bounded connect/read timeouts so a
                    # stuck endpoint cannot eat the whole invocation.
                    config = Config(
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=5,
                        read_timeout=30,
                    )
                    client = boto3.client(service, config=config)
                    self._clients[service] = client
        return client

    def set(self, service: str, client: Any) -> None:
        self._clients[service] = client

    def reset(self) -> None:
        self._clients.clear()


clients = Clients()


def query_items(ddb: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a DynamoDB Query, page after page (LastEvaluatedKey)."""
    while True:
        page = ddb.query(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
