"""Sluice's own exceptions. Each carries the context an operator needs."""

from __future__ import annotations

from typing import Any


class SluiceError(Exception):
    """Base class for every error Sluice raises on purpose."""


class DecodeError(SluiceError):
    """A trigger payload (or part of it) could not be decoded into events.

    `stage` names the step that failed (base64, gzip, json, shape, utf-8) so the
    dead-letter record says where the bytes went wrong.
    """

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


class RuleError(SluiceError):
    """One problem in a rules file, located by rule id and field path."""

    def __init__(self, rule_id: str, field: str, reason: str) -> None:
        super().__init__(f"rule {rule_id!r}, {field}: {reason}")
        self.rule_id = rule_id
        self.field = field
        self.reason = reason


class RulesInvalid(SluiceError):
    """A rules file with one or more RuleErrors; nothing was written."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__(f"{len(errors)} error(s) in rules: " + "; ".join(map(str, errors)))
        self.errors = errors


class ActionError(SluiceError):
    """An action failed. `retryable` says whether trying again may help.

    `failed` holds the events that were not delivered when only some were (a
    PutRecords call with per-record failures); None means the whole batch.
    `failed_count`, when set, is how many of them failed: a destination refused that
    many without naming them (OTLP partial success), so `failed` holds every event
    the count may concern.
    """

    def __init__(
        self,
        action: str,
        reason: str,
        *,
        retryable: bool = False,
        failed: list[Any] | None = None,
        sent: int = 0,
        failed_count: int | None = None,
    ) -> None:
        super().__init__(f"{action}: {reason}")
        self.action = action
        self.reason = reason
        self.retryable = retryable
        self.failed = failed
        self.sent = sent  # messages/requests that did go out before the failure
        self.failed_count = failed_count


class SecretError(SluiceError):
    """A secret's value is not in a form its consumer can read. Never quotes the value."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"secret {name!r} {reason}")
        self.name = name
        self.reason = reason


class SettingsError(SluiceError):
    """A required setting is missing or malformed."""


def aws_fault(e: BaseException) -> bool:
    """Whether a batch that failed with `e` should be handed back to Lambda as it is.

    AWS's answers and the network's faults are: throttling, 5xx and timeouts pass with
    time (botocore has already retried them), and a refusal such as AccessDenied is a
    configuration problem every record would meet, so dead-lettering record after record
    would empty the stream into the queue. Anything else was raised while processing the
    data itself (a value no code path expected): deterministic, so retrying the batch
    would fail the same way until the records expire. Those batches are processed again
    one record at a time, and only the record that fails alone is dead-lettered."""
    from botocore.exceptions import BotoCoreError, ClientError  # loaded with the first client

    return isinstance(e, ClientError | BotoCoreError | TimeoutError | ConnectionError)
