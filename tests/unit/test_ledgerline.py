"""The ledger line written without Powertools (chalicelib/ledgerline.py) is the line
Powertools' Logger writes, byte for byte, and is written only where nothing else could
see a difference: the default configuration, no one else watching the logging records,
Powertools not loaded; a whole invocation's report reads the same either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import ledgerline, observe

ROOT = Path(__file__).resolve().parents[2]
INSTANT_NS = 1_796_254_859_554_321_987  # an instant with milliseconds, and beyond

_LEDGER = {
    "function": "cloudwatch_logs",
    "received": 3,
    "archived": 2,
    "dropped": 1,
    "dropped_by": {"health": 1},
    "rules": {"r1": {"matched": 2}},
    "timings_ms": {"decode": 0.012, "route": 1.5},
}
LINES = [
    pytest.param("INFO", "ledger", _LEDGER, {}, id="a balanced ledger"),
    pytest.param("ERROR", "ledger unbalanced", {**_LEDGER, "lost": 3}, {}, id="unbalanced"),
    pytest.param(
        "INFO",
        "ledger",
        {**_LEDGER, "log_group": 'ünïcødé 日本 "q" \\ \n\t\x00\x1f\x7f \u2028 😀', "none": None},
        {},
        id="text to escape, a None",
    ),
    pytest.param(
        "INFO",
        "ledger",
        {
            **_LEDGER,
            "extra": {1: "int key", "f": 1.25, "t": (1, 2), "b": True, 0.5: "float key"},
            "s": {"set"},
            "floats": [0.1, 1234.5678, 0.0001, 99999999999999.98, -0.0],
        },
        {},
        id="int and float keys, tuples, floats, a value written with str",
    ),
    pytest.param(
        "INFO",
        "ledger",
        {**_LEDGER, "sampling_rate": 0.5, "service": "x"},
        {},
        id="fields named as the logger's keys",
    ),
    pytest.param(
        "INFO",
        "ledger",
        _LEDGER,
        {"_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"},
        id="an X-Ray trace",
    ),
    pytest.param("INFO", "ledger", _LEDGER, {"TZ": "America/New_York"}, id="another zone"),
    pytest.param("INFO", "ledger", _LEDGER, {"TZ": ":UTC"}, id="Lambda's zone"),
]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock stopped at INSTANT_NS, for the records of both writers."""
    monkeypatch.setattr(time, "time_ns", lambda: INSTANT_NS)
    monkeypatch.setattr(time, "time", lambda: INSTANT_NS / 1e9)


@pytest.mark.parametrize(("level", "message", "fields", "env"), LINES)
def test_the_line_is_the_one_powertools_writes(
    frozen: None,
    monkeypatch: pytest.MonkeyPatch,
    level: str,
    message: str,
    fields: dict[str, Any],
    env: dict[str, str],
) -> None:
    """Keys, order, values, escapes, time and zone, trace id: what Powertools' formatter
    makes of the same record at the same instant."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    time.tzset()
    try:
        log = observe.logger()
        std = log._logger
        number = 40 if level == "ERROR" else 20
        record = std.makeRecord(std.name, number, __file__, 7, message, (), None, "report", fields)
        theirs = LambdaPowertoolsFormatter.format(log.registered_handler.formatter, record)
        ours = ledgerline.line(observe.SERVICE, level, "report", 7, message, fields)
        assert ours == theirs
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"huge": 2**70}, id="an integer past 64 bits"),
        pytest.param({"surrogate": "\udcff"}, id="a lone surrogate"),
        pytest.param({"timings_ms": {"route": 1e-05}}, id="a small float, nested"),
        pytest.param({"big": 1e16}, id="a big float"),
        pytest.param({"nan": float("nan")}, id="NaN"),
        pytest.param({"list": [1.0, float("-inf")]}, id="an infinity in a list"),
        pytest.param({"keys": {2.5e-7: 1}}, id="a float key"),
        *[
            pytest.param({**_LEDGER, key: "x"}, id=f"a field named {key}")
            for key in ("level", "location", "timestamp", "message", "asctime", "name", "lineno")
        ],
    ],
)
def test_lines_only_powertools_writes_are_left_to_it(fields: dict[str, Any]) -> None:
    """A value orjson refuses or writes otherwise than Python's json (floats with an
    exponent, NaN, infinities), or a field named as a key the formatter makes itself or
    as a record attribute (logging refuses those), gives no line: the caller logs through
    Powertools, as before."""
    assert ledgerline.line("sluice", "INFO", "report", 7, "ledger", fields) is None


# Run in a fresh interpreter: whether the line may be written depends on the process's
# logging state and modules, which pytest's own handlers would decide.
USABLE = r"""
import logging, sys
case = sys.argv[1]
def handler(name, module):
    attrs = {"emit": lambda self, record: None, "__module__": module}
    return type(name, (logging.Handler,), attrs)()
if case == "the Lambda runtime's handler":
    logging.root.addHandler(handler("LambdaLoggerHandler", "awslambdaric.bootstrap"))
elif case == "pytest's capture handler":
    logging.root.addHandler(handler("LogCaptureHandler", "_pytest.logging"))
elif case == "a handler named like pytest's elsewhere":
    logging.root.addHandler(handler("LogCaptureHandler", "mine"))
elif case == "another root handler":
    logging.basicConfig()
elif case == "logging disabled":
    logging.disable(logging.CRITICAL)
elif case == "the logger made":
    logging.getLogger("sluice")
elif case == "the logger set up":
    logging.getLogger("sluice").setLevel(logging.WARNING)
elif case == "the logger given a handler":
    logging.getLogger("sluice").addHandler(logging.NullHandler())
elif case == "the logger not propagating":
    logging.getLogger("sluice").propagate = False
elif case == "a child logger made":
    logging.getLogger("sluice.child")
elif case == "another record factory":
    logging.setLogRecordFactory(lambda *a, **k: logging.LogRecord(*a, **k))
elif case == "another logger class":
    logging.setLoggerClass(type("Mine", (logging.Logger,), {}))
elif case == "the logger made of another class":
    logging.setLoggerClass(type("Mine", (logging.Logger,), {}))
    logging.getLogger("sluice")
    logging.setLoggerClass(logging.Logger)
elif case == "Powertools loaded":
    import aws_lambda_powertools
from chalicelib import ledgerline
print(ledgerline.usable("sluice"))
"""


@pytest.mark.parametrize(
    ("case", "env", "usable"),
    [
        pytest.param("fresh", {}, True, id="a fresh process"),
        pytest.param("the Lambda runtime's handler", {}, True, id="Lambda's root handler"),
        pytest.param("another root handler", {}, True, id="another root handler"),
        pytest.param("pytest's capture handler", {}, False, id="pytest's capture handler"),
        pytest.param("a handler named like pytest's elsewhere", {}, True, id="a lookalike"),
        pytest.param("logging disabled", {}, False, id="logging disabled"),
        pytest.param("the logger made", {}, True, id="the sluice logger made (Chalice)"),
        pytest.param("a child logger made", {}, True, id="a child logger made"),
        pytest.param("the logger set up", {}, False, id="the sluice logger's level set"),
        pytest.param("the logger given a handler", {}, False, id="the logger given a handler"),
        pytest.param("the logger not propagating", {}, False, id="the logger not propagating"),
        pytest.param("another record factory", {}, False, id="another record factory"),
        pytest.param("another logger class", {}, False, id="another logger class"),
        pytest.param("the logger made of another class", {}, False, id="a logger of another class"),
        pytest.param("Powertools loaded", {}, False, id="Powertools loaded"),
        pytest.param("fresh", {"POWERTOOLS_SERVICE_NAME": "x"}, True, id="service name set"),
        *[
            pytest.param("fresh", {name: "INFO"}, False, id=f"{name} set")
            for name in ledgerline.POWERTOOLS_SETTINGS
        ],
        pytest.param("fresh", {"POWERTOOLS_DEV": ""}, False, id="a setting set empty"),
    ],
)
def test_the_line_is_written_only_where_nothing_else_could_tell(
    case: str, env: dict[str, str], usable: bool
) -> None:
    """Any Powertools setting in the environment, pytest's capture handler on the root
    logger (Powertools filters this logger's records out of every other), logging
    disabled, the logger already set up, or Powertools already loaded: the line goes
    through Powertools."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS", "LOG_"))}
    environ.pop("AWS_LAMBDA_LOG_LEVEL", None)
    proc = subprocess.run(
        [sys.executable, "-c", USABLE, case],
        env={**environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == str(usable)


REPORT = r"""
import sys, time
time.time_ns = lambda: 1_796_254_859_554_321_987
time.time = lambda: 1_796_254_859.554321987
from chalicelib import observe
from chalicelib.event import Ledger
lost = int(sys.argv[1])
ledger = Ledger(received=3, archived=3 - lost)
observe.report("cloudwatch_logs", ledger, "SluiceTest", {"log_group": "g"})
sys.stdout.flush()
print("POWERTOOLS", "aws_lambda_powertools" in sys.modules)
"""


@pytest.mark.parametrize("lost", [0, 2], ids=["balanced", "unbalanced"])
def test_a_report_reads_the_same_with_powertools_or_without(lost: int) -> None:
    """`observe.report` in a fresh process writes the same ledger line and metrics as
    when Powertools' Logger writes the line (a setting that changes nothing forces it),
    and does not load Powertools to do it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS", "LOG_"))}
    environ.pop("AWS_LAMBDA_LOG_LEVEL", None)
    outputs = []
    for extra in ({}, {"POWERTOOLS_LOG_LEVEL": "INFO"}):
        proc = subprocess.run(
            [sys.executable, "-c", REPORT, str(lost)],
            env={**environ, **extra, "PYTHONPATH": str(ROOT), "SLUICE_STAGE": "dev"},
            capture_output=True,
            text=True,
            check=True,
        )
        *lines, loaded = proc.stdout.splitlines()
        outputs.append(lines)
        assert loaded == f"POWERTOOLS {bool(extra)}"
    assert outputs[0] == outputs[1]
    line = json.loads(outputs[0][0])
    expected = ("ERROR", "ledger unbalanced") if lost else ("INFO", "ledger")
    assert (line["level"], line["message"]) == expected
    assert line["location"].startswith("report:") and len(outputs[0]) > 1  # and the metrics


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="neither switch"),
        *[
            pytest.param({name: value}, id=f"{name}={value}")
            for name in ledgerline.METRICS_SWITCHES
            for value in ("true", "false", "1", "0")
        ],
        pytest.param({"POWERTOOLS_DEV": "true", "POWERTOOLS_METRICS_DISABLED": "false"}, id="both"),
    ],
)
def test_metrics_are_disabled_as_powertools_says(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """`metrics_disabled()` is Powertools' `is_metrics_disabled()` for every setting of
    its two switches."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    for name in ledgerline.METRICS_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ledgerline.metrics_disabled() == is_metrics_disabled()


def _nested(depth: int) -> Any:
    value: Any = 1.5
    for _ in range(depth):
        value = {"k": [value]}
    return value


def _holds_itself() -> Any:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


@pytest.mark.parametrize(
    ("value", "alike"),
    [
        pytest.param(_nested(5000), True, id="nested past the recursion limit"),
        pytest.param({"k": [_nested(3000), 1e-7]}, False, id="an exponent after deep nesting"),
        pytest.param(_holds_itself(), False, id="a dict that holds itself"),
        pytest.param({"n": [1, True, None, "x", 2.5, (3, 4.0)]}, True, id="plain values"),
    ],
)
def test_fields_of_any_shape_are_checked_without_recursion(value: Any, alike: bool) -> None:
    """The check for floats json would write otherwise walks any depth and stops at a
    container that holds itself (no line then: Powertools writes it as it would)."""
    assert ledgerline._written_alike(value) is alike


def _alike_by_walking_every_value(value: Any) -> bool:
    """The check as first written: every value visited one by one."""
    pending = [value]
    seen = 0
    while pending:
        v = pending.pop()
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        seen += 1
        if seen > ledgerline._MAX_VALUES:
            return False
        if isinstance(v, float):
            text = repr(v)
            if "e" in text or "n" in text:
                return False
        elif isinstance(v, dict):
            pending.extend(v.keys())
            pending.extend(v.values())
        elif isinstance(v, list | tuple):
            pending.extend(v)
    return True


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-05, 1e16, 0.5, -0.0, 1234.5]),
)
_keys = st.one_of(st.text(max_size=3), st.integers(), st.sampled_from([0.5, 2.5e-7]))
_fields = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_keys, inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(_fields)
def test_the_check_by_types_answers_as_walking_every_value(value: Any) -> None:
    """Passing over containers of plain values in one set operation answers as visiting
    each value did, for values of any shape."""
    assert ledgerline._written_alike(value) is _alike_by_walking_every_value(value)
