"""The Slack connection a warm function shares across its Slack actions.

The secret (SLUICE_SLACK_SECRET) holds a bot token, or JSON with `token` /
`bot_token`, or with `webhook_url` (an incoming webhook). The client is a
WebClient for a token (pointed at SLUICE_SLACK_API_URL when set, for the local
stack) or a WebhookClient for a webhook, rebuilt when the secret rotates. Both
retry connection errors, short 429s and 5xx (slack_retry).
"""

from __future__ import annotations

from typing import Any

from chalicelib.actions.context import ActionContext
from chalicelib.errors import ActionError, SecretError
from chalicelib.urlpolicy import url_problem, webhook_policy


class SlackConnection:
    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self._client: tuple[str, Any] | None = None  # (credential, client)

    def credential(self, *, force: bool = False) -> tuple[str, str]:
        """("token", bot token) or ("webhook", incoming-webhook URL) from the secret."""
        name = self.ctx.settings.slack_secret
        if not name:
            raise ActionError("slack", "SLUICE_SLACK_SECRET is not set")
        try:
            secret = self.ctx.secret(name, force=force)
        except SecretError as e:
            raise ActionError("slack", str(e)) from None
        if secret.fields is not None:
            url = secret.field("webhook_url")
            if url is not None:
                # Parsed, not prefix-tested; the reason names the URL's fault, never the
                # URL (a webhook URL is itself a credential).
                problem = url_problem(url, webhook_policy(self.ctx.settings))
                if problem:
                    raise ActionError("slack", f"secret {name!r}: webhook_url {problem}")
                return "webhook", url
            token = secret.field("token", "bot_token")
        else:
            token = secret.text
        if not token:
            raise ActionError("slack", f"secret {name!r} holds no token")
        return "token", token

    def client(self, *, refresh: bool = False) -> Any:
        """A WebClient for the current token, or a WebhookClient for an incoming webhook
        (rebuilt when the secret rotates). Both retry 429 (short waits) and 5xx."""
        kind, value = self.credential(force=refresh)
        if self._client is None or self._client[0] != value:
            from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

            from chalicelib.actions.slack_retry import (
                BoundedRateLimitRetryHandler,
                GatewayErrorRetryHandler,
            )

            handlers = [
                ConnectionErrorRetryHandler(max_retry_count=2),
                BoundedRateLimitRetryHandler(max_retry_count=2),
                GatewayErrorRetryHandler(max_retry_count=2),
            ]
            client: Any
            if kind == "webhook":
                from slack_sdk.webhook import WebhookClient

                client = WebhookClient(value, timeout=10, retry_handlers=handlers)
            else:
                from slack_sdk import WebClient

                kwargs: dict[str, Any] = {"token": value, "timeout": 10}
                api_url = self.ctx.settings.slack_api_url
                if api_url:
                    kwargs["base_url"] = api_url.rstrip("/") + "/"
                client = WebClient(**kwargs)
                client.retry_handlers = handlers
            self._client = (value, client)
        return self._client[1]


def connection(ctx: ActionContext) -> SlackConnection:
    """The function's one Slack connection (one client, one connection pool)."""
    return ctx.shared("slack", lambda: SlackConnection(ctx))
