"""Stage timings of the real handler: timing wrappers around the core's own functions.

The wrappers are installed where the core looks the functions up at call time
(module globals, class attributes), the handler runs unchanged, and each stage's
time is summed. Every wrapped function runs once per payload, per archive
object or per delivery, never per event, so the wrappers cost ~1 µs per payload.
A function the core no longer has is reported as absent, not an error; whatever
the core adds between the named stages shows up in "other".
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

# (label, module, attribute). Nested stages: `archive write` holds encode and gzip
# (the rest is S3 PutObject); `deliveries` holds the Slack and SNS calls (the rest
# is the alert gates' state-table traffic: dedupe, throttle).
STAGES: tuple[tuple[str, str, str], ...] = (
    ("decode", "chalicelib.sources.cloudwatch", "small_document"),
    ("parse", "chalicelib.sources.cloudwatch", "batch_from_document"),
    ("route", "chalicelib.pipeline", "route"),
    ("encode", "chalicelib.actions.archive", "encode_lines"),
    ("gzip", "chalicelib.actions.archive", "gzip_bytes"),
    ("archive", "chalicelib.actions.archive", "Archiver.write"),
    ("deliveries", "chalicelib.delivery", "deliver"),
    ("slack", "chalicelib.actions.slack", "SlackAction.deliver"),
    ("sns", "chalicelib.actions.sns", "SnsAction.deliver"),
    ("report", "chalicelib.handlers", "report"),
)


def _timed(fn: Callable[..., Any], label: str, acc: Counter[str]) -> Callable[..., Any]:
    now = time.perf_counter_ns

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = now()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += now() - t0

    return wrapper


@contextlib.contextmanager
def instrumented(acc: Counter[str], absent: set[str]) -> Iterator[None]:
    undo: list[tuple[Any, str, Any]] = []
    try:
        for label, mod_name, attr in STAGES:
            try:
                owner: Any = importlib.import_module(mod_name)
                *path, name = attr.split(".")
                for p in path:
                    owner = getattr(owner, p)
                original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            except (ImportError, AttributeError, KeyError):
                absent.add(label)
                continue
            undo.append((owner, name, original))
            setattr(owner, name, _timed(original, label, acc))
        yield
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def breakdown(a: Counter[str], total: int) -> list[tuple[str, int]]:
    """Exclusive times per stage, in handler order, plus the rest of the handler."""
    return [
        ("decode payload (gunzip+orjson)", a["decode"]),
        ("parse+normalise+LogEvent (+trace join)", a["parse"]),
        ("route (20 rules)", a["route"]),
        ("archive encode (JSON lines)", a["encode"]),
        ("archive gzip", a["gzip"]),
        ("archive S3 PutObject via botocore", a["archive"] - a["encode"] - a["gzip"]),
        ("alert gates: dedupe/throttle (DynamoDB)", a["deliveries"] - a["slack"] - a["sns"]),
        ("action: Slack chat.postMessage", a["slack"]),
        ("action: SNS Publish", a["sns"]),
        ("ledger log + EMF metrics (Powertools)", a["report"]),
        (
            "other (handler glue, ledger, rules cache)",
            total
            - a["decode"]
            - a["parse"]
            - a["route"]
            - a["archive"]
            - a["deliveries"]
            - a["report"],
        ),
    ]
