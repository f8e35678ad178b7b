"""A subscription payload is inflated by ISA-L where its wheel is installed: whatever the
bytes, the decoder ends as it does with the standard library's zlib: the same document,
or an error of the same stage. (Where the text reaches the limit, the incremental path,
on zlib, reads it; ISA-L checks a stream's checksum with its last byte, zlib after it, so
a damaged stream that fills the limit exactly is refused by one path or the other.)"""

from __future__ import annotations

import base64
import gzip
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import DecodeError
from chalicelib.sources import cloudwatch

isal_zlib = pytest.importorskip("isal.isal_zlib")


def _outcome(raw: bytes, limit: int, inflater: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cloudwatch, "_inflater", inflater)
    try:
        doc = cloudwatch.small_document(raw, limit)
        if doc is None:  # larger than the limit: read incrementally, as batch_from_bytes does
            doc = cloudwatch._document(b"".join(cloudwatch._pieces(raw, 1 << 24)))
    except DecodeError as e:
        return ("error", e.stage)
    return ("document", doc)


def _document(n: int) -> bytes:
    events = [
        {"id": str(i), "timestamp": 1_700_000_000_000 + i, "message": f"line {i}"} for i in range(n)
    ]
    return orjson.dumps(
        {"messageType": "DATA_MESSAGE", "logGroup": "/aws/lambda/x", "logEvents": events}
    )


@st.composite
def _payloads(draw: Any) -> tuple[bytes, int]:
    """Compressed documents (gzip or zlib, any level), cut short, with a bit flipped, a
    header byte changed, a checksum or length off, junk or a second member after them;
    and a limit above, at or below the text's length."""
    text = draw(
        st.one_of(
            st.integers(0, 300).map(_document),
            st.binary(max_size=400),
            st.sampled_from([b"", b"{}", b"[1]", b'{"a":']),
        )
    )
    if draw(st.booleans()):
        packed = gzip.compress(text, compresslevel=draw(st.integers(0, 9)))
    else:
        packed = zlib.compress(text, draw(st.integers(0, 9)))
    damage = draw(
        st.sampled_from(["none", "cut", "flip", "header", "flags", "junk", "member", "crc", "size"])
    )
    if damage == "cut":
        packed = packed[: draw(st.integers(0, len(packed)))]
    elif damage == "flip":
        i = draw(st.integers(0, len(packed) - 1))
        packed = packed[:i] + bytes([packed[i] ^ (1 << draw(st.integers(0, 7)))]) + packed[i + 1 :]
    elif damage == "header":  # a flag, the method, the time, the OS: any header byte
        i = draw(st.integers(0, min(9, len(packed) - 1)))
        packed = packed[:i] + bytes([draw(st.integers(0, 255))]) + packed[i + 1 :]
    elif damage == "flags" and packed[:2] == b"\x1f\x8b":  # reserved or optional-field flags
        flags = draw(st.sampled_from([0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xE0]))
        packed = packed[:3] + bytes([flags]) + packed[4:]
    elif damage == "junk":
        packed += draw(st.binary(min_size=1, max_size=8))
    elif damage == "member":
        packed += gzip.compress(b'{"second": true}')
    elif damage in ("crc", "size"):
        at = len(packed) - (8 if damage == "crc" else 4)
        packed = packed[:at] + bytes([packed[at] ^ 1]) + packed[at + 1 :]
    limit = draw(st.sampled_from([1 << 20, len(text), len(text) + 1, max(1, len(text) - 1), 1, 64]))
    return packed, limit


@settings(max_examples=1500, deadline=None)
@given(_payloads())
def test_isal_decides_as_zlib_does(payload: tuple[bytes, int]) -> None:
    """Any bytes, any limit: the same outcome with either inflater."""
    raw, limit = payload
    with pytest.MonkeyPatch.context() as mp:
        ours = _outcome(raw, limit, isal_zlib, mp)
        reference = _outcome(raw, limit, zlib, mp)
    assert ours == reference


def test_the_installed_inflater_is_isal() -> None:
    """The wheel is in requirements.txt: the decoder uses it."""
    assert cloudwatch._inflater is isal_zlib


_b64_texts = st.one_of(
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet="ABCabc+/=- \n\tü", max_size=20),
    st.binary(max_size=20),
)


@settings(max_examples=1000, deadline=None)
@given(_b64_texts)
def test_base64_is_decoded_as_the_standard_library_validates_it(data: str | bytes) -> None:
    """Text or bytes, valid or not (padding, spaces, non-ASCII): the same bytes as
    `base64.b64decode(data, validate=True)`, or a base64 error where it raises."""
    try:
        expected: Any = base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        expected = "refused"
    try:
        ours: Any = cloudwatch.b64decode(data)
    except DecodeError as e:
        assert e.stage == "base64"
        ours = "refused"
    assert ours == expected
