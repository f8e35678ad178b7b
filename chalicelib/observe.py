"""The ledger line and metrics: one structured log line and one EMF blob per invocation.

Powertools' Logger is created on first use (~40-60 ms to import), never at import
time of the handlers. Metrics are written in the Embedded Metric Format directly,
all of an invocation's in one write.

Every metric carries the dimensions `function`, `service` and `stage` (the deployment
stage, SLUICE_STAGE: dev, prod), per-rule ones `rule` too; infra/resources.yaml's
dashboard and alarms query exactly these sets. Time spent per pipeline stage
(`decode`, `parse`, `route`, `archive`, `deliver`) is added up by `add_time` during an
invocation and emitted by `report` as `<stage>_ms`: a perf_counter pair per stage and
batch (per Kinesis record, per S3 line read), well under 1 % of the work it measures
(README, Performance).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator, Iterable
from functools import lru_cache
from time import perf_counter
from typing import Any, TypeVar

from chalicelib import ledgerline
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

    return Logger(service=SERVICE, logger_formatter=_formatter())


_INFO, _ERROR = 20, 40  # logging.INFO, logging.ERROR (logging loads with Powertools)
# Messages whose lines `_formatter` writes itself (plain text, no arguments).
_LEDGER_MESSAGES = frozenset({"ledger", "ledger unbalanced"})


def _formatter() -> Any:
    """Powertools' JSON formatter, writing the ledger line itself: the same keys in the
    same order with the same values (tests/unit/test_observe.py holds it to Powertools'
    output byte for byte), at a fifth of the cost. Powertools' own `format` copies the
    record, scans it against a tuple of reserved names and serialises with `json`
    (~0.1 ms, a tenth of a 10-event invocation); every other record is Powertools'."""
    import orjson
    from aws_lambda_powertools.logging.formatter import (
        RESERVED_LOG_ATTRS,
        LambdaPowertoolsFormatter,
        _get_context,
    )

    reserved = frozenset(RESERVED_LOG_ATTRS)

    class LedgerFormatter(LambdaPowertoolsFormatter):
        def format(self, record: Any) -> str:
            if record.msg not in _LEDGER_MESSAGES or record.args or record.exc_info:
                return str(super().format(record))
            try:
                return self._ledger(record)
            except Exception:  # a value orjson refuses (a lone surrogate): Powertools'
                return str(super().format(record))

        def _ledger(self, record: Any) -> str:
            attrs = record.__dict__
            extras = {k: v for k, v in attrs.items() if k not in reserved}
            return self._line(attrs, record, extras, record.msg)

        def direct(self, level: str, func: str, line: int, message: str, fields: Any) -> Any:
            """The line `_ledger` writes for a record made now by `func` at `line` with
            `fields` as extras; None if it needs a record (a custom key, an asyncio task)."""
            asyncio = sys.modules.get("asyncio")
            try:
                if asyncio is not None and asyncio.current_task() is not None:
                    return None  # its name would be in the record (taskName)
            except RuntimeError:  # no running loop
                pass
            now = time.time()
            instant = _Instant(now, int((now - int(now)) * 1000) + 0.0)  # as LogRecord
            attrs = {"levelname": level, "funcName": func, "lineno": line}
            try:
                return self._line(attrs, instant, fields, message)
            except Exception:  # a format key only a record has, a value orjson refuses
                return None

        def _line(self, attrs: Any, timed: Any, extras: Any, message: str) -> str:
            values: dict[str, Any] | None = None
            log: dict[str, Any] = {}
            for source in (self.log_format, _get_context().get()):
                for key, value in source.items():
                    if value and key in reserved:
                        if values is None:
                            values = {**attrs, "asctime": self.formatTime(record=timed)}
                        log[key] = value % values  # '%(levelname)s' -> 'INFO'
                    else:
                        log[key] = value
            log.update(extras)
            log["message"] = message
            log["xray_trace_id"] = self._get_latest_trace_id()
            line = orjson.dumps(
                {k: v for k, v in log.items() if v is not None},
                default=self.json_default,
                option=orjson.OPT_NON_STR_KEYS,
            )
            return line.decode()

    return LedgerFormatter()


class _Instant:
    """What `formatTime` reads of a record: when it was made."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float, msecs: float) -> None:
        self.created = created
        self.msecs = msecs


_LEVEL_NAMES = {_INFO: "INFO", _ERROR: "ERROR"}


def _log(level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger().info(message, extra=fields)` (or error), as Powertools' Logger logs it,
    without its wrapper and the stdlib's caller lookup: the line names this function's
    caller, as Powertools' `stacklevel=2` does. When the logger's own handler is the only
    one the record would reach (Lambda's root handler has Powertools' filter against
    it), the line is written to that handler's stream directly: no record, no dispatch
    (~0.1 ms of CPU an invocation, the code it runs cold after the pipeline's); else the
    record goes through logging as before (pytest's caplog, other handlers). Before the
    Logger is made, where it would write nothing else, the line is written without
    importing Powertools (chalicelib/ledgerline.py)."""
    caller = sys._getframe(1)
    code = caller.f_code
    if not logger.cache_info().currsize and ledgerline.write(
        SERVICE, _LEVEL_NAMES[level], code.co_name, caller.f_lineno, message, fields
    ):
        return
    log = logger()
    std = log._logger
    if not std.isEnabledFor(level):
        return
    handler = _sole_handler(log, std, level)
    if handler is not None:
        line = handler.formatter.direct(
            _LEVEL_NAMES[level], code.co_name, caller.f_lineno, message, fields
        )
        if line is not None and _write_line(handler, line):
            return
    record = std.makeRecord(
        std.name, level, code.co_filename, caller.f_lineno, message, (), None, code.co_name, fields
    )
    std.handle(record)


def _sole_handler(log: Any, std: Any, level: int) -> Any:
    """The logger's registered handler if a record of `level` would reach no other handler
    and no filter (a handler above it that would see the record must drop it first thing,
    with Powertools' SuppressFilter for this logger); None otherwise."""
    handler = log.registered_handler
    if (
        std.disabled
        or std.filters
        or std.handlers != [handler]
        or handler.filters
        or level < handler.level
        or not hasattr(handler.formatter, "direct")
        or not hasattr(handler, "stream")
    ):
        return None
    node = std
    while node.propagate and node.parent is not None:
        node = node.parent
        for other in node.handlers:
            if level < other.level:
                continue
            first: Any = other.filters[0] if other.filters else None
            suppressed = getattr(first, "logger", None)
            if type(first).__name__ != "SuppressFilter" or not isinstance(suppressed, str):
                return None
            if suppressed not in std.name:  # SuppressFilter drops names containing it
                return None
    return handler


def _write_line(handler: Any, line: str) -> bool:
    """StreamHandler.emit's write and flush, under its lock; False if it failed (the
    record path then reports it as logging does)."""
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:
        return False
    finally:
        handler.release()
    return True


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
        _log(_ERROR, "ledger unbalanced", fields)
    else:
        _log(_INFO, "ledger", fields)
    try:
        if ledgerline.metrics_disabled():
            return  # Powertools would keep the values and print them every 100 anyway
        stage = stage_name()
        values: list[tuple[str, str, float]] = [
            (name, "Count", getattr(ledger, name)) for name in _COUNTERS
        ]
        if extra and extra.get("rules_error"):
            values.append(("rules_unavailable", "Count", 1))
        values += [(f"{name}_ms", "Milliseconds", ms) for name, ms in times.items()]
        lines = [_invocation_metrics(function, namespace, stage, values)]
        lines += _rule_metrics(function, ledger, namespace, stage)
        _write(lines)
    except Exception:
        logger().exception("metrics not emitted")


def _write(lines: list[bytes]) -> None:
    """EMF lines to stdout in one write (Lambda sends each line to CloudWatch Logs)."""
    sys.stdout.write(b"\n".join(lines).decode() + "\n")


def _invocation_metrics(
    function: str, namespace: str, stage: str, values: list[tuple[str, str, float]]
) -> bytes:
    """The invocation's counters and stage times as one EMF document, as Powertools'
    Metrics writes it (dimensions function, stage, service; each value a one-element
    list). Written directly: Powertools' validation and formatting cost ~0.2 ms an
    invocation, a fifth of a 10-event payload's fixed cost."""
    import time

    import orjson

    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["function", "stage", "service"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in values],
                }
            ],
        },
        "function": function,
        "stage": stage,
        "service": SERVICE,
    }
    for name, _, value in values:
        doc[name] = [float(value)]
    return orjson.dumps(doc)


_RULE_COUNTERS = (
    "matched",
    "transformed",
    "dropped",
    "alerted",
    "suppressed",
    "forwarded",
    "failed",
)


def _rule_metrics(function: str, ledger: Ledger, namespace: str, stage: str) -> list[bytes]:
    """One EMF line per rule that did something, with `rule` as a dimension, so an
    operator sees which rule does what (and, with `matched`, what it costs).

    Written directly in the Embedded Metric Format (one `_aws` directive per line):
    Powertools' EphemeralMetrics took ~40 µs a rule (0.8 ms an invocation with 20
    rules); this takes ~3.
    """
    import time

    import orjson

    rules = [(rid, c) for rid, c in ledger.rules.items() if any(c.values())]
    if not rules:
        return []
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
    return lines


_RULE_METRIC_DEFS = [{"Name": n, "Unit": "Count"} for n in _RULE_COUNTERS]
