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
from chalicelib.environ import getenv
from chalicelib.errors import SettingsError
from chalicelib.event import Ledger
from chalicelib.settings import get_settings

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
        # The plans of `_head`, for the log format they were made from (and a copy of it).
        _plan_format: Any = None
        _plan_copy: dict[str, Any] | None = None
        _plans: dict[tuple[str, str, int], Any]

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
            if asyncio is not None and asyncio._get_running_loop() is not None:
                if asyncio.current_task() is not None:
                    return None  # its name would be in the record (taskName)
            now = time.time()
            msecs = int((now - int(now)) * 1000) + 0.0  # as LogRecord
            try:
                head = self._head(level, func, line, now, msecs)
                if head is None:
                    attrs = {"levelname": level, "funcName": func, "lineno": line}
                    return self._line(attrs, _Instant(now, msecs), fields, message)
                head.update(fields)
                head["message"] = message
                head["xray_trace_id"] = self._get_latest_trace_id()
                return self._dumps(head)
            except Exception:  # a format key only a record has, a value orjson refuses
                return None

        def _head(
            self, level: str, func: str, line: int, now: float, msecs: float
        ) -> dict[str, Any] | None:
            """The keys `_line` writes before the extras, from a plan made once per log
            format and call site (levels and locations formatted once, the timestamp per
            call); None when context keys are set (`_line` then writes them all)."""
            if _get_context().get():
                return None
            fmt = self.log_format
            if fmt is not self._plan_format or fmt != self._plan_copy:
                self._plan_format, self._plan_copy = fmt, dict(fmt)
                self._plans = {}
            site = (level, func, line)
            plan = self._plans.get(site)
            if plan is None:
                plan = self._plans[site] = self._plan(fmt, level, func, line)
            template, timed = plan
            head = template.copy()
            if timed:
                values = {
                    "levelname": level,
                    "funcName": func,
                    "lineno": line,
                    "asctime": self._asctime(now, msecs),
                }
                for key, value in timed:
                    head[key] = value % values
            return head

        def _plan(
            self, fmt: dict[str, Any], level: str, func: str, line: int
        ) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
            """(the keys in order, each value formatted where it needs only the level and
            the location; the formats that need the time)."""
            site = {"levelname": level, "funcName": func, "lineno": line}
            template: dict[str, Any] = {}
            timed = []
            for key, value in fmt.items():
                if value and key in reserved:
                    if "asctime" in value:
                        timed.append((key, value))
                        template[key] = None  # its place; formatted per line
                    else:
                        template[key] = value % site  # '%(levelname)s' -> 'INFO'
                else:
                    template[key] = value
            return template, tuple(timed)

        def _asctime(self, created: float, msecs: float) -> str:
            """`formatTime` of a record made at `created`: the default format's date and
            zone are formatted once a second (`ledgerline.timestamp`)."""
            converter = self.converter
            if (
                self.datefmt
                or self.use_rfc3339_iso8601
                or self.default_time_format != _DEFAULT_TIME_FORMAT
                or self.custom_ms_time_directive != "%F"
                or converter not in (time.localtime, time.gmtime)
            ):
                instant: Any = _Instant(created, msecs)
                return str(self.formatTime(record=instant))
            return ledgerline.timestamp(created, msecs, converter)

        def _line(self, attrs: Any, timed: Any, extras: Any, message: str) -> str:
            values: dict[str, Any] | None = None
            log: dict[str, Any] = {}
            for source in (self.log_format, _get_context().get()):
                for key, value in source.items():
                    if value and key in reserved:
                        if values is None:
                            asctime = self._asctime(timed.created, timed.msecs)
                            values = {**attrs, "asctime": asctime}
                        log[key] = value % values  # '%(levelname)s' -> 'INFO'
                    else:
                        log[key] = value
            log.update(extras)
            log["message"] = message
            log["xray_trace_id"] = self._get_latest_trace_id()
            return self._dumps(log)

        def _dumps(self, log: dict[str, Any]) -> str:
            if None in log.values():
                log = {k: v for k, v in log.items() if v is not None}
            line = orjson.dumps(log, default=self.json_default, option=orjson.OPT_NON_STR_KEYS)
            return line.decode()

    return LedgerFormatter()


_DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%F%z"  # Powertools' own, '2021-04-17 18:19:57,656+0200'


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
        if metrics_disabled():
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


# Powertools' switches of its metrics, and what `is_metrics_disabled` said of each pair of
# their values seen (a handful at most): read per invocation, decided once.
_SWITCHES = ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED")
_disabled: dict[tuple[str | None, ...], bool] = {}


def metrics_disabled() -> bool:
    """Powertools' `is_metrics_disabled()` for the environment as it is now (a value it
    refuses raises as it does)."""
    key = (getenv(_SWITCHES[0]), getenv(_SWITCHES[1]))
    if key == (None, None):
        return False  # its answer without either (and without importing Powertools)
    found = _disabled.get(key)
    if found is None:
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        found = is_metrics_disabled()
        if len(_disabled) >= 16:
            _disabled.clear()
        _disabled[key] = found
    return found


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
                    "Metrics": _metric_defs(tuple([(name, unit) for name, unit, _ in values])),
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


@lru_cache(maxsize=64)
def _metric_defs(metrics: tuple[tuple[str, str], ...]) -> tuple[dict[str, str], ...]:
    """The `Metrics` of a directive (name and unit of each), made once per set of metrics:
    an invocation's are the counters and the stages it went through."""
    return tuple({"Name": name, "Unit": unit} for name, unit in metrics)


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

    dumps = orjson.dumps
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
    # Each line is orjson of {"_aws", "function", "rule", "service", "stage", counters...}
    # written in pieces: what the rules share once, per rule its id and its counters.
    head = b"".join((b'{"_aws":', dumps(directive), b',"function":', dumps(function), b',"rule":'))
    mid = b"".join((b',"service":', dumps(SERVICE), b',"stage":', dumps(stage), b","))
    lines = []
    for rule_id, counts in rules:
        if counts.keys() <= _RULE_COUNTER_SET:  # as always: zeros, then its own counts
            values = dumps({**_RULE_ZEROS, **counts})
        else:
            values = dumps({name: counts.get(name, 0) for name in _RULE_COUNTERS})
        lines.append(b"".join((head, dumps(rule_id), mid, values[1:])))
    return lines


_RULE_COUNTER_SET = frozenset(_RULE_COUNTERS)
_RULE_ZEROS = dict.fromkeys(_RULE_COUNTERS, 0)
_RULE_METRIC_DEFS = [{"Name": n, "Unit": "Count"} for n in _RULE_COUNTERS]
