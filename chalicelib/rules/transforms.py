"""Transforms: rename (with a policy for existing targets), templated set, redact,
truncate, sample, rewrite_tag.

Each is compiled once per rule set into a closure over a record (or an event, for
`rewrite_tag`). Redaction patterns are RE2 (linear time: log text is untrusted)
with a cheap literal or character test before each pattern where one exists.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import re2

from chalicelib.event import LogEvent
from chalicelib.template import lookup, pieces

REDACTED = "[REDACTED:{name}]"
# Distinct key names remembered per redactor (their redacted form); past it the memo restarts.
_KEY_CACHE = 4096


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(digits: str) -> bool:
    """Luhn-valid and starting like a payment card (2-6: Mastercard, Amex, Diners, JCB,
    Visa, Discover, UnionPay). The first digit rules out epoch-millisecond times
    (13 digits starting with 1 until 2033), a tenth of which pass Luhn."""
    return digits[:1] in ("2", "3", "4", "5", "6") and _luhn(digits)


def _card_within(text: str, mark: str) -> str:
    """A digit run that fails as a whole may still hold a card beside another number
    ("4111 1111 1111 1111 123": a card and its CVV, "qty 2 4111..."): redact the longest
    run of whole groups of 13-19 digits that passes."""
    parts = re2.split(r"([ -])", text)  # digit groups and single separators alternate
    groups = parts[0::2]
    best: tuple[int, int, int] | None = None
    for i in range(len(groups)):
        n = 0
        for j in range(i, len(groups)):
            n += len(groups[j])
            if n > 19:
                break
            if n >= 13 and (best is None or n > best[2]) and _card("".join(groups[i : j + 1])):
                best = (i, j, n)
    if best is None:
        return text
    return "".join(parts[: 2 * best[0]]) + mark + "".join(parts[2 * best[1] + 1 :])


# name -> (pattern, group holding the secret (0 = whole match), prefilter, extra check)
# The prefilter is a test that every match needs, far cheaper than the regex.
BUILTIN: dict[str, tuple[str, int, Callable[[str], bool] | None, Callable[[str], bool] | None]] = {
    "aws_access_key": (
        r"\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b",
        0,
        lambda s: "AKIA" in s or "ASIA" in s or "AIDA" in s or "AROA" in s,
        None,
    ),
    "aws_secret_key": (
        r"(?i)(aws_?secret_?access_?key|secret_?access_?key|aws_?secret)"
        r"([\"']?\s*[=:]\s*[\"']?)([A-Za-z0-9/+]{40})",
        3,
        lambda s: "ecret" in s or "ECRET" in s,
        None,
    ),
    "bearer": (
        r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]+=*)",
        1,
        lambda s: "earer" in s or "EARER" in s,
        None,
    ),
    "jwt": (
        r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+",
        0,
        lambda s: "eyJ" in s,
        None,
    ),
    "password": (
        r"(?i)\b(password|passwd|pwd|passphrase|api_?key|apikey|client_?secret|token)"
        r"([\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}]+)",
        3,
        lambda s: "=" in s or ":" in s,
        None,
    ),
    "email": (
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        0,
        lambda s: "@" in s,
        None,
    ),
    "card": (
        r"\b(?:\d[ -]?){12,18}\d\b",
        0,
        None,
        lambda m: _card(m.replace(" ", "").replace("-", "")),
    ),
    "ipv4": (
        r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
        0,
        lambda s: "." in s,
        None,
    ),
}


# Words that make a key name a secret's (the `password` text pattern's key names and
# more). A key names a secret when one of its words is, or ends with, one of these
# (`db_password`, `clientSecret`, `githubtoken`), or holds `api key` / `private key`:
# words, not substrings, so `tokens_used` or `max_tokens` (counts) stay readable.
_SECRET_WORDS = (
    "password",
    "passwords",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "apikey",
    "authorization",
    "privatekey",
    "credential",
    "credentials",
)
_SECRET_PAIRS = {("api", "key"), ("private", "key")}


def _words(key: str) -> list[str]:
    """`X-Api-Key` -> [x, api, key]; `clientSecret` -> [client, secret]; `DB_PWD` -> [db, pwd]."""
    words: list[str] = []
    cur: list[str] = []
    prev = ""
    for ch in key:
        if ch.isalnum():
            if cur and ch.isupper() and (prev.islower() or prev.isdigit()):
                words.append("".join(cur))
                cur = []
            cur.append(ch.lower())
        elif cur:
            words.append("".join(cur))
            cur = []
        prev = ch
    if cur:
        words.append("".join(cur))
    return words


def _sensitive(key: str) -> bool:
    words = _words(key)
    if any(w.endswith(_SECRET_WORDS) for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _options() -> Any:
    o = re2.Options()
    o.log_errors = False
    return o


class Redactor:
    """Replaces secrets in string values (recursively, or in the named fields only)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        names = spec.get("patterns", list(BUILTIN))
        self.subs: list[tuple[str, Any, int, Any, Any]] = []
        for name in names:
            pattern, group, pre, check = BUILTIN[name]
            self.subs.append((name, re2.compile(pattern, _options()), group, pre, check))
        for i, pattern in enumerate(spec.get("custom", [])):
            self.subs.append((f"custom{i + 1}", re2.compile(pattern, _options()), 0, None, None))
        self.fields = [f.split(".") for f in spec.get("fields", [])]
        self.replacement = spec.get("replacement", REDACTED)
        # With the `password` pattern on, a structured field named like a secret is
        # replaced whole, whatever its value looks like.
        self.key_mark = (
            self.replacement.replace("{name}", "password") if "password" in names else None
        )
        self._keys: dict[str, tuple[str, bool]] = {}

    def text(self, s: str) -> str:
        for name, rx, group, pre, check in self.subs:
            if pre is not None and not pre(s):
                continue
            mark = self.replacement.replace("{name}", name)

            def repl(
                m: Any, group: int = group, check: Any = check, mark: str = mark, name: str = name
            ) -> str:
                whole = m.group(0)
                if check is not None and not check(whole):
                    return _card_within(whole, mark) if name == "card" else whole
                if group == 0:
                    return mark
                start, end = m.start(group) - m.start(0), m.end(group) - m.start(0)
                return whole[:start] + mark + whole[end:]

            s = rx.sub(repl, s)
        return s

    def _key(self, key: str) -> tuple[str, bool]:
        """A key name with its secrets redacted, and whether it names a secret (cached:
        the same few keys recur in every event)."""
        hit = self._keys.get(key)
        if hit is None:
            if len(self._keys) >= _KEY_CACHE:  # hostile input can bring endless new keys
                self._keys.clear()
            hit = self._keys[key] = (self.text(key), self.key_mark is not None and _sensitive(key))
        return hit

    def value(self, v: Any) -> Any:
        """`v` with every secret replaced, at any depth (an explicit stack, no recursion
        limit: whatever a parser accepted is walked whole). Under a key named like a
        secret the value is replaced whole, whatever its type; key names are redacted
        like text."""
        if type(v) is str:
            return self.text(v)
        stack = [v]
        while stack:
            cur = stack.pop()
            if type(cur) is dict:
                renamed = False
                for k, x in cur.items():
                    if type(k) is str:
                        new, secret = self._key(k)
                        renamed = renamed or new != k
                        if secret:
                            cur[k] = self.key_mark
                            continue
                    if type(x) is str:
                        cur[k] = self.text(x)
                    elif type(x) is dict or type(x) is list:
                        stack.append(x)
                if renamed:
                    self._rename(cur)
            elif type(cur) is list:
                for i, x in enumerate(cur):
                    if type(x) is str:
                        cur[i] = self.text(x)
                    elif type(x) is dict or type(x) is list:
                        stack.append(x)
        return v

    def _rename(self, d: dict[Any, Any]) -> None:
        """Redacted key names in place, order kept; two keys redacted to the same name
        both stay (`name`, `name#2`, ...) so no value is lost."""
        items = list(d.items())
        d.clear()
        for k, x in items:
            name = self._key(k)[0] if type(k) is str else k
            if name in d:
                n = 2
                while f"{name}#{n}" in d:
                    n += 1
                name = f"{name}#{n}"
            d[name] = x

    def __call__(self, record: dict[str, Any]) -> None:
        if not self.fields:
            self.value(record)
            return
        for path in self.fields:
            cur: Any = record
            for k in path[:-1]:
                cur = cur.get(k) if type(cur) is dict else None
            if type(cur) is dict and path[-1] in cur:
                # A chosen field named like a secret is replaced whole, as it is when nested.
                if self.key_mark is not None and _sensitive(path[-1]):
                    cur[path[-1]] = self.key_mark
                else:
                    cur[path[-1]] = self.value(cur[path[-1]])


def compile_truncate(spec: dict[str, int]) -> Callable[[dict[str, Any]], None]:
    """Cap string fields at a length; note which fields were cut and their sizes."""
    items = list(spec.items())

    def apply(r: dict[str, Any]) -> None:
        for k, n in items:
            v = r.get(k)
            if type(v) is str and len(v) > n:
                r[k] = v[:n]
                cut = r.setdefault("truncated_fields", {})
                if type(cut) is dict:
                    cut[k] = len(v)

    return apply


def keep_sample(event_id: str, rate: int) -> bool:
    """Deterministic 1-in-`rate` by id: a retried invocation keeps the same events."""
    h = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % rate == 0


_FIELD = re2.compile(r"\{([A-Za-z0-9_@.-]+)\}")  # operator templates only


def compile_rewrite_tag(template: str) -> Callable[[LogEvent], str]:
    """`app.{record.service}.{tag}` -> the new tag; missing fields render `unknown`."""

    split = pieces(template, _FIELD)

    def render(ev: LogEvent) -> str:
        parts = list(split)
        for i in range(1, len(parts), 2):
            v = lookup(ev, parts[i], {})
            s = "unknown" if v is None else str(v)
            # A tag part from log content: keep it to tag characters. `{tag}` is a tag
            # already, so its dots stay (`svc.{tag}` keeps the original's parts).
            keep = "_-." if parts[i] == "tag" else "_-"
            parts[i] = "".join(c if c.isalnum() or c in keep else "_" for c in s)[:128] or "unknown"
        return "".join(parts)

    return render


# ---------------------------------------------------------------- rename and set
# What `rename` does when the target field already exists. `keep_both` (the default)
# loses nothing: the target keeps its value, the renamed value goes to `<target>_1`
# (or the first free `_2`, `_3`...); `overwrite` replaces it; `skip` leaves both fields
# as they were.
RENAME_CONFLICTS = ("keep_both", "overwrite", "skip")
_MAX_SUFFIX = 1000


def free_name(r: dict[str, Any], name: str) -> str:
    for i in range(1, _MAX_SUFFIX):
        candidate = f"{name}_{i}"
        if candidate not in r:
            return candidate
    return f"{name}_{len(r)}"  # beyond _999: a name no field of this size can hold yet


def compile_rename(
    pairs: dict[str, str], conflict: str = "keep_both"
) -> Callable[[dict[str, Any]], None] | None:
    items = [(old, new) for old, new in pairs.items() if old != new]
    if not items:
        return None

    def apply(r: dict[str, Any]) -> None:
        for old, new in items:
            if old not in r:
                continue
            if new in r:
                if conflict == "skip":
                    continue
                if conflict == "keep_both":
                    r[free_name(r, new)] = r.pop(old)
                    continue
            r[new] = r.pop(old)

    return apply


# `{tag}`, `{time}`, `{id}`, `{record.x}` / `{x}` (as alert templates), `{tag_parts[N]}`
# (Fluentd's, N from 0, negative from the end) and `{hostname}`. Operator-written text
# only; values from events are substituted, never evaluated.
_PLACEHOLDER = re2.compile(r"\{([A-Za-z0-9_@.-]+|tag_parts\[-?[0-9]+\])\}")
_BRACKETED = re2.compile(r"\{([^{}]*\[[^{}]*)\}")


def set_template_problem(value: Any) -> str | None:
    """Why a `set` value's template is invalid, or None."""
    if not isinstance(value, str):
        return None
    for m in _BRACKETED.finditer(value):
        if not _PLACEHOLDER.fullmatch(m.group(0)):
            return f"{{{m.group(1)}}}: an index is written {{tag_parts[N]}} with N an integer"
    return None


def is_template(value: Any) -> bool:
    return isinstance(value, str) and _PLACEHOLDER.search(value) is not None


def _resolve(ev: LogEvent, name: str) -> Any:
    if name.startswith("tag_parts["):
        parts = ev.tag.split(".")
        i = int(name[len("tag_parts[") : -1])
        return parts[i] if -len(parts) <= i < len(parts) else None
    if name == "hostname":
        return _hostname()
    return lookup(ev, name, {})


_HOST: list[str] = []


def _hostname() -> str:
    if not _HOST:
        import socket

        _HOST.append(socket.gethostname())
    return _HOST[0]


MISSING = "-"


def compile_set(values: dict[str, Any]) -> Callable[..., None]:
    """`set`: fixed values as given; a string with placeholders rendered per event. A value
    that is one placeholder alone copies the field (its type kept; nothing is set when it
    is missing); placeholders within text render missing fields as `-`. Templates are
    rendered against the record before any of this `set` is applied."""
    fixed = [(k, v) for k, v in values.items() if not is_template(v)]
    templated: list[tuple[str, str, bool]] = []
    for k, v in values.items():
        if is_template(v):
            whole = _PLACEHOLDER.fullmatch(v)
            templated.append((k, whole.group(1) if whole else v, whole is not None))

    def render(ev: LogEvent, template: str) -> str:
        parts = list(pieces(template, _PLACEHOLDER))
        for i in range(1, len(parts), 2):
            x = _resolve(ev, parts[i])
            parts[i] = MISSING if x is None else x if isinstance(x, str) else str(x)
        return "".join(parts)

    def apply(r: dict[str, Any], ev: LogEvent | None = None) -> None:
        rendered: list[tuple[str, Any]] = []
        if templated:
            if ev is None:
                view = LogEvent("", 0, r, {}, "")
            elif ev.record is r:
                view = ev
            else:  # the record being changed is the one templates read
                view = LogEvent(ev.tag, ev.time, r, ev.source, ev.id)
            for k, t, whole in templated:
                x = _resolve(view, t) if whole else render(view, t)
                if x is not None:
                    rendered.append((k, x))
        for k, v in fixed:
            r[k] = v
        for k, x in rendered:
            r[k] = x

    return apply
