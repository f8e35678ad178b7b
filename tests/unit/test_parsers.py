"""chalicelib.parsers: message text into record fields (automatic path and named parsers)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.parsers import parse_message, registry

RID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"


# ---------------------------------------------------------------- JSON and text
def test_json_object_becomes_fields():
    """A JSON object's keys become the record's fields, values keeping their JSON types."""
    record, t = parse_message('{"message": "ok", "status": 200, "ok": true, "user": {"id": 7}}')
    assert record == {"message": "ok", "status": 200, "ok": True, "user": {"id": 7}}
    assert t is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[1, 2, 3]", id="array"),
        pytest.param('"just a string"', id="string"),
        pytest.param("42", id="number"),
        pytest.param("null", id="null"),
        pytest.param("true", id="boolean"),
        pytest.param('["ERROR", "x"]', id="array starting like a level"),
    ],
)
def test_non_object_json_stays_in_message(text):
    """JSON that is not an object is kept as text in `message`, without a parse error."""
    assert parse_message(text) == ({"message": text}, None)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Retrying card authorisation (attempt 2 of 3)", id="sentence"),
        pytest.param("", id="empty"),
        pytest.param("[Errno 111] Connection refused", id="bracket but no runtime tabs"),
        pytest.param("[ERROR] KeyError: 'order_id'", id="runtime level with a space, not a tab"),
        pytest.param("START of batch 17", id="START without RequestId"),
        pytest.param("REPORTING RequestId: x", id="prefix inside a longer word"),
        pytest.param('  {"indented": true}', id="JSON after leading spaces"),
    ],
)
def test_plain_text_stays_in_message(text):
    """Text that is neither JSON nor a Lambda line becomes `{"message": text}` and no time."""
    assert parse_message(text) == ({"message": text}, None)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"message": "cut off', id="truncated string"),
        pytest.param("{not json at all}", id="braces around text"),
        pytest.param('{"a": 1,}', id="trailing comma"),
        pytest.param('{"a": 1} trailing', id="text after the object"),
    ],
)
def test_broken_json_keeps_text_and_sets_parse_error(text):
    """Text starting with `{` that is not JSON keeps the whole text and says why in parse_error."""
    record, t = parse_message(text)
    assert record["message"] == text
    assert record["parse_error"].startswith("json: ")
    assert set(record) == {"message", "parse_error"}
    assert t is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("plain line\n", "plain line", id="LF"),
        pytest.param("plain line\r\n", "plain line", id="CRLF"),
        pytest.param('{"msg": "json line"}\n', "json line", id="JSON with LF"),
    ],
)
def test_trailing_line_break_is_stripped(text, message):
    """The newline CloudWatch keeps at the end of a line is not part of the message."""
    assert parse_message(text)[0]["message"] == message


def test_json_record_time_is_returned_as_epoch_ms():
    """A JSON record's own time field gives the event time, and the field stays in the record."""
    record, t = parse_message('{"msg": "x", "time": "2026-11-26T10:07:01.201Z"}')
    assert t == 1795687621201
    assert record["time"] == "2026-11-26T10:07:01.201Z"


# ---------------------------------------------------------------- Lambda platform lines
def test_start_line():
    """START gives the request id and function version."""
    record, t = parse_message(f"START RequestId: {RID} Version: $LATEST\n")
    assert record == {
        "message": f"START RequestId: {RID} Version: $LATEST",
        "level": "INFO",
        "lambda_event": "start",
        "request_id": RID,
        "function_version": "$LATEST",
    }
    assert t is None


def test_end_line():
    """END gives the request id."""
    record, _ = parse_message(f"END RequestId: {RID}\n")
    assert record["lambda_event"] == "end"
    assert record["request_id"] == RID
    assert "function_version" not in record


def test_report_line_figures_are_numbers():
    """REPORT's durations and memory sizes become numbers under unit-suffixed names."""
    line = (
        f"REPORT RequestId: {RID}\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 118 MB\tInit Duration: 412.83 ms\t\n"
    )
    record, _ = parse_message(line)
    assert record["lambda_event"] == "report"
    assert record["request_id"] == RID
    figures = {k: record[k] for k in record if k.endswith(("_ms", "_mb"))}
    assert figures == {
        "duration_ms": 1234.56,
        "billed_duration_ms": 1235,
        "memory_size_mb": 512,
        "max_memory_used_mb": 118,
        "init_duration_ms": 412.83,
    }
    assert all(type(v) in (int, float) for v in figures.values())


def test_warm_report_line_has_no_init_duration():
    """A warm invocation's REPORT has no Init Duration, and no key for it is invented."""
    line = (
        f"REPORT RequestId: {RID}\tDuration: 3.10 ms\tBilled Duration: 4 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 70 MB\t"
    )
    record, _ = parse_message(line)
    assert record["duration_ms"] == 3.1
    assert "init_duration_ms" not in record


def test_snapstart_and_xray_report_fields():
    """SnapStart restore figures are read, and the X-Ray line's trace fields."""
    line = (
        f"REPORT RequestId: {RID}\tDuration: 20.00 ms\tBilled Duration: 120 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 90 MB\tRestore Duration: 310.22 ms\t"
        "Billed Restore Duration: 100 ms\t\nXRAY TraceId: 1-5e1b4151-5ac6c58f5b5dbd6a3f4a4c1d\t"
        "SegmentId: 6a3e7d9c0b1a2f3e\tSampled: true"
    )
    record, _ = parse_message(line)
    assert record["restore_duration_ms"] == 310.22
    assert record["billed_restore_duration_ms"] == 100
    assert (record["trace_id"], record["segment_id"], record["sampled"]) == (
        "1-5e1b4151-5ac6c58f5b5dbd6a3f4a4c1d",
        "6a3e7d9c0b1a2f3e",
        True,
    )


def test_init_start_line():
    """INIT_START gives the runtime version and its ARN."""
    arn = "arn:aws:lambda:us-east-1::runtime:" + "7b620fc2e66107a1046b140b9d3202958" * 2
    record, t = parse_message(
        f"INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: {arn}\n"
    )
    assert record["lambda_event"] == "init_start"
    assert record["runtime_version"] == "python:3.12.v38"
    assert record["runtime_version_arn"] == arn
    assert t is None


# ---------------------------------------------------------------- Lambda runtime lines
@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param("ERROR", "ERROR", id="ERROR"),
        pytest.param("WARNING", "WARNING", id="WARNING"),
        pytest.param("INFO", "INFO", id="INFO"),
        pytest.param("DEBUG", "DEBUG", id="DEBUG"),
        pytest.param("CRITICAL", "CRITICAL", id="CRITICAL"),
    ],
)
def test_runtime_line_gives_level_time_request_and_message(level, expected):
    """`[LEVEL]\\t<time>\\t<request id>\\t<message>` is split into its four fields."""
    line = f"[{level}]\t2026-11-26T10:07:01.537Z\t{RID}\tpayment gateway timeout after 3000 ms\n"
    record, t = parse_message(line)
    assert record == {
        "level": expected,
        "time": "2026-11-26T10:07:01.537Z",
        "request_id": RID,
        "message": "payment gateway timeout after 3000 ms",
    }
    assert t == 1795687621537


def test_runtime_message_keeps_its_own_tabs():
    """Tabs after the request id belong to the message (only the first three split)."""
    record, _ = parse_message(f"[INFO]\t2026-11-26T10:07:01.000Z\t{RID}\tcol1\tcol2\tcol3")
    assert record["message"] == "col1\tcol2\tcol3"


# ---------------------------------------------------------------- named parsers
def test_builtin_parsers_are_registered():
    """The JSON and Lambda parsers are selectable by name."""
    assert {"json", "lambda_platform", "lambda_runtime"} <= set(registry.names())


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        pytest.param("json", "[1, 2]", "json: expected an object, got list", id="json on array"),
        pytest.param(
            "lambda_platform", "hello", "lambda_platform: not a platform line", id="platform"
        ),
        pytest.param("lambda_runtime", "hello", "lambda_runtime: not a runtime line", id="runtime"),
    ],
)
def test_named_parser_flags_text_it_cannot_parse(name, text, reason):
    """A named parser that cannot parse a text keeps it whole and names itself in parse_error."""
    assert registry.build(name)(text) == {"message": text, "parse_error": reason}


def test_named_json_parser_normalises_aliases():
    """The named JSON parser applies the same alias normalisation as the automatic path."""
    assert registry.build("json")('{"msg": "hi", "lvl": "warn"}') == {
        "message": "hi",
        "level": "WARN",
    }


# ---------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_message_never_raises_and_always_yields_a_dict(text):
    """Any text parses to a dict record and an int-or-None time; nothing raises."""
    record, t = parse_message(text)
    assert isinstance(record, dict)
    assert t is None or type(t) is int


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_time_keys = st.sampled_from(
    ["time", "timestamp", "@timestamp", "ts", "level", "msg", "event", "other"]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_time_keys | st.text(max_size=8), _json_values, max_size=6))
def test_any_json_object_parses_and_its_time_is_archivable(doc):
    """Any JSON object parses without raising, and any time taken from it can be dated."""
    import time

    record, t = parse_message(orjson.dumps(doc).decode())
    assert isinstance(record, dict)
    if t is not None:
        time.gmtime(t // 1000)  # what the archive's partition key does with it


# ---------------------------------------------------------------- integers beyond 64 bits
@pytest.mark.parametrize(
    ("text", "kept_as_text"),
    [
        pytest.param('{"id": 123456789012345678901234567890}', True, id="30 digits"),
        pytest.param('{"id": 18446744073709551616}', True, id="2**64, one past uint64"),
        pytest.param('{"a": [{"b": -9223372036854775809}]}', True, id="below -2**63, nested"),
        pytest.param('{"id": 18446744073709551615}', False, id="uint64 max stays a number"),
        pytest.param('{"x": 1e19}', False, id="an exponent is a float, not a lost integer"),
        pytest.param('{"x": 1e19, "s": "1234567890123456789"}', True, id="digits in a string"),
        pytest.param('{"x": 1e19, "s": "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩"}', False, id="non-ASCII digits"),
        pytest.param('{"x": 1e19, "s": "123456789012345678"}', False, id="18 digits"),
    ],
)
def test_integer_beyond_64_bits_keeps_the_exact_text(text, kept_as_text):
    """A JSON message whose integer orjson could only read as a rounded double keeps its
    exact text (parse_error says why); an integral double from an exponent does not,
    unless the text holds a run of 19 ASCII digits that could be such an integer."""
    record, _ = parse_message(text)
    assert (record.get("parse_error") == "json: integer beyond 64 bits") is kept_as_text
    assert (record.get("message") == text) is kept_as_text


def test_the_large_integer_check_uses_no_python_regex():
    """Log text never reaches Python's `re` in the automatic parse path (the integer check
    is a linear scan of the text)."""
    import chalicelib.parsers as parsers

    assert not any(type(v).__name__ == "Pattern" for v in vars(parsers).values())
