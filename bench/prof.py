"""Where the handler's time goes: cProfile over warm invocations, per event.

    .venv/bin/python bench/prof.py [--rounds N] [--top N]

Same workload and stubs as `run.py` (not part of `make bench`). cProfile adds
a fixed cost to every Python call, so small functions called per event (the
rule predicates, `_getter` closures) look heavier than they are; the table is
for ranking, and `run.py`'s stage timings (no profiler) for absolute numbers.
The second table times pieces of the hot path in isolation, without a profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import workload
from stubs import AwsAnswers, LambdaContext, SlackServer


def profile_handler(events: list[dict[str, Any]], rt: Any, rounds: int, top: int) -> None:
    from chalicelib.handlers import handle_cloudwatch_logs

    n = 0
    prof = cProfile.Profile()
    with harness.quiet_stdout():
        for ev in events:  # warm
            handle_cloudwatch_logs(ev, LambdaContext(), rt)
        ctxs = [LambdaContext() for _ in range(rounds * len(events))]
        prof.enable()
        for i in range(rounds):
            for j, ev in enumerate(events):
                r = handle_cloudwatch_logs(ev, ctxs[i * len(events) + j], rt)
                n += r["received"]
        prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        short = file.replace(str(harness.ROOT) + "/", "").split("site-packages/")[-1]
        rows.append((tt, ct, nc, f"{short}:{line}({fn})"))
    total = sum(r[0] for r in rows)
    print(
        f"cProfile, {rounds} rounds x {len(events)} payloads = {n:,} events; "
        f"total {total / n * 1e6:.2f} µs/event under the profiler"
    )
    print(f"{'tottime µs/ev':>13} {'cum µs/ev':>10} {'calls/ev':>9}  function")
    for tt, ct, nc, name in sorted(rows, reverse=True)[:top]:
        print(f"{tt / n * 1e6:13.3f} {ct / n * 1e6:10.3f} {nc / n:9.2f}  {name}")
    # Grouped by module: where a fix would land.
    by_mod: dict[str, float] = defaultdict(float)
    for tt, _ct, _nc, name in rows:
        mod = name.split(":")[0]
        if "chalicelib" not in mod and not mod.startswith(("app", "bench")):
            mod = mod.split("/")[0]
        by_mod[mod] += tt
    print("\nby module (tottime µs/event):")
    for mod, tt in sorted(by_mod.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {tt / n * 1e6:7.3f}  {mod}")


def best_of(fn: Any, reps: int = 7) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - t0)
    return best


def micro(pl: list[tuple[dict[str, Any], dict[str, Any]]], rt: Any) -> None:
    """Pieces of the per-event path timed alone (best of 7, µs per event of the workload)."""
    import orjson

    from chalicelib.actions.archive import encode_lines, gzip_bytes
    from chalicelib.event import LogEvent, format_time
    from chalicelib.normalise import to_epoch_ms
    from chalicelib.parsers import parse_message
    from chalicelib.pipeline import route
    from chalicelib.sources import cloudwatch

    docs = [doc for doc, _ in pl]
    msgs = [le["message"] for d in docs for le in d["logEvents"]]
    n = len(msgs)
    rules = rt.rules.get()
    out: list[tuple[str, float]] = []

    def add(name: str, fn: Any) -> None:
        out.append((name, best_of(fn) / 1000 / n))

    add("parse_message (all messages)", lambda: [parse_message(m) for m in msgs])
    js = [m for m in msgs if m[:1] == "{"]
    add("  of which orjson.loads(JSON)", lambda: [orjson.loads(m) for m in js])
    isos = []
    for m in js:
        d = orjson.loads(m)
        for k in ("time", "timestamp", "@timestamp", "ts"):
            if k in d:
                isos.append(d[k])
                break
    add("  of which to_epoch_ms(time fields)", lambda: [to_epoch_ms(v) for v in isos])
    add(
        "batch_from_document (parse+normalise+LogEvent)",
        lambda: [cloudwatch.batch_from_document(d, "us-east-1") for d in docs],
    )
    src: dict[str, Any] = {}
    add(
        "  LogEvent(...) + str(id) alone",
        lambda: [
            LogEvent("t", le["timestamp"], {}, src, str(le.get("id") or "x"))
            for d in docs
            for le in d["logEvents"]
        ],
    )

    batches = [cloudwatch.batch_from_document(d, "us-east-1").events for d in docs]

    def do_route() -> None:
        fresh = [cloudwatch.batch_from_document(d, "us-east-1").events for d in docs]
        t0 = time.perf_counter_ns()
        for evs in fresh:
            route(evs, rules)
        do_route.ns = time.perf_counter_ns() - t0  # type: ignore[attr-defined]

    route_ns = []
    for _ in range(7):
        do_route()
        route_ns.append(do_route.ns)  # type: ignore[attr-defined]
    out.append(("route (20 rules, fresh records)", min(route_ns) / 1000 / n))
    rule_checks = 0
    for evs in batches:
        by_tag = rules.for_tag(evs[0].tag)
        rule_checks += len(by_tag) * len(evs)
    out.append((f"  rules applicable per event (mean {rule_checks / n:.1f})", 0.0))
    archived = [route(evs, rules).archive for evs in batches]
    add("encode_lines (archive JSON lines)", lambda: [encode_lines(a) for a in archived])

    # Loops that drop each result, as encode_lines does: a list keeping 4,500 fresh
    # orjson buffers alive measured glibc page faults (1.7 µs/event), not orjson.
    def dumps_records() -> None:
        for a in archived:
            for e in a:
                orjson.dumps(e.record)

    def format_times() -> None:
        for a in archived:
            for e in a:
                format_time(e.time)

    add("  of which orjson.dumps(record)", dumps_records)
    add("  of which format_time", format_times)
    bodies = [encode_lines(a)[0] for a in archived]
    line_bytes = sum(map(len, bodies)) / sum(map(len, archived))
    add(
        f"gzip level 1 of the JSON lines ({line_bytes:.0f} B/line)",
        lambda: [gzip_bytes(b, 1) for b in bodies],
    )
    # zlib's "fast" strategies are slower here: more literals to Huffman-code.
    add("  same, zlib Z_HUFFMAN_ONLY", lambda: [_gz(b, 1, 2) for b in bodies])  # strategy 2
    add("  same, zlib Z_RLE", lambda: [_gz(b, 1, 3) for b in bodies])  # strategy 3
    print("\npieces alone, no profiler (best of 7, µs per workload event):")
    for name, us in out:
        print(f"  {name:55} {us:6.2f}" if us else f"  {name}")


def _gz(body: bytes, level: int, strategy: int) -> bytes:
    import zlib

    c = zlib.compressobj(level, zlib.DEFLATED, 31, 8, strategy)
    return c.compress(body) + c.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    harness.pin_one_core()
    with SlackServer() as slack:
        harness.set_env(slack.url)
        answers = AwsAnswers(workload.rule_items())
        rt = harness.make_runtime(answers)
        assert len(rt.rules.get()) == len(workload.RULES) and rt.rules.last_error is None, (
            rt.rules.last_error
        )
        pl = workload.payloads(1000)
        profile_handler([ev for _, ev in pl], rt, a.rounds, a.top)
        micro(pl, rt)


if __name__ == "__main__":
    main()
