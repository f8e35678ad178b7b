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
                "Dimensions": [["function", "rule", "service"]],
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
        }
        for name in _RULE_COUNTERS:
            doc[name] = counts.get(name, 0)
        lines.append(orjson.dumps(doc))
    sys.stdout.write(b"\n".join(lines).decode() + "\n")


_RULE_METRIC_DEFS = [{"Name": n, "Unit": "Count"} for n in _RULE_COUNTERS]
