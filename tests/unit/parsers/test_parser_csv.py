"""csv parser: named columns, quoting, TSV, typing and column-count refusals."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.options import check_options
from chalicelib.parsers import registry

# CloudFront's standard log is tab-separated; these are its first columns.
CLOUDFRONT = ["date", "time_of_day", "edge_location", "sc_bytes", "c_ip", "method", "host", "uri"]


def build(opts):
    assert check_options(opts, registry.spec("csv").options, "parser.csv") == []
    return registry.build("csv", opts)


def test_quoted_fields():
    """Quoted values keep delimiters and doubled quotes; a `msg` column becomes the message."""
    parse = build({"columns": ["when", "user", "msg", "status"]})
    text = '2026-11-26T10:07:01Z,alice,"checkout failed, card ""declined""",402'
    assert parse(text) == {
        "when": "2026-11-26T10:07:01Z",
        "user": "alice",
        "message": 'checkout failed, card "declined"',
        "status": "402",  # text unless typed
    }


@pytest.mark.parametrize("delimiter", ["\t", "\\t"], ids=["tab", "escaped tab"])
def test_tsv_cloudfront(delimiter):
    """A tab delimiter, written as a tab or as YAML's single-quoted `\\t`, reads TSV."""
    parse = build({"columns": CLOUDFRONT, "delimiter": delimiter, "types": {"sc_bytes": "int"}})
    text = "\t".join(
        [
            "2026-11-26",
            "10:07:01",
            "FRA56-P1",
            "2390",
            "203.0.113.7",
            "GET",
            "d111111abcdef8.cloudfront.net",
            "/index.html",
        ]
    )
    rec = parse(text)
    assert rec["edge_location"] == "FRA56-P1"
    assert rec["sc_bytes"] == 2390
    assert rec["uri"] == "/index.html"
    assert "message" not in rec


def test_other_quote_and_delimiter():
    """A custom quote character and delimiter are honoured."""
    parse = build({"columns": ["a", "b"], "delimiter": ";", "quote": "'"})
    assert parse("'x;y';z") == {"a": "x;y", "b": "z"}


def test_trailing_newline_and_empty_values():
    """The line terminator is not data; empty columns are empty text."""
    parse = build({"columns": ["a", "b", "c"]})
    assert parse("1,,3\r\n") == {"a": "1", "b": "", "c": "3"}


def test_quoted_newline():
    """A newline inside a quoted value belongs to the value."""
    parse = build({"columns": ["a", "b"]})
    assert parse('"line one\nline two",x')["a"] == "line one\nline two"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("1,2", "csv: expected 3 columns, found 2", id="too few"),
        pytest.param("1,2,3,4", "csv: expected 3 columns, found 4", id="too many"),
        pytest.param("", "csv: empty line", id="empty"),
        pytest.param('1,"2,3', "csv: unexpected end of data", id="unterminated quote"),
        pytest.param('1,"2"x,3', "csv: ',' expected after '\"'", id="text after quote"),
        pytest.param(
            "1,2\n3",
            "csv: new-line character seen in unquoted field"
            " - do you need to open the file in universal-newline mode?",
            id="newline unquoted",
        ),
        pytest.param("1,x,3", "csv: field 'b' is not int: 'x'", id="bad typed value"),
    ],
)
def test_refused(text, reason):
    """Wrong column counts, broken quoting and untyped values fail with the text kept."""
    parse = build({"columns": ["a", "b", "c"], "types": {"b": "int"}})
    assert parse(text) == {"message": text, "parse_error": reason}


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        pytest.param({}, "required", id="columns missing"),
        pytest.param({"columns": []}, "at least one column", id="no columns"),
        pytest.param({"columns": ["a", "a"]}, "unique", id="duplicate column"),
        pytest.param({"columns": ["a", 3]}, "non-empty strings", id="non-string column"),
        pytest.param({"columns": ["a"], "delimiter": ", "}, "one character", id="long delimiter"),
        pytest.param({"columns": ["a"], "quote": ""}, "one character", id="empty quote"),
        pytest.param({"columns": ["a"], "types": {"a": "uuid"}}, "expected one of", id="bad type"),
        pytest.param({"columns": "a,b"}, "wrong type", id="columns as text"),
    ],
)
def test_options_rejected_at_configuration(opts, problem):
    """Option mistakes are reported by the schema with the option's path."""
    problems = check_options(opts, registry.spec("csv").options, "parser.csv")
    assert any(problem in reason for _, reason in problems), problems


def test_quote_equal_to_delimiter_refused_by_factory():
    """A quote character that is also the delimiter stops the parser being built."""
    with pytest.raises(ValueError, match="must differ"):
        registry.build("csv", {"columns": ["a"], "delimiter": ",", "quote": ","})


def test_types_for_unknown_column_refused_by_factory():
    """Types naming a column that does not exist stop the parser being built."""
    with pytest.raises(ValueError, match="not columns: z"):
        registry.build("csv", {"columns": ["a"], "types": {"z": "int"}})


@given(st.text(), st.sampled_from([",", "\t", ";"]))
def test_never_raises(text, delimiter):
    """Any text gives a serialisable dict; a failure keeps the text as its message."""
    rec = build({"columns": ["a", "b", "c"], "delimiter": delimiter})(text)
    orjson.dumps(rec)
    if "parse_error" in rec:
        assert rec["message"] == text


@given(st.lists(st.text(st.characters(exclude_characters="\r\x00")), min_size=3, max_size=3))
def test_round_trip_with_csv_writer(values):
    """Whatever the stdlib writer produces for one row reads back as the same values."""
    buf = io.StringIO()
    csv.writer(buf).writerow(values)  # the \r\n terminator makes it quote newlines
    rec = build({"columns": ["c1", "c2", "c3"]})(buf.getvalue().removesuffix("\r\n"))
    assert [rec.get("c1"), rec.get("c2"), rec.get("c3")] == values
