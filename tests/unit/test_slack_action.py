"""chalicelib.actions.slack: Block Kit messages built from untrusted log text (no network)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.actions.context import Delivery, Offline
from chalicelib.actions.slack import SECTION_CHARS, SlackAction, escape
from chalicelib.errors import ActionError
from chalicelib.event import format_time
from chalicelib.invocation import Invocation
from chalicelib.template import render

from .factories import T0, log_event, log_events

RUNBOOK = "https://wiki.example/computer"


def action(**opts: Any) -> SlackAction:
    return SlackAction("computer-alerts", {"channel": "#ops", **opts}, Offline())


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# ---------------------------------------------------------------- structure
def test_single_event_message_structure():
    """One event: header, headline, fields (tag, level, first, last) and a context line."""
    ev = log_event("payment gateway timeout", level="ERROR", time=T0 + 537)
    blocks, text = action(runbook=RUNBOOK).build([ev])
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "computer-alerts: 1 event · ERROR"}
    assert blocks[1]["text"] == {
        "type": "mrkdwn",
        "text": "aws.lambda.checkout-api: payment gateway timeout",
    }
    assert [f["text"] for f in blocks[2]["fields"]] == [
        "*Tag*\naws.lambda.checkout-api",
        "*Level*\nERROR",
        "*First*\n2026-11-26T10:07:01.537Z",
        "*Last*\n2026-11-26T10:07:01.537Z",
        "*Account*\n123456789012",
        "*Region*\nus-east-1",
    ]
    (context,) = blocks[3]["elements"]
    console = (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fcheckout-api"
    )
    assert context["text"] == (
        f"<{RUNBOOK}|Runbook> · <{console}|Console> · rule `computer-alerts` · "
        "source /aws/lambda/checkout-api"
    )
    assert text == "[ERROR] computer-alerts: 1 event(s) on aws.lambda.checkout-api"


def test_no_runbook_no_link():
    """Without a runbook option the context has no runbook link."""
    blocks, _ = action().build([log_event()])
    assert "|Runbook>" not in blocks[-1]["elements"][0]["text"]


def test_title_replaces_the_rule_id_in_the_header():
    """The `title` option names the alert in the header and fallback text."""
    blocks, text = action(title="Checkout is failing").build([log_event(level="WARN")])
    assert blocks[0]["text"]["text"] == "Checkout is failing: 1 event · WARN"
    assert text.startswith("[WARN] Checkout is failing:")


def test_many_events_are_summarised():
    """Twelve events: count and top level in the header, first/last, 5 samples, the rest counted."""
    events = log_events(12, message="disk full on node {i}", level="WARN")
    events[7].record["level"] = "FATAL"
    blocks, _ = action().build(events)
    assert blocks[0]["text"]["text"] == "computer-alerts: 12 events · FATAL"
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[2:4] == ["*First*\n2026-11-26T10:07:01.000Z", "*Last*\n2026-11-26T10:07:01.011Z"]
    samples = section_texts(blocks)[1]
    code, more = samples.rsplit("```", 1)
    assert more == "\n…and 7 more"
    lines = code.removeprefix("```").split("\n")
    assert lines == [f"disk full on node {i}" for i in range(5)]


ORDERS = [
    pytest.param([0, 1, 2, 3], id="in order"),
    pytest.param([3, 2, 1, 0], id="reversed"),
    pytest.param([2, 0, 3, 1], id="shuffled"),
    pytest.param([1, 3, 0, 2, 2], id="shuffled with a repeated time"),
]
OFFSETS_MS = [0, 1_250, 60_000, 3_600_007]  # times apart by up to an hour


@pytest.mark.parametrize("order", ORDERS)
def test_first_and_last_are_the_earliest_and_latest_times(order):
    """However a batch's events arrive, First is the earliest event time and Last the latest,
    and the samples read in time order."""
    events = [
        log_event(f"event at +{OFFSETS_MS[i]}", time=T0 + OFFSETS_MS[i], id=f"e{n}")
        for n, i in enumerate(order)
    ]
    blocks, _ = action().build(events)
    fields = [f["text"] for f in blocks[2]["fields"]]
    times = sorted(T0 + OFFSETS_MS[i] for i in order)
    assert fields[2:4] == [f"*First*\n{format_time(times[0])}", f"*Last*\n{format_time(times[-1])}"]
    samples = section_texts(blocks)[1].removeprefix("```").removesuffix("```").split("\n")
    assert samples == [f"event at +{t - T0}" for t in times]
    assert section_texts(blocks)[0] == f"aws.lambda.checkout-api: event at +{times[0] - T0}"


def test_five_events_show_all_samples_without_a_remainder():
    """Up to five events are all shown, with no "…and N more" line."""
    blocks, _ = action().build(log_events(5))
    samples = section_texts(blocks)[1]
    assert samples.count("event ") == 5
    assert "more" not in samples


def test_long_samples_still_close_their_code_block():
    """When samples are too long for a section, they are cut inside the fences, not through them."""
    events = log_events(9, message="&<>`" * 200 + " {i}")
    blocks, _ = action().build(events)
    samples = section_texts(blocks)[1]
    assert len(samples) <= SECTION_CHARS
    assert samples.startswith("```")
    assert samples.endswith("```\n…and 4 more")
    assert samples.count("```") == 2


def test_blocks_stay_within_slack_limits():
    """Header ≤ 150, section texts ≤ 3000, fields ≤ 2000 characters, whatever the input size."""
    huge = "x" * 300_000
    events = [log_event(huge, tag="t." + "y" * 400, level="E" * 500, id=str(i)) for i in range(7)]
    blocks, text = action(title="T" * 400, text="{message} {message}").build(events)
    assert len(blocks[0]["text"]["text"]) <= 150
    assert all(len(t) <= 3000 for t in section_texts(blocks))
    assert all(len(f["text"]) <= 2000 for f in blocks[2]["fields"])
    assert len(text) <= 4000


# ---------------------------------------------------------------- escaping
@pytest.mark.parametrize(
    ("message", "forbidden"),
    [
        pytest.param("<!channel> deploy failed", "<!channel>", id="channel mention"),
        pytest.param("<!here|here> wake up", "<!here", id="here mention"),
        pytest.param("ping <@U123>", "<@U123>", id="user mention"),
        pytest.param("<!subteam^S0123|@oncall> please", "<!subteam", id="group mention"),
        pytest.param("see <http://evil.example|click here>", "<http://evil", id="disguised link"),
        pytest.param("@channel the site is down", "@channel", id="bare @channel"),
        pytest.param("@here anyone?", "@here", id="bare @here"),
        pytest.param("@EVERYONE look", "@EVERYONE", id="bare @everyone any case"),
    ],
)
def test_log_text_cannot_ping_or_link(message, forbidden):
    """Mentions, broadcasts and links in log text are defused everywhere they appear."""
    events = [log_event(message, id="1"), log_event(message, id="2")]
    blocks, text = action(text="{message} by {record.user}").build(
        [*events[:1], log_event(message, id="3", user=message), *events[1:]]
    )
    rendered = all_text(blocks) + text
    assert forbidden not in rendered


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        pytest.param("a & b", "a &amp; b", id="ampersand"),
        pytest.param("<!channel>", "&lt;!channel&gt;", id="channel"),
        pytest.param("<@U123>", "&lt;@U123&gt;", id="user"),
        pytest.param("<http://evil|click>", "&lt;http://evil|click&gt;", id="link"),
        pytest.param("&lt;", "&amp;lt;", id="pre-escaped text stays literal"),
        pytest.param("@channel", "@\u2060channel", id="bare @channel"),
        pytest.param("@here!", "@\u2060here!", id="bare @here"),
        pytest.param(
            "mail me@herbert.example", "mail me@herbert.example", id="not a broadcast word"
        ),
    ],
)
def test_escape(raw, escaped):
    """Slack's three entities are encoded and broadcast words get a word joiner after the @."""
    assert escape(raw) == escaped


def test_backticks_in_samples_cannot_close_the_code_block():
    """A sample full of backticks cannot end the code block and inject mrkdwn after it."""
    events = log_events(3, message="``` <!channel> *bold* ``` {i}")
    samples = section_texts(action().build(events)[0])[1]
    inner = samples.removeprefix("```").removesuffix("```")
    assert "`" not in inner
    assert "<!channel>" not in samples


# ---------------------------------------------------------------- templates
def test_template_placeholders():
    """`{tag} {message} {record.user} {count}` and friends are filled from the first event."""
    events = log_events(3, message="payment failed {i}", user="alice", level="ERROR")
    blocks, _ = action(
        text="{tag} {message} {record.user} {count} {rule} {level} {time} {id}"
    ).build(events)
    assert section_texts(blocks)[0] == (
        "aws.lambda.checkout-api payment failed 0 alice 3 computer-alerts ERROR "
        "2026-11-26T10:07:01.000Z ev-000000"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{record.nope}", "-", id="missing record field"),
        pytest.param("{nope}", "-", id="unknown name"),
        pytest.param("{record.http.status}", "200", id="nested field"),
        pytest.param("{http.status}", "200", id="nested without record."),
        pytest.param("{record.http.nope.deeper}", "-", id="missing nested"),
        pytest.param("{record.message.upper}", "-", id="no attribute access"),
        pytest.param("{message.__class__}", "-", id="no dunder access"),
        pytest.param("{record.nothing}", "-", id="null field"),
        pytest.param("{record.amount}", "42.5", id="number"),
        pytest.param("{0} {} {", "- {} {", id="format syntax is not special"),
        pytest.param("{record.http}", "{'status': 200}", id="object as text"),
    ],
)
def test_template_missing_fields_render_a_dash(template, expected):
    """Missing fields render `-`, odd placeholders never raise and never reach object internals."""
    ev = log_event("m", http={"status": 200}, nothing=None, amount=42.5)
    assert render(template, ev, {}, escape) == expected


def test_template_values_from_log_text_are_escaped():
    """What a template pulls from the event is escaped; the template's own text is not."""
    ev = log_event("<!channel>", user="<@U999>")
    assert (
        render("*{message}* by {record.user}", ev, {}, escape)
        == "*&lt;!channel&gt;* by &lt;@U999&gt;"
    )


# ---------------------------------------------------------------- delivery (no network)
class FakeClient:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def chat_postMessage(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        if self.error:
            raise self.error
        return {"ok": True}


class FakeSlack:
    """An action context whose shared Slack connection hands out `answer` (or raises it)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.refreshes = 0

    def shared(self, key: str, build: Any) -> Any:
        assert key == "slack"
        return self

    def client(self, *, refresh: bool = False) -> Any:
        self.refreshes += refresh
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_deliver_posts_blocks_with_parsing_off():
    """chat.postMessage gets channel, blocks and fallback text, with link names and parsing off."""
    client = FakeClient()
    act = SlackAction("r1", {"channel": "#ops"}, FakeSlack(client))
    assert act.deliver(Delivery(log_events(2), Invocation("inv"))) == 1
    (call,) = client.calls
    assert call["channel"] == "#ops"
    assert call["link_names"] is False
    assert call["parse"] == "none"
    assert call["unfurl_links"] is False and call["unfurl_media"] is False
    assert call["blocks"][0]["type"] == "header"
    assert call["text"].startswith("[INFO] r1: 2 event(s)")


def test_slack_api_error_becomes_an_action_error():
    """An error answer from Slack is an ActionError naming the API error."""
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    resp = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="x",
        req_args={},
        data={"ok": False, "error": "channel_not_found"},
        headers={},
        status_code=200,
    )
    act = SlackAction("r1", {"channel": "#nope"}, FakeSlack(FakeClient(SlackApiError("x", resp))))
    with pytest.raises(ActionError) as info:
        act.deliver(Delivery(log_events(1), Invocation("inv")))
    assert str(info.value) == "slack: chat.postMessage: channel_not_found"
    assert info.value.retryable is False


def test_connection_error_becomes_a_retryable_action_error():
    """A network failure is a retryable ActionError."""
    act = SlackAction(
        "r1", {"channel": "#ops"}, FakeSlack(FakeClient(ConnectionRefusedError(111, "refused")))
    )
    with pytest.raises(ActionError) as info:
        act.deliver(Delivery(log_events(1), Invocation("inv")))
    assert info.value.retryable is True
    assert "ConnectionRefusedError" in str(info.value)


def test_token_that_cannot_be_read_becomes_an_action_error():
    """A missing or unreadable token secret is an ActionError (alert dead-lettered), not a crash."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    act = SlackAction(
        "r1", {"channel": "#ops"}, FakeSlack(GetParameterError("ResourceNotFoundException"))
    )
    with pytest.raises(ActionError) as info:
        act.deliver(Delivery(log_events(1), Invocation("inv")))
    assert "ResourceNotFoundException" in str(info.value)


class RotatedTokenClient:
    """Refuses the first post with invalid_auth (a token rotated under us), then accepts."""

    def __init__(self) -> None:
        self.calls = 0

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError

        self.calls += 1
        if self.calls == 1:
            raise SlackApiError("invalid_auth", {"ok": False, "error": "invalid_auth"})
        return {"ok": True}


def test_rejected_token_is_refetched_once_and_the_alert_goes_out():
    """invalid_auth makes the action refetch the token and post again, once."""
    client = RotatedTokenClient()
    rt = FakeSlack(client)
    act = SlackAction("r1", {"channel": "#ops"}, rt)
    assert act.deliver(Delivery(log_events(1), Invocation("inv"))) == 1
    assert (client.calls, rt.refreshes) == (2, 1)


class WebhookServer:
    """A loopback incoming-webhook endpoint answering the statuses it is given."""

    def __init__(self, statuses: list[int]) -> None:
        import http.server
        import threading

        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append(json.loads(self.rfile.read(n)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T/B/X"

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.parametrize(
    ("statuses", "delivered"),
    [
        pytest.param([], True, id="accepted"),
        pytest.param([500, 500, 500], False, id="500 past the retries"),
        pytest.param([404], False, id="webhook revoked"),
    ],
)
def test_incoming_webhook_from_the_secret(aws, runtime, statuses, delivered):
    """A secret holding {"webhook_url": ...} posts Block Kit through the webhook; an HTTP
    error (which WebhookClient does not raise) becomes an ActionError for the DLQ."""
    server = WebhookServer(list(statuses))
    # The endpoint is on loopback: allowed only by the local stack's explicit setting.
    runtime._settings = replace(runtime.settings, allow_loopback_urls=True)
    try:
        aws.secretsmanager.put_secret_value(
            SecretId=runtime.settings.slack_secret,
            SecretString=json.dumps({"webhook_url": server.url}),
        )
        act = SlackAction("r1", {"channel": "#ops"}, runtime.services)
        if delivered:
            assert act.deliver(Delivery(log_events(2), Invocation("inv"))) == 1
            assert server.bodies[0]["blocks"][0]["type"] == "header"
        else:
            with pytest.raises(ActionError) as e:
                act.deliver(Delivery(log_events(2), Invocation("inv")))
            assert "webhook: HTTP" in str(e.value)
    finally:
        server.close()
