"""syslog parsers: RFC 5424 and RFC 3164 fields, structured data, the 3164 year, detection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.parsers import registry
from chalicelib.parsers import syslog as syslog_module
from chalicelib.parsers.syslog import (
    civil_ms,
    epoch_ms,
    parse_3164,
    parse_5424,
    parse_syslog,
    parse_syslog3164,
    parse_syslog5424,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
RFC5424 = DATA.joinpath("syslog5424.txt").read_text(encoding="utf-8").splitlines()
RFC3164 = DATA.joinpath("syslog3164.txt").read_text(encoding="utf-8").splitlines()
BOM = "\ufeff"


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) * 1000


NOW = ms("2026-11-26T10:00:00+00:00")


# ---------------------------------------------------------------- RFC 5424
def test_5424_rfc_example_with_structured_data():
    """RFC 5424's third example gives every header field and its structured data as a dict."""
    assert parse_syslog(RFC5424[2]) == {
        "facility": 20,
        "severity": 5,
        "level": "NOTICE",
        "time": "2003-10-11T22:14:15.003Z",
        "host": "mymachine.example.com",
        "app": "evntslog",
        "msgid": "ID47",
        "sd": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}},
        "message": "An application event log entry...",
    }


def test_5424_rfc_example_bom_and_nil_procid():
    """RFC 5424's first example: nil PROCID and SD are absent, the BOM before MSG is dropped."""
    assert parse_syslog(RFC5424[0]) == {
        "facility": 4,
        "severity": 2,
        "level": "CRIT",
        "time": "2003-10-11T22:14:15.003Z",
        "host": "mymachine.example.com",
        "app": "su",
        "msgid": "ID47",
        "message": "'su root' failed for lonvick on /dev/pts/8",
    }


def test_5424_offset_and_microseconds_to_utc():
    """A local offset is converted to UTC and microseconds truncated to milliseconds."""
    rec = parse_syslog(RFC5424[1])
    assert rec["time"] == "2003-08-24T12:14:15.000Z"
    assert rec["pid"] == 8710
    assert rec["host"] == "192.0.2.1"
    assert rec["message"] == "%% It's time to make the do-nuts."


def test_5424_two_sd_elements_no_message():
    """Several SD elements each get their id; a line without MSG has an empty message."""
    rec = parse_syslog(RFC5424[3])
    assert rec["sd"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert rec["message"] == ""


def test_5424_escapes_in_param_values():
    """`\\"`, `\\\\` and `\\]` in a PARAM-VALUE are unescaped; procid is a pid when numeric."""
    rec = parse_syslog(RFC5424[4])
    assert rec["sd"] == {
        "meta@32473": {"order": "A-1042", "note": 'quote "x", slash \\ and ] kept'}
    }
    assert rec["time"] == "2026-11-26T09:07:01.123Z"
    assert rec["pid"] == 4242
    assert rec["level"] == "INFO"
    assert rec["message"] == "order placed"


def test_5424_all_nil():
    """An all-nil header keeps only PRI's fields and an empty message."""
    assert parse_syslog(RFC5424[5]) == {
        "facility": 23,
        "severity": 7,
        "level": "DEBUG",
        "message": "",
    }


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        pytest.param(
            '<13>1 - h a worker-7 - [x@1 k="a" k="b"] m',
            {"procid": "worker-7", "sd": {"x@1": {"k": ["a", "b"]}}},
            id="text procid and repeated param",
        ),
        pytest.param("<13>1 - - - - - [x@1] m", {"sd": {"x@1": {}}}, id="element without params"),
        pytest.param(
            '<13>1 - - - - - [x@1 k="\\q"] m',
            {"sd": {"x@1": {"k": "\\q"}}},
            id="backslash before other char kept",
        ),
    ],
)
def test_5424_details(text, fields):
    """Non-numeric PROCIDs, repeated params, empty elements and non-escapes read as the RFC says."""
    rec = parse_syslog(text)
    assert {k: rec.get(k) for k in fields} == fields


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            "<34>1 2003-10-11T22:14:15.003Z host", "header has fewer than 7 fields", id="truncated"
        ),
        pytest.param("<34>1 yesterday h a p m - x", "bad timestamp 'yesterday'", id="bad time"),
        pytest.param(
            "<34>1 2003-13-11T22:14:15Z h a p m - x",
            "bad timestamp '2003-13-11T22:14:15Z'",
            id="month 13",
        ),
        pytest.param('<34>1 - h a p m [x@1 k="v" x', "malformed structured data", id="open sd"),
        pytest.param("<34>1 - h a p m [x@1 k=v] x", "malformed structured data", id="unquoted"),
        pytest.param("<34>1 - h a p m garbage", "malformed structured data", id="no sd"),
        pytest.param("<34>1 - h a p m [x@1]x", "no space after structured data", id="sd glued"),
        pytest.param("<34>01 - h a p m - x", "bad version '01'", id="bad version"),
        pytest.param("no pri at all", "no <PRI>", id="no pri"),
        pytest.param("<192>1 - - - - - -", "no <PRI>", id="pri out of range"),
    ],
)
def test_5424_refused(text, reason):
    """A line that is not RFC 5424 keeps its text and names what is wrong."""
    assert parse_syslog5424(text) == {"message": text, "parse_error": f"syslog5424: {reason}"}


# ---------------------------------------------------------------- RFC 3164
def test_3164_rfc_example():
    """RFC 3164's first example gives PRI fields, host, app and message, in the current year."""
    assert parse_3164(RFC3164[0], now_ms=NOW) == {
        "facility": 4,
        "severity": 2,
        "level": "CRIT",
        "time": "2026-10-11T22:14:15.000Z",
        "host": "mymachine",
        "app": "su",
        "message": "'su root' failed for lonvick on /dev/pts/8",
    }


def test_3164_no_tag_and_padded_day():
    """RFC 3164's `Use the BFG!` example has no TAG: the message follows the host."""
    assert parse_3164(RFC3164[1], now_ms=NOW) == {
        "facility": 1,
        "severity": 5,
        "level": "NOTICE",
        "time": "2026-02-05T17:32:18.000Z",
        "host": "10.0.0.99",
        "message": "Use the BFG!",
    }


def test_3164_unparseable_header_is_content():
    """RFC 3164's malformed-timestamp example keeps PRI fields and the rest as the message."""
    text = RFC3164[3]
    assert parse_3164(text, now_ms=NOW) == {
        "facility": 0,
        "severity": 0,
        "level": "EMERG",
        "message": text[len("<0>") :],
    }


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        pytest.param(
            4,
            {
                "time": "2026-11-26T10:07:01.000Z",
                "host": "ip-172-31-5-10",
                "app": "systemd",
                "pid": 1,
                "message": "Started Session 5 of user ec2-user.",
            },
            id="file line without PRI",
        ),
        pytest.param(
            6,
            {"facility": 10, "level": "INFO", "host": "bastion", "app": "sshd", "pid": 2212},
            id="authpriv sshd",
        ),
        pytest.param(
            8,
            {
                "time": "2026-11-01T09:00:00.000Z",
                "host": None,
                "app": "sshd",
                "pid": 77,
                "message": "Server listening on 0.0.0.0 port 22.",
            },
            id="local daemon without hostname",
        ),
        pytest.param(
            9,
            {
                "time": "2026-11-26T10:07:01.123Z",
                "host": "ip-10-0-1-5",
                "app": "dockerd",
                "pid": 901,
            },
            id="RFC 3339 stamp in the 3164 layout",
        ),
    ],
)
def test_3164_real_lines(line, fields):
    """Lines as Linux daemons and rsyslog write them yield host, app, pid and UTC time."""
    rec = parse_3164(RFC3164[line], now_ms=NOW)
    assert {k: rec.get(k) for k in fields} == fields


@pytest.mark.parametrize(
    ("stamp", "now", "expected"),
    [
        pytest.param(
            "Nov 26 12:00:00", "2026-11-26T10:00:00", "2026-11-26T12:00:00", id="later today"
        ),
        pytest.param(
            "Nov 27 09:59:59", "2026-11-26T10:00:00", "2026-11-27T09:59:59", id="within a day"
        ),
        pytest.param(
            "Nov 27 10:00:01", "2026-11-26T10:00:00", "2025-11-27T10:00:01", id="beyond a day"
        ),
        pytest.param(
            "Dec 31 23:59:59", "2027-01-01T00:00:30", "2026-12-31T23:59:59", id="new year"
        ),
        pytest.param(
            "Jan  1 00:00:05",
            "2026-12-31T23:59:58",
            "2027-01-01T00:00:05",
            id="sender clock ahead over new year",
        ),
        pytest.param(
            "Feb 29 12:00:00",
            "2026-03-01T00:00:00",
            "2024-02-29T12:00:00",
            id="leap day from the last leap year",
        ),
    ],
)
def test_3164_year(stamp, now, expected):
    """The year is the latest that puts the time no more than a day ahead of now."""
    rec = parse_3164(f"<13>{stamp} host app: x", now_ms=ms(now + "+00:00"))
    assert rec["time"] == expected + ".000Z"


def test_3164_default_clock_is_now():
    """Without an injected clock, a line stamped now reads as this year."""
    now = datetime.now(UTC)
    rec = parse_syslog3164(f"<13>{now:%b} {now.day:2d} {now:%H:%M:%S} host app: x")
    assert rec["time"].startswith(f"{now.year}-")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("plain text", id="prose"),
        pytest.param("", id="empty"),
        pytest.param("Foo 11 22:14:15 host app: x", id="unknown month"),
        pytest.param("<34", id="unclosed pri"),
    ],
)
def test_3164_refused(text):
    """Text with neither PRI nor a timestamp keeps its text."""
    assert parse_syslog3164(text) == {
        "message": text,
        "parse_error": "syslog3164: neither <PRI> nor a timestamp",
    }


@pytest.mark.parametrize("line", RFC3164, ids=[f"3164-{i}" for i in range(len(RFC3164))])
def test_3164_corpus(line):
    """Every RFC 3164 sample, documented or real, parses."""
    assert "parse_error" not in parse_syslog(line)


# ---------------------------------------------------------------- detection
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        *[pytest.param(t, 5424, id=f"5424-{i}") for i, t in enumerate(RFC5424)],
        *[pytest.param(t, 3164, id=f"3164-{i}") for i, t in enumerate(RFC3164)],
    ],
)
def test_auto_detection(text, kind):
    """`syslog` gives what the parser for the line's own version gives."""
    forced = parse_5424(text) if kind == 5424 else parse_3164(text)
    assert parse_syslog(text) == forced


def test_5424_line_forced_as_3164_is_content():
    """Forcing 3164 on an RFC 5424 line keeps PRI and the rest as content, never raises."""
    rec = parse_syslog3164(RFC5424[0])
    assert rec["facility"] == 4
    assert rec["message"].startswith("1 2003-10-11T22:14:15.003Z")


def test_registered():
    """All three names are selectable from the registry."""
    for name, line in (
        ("syslog", RFC3164[0]),
        ("syslog5424", RFC5424[0]),
        ("syslog3164", RFC3164[0]),
    ):
        assert registry.build(name)(line)["app"] == "su"


# ---------------------------------------------------------------- properties
_FRAGMENTS = st.sampled_from(
    [
        "<34>",
        "<191>",
        "<",
        ">",
        "1 ",
        "- ",
        " ",
        "Oct",
        " 11",
        "Feb 29",
        " 22:14:15",
        "2003-10-11T22:14:15Z",
        "host",
        "su",
        "[",
        "]",
        "x@1",
        "=",
        '"',
        "\\",
        "k",
        ":",
        "[12]",
        BOM,
        "\n",
        "é",
    ]
)
_SOUP = st.lists(_FRAGMENTS, max_size=20).map("".join)


@pytest.mark.parametrize("parse", [parse_syslog, parse_syslog5424, parse_syslog3164])
@given(text=st.one_of(st.text(), _SOUP))
def test_never_raises(parse, text):
    """Any text gives a serialisable dict; a failure keeps the text as its message."""
    rec = parse(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


_PARAM = st.text(st.characters(codec="utf-8"), max_size=15)


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _PARAM, max_size=4), _PARAM)
def test_sd_values_round_trip(params, msg):
    """Any PARAM-VALUE escaped as RFC 5424 says reads back as written, as does MSG."""

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")

    sd = "[x@1" + "".join(f' {k}="{esc(v)}"' for k, v in params.items()) + "]"
    rec = parse_5424(f"<14>1 - host app - - {sd} {msg}")
    assert rec["sd"] == {"x@1": params}
    assert rec["message"] == msg.removeprefix(BOM).rstrip("\r\n")


_ODD_STAMPS = ["<13>Oct  111:22:33:44x", "Oct 1 22:14:15x", "<13>Oct  1 22:14:15 h a: x"]


@given(st.lists(st.sampled_from([*RFC3164, *_ODD_STAMPS]), max_size=8))
def test_time_cache_is_invisible(lines):
    """Reading lines in any order gives each the time it gets when read alone."""
    alone = {}
    for line in set(lines):
        syslog_module._last_bsd = ("", None)
        alone[line] = parse_3164(line, now_ms=NOW)
    for line in lines:
        assert parse_3164(line, now_ms=NOW) == alone[line]


@given(
    st.integers(1, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
)
def test_civil_ms_agrees_with_datetime(year, month, day, hour, minute, second):
    """Calendar arithmetic gives datetime's epoch milliseconds, and None where datetime refuses."""
    try:
        expected: int | None = epoch_ms(datetime(year, month, day, hour, minute, second))
    except ValueError:
        expected = None
    assert civil_ms(year, month, day, hour, minute, second) == expected
