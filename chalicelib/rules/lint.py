"""Rules that are valid but almost certainly a mistake, reported as warnings.

A `drop` rule with no condition whose tag patterns match every tag discards every
event Sluice receives, archive included: `sluice rules apply` and `rules test` say so.
"""

from __future__ import annotations

from chalicelib.rules.schema import RuleDef
from chalicelib.rules.tags import expand_braces


def matches_every_tag(pattern: str) -> bool:
    """Whether a tag pattern matches every tag. A tag has at least one part, so an
    alternative of `**` parts with at most one `*` part matches them all (`**`, `**.*`);
    a literal, `a*`, a second `*`, or a lone `*` (one part exactly) fails some tag."""
    try:
        alternatives = expand_braces(pattern)
    except ValueError:
        return False
    for alt in alternatives:
        parts = alt.split(".")
        if "**" in parts and all(p in ("*", "**") for p in parts) and parts.count("*") <= 1:
            return True
    return False


def drops_everything(rule: RuleDef) -> bool:
    """An enabled rule with a `drop` action, no `where` condition and a tag pattern that
    matches every tag."""
    return (
        rule.enabled
        and not rule.where
        and any(a.name == "drop" for a in rule.actions)
        and any(matches_every_tag(t) for t in rule.tags)
    )


def warnings(rules: list[RuleDef]) -> list[str]:
    """One line per suspicious rule, naming it and what it does."""
    return [
        f"rule {r.id!r} drops every event: it matches every tag ({', '.join(r.tags)}) "
        "with no condition, so nothing is archived"
        for r in rules
        if drops_everything(r)
    ]
