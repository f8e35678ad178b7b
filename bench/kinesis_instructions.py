"""Instructions per event of the `kinesis_records` handler, counted by callgrind (repeatable
on a loaded machine, where wall-clock ratios are not).

    python bench/kinesis_instructions.py [TREE] [--records SMALL BIG] [--batches N]

Runs this script's `--child` twice under `valgrind --tool=callgrind` (bench/callgrind.py),
once per batch size: a fresh interpreter imports TREE's code (this repository by default;
any checkout of it with its `bench/` works, so two commits are measured the same way),
makes the bench's Runtime (`harness.make_runtime`: botocore clients answered by
`before-send` hooks, the 20 rules of `workload.RULES`, Slack on loopback), invokes the
handler once on a whole bench batch to warm it, then on N further batches of the bench's
Kinesis workload (`sources_bench.kinesis_spec`: plain JSON records, text records, KPL
aggregates and CloudWatch subscription documents, shuffled) cut to their first SMALL or
BIG records. Both runs materialise every batch of both sizes (base64, gzip, KPL
aggregation) before the first invocation, so making the events costs the same in both.
Prints (Ir(big) - Ir(small)) / (events(big) - events(small)): what each further event of
the bench's mix costs, per-record work included, with imports, warm-up and the fixed
per-invocation costs (the same number of invocations in both runs) cancelled. The default
sizes (40 and 90 of the bench's 100 records) fire the same alerts in both runs, so no
Slack post is counted as per-event work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import callgrind  # this script's directory, imported before TREE's bench

HERE = Path(__file__).resolve().parent
WARM_SEED, FIRST_SEED = 2000, 2001


def child(tree: Path, records: int, sizes: tuple[int, int], batches: int) -> None:
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import harness
    import sources_bench as sb
    import workload
    from stubs import SlackServer

    specs = [sb.kinesis_spec(FIRST_SEED + b) for b in range(batches)]
    made = {
        n: [
            (
                sb.materialise(sb.KSpec(s.shard, s.records[:n]), 1, b)[0],
                sum(r.events for r in s.records[:n]),
            )
            for b, s in enumerate(specs)
        ]
        for n in sizes
    }
    warm = sb.materialise(sb.kinesis_spec(WARM_SEED), 0, 0)[0]
    with SlackServer() as slack:
        harness.set_env(slack.url)
        answers = sb.SourceAnswers(workload.rule_items())
        rt = harness.make_runtime(answers)
        from chalicelib.handlers import handle_kinesis_records

        ledgers = sb.Ledgers()
        runs = [
            (warm, sb.kinesis_spec(WARM_SEED).events, 100),
            *((e, k, records) for e, k in made[records]),
        ]
        total = alerts = 0
        for i, (event, expect, n) in enumerate(runs):
            with ledgers.capture(), harness.quiet_stdout():
                reply = handle_kinesis_records(event, sb.KinesisContext(), rt)
            assert reply == {"batchItemFailures": []}, reply
            (r,) = ledgers.take()
            assert r["records"] == n, r
            sb.check_invocation(r, expect, f"kinesis batch {i}")
            if i:
                total += expect
                alerts += r["alerts"]
        print(f"events {total} alerts {alerts}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", nargs="?", default=str(HERE.parent))
    ap.add_argument("--records", nargs=2, type=int, default=(40, 90), metavar=("SMALL", "BIG"))
    ap.add_argument("--batches", type=int, default=3)
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
