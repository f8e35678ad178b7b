"""regex parser: RE2 named groups as fields, typing, and validation at configuration time."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.options import check_options
from chalicelib.parsers import regex as regex_module
from chalicelib.parsers import registry
from chalicelib.parsers.regex import to_bool, to_float, to_int

# A Java application's log4j line: `%d{ISO8601} [%t] %-5p %c - %m`
LOG4J = r"^(?P<time>\S+ \S+) \[(?P<thread>[^\]]+)\] (?P<level>\w+)\s+(?P<logger>\S+) - (?P<msg>.*)$"
HAPROXY = (
    r"(?P<client>[\d.]+):(?P<port>\d+) \[[^\]]+\] (?P<frontend>\S+)"
    r" (?P<backend>[^/]+)/(?P<server>\S+)"
    r" (?P<tq>-?\d+)/(?P<tw>-?\d+)/(?P<tc>-?\d+)/(?P<tr>-?\d+)/(?P<tt>\d+) (?P<status>\d{3})"
    r" (?P<bytes>\d+)(?: (?P<flags>\S+))?"
)


def build(opts):
    problems = check_options(opts, registry.spec("regex").options, "parser.regex")
    assert problems == []
    return registry.build("regex", opts)


def test_log4j_line():
    """A log4j line's groups become fields; the msg group becomes the message, level upper-cased."""
    parse = build({"pattern": LOG4J})
    text = "2026-11-26 10:07:01,123 [main] warn  com.example.Checkout - cart empty for user 42"
    assert parse(text) == {
        "time": "2026-11-26 10:07:01,123",
        "thread": "main",
        "level": "WARN",
        "logger": "com.example.Checkout",
        "message": "cart empty for user 42",
    }


def test_types_and_missing_optional_group():
    """Declared types convert their groups; an optional group that did not match is absent."""
    parse = build(
        {
            "pattern": HAPROXY,
            "types": {"port": "int", "tq": "int", "tt": "int", "status": "int", "bytes": "int"},
        }
    )
    text = "10.0.1.2:33317 [26/Nov/2026:10:07:01.123] http-in static/srv1 10/0/30/69/109 200 2750"
    rec = parse(text)
    assert rec["port"] == 33317
    assert rec["tq"] == 10
    assert rec["tw"] == "0"  # undeclared: text
    assert rec["status"] == 200
    assert rec["bytes"] == 2750
    assert "flags" not in rec
    assert "message" not in rec  # no message group: the caller's record keeps its own


@pytest.mark.parametrize(
    ("value", "typ", "expected"),
    [
        pytest.param("42", "int", 42, id="int"),
        pytest.param("-7", "int", -7, id="negative int"),
        pytest.param("2.5", "float", 2.5, id="float"),
        pytest.param("3", "float", 3.0, id="integral float"),
        pytest.param("TRUE", "bool", True, id="bool upper"),
        pytest.param("no", "bool", False, id="bool no"),
    ],
)
def test_type_conversions(value, typ, expected):
    """Each declared type converts its group's text."""
    rec = build({"pattern": r"v=(?P<v>\S+)", "types": {"v": typ}})(f"v={value}")
    assert rec["v"] == expected
    assert type(rec["v"]) is type(expected)


@pytest.mark.parametrize("value", ["-", ""])
def test_typed_blank_is_absent(value):
    """A typed field holding `-` or nothing has no value, so it is left out."""
    rec = build({"pattern": r"v=(?P<v>\S*)", "types": {"v": "int"}})(f"v={value}")
    assert "v" not in rec
    assert "parse_error" not in rec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("no digits here", "regex: no match", id="no match"),
        pytest.param("n=12x", "regex: field 'n' is not int: '12x'", id="bad int"),
        pytest.param(
            "n=99999999999999999999",
            "regex: field 'n' is not int: '99999999999999999999'",
            id="int beyond 64 bits",
        ),
    ],
)
def test_refused(text, reason):
    """No match, or a declared type the value does not have, fails with the text kept."""
    parse = build({"pattern": r"n=(?P<n>\w+)", "types": {"n": "int"}})
    assert parse(text) == {"message": text, "parse_error": reason}


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        pytest.param({}, "required", id="pattern missing"),
        pytest.param({"pattern": r"(\d+)"}, "needs at least one named group", id="no named group"),
        pytest.param({"pattern": r"(?P<a>x)\1"}, "not an RE2 pattern", id="backreference"),
        pytest.param({"pattern": r"(?=x)(?P<a>y)"}, "not an RE2 pattern", id="lookahead"),
        pytest.param({"pattern": r"(?P<a>"}, "not an RE2 pattern", id="unbalanced"),
        pytest.param(
            {"pattern": r"(?P<a>x)", "types": {"a": "date"}}, "expected one of", id="type"
        ),
        pytest.param({"pattern": r"(?P<a>x)", "flags": "i"}, "unknown option", id="unknown key"),
    ],
)
def test_options_rejected_at_configuration(opts, problem):
    """A pattern RE2 refuses, without named groups, or with a bad type is reported by the schema."""
    problems = check_options(opts, registry.spec("regex").options, "parser.regex")
    assert any(problem in reason for _, reason in problems), problems


def test_types_for_a_missing_group_refused_by_factory():
    """Types naming a field the pattern has no group for stop the parser being built."""
    with pytest.raises(ValueError, match="no group for: b"):
        registry.build("regex", {"pattern": r"(?P<a>x)", "types": {"b": "int"}})


def test_pathological_pattern_is_linear():
    """A pattern that backtracks exponentially in Python's `re` matches at once in RE2."""
    parse = build({"pattern": r"^(?P<a>(a+)+)$"})
    text = "a" * 5000 + "!"
    assert parse(text)["parse_error"] == "regex: no match"


@pytest.mark.parametrize(
    ("conv", "text", "expected"),
    [
        (to_int, "1_000", None),
        (to_int, " 1", None),
        (to_int, "١٢", None),
        (to_int, "+5", 5),
        (to_float, "nan", None),
        (to_float, "1e999", None),
        (to_float, ".5", None),
        (to_float, "1_0.5", None),
        (to_bool, "maybe", None),
    ],
)
def test_converters_are_strict(conv, text, expected):
    """Converters accept plain ASCII numbers only, never Python's looser literal forms."""
    assert conv(text) == expected


@given(st.text(), st.sampled_from([r"(?P<w>\w+)", r"^(?P<a>\S+) (?P<b>\d+)$", r"(?P<m>.*)"]))
def test_never_raises(text, pattern):
    """Any text gives a serialisable dict; a failure keeps the text as its message."""
    rec = build({"pattern": pattern, "types": {}})(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


@given(st.text(alphabet="0123456789-+.eE_ a", max_size=12), st.sampled_from(["int", "float"]))
def test_typed_values_serialise(text, typ):
    """Whatever a typed group captures, the record stays serialisable by the archive."""
    rec = build({"pattern": r"^(?P<v>.*)$", "types": {"v": typ}})(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


_PATTERNS = [LOG4J, HAPROXY, r"(?P<w>\w+)(\d)?", r"(?P<a>é+)|(?P<b>\S+$)", r"(?P<e>)"]


@given(st.text(), st.sampled_from(_PATTERNS))
def test_direct_reader_agrees_with_public_api(text, pattern):
    """RE2's own Match on bytes gives the same groups as the wrapper's public search."""
    rx = regex_module.compile_pattern(pattern)
    assert regex_module._direct_groups(rx)(text) == regex_module._public_groups(rx)(text)


def test_direct_reader_in_use():
    """The installed google-re2 passes the self-check, so the fast reader is used."""
    assert regex_module._DIRECT


def test_public_reader_fallback(monkeypatch):
    """Without the fast reader (a google-re2 whose internals changed) parsing is the same."""
    text = "2026-11-26 10:07:01,123 [main] warn  com.example.Checkout - cart empty"
    fast = build({"pattern": LOG4J})(text)
    monkeypatch.setattr(regex_module, "_DIRECT", False)
    assert build({"pattern": LOG4J})(text) == fast
