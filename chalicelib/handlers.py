"""Trigger adapters: a trigger's event in, the pipeline, the outcome out.

Kept apart from `app.py` so tests and the local stack can call them with an
injected Runtime; `app.py` only wires them to Chalice.
"""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.actions import Invocation
from chalicelib.errors import DecodeError
from chalicelib.event import Ledger
from chalicelib.observe import report
from chalicelib.pipeline import Pipeline, Runtime
from chalicelib.sources import cloudwatch

_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def set_runtime(rt: Runtime | None) -> None:
    """Swap the process-wide runtime (tests, the local stack)."""
    global _runtime
    _runtime = rt


def handle_cloudwatch_logs(event: Any, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    rt = rt or runtime()
    inv = Invocation.from_context(context, rt.settings.region)
    pipeline = Pipeline(rt)
    extra: dict[str, Any] = {}
    try:
        batch = cloudwatch.decode(event, rt.settings.region)
    except DecodeError as e:
        ledger = pipeline.reject(_raw(event), e, inv)
        extra["decode_error"] = str(e)
    else:
        if batch.is_control:
            ledger = Ledger()
            extra["control_message"] = True
        else:
            ledger = pipeline.process(batch.events, inv)
            extra["log_group"] = batch.source["log_group"]
    if rt.rules.last_error:
        extra["rules_error"] = rt.rules.last_error
    report("cloudwatch_logs", ledger, rt.settings.metrics_namespace, extra)
    return {**ledger.as_dict(), **extra}


def _raw(event: Any) -> bytes:
    """The trigger event as bytes for the dead-letter queue, whatever it holds."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return repr(event).encode("utf-8", "backslashreplace")
