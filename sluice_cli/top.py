"""`sluice top`: per-function and per-rule rates, refreshing in the terminal.

Reads the metrics the functions emit (chalicelib/observe.py: EMF, dimensions
`function`, `service`, `stage`, and `rule` for per-rule counters) with one
GetMetricData call per refresh: the sum of each counter over the last `--window`,
and that sum per second. On the local stack the same metrics exist: `MetricsRelay`
puts the stack's ledgers into its CloudWatch (moto) as the EMF agent would, so the
same code reads both.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from chalicelib.durations import parse_duration
from chalicelib.loopguard import FUNCTIONS
from chalicelib.observe import SERVICE
from sluice_cli import jsonout

COUNTERS = ("received", "archived", "dropped", "dead_lettered", "alerts")
RULE_COUNTERS = ("matched", "dropped", "alerted")
MAX_QUERIES = 500  # GetMetricData's limit per call


# ---------------------------------------------------------------- reading
def _dims(**kv: str) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in sorted(kv.items())]


def rule_series(cw: Any, namespace: str, stage: str) -> list[tuple[str, str]]:
    """(function, rule) pairs that have per-rule metrics on `stage`."""
    found: set[tuple[str, str]] = set()
    kwargs: dict[str, Any] = {
        "Namespace": namespace,
        "MetricName": "matched",
        "Dimensions": [{"Name": "stage", "Value": stage}],
    }
    while True:
        page = cw.list_metrics(**kwargs)
        for m in page.get("Metrics", []):
            d = {x["Name"]: x["Value"] for x in m.get("Dimensions", [])}
            if "rule" in d and "function" in d:
                found.add((d["function"], d["rule"]))
        token = page.get("NextToken")
        if not token:
            return sorted(found)
        kwargs["NextToken"] = token


def snapshot(cw: Any, namespace: str, stage: str, window_s: int) -> dict[str, Any]:
    """Totals and rates per function and per rule over the last `window_s` seconds."""
    period = max(60, (window_s + 59) // 60 * 60)  # a multiple of 60 s covering the window
    end = datetime.now(UTC) + timedelta(seconds=60)  # the current minute's datapoints too
    start = end - timedelta(seconds=period + 60)
    queries: list[tuple[str, str, str, list[dict[str, str]]]] = []  # (kind, key, metric, dims)
    for fn in FUNCTIONS:
        for c in COUNTERS:
            queries.append(("function", fn, c, _dims(function=fn, service=SERVICE, stage=stage)))
    for fn, rule in rule_series(cw, namespace, stage):
        for c in RULE_COUNTERS:
            dims = _dims(function=fn, rule=rule, service=SERVICE, stage=stage)
            queries.append(("rule", rule, c, dims))
    totals: dict[str, dict[str, Counter[str]]] = {
        "function": defaultdict(Counter),
        "rule": defaultdict(Counter),
    }
    for i in range(0, len(queries), MAX_QUERIES):
        chunk = queries[i : i + MAX_QUERIES]
        request = [
            {
                "Id": f"q{j}",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for j, (_k, _key, metric, dims) in enumerate(chunk)
        ]
        kwargs: dict[str, Any] = {"MetricDataQueries": request, "StartTime": start, "EndTime": end}
        while True:
            page = cw.get_metric_data(**kwargs)
            for res in page.get("MetricDataResults", []):
                kind, key, metric, _ = chunk[int(res["Id"][1:])]
                totals[kind][key][metric] += int(sum(res.get("Values", [])))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token

    def rows(kind: str, names: tuple[str, ...]) -> dict[str, dict[str, dict[str, float]]]:
        return {
            key: {c: {"total": counts[c], "per_s": round(counts[c] / window_s, 3)} for c in names}
            for key, counts in sorted(totals[kind].items())
            if any(counts.values())
        }

    return {
        "stage": stage,
        "namespace": namespace,
        "window_s": window_s,
        "at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "functions": rows("function", COUNTERS),
        "rules": rows("rule", RULE_COUNTERS),
    }


def _cell(c: dict[str, float]) -> str:
    return f"{c['per_s']:.2f}/s ({int(c['total'])})"


def render(snap: dict[str, Any]) -> Table:
    """The two tables, functions then rules, in one grid: rate per second (total)."""
    grid = Table.grid(padding=(1, 0))
    t = Table(title=f"sluice-{snap['stage']}, last {snap['window_s']} s, at {snap['at']}")
    t.add_column("function", no_wrap=True)
    for c in COUNTERS:
        t.add_column(c, justify="right")
    for fn, counts in snap["functions"].items():
        t.add_row(fn, *(_cell(counts[c]) for c in COUNTERS))
    grid.add_row(t)
    r = Table(title="rules")
    r.add_column("rule", no_wrap=True)
    for c in RULE_COUNTERS:
        r.add_column(c, justify="right")
    for rule, counts in snap["rules"].items():
        r.add_row(rule, *(_cell(counts[c]) for c in RULE_COUNTERS))
    grid.add_row(r)
    return grid


@click.command()
@click.option(
    "--stage",
    default=lambda: os.environ.get("SLUICE_STAGE") or "dev",
    show_default="$SLUICE_STAGE or dev",
    help="whose metrics",
)
@click.option(
    "--namespace",
    default=lambda: os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Sluice",
    show_default="$POWERTOOLS_METRICS_NAMESPACE or Sluice",
)
@click.option("--window", default="5m", show_default=True, help="rates over this long (1m, 5m)")
@click.option("--interval", type=float, default=5.0, show_default=True, help="refresh every N s")
@click.option("--once", is_flag=True, help="print one snapshot and exit")
@jsonout.option
def top(
    stage: str, namespace: str, window: str, interval: float, once: bool, as_json: bool
) -> None:
    """Per-function and per-rule rates: received, archived, dropped, dead-lettered, alerts.

    From CloudWatch metrics (the local stack publishes the same ones). --once --json
    prints one JSON object, for scripts.
    """
    import boto3

    window_s = parse_duration(window)
    if window_s is None or window_s < 60:
        raise click.BadParameter(
            f"{window!r}: an age of at least 1m, like 5m", param_hint="--window"
        )
    cw = boto3.client("cloudwatch")
    console = Console(highlight=False)
    if once or as_json:
        snap = snapshot(cw, namespace, stage, int(window_s))
        if as_json:
            jsonout.emit(snap)
        else:
            console.print(render(snap))
        if once:
            return
    from rich.live import Live

    with Live(
        render(snapshot(cw, namespace, stage, int(window_s))), console=console, auto_refresh=False
    ) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(render(snapshot(cw, namespace, stage, int(window_s))), refresh=True)
        except KeyboardInterrupt:
            pass


# ---------------------------------------------------------------- the local stack
class MetricsRelay:
    """The local stack's counters, put into its CloudWatch as the functions' EMF would be
    (same names, units and dimensions), every `interval_s` from a background thread."""

    def __init__(
        self, cloudwatch: Callable[[], Any], namespace: str, stage: str, interval_s: float = 1.0
    ) -> None:
        self._cw = cloudwatch
        self.namespace = namespace
        self.stage = stage
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, function: str, ledger: Any) -> None:
        now = datetime.now(UTC)
        data = [
            {
                "MetricName": c,
                "Dimensions": _dims(function=function, service=SERVICE, stage=self.stage),
                "Value": float(getattr(ledger, c)),
                "Unit": "Count",
                "Timestamp": now,
            }
            for c in COUNTERS
        ]
        for rule, counts in ledger.rules.items():
            if any(counts.values()):
                dims = _dims(function=function, rule=rule, service=SERVICE, stage=self.stage)
                data.extend(
                    {
                        "MetricName": c,
                        "Dimensions": dims,
                        "Value": float(counts.get(c, 0)),
                        "Unit": "Count",
                        "Timestamp": now,
                    }
                    for c in RULE_COUNTERS
                )
        with self._lock:
            self._pending.extend(data)

    def flush(self) -> None:
        with self._lock:
            data, self._pending = self._pending, []
        while data:  # PutMetricData takes 1,000 values a call
            try:
                self._cw().put_metric_data(Namespace=self.namespace, MetricData=data[:1000])
            except Exception:
                with self._lock:  # kept for the next flush
                    self._pending[:0] = data
                raise
            data = data[1000:]

    def start(self) -> MetricsRelay:
        self._thread = threading.Thread(target=self._run, name="metrics-relay", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):  # moto busy or stopping: the next flush retries
                self.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:  # nothing left to report to
            return
