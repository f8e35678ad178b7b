"""KPL aggregation: de-aggregation of the Kinesis Producer Library's record format."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import DecodeError
from chalicelib.sources import kpl

# Hand-assembled from the format spec (amazon-kinesis-producer aggregation-format.md):
# partition_key_table = ["pk"], records = [{partition_key_index: 0, data: "hi"}].
_BODY = bytes([0x0A, 0x02]) + b"pk" + bytes([0x1A, 0x06, 0x08, 0x00, 0x1A, 0x02]) + b"hi"
SPEC_SAMPLE = kpl.MAGIC + _BODY + hashlib.md5(_BODY).digest()


def test_spec_sample_deaggregates() -> None:
    """A record built byte by byte from the published format yields its one user record."""
    assert kpl.is_aggregated(SPEC_SAMPLE)
    assert kpl.deaggregate(SPEC_SAMPLE) == [("pk", b"hi")]


def test_aggregate_matches_the_spec_bytes() -> None:
    """The aggregator used by the simulator writes exactly the published encoding."""
    assert kpl.aggregate([("pk", b"hi")]) == SPEC_SAMPLE


@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=200)), max_size=30))
def test_round_trip(records: list[tuple[str, bytes]]) -> None:
    """Any list of (partition key, data) survives aggregation and de-aggregation unchanged."""
    assert kpl.deaggregate(kpl.aggregate(records)) == records


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(SPEC_SAMPLE[:-1] + b"\x00", id="digest mismatch"),
        pytest.param(
            kpl.MAGIC + b"\x0a\xff" + hashlib.md5(b"\x0a\xff").digest(), id="truncated varint"
        ),
        pytest.param(
            kpl.MAGIC + b"\x0a\x05pk" + hashlib.md5(b"\x0a\x05pk").digest(), id="truncated field"
        ),
        pytest.param(
            kpl.MAGIC
            + b"\x1a\x04\x08\x05\x1a\x00"
            + hashlib.md5(b"\x1a\x04\x08\x05\x1a\x00").digest(),
            id="partition key index out of range",
        ),
    ],
)
def test_corrupt_records_raise_decode_error(data: bytes) -> None:
    """A corrupted aggregate raises DecodeError (dead-lettered by the handler), nothing else."""
    with pytest.raises(DecodeError) as e:
        kpl.deaggregate(data)
    assert e.value.stage == "kpl"


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_decode_error(data: bytes) -> None:
    """Arbitrary bytes after the magic either de-aggregate or raise DecodeError."""
    blob = kpl.MAGIC + data + hashlib.md5(data).digest()
    try:
        kpl.deaggregate(blob)
    except DecodeError:
        pass
