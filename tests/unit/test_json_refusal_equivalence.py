"""json_refusal refuses exactly what its previous form refused, and cuts the same strings.

The previous implementation is kept here as the reference; generated JSON objects (flat
and nested, every value type orjson makes, integers at and beyond the 64-bit edges,
integral doubles around 2**63, 19-digit runs in strings, texts short and long, nesting
past the depth limit) must get the same answer and leave the same record.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.parsers import (
    _INTEGER_REFUSAL,
    _WALK_MIN,
    MAX_DEPTH,
    MAX_FIELDS,
    _depth,
    fit_record,
    json_refusal,
    rounded_integer,
)

_INT64 = 2.0**63


def reference(doc: dict[str, Any], text: str) -> str | None:
    """json_refusal as it was before its flat-record loop tested common types first."""
    if len(text) > _WALK_MIN or len(doc) > MAX_FIELDS:
        problem = fit_record(doc)
        if problem is not None:
            return f"json: {problem}"
        return _INTEGER_REFUSAL if rounded_integer(doc, text) else None
    nested = big = False
    for x in doc.values():
        t = type(x)
        if t is dict or t is list:
            nested = True
        elif t is float and (x >= _INT64 or x <= -_INT64):
            big = True
    if nested:
        if text.count("{") + text.count("[") > MAX_DEPTH and _depth(doc) > MAX_DEPTH:
            return f"json: nested over {MAX_DEPTH} levels"
        return _INTEGER_REFUSAL if rounded_integer(doc, text) else None
    return _INTEGER_REFUSAL if big and rounded_integer(doc, text) else None


EDGE_INTS = [
    0,
    -1,
    2**53,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    10**19,
    10**29 + 7,
    -(10**25),
]
EDGE_FLOATS = [
    0.5,
    -2.25,
    1e18,
    9.2e18,
    9.3e18,
    1e19,
    -1e19,
    2.0**63,
    -(2.0**63),
    1.5e300,
    1e19 + 0.5,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_FLOATS),
    st.text(max_size=30),
    st.sampled_from(["1234567890123456789", "x" * 40, "{[{[", "0" * 25]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=8), values, max_size=12)


def _check(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)  # integers beyond 64 bits written as digits, as a log line has them
    parsed = orjson.loads(text)
    a, b = copy.deepcopy(parsed), copy.deepcopy(parsed)
    assert json_refusal(a, text) == reference(b, text)
    assert repr(a) == repr(b)  # the same strings cut, the same flags


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects)
def test_same_answer_as_the_reference(doc: dict[str, Any]) -> None:
    """Any generated object gets the same refusal (or none) and the same record."""
    _check(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects, st.integers(min_value=0, max_value=3))
def test_same_answer_for_long_texts(doc: dict[str, Any], pad: int) -> None:
    """Texts over the short-record limit (walked whole, strings cut) agree too."""
    doc = {**doc, "pad": "p" * (_WALK_MIN + pad * 50_000)}
    _check(doc)


def _nest(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = {"k": leaf} if i % 2 else [leaf]
    return leaf


def test_same_answer_at_the_depth_limit() -> None:
    """Objects nested just under, at and past MAX_DEPTH, with and without a big integer
    at the bottom, agree."""
    for depth in (MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 5):
        for leaf in ("x", 10**25, 1.5, -(2**64)):
            _check({"a": _nest(depth, leaf), "b": 1})


FIXED = [
    {"id": 10**25, "message": "big"},
    {"id": -(10**25), "message": "big negative"},
    {"id": 2**64, "n": 1},
    {"id": -(2**63) - 1},
    {"id": 2**64 - 1, "m": -(2**63)},
    {"x": 1e19, "ref": "1234567890123456789"},
    {"x": -1e19, "ref": "1234567890123456789"},
    {"x": 1e19},
    {"x": 9.3e18, "ref": "0000000000000000000"},
    {"x": 1.5, "ok": True, "none": None, "s": "t"},
    {"nested": {"id": 10**25}},
    {"nested": [{"x": -1e19}], "ref": "1234567890123456789"},
    {"flag": True, "n": 0, "f": 0.0},
]


def test_same_answer_for_the_edges() -> None:
    """Integers and doubles at the 64-bit edges, in flat and nested records, agree."""
    for doc in FIXED:
        _check(doc)
