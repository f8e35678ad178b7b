"""Slack's message size limits, and clipping that keeps escaped text intact.

Slack refuses a whole message (`invalid_blocks`) when one block breaks a Block Kit limit,
and a refused alert is dead-lettered and refused again on every replay. Limits as Slack
documents them (Block Kit reference: blocks, section, header, context; chat.postMessage):

| what | limit |
|---|---|
| blocks in a message | 50 |
| a section's text | 3,000 characters |
| a section's fields | 10, each at most 2,000 characters |
| a header's text (plain_text) | 150 characters |
| a context block's elements | 10, each text object at most 3,000 characters |
| the message's top-level `text` | 40,000 characters (`msg_too_long` past it) |

Limits count the text as sent, entities included, so text is escaped first and clipped
after, and `clip_escaped` never cuts an entity (`&amp;`, `&lt;`, `&gt;`), a link or
mention (`<...>`, which only Sluice writes: log text's `<` is always `&lt;`), or a
formatting mark from the word joiner that defuses it.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
TEXT_OBJECT = 3000
MESSAGE_TEXT = 40_000

ELLIPSIS = "…"
WORD_JOINER = "\u2060"
_MARKS = "*_~`"
_LONGEST_ENTITY = len("&amp;")


def clip_escaped(text: str, limit: int) -> str:
    """`text` (already escaped) in at most `limit` characters, an ellipsis marking a cut;
    an entity, link or defused mark at the cut goes whole rather than in half."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    amp = cut.rfind("&", max(len(cut) - _LONGEST_ENTITY + 1, 0))
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt > cut.rfind(">"):
        cut = cut[:lt]
    if cut and cut[-1] in _MARKS and text[len(cut)] == WORD_JOINER:
        cut = cut[:-1]
    if cut and "\ud800" <= cut[-1] <= "\udbff":  # half of a surrogate pair
        cut = cut[:-1]
    return cut + ELLIPSIS if limit >= len(ELLIPSIS) else cut


def _clip_text(obj: Any, limit: int) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return {**obj, "text": clip_escaped(obj["text"], limit)}
    return obj


def fit_block(block: dict[str, Any]) -> dict[str, Any]:
    """One block within its limits (texts clipped, lists cut to their maximum)."""
    kind = block.get("type")
    out = dict(block)
    if "text" in out:
        out["text"] = _clip_text(out["text"], HEADER_TEXT if kind == "header" else SECTION_TEXT)
    if isinstance(out.get("fields"), list):
        out["fields"] = [_clip_text(f, FIELD_TEXT) for f in out["fields"][:MAX_FIELDS]]
    if kind == "context" and isinstance(out.get("elements"), list):
        out["elements"] = [_clip_text(e, TEXT_OBJECT) for e in out["elements"][:CONTEXT_ELEMENTS]]
    return out


def fit_message(blocks: list[dict[str, Any]], text: str) -> tuple[list[dict[str, Any]], str]:
    """Blocks and fallback text within every limit above: the last check before sending,
    whatever built them."""
    return [fit_block(b) for b in blocks[:MAX_BLOCKS]], clip_escaped(text, MESSAGE_TEXT)
