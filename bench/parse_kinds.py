"""What `parse_message` costs per kind of message, against orjson in the same run.

    python bench/parse_kinds.py [--repeat 15]

The bench workload's messages (`workload.py`) and the seed demo's lines
(`seed_demo.py`), grouped by kind: JSON objects, Lambda platform lines
(START/END/REPORT), runtime lines (`[LEVEL]\\t...`), JVM logger headers, the rest.
Each kind is timed in chunks of 50 messages, the best of `--repeat` runs per chunk
(a chunk takes well under a scheduler slice, so a neighbour's burst rarely hits the
best run), summed; the floor is `orjson.loads` of the same chunk's JSON messages,
timed the same way and interleaved. On a shared machine compare two checkouts by the
`x_floor` column (time over the floor of the same run), running each in turn:

    (cd BEFORE && .venv/bin/python bench/parse_kinds.py); .venv/bin/python bench/parse_kinds.py

Not part of `make bench` (the per-stage table there times the whole parse step).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # puts the repo root on sys.path
import orjson
import seed_demo
import workload

from chalicelib.parsers import parse_message

CHUNK = 50


def kind(message: str) -> str:
    if message[:1] == "{":
        return "json"
    if message.startswith(("START ", "END ", "REPORT ", "INIT_")):
        return "platform"
    if message[:1] == "[":
        return "runtime"
    if message[:2].isdigit() and message[4:5] == "-" and " " in message[:24]:
        return "jvm"
    return "other"


def best_of(fn: Callable[[list[str]], None], items: list[str], repeat: int) -> float:
    """µs per item: per chunk the best of `repeat` runs, summed."""
    total = 0
    for i in range(0, len(items), CHUNK):
        part = items[i : i + CHUNK]
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            fn(part)
            d = time.perf_counter_ns() - t0
            best = d if best is None or d < best else best
        total += best or 0
    return total / len(items) / 1000


def parse_all(items: list[str]) -> None:
    for m in items:
        parse_message(m)


def loads_json(items: list[str]) -> None:
    for m in items:
        if m[:1] == "{":
            orjson.loads(m)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    harness.pin_one_core()
    msgs = [le["message"] for doc, _ in workload.payloads(1000) for le in doc["logEvents"]]
    groups: dict[str, list[str]] = {}
    for m in msgs:
        groups.setdefault(kind(m), []).append(m)
    groups["seed demo"] = [line for _, line in seed_demo.lines(5000)]
    json_msgs = [m for m in msgs if m[:1] == "{"]
    print(f"{'kind':10} {'messages':>8} {'µs/msg':>7} {'x_floor':>7}   (floor: orjson.loads)")
    for name, items in groups.items():
        parse_all(items)  # warm: caches, first-use imports
        us = best_of(parse_all, items, args.repeat)
        floor = best_of(loads_json, json_msgs[: len(items)] or json_msgs, args.repeat)
        print(f"{name:10} {len(items):8} {us:7.2f} {us / floor:7.2f}")
    us = best_of(parse_all, msgs, args.repeat)
    floor = best_of(loads_json, msgs, args.repeat)
    print(
        f"bench: parse_kinds all_us_per_msg={us:.2f} floor_us_per_msg={floor:.2f} "
        f"ratio={us / floor:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
