"""The local Slack endpoint, driven by the real slack_sdk WebClient."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from sluice_cli.slack_server import SlackServer

pytestmark = pytest.mark.functional

TOKEN = "xoxb-local-test-token"
BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "computer-alerts: 1 event"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "demo: computer on fire"}},
]


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer(TOKEN) as server:
        yield server


@pytest.fixture
def client(slack: SlackServer) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.url, timeout=5, retry_handlers=[])


def test_post_message_is_answered_like_slack_and_recorded(
    slack: SlackServer, client: WebClient
) -> None:
    """chat.postMessage with blocks (sent as JSON) gets ok, a channel id and a ts, and is kept."""
    resp = client.chat_postMessage(channel="#ops", text="fallback", blocks=BLOCKS, parse="none")

    assert resp["ok"] is True
    assert resp["channel"].startswith("C") and resp["channel"] != "#ops"
    assert resp["message"]["text"] == "fallback"
    assert resp["message"]["blocks"] == BLOCKS
    [msg] = slack.messages()
    assert (msg["channel"], msg["text"], msg["blocks"]) == ("#ops", "fallback", BLOCKS)
    assert msg["ts"] == resp["ts"] and msg["params"]["parse"] == "none"


def test_form_encoded_post_is_accepted(slack: SlackServer) -> None:
    """A form-encoded post with the token as a field and blocks as a JSON string is accepted."""
    form = urllib.parse.urlencode(
        {"token": TOKEN, "channel": "#ops", "text": "hi", "blocks": json.dumps(BLOCKS)}
    ).encode()
    req = urllib.request.Request(f"{slack.url}chat.postMessage", data=form, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=5) as r:
        answer = json.load(r)

    assert answer["ok"] is True
    assert slack.messages()[0]["blocks"] == BLOCKS


def test_auth_test_reports_the_local_bot(client: WebClient) -> None:
    """auth.test with the expected token answers ok with the bot's user id."""
    resp = client.auth_test()

    assert resp["ok"] is True and resp["user_id"].startswith("U")


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param("xoxb-wrong", "invalid_auth", id="wrong token"),
        pytest.param(None, "not_authed", id="no token"),
    ],
)
def test_bad_token_is_refused_and_nothing_recorded(
    slack: SlackServer, token: str | None, error: str
) -> None:
    """A wrong or missing token is refused as Slack does (HTTP 200, ok false) and not posted."""
    bad = WebClient(token=token, base_url=slack.url, timeout=5, retry_handlers=[])

    with pytest.raises(SlackApiError) as e:
        bad.chat_postMessage(channel="#ops", text="x")

    assert e.value.response["error"] == error
    assert slack.messages() == []


def test_rate_limit_retry_after_is_honoured(slack: SlackServer, client: WebClient) -> None:
    """A 429 with Retry-After: 1 makes RateLimitErrorRetryHandler wait a second and retry once."""
    client.retry_handlers = [RateLimitErrorRetryHandler(max_retry_count=1)]
    slack.fail_next(status=429, retry_after=1)

    started = time.monotonic()
    resp = client.chat_postMessage(channel="#ops", text="after the limit")
    elapsed = time.monotonic() - started

    assert resp["ok"] is True
    assert elapsed >= 1.0
    assert slack.requests() == [("chat.postMessage", 429), ("chat.postMessage", 200)]
    assert len(slack.messages()) == 1


def test_rate_limit_without_retry_surfaces_ratelimited(
    slack: SlackServer, client: WebClient
) -> None:
    """Without a retry handler the 429 reaches the caller with error ratelimited and Retry-After."""
    slack.fail_next(status=429, retry_after=7)

    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="#ops", text="x")

    assert e.value.response.status_code == 429
    assert e.value.response["error"] == "ratelimited"
    assert e.value.response.headers["Retry-After"] == "7"


def test_server_errors_are_retried_until_they_stop(slack: SlackServer, client: WebClient) -> None:
    """Two 500s then success: ServerErrorRetryHandler with two retries delivers the message once."""
    client.retry_handlers = [
        ServerErrorRetryHandler(
            max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
        )
    ]
    slack.fail_next(status=500, count=2)

    assert client.chat_postMessage(channel="#ops", text="x")["ok"] is True
    assert [s for _, s in slack.requests()] == [500, 500, 200]
    assert len(slack.messages()) == 1


def test_server_errors_beyond_the_retries_raise(slack: SlackServer, client: WebClient) -> None:
    """Three 500s against two retries: SlackApiError with status 500 and nothing posted."""
    client.retry_handlers = [
        ServerErrorRetryHandler(
            max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
        )
    ]
    slack.fail_next(status=500, count=3)

    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="#ops", text="x")

    assert e.value.response.status_code == 500
    assert slack.messages() == []


def test_hung_request_times_the_client_out_but_is_still_posted(slack: SlackServer) -> None:
    """A request held past the client's timeout fails for the client yet is posted, as on Slack."""
    # urllib takes float timeouts; slack_sdk's annotation says int
    impatient = WebClient(token=TOKEN, base_url=slack.url, timeout=0.2, retry_handlers=[])  # type: ignore[arg-type]
    slack.hang_next(0.6)

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        impatient.chat_postMessage(channel="#ops", text="slow")

    assert [m["text"] for m in slack.wait_for(1, timeout=3)] == ["slow"]


def test_oversized_header_is_invalid_blocks(slack: SlackServer, client: WebClient) -> None:
    """A header block over Slack's 150 characters is refused with invalid_blocks."""
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]

    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="#ops", text="x", blocks=blocks)

    assert e.value.response["error"] == "invalid_blocks"


def test_messages_endpoint_lists_what_was_received(slack: SlackServer, client: WebClient) -> None:
    """GET /_local/messages returns the recorded messages as JSON."""
    client.chat_postMessage(channel="#ops", text="one")
    client.chat_postMessage(channel="#sec", text="two")

    url = slack.url.replace("/api/", "/_local/messages")
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)

    assert [(m["channel"], m["text"]) for m in doc["messages"]] == [
        ("#ops", "one"),
        ("#sec", "two"),
    ]


def test_wait_for_gives_up_after_its_timeout(slack: SlackServer) -> None:
    """wait_for raises TimeoutError when fewer messages than asked for arrive in time."""
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        slack.wait_for(1, timeout=0.1)

    assert time.monotonic() - started < 1
