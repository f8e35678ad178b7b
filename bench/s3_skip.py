"""How fast an S3 continuation passes over the lines an earlier invocation handled.

A continuation of a single gzip member (or zstd frame) cannot seek: it decompresses from
the start and skips the handled lines. It used to split and decode every one of them (as
lines to be read); now it counts newlines in the raw decompressed bytes. Plain text and
multi-member gzip skip nothing: they resume by a ranged GET (chalicelib/sources/s3.py).

    .venv/bin/python bench/s3_skip.py   ->  bench: s3 skip ... ratio=<new/old speed>
"""

from __future__ import annotations

import gzip
import io
import time

import harness  # noqa: F401  (puts the repository root on sys.path)

from chalicelib.sources import s3_formats
from chalicelib.sources.s3 import Cursor, iter_lines

LINES = 2_000_000
BODY = "".join(
    f"2026-12-02T10:00:00Z INFO request {i} served in 12 ms path=/api/items\n" for i in range(LINES)
).encode()
GZ = gzip.compress(BODY, 1)


def split_and_decode() -> float:
    """The old way: every handled line split, decoded and shown to the format."""
    fmt = s3_formats.FORMATS["text"]()
    t = time.perf_counter()
    for line in iter_lines(io.BytesIO(GZ), "x.log.gz", documents=False):
        fmt.header(line.text)
    return time.perf_counter() - t


def count_newlines() -> float:
    t = time.perf_counter()
    for _ in iter_lines(
        io.BytesIO(GZ), "x.log.gz", documents=False, cursor=Cursor(), skip=LINES, stop=lambda: False
    ):
        pass
    return time.perf_counter() - t


def main() -> None:
    old = min(split_and_decode() for _ in range(3))
    new = min(count_newlines() for _ in range(3))
    print(
        f"bench: s3 skip lines={LINES} text={len(BODY) / 1e6:.0f}MB gzip "
        f"split_and_decode={LINES / old / 1e6:.2f}M lines/s "
        f"count_newlines={LINES / new / 1e6:.2f}M lines/s ratio={old / new:.1f}"
    )


if __name__ == "__main__":
    main()
