"""Instructions of the `cloudwatch_logs` handler, counted by callgrind (repeatable on a
loaded machine, where wall-clock ratios are not).

    python bench/cloudwatch_instructions.py [TREE] [--kind large|small] [--rounds N]

Runs this script's `--child` twice under `valgrind --tool=callgrind` (bench/callgrind.py),
with 0 and N rounds: a fresh interpreter imports TREE's code (this repository by default;
any checkout of it with its `bench/` works, so two commits are measured the same way),
makes the bench's Runtime (`harness.make_runtime`: botocore clients answered by
`before-send` hooks, the 20 rules of `workload.RULES`, Slack on loopback), builds N rounds
of payloads with event ids of their own (`run.fresh`, in both runs, so making them costs
the same), invokes the handler once on each of the bench's payloads to warm it, then on
the N rounds. Prints (Ir(N) - Ir(0)) divided by the events (`--kind large`: the bench's
five 1,000-event payloads, as `bench: cloudwatch_logs` times them, fixed costs shared by
1,000 events) or by the invocations (`--kind small`: the forty 10-event payloads of
`bench: small_payloads`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import callgrind  # this script's directory, imported before TREE's bench

HERE = Path(__file__).resolve().parent


def child(tree: Path, rounds: int, most: int, kind: str) -> None:
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import harness
    import run
    import workload
    from stubs import AwsAnswers, LambdaContext, SlackServer

    if kind == "large":
        pl = workload.payloads(run.EVENTS_PER_PAYLOAD)
    else:
        pl = [
            (doc, workload.event_for(doc))
            for doc in (
                workload.document(
                    workload.LOG_GROUPS[i % len(workload.LOG_GROUPS)],
                    run.SMALL_EVENTS,
                    seed=500 + i,
                )
                for i in range(run.SMALL_PAYLOADS)
            )
        ]
    variants = run.fresh(pl, 1, most)
    with SlackServer() as slack:
        harness.set_env(slack.url)
        rt = harness.make_runtime(AwsAnswers(workload.rule_items()))
        from chalicelib.handlers import handle_cloudwatch_logs

        events = alerts = 0
        with harness.quiet_stdout():
            for _, ev in pl:
                handle_cloudwatch_logs(ev, LambdaContext(), rt)
            for round_ in variants[:rounds]:
                for (doc, _), ev in zip(pl, round_, strict=True):
                    r = handle_cloudwatch_logs(ev, LambdaContext(), rt)
                    run.check_result(r, len(doc["logEvents"]), doc["logGroup"])
                    events += len(doc["logEvents"])
                    alerts += r["alerts"]
    print(f"events {events} alerts {alerts}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", nargs="?", default=str(HERE.parent))
    ap.add_argument("--kind", choices=("large", "small"), default="large")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--margin", type=int, default=240, help="seconds a run may take")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    if args.child is not None:
        child(tree, args.child, args.rounds, args.kind)
        return 0
    counts = {}
    fired = set()
    callgrind.within_one_throttle_window(args.margin)
    for n in (0, args.rounds):
        ir, events, alerts = callgrind.count(
            __file__, tree, n, "--kind", args.kind, "--rounds", str(args.rounds)
        )
        counts[n] = (ir, events)
        fired.add(alerts)
        print(f"  {n} rounds: {events:,} events, {alerts} alerts, {ir:,} instructions")
    (i0, _), (i1, n1) = counts[0], counts[args.rounds]
    if args.kind == "large":
        print(f"cloudwatch_logs instructions per event ({tree}): {(i1 - i0) / n1:,.0f}")
    else:
        per = (i1 - i0) / (n1 / 10)
        print(f"cloudwatch_logs instructions per 10-event invocation ({tree}): {per:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
