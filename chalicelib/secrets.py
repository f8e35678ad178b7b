"""Secrets from Secrets Manager or SSM Parameter Store, cached (Powertools parameters),
and the one parser every consumer reads them with.

A name starting with `/` or `ssm:` is an SSM SecureString; anything else a Secrets
Manager secret. Values are cached for MAX_AGE_S, so a rotated secret is picked up
within five minutes without a redeploy; `force=True` refetches at once (after an
authentication failure). Providers are built once per client, so the cache lives
as long as the warm function.

A value is either a bare string (a token) or a JSON object whose fields the consumer
picks (`token`, `webhook_url`, `username`/`password`, `authorization`...): `parse`
tells them apart once for every consumer, and never quotes the value in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.errors import SecretError

MAX_AGE_S = 300


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret's value: `text` (stripped), and `fields` when it is a JSON object.
    Neither is shown in a repr, so a traceback or a log line cannot carry it."""

    name: str
    text: str = field(repr=False)
    fields: dict[str, Any] | None = field(default=None, repr=False)

    def field(self, *keys: str) -> str | None:
        """The first of `keys` holding a non-empty string in the JSON object, else None."""
        for key in keys:
            value = (self.fields or {}).get(key)
            if isinstance(value, str) and value:
                return value
        return None


def parse(name: str, value: str) -> Secret:
    """A secret's value as a bare string or a JSON object; SecretError when it looks like
    JSON (starts with `{`) but is not an object (the parser's message is not kept: it
    could quote the value)."""
    text = value.strip()
    if not text.startswith("{"):
        return Secret(name, text)
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise SecretError(name, "is not a JSON object")
    return Secret(name, text, doc)


class Secrets:
    def __init__(self, clients: Any) -> None:
        self.clients = clients
        self._ssm: Any = None
        self._sm: Any = None

    def get(self, name: str, *, force: bool = False) -> str:
        from aws_lambda_powertools.utilities import parameters

        value: Any
        if name.startswith("ssm:") or name.startswith("/"):
            if self._ssm is None:
                self._ssm = parameters.SSMProvider(boto3_client=self.clients.get("ssm"))
            value = self._ssm.get(
                name.removeprefix("ssm:"), decrypt=True, max_age=MAX_AGE_S, force_fetch=force
            )
        else:
            if self._sm is None:
                self._sm = parameters.SecretsProvider(
                    boto3_client=self.clients.get("secretsmanager")
                )
            value = self._sm.get(name, max_age=MAX_AGE_S, force_fetch=force)
        return value.decode() if isinstance(value, bytes) else str(value)

    def secret(self, name: str, *, force: bool = False) -> Secret:
        """The secret read (cached) and parsed."""
        return parse(name, self.get(name, force=force))
