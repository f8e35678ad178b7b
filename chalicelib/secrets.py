"""Secrets from Secrets Manager or SSM Parameter Store, cached (Powertools parameters).

A name starting with `/` or `ssm:` is an SSM SecureString; anything else a Secrets
Manager secret. Values are cached for MAX_AGE_S, so a rotated secret is picked up
within five minutes without a redeploy; `force=True` refetches at once (after an
authentication failure). Providers are built once per client, so the cache lives
as long as the warm function.
"""

from __future__ import annotations

from typing import Any

MAX_AGE_S = 300


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
