"""Instructions per event of the `kinesis_records` handler, counted by callgrind (repeatable
on a loaded machine, where wall-clock ratios are not).

    python bench/kinesis_instructions.py [TREE] [--records SMALL BIG] [--batches N]

Runs this script's `--child` twice under `valgrind --tool=callgrind` (bench/callgrind.py),
once per batch size: a fresh interpreter imports TREE's code (this repository by default;
any checkout of it with its `bench/` works, so two commits are measured the same way),
makes the bench's Runtime (`harness.make_runtime`: botocore clients answered by
`before-send` hooks, the 20 rules of `workload.RULES`, Slack on loopback), invokes the
handler on the bench's N batches (`sources_bench.kinesis_spec`: plain JSON records, text
records, KPL aggregates and CloudWatch subscription documents, shuffled; one shard each)
to warm it and keep each shard's position, as the bench's checked round does, then on
the same batches with later sequence numbers and event ids cut to their first SMALL or
BIG records. Both runs materialise every batch of both sizes (base64, gzip, KPL
aggregation) before the first invocation, so making the events costs the same in both.
Prints (Ir(big) - Ir(small)) / (events(big) - events(small)): what each further event of
the bench's mix costs, per-record work included, with imports, warm-up and the fixed
per-invocation costs (the same number of invocations in both runs) cancelled. The default
sizes (40 and all 100 of the bench's records) fire the same alerts in both runs, so no
Slack post is counted as per-event work (a note says when two sizes do not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import callgrind  # this script's directory, imported before TREE's bench

HERE = Path(__file__).resolve().parent
FIRST_SEED = 2000  # the bench's batches: kinesis_spec(2000 + b)


def child(tree: Path, records: int, sizes: tuple[int, int], batches: int) -> None:
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import harness
    import sources_bench as sb
    import workload
    from stubs import SlackServer

    specs = [sb.kinesis_spec(FIRST_SEED + b) for b in range(batches)]
    # The warm round: the whole batches, as the bench's checked round (shard positions
    # kept from here on, so the measured batches are tested against them as the bench's).
    warm = [(sb.materialise(s, 0, b)[0], s.events, len(s.records)) for b, s in enumerate(specs)]
    made = {
        n: [
            (sb.materialise(sb.KSpec(s.shard, s.records[:n]), 1, b)[0], cut.events, n)
            for b, s in enumerate(specs)
            for cut in [sb.KSpec(s.shard, s.records[:n])]
        ]
        for n in sizes
    }
    with SlackServer() as slack:
        harness.set_env(slack.url)
        answers = sb.SourceAnswers(workload.rule_items())
        rt = harness.make_runtime(answers)
        from chalicelib.handlers import handle_kinesis_records

        ledgers = sb.Ledgers()
        total = alerts = 0
        for i, (event, expect, n) in enumerate([*warm, *made[records]]):
            with ledgers.capture(), harness.quiet_stdout():
                reply = handle_kinesis_records(event, sb.KinesisContext(), rt)
            assert reply == {"batchItemFailures": []}, reply
            (r,) = ledgers.take()
            assert r["records"] == n, r
            sb.check_invocation(r, expect, f"kinesis batch {i}")
            if i >= len(warm):
                total += expect
                alerts += r["alerts"]
        print(f"events {total} alerts {alerts}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", nargs="?", default=str(HERE.parent))
    ap.add_argument("--records", nargs=2, type=int, default=(40, 100), metavar=("SMALL", "BIG"))
    ap.add_argument("--batches", type=int, default=4)  # the bench's K_BATCHES
    ap.add_argument("--margin", type=int, default=150, help="seconds a run may take (see --help)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    sizes = tuple(args.records)
    if args.child:
        child(tree, args.child, sizes, args.batches)
        return 0
    counts = {}
    fired = set()
    for n in sizes:
        callgrind.within_one_throttle_window(args.margin)
        ir, events, alerts = callgrind.count(
            __file__, tree, n, "--records", *map(str, sizes), "--batches", str(args.batches)
        )
        counts[n] = (ir, events)
        fired.add(alerts)
        print(
            f"  {args.batches} batches of {n} records: {events:,} events, {alerts} alerts, "
            f"{ir:,} instructions"
        )
    if len(fired) > 1:
        print("  (the runs fired different numbers of alerts: their Slack posts are counted)")
    figure = callgrind.per_event(counts, *sizes)
    print(f"kinesis_records instructions per event ({tree}): {figure:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
