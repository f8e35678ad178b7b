"""One invocation's identity and context: who runs (request id, function, account,
region) and how much time is left. Handlers build it from Lambda's context; the
pipeline, the ingest workflows, actions and the replay tools read it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

# Lambda's longest timeout: what an invocation without a Lambda context may take.
NO_DEADLINE_MS = 900_000


def _no_deadline() -> int:
    return NO_DEADLINE_MS


class Invocation:
    """What the code an invocation runs may need to know about it. A plain class: a
    dataclass costs ~1 ms to create on a cold start and its generated methods are not
    used (README, "Cold start")."""

    __slots__ = ("account", "function_name", "region", "remaining_ms", "request_id")

    def __init__(
        self,
        request_id: str,
        function_name: str = "local",
        account: str = "000000000000",
        region: str = "us-east-1",
        remaining_ms: Callable[[], int] = _no_deadline,
    ) -> None:
        self.request_id = request_id
        self.function_name = function_name
        self.account = account
        self.region = region
        self.remaining_ms = remaining_ms

    @classmethod
    def from_context(cls, context: Any, region: str) -> Invocation:
        if context is None:
            return cls(request_id=str(uuid.uuid4()), region=region)
        arn = getattr(context, "invoked_function_arn", "") or ""
        parts = arn.split(":")
        account = parts[4] if len(parts) > 4 and parts[4] else "000000000000"
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(
            request_id=getattr(context, "aws_request_id", "") or "local",
            function_name=getattr(context, "function_name", "") or "local",
            account=account,
            region=parts[3] if len(parts) > 3 and parts[3] else region,
            remaining_ms=remaining if callable(remaining) else _no_deadline,
        )
