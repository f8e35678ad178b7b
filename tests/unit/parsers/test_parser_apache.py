"""Access-log parsers: Apache common and combined, nginx combined."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.parsers import apache as apache_module
from chalicelib.parsers import registry
from chalicelib.parsers.apache import (
    clf_time_ms,
    parse_apache_combined,
    parse_apache_common,
    parse_nginx,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
LINES = DATA.joinpath("apache.txt").read_text(encoding="utf-8").splitlines()
APACHE_DOCS_COMMON = (
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
)


def test_apache_docs_combined_example():
    """The Apache docs' combined example gives every field, the time in UTC, the line as message."""
    assert parse_apache_combined(LINES[0]) == {
        "remote_addr": "127.0.0.1",
        "user": "frank",
        "time": "2000-10-10T20:55:36.000Z",
        "method": "GET",
        "path": "/apache_pb.gif",
        "protocol": "HTTP/1.0",
        "status": 200,
        "bytes": 2326,
        "referer": "http://www.example.com/start.html",
        "user_agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
        "message": LINES[0],
    }


def test_apache_docs_common_example():
    """The Apache docs' common example gives the request fields without referer or agent."""
    assert parse_apache_common(APACHE_DOCS_COMMON) == {
        "remote_addr": "127.0.0.1",
        "user": "frank",
        "time": "2000-10-10T20:55:36.000Z",
        "method": "GET",
        "path": "/apache_pb.gif",
        "protocol": "HTTP/1.0",
        "status": 200,
        "bytes": 2326,
        "message": APACHE_DOCS_COMMON,
    }


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        pytest.param(
            1,
            {
                "remote_addr": "203.0.113.9",
                "user": None,
                "referer": None,
                "user_agent": "ELB-HealthChecker/2.0",
                "path": "/healthz",
                "bytes": 2,
            },
            id="load balancer health check, dashes absent",
        ),
        pytest.param(
            2,
            {
                "remote_addr": "2001:db8::1",
                "time": "2026-11-26T09:07:02.000Z",
                "method": "POST",
                "path": "/api/v1/orders?dry_run=1",
                "protocol": "HTTP/2.0",
                "status": 201,
            },
            id="IPv6 client and positive offset",
        ),
        pytest.param(3, {"status": 304, "bytes": 0}, id="dash bytes are zero"),
        pytest.param(
            4,
            {
                "request": "\\x16\\x03\\x01\\x00\\xca\\x01\\x00\\x00\\xc6\\x03\\x03",
                "method": None,
                "status": 400,
            },
            id="TLS handshake sent to the plain port",
        ),
        pytest.param(5, {"request": "-", "method": None, "status": 408}, id="empty request"),
        pytest.param(
            6,
            {
                "request": 'GET /search?q="drop table" HTTP/1.1',
                "method": None,
                "user_agent": "sqlmap/1.8 (https://sqlmap.org)",
            },
            id="escaped quotes unescaped, a space in the target keeps the request raw",
        ),
        pytest.param(
            7,
            {
                "user": "alice",
                "time": "2026-11-26T14:37:07.000Z",
                "method": "DELETE",
                "status": 204,
            },
            id="negative half-hour offset and appended field",
        ),
    ],
)
def test_nginx_lines(line, fields):
    """Real-shaped nginx lines: dashes are absent, odd requests kept raw, times in UTC."""
    rec = parse_nginx(LINES[line])
    assert "parse_error" not in rec
    assert {k: rec.get(k) for k in fields} == fields
    assert rec["message"] == LINES[line]


def test_common_accepts_combined_lines():
    """The common parser reads a combined line's common prefix; the rest stays in `message`."""
    rec = parse_apache_common(LINES[0])
    assert rec["status"] == 200
    assert "referer" not in rec
    assert rec["message"] == LINES[0]


HEAD = "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [
        pytest.param(
            parse_apache_combined,
            APACHE_DOCS_COMMON,
            "apache_combined: expected the referer and user agent",
            id="combined needs referer and agent",
        ),
        pytest.param(
            parse_nginx,
            HEAD + '"GET / HTTP/1.1" 200 1 "-"',
            "nginx: expected the user agent",
            id="referer without agent",
        ),
        pytest.param(
            parse_nginx,
            "GET /index.html",
            "nginx: expected `host ident user [time]`",
            id="not a log line",
        ),
        pytest.param(
            parse_apache_common, "", "apache_common: expected `host ident user [time]`", id="empty"
        ),
        pytest.param(
            parse_apache_common,
            '1.2.3.4 - - [10/Oct/2000:13:55:36 "GET / HTTP/1.0" 200 1',
            "apache_common: unclosed [time]",
            id="unclosed time",
        ),
        pytest.param(
            parse_apache_common,
            '1.2.3.4 - - [10/Oct/2000:13:55:36] "GET / HTTP/1.0" 200 1',
            "apache_common: bad time '10/Oct/2000:13:55:36'",
            id="time without zone",
        ),
        pytest.param(
            parse_apache_common,
            '1.2.3.4 - - [31/Feb/2000:13:55:36 +0000] "GET / HTTP/1.0" 200 1',
            "apache_common: bad time '31/Feb/2000:13:55:36 +0000'",
            id="impossible date",
        ),
        pytest.param(
            parse_apache_common,
            HEAD + "GET / HTTP/1.0 200 1",
            "apache_common: expected a quoted field at 41",
            id="request not quoted",
        ),
        pytest.param(
            parse_apache_common,
            HEAD + '"GET / HTTP/1.0 200 1',
            "apache_common: unterminated quoted field at 41",
            id="request not closed",
        ),
        pytest.param(
            parse_apache_common,
            HEAD + '"GET / HTTP/1.0" OK 1',
            "apache_common: bad status at 58",
            id="status not a number",
        ),
        pytest.param(
            parse_apache_common,
            HEAD + '"GET / HTTP/1.0" 200 1234567890123456789',
            "apache_common: bad byte count at 62",
            id="byte count beyond 64 bits",
        ),
        pytest.param(
            parse_apache_common,
            HEAD + '"GET / HTTP/1.0" 200 12x',
            "apache_common: unexpected text at 64",
            id="text glued to the last field",
        ),
    ],
)
def test_refused(parse, text, reason):
    """A line not in the format keeps its text and says what was wrong where."""
    assert parse(text) == {"message": text, "parse_error": reason}


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("10/Oct/2000:13:55:36 -0700", 971211336000),
        ("01/Jan/1970:00:00:00 +0000", 0),
        ("01/Jan/1970:05:30:00 +0530", 0),
        ("10/Oct/2000:13:55:36 +2500", None),
        ("10/Okt/2000:13:55:36 +0000", None),
        ("10/Oct/2000 13:55:36 +0000", None),
    ],
)
def test_clf_time(stamp, expected):
    """Common Log Format times convert with their offset; malformed ones give None."""
    assert clf_time_ms(stamp) == expected


def test_registered():
    """The three names are selectable from the registry."""
    for name in ("apache_common", "apache_combined", "nginx"):
        assert registry.build(name)(LINES[0])["status"] == 200


# ---------------------------------------------------------------- properties
_FRAGMENTS = st.sampled_from(
    [
        "1.2.3.4",
        " ",
        "-",
        "[",
        "]",
        "10/Oct/2000:13:55:36 -0700",
        '"',
        "\\",
        "GET / HTTP/1.1",
        "200",
        "404",
        "123",
        "x",
        "\t",
    ]
)
_SOUP = st.lists(_FRAGMENTS, max_size=24).map("".join)


@pytest.mark.parametrize("parse", [parse_apache_common, parse_apache_combined, parse_nginx])
@given(text=st.one_of(st.text(), _SOUP))
def test_never_raises(parse, text):
    """Any text gives a serialisable dict; a failure keeps the text as its message."""
    rec = parse(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


_TOKEN = st.from_regex(r"[A-Za-z0-9./_?=&%:-]{1,20}", fullmatch=True)
_QUOTED_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=30
)


@given(
    addr=_TOKEN,
    user=_TOKEN,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    path=_TOKEN,
    status=st.integers(100, 599),
    size=st.integers(0, 10**15),
    referer=_QUOTED_TEXT,
    agent=_QUOTED_TEXT,
)
def test_round_trip(addr, user, method, path, status, size, referer, agent):
    """Fields written the way nginx escapes them read back as written."""

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"')

    line = (
        f'{addr} - {user} [26/Nov/2026:10:07:01 +0000] "{method} {path} HTTP/1.1" {status} {size}'
        f' "{esc(referer)}" "{esc(agent)}"'
    )
    rec = parse_nginx(line)
    expected = {
        "remote_addr": addr,
        "method": method,
        "path": path,
        "status": status,
        "bytes": size,
    }
    expected |= {"user": user} if user != "-" else {}
    expected |= {"referer": referer} if referer != "-" else {}
    expected |= {"user_agent": agent} if agent != "-" else {}
    assert {k: rec.get(k) for k in expected} == expected


@given(st.lists(st.sampled_from([*LINES, HEAD + '"GET / HTTP/1.1" 200 1 "-" "-"']), max_size=8))
def test_time_cache_is_invisible(lines):
    """Reading lines in any order gives each the record it gets when read alone."""
    alone = {}
    for line in set(lines):
        apache_module._last_clf = ("", None)
        alone[line] = parse_nginx(line)
    for line in lines:
        assert parse_nginx(line) == alone[line]
