"""Slack's size limits hold for any log text, and the local endpoint enforces them.

Slack refuses a message whose blocks break Block Kit's limits (`invalid_blocks`): at most
50 blocks; a section's text at most 3,000 characters; at most 10 fields of at most 2,000
each; a header's plain_text at most 150; a context block at most 10 elements, each text
at most 3,000; and `msg_too_long` for a top-level text over 40,000 characters. A refused
alert is dead-lettered and fails again on every replay, so every text Sluice puts in a
block is clipped to these limits after escaping, and clipping never cuts an entity
(`&amp;`, `&lt;`, `&gt;`) or a link in half. The local Slack endpoint answers like Slack
does, so the suite sees what production would (it once accepted a 2,408-character level
in a field that Slack refused).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.handlers import handle_cloudwatch_logs
from sluice_cli.slack_server import SlackServer

from .harness import SLACK_TOKEN, Account, load_make, mocked_account

make = load_make()
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


# ---------------------------------------------------------------- the local endpoint
def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def fields(*texts: str) -> dict[str, Any]:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": t} for t in texts]}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackServer]:
    with SlackServer(SLACK_TOKEN) as server:
        yield server


def post(server: SlackServer, text: str, blocks: list[dict[str, Any]] | None) -> dict[str, Any]:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=SLACK_TOKEN, base_url=server.url, timeout=5, retry_handlers=[])
    try:
        return dict(client.chat_postMessage(channel="#ops", text=text, blocks=blocks).data)  # type: ignore[arg-type]
    except SlackApiError as e:
        return dict(e.response.data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "blocks", "error"),
    [
        pytest.param("t", [section("x")] * 51, "invalid_blocks", id="51 blocks"),
        pytest.param("t", [section("x" * 3001)], "invalid_blocks", id="section text 3001"),
        pytest.param("t", [fields("x" * 2001)], "invalid_blocks", id="field 2001"),
        pytest.param("t", [fields(*["x"] * 11)], "invalid_blocks", id="11 fields"),
        pytest.param("t", [header("x" * 151)], "invalid_blocks", id="header 151"),
        pytest.param(
            "t",
            [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}],
            "invalid_blocks",
            id="mrkdwn header",
        ),
        pytest.param("t", [context(*["x"] * 11)], "invalid_blocks", id="11 context elements"),
        pytest.param("t", [context("x" * 3001)], "invalid_blocks", id="context text 3001"),
        pytest.param(
            "t", [{"type": "context", "elements": []}], "invalid_blocks", id="empty context"
        ),
        pytest.param("t", [{"type": "section"}], "invalid_blocks", id="section without text"),
        pytest.param("t", [section("")], "invalid_blocks", id="empty section text"),
        pytest.param("x" * 40_001, None, "msg_too_long", id="text 40001"),
    ],
)
def test_local_endpoint_refuses_what_slack_refuses(
    slack: SlackServer, text: str, blocks: Any, error: str
) -> None:
    """Each message past one of Slack's documented limits gets Slack's own error, with the
    place at fault for invalid_blocks, and is not recorded."""
    before = len(slack.messages())
    answer = post(slack, text, blocks)
    assert (answer["ok"], answer["error"]) == (False, error)
    if error == "invalid_blocks":
        assert "[json-pointer:/blocks" in answer["errors"][0]
    assert len(slack.messages()) == before


@pytest.mark.parametrize(
    ("text", "blocks"),
    [
        pytest.param("t", [section("x")] * 50, id="50 blocks"),
        pytest.param("t", [section("x" * 3000)], id="section text 3000"),
        pytest.param("t", [fields(*["x" * 2000] * 10)], id="10 fields of 2000"),
        pytest.param("t", [header("x" * 150)], id="header 150"),
        pytest.param("t", [context(*["x" * 3000] * 10)], id="10 context elements"),
        pytest.param("x" * 40_000, None, id="text 40000"),
    ],
)
def test_local_endpoint_accepts_messages_at_the_limits(
    slack: SlackServer, text: str, blocks: Any
) -> None:
    """A message exactly at every limit is accepted."""
    assert post(slack, text, blocks)["ok"] is True


# ---------------------------------------------------------------- Sluice's alerts
RULES = {
    "rules": [
        {
            "id": "limits",
            "match": {
                "tag": "aws.lambda.limits*",
                "where": [{"field": "message", "regex": "^ALERT"}],
            },
            "actions": [
                {
                    "slack": {
                        "channel": "#ops",
                        "text": "{level} {tag}: {message} {record.detail}",
                        "runbook": "https://wiki.example/" + "r" * 900,
                    }
                }
            ],
        }
    ]
}


def record(message: str, **fields: Any) -> str:
    return orjson.dumps({"message": message, **fields}).decode()


# (id, messages) with every size and escaping hazard a block can meet
CASES: list[Any] = [
    pytest.param([record("ALERT x", level="E" * 2408)], id="a 2,408-character level"),
    pytest.param([record("ALERT x", level="&" * 2408)], id="a level of ampersands"),
    pytest.param([record("ALERT x", level="*_~`" * 800)], id="a level of formatting marks"),
    pytest.param(["ALERT " + "&<>" * 20_000], id="a headline of entities"),
    pytest.param([record("ALERT x", detail="d" * 5000)], id="a huge templated field"),
    *[
        # "a&" escapes to a 6-character period: one of 6 shifts puts an entity at any cut.
        pytest.param(["ALERT " + "b" * n + "a&" * 3000], id=f"an entity at the cut, shift {n}")
        for n in range(6)
    ],
    pytest.param(["ALERT " + "&" * 1000] * 7, id="samples of ampersands"),
    *[
        pytest.param(["ALERT " + "b" * n + "<" * 600] * 2, id=f"samples cut at an entity {n}")
        for n in range(0, 5)
    ],
    pytest.param(["ALERT ```" + "`" * 5000] * 3, id="samples of backticks"),
    pytest.param(["ALERT " + "\U0001f525" * 4000], id="astral characters"),
]


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Account, SlackServer]]:
    with mocked_account() as acct, SlackServer(SLACK_TOKEN) as server:
        settings = dataclasses.replace(acct.runtime.settings, slack_api_url=server.url)
        acct.runtime = type(acct.runtime)(settings, acct.runtime.clients)
        acct.apply_rules(RULES)
        yield acct, server


def all_texts(msg: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(where, text, limit) of every escaped text in a message (a header is plain_text,
    shown as written: nothing in it is markup)."""
    out = [("text", msg["text"], 40_000)]
    for i, b in enumerate(msg["blocks"]):
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        elif isinstance(b.get("text"), dict):
            out.append((f"{i}.text", b["text"]["text"], 3000))
        out.extend((f"{i}.field", f["text"], 2000) for f in b.get("fields", []))
        out.extend((f"{i}.element", e["text"], 3000) for e in b.get("elements", []))
    return out


@pytest.mark.parametrize("messages", CASES)
def test_alert_fits_slack_whatever_the_log_text(
    setup: tuple[Account, SlackServer], messages: list[str], request: pytest.FixtureRequest
) -> None:
    """The alert is accepted (not dead-lettered), every text within its limit, no entity or
    link cut in half, fences balanced; the events are archived whole."""
    account, server = setup
    n = request.node.callspec.indices["messages"]
    events = make.log_events(messages, t0=make.T0 + n * 100_000)
    for i, ev in enumerate(events):
        ev["id"] = f"limits-{n}-{i}"
    server.reset()
    got = account.run(
        handle_cloudwatch_logs, make.cloudwatch_event(group=f"/aws/lambda/limits{n}", events=events)
    )
    assert got.dead_letters == [], got.dead_letters[:1]
    assert got.ledger == (len(messages), len(messages), 0, 0)
    assert sorted(line["record"]["message"] for line in got.lines) == sorted(
        orjson.loads(m)["message"] if m.startswith("{") else m for m in messages
    )
    (msg,) = server.messages()
    assert len(msg["blocks"]) <= 50
    for where, text, limit in all_texts(msg):
        assert len(text) <= limit, (where, len(text))
        assert text.count("<") == text.count(">"), (where, text[-60:])
        outside_links = re.sub(r"<[^<>]*>", "", text)  # Sluice's own links hold URLs
        assert not BROKEN_ENTITY.search(outside_links), (where, text[-40:])
    for b in msg["blocks"]:
        t = b.get("text", {}).get("text", "")
        if t.startswith("```"):
            assert t.count("```") == 2 and "```" in t[-len("```") - 40 :]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("a&b<c>d" * 50, id="entities"),
        pytest.param("*bold* _it_ ~s~ `c`" * 20, id="defused marks"),
        pytest.param("x <https://wiki.example/a|Runbook> y " * 10, id="links"),
        pytest.param("\U0001f525&" * 60, id="astral and entities"),
    ],
)
def test_clip_never_cuts_an_entity_a_link_or_a_defused_mark(raw: str) -> None:
    """At every limit, the clipped text fits, ends in an ellipsis, and holds only whole
    entities, whole links and marks still followed by their word joiner."""
    from chalicelib.actions.slack import escape_mrkdwn
    from chalicelib.actions.slack_limits import WORD_JOINER, clip_escaped

    links = "https://" in raw
    text = raw if links else escape_mrkdwn(raw)
    for limit in range(1, len(text) + 2):
        got = clip_escaped(text, limit)
        assert len(got) <= limit
        if len(text) <= limit:
            assert got == text
            continue
        body = got.removesuffix("…")
        assert text.startswith(body)
        assert not BROKEN_ENTITY.search(re.sub(r"<[^<>]*>", "", body))
        assert body.count("<") == body.count(">")
        if body and body[-1] in "*_~`" and not links:
            assert text[len(body)] != WORD_JOINER
