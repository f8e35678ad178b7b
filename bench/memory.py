"""Peak memory of hostile inputs that AWS accepts: one fresh function instance per case.

    python bench/memory.py                 # every case: one `bench: memory` line each
    python bench/memory.py child CASE OUT  # (internal) one case in this process

Each case is one invocation of the real handler (`app`'s Chalice function, called as
Lambda calls it) in a fresh interpreter started through a forked `sh` (ru_maxrss
survives exec: see child.py), with `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set to the dev
stage's memory from `.chalice/config.json`. The input is made inside the child, in
pieces, so what the process holds at its peak is the handler's doing, not the
generator's; AWS calls are answered below botocore (`sources_bench.SourceAnswers`):
S3 GetObject from the bytes made, archive objects decompressed and their lines
counted as they arrive, dead letters counted from the SQS messages.

A case passes when the whole process's peak RSS stays within 60% of the configured
memory and the ledger accounts for every input event: received equals the events the
input holds, and archived + dropped + dead_lettered equals received, archive lines
standing for exactly `archived`.

The cases are the table of inputs measured against the unbounded design (all within
AWS's limits): a CloudWatch payload of ~1M tiny events, a gzip Kinesis record
expanding to 1.3M events, four 1 MiB text records of `a\\n`, four 1 MiB KPL aggregates
of tiny user records, 24 S3 JSON lines each with a 30 MiB field, and a single S3 line
`{"Records": [2M tiny objects]}`.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARE = 0.6  # the peak a case may reach, as a share of the configured memory
T0_MS = 1795687621000  # 2026-11-26T10:07:01.000Z


def configured_mb(function: str = "cloudwatch_logs", stage: str = "dev") -> int:
    """The memory `.chalice/config.json` gives `function` in `stage`."""
    cfg = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(cfg["stages"][stage]["lambda_functions"][function]["lambda_memory_size"])


@dataclass(frozen=True)
class Case:
    name: str
    trigger: str  # cloudwatch | kinesis | s3
    events: int  # input events the ledger must account for
    what: str


CASES = (
    Case("cloudwatch_1m_tiny", "cloudwatch", 1_000_000, "one payload of 1M tiny events"),
    Case("kinesis_gzip_1.3m", "kinesis", 1_300_000, "one gzip record expanding to 1.3M events"),
    Case("kinesis_text_4x1mib", "kinesis", 4 * 524_288, "four 1 MiB text records of a\\n"),
    Case("kinesis_kpl_4x1mib", "kinesis", 4 * 149_793, "four 1 MiB KPL aggregates"),
    Case("s3_24x30mib_field", "s3", 24, "24 JSON lines with a 30 MiB field"),
    Case("s3_records_2m", "s3", 2_000_000, 'one line {"Records": [2M tiny objects]}'),
)
BY_NAME = {c.name: c for c in CASES}


# -- inputs, made in pieces --------------------------------------------------------------
def _gzip(pieces: Iterator[bytes], level: int = 9) -> bytes:
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = [z.compress(p) for p in pieces]
    out.append(z.flush())
    return b"".join(out)


def _cloudwatch_doc(n: int, *, distinct_ids: bool) -> Iterator[bytes]:
    yield (
        b'{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/tiny",'
        b'"logStream":"s","subscriptionFilters":["sluice"],"logEvents":['
    )
    step = 10_000
    for start in range(0, n, step):
        end = min(n, start + step)
        if distinct_ids:
            body = b",".join(
                b'{"id":"%d","timestamp":%d,"message":"e%d"}' % (i, T0_MS + i % 1000, i % 10)
                for i in range(start, end)
            )
        else:
            one = b'{"id":"","timestamp":%d,"message":"a"}' % T0_MS
            body = b",".join([one] * (end - start))
        yield (b"," if start else b"") + body
    yield b"]}"


def _kinesis_record(data: bytes, n: int) -> dict[str, Any]:
    """Record `n` of Lambda's Kinesis event carrying `data` (the hostile corpus's shape)."""
    import importlib.util

    path = ROOT / "tests" / "data" / "hostile" / "make.py"
    spec = importlib.util.spec_from_file_location("hostile_make", path)
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    rec: dict[str, Any] = make.kinesis_record(data, n)
    return rec


def _kpl_aggregate(users: int) -> bytes:
    """A KPL aggregate of `users` one-byte user records under one partition key."""
    from chalicelib.sources import kpl

    return kpl.aggregate([("p", b"a")] * users)


def _s3_wide() -> bytes:
    field = 30 * 1024 * 1024
    block = b"x" * (1024 * 1024)

    def pieces() -> Iterator[bytes]:
        for i in range(24):
            yield b'{"n":%d,"payload":"' % i
            for _ in range(field // len(block)):
                yield block
            yield b'"}\n'

    return _gzip(pieces(), 6)


def _s3_records(n: int) -> bytes:
    def pieces() -> Iterator[bytes]:
        yield b'{"Records":['
        step = 100_000
        for start in range(0, n, step):
            yield (b"," if start else b"") + b",".join([b"{}"] * (min(n, start + step) - start))
        yield b"]}\n"

    return _gzip(pieces())


def build(case: Case) -> tuple[dict[str, Any], bytes | None]:
    """(the trigger event, the S3 object's bytes for an s3 case)."""
    if case.name == "cloudwatch_1m_tiny":
        raw = _gzip(_cloudwatch_doc(case.events, distinct_ids=True), 1)
        return {"awslogs": {"data": base64.b64encode(raw).decode()}}, None
    if case.name == "kinesis_gzip_1.3m":
        raw = _gzip(_cloudwatch_doc(case.events, distinct_ids=False))
        return {"Records": [_kinesis_record(raw, 1)]}, None
    if case.name == "kinesis_text_4x1mib":
        data = b"a\n" * 524_288
        return {"Records": [_kinesis_record(data, n) for n in range(1, 5)]}, None
    if case.name == "kinesis_kpl_4x1mib":
        data = _kpl_aggregate(149_793)
        assert len(data) <= 1024 * 1024, len(data)
        return {"Records": [_kinesis_record(data, n) for n in range(1, 5)]}, None
    import sources_bench as sb

    gz = _s3_wide() if case.name == "s3_24x30mib_field" else _s3_records(case.events)
    return sb.s3_event(sb.object_key(1), "0badc0de", len(gz)), gz


# -- the child -------------------------------------------------------------------------
def child(name: str, out_path: str) -> None:
    import boto3
    import sources_bench as sb
    from botocore.awsrequest import AWSPreparedRequest
    from sources_child import _vm_hwm_kb

    case = BY_NAME[name]

    class Answers(sb.SourceAnswers):
        """Archive lines counted under `archive/` only; dead letters counted."""

        def __init__(self) -> None:
            super().__init__([])
            self.dead_letter_messages = 0
            self.dead_letter_count = 0

        def _s3_PutObject(self, request: AWSPreparedRequest) -> Any:
            self.count_archive_lines = "/archive/" in request.url
            return super()._s3_PutObject(request)

        def _sqs_SendMessage(self, request: AWSPreparedRequest) -> Any:
            from stubs import _read_like_urllib3

            body = json.loads(json.loads(_read_like_urllib3(request.body))["MessageBody"])
            self.dead_letter_messages += "reason" in body
            self.dead_letter_count += int(body.get("count") or 0) if "reason" in body else 0
            return super()._sqs_SendMessage(request)

    answers = Answers()
    boto3.setup_default_session()
    answers.install_on_session(boto3.DEFAULT_SESSION)
    event, obj = build(case)
    if obj is not None:
        data = obj
        answers.objects[(sb.BUCKET, sb.object_key(1))] = sb.S3Object(
            "0badc0de", lambda: sb.MemoryRaw(data), len(data)
        )
    import app

    handler: Callable[..., Any]
    if case.trigger == "cloudwatch":
        handler, context = app.cloudwatch_logs, sb.LambdaContext()
    elif case.trigger == "kinesis":
        handler, context = app.kinesis_records, sb.KinesisContext()
    else:
        handler, context = app.s3_objects, sb.CountdownContext(sb.FIFTEEN_MIN_MS)
    ledgers = sb.Ledgers()
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    error = None
    with ledgers.capture():
        try:
            handler(event, context)
        except BaseException as e:  # reported, so the parent can say what happened
            error = f"{type(e).__name__}: {e}"[:2000]
    t1 = time.perf_counter()
    results = ledgers.take()
    total = {k: sum(r.get(k, 0) for r in results) for k in _LEDGER}
    out = {
        "case": name,
        "rss_before_kb": rss_before_kb,
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "hwm_kb": _vm_hwm_kb(),
        "handler_s": t1 - t0,
        "ledger": total,
        "errors": [e for r in results for e in r.get("errors", [])][:5],
        "error": error,
        "archive_lines": answers.archive_lines,
        "dead_letter_messages": answers.dead_letter_messages,
        "dead_letter_count": answers.dead_letter_count,
        "puts": answers.calls["s3.PutObject"],
    }
    with open(out_path, "w") as f:
        json.dump(out, f)
    sys.stdout.flush()
    os._exit(0)


_LEDGER = ("received", "archived", "dropped", "dead_lettered", "lost")


# -- the parent ------------------------------------------------------------------------
def run_case(case: Case, memory_mb: int | None = None, python: str = sys.executable) -> Any:
    """One case in a fresh interpreter; its report plus `configured_mb`, `peak_rss_mb`
    and `accounted` (the ledger's verdict, "ok" or what is wrong)."""
    import stubs

    mb = memory_mb or configured_mb()
    env = {k: v for k, v in os.environ.items() if k not in stubs.SCRUB}
    env.update(stubs.lambda_env("http://127.0.0.1:9/api"))
    env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(mb)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(ROOT)])
    with tempfile.TemporaryDirectory(prefix="sluice-memory-") as tmp:
        out = Path(tmp) / "out.json"
        proc = subprocess.run(
            [
                "/bin/sh",
                "-c",
                '"$@"; exit $?',
                "sh",
                python,
                __file__,
                "child",
                case.name,
                str(out),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            return {
                "case": case.name,
                "configured_mb": mb,
                "peak_rss_mb": -1,
                "accounted": f"child died ({proc.returncode}): {proc.stderr.decode()[-1500:]}",
            }
        rep: dict[str, Any] = json.loads(out.read_text())
    rep["configured_mb"] = mb
    rep["peak_rss_mb"] = max(rep["rss_kb"], rep["hwm_kb"]) / 1024
    rep["accounted"] = accounting(case, rep)
    return rep


def accounting(case: Case, rep: dict[str, Any]) -> str:
    """'ok' when every input event is accounted for, else what is wrong."""
    led = rep["ledger"]
    problems = []
    if rep.get("error"):
        problems.append(f"handler raised {rep['error']}")
    if led["received"] != case.events:
        problems.append(f"received {led['received']} of {case.events} events")
    if led["received"] != led["archived"] + led["dropped"] + led["dead_lettered"]:
        problems.append(f"ledger does not balance {led}")
    if rep["archive_lines"] != led["archived"]:
        problems.append(f"{rep['archive_lines']} archive lines for {led['archived']} archived")
    if rep["dead_letter_count"] != led["dead_lettered"]:
        problems.append(
            f"dead letters stand for {rep['dead_letter_count']}, ledger {led['dead_lettered']}"
        )
    if rep.get("errors"):
        problems.append(f"errors {rep['errors']}")
    return "ok" if not problems else "; ".join(problems)


def line(rep: dict[str, Any]) -> str:
    verdict = "ok" if rep["accounted"] == "ok" else "FAILED"
    return (
        f"bench: memory case={rep['case']} peak_rss_mb={rep['peak_rss_mb']:.0f} "
        f"configured_mb={rep['configured_mb']} accounted={verdict}"
    )


def main() -> int:
    failed = 0
    for case in CASES:
        rep = run_case(case)
        limit = SHARE * rep["configured_mb"]
        if rep["accounted"] != "ok" or not 0 < rep["peak_rss_mb"] <= limit:
            failed += 1
            print(f"  {case.name}: {rep['accounted']} (limit {limit:.0f} MB)")
        print(line(rep))
    return 1 if failed and os.environ.get("BENCH_STRICT") == "1" else 0


if __name__ == "__main__":
    sys.path[:0] = [str(BENCH), str(ROOT)]
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
