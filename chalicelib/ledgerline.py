"""The ledger line and the metrics switch without importing Powertools, where its Logger
would write exactly this.

Importing any Powertools module runs the package's `__init__` (Logger, Metrics, Tracer,
typing_extensions, the user-agent hook): ~12 ms of CPU on a cold start here, for one
ledger line per invocation. Where nothing can tell the difference, that line is written
here instead, as the Logger of `observe.logger()` would write it to the same stream:

* the configuration is Powertools' default one: none of the environment variables that
  change its Logger's level, sampling, indentation, package logging or root-handler
  filtering is set (`POWERTOOLS_SETTINGS`), so its level is INFO and both ledger lines
  (INFO, ERROR) are written; and Powertools is not loaded (keys may have been appended);
* nothing else would see the record the Logger makes: logging is not disabled and makes
  records and loggers of its own classes, no one has set up the `sluice` logger (level,
  handlers, filters, propagation), and no handler on the root logger is pytest's
  capture handler (Powertools adds a filter dropping this logger's records to every
  other one: the Lambda runtime's, or any);
* the Logger has not been made yet (`observe.logger()` is the one from then on: keys
  appended to it, its level, its handlers apply);
* the line can be written as Powertools' formatter writes it: not inside an asyncio task
  (its name would be in the record), no field named as a record attribute or one of the
  keys the formatter makes itself, values orjson writes as Powertools' `json` does (not
  a float it would write with an exponent or a NaN; `observe`'s formatter writes the
  ledger line with orjson too).

Otherwise `write` returns False and the caller logs through Powertools as before.
tests/unit/test_ledgerline.py compares the lines with Powertools' own, byte for byte.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from chalicelib.environ import any_set, getenv

# Environment variables that change what Powertools' Logger writes, or where.
POWERTOOLS_SETTINGS = (
    "POWERTOOLS_LOG_LEVEL",
    "LOG_LEVEL",
    "AWS_LAMBDA_LOG_LEVEL",
    "POWERTOOLS_LOGGER_SAMPLE_RATE",
    "POWERTOOLS_DEV",
    "POWERTOOLS_DEBUG",
    "POWERTOOLS_LOG_DEDUPLICATION_DISABLED",
)
# Extras Powertools' formatter does not write as given: the keys it formats itself, and
# those logging refuses to set on a record (with every attribute a record has).
_OWN = frozenset({"level", "location", "timestamp", "message", "asctime"})
# Powertools' metrics switches: `is_metrics_disabled()` is False when neither is set.
METRICS_SWITCHES = ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV")


def usable(logger_name: str) -> bool:
    """Whether a line written here is all Powertools' Logger named `logger_name` would
    produce now (the conditions of the module docstring but the last)."""
    if "aws_lambda_powertools" in sys.modules:  # loaded by someone: keys may be appended
        return False
    if any_set(POWERTOOLS_SETTINGS):
        return False
    logging = sys.modules.get("logging")
    if logging is None:
        return True
    if logging.root.manager.disable or logging.getLogRecordFactory() is not logging.LogRecord:
        return False  # disabled, or records made otherwise (with more attributes, say)
    made = logging.root.manager.loggerDict.get(logger_name)
    if isinstance(made, logging.Logger):  # Chalice makes its app's logger, `sluice`
        if type(made) is not logging.Logger or (  # and leaves it as logging makes it
            made.handlers or made.filters or made.level or made.disabled or not made.propagate
        ):
            return False
    elif logging.getLoggerClass() is not logging.Logger:
        return False  # the logger Powertools makes would be another class
    for handler in logging.root.handlers:
        kind = type(handler)
        if kind.__name__ == "LogCaptureHandler" and kind.__module__ == "_pytest.logging":
            return False  # the one root handler Powertools leaves to see its records
    return True


def line(service: str, level: str, func: str, lineno: int, message: str, fields: Any) -> Any:
    """The line Powertools' formatter writes for a record of `level` made now by `func`
    at `lineno`, with `fields` as its extras; None if only Powertools can write it."""
    import orjson

    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and asyncio._get_running_loop() is not None:
        if asyncio.current_task() is not None:
            return None  # its name would be in the record (taskName)
    created, msecs = _clock()
    keys = fields.keys()
    if not keys.isdisjoint(_record_attributes()) or not keys.isdisjoint(_OWN):
        return None  # logging refuses them, or Powertools leaves them out
    if not _written_alike(fields):
        return None
    log: dict[str, Any] = {
        "level": level,
        "location": f"{func}:{lineno}",
        "message": None,
        "timestamp": timestamp(created, msecs),
        "service": service,
        "sampling_rate": None,
    }
    log.update(fields)
    log["message"] = message
    trace = getenv("_X_AMZN_TRACE_ID")
    log["xray_trace_id"] = trace.split(";")[0].replace("Root=", "") if trace else None
    try:
        out = orjson.dumps(
            {k: v for k, v in log.items() if v is not None},
            default=str,
            option=orjson.OPT_NON_STR_KEYS,
        )
    except Exception:  # a value orjson refuses (a lone surrogate, an integer past 64 bits)
        return None
    return out.decode()


if sys.version_info >= (3, 13):

    def _clock() -> tuple[float, float]:
        """(created, msecs) as a LogRecord made now has them."""
        ns = time.time_ns()
        return ns / 1e9, (ns % 1_000_000_000) // 1_000_000 + 0.0

else:

    def _clock() -> tuple[float, float]:
        """(created, msecs) as a LogRecord made now has them."""
        now = time.time()
        return now, int((now - int(now)) * 1000) + 0.0


_attributes: frozenset[str] | None = None  # a LogRecord's attribute names, made once


def _record_attributes() -> frozenset[str]:
    """The names of a LogRecord's attributes (logging refuses extras named so)."""
    global _attributes
    if _attributes is None:
        import logging

        _attributes = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    return _attributes


# (second, converter, zone settings) -> the date and zone of that second, as `formatTime`
# writes them.
_second: tuple[tuple[Any, ...], str, str] | None = None


def timestamp(created: float, msecs: float, converter: Any = time.localtime) -> str:
    """Powertools' `formatTime` of a record made at `created`, in its default format
    ('2021-04-17 18:19:57,656+0200'), its clock read by `converter` (`time.localtime` or
    `time.gmtime`): the date and zone formatted once a second. observe.py's formatter
    writes its default timestamps with it too."""
    global _second
    key = (int(created), converter, time.timezone, time.altzone, time.daylight, time.tzname)
    if _second is None or _second[0] != key:
        t = converter(created)
        _second = (key, time.strftime("%Y-%m-%d %H:%M:%S,", t), time.strftime("%z", t))
    return f"{_second[1]}{int(msecs):03d}{_second[2]}"


# Values `_written_alike` need not look into: written alike by both serialisers.
_PLAIN = frozenset({str, int, bool, type(None)})


def _written_alike(value: Any) -> bool:
    """Whether orjson writes `value` as Python's `json` does (Powertools' serialiser):
    the same but for floats it would write with an exponent (`1e-05`, `1e+16`) or not at
    all (NaN, infinities), at any depth, keys included. A walk, not a recursion (a ledger
    line's ~100 values are mostly integers and text, its keys text); past `_MAX_VALUES`
    values (or a container that holds itself) the answer is no: Powertools writes it as
    it would."""
    pending = [value]
    pop, extend = pending.pop, pending.extend
    seen = 0
    while pending:
        v = pop()
        kind = type(v)
        if kind in _PLAIN:
            continue
        seen += 1
        if seen > _MAX_VALUES:
            return False
        if kind is dict or isinstance(v, dict):
            for key in v:
                if type(key) is not str:  # keys of other kinds are looked at too
                    extend(v.keys())
                    break
            extend(v.values())
        elif isinstance(v, float):
            text = repr(v)
            if "e" in text or "n" in text:  # 'nan', 'inf'
                return False
        elif isinstance(v, list | tuple):
            extend(v)
    return True


_MAX_VALUES = 100_000  # containers and other values walked by `_written_alike`


def write(service: str, level: str, func: str, lineno: int, message: str, fields: Any) -> bool:
    """Write the line to stdout if `usable` and `line` can; False if the caller must log
    it through Powertools."""
    if not usable(service):
        return False
    text = line(service, level, func, lineno, message, fields)
    if text is None:
        return False
    stream = sys.stdout
    stream.write(text + "\n")
    stream.flush()
    return True


def metrics_disabled() -> bool:
    """Powertools' `is_metrics_disabled()`: False when neither of its switches is set
    (without importing Powertools), else its own answer."""
    if not any_set(METRICS_SWITCHES):
        return False
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    return bool(is_metrics_disabled())
