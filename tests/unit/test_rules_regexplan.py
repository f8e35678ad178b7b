"""chalicelib.rules.regexplan: required literals and literal plans agree with RE2."""

from __future__ import annotations

import pytest
import re2
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from chalicelib.rules.conditions import compile_condition
from chalicelib.rules.regexplan import literal_plan, required_literal


def _assert_plan_agrees(pattern: str, text: str, truth: bool) -> None:
    """An exact plan of `pattern` answers `truth` (RE2's answer) for `text`; a prefilter
    never rejects a text RE2 matches."""
    plan = literal_plan(pattern)
    if plan is None:
        return
    test, exact = plan
    if exact:
        assert test(text) is truth
    else:
        assert test(text) or not truth


# ---------------------------------------------------------------- regex prefilter
@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        pytest.param("(?i)computer", ("computer", True), id="case-insensitive"),
        pytest.param("(?i)COMPUTER", ("computer", True), id="folded needle"),
        pytest.param(r"timeout after \d+ ms", ("timeout after ", False), id="longest run"),
        pytest.param(r"^ERROR\b.*disk", ("ERROR", False), id="anchors break runs"),
        pytest.param("abc|abd", None, id="top-level alternation"),
        pytest.param("ab", None, id="too short"),
        pytest.param("(?i)café", None, id="non-ASCII case-insensitive"),
        pytest.param(r"\Qa.b\E", None, id="syntax only RE2 knows"),
        pytest.param("abc?", None, id="optional last char leaves two"),
    ],
)
def test_required_literal(pattern, literal):
    """The literal every match must contain, or None when none can be proven."""
    assert required_literal(pattern) == literal


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param("(?i)computer", "COMPUTER", True, id="upper-case text"),
        pytest.param("(?i)computer", "my CoMpUtEr broke", True, id="mixed case"),
        pytest.param("(?i)COMPUTER", "computer", True, id="upper-case pattern"),
        pytest.param("(?i)kelvin", "\u212aELVIN", True, id="Kelvin sign K"),
        pytest.param("(?i)stop", "\u017fTOP", True, id="long s"),
        pytest.param("(?i)class", "CLA\u017f\u017f", True, id="two long s"),
        pytest.param("(?i)strasse", "STRA\u00dfE", False, id="sharp s is not ss for RE2"),
        pytest.param("(?i)file", "\ufb01le", False, id="fi ligature"),
        pytest.param("(?i)istanbul", "\u0130STANBUL", False, id="dotted capital I"),
        pytest.param("(?i)computer", "c o m p u t e r", False, id="no match"),
        pytest.param("computer", "COMPUTER", False, id="case-sensitive"),
    ],
)
def test_prefiltered_regex_agrees_with_re2_on_case_folding(pattern, text, expected):
    """The literal prefilter never hides an RE2 match, including Unicode case-folding edge cases."""
    assert (re2.search(pattern, text) is not None) is expected
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is expected


PATTERNS = [
    "(?i)computer",
    "computer",
    "(?i)kelvin",
    "(?i)stop",
    "(?i)ss",
    "(?i)k.s",
    r"timeout after \d+ ms",
    r"(?i)error: [a-z]+",
    r"^ERROR\b",
    "abc|abd",
    "(?i)(?:abc|xyz)def",
    r"(?s)start.*end",
    r"\bK\b",
    "(?i)istanbul",
    "(?i)\u017ftop",
    "[Kk]elvin",
    r"a\.b\.c",
    "(?i)a{2}bbb",
    "(?m)^line$",
]
_ALPHABET = st.sampled_from(
    [
        *"abceiklnoprstuvxyzKSILEROMPUTABC .:-_\n",
        *["\u212a", "\u017f", "\u00df", "\u0130", "\u0131", "\ufb01", "\u1e9e", "\u03c3", "\u03c2"],
        *[
            "computer",
            "COMPUTER",
            "kelvin",
            "stop",
            "timeout after ",
            "abc",
            "xyzdef",
            "ERROR",
            " ms",
        ],
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(PATTERNS), st.lists(_ALPHABET, max_size=12).map("".join))
@example("(?i)kelvin", "\u212aELVIN")
@example("(?i)stop", "\u017fTOP")
@example("(?i)computer", "COMPUTER")
def test_prefilter_never_changes_a_result(pattern, text):
    """For any text, the prefiltered predicate answers exactly what a plain RE2 search answers."""
    plain = re2.search(pattern, text) is not None
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is plain


LITERAL_PATTERNS = [
    "^METRIC ",
    "timeout|refused",
    "abc|xyz|foo",
    "abc|xyz|foo|METRIC",
    "abc|xyz|foo|METRIC|api",
    "(?i)(bot|crawler|spider)",
    "(?i)(abc|xyz|foo|metric)",
    "(?i)(abc|xyz|foo|metric|api)",
    "^/api/v1/",
    "computer$",
    "^abc$",
    "(?i)computer",
    "(foo)",
    "x|yz|",
    "(?i)straße",
    "a.b",
    "^$",
]


@given(
    st.sampled_from(LITERAL_PATTERNS), st.text(alphabet="abcxyzMETRICfooßSs/api1 $^", max_size=20)
)
def test_literal_plans_agree_with_re2(pattern: str, text: str) -> None:
    """An exact literal plan gives RE2's answer; a prefilter never rejects an RE2 match."""
    _assert_plan_agrees(pattern, text, re2.compile(pattern).search(text) is not None)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        pytest.param("(?m)^ERROR", "Traceback\nERROR disk full", id="line start after a newline"),
        pytest.param("(?m)done$", "done\nnext step", id="line end before a newline"),
        pytest.param("(?m)^line$", "x\nline\ny", id="a whole inner line"),
        pytest.param("(?m)^(?:a|b)$", "x\nb", id="alternatives on an inner line"),
        pytest.param("(?m)^5[0-9][0-9]$", "status\n503", id="classes on an inner line"),
    ],
)
def test_multi_line_anchors_match_at_every_line(pattern: str, text: str) -> None:
    """With `(?m)`, `^` and `$` match at every line's start and end (RE2's multi-line
    mode): a joined stack trace matches on its inner lines, and no string test may
    answer such a pattern as if the anchors held only at the text's ends."""
    assert re2.compile(pattern).search(text) is not None
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is True
    plan = literal_plan(pattern)
    assert plan is None or not plan[1] or plan[0](text)


CLASS_PATTERNS = [
    "[Cc]omputer",
    "^5[0-9][0-9]$",
    r"^5\d\d",
    "[0-9]{3}$",
    "^[ab][cd]$",
    "x[ab]",
    "^[[:digit:]]$",
    "[[:alpha:]]x",
    "^[^0-9]$",
    "[0-9]+",
    "(?i)[Cc]omputer",
    "(?m)^[ab]$",
]


@settings(max_examples=800, deadline=None)
@given(
    st.sampled_from(CLASS_PATTERNS),
    st.lists(
        st.sampled_from([*"5093Ccabdx[]:\n ", "omputer", "\u0665", "\uff15", "COMPUTER"]),
        max_size=8,
    ).map("".join),
)
@example("^5[0-9][0-9]$", "503")
@example("^5[0-9][0-9]$", "5\u0660\u0660")
@example("^[[:digit:]]$", "7")
@example("[Cc]omputer", "my Computer")
def test_class_plans_agree_with_re2(pattern: str, text: str) -> None:
    """Patterns of literals and small character classes (`[Cc]omputer`, `^5[0-9][0-9]$`)
    answered by string tests give RE2's answer for any text, including digits of other
    scripts and POSIX classes, which Python's parser reads differently from RE2."""
    truth = re2.compile(pattern).search(text) is not None
    _assert_plan_agrees(pattern, text, truth)
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is truth


@pytest.mark.parametrize(
    "pattern",
    ["[Cc]omputer", "^5[0-9][0-9]$", r"^5\d\d", "[0-9]{2}$", "^[ab][cd]$"],
)
def test_small_class_patterns_are_answered_by_string_tests(pattern: str) -> None:
    """A pattern of literals and small classes needs no RE2 search: its plan is exact."""
    plan = literal_plan(pattern)
    assert plan is not None and plan[1] is True


# ---------------------------------------------------------------- generated patterns
_TOKENS = st.sampled_from(
    [
        *"abcKxß",
        "ab",
        "abc",
        "xyz",
        r"\.",
        r"\d",
        r"\w",
        r"\s",
        r"\b",
        ".",
        "[ab]",
        "[0-9]",
        "[^a]",
        "[a-c]",
        "[a]",
        "[Kk]",
        "[.x]",
        "^",
        "$",
        "|",
        "(",
        ")",
        "(?:",
        "(?P<g>",
        "*",
        "+",
        "?",
        "*?",
        "{2}",
        "{1,2}",
        "{2,}",
        "{,2}",
        "{",
        "}",
        "]",
    ]
)
_PATTERNS = st.tuples(
    st.sampled_from(["", "(?i)", "(?m)", "(?s)", "(?im)", "(?U)"]),
    st.lists(_TOKENS, min_size=1, max_size=8).map("".join),
).map("".join)
_TEXTS = st.lists(
    st.sampled_from([*"abcxyzKkß.0123 \n_", "\u212a", "\u017f", "abc", "xyz", "ab"]), max_size=10
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_PATTERNS, _TEXTS)
@example("abc|abd", "xabd")
@example("(?i)(?:abc|xyz)def", "XYZDEF")
@example("^[a]b$", "ab")
@example("x{,3}", "x{,3}")
@example("(?m)^ab$", "x\nab")
@example("(?i)k", "\u212a")
def test_plans_and_literals_agree_with_re2(pattern: str, text: str) -> None:
    """For generated patterns RE2 compiles (read by `regexsyntax`, or left unread) and any
    text: a required literal is in every RE2 match, an exact plan answers as RE2 does, a
    prefilter never rejects an RE2 match, and the condition as compiled answers as a plain
    RE2 search."""
    try:
        compiled = re2.compile(pattern)
    except re2.error:
        assume(False)
        return
    truth = compiled.search(text) is not None
    lit = required_literal(pattern)
    if lit is not None and truth:
        needle, folded = lit
        assert needle in (text.casefold() if folded else text)
    _assert_plan_agrees(pattern, text, truth)
    assert compile_condition({"field": "m", "regex": pattern})({"m": text}) is truth
