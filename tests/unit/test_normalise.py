"""chalicelib.normalise: one vocabulary for message, level and time."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.normalise import normalise, to_epoch_ms

T = 1795687621201  # 2026-11-26T10:07:01.201Z


# ---------------------------------------------------------------- message
@pytest.mark.parametrize(
    "alias",
    [
        pytest.param("event", id="event"),
        pytest.param("msg", id="msg"),
        pytest.param("log", id="log"),
    ],
)
def test_message_alias_moves_to_message(alias):
    """`event`, `msg` and `log` holding text become `message` (the alias key is gone)."""
    record, _ = normalise({alias: "order received", "order_id": "o-1"})
    assert record == {"message": "order received", "order_id": "o-1"}


def test_existing_message_wins_over_aliases():
    """A record that already has `message` keeps its aliases as ordinary fields."""
    record, _ = normalise({"message": "m", "msg": "other", "event": "e"})
    assert record == {"message": "m", "msg": "other", "event": "e"}


def test_first_alias_in_order_wins():
    """With several aliases, `event` is taken before `msg` and `log`; the rest stay."""
    record, _ = normalise({"log": "l", "msg": "m", "event": "e"})
    assert record["message"] == "e"
    assert (record["msg"], record["log"]) == ("m", "l")


def test_non_text_alias_is_not_a_message():
    """An `event` that is an object (e.g. an AWS event dump) is not mistaken for the message."""
    record, _ = normalise({"event": {"Records": []}, "msg": "handled"})
    assert record == {"event": {"Records": []}, "message": "handled"}


# ---------------------------------------------------------------- level
@pytest.mark.parametrize(
    ("record", "level"),
    [
        pytest.param({"severity": "warning"}, "WARNING", id="severity"),
        pytest.param({"lvl": "info"}, "INFO", id="lvl"),
        pytest.param({"loglevel": "Debug"}, "DEBUG", id="loglevel"),
        pytest.param({"log_level": "error"}, "ERROR", id="log_level"),
        pytest.param({"level": "warn"}, "WARN", id="level lower-case"),
    ],
)
def test_level_alias_moves_to_level_upper_cased(record, level):
    """Level aliases become `level`, upper-cased, and the alias key is gone."""
    out, _ = normalise(dict(record))
    assert out == {"level": level}


@pytest.mark.parametrize(
    ("number", "name"),
    [
        pytest.param(10, "TRACE", id="10"),
        pytest.param(20, "DEBUG", id="20"),
        pytest.param(30, "INFO", id="30"),
        pytest.param(40, "WARN", id="40"),
        pytest.param(50, "ERROR", id="50"),
        pytest.param(60, "FATAL", id="60"),
        pytest.param(35, "35", id="unknown number as text"),
    ],
)
def test_pino_numeric_levels_become_names(number, name):
    """pino/bunyan numeric levels become their names; unknown numbers become text."""
    assert normalise({"level": number})[0]["level"] == name


def test_level_wins_over_severity():
    """An explicit `level` is kept and `severity` stays an ordinary field."""
    record, _ = normalise({"level": "info", "severity": "ERROR"})
    assert record == {"level": "INFO", "severity": "ERROR"}


def test_record_without_level_gets_none():
    """No level field means no `level` key is invented."""
    assert "level" not in normalise({"message": "x"})[0]


# ---------------------------------------------------------------- time
@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param({"time": "2026-11-26T10:07:01.201Z"}, T, id="ISO 8601 Z"),
        pytest.param({"time": "2026-11-26T11:07:01.201+01:00"}, T, id="ISO 8601 offset"),
        pytest.param({"time": "2026-11-26T10:07:01.201"}, T, id="ISO 8601 naive is UTC"),
        pytest.param({"time": "2026-11-26 10:07:01.201Z"}, T, id="ISO 8601 space separator"),
        pytest.param({"time": "2026-11-26T10:07:01.201999Z"}, T, id="microseconds floor to ms"),
        pytest.param({"timestamp": 1795687621}, T - 201, id="epoch s"),
        pytest.param({"timestamp": 1795687621.201}, T, id="epoch s with fraction"),
        pytest.param({"ts": T}, T, id="epoch ms"),
        pytest.param({"ts": T * 1000 + 999}, T, id="epoch us"),
        pytest.param({"ts": T * 1_000_000 + 999_999}, T, id="epoch ns"),
        pytest.param({"@timestamp": "1795687621.201"}, T, id="epoch s as text"),
        pytest.param({"@timestamp": "2026-11-26T10:07:01.201Z"}, T, id="@timestamp"),
    ],
)
def test_record_time_in_any_common_form_becomes_epoch_ms(record, expected):
    """ISO 8601 and epoch s/ms/µs/ns are all read as UTC epoch milliseconds."""
    out, t = normalise(dict(record))
    assert t == expected
    assert out == record  # the time field is kept as written (the archive is an audit trail)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("yesterday", id="words"),
        pytest.param("10:07:01", id="time of day only"),
        pytest.param("", id="empty"),
        pytest.param(True, id="boolean"),
        pytest.param({"s": 1}, id="object"),
        pytest.param(float("nan"), id="NaN"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param("9" * 70, id="very long digits"),
    ],
)
def test_unreadable_time_gives_no_time(value):
    """A time that cannot be read yields None, so the source's timestamp is used."""
    assert normalise({"time": value})[1] is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1e300, id="1e300"),
        pytest.param(-1e300, id="-1e300"),
        pytest.param(9.3e27, id="beyond ns"),
    ],
)
def test_time_beyond_any_calendar_is_refused(value):
    """Epoch numbers outside years 1-9999 yield None (the archive could not date them)."""
    assert to_epoch_ms(value) is None


def test_first_present_time_field_is_used():
    """`time` is read before `timestamp`, `@timestamp` and `ts`."""
    _, t = normalise({"ts": 1, "@timestamp": 2, "timestamp": 3, "time": "2026-11-26T10:07:01.201Z"})
    assert t == T


def test_no_time_field_gives_none():
    """A record without any time field gives no time."""
    assert normalise({"message": "x"}) == ({"message": "x"}, None)


# ---------------------------------------------------------------- exactness (properties)
_MS = st.integers(min_value=0, max_value=253402300799999)  # 1970 .. 9999-12-31


def _iso(ms: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@settings(max_examples=500, deadline=None)
@given(_MS)
def test_iso_time_round_trips_to_the_exact_millisecond(ms):
    """An ISO 8601 text with milliseconds reads back as exactly that millisecond (no float loss)."""
    assert to_epoch_ms(_iso(ms)) == ms
    assert to_epoch_ms(_iso(ms)[:-1]) == ms  # naive: taken as UTC


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=4102444800000))  # 1970 .. 2100
def test_epoch_seconds_with_ms_fraction_read_exactly(ms):
    """Epoch seconds with three decimals (`1795687621.529`) read as that exact millisecond."""
    text = f"{ms // 1000}.{ms % 1000:03d}"
    assert to_epoch_ms(float(text)) == ms
    assert to_epoch_ms(text) == ms


def test_epoch_ms_agrees_with_calendar():
    """The reference instant agrees with the calendar module's own UTC conversion."""
    expected = (
        calendar.timegm(time.strptime("2026-11-26 10:07:01", "%Y-%m-%d %H:%M:%S")) * 1000 + 201
    )
    assert to_epoch_ms("2026-11-26T10:07:01.201Z") == expected == T


def _general(text: str) -> int | None:
    """What `datetime.fromisoformat` makes of `text` (a time without a zone is UTC)."""
    from chalicelib import normalise

    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return (dt - normalise._EPOCH_NAIVE) // normalise._ONE_MS
    return (dt - normalise._EPOCH_UTC) // normalise._ONE_MS


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from(["T", " "]),
    st.sampled_from(["", ".", ","]),
    st.integers(min_value=0, max_value=12),
    st.sampled_from(["", "Z", "+00:00", "+0000", "+00", "-00:00", "+01:00", "z", "ZZ", "+0000Z"]),
)
def test_fast_iso_path_agrees_with_the_general_one(dt, sep, point, digits, zone):
    """Times read through the per-second cache (`T` or space, `.` or `,` and 0-12 fraction
    digits, `Z`/`+00:00`/`+0000`/`+00` or no zone) equal `datetime.fromisoformat`'s
    reading; any other shape is left to the general path (None), never misread."""
    from chalicelib import normalise

    frac = f"{dt.microsecond:06d}{dt.microsecond:06d}"[:digits]
    text = dt.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (point + frac if point else "") + zone
    if not text[:4].isdigit():
        return
    fast = normalise._iso_fast(text)
    if fast is not None:
        assert fast == _general(text), text
    assert normalise.to_epoch_ms(text) == _general(text), text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T10:07:01.537Z",
        "2026-11-26T10:07:01.537+00:00",
        "2026-11-26 10:07:00,004+0000",  # Powertools' default
        "2026-11-26 10:07:00,004+00",
        "2026-11-26T10:07:01+00:00",
        "2026-11-26T10:07:01.123456789Z",
        "2026-11-26 10:07:01",
    ],
)
def test_common_utc_shapes_take_the_per_second_cache(text):
    """Every UTC shape the per-second cache claims (`Z`, `+00:00`, `+0000`, `+00`, no
    zone; `.` or `,` fractions) is read by it, not left to the general path, and reads
    as `datetime.fromisoformat` does."""
    from chalicelib import normalise

    assert normalise._iso_fast(text) == _general(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T10:07:01.²Z",
        "2026-11-26T10:07:01.\uff11\uff12\uff13Z",  # full-width digits
        "2026-11-26T10:07:01.\u0661\u0662\u0663",  # Arabic-Indic digits
        "1²",
        "\u0661\u0667\u0666\u0664\u0661\u0665\u0661\u0666\u0662\u0661",
        "2026-11-26 10:07:01,²+0000",
    ],
)
def test_times_with_digits_of_other_scripts_are_no_time(text):
    """A time whose digits are not ASCII (superscripts, full-width, Arabic-Indic) is read
    as no time, never an exception: `str.isdigit` accepts them, `int` refuses some."""
    assert to_epoch_ms(text) is None
    record, t = normalise({"message": "m", "time": text})
    assert t is None and record["time"] == text


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_fast_utc_path_agrees_with_the_general_one(dt):
    """`…Z` times read through the per-second cache equal the general ISO reading."""
    from chalicelib import normalise

    for text in (
        dt.strftime("%Y-%m-%dT%H:%M:%S") + "Z",
        dt.isoformat(timespec="milliseconds") + "Z",
        dt.isoformat(timespec="microseconds") + "Z",
    ):
        if len(text) != len(text.strip()) or not text[:4].isdigit():
            continue
        fast = normalise._iso_fast(text)
        general = _general(text.replace("Z", "+00:00"))
        assert fast == general, text


@pytest.mark.parametrize(
    "text",
    [
        "2000-01-01T00:00:00.01",
        "2000-01-01T00:00:00.1",
        "2000-01-01 00:00:00,01",
        "2000-01-01T00:00:00.0123",
    ],
)
def test_a_short_fraction_after_a_cached_second_is_read_whole(text):
    """A time of the second read just before, with one, two or four fraction digits and no
    zone, is read as `datetime.fromisoformat` reads it (`.01` is 10 ms, not 1)."""
    second = text[:19] + ".000Z"
    to_epoch_ms(second)  # the second is now the cached one
    assert to_epoch_ms(text) == _general(text)


_SHAPES = (
    lambda dt: dt.isoformat(timespec="milliseconds") + "Z",
    lambda dt: dt.isoformat(sep=" ", timespec="milliseconds").replace(".", ",") + "+0000",
    lambda dt: dt.isoformat(sep=" ", timespec="milliseconds"),
    lambda dt: dt.isoformat(timespec="milliseconds") + "+00:00",
    lambda dt: dt.isoformat(timespec="seconds"),
    lambda dt: dt.isoformat(timespec="microseconds") + "Z",
    lambda dt: dt.isoformat(timespec="milliseconds")[:-1] + "Z",  # two fraction digits
)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
            st.integers(0, len(_SHAPES) - 1),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_batch_mixing_time_shapes_reads_every_time_as_the_general_path(times):
    """Times of a few seconds in mixed shapes (`T` or space, `.` or `,`, each UTC zone,
    other fraction lengths), read in any order and read again once their seconds are
    known, through `to_epoch_ms` and `normalise` alike, equal `datetime.fromisoformat`."""
    texts = [_SHAPES[shape](dt) for dt, shape in times]
    texts += [t[:19] + ".5" + t[19:].lstrip(".,0123456789") for t in texts]
    for _ in range(2):
        for text in texts:
            expected = _general(text)
            assert to_epoch_ms(text) == expected, text
            assert normalise({"message": "m", "time": text})[1] == expected, text


def _aliases_before(record: dict[str, object]) -> dict[str, object]:
    """The alias moves of normalise before they were written out (verbatim loops over
    MESSAGE_ALIASES and LEVEL_ALIASES); the level's case and the time left out."""
    from chalicelib.normalise import LEVEL_ALIASES, MESSAGE_ALIASES

    if "message" not in record:
        for alias in MESSAGE_ALIASES:
            if alias in record and type(record[alias]) is str:
                record["message"] = record.pop(alias)
                break
    level = record["level"] if "level" in record else None
    if level is None:
        for alias in LEVEL_ALIASES:
            if alias in record:
                level = record.pop(alias)
                break
    if level is not None:
        record["level"] = level
    return record


_ALIAS_KEYS = ["message", "event", "msg", "log", "level", "severity", "lvl", "loglevel",
               "log_level", "other"]  # fmt: skip
_ALIAS_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70), st.sampled_from(["x", "info", ""])
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_ALIAS_KEYS), _ALIAS_VALUES), max_size=8))
def test_aliases_move_as_the_loops_over_the_alias_lists_moved_them(
    items: list[tuple[str, object]],
) -> None:
    """Whatever mix of message and level aliases a record holds (null, text, numbers,
    booleans), the same alias becomes `message` and `level`, and the keys end in the
    same order, as when each alias list was searched in order."""
    record = dict(items)
    want = _aliases_before(dict(record))
    got, _ = normalise(dict(record))
    assert list(got) == list(want)
    for k, v in want.items():
        if k == "level" and type(v) is str:
            assert got[k] == v.upper()
        elif k == "level" and type(v) is int:
            assert got[k] in {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", str(v)}
        else:
            assert got[k] == v and type(got[k]) is type(v)
