"""Checks written as `head(x+)tail` plus a length count answer exactly as the counted RE2
patterns they replace (`x{1,N}`), on every side of each bound: empty, N-1, N and N+1
repetitions, with multibyte characters at the bound, characters outside the class, and
heads and tails that only some strings carry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import re2

from chalicelib.actions import slack, sns
from chalicelib.actions.forward import firehose, kinesis
from chalicelib.bounded import Bounded
from chalicelib.rules import inputs, schema, tags


def _accepts(check: Callable[[str], str | None]) -> Callable[[str], bool]:
    return lambda v: check(v) is None


# (name, the check as written now, the counted pattern it replaces, bound, a character
# of the class, characters outside it, heads, tails)
CASES: list[tuple[str, Callable[[str], Any], str, int, str, str, list[str], list[str]]] = [
    (
        "tag pattern",
        tags._TAG_PATTERN.fullmatch,
        r"[A-Za-z0-9_.*{},#@:$-]{1,512}",
        512,
        "a",
        " /\n\u00e9",
        [""],
        [""],
    ),
    (
        "input tag",
        inputs._TAG.fullmatch,
        r"[A-Za-z0-9_.:@#$-]{1,256}",
        256,
        "Z",
        "*{ \t",
        [""],
        [""],
    ),
    ("rule id", schema._ID.fullmatch, r"[A-Za-z0-9_.-]{1,128}", 128, "9", ":@\u0661", [""], [""]),
    (
        "slack channel",
        _accepts(slack._check_channel),
        r"[#@]?[A-Za-z0-9_.-]{1,80}",
        80,
        "x",
        "#@ ",
        ["", "#", "@", "##"],
        [""],
    ),
    (
        "slack url",
        _accepts(slack._check_url),
        r"https?://[^\s<>|]{1,1000}",
        1000,
        "\u00e9",
        " <>|\n",
        ["", "http://", "https://", "https:/", "ftp://", "http://https://"],
        ["", "://x", "/\u4e2d"],
    ),
    (
        "sns topic",
        _accepts(sns._check_topic),
        r"(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:)?[A-Za-z0-9_-]{1,256}(\.fifo)?",
        256,
        "_",
        ".: ",
        ["", "arn:aws:sns:us-east-1:123456789012:", "arn:aws-cn:sns:x:12345678901:", ":"],
        ["", ".fifo", ".fifo.fifo", "fifo"],
    ),
    (
        "kinesis stream",
        _accepts(kinesis._check_stream),
        r"[a-zA-Z0-9_.-]{1,128}|arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/[a-zA-Z0-9_.-]{1,128}",
        128,
        ".",
        "/: ",
        ["", "arn:aws:kinesis:eu-west-1:123456789012:stream/", "arn:aws:kinesis:x:1:stream/"],
        [""],
    ),
    (
        "firehose stream",
        _accepts(firehose._check_delivery_stream),
        r"[a-zA-Z0-9_.-]{1,64}",
        64,
        "-",
        "/ ",
        [""],
        [""],
    ),
]


def _strings(most: int, good: str, bad: str, heads: list[str], tails: list[str]) -> list[str]:
    bodies = [good * n for n in (0, 1, 2, most - 1, most, most + 1, 2 * most)]
    bodies += ["a" * (most - 1) + good, "a" * most + good, good + "a" * most]
    bodies += [good * k + b + good * k for b in bad for k in (0, 1, most // 2)]
    return [h + b + t for h in heads for b in bodies for t in tails]


@pytest.mark.parametrize(
    ("check", "counted", "most", "good", "bad", "heads", "tails"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_check_agrees_with_the_counted_pattern(
    check: Callable[[str], Any],
    counted: str,
    most: int,
    good: str,
    bad: str,
    heads: list[str],
    tails: list[str],
) -> None:
    """Every string around the bound is accepted exactly when the counted pattern
    fullmatches it."""
    pattern = re2.compile(counted)
    for s in _strings(most, good, bad, heads, tails):
        assert bool(check(s)) == bool(pattern.fullmatch(s)), (len(s), s[:80])


TEMPLATES = [
    "",
    "a",
    "{service}",
    "app.{service}.{level}",
    "{a}" * 256,
    "{a}" * 257,
    "x" * 255 + "{f}",
    "x" * 256 + "{f}",
    "x" * 256,
    "x" * 257,
    "{}",
    "{a",
    "a}",
    "{a{b}}",
    "{a}}",
    "{ab@.-}" + "." * 255,
    "{" + "f" * 600 + "}",
    "a b",
]


@pytest.mark.parametrize("tag", TEMPLATES, ids=range(len(TEMPLATES)))
def test_rewrite_tag_template_agrees_with_the_counted_pattern(tag: str) -> None:
    """A `rewrite_tag` template is accepted exactly when the counted pattern of 1-256
    parts (a character or a `{field}`) fullmatches it."""
    counted = re2.compile(r"(?:[A-Za-z0-9_.-]|\{[A-Za-z0-9_@.-]+\}){1,256}")
    assert schema._tag_template(tag) == bool(counted.fullmatch(tag))


def test_the_group_is_the_repetition_whatever_head_and_tail_capture() -> None:
    """Groups in `head` or `tail` do not change what is counted."""
    b = Bounded("[a-d]", 3, head="(x)?", tail="(y)?")
    assert [b.fullmatch(s) for s in ("abc", "xabcy", "abcd", "xy", "xabcdy")] == [
        True,
        True,
        False,
        False,
        False,
    ]
