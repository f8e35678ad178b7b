"""The one secret parser: every consumer (Slack, HTTP forwards) reads values through it."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.actions.context import Delivery
from chalicelib.actions.slack import SlackAction
from chalicelib.errors import ActionError, SecretError
from chalicelib.invocation import Invocation
from chalicelib.secrets import Secret, parse

from .factories import log_events


@pytest.mark.parametrize(
    ("value", "text", "fields"),
    [
        pytest.param("xoxb-123", "xoxb-123", None, id="bare token"),
        pytest.param("  xoxb-123\n", "xoxb-123", None, id="bare token with whitespace"),
        pytest.param('{"token": "t-1"}', '{"token": "t-1"}', {"token": "t-1"}, id="JSON object"),
        pytest.param(' \n{"a": 1}', '{"a": 1}', {"a": 1}, id="JSON object after whitespace"),
        pytest.param("[1, 2]", "[1, 2]", None, id="not starting with a brace is a bare value"),
    ],
)
def test_parse_tells_bare_values_from_json_objects(value, text, fields):
    """A value is stripped; one starting with `{` is a JSON object whose fields are kept."""
    secret = parse("s", value)
    assert (secret.text, secret.fields) == (text, fields)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('{"token": "hunter2-secret"', id="truncated JSON"),
        pytest.param("{hunter2-secret}", id="not JSON"),
        pytest.param('{"a": 1} {"b": "hunter2-secret"}', id="two documents"),
    ],
)
def test_json_looking_value_that_is_no_object_is_an_error_that_quotes_nothing(value):
    """A value starting with `{` that is not one JSON object is a SecretError naming the
    secret, never its value."""
    with pytest.raises(SecretError) as info:
        parse("sluice/x", value)
    assert str(info.value) == "secret 'sluice/x' is not a JSON object"
    assert "hunter2" not in repr(info.value)


@pytest.mark.parametrize(
    ("fields", "keys", "found"),
    [
        pytest.param({"token": "a", "bot_token": "b"}, ("token", "bot_token"), "a", id="first"),
        pytest.param({"token": "", "bot_token": "b"}, ("token", "bot_token"), "b", id="empty"),
        pytest.param({"token": 7}, ("token",), None, id="not a string"),
        pytest.param({}, ("token",), None, id="absent"),
    ],
)
def test_field_is_the_first_non_empty_string(fields, keys, found):
    """`field(*keys)` answers the first key holding a non-empty string."""
    assert Secret("s", "{}", fields).field(*keys) == found


def test_repr_never_shows_the_value():
    """A Secret in a traceback or log line shows its name only."""
    secret = parse("sluice/x", '{"password": "hunter2-secret"}')
    assert "hunter2" not in repr(secret) and "sluice/x" in repr(secret)


class SecretContext:
    """An action context with Slack settings and one secret value."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.memo: dict[str, Any] = {}

    @property
    def settings(self) -> Any:
        class S:
            slack_secret = "sluice/slack"
            slack_api_url = None

        return S()

    def secret(self, name: str, *, force: bool = False) -> Secret:
        return parse(name, self.value)

    def shared(self, key: str, build: Any) -> Any:
        return self.memo.setdefault(key, build())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param('{"token": ', "secret 'sluice/slack' is not a JSON object", id="broken JSON"),
        pytest.param('{"channel": "#ops"}', "secret 'sluice/slack' holds no token", id="no token"),
        pytest.param(
            '{"webhook_url": "http://hooks.example/x"}',
            "secret 'sluice/slack': webhook_url must be https",
            id="plain-http webhook",
        ),
    ],
)
def test_slack_secret_that_cannot_be_used_is_a_final_action_error(value, reason):
    """Slack reads its secret through the same parser: an unusable value is an ActionError
    saying why (not retryable: reading it again gives the same value), nothing is sent."""
    act = SlackAction("r1", {"channel": "#ops"}, SecretContext(value))
    with pytest.raises(ActionError) as info:
        act.deliver(Delivery(log_events(1), Invocation("inv")))
    assert (info.value.reason, info.value.retryable) == (reason, False)
