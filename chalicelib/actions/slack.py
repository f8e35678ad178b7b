"""Slack alerts through `chat.postMessage` with Block Kit.

One message per rule and channel per invocation: a single event is shown whole,
several are summarised (count, earliest and latest time, a few samples in time
order). Log text is untrusted, so everything taken from an event goes through
`escape`: `&`, `<`, `>` are entity-encoded (Slack's own rule, which defuses
`<!channel>`, `<@U…>` and `<http…|…>`), bare `@channel`/`@here`/`@everyone` get
a word joiner, and samples sit in code blocks whose backticks are replaced so
they cannot close the block. `link_names` is off and `parse` is `none`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import re2

from chalicelib import org
from chalicelib.actions.base import AlertAction, Option, register
from chalicelib.actions.context import Delivery
from chalicelib.actions.slack_limits import TEXT_OBJECT, clip_escaped, fit_message
from chalicelib.bounded import Bounded
from chalicelib.errors import ActionError
from chalicelib.event import LogEvent, format_time, in_time_order
from chalicelib.template import clip, render, severity

MAX_SAMPLES = 5
SAMPLE_CHARS = 500
SECTION_CHARS = 2900  # Block Kit: 3000 characters per section text (slack_limits.py)
LEVEL_CHARS = 100  # a level is a word; a longer one is log text, shown cut
TAGS_CHARS = 1000  # of a field's 2000
SOURCE_CHARS = 600
LINK_CHARS = 1500  # a longer archive link is left out rather than cut
_AUTH_ERRORS = ("invalid_auth", "token_revoked", "token_expired", "not_authed")
_BROADCAST = re2.compile(r"(?i)@(channel|here|everyone)\b")


def _defuse(m: Any) -> str:
    # A word joiner after the @ keeps Slack from reading a broadcast (a callable: RE2's
    # string replacements mangle non-ASCII text).
    return "@\u2060" + m.group(1)


def escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "@" in text:
        text = _BROADCAST.sub(_defuse, text)
    return text


_MARKS = str.maketrans({c: c + "\u2060" for c in "*_~`"})


def escape_mrkdwn(text: str) -> str:
    """`escape`, and Slack's formatting marks (`*_~` and backticks) followed by a word
    joiner so log text shows as written instead of turning bold or into code."""
    return escape(text).translate(_MARKS)


def code_block(text: str, limit: int = SECTION_CHARS) -> str:
    """Escaped text in a code block of at most `limit` characters, cut inside the fences
    (escaping can grow text 5x, and a block cut through its closing fence stays open)."""
    return "```" + clip_escaped(escape(text).replace("`", "\u02cb"), limit - 6) + "```"


_CHANNEL = Bounded(r"[A-Za-z0-9_.-]", 80, head="[#@]?")
_URL = Bounded(r"[^\s<>|]", 1000, head="https?://")


def _check_channel(v: str) -> str | None:
    return None if _CHANNEL.fullmatch(v) else "a channel name (#ops) or id"


def _check_url(v: str) -> str | None:
    return None if _URL.fullmatch(v) else "an http(s) URL without spaces, <, > or |"


@register
class SlackAction(AlertAction):
    name = "slack"
    options: ClassVar[dict[str, Option]] = {
        "channel": Option(str, "channel name (#ops) or id", required=True, check=_check_channel),
        "text": Option(
            str,
            "message template: {tag} {time} {level} {message} {count} {rule} {record.field}",
            default="{tag}: {message}",
        ),
        "runbook": Option(str, "runbook URL shown as a link", check=_check_url),
        "title": Option(str, "header text (default: the rule id)"),
    }

    def deliver(self, batch: Delivery) -> int:
        from slack_sdk.errors import SlackApiError, SlackClientError

        blocks, text = self.build(batch.events, batch.note, batch.archive_url(batch.events[0]))
        # A rejected token is refetched once (the secret may have just rotated).
        for refresh in (False, True):
            client = self._client(refresh)
            if not hasattr(client, "chat_postMessage"):
                return self._send_webhook(client, text, blocks)
            try:
                client.chat_postMessage(
                    channel=self.opts["channel"],
                    text=text,
                    blocks=blocks,
                    link_names=False,
                    parse="none",
                    unfurl_links=False,
                    unfurl_media=False,
                )
                return 1
            except SlackApiError as e:
                err = e.response.get("error") if e.response is not None else str(e)
                if err in _AUTH_ERRORS and not refresh:
                    continue
                raise ActionError(
                    "slack",
                    f"chat.postMessage: {err}",
                    retryable=err in ("ratelimited", "service_unavailable", *_AUTH_ERRORS),
                ) from e
            except (SlackClientError, OSError) as e:
                raise ActionError(
                    "slack", f"chat.postMessage: {type(e).__name__}: {e}", retryable=True
                ) from e
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send_webhook(self, client: Any, text: str, blocks: list[dict[str, Any]]) -> int:
        """An incoming webhook posts to the channel it was made for. WebhookClient never
        raises on an HTTP error, so the status is checked here."""
        try:
            resp = client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except OSError as e:
            raise ActionError("slack", f"webhook: {type(e).__name__}: {e}", retryable=True) from e
        if resp.status_code != 200:
            raise ActionError(
                "slack",
                f"webhook: HTTP {resp.status_code}: {str(resp.body)[:200]}",
                retryable=resp.status_code == 429 or resp.status_code >= 500,
            )
        return 1

    def _client(self, refresh: bool) -> Any:
        # Imported when a message is first sent: checking a rule's options (at every cold
        # start's rules load) needs neither the client nor its URL policy.
        from chalicelib.actions.slack_client import connection

        try:
            return connection(self.ctx).client(refresh=refresh)
        except ActionError:
            raise
        except Exception as e:  # the token's secret missing or unreadable (GetParameterError)
            raise ActionError("slack", f"token: {type(e).__name__}: {e}", retryable=True) from e

    def preview(self, events: list[LogEvent]) -> str:
        """The message's text line as Slack would receive it (for `sluice rules test`)."""
        blocks, _ = self.build(events)
        return f"{self.opts['channel']}: {blocks[1]['text']['text']}"

    def build(
        self, events: list[LogEvent], note: str | None = None, archive_url: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Block Kit blocks and fallback text. Every text from an event is escaped first and
        clipped after (slack_limits.clip_escaped), then `fit_message` checks every limit."""
        # First and Last are the earliest and latest times, and samples read in time order.
        events = in_time_order(events)
        first, last = events[0], events[-1]
        count = len(events)
        level = clip(severity(events), LEVEL_CHARS)
        extra = {"count": count, "rule": self.rule_id, "level": first.record.get("level", level)}
        headline = clip_escaped(
            render(self.opts["text"], first, extra, escape_mrkdwn), SECTION_CHARS
        )
        title = self.opts.get("title") or self.rule_id
        tags = sorted({e.tag for e in events})
        header = f"{title}: {count} event{'s' if count != 1 else ''} · {level}"
        tag_text = clip_escaped(escape_mrkdwn(", ".join(tags)), TAGS_CHARS)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": clip(header, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Tag*\n{tag_text}"},
                    {"type": "mrkdwn", "text": f"*Level*\n{escape_mrkdwn(level)}"},
                    {"type": "mrkdwn", "text": f"*First*\n{format_time(first.time)}"},
                    {"type": "mrkdwn", "text": f"*Last*\n{format_time(last.time)}"},
                    *_origin_fields(first.source),
                ],
            },
        ]
        if count > 1:
            samples = events[:MAX_SAMPLES]
            body = "\n".join(clip(str(e.record.get("message", "")), SAMPLE_CHARS) for e in samples)
            more = f"\n…and {count - len(samples)} more" if count > len(samples) else ""
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": code_block(body, SECTION_CHARS - len(more)) + more,
                    },
                }
            )
        if note:
            noted = clip_escaped(escape_mrkdwn(note), TEXT_OBJECT - 100)
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": noted}]})
        source = str(first.source.get("log_group") or first.source.get("kind"))
        context = [
            f"rule `{clip_escaped(escape(self.rule_id), 200)}`",
            f"source {clip_escaped(escape(source), SOURCE_CHARS)}",
        ]
        console = org.console_url(first.source)
        if console and len(console) <= LINK_CHARS and not any(c in console for c in "<>| "):
            context.insert(0, f"<{console}|Console>")
        if (
            archive_url
            and len(archive_url) <= LINK_CHARS
            and not any(c in archive_url for c in "<>| ")
        ):
            context.insert(0, f"<{archive_url}|Archived>")
        if self.opts.get("runbook"):
            context.insert(0, f"<{self.opts['runbook']}|Runbook>")
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
        )
        fallback = clip(f"[{level}] {title}: {count} event(s) on {', '.join(tags)}", 300)
        return fit_message(blocks, escape(fallback))


def _origin_fields(source: dict[str, Any]) -> list[dict[str, str]]:
    """Account (alias and id) and region of the first event, when its source names them."""
    out = []
    acct, region = source.get("account"), source.get("region")
    if acct:
        name = source.get("account_name")
        who = f"{name} ({acct})" if name else str(acct)
        out.append(
            {"type": "mrkdwn", "text": f"*Account*\n{clip_escaped(escape_mrkdwn(who), 200)}"}
        )
    if region:
        out.append(
            {"type": "mrkdwn", "text": f"*Region*\n{clip_escaped(escape_mrkdwn(str(region)), 64)}"}
        )
    return out
