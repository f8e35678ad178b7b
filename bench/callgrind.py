"""Instructions counted by callgrind for the `*_instructions.py` benches.

Each of those scripts runs its own `--child` under `valgrind --tool=callgrind` twice, on a
small and a big input, and divides the difference in instructions by the difference in
events: imports, warm-up and fixed per-invocation costs cancel, and the count repeats on a
loaded machine where wall-clock ratios do not.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

DONE = re.compile(r"events (\d+) alerts (\d+)")


def count(script: str, tree: Path, size: int, *extra: str) -> tuple[int, int, int]:
    """(instructions, events, alerts) of `script TREE --child SIZE EXTRA...` under callgrind.

    The child prints `events N alerts M` once it has checked its invocations."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            script,
            str(tree),
            "--child",
            str(size),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    collected = re.search(r"Collected : (\d+)", out.stderr)
    done = DONE.search(out.stdout)
    assert collected and done, out.stderr[-2000:]
    return int(collected[1]), int(done[1]), int(done[2])


def per_event(counts: dict[int, tuple[int, int]], small: int, big: int) -> float:
    """Instructions per further event between the `small` and `big` runs."""
    (i1, n1), (i2, n2) = counts[small], counts[big]
    return (i2 - i1) / (n2 - n1)


THROTTLE_S = 300  # workload.RULES' alert throttle window


def within_one_throttle_window(margin: int) -> None:
    """Wait for the next window of the workload's alert throttle (`computer-alerts`: 3 per
    5 min, windows counted from the epoch) when fewer than `margin` seconds are left in
    this one: a run crossing a window sends more alerts, whose Slack posts would be
    counted as per-event work."""
    left = THROTTLE_S - time.time() % THROTTLE_S
    if left < margin:
        time.sleep(left + 1)
