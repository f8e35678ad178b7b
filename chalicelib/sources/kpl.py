"""KPL record aggregation: many user records packed in one Kinesis record.

Format (amazon-kinesis-producer, aggregation-format.md):
    magic 0xF3899AC2 | protobuf AggregatedRecord | MD5 of the protobuf (16 bytes)
    AggregatedRecord { repeated string partition_key_table = 1;
                       repeated string explicit_hash_key_table = 2;
                       repeated Record records = 3; }
    Record { uint64 partition_key_index = 1; uint64 explicit_hash_key_index = 2;
             bytes data = 3; repeated Tag tags = 4; }
A forty-line protobuf reader does this; the protobuf runtime (~2 MB, ~30 ms to
import) would be the only reason to carry one.
"""

from __future__ import annotations

import hashlib

from chalicelib.errors import DecodeError

MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST = 16


def is_aggregated(data: bytes) -> bool:
    return data[:4] == MAGIC and len(data) >= 4 + _DIGEST


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("kpl", "truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("kpl", "varint too long")


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one protobuf message; unknown wire types refused."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _varint(buf, pos)
            out.append((num, v))
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise DecodeError("kpl", "truncated field")
            out.append((num, buf[pos : pos + n]))
            pos += n
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise DecodeError("kpl", f"unsupported wire type {wire}")
    return out


def deaggregate(data: bytes) -> list[tuple[str, bytes]]:
    """An aggregated record -> [(partition key, data)], checking the MD5."""
    body, digest = data[4:-_DIGEST], data[-_DIGEST:]
    if hashlib.md5(body, usedforsecurity=False).digest() != digest:
        raise DecodeError("kpl", "MD5 mismatch: corrupted aggregated record")
    keys: list[str] = []
    records: list[tuple[int, bytes]] = []
    for num, value in _fields(body):
        if num == 1 and isinstance(value, bytes):
            keys.append(value.decode("utf-8", "replace"))
        elif num == 3 and isinstance(value, bytes):
            pk_index, payload = 0, b""
            for n, v in _fields(value):
                if n == 1 and isinstance(v, int):
                    pk_index = v
                elif n == 3 and isinstance(v, bytes):
                    payload = v
            records.append((pk_index, payload))
    out = []
    for pk_index, payload in records:
        if pk_index >= len(keys):
            raise DecodeError("kpl", f"partition key index {pk_index} out of range")
        out.append((keys[pk_index], payload))
    return out


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_field(num: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _enc_varint(num << 3) + _enc_varint(value)
    return _enc_varint(num << 3 | 2) + _enc_varint(len(value)) + value


def aggregate(records: list[tuple[str, bytes]]) -> bytes:
    """The inverse of `deaggregate` (the simulator and tests produce KPL records with it)."""
    keys: list[str] = []
    index: dict[str, int] = {}
    body = bytearray()
    for pk, _ in records:
        if pk not in index:
            index[pk] = len(keys)
            keys.append(pk)
    for pk in keys:
        body += _enc_field(1, pk.encode())
    for pk, payload in records:
        body += _enc_field(3, _enc_field(1, index[pk]) + _enc_field(3, payload))
    return MAGIC + bytes(body) + hashlib.md5(bytes(body), usedforsecurity=False).digest()
