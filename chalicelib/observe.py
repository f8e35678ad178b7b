"""The ledger line and metrics: one structured log line and one EMF blob per invocation.

Powertools Logger and Metrics are created on first use (each costs ~40-60 ms to
import), never at import time of the handlers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.event import Ledger

SERVICE = "sluice"
_COUNTERS = ("received", "archived", "dropped", "dead_lettered", "alerts", "actions_failed")


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
    """Log the ledger as one line and emit each counter as a metric (EMF to stdout).

    Runs after the work is done: a failure here is logged, never raised, since a
    raise would make the platform retry work that already succeeded.
    """
    fields = {"function": function, **ledger.as_dict(), **(extra or {})}
    if ledger.lost:
        logger().error("ledger unbalanced", extra=fields)
    else:
        logger().info("ledger", extra=fields)
    try:
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        if is_metrics_disabled():
            return  # Powertools would keep the values and print them every 100 anyway
        m = metrics(namespace)
        m.add_dimension(name="function", value=function)
        for name in _COUNTERS:
            m.add_metric(name=name, unit=MetricUnit.Count, value=getattr(ledger, name))
        if extra and extra.get("rules_error"):
            m.add_metric(name="rules_unavailable", unit=MetricUnit.Count, value=1)
        m.flush_metrics()
        _rule_metrics(function, ledger, namespace)
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


def _rule_metrics(function: str, ledger: Ledger, namespace: str) -> None:
    """One EMF blob per rule that did something, with `rule` as a dimension, so an
    operator sees which rule does what (and, with `matched`, what it costs)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    for rule_id, counts in ledger.rules.items():
        if not any(counts.values()):
            continue
        m = EphemeralMetrics(namespace=namespace, service=SERVICE)
        m.add_dimension(name="function", value=function)
        m.add_dimension(name="rule", value=rule_id)
        for name in _RULE_COUNTERS:
            m.add_metric(name=name, unit=MetricUnit.Count, value=counts.get(name, 0))
        m.flush_metrics()
