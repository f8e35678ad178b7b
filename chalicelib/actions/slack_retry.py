"""slack_sdk retry handlers bounded for a Lambda function.

slack_sdk retries nothing but connection errors by default. Its 429 handler sleeps
whatever Retry-After says (Slack asks for up to a minute when a workspace is
throttled hard), and its server-error handler covers 500 and 503 only. Here a 429
is retried only when the wait is short, and 502/504 (gateway errors Slack's edge
returns too) are retried like 500/503.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

# Longest Retry-After worth sleeping through inside an invocation; past it the
# alert goes to the dead-letter queue and `sluice dlq replay` sends it later.
MAX_RETRY_AFTER_S = 10


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    def __init__(self, max_retry_count: int = 2, max_wait_s: int = MAX_RETRY_AFTER_S) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(
        self, *, state: Any, request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        for k, v in response.headers.items():
            if k.lower() == "retry-after":
                try:
                    return int(v[0] if isinstance(v, list) else v) <= self.max_wait_s
                except (TypeError, ValueError):
                    return False
        return True


class GatewayErrorRetryHandler(ServerErrorRetryHandler):
    def _can_retry(
        self, *, state: Any, request: Any, response: Any = None, error: Any = None
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)
