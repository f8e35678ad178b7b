"""xml parser: one element as fields, namespaces dropped, DOCTYPE and entity attacks refused."""

from __future__ import annotations

import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.parsers import registry
from chalicelib.parsers.xml import MAX_DEPTH, parse_xml

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
SAMPLES = DATA.joinpath("xml.txt").read_text(encoding="utf-8").splitlines()


def test_windows_security_event():
    """A Windows security event: namespaced names stripped, repeated Data become a list of dicts."""
    rec = parse_xml(SAMPLES[0])
    assert rec["System"] == {
        "Provider": {
            "Name": "Microsoft-Windows-Security-Auditing",
            "Guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}",
        },
        "EventID": "4624",
        "Level": "0",
        "TimeCreated": {"SystemTime": "2026-11-26T10:07:01.1234567Z"},
        "Computer": "WIN-SRV01.corp.example.com",
    }
    assert rec["EventData"] == {
        "Data": [
            {"Name": "TargetUserName", "text": "alice"},
            {"Name": "LogonType", "text": "3"},
            {"Name": "IpAddress", "text": "203.0.113.7"},
        ]
    }
    assert "message" not in rec  # no message field: the caller's record keeps its own


def test_application_event_aliases():
    """Root attributes and leaf children become fields; `msg` is the message, level upper-cased."""
    assert parse_xml(SAMPLES[1]) == {
        "level": "ERROR",
        "time": "2026-11-26T10:07:01Z",
        "message": "payment declined",
        "order": {"id": "A-1042", "text": "1"},
    }


def test_prefixed_namespace_and_comment():
    """Prefixed names lose their prefix, declarations are not fields, comments are ignored."""
    rec = parse_xml(SAMPLES[2])
    assert rec["actor"] == "bob"
    assert rec["action"] == "delete"
    assert rec["target"] == {"kind": "bucket", "text": "logs-archive"}
    assert "xmlns" not in rec and "e" not in rec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<m>hello &amp; bye &#233;</m>", {"text": "hello & bye é"}, id="root text"),
        pytest.param("<e><a/><a>x</a></e>", {"a": ["", "x"]}, id="repeated leaves"),
        pytest.param(
            '<e a="1"><a>2</a></e>', {"a": ["1", "2"]}, id="attribute and child share a name"
        ),
        pytest.param("<e>\n  <a>  x  </a>\n</e>", {"a": "x"}, id="pretty-printed whitespace"),
        pytest.param("<e><![CDATA[<b>raw</b>]]></e>", {"text": "<b>raw</b>"}, id="cdata"),
        pytest.param("<e><a><b><c>deep</c></b></a></e>", {"a": {"b": {"c": "deep"}}}, id="nesting"),
        pytest.param("\ufeff<e k='v'/>", {"k": "v"}, id="byte order mark"),
    ],
)
def test_shapes(text, expected):
    """Text, repeats, shared names, whitespace, CDATA and nesting map to fields as documented."""
    assert parse_xml(text) == expected


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1 if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><lolz>&lol9;</lolz>"
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(BILLION_LAUGHS, id="billion laughs"),
        pytest.param(
            '<!DOCTYPE r [<!ENTITY a "' + "x" * 10_000 + '">]><r>' + "&a;" * 10_000 + "</r>",
            id="quadratic blowup",
        ),
        pytest.param(
            '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', id="xxe file"
        ),
        pytest.param(
            '<!DOCTYPE r SYSTEM "http://169.254.169.254/latest/meta-data/"><r/>', id="external dtd"
        ),
        pytest.param(
            '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://x/p.dtd"> %p;]><r/>', id="parameter entity"
        ),
        pytest.param("<!DOCTYPE r><r/>", id="bare doctype"),
    ],
)
def test_doctype_refused_before_any_expansion(text):
    """Every document with a DOCTYPE is refused at once, so no entity is ever expanded."""
    start = time.perf_counter()
    assert parse_xml(text) == {"message": text, "parse_error": "xml: DOCTYPE not allowed"}
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("plain text", "xml: not an XML element", id="not xml"),
        pytest.param("", "xml: not an XML element", id="empty"),
        pytest.param("<a>", "xml: no element found: line 1, column 3", id="unclosed"),
        pytest.param(
            "<a/><b/>", "xml: junk after document element: line 1, column 4", id="two roots"
        ),
        pytest.param(
            "<a>&lol;</a>", "xml: undefined entity: line 1, column 3", id="undeclared entity"
        ),
        pytest.param("<x:a/>", "xml: unbound prefix: line 1, column 0", id="unbound prefix"),
        pytest.param("<a></b>", "xml: mismatched tag: line 1, column 5", id="mismatched"),
    ],
)
def test_refused(text, reason):
    """Text that is not one well-formed element keeps its text and gives expat's reason."""
    assert parse_xml(text) == {"message": text, "parse_error": reason}


def test_depth_limit():
    """Elements nested deeper than the archive can write are refused; the limit itself is fine."""
    deep = "<a>" * (MAX_DEPTH + 1) + "x" + "</a>" * (MAX_DEPTH + 1)
    reason = f"xml: nested over {MAX_DEPTH} levels"
    assert parse_xml(deep) == {"message": deep, "parse_error": reason}
    at_limit = "<a>" * MAX_DEPTH + "x" + "</a>" * MAX_DEPTH
    orjson.dumps(parse_xml(at_limit))


def test_registered():
    """`xml` is selectable from the registry."""
    assert registry.build("xml")("<e a='1'/>")["a"] == "1"


# ---------------------------------------------------------------- properties
_FRAGMENTS = st.sampled_from(
    [
        "<",
        ">",
        "/",
        "a",
        "b",
        " ",
        "=",
        '"',
        "'",
        "&amp;",
        "&",
        ";",
        "<!DOCTYPE a>",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "<?xml version='1.0'?>",
        "x:",
        'xmlns:x="u"',
        "é",
        "\x00",
    ]
)
_SOUP = st.lists(_FRAGMENTS, max_size=24).map("".join)
_NESTED = st.integers(0, 300).map(lambda n: "<a>" * n + "<b c='d'/>" + "</a>" * n)


@given(st.one_of(st.text(), _SOUP, _NESTED))
def test_never_raises(text):
    """Any text gives a serialisable dict; a failure keeps the text as its message."""
    rec = parse_xml(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: (
        n
        not in (
            "message",
            "text",
            "msg",
            "event",
            "log",
            "level",
            "severity",
            "lvl",
            "loglevel",
            "log_level",
        )
    )
)
# XML 1.0 characters, whitespace-trimmed as the parser trims element text.
_VALUE = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc"], exclude_characters="\ufffe\uffff"),
    max_size=15,
)


@given(st.dictionaries(_NAME, _VALUE, max_size=4), st.dictionaries(_NAME, _VALUE, max_size=4))
def test_round_trip(attrs, children):
    """Attributes and leaf children written with escaping read back as written."""
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in children.items())
    text = "<e" + "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items()) + f">{body}</e>"
    rec = parse_xml(text)
    expected: dict[str, object] = dict(attrs)
    for k, v in children.items():
        value = v.strip()
        expected[k] = [attrs[k], value] if k in attrs else value
    assert rec == expected
