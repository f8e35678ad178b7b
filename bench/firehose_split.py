"""Splitting Firehose archives of CloudWatch Logs into documents: cost against a floor, and
linearity on hostile content.

    .venv/bin/python bench/firehose_split.py

* Workload: 2,000 subscription documents of 50 events each (`workload.document`, the
  CloudWatch bench's Lambda and ECS lines), concatenated with no separator as Firehose
  writes them, decompressed. Hostile variants: 50 and 200 of the documents with every
  message made of `}{` and escaped quotes (a candidate boundary every 4 bytes).
* Floor: `orjson.loads` of each document, given its bytes (the split for free). `ratio`
  is the splitter's time over the floor's: the extra share of a read the split costs.
* Linearity: the hostile variants' cost per byte over the normal one's, at two sizes
  (the same figure at 4x the size: linear; quadratic would grow 4x).
Medians of 5 on one core; no assertion on time (a report, not a test).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: F401  (puts the repo root on sys.path)
import workload

from chalicelib.sources.firehose import DocumentSplitter

REPS = 5
DOCS = 2000
PIECE = 1024 * 1024  # the S3 reader's decompressed pieces
# Every message a run of escaped quotes and `}{`: a candidate boundary every 4 bytes.
HOSTILE_MESSAGE = '}{\\"' * 40
HOSTILE_DOCS = 50


def split_all(data: bytes) -> int:
    s = DocumentSplitter(1 << 40)
    n = 0
    for i in range(0, len(data), PIECE):
        n += sum(1 for _ in s.feed(data[i : i + PIECE]))
    return n + sum(1 for _ in s.finish())


def timed(fn: object, *args: object) -> float:
    runs = []
    for _ in range(REPS):
        t = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    groups = workload.LOG_GROUPS
    docs = [orjson.dumps(workload.document(groups[i % len(groups)], 50, i)) for i in range(DOCS)]
    data = b"".join(docs)
    mib = len(data) / (1 << 20)
    floor = timed(lambda: [orjson.loads(d) for d in docs])
    split = timed(split_all, data)
    assert split_all(data) == DOCS
    per_mib = split / mib
    print(
        f"  documents {DOCS}, {mib:.1f} MiB; split {split * 1e3:.0f} ms, floor {floor * 1e3:.0f} ms"
    )
    ratios = []
    for n in (HOSTILE_DOCS, 4 * HOSTILE_DOCS):
        noisy = []
        for d in docs[:n]:
            doc = orjson.loads(d)
            for ev in doc["logEvents"]:
                ev["message"] = HOSTILE_MESSAGE
            noisy.append(orjson.dumps(doc))
        noisy_data = b"".join(noisy)
        size = len(noisy_data) / (1 << 20)
        ratios.append(timed(split_all, noisy_data) / size / per_mib)
        print(
            f"  hostile: {n} documents, {size:.1f} MiB, {ratios[-1]:.1f}x the normal cost per byte"
        )
    print(
        f"bench: firehose_split mib_per_s={mib / split:.0f} ratio_to_parse={split / floor:.2f} "
        f"hostile_per_byte={ratios[0]:.1f} hostile_4x_size_per_byte={ratios[1]:.1f}"
    )


if __name__ == "__main__":
    main()
