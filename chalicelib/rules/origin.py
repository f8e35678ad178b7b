"""`match.account` and `match.region`: rules that select events by where they came from.

    accounts:                         # aliases, declared once in the rules file
      shop-prod: "111111111111"
      shop-staging: "222222222222"
    rules:
      - id: prod-errors
        match:
          tag: "aws.lambda.**"
          account: [shop-prod, "3333*"]   # ids, aliases, or patterns (* any digits)
          region: "eu-*"                  # names or patterns
          where: [{field: level, equals: ERROR}]

Each becomes one ordinary condition (chalicelib/rules/conditions.py) over the event's
`source`: `in` for names, one anchored RE2 `regex` when a pattern is among them, so
every path that evaluates conditions evaluates these the same way. Aliases are resolved
when the file is validated; an unknown alias is an error, not a rule that never matches.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

import re2

_ALIAS_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
_REGION_CHARS = frozenset(string.ascii_lowercase + string.digits + "*-")

Err = Callable[[str, str], None]


def load_aliases(section: Any, err: Err) -> dict[str, str]:
    """The `accounts:` section (alias -> 12-digit id), validated."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        err("accounts", "must be a mapping of alias: account id")
        return {}
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for alias, acct in section.items():
        where = f"accounts.{alias}"
        if not _is_alias(alias):
            err(where, "alias: a letter, then up to 63 of A-Z a-z 0-9 _ . -")
            continue
        if not is_account(acct):
            err(where, f"must be a 12-digit account id in quotes, not {acct!r}")
            continue
        if acct in seen:
            err(where, f"account {acct} already has the alias {seen[acct]!r}")
            continue
        seen[acct] = alias
        out[alias] = acct
    return out


def names_by_account(section: Any) -> dict[str, str]:
    """account id -> alias, from a validated `accounts:` section."""
    if not isinstance(section, Mapping):
        return {}
    return {str(v): str(k) for k, v in section.items()}


def condition(key: str, spec: Any, aliases: Mapping[str, str], err: Err) -> dict[str, Any] | None:
    """`match.<key>` (account or region) as one condition over the source, or None
    after reporting what is wrong."""
    path = f"match.{key}"
    items = spec if isinstance(spec, list) else [spec]
    if not items or isinstance(spec, dict):
        err(path, "must be a name or a non-empty list of names and patterns")
        return None
    names: list[str] = []
    patterns: list[str] = []
    ok = True
    for item in items:
        if not isinstance(item, str):
            err(path, f"{item!r}: must be text (quote account ids)")
            ok = False
            continue
        value = _resolve(key, item, aliases, err)
        if value is None:
            ok = False
        elif "*" in value:
            patterns.append(value)
        else:
            names.append(value)
    if not ok:
        return None
    if not patterns:
        return {"field": key, "in": sorted(set(names))}
    alts = [re2.escape(n) for n in sorted(set(names))]
    alts += [".*".join(re2.escape(part) for part in p.split("*")) for p in patterns]
    return {"field": key, "regex": "^(?:" + "|".join(alts) + ")$"}


def _resolve(key: str, item: str, aliases: Mapping[str, str], err: Err) -> str | None:
    path = f"match.{key}"
    if key == "region":
        if not 0 < len(item) <= 32 or not set(item) <= _REGION_CHARS:
            err(path, f"{item!r}: a region name (eu-west-1) or pattern (eu-*)")
            return None
        return item
    if is_account(item) or ("*" in item and len(item) <= 12 and set(item) <= set("0123456789*")):
        return item
    if item in aliases:
        return aliases[item]
    if item.isdigit():
        err(path, f"{item!r}: an account id has 12 digits")
    else:
        known = ", ".join(sorted(aliases)) or "none declared"
        err(path, f"{item!r}: not an account id, pattern or alias in `accounts:` ({known})")
    return None


def is_account(value: object) -> bool:
    """A 12-digit AWS account id (as text: YAML would read 012345678901 as a number)."""
    return isinstance(value, str) and len(value) == 12 and value.isascii() and value.isdigit()


def _is_alias(value: object) -> bool:
    """A letter, then up to 63 of A-Z a-z 0-9 _ . -"""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and value[0].isascii()
        and value[0].isalpha()
        and set(value) <= _ALIAS_CHARS
    )
