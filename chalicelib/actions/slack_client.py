"""The Slack connection a warm function shares across its Slack actions.

The secret (SLUICE_SLACK_SECRET) holds a bot token, or JSON with `token` /
`bot_token`, or with `webhook_url` (an incoming webhook). The client is a
WebClient for a token (pointed at SLUICE_SLACK_API_URL when set, for the local
stack) or a WebhookClient for a webhook, rebuilt when the secret rotates. Both
retry connection errors, short 429s and 5xx (slack_retry).
"""

from __future__ import annotations

import logging
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
                quiet = sdk_logger()
                if quiet is not None:
                    kwargs["logger"] = quiet
                api_url = self.ctx.settings.slack_api_url
                if api_url:
                    kwargs["base_url"] = api_url.rstrip("/") + "/"
                client = WebClient(**kwargs)
                client.retry_handlers = handlers
            self._client = (value, client)
        return self._client[1]


# WebClient's logger, and the level below which its guarded lines can be emitted: it
# writes its debug lines (and its "retry handler found" info lines) only under
# `if logger.level <= DEBUG`, the logger's own level, which is NOTSET unless set.
SDK_LOGGER = "slack_sdk.web.base_client"


def sdk_logger() -> logging.Logger | None:
    """The logger to give a WebClient: None (slack_sdk's own) when its debug or info lines
    could be emitted; else one of the same name under it, set to the level in effect.

    With its own logger at NOTSET, WebClient formats the debug lines of every call (the
    whole request body, the response headers) before logging drops them: ~16% of a
    chat.postMessage's instructions (callgrind, the seed demo's message). The logger
    given instead emits exactly what slack_sdk's would (same name, same level in effect,
    records handled by slack_sdk's logger's handlers and its parents'). The level is read
    when the client is built (at the first message and when the token rotates)."""
    own = logging.getLogger(SDK_LOGGER)
    effective = own.getEffectiveLevel()
    if own.level != logging.NOTSET or effective <= logging.INFO or own.disabled:
        return None
    quiet = logging.Logger(SDK_LOGGER, effective)
    quiet.parent = own
    return quiet


def connection(ctx: ActionContext) -> SlackConnection:
    """The function's one Slack connection (one client, one connection pool)."""
    return ctx.shared("slack", lambda: SlackConnection(ctx))
