"""Instructions per event of the `s3_objects` handler, counted by callgrind (repeatable on
a loaded machine, where wall-clock ratios are not).

    python bench/s3_instructions.py [TREE] [--mib SMALL BIG]

Runs this script's `--child` twice under `valgrind --tool=callgrind`, once per object
size: a fresh interpreter imports TREE's code (this repository by default; any checkout
of it with its `bench/` works, so two commits are measured the same way), makes the
bench's Runtime (`harness.make_runtime`: botocore clients answered by `before-send`
hooks, the 20 rules of `workload.RULES`, Slack on loopback), invokes the handler once on
a 1 MiB object to warm it, then once on the measured object: an SQS message naming a
gzip object of `sources_bench.line_pool` lines, served from memory as `bench_s3`
serves its throughput object. Prints (Ir(big) - Ir(small)) / (events(big) -
events(small)): what each further event costs, the imports, warm-up and fixed
per-invocation costs cancelled. The objects are made once and kept under the system's
temporary directory, so making them is not counted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import callgrind  # this script's directory, imported before TREE's bench

HERE = Path(__file__).resolve().parent


def _object(sb: Any, mib: int) -> tuple[bytes, int]:
    """The gzip object of `mib` MiB and its line count, cached on disk."""
    cache = Path(tempfile.gettempdir()) / f"sluice-s3-instructions-{mib}.gz"
    count = cache.with_suffix(".lines")
    if cache.exists() and count.exists():
        return cache.read_bytes(), int(count.read_text())
    gz, n = sb.prepared_object(sb.line_pool(), mib)
    cache.write_bytes(gz)
    count.write_text(str(n))
    return gz, n


def child(tree: Path, mib: int) -> None:
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import harness
    import sources_bench as sb
    import workload
    from stubs import SlackServer

    objects = {m: _object(sb, m) for m in (1, mib)}  # made by main, read here
    with SlackServer() as slack:
        harness.set_env(slack.url)
        answers = sb.SourceAnswers(workload.rule_items())
        rt = harness.make_runtime(answers)
        from chalicelib.handlers import handle_s3_objects

        ledgers = sb.Ledgers()
        for k, m in enumerate((1, mib), 1):
            gz, n = objects[m]
            crc = base64.b64encode((zlib.crc32(gz) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
            etag = hashlib.md5(gz, usedforsecurity=False).hexdigest()
            key = sb.object_key(k)
            answers.objects[(sb.BUCKET, key)] = sb.S3Object(
                etag, lambda gz=gz: sb.MemoryRaw(gz), len(gz), crc
            )
            with ledgers.capture(), harness.quiet_stdout():
                reply = handle_s3_objects(sb.s3_event(key, etag, len(gz)), sb.S3Context(), rt)
            assert reply == {"batchItemFailures": []}, reply
            (r,) = ledgers.take()
            sb.check_invocation(r, n, key)
        print(f"events {n} alerts {r['alerts']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", nargs="?", default=str(HERE.parent))
    ap.add_argument("--mib", nargs=2, type=int, default=(2, 4), metavar=("SMALL", "BIG"))
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    if args.child:
        child(tree, args.child)
        return 0
    # The objects are made here, outside valgrind: the counted runs only read them.
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import sources_bench as sb

    for mib in (1, *args.mib):
        _object(sb, mib)
    counts = {}
    for mib in args.mib:
        ir, events, alerts = callgrind.count(__file__, tree, mib)
        counts[mib] = (ir, events)
        print(f"  {mib} MiB object: {events:,} events, {alerts} alerts, {ir:,} instructions")
    figure = callgrind.per_event(counts, *args.mib)
    print(f"s3_objects instructions per event ({tree}): {figure:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
