"""Shared bench plumbing: environment, a Runtime on hooked clients, quiet stdout, the floor.

Used by `run.py` (the measurement), `prof.py` (the profile) and `child.py`
(fresh-process cold start and peak RSS).
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from stubs import SCRUB, AwsAnswers, lambda_env  # noqa: E402

SERVICES = ("dynamodb", "s3", "sqs", "sns", "secretsmanager")


def pin_one_core() -> str:
    """Run on one core for stable numbers (Lambda at ≤1,769 MB gets about one vCPU)."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0]})
        return f"cpu {cpus[0]} of {len(cpus)}"
    return "affinity not available"


def set_env(slack_url: str) -> dict[str, str]:
    for k in SCRUB:
        os.environ.pop(k, None)
    env = lambda_env(slack_url)
    os.environ.update(env)
    return env


def child_env(slack_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(lambda_env(slack_url))
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench"), str(ROOT), *extra])
    return env


def make_runtime(answers: AwsAnswers) -> Any:
    """A Runtime whose clients are built by the core's own `Clients.get` (same
    config: standard retries, timeouts) and then answered by `answers`."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    clients = Clients()
    for svc in SERVICES:
        answers.install(clients.get(svc))
    return Runtime(settings=Settings.from_env(), clients=clients)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null: Powertools' ledger line and EMF blob are still
    formatted and written (they are part of the handler path), just not shown."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# -- the floor -----------------------------------------------------------------------
def floor_stages(event: dict[str, Any]) -> tuple[list[int], int]:
    """The bare minimum any pipeline does with a payload, stage by stage:
    base64, gunzip, orjson of the document, orjson of each JSON message, orjson
    of each record (the parsed object, or {"message": text}). Returns the
    perf_counter_ns marks between stages and the number of events."""
    from time import perf_counter_ns as now

    loads, dumps = orjson.loads, orjson.dumps
    t0 = now()
    raw = base64.b64decode(event["awslogs"]["data"])
    t1 = now()
    body = zlib.decompress(raw, 47)
    t2 = now()
    doc = loads(body)
    t3 = now()
    records: list[Any] = []
    append = records.append
    for le in doc["logEvents"]:
        m = le["message"]
        if m[:1] == "{":
            append(loads(m))
        else:
            append({"message": m})
    t4 = now()
    lines = [dumps(r) for r in records]
    t5 = now()
    assert len(lines) == len(doc["logEvents"])
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4], len(lines)


FLOOR_STAGES = (
    "base64 decode",
    "gunzip",
    "orjson.loads(document)",
    "orjson.loads(JSON messages)",
    "orjson.dumps(records)",
)
