"""A fresh function instance for `sources_bench.py`: peak RSS of one large invocation.

    python bench/sources_child.py SPEC.json OUT.json

SPEC is `{"kind": "kinesis", "rules": path, "event": path}` (a Kinesis batch read
from a file, as Lambda's runtime client reads the event) or `{"kind": "s3",
"rules": path, "mib": n}` (an SQS message naming an n MiB gzip object that the
GetObject stub makes as it is read, see `sources_bench.GzipLines`). AWS calls are
answered by a `before-send` hook on boto3's default session, so the runtime builds
its own clients as on AWS (see child.py); the handler is `app`'s Chalice function,
called as Lambda calls it.

Reports ru_maxrss (and VmHWM as a cross-check) before and after the handler, the
handler's wall time, the time spent inside the stubs making the object and
counting archive lines (to subtract), the ledger the handler reported and its
reply. Must be started through a forked `sh` (sources_bench.spawn): ru_maxrss
survives exec.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any


def _vm_hwm_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    spec_path, out_path = sys.argv[1:3]
    with open(spec_path, "rb") as f:
        spec: dict[str, Any] = json.load(f)
    import boto3
    import sources_bench as sb

    with open(spec["rules"], "rb") as f:
        answers = sb.SourceAnswers(json.load(f))
    boto3.setup_default_session()
    answers.install_on_session(boto3.DEFAULT_SESSION)
    streams: list[sb.GzipLines] = []

    if spec["kind"] == "kinesis":
        with open(spec["event"], "rb") as f:
            event = json.load(f)
        context: Any = sb.KinesisContext()
    else:
        pool = sb.line_pool()  # ~3 MB: the stub's, counted in "after imports"
        size = int(spec["mib"]) * 1024 * 1024
        key = sb.object_key(spec["mib"])
        etag = f"{spec['mib']:08x}{'0' * 24}-{spec['mib']}"  # a multipart upload's ETag shape

        def open_body() -> sb.GzipLines:
            streams.append(sb.GzipLines(pool, size))
            return streams[-1]

        answers.objects[(sb.BUCKET, key)] = sb.S3Object(etag, open_body)
        answers.count_archive_lines = True
        event = sb.s3_event(key, etag, 0)

    import app

    ledgers = sb.Ledgers()
    rss_before_kb = _rss_kb()
    hwm_before_kb = _vm_hwm_kb()
    with ledgers.capture():
        if spec["kind"] == "kinesis":
            t0 = time.perf_counter()
            reply = app.kinesis_records(event, context)
        else:
            context = sb.CountdownContext(sb.FIFTEEN_MIN_MS)  # the clock starts now
            t0 = time.perf_counter()
            reply = app.s3_objects(event, context)
        t1 = time.perf_counter()
    rss_kb = _rss_kb()
    (result,) = ledgers.take()
    stream = streams[0] if streams else None
    out = {
        "rss_before_kb": rss_before_kb,
        "hwm_before_kb": hwm_before_kb,
        "rss_kb": rss_kb,
        "hwm_kb": _vm_hwm_kb(),
        "handler_s": t1 - t0,
        "stub_s": ((stream.make_ns if stream else 0) + answers.count_ns) / 1e9,
        "reply": reply,
        "result": result,
        "calls": dict(answers.calls),
        "archive_bytes": answers.archive_bytes,
        "archive_lines": answers.archive_lines,
        "lines": stream.lines if stream else 0,
        "plain_bytes": stream.plain_bytes if stream else 0,
        "gz_bytes": stream.gz_bytes if stream else 0,
        "reads": stream.reads if stream else 0,
        "largest_read": stream.largest_read if stream else 0,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    with open(out_path, "w") as report:
        json.dump(out, report)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
