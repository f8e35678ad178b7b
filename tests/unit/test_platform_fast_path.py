"""START, END and REPORT lines read by their known prefix, and REPORT fields read
again from the table of parts already read, give what the general platform-line path
gives, for every text after the prefix.

The reference is `parse_platform` and `_fields` as they were before either, copied
verbatim.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.parsers import lambda_platform
from chalicelib.parsers.fields import number as _number
from chalicelib.parsers.lambda_platform import _REPORT_FIELDS, _TEXT_FIELDS, parse_platform

RID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"


def _fields(rec: dict[str, Any], parts: list[str]) -> None:
    """_fields before the table of parts (verbatim)."""
    for part in parts:
        label, sep, value = part.strip().partition(": ")
        if not sep:
            continue
        spec = _REPORT_FIELDS.get(label)
        if spec is not None:
            key, unit = spec
            n = _number(value.removesuffix(unit).strip())
            if n is not None:
                rec[key] = n
        elif label in _TEXT_FIELDS:
            rec[_TEXT_FIELDS[label]] = value.strip()
        elif label == "Sampled":
            rec["sampled"] = value.strip() == "true"


def reference(message: str) -> dict[str, Any] | None:
    """parse_platform before the fast path (verbatim)."""
    head, _, rest = message.partition(" ")
    kind = head.lower()
    rec: dict[str, Any] = {"message": message, "level": "INFO", "lambda_event": kind}
    if kind in ("init_report", "xray"):
        _fields(rec, (rest if kind == "init_report" else message).rstrip().split("\t"))
        return rec
    if kind == "init_start":
        for part in rest.split("\t"):
            label, sep, value = part.partition(": ")
            if sep and label == "Runtime Version":
                rec["runtime_version"] = value.strip()
            elif sep and label == "Runtime Version ARN":
                rec["runtime_version_arn"] = value.strip()
        return rec
    parts = rest.rstrip().split("\t")
    label, sep, value = parts[0].partition(": ")
    if label != "RequestId" or not sep:
        return None
    request_id, _, tail = value.partition(" ")
    rec["request_id"] = request_id
    if kind == "start" and tail.startswith("Version: "):
        rec["function_version"] = tail[len("Version: ") :]
    elif kind == "report":
        _fields(rec, parts[1:])
    return rec


PREFIXES = ("START RequestId: ", "END RequestId: ", "REPORT RequestId: ")
REPORT_TAIL = (
    "\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 70 MB\tInit Duration: 180.37 ms\t"
)
# Pieces the tail is made of: separators, whitespace of every kind rstrip removes, the
# labels and units the parser looks for, and numbers of every form.
PIECES = st.sampled_from(
    [
        " ", "\t", "\n", "\r", "\x0b", "\x0c", "\u2003", "\x1c", ":", ": ", "Version: ",
        "$LATEST", "7", RID, "RequestId: ", "Duration: ", "Billed Duration: ", " ms", " MB",
        "Memory Size: ", "Max Memory Used: ", "Init Duration: ", "Status: ", "timeout",
        "Error Type: ", "XRAY TraceId: ", "Sampled: ", "true", "1.5", "1e3", "nan", "-0",
        "99999999999999999999", "é", "\uff11",
    ]
)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(f"START RequestId: {RID} Version: $LATEST", id="START"),
        pytest.param(f"START RequestId: {RID} Version: 7\n", id="START version 7"),
        pytest.param(f"START RequestId: {RID}", id="START no version"),
        pytest.param(f"END RequestId: {RID}", id="END"),
        pytest.param(f"REPORT RequestId: {RID}{REPORT_TAIL}", id="REPORT"),
        pytest.param(f"REPORT RequestId: {RID}\tStatus: timeout", id="REPORT timeout"),
        pytest.param("START RequestId: ", id="prefix alone"),
        pytest.param("END RequestId:  \t ", id="prefix and whitespace"),
        pytest.param("REPORT RequestId: \tDuration: 1 ms", id="empty request id"),
        pytest.param(f"END RequestId: {RID}\u2003", id="unicode space at the end"),
        pytest.param(f"START RequestId: {RID} x\tVersion: 1", id="version after a tab"),
    ],
)
def test_documented_lines_and_near_misses(message: str) -> None:
    """Lambda's documented lines and the shapes next to them read as before."""
    assert parse_platform(message) == reference(message)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(PREFIXES), st.lists(PIECES, max_size=12), st.text(max_size=8))
def test_any_text_after_a_known_prefix_reads_as_before(
    prefix: str, pieces: list[str], noise: str
) -> None:
    """Whatever follows a START, END or REPORT prefix, the record (keys, order, values,
    types) or the refusal is the general path's."""
    message = prefix + "".join(pieces) + noise
    got, want = parse_platform(message), reference(message)
    assert got == want
    assert got is None or list(got) == list(want or ())


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=6).map("".join), max_size=8), st.booleans())
def test_report_fields_read_again_are_the_fields_read_first(
    parts: list[str], clear: bool
) -> None:
    """Reading a REPORT line's parts gives the previous reading's fields (keys, order,
    values, types) the first time, from the table of parts read and after it is cleared."""
    if clear:
        lambda_platform._PARTS.clear()
    for _ in range(2):
        got: dict[str, Any] = {}
        want: dict[str, Any] = {}
        lambda_platform._fields(got, parts)
        _fields(want, parts)
        assert got == want
        assert list(got) == list(want)
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_the_table_of_parts_stays_bounded() -> None:
    """Parts longer than the limit are never kept, and the table never holds more than
    its limit however many distinct parts arrive."""
    long = "Duration: " + "1" * 100 + " ms"
    lambda_platform._fields({}, [long])
    assert long not in lambda_platform._PARTS
    for i in range(3 * lambda_platform._PARTS_MAX):
        lambda_platform._fields({}, [f"Duration: {i}.5 ms"])
        assert len(lambda_platform._PARTS) <= lambda_platform._PARTS_MAX
