"""What simulated applications say: the shipped corpus, plausible levels, ISO times.

Shared by the demo's apps (`simulate.py`), the profiles of `sluice simulate`
(`profiles.py`) and nothing else; it imports nothing of Sluice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus") / "messages.txt"

_BAD_WORDS = (
    "failed",
    "declined",
    "rejected",
    "timed out",
    "exhausted",
    "mismatch",
    "unreachable",
    "error",
    "exceeded",
    "offline",
    "alarm",
    "bounced",
    "locked",
    "deadlock",
    "killed",
)
_WARN_WORDS = ("retry", "slow", "above", "lag", "held", "expired", "gap", "cancelled", "flagged")


def load_corpus(path: Path = CORPUS) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def level_for(message: str) -> str:
    """A plausible level for a message: what an application would have logged."""
    low = message.lower()
    if any(w in low for w in _BAD_WORDS):
        return "error"
    if any(w in low for w in _WARN_WORDS):
        return "warn"
    return "info"


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
