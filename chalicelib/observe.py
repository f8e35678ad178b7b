"""The ledger line and metrics: one structured log line and one EMF blob per invocation.

Powertools Logger and Metrics are created on first use (each costs ~40-60 ms to
import), never at import time of the handlers.

Every metric carries the dimensions `function`, `service` and `stage` (the deployment
stage, SLUICE_STAGE: dev, prod), per-rule ones `rule` too; infra/resources.yaml's
dashboard and alarms query exactly these sets. Time spent per pipeline stage
(`decode`, `parse`, `route`, `archive`, `deliver`) is added up by `add_time` during an
invocation and emitted by `report` as `<stage>_ms`: a perf_counter pair per stage and
batch (per Kinesis record, per S3 line read), well under 1 % of the work it measures
(README, Performance).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from functools import lru_cache
from time import perf_counter
from typing import Any, TypeVar

from chalicelib.event import Ledger

SERVICE = "sluice"
_COUNTERS = ("received", "archived", "dropped", "dead_lettered", "alerts", "actions_failed")
STAGES = ("decode", "parse", "route", "archive", "deliver")
# Seconds per pipeline stage since the last report. A process runs one invocation at a
# time (Lambda's model), so one module-level tally is the invocation's.
_times: dict[str, float] = {}
T = TypeVar("T")


def add_time(stage: str, since: float) -> float:
    """Count the time from `since` (a `perf_counter()` value) to now against `stage`;
    returns now, to chain stages: `t = add_time("decode", t)`."""
    now = perf_counter()
    _times[stage] = _times.get(stage, 0.0) + (now - since)
    return now


def timed(items: Iterable[T], stage: str) -> Generator[T, None, None]:
    """`items`, with the time spent producing them counted against `stage` (a reader
    that decompresses and splits as it is iterated)."""
    it = iter(items)
    spent = 0.0
    try:
        while True:
            t = perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                spent += perf_counter() - t
            yield item
    finally:
        _times[stage] = _times.get(stage, 0.0) + spent


def tally() -> float:
    """Seconds counted against every stage since the last report."""
    return sum(_times.values())


def add_rest(stage: str, since: float, tally_then: float) -> None:
    """Count against `stage` the time from `since` that no other stage counted meanwhile
    (`tally_then` is `tally()` at `since`): a loop that reads, parses and flushes."""
    spent = perf_counter() - since - (tally() - tally_then)
    _times[stage] = _times.get(stage, 0.0) + spent


def take_times() -> dict[str, float]:
    """The stage times in milliseconds, and a fresh tally for the next invocation."""
    out = {k: v * 1000.0 for k, v in _times.items()}
    _times.clear()
    return out


def stage_name() -> str:
    """The deployment stage for the `stage` dimension (Settings.stage)."""
    from chalicelib.errors import SettingsError
    from chalicelib.settings import get_settings

    try:
        s = get_settings()
    except SettingsError:
        return "local"
    if s.stage:
        return s.stage
    parts = (s.function_name or "").split("-", 2)  # <app>-<stage>-<function>
    return parts[1] if len(parts) == 3 and parts[0] == s.app_name and parts[1] else "local"


@lru_cache(maxsize=1)
def logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service=SERVICE)


@lru_cache(maxsize=4)
def metrics(namespace: str) -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=namespace, service=SERVICE)


def report(
    function: str, ledger: Ledger, namespace: str, extra: dict[str, Any] | None = None
) -> None:
    """Log the ledger as one line and emit each counter and stage time as a metric
    (EMF to stdout), with the settings' deployment stage as the `stage` dimension.

    Runs after the work is done: a failure here is logged, never raised, since a
    raise would make the platform retry work that already succeeded.
    """
    times = take_times()
    fields = {"function": function, **ledger.as_dict(), **(extra or {})}
    if times:
        fields["timings_ms"] = {k: round(v, 3) for k, v in times.items()}
    if ledger.lost:
        logger().error("ledger unbalanced", extra=fields)
    else:
        logger().info("ledger", extra=fields)
    try:
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        if is_metrics_disabled():
            return  # Powertools would keep the values and print them every 100 anyway
        stage = stage_name()
        m = metrics(namespace)
        m.add_dimension(name="function", value=function)
        m.add_dimension(name="stage", value=stage)
        for name in _COUNTERS:
            m.add_metric(name=name, unit=MetricUnit.Count, value=getattr(ledger, name))
        if extra and extra.get("rules_error"):
            m.add_metric(name="rules_unavailable", unit=MetricUnit.Count, value=1)
        for name, ms in times.items():
            m.add_metric(name=f"{name}_ms", unit=MetricUnit.Milliseconds, value=ms)
        m.flush_metrics()
        _rule_metrics(function, ledger, namespace, stage)
    except Exception:
        logger().exception("metrics not emitted")


_RULE_COUNTERS = (
    "matched",
    "transformed",
    "dropped",
    "alerted",
    "suppressed",
    "forwarded",
    "failed",
)


def _rule_metrics(function: str, ledger: Ledger, namespace: str, stage: str) -> None:
    """One EMF line per rule that did something, with `rule` as a dimension, so an
    operator sees which rule does what (and, with `matched`, what it costs).

    Written directly in the Embedded Metric Format (one `_aws` directive per line):
    Powertools' EphemeralMetrics took ~40 µs a rule (0.8 ms an invocation with 20
    rules); this takes ~3.
    """
    import sys
    import time

    import orjson

    rules = [(rid, c) for rid, c in ledger.rules.items() if any(c.values())]
    if not rules:
        return
    directive = {
        "Timestamp": int(time.time() * 1000),
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [["function", "rule", "service", "stage"]],
                "Metrics": _RULE_METRIC_DEFS,
            }
        ],
    }
    lines = []
    for rule_id, counts in rules:
        doc: dict[str, Any] = {
            "_aws": directive,
            "function": function,
            "rule": rule_id,
            "service": SERVICE,
            "stage": stage,
        }
        for name in _RULE_COUNTERS:
            doc[name] = counts.get(name, 0)
        lines.append(orjson.dumps(doc))
    sys.stdout.write(b"\n".join(lines).decode() + "\n")


_RULE_METRIC_DEFS = [{"Name": n, "Unit": "Count"} for n in _RULE_COUNTERS]
