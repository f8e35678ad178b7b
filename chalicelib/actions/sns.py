"""SNS alerts: one publish per rule per invocation, readable in email and pagers."""

from __future__ import annotations

from typing import Any, ClassVar

import re2

from chalicelib import org
from chalicelib.actions.base import AlertAction, Option, register
from chalicelib.actions.context import Delivery
from chalicelib.actions.prepared import prepared_client
from chalicelib.bounded import Bounded
from chalicelib.errors import ActionError
from chalicelib.event import LogEvent, format_time, in_time_order
from chalicelib.invocation import Invocation
from chalicelib.template import clip, render, severity

MAX_LINES = 20
# The first line renders the whole message (up to 256 KB, up to 4 bytes a character):
# cut it so the summary and event lines always fit SNS's 256 KiB (bytes, not characters).
FIRST_LINE_CHARS = 4000
# SNS subjects: ASCII, no line breaks, under 100 characters.
_NOT_SUBJECT = re2.compile(r"[^\x20-\x7e]")
_TOPIC = Bounded(
    r"[A-Za-z0-9_-]", 256, head=r"(?:arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:)?", tail=r"(?:\.fifo)?"
)


def _check_topic(v: str) -> str | None:
    return None if _TOPIC.fullmatch(v) else "a topic name or ARN"


def _plain(s: str) -> str:
    return s


@register
class SnsAction(AlertAction):
    name = "sns"
    options: ClassVar[dict[str, Option]] = {
        "topic": Option(
            str,
            "topic name (in the function's account and region) or ARN",
            required=True,
            check=_check_topic,
        ),
        "subject": Option(
            str,
            "subject template (cut to 99 ASCII characters)",
            default="[{level}] {rule}: {count} event(s) on {tag}",
        ),
        "text": Option(str, "first line template", default="{tag}: {message}"),
    }

    def topic_arn(self, inv: Invocation) -> str:
        t = self.opts["topic"]
        return t if t.startswith("arn:") else f"arn:aws:sns:{inv.region}:{inv.account}:{t}"

    def preview(self, events: list[LogEvent]) -> str:
        """Subject and first line as subscribers would receive them."""
        subject, message, _ = self.build(events)
        return f"{self.opts['topic']}: {subject} | {message.splitlines()[0]}"

    def build(
        self, events: list[LogEvent], note: str | None = None
    ) -> tuple[str, str, dict[str, Any]]:
        events = in_time_order(events)  # First/Last: earliest and latest; lines in time order
        first = events[0]
        level = severity(events)
        extra = {"count": len(events), "rule": self.rule_id, "level": level}
        subject = _NOT_SUBJECT.sub("?", render(self.opts["subject"], first, extra, _plain))
        # SNS refuses an empty subject or one starting with a space.
        subject = clip(subject.strip(), 99).replace("…", "~") or f"Sluice alert: {self.rule_id}"
        lines = [clip(render(self.opts["text"], first, extra, _plain), FIRST_LINE_CHARS), ""]
        lines.append(f"Rule: {self.rule_id}   Events: {len(events)}   Level: {level}")
        lines.append(f"First: {format_time(first.time)}   Last: {format_time(events[-1].time)}")
        where = org.origin_label(first.source)
        if where:
            lines.append(f"Origin: {clip(where, 200)}")
        if note:
            lines.append(note)
        lines.append("")
        for ev in events[:MAX_LINES]:
            lines.append(
                f"{format_time(ev.time)} {ev.tag} {clip(str(ev.record.get('message', '')), 400)}"
            )
        if len(events) > MAX_LINES:
            lines.append(f"... and {len(events) - MAX_LINES} more")
        attrs = {
            "rule": {"DataType": "String", "StringValue": self.rule_id},
            "severity": {"DataType": "String", "StringValue": clip(level, 64) or "INFO"},
            "tag": {"DataType": "String", "StringValue": clip(first.tag, 256)},
        }
        return subject, "\n".join(lines), attrs

    def deliver(self, batch: Delivery) -> int:
        subject, message, attrs = self.build(batch.events, batch.note)
        try:
            prepared_client(self.ctx.client("sns")).publish(
                TopicArn=self.topic_arn(batch.invocation),
                Subject=subject,
                Message=message[:250_000],
                MessageAttributes=attrs,
            )
        except Exception as e:  # botocore ClientError / connection errors, already retried
            raise ActionError("sns", f"publish: {type(e).__name__}: {e}", retryable=True) from e
        return 1
