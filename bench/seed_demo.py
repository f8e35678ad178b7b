"""The seed talk's own pipeline, through the real handler, against a plain Python loop.

    python bench/seed_demo.py [--lines 1000000] [--reps 3]

Workload (as the talk describes it): two applications logging JSON lines to
CloudWatch, `demo.quiet-billing` with its text under `event` and
`demo.chatty-frontend` under `message`; about 5% of lines mention a computer.
Lines are delivered as subscription payloads of 1,000 events (base64 + gzip).

Pipeline (`SEED_RULES`, the talk's three rules): unify `event` -> `message` and add
`transformed: true`; archive everything; alert on `/[Cc]omputer/` (Slack, on a
loopback server). The handler runs for real with AWS answered below botocore
(stubs.py): the archive is really built and gzipped, and the PUT is signed. The
Slack endpoint runs in a process of its own (pinned to the same core): what it
spends accepting, parsing and answering a post is Slack's CPU, not the handler's,
and this process's CPU time would count a server thread's (~0.25 ms a post).

Reference: a plain Python loop over the same lines doing only `json.loads`, the
rename, `json.dumps` and the grep (`re.search("[Cc]omputer")`), what the talk
compares against.

Both are timed in CPU seconds of this process (one core), REPS times each,
interleaved; medians are reported with the range, then one line:

    bench: seed_demo events_per_cpu_s=N reference_events_per_cpu_s=N ratio=R
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from stubs import AwsAnswers, LambdaContext
from workload import event_for, rule_items

from sluice_cli.payloads import log_document

LINES = 1_000_000
PER_PAYLOAD = 1000
REPS = 3
SEED_RULES: list[dict[str, Any]] = [
    {
        "id": "unify-payload",
        "priority": 10,
        "match": {"tag": "demo.**"},
        "transform": {"rename": {"event": "message"}, "set": {"transformed": True}},
    },
    {
        "id": "archive-everything",
        "priority": 20,
        "match": {"tag": "demo.**"},
        "actions": ["archive"],
    },
    {
        "id": "computer-alerts",
        "priority": 100,
        "match": {"tag": "demo.**", "where": [{"field": "message", "regex": "[Cc]omputer"}]},
        "actions": [{"slack": {"channel": "#ops", "text": "{tag}: {message}"}}],
    },
]
_WORDS = ("invoice", "payment", "cart", "session", "order", "refund", "user", "report")


def lines(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """(log group, JSON line) pairs: two apps, payload under `event` or `message`, ~5%
    mentioning a computer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        quiet = i % 2 == 0
        words = " ".join(rng.choice(_WORDS) for _ in range(6))
        if rng.random() < 0.05:
            words += rng.choice((" computer says no", " Computer room too hot"))
        doc = {"level": rng.choice(("INFO", "INFO", "WARN", "ERROR")), "n": i}
        doc["event" if quiet else "message"] = f"{words} #{rng.randrange(10**6)}"
        group = "/demo/quiet-billing" if quiet else "/demo/chatty-frontend"
        out.append((group, json.dumps(doc)))
    return out


def payloads(pairs: list[tuple[str, str]], now_ms: int, rep: int = 0) -> list[dict[str, Any]]:
    """Subscription payloads of PER_PAYLOAD events of one log group each; event ids of
    their own per `rep` (the same ids again would be a retry, and alert dedupe would
    rightly send nothing)."""
    by_group: dict[str, list[str]] = {}
    for group, line in pairs:
        by_group.setdefault(group, []).append(line)
    out = []
    for g, (group, msgs) in enumerate(sorted(by_group.items())):
        for start in range(0, len(msgs), PER_PAYLOAD):
            chunk = msgs[start : start + PER_PAYLOAD]
            events = [
                {"id": f"{rep:04d}{g}{start + i:051d}", "timestamp": now_ms - 60_000, "message": m}
                for i, m in enumerate(chunk)
            ]
            doc = log_document(group, "2026/12/01/[$LATEST]demo", events, owner="123456789012")
            out.append(event_for(doc))
    return out


# The child: stubs.SlackServer on loopback; prints its URL, then the number of posts
# received for each line read; ends at end of input.
_SLACK_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from stubs import SlackServer
with SlackServer() as slack:
    print(slack.url, flush=True)
    for _ in sys.stdin:
        print(len(slack.posts), flush=True)
"""


class SlackProcess:
    """`stubs.SlackServer` in a child process: `url`, and `posts()` received so far."""

    def __enter__(self) -> SlackProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SLACK_CHILD, str(Path(__file__).resolve().parent)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self.url = self._out.readline().strip()
        if not self.url:
            self.proc.kill()
            raise RuntimeError("bench: the Slack endpoint did not start")
        return self

    def posts(self) -> int:
        self._in.write("\n")
        self._in.flush()
        return int(self._out.readline())

    def __exit__(self, *_: Any) -> None:
        self._in.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def reference(pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """json.loads, the rename, json.dumps, the grep: (lines out, lines matched)."""
    grep = re.compile("[Cc]omputer").search
    loads, dumps = json.loads, json.dumps
    n = hits = 0
    for _, line in pairs:
        d = loads(line)
        if "event" in d:
            d["message"] = d.pop("event")
        dumps(d)
        n += 1
        if grep(d["message"]):
            hits += 1
    return n, hits


def run_handler(events: list[dict[str, Any]], rt: Any) -> dict[str, int]:
    from chalicelib.handlers import handle_cloudwatch_logs

    totals = {"received": 0, "archived": 0, "alerts": 0, "lost": 0, "dead_lettered": 0}
    with harness.quiet_stdout():
        for ev in events:
            r = handle_cloudwatch_logs(ev, LambdaContext(), rt)
            for k in totals:
                totals[k] += r[k]
    return totals


def measure(n_lines: int = LINES, reps: int = REPS) -> float:
    """Print the detail and the bench line; returns the ratio."""
    pairs = lines(n_lines)
    now = int(time.time() * 1000)
    per_rep = [payloads(pairs, now, rep) for rep in range(reps + 1)]
    with SlackProcess() as slack:
        harness.set_env(slack.url)
        answers = AwsAnswers(rule_items(SEED_RULES))
        rt = harness.make_runtime(answers)
        run_handler(per_rep[reps][:2], rt)  # warm: clients, rules, Slack token
        ours: list[float] = []
        ref: list[float] = []
        for events in per_rep[:reps]:
            t = time.process_time()
            n, hits = reference(pairs)
            ref.append(n / (time.process_time() - t))
            t = time.process_time()
            totals = run_handler(events, rt)
            ours.append(n_lines / (time.process_time() - t))
            assert totals["received"] == totals["archived"] == n_lines, totals
            assert totals["lost"] == totals["dead_lettered"] == 0, totals
            assert totals["alerts"] > 0 and hits > 0, (totals, hits)
        assert slack.posts(), "no alert reached Slack"
    med = statistics.median
    print(
        f"\nseed demo ({n_lines:,} lines in {len(per_rep[0])} payloads, {hits:,} mention a "
        f"computer; {reps} interleaved reps, events per CPU second):"
    )
    print(f"  handler    {med(ours):10,.0f}  (range {min(ours):,.0f}-{max(ours):,.0f})")
    print(f"  reference  {med(ref):10,.0f}  (range {min(ref):,.0f}-{max(ref):,.0f})")
    ratio = med(ours) / med(ref)
    print(
        f"bench: seed_demo events_per_cpu_s={med(ours):.0f} "
        f"reference_events_per_cpu_s={med(ref):.0f} ratio={ratio:.2f}"
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=LINES)
    ap.add_argument("--reps", type=int, default=REPS)
    args = ap.parse_args(argv)
    harness.pin_one_core()
    measure(args.lines, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
