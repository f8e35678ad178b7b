"""CSV / TSV: one delimited line, named by the operator's `columns`.

The stdlib `csv` module reads lines with quoting (strict: a stray quote is an
error, not a guess); a line without the quote character is split directly,
which gives the same fields without building a reader. Values stay text unless
`types` says otherwise (a column of digits is often an id, not a number).
"""

from __future__ import annotations

import csv
from typing import Any

from chalicelib.normalise import normalise
from chalicelib.options import Option
from chalicelib.parsers import MAX_FIELDS
from chalicelib.parsers.regex import typer, types_option
from chalicelib.parsers.registry import Parser, failed, register

# YAML's '\t' (single-quoted) is backslash-t; both spellings mean a tab.
_ESCAPED = {"\\t": "\t"}


def _char(value: str) -> str:
    return _ESCAPED.get(value, value)


def _check_char(value: str) -> str | None:
    c = _char(value)
    if len(c) != 1 or c in "\r\n":
        return "must be one character (\\t for a tab)"
    return None


def _check_columns(columns: list[Any]) -> str | None:
    if not columns:
        return "at least one column"
    if len(columns) > MAX_FIELDS:
        return f"at most {MAX_FIELDS} columns"
    if not all(isinstance(c, str) and c for c in columns):
        return "column names must be non-empty strings"
    if len(set(columns)) != len(columns):
        return "column names must be unique"
    return None


@register(
    "csv",
    description="one delimited line (CSV, TSV) with named columns",
    options={
        "columns": Option(list, "column names, in order", required=True, check=_check_columns),
        "delimiter": Option(str, "field separator (\\t for TSV)", default=",", check=_check_char),
        "quote": Option(str, "quote character", default='"', check=_check_char),
        "types": types_option(),
    },
)
def csv_parser(opts: dict[str, Any]) -> Parser:
    columns: list[str] = list(opts["columns"])
    delimiter = _char(opts.get("delimiter") or ",")
    quote = _char(opts.get("quote") or '"')
    types: dict[str, str] = opts.get("types") or {}
    unknown = sorted(set(types) - set(columns))
    if unknown:
        raise ValueError(f"types name fields that are not columns: {', '.join(unknown)}")
    if quote == delimiter:
        raise ValueError("quote and delimiter must differ")
    # Any dialect the csv module refuses is refused here, not on every line.
    csv.reader([], delimiter=delimiter, quotechar=quote, strict=True)
    convert = typer(types)
    expected = len(columns)

    def split(line: str) -> list[str]:
        if quote not in line and "\n" not in line and "\r" not in line:
            return line.split(delimiter)
        rows = list(csv.reader([line], delimiter=delimiter, quotechar=quote, strict=True))
        if len(rows) != 1:
            raise csv.Error(f"{len(rows)} rows in one line")
        return rows[0]

    def parse(text: str) -> dict[str, Any]:
        line = text.rstrip("\r\n")  # the line terminator, not data
        if not line:
            return failed(text, "csv", "empty line")
        try:
            values = split(line)
        except csv.Error as e:
            return failed(text, "csv", str(e))
        if len(values) != expected:
            return failed(text, "csv", f"expected {expected} columns, found {len(values)}")
        rec: dict[str, Any] = dict(zip(columns, values, strict=True))
        if convert is not None and (problem := convert(rec)):
            return failed(text, "csv", problem)
        return normalise(rec)[0]

    return parse
