"""chalicelib.rules.tags: tag patterns, brace alternatives, linear-time globs."""

from __future__ import annotations

import pytest

from chalicelib.rules.tags import TagPattern, expand_braces


# ---------------------------------------------------------------- tag patterns
@pytest.mark.parametrize(
    ("pattern", "tag", "matches"),
    [
        pytest.param("app.web", "app.web", True, id="literal"),
        pytest.param("app.web", "app.web.1", False, id="literal is whole"),
        pytest.param("app.*", "app.web", True, id="* one part"),
        pytest.param("app.*", "app", False, id="* needs a part"),
        pytest.param("app.*", "app.web.1", False, id="* only one part"),
        pytest.param("app.**", "app", True, id="a.** matches a"),
        pytest.param("app.**", "app.web", True, id="** one part"),
        pytest.param("app.**", "app.web.1.2", True, id="** many parts"),
        pytest.param("app.**", "application", False, id="** is not a prefix match"),
        pytest.param("**", "anything.at.all", True, id="** alone"),
        pytest.param("**.error", "error", True, id="leading ** zero parts"),
        pytest.param("**.error", "a.b.error", True, id="leading ** many parts"),
        pytest.param("**.error", "a.error.b", False, id="leading ** anchored at end"),
        pytest.param("a.**.z", "a.z", True, id="inner ** zero parts"),
        pytest.param("a.**.z", "a.b.c.z", True, id="inner ** many parts"),
        pytest.param("a.**.z", "a.b.c", False, id="inner ** needs the end"),
        pytest.param("a.**.**.z", "a.z", True, id="repeated **"),
        pytest.param("**.b.**.d", "a.b.c.b.x.d", True, id="two ** with backtracking"),
        pytest.param("*.*", "a", False, id="two * need two parts"),
        pytest.param("app.{web,worker}", "app.worker", True, id="braces"),
        pytest.param("app.{web,worker}", "app.cron", False, id="braces exclusive"),
        pytest.param("{app,svc}.**", "svc.x.y", True, id="braces then **"),
        pytest.param("app-*.log", "app-web.log", True, id="* inside a part"),
        pytest.param("app-*.log", "app-.log", True, id="* inside a part may be empty"),
        pytest.param("app-*.log", "svc-web.log", False, id="* inside keeps the literal"),
        pytest.param("app-*.log", "app-web.x.log", False, id="* inside never crosses a dot"),
        pytest.param("*-api", "checkout-api", True, id="leading * in part"),
        pytest.param("aws.lambda.*", "aws.lambda.checkout-api", True, id="lambda tag"),
    ],
)
def test_tag_pattern(pattern, tag, matches):
    """Fluentd semantics: `*` one part, `**` zero or more parts, `{a,b}`, `*` inside a part."""
    assert TagPattern(pattern).matches(tag) is matches


def test_expand_braces_gives_every_combination():
    """Brace groups expand to their cartesian product, in order."""
    assert expand_braces("{a,b}.x.{1,2}") == ["a.x.1", "a.x.2", "b.x.1", "b.x.2"]


def test_part_star_is_not_a_regex():
    """Regex characters in a tag pattern are literal (only `*` is special)."""
    assert TagPattern("app$.*").matches("app$.web")
    assert not TagPattern("a.b").matches("axb")
