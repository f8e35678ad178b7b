"""logfmt parser: key=value pairs, quoting, typing, aliases and refusals."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.parsers import registry
from chalicelib.parsers.logfmt import parse_logfmt

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
CORPUS = DATA.joinpath("logfmt.txt").read_text(encoding="utf-8").splitlines()


def test_brief_example_fields_typed_and_normalised():
    """The reference line gives typed numbers and booleans, units kept as text, msg as message."""
    text = 'level=info msg="user logged in" user=alice dur=1.5ms count=3 ok=true'
    assert parse_logfmt(text) == {
        "level": "INFO",
        "message": "user logged in",
        "user": "alice",
        "dur": "1.5ms",
        "count": 3,
        "ok": True,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a=1 b=-2 c=0", {"a": 1, "b": -2, "c": 0}, id="integers"),
        pytest.param("x=1.5 y=-0.25 z=3e-4", {"x": 1.5, "y": -0.25, "z": 3e-4}, id="decimals"),
        pytest.param("t=true f=false", {"t": True, "f": False}, id="booleans"),
        pytest.param('q="3" b="true"', {"q": "3", "b": "true"}, id="quoted stays text"),
        pytest.param("id=007", {"id": "007"}, id="leading zero is an identifier"),
        pytest.param(
            "trace=123456789012345678901234567890",
            {"trace": "123456789012345678901234567890"},
            id="beyond 64 bits stays exact text",
        ),
        pytest.param(
            "r=-inf n=nan v=1.2.3", {"r": "-inf", "n": "nan", "v": "1.2.3"}, id="not numbers"
        ),
        pytest.param("debug a=1", {"debug": True, "a": 1}, id="bare key is a flag"),
        pytest.param("a= b=2", {"a": "", "b": 2}, id="empty value"),
        pytest.param("url=/a?b=c&d=e", {"url": "/a?b=c&d=e"}, id="equals inside a bare value"),
        pytest.param('e="say \\"hi\\""', {"e": 'say "hi"'}, id="escaped quote"),
        pytest.param('p="C:\\\\temp"', {"p": "C:\\temp"}, id="escaped backslash"),
        pytest.param('u="caf\\u00e9\\n"', {"u": "café\n"}, id="json escapes"),
        pytest.param('r="a\tb \\"c\\" \\\\ \x00"', {"r": 'a\tb "c" \\ \x00'}, id="raw tab"),
        pytest.param('s="" k=v', {"s": "", "k": "v"}, id="empty quoted value"),
        pytest.param("a=1\tb=2", {"a": 1, "b": 2}, id="tab separated"),
        pytest.param("a=1 a=2", {"a": 2}, id="later duplicate wins"),
        pytest.param('k="a b"   z=9  ', {"k": "a b", "z": 9}, id="extra spaces"),
    ],
)
def test_values(text, expected):
    """Each value is read with its quoting and typed only when bare and numeric or boolean."""
    rec = parse_logfmt(text)
    assert "parse_error" not in rec
    assert rec == expected  # no msg field, no message: the caller's record keeps its own


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        pytest.param(
            "ts=2026-11-26T10:07:01.123Z lvl=warn msg=hi",
            {"ts": "2026-11-26T10:07:01.123Z", "level": "WARN", "message": "hi"},
            id="lvl and msg",
        ),
        pytest.param(
            'severity=error event="disk full"',
            {"level": "ERROR", "message": "disk full"},
            id="severity and event",
        ),
    ],
)
def test_aliases_normalised(text, fields):
    """Alias keys for message and level land on `message` and `level`, upper-cased."""
    assert parse_logfmt(text) == fields


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("hello world", "no key=value pair", id="prose"),
        pytest.param("", "no key=value pair", id="empty"),
        pytest.param("=value", "empty key", id="empty key"),
        pytest.param('a="never closed', "unterminated quoted value", id="unterminated"),
        pytest.param('a="x"y', "text right after a quoted value at 5", id="text after quote"),
        pytest.param('say "hi"', "unexpected quote at 4", id="quote outside a value"),
        pytest.param('a ="x"', "empty key before the quote at 3", id="space before equals"),
        pytest.param('a=b="x"', "unexpected quote at 4", id="quote inside a bare value"),
    ],
)
def test_refused(text, reason):
    """Text that is not logfmt keeps its text and names the reason."""
    assert parse_logfmt(text) == {"message": text, "parse_error": f"logfmt: {reason}"}


@pytest.mark.parametrize("line", CORPUS, ids=[f"corpus-{i}" for i in range(len(CORPUS))])
def test_corpus_lines_parse(line):
    """Lines in the styles of Heroku's router, go-kit, logrus and Grafana all parse."""
    rec = parse_logfmt(line)
    assert "parse_error" not in rec


def test_heroku_router_line_fields():
    """Heroku's documented router line keeps ids as text and types its status and bytes."""
    rec = parse_logfmt(CORPUS[0])
    assert rec["status"] == 200
    assert rec["bytes"] == 13
    assert rec["fwd"] == "204.204.204.204"
    assert rec["request_id"] == "8601b555-6a83-4c12-8269-97c8e32cdb22"
    assert rec["service"] == "18ms"


def test_registered():
    """`logfmt` is selectable by name from the registry."""
    assert registry.build("logfmt")("a=1")["a"] == 1


# ---------------------------------------------------------------- properties
_SOUP = st.text(alphabet='ab= "\\\t1.-e\n', max_size=40)


@given(st.one_of(st.text(), _SOUP))
def test_never_raises(text):
    """Any text gives a serialisable dict; a failure keeps the text as its message."""
    rec = parse_logfmt(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


_KEYS = st.from_regex(r"k_[a-z0-9_.]{0,8}", fullmatch=True)
_VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
)


def _encode(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value).decode()  # JSON string escapes are logfmt's


@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=6))
def test_round_trip(fields):
    """Whatever a logfmt writer encodes (quoted text, bare numbers) reads back equal."""
    text = " ".join(f"{k}={_encode(v)}" for k, v in fields.items())
    assert parse_logfmt(text) == fields
