"""Metrics the functions emit: a `stage` dimension on every one, and time per pipeline stage.

The dashboard and alarms of infra/resources.yaml query these exact metric names and
dimension sets (tests/unit/test_operations.py checks them against what is emitted here).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import observe
from chalicelib.event import Ledger

COUNTER_DIMENSIONS = ("function", "service", "stage")
RULE_DIMENSIONS = ("function", "rule", "service", "stage")


def emitted(text: str) -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """metric name -> (dimension names, the EMF document) of every EMF line in `text`."""
    out = {}
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            [dims] = directive["Dimensions"]
            for m in directive["Metrics"]:
                out[m["Name"]] = (tuple(sorted(dims)), doc)
    return out


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> str:
    from chalicelib.settings import get_settings

    monkeypatch.setenv("SLUICE_STAGE", "dev")
    get_settings.cache_clear()
    observe.take_times()
    return "dev"


def test_counters_and_times_carry_the_stage(
    staged: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every counter, `rules_unavailable` and each recorded stage time is emitted with the
    function, service and stage dimensions; the times reach the ledger line too."""
    start = observe.add_time("decode", observe.perf_counter())
    observe.add_time("route", start)
    ledger = Ledger(received=3, archived=3)
    observe.report("cloudwatch_logs", ledger, "SluiceTest", {"rules_error": "down"})
    out = capsys.readouterr().out
    metrics = emitted(out)
    for name in (*observe._COUNTERS, "rules_unavailable", "decode_ms", "route_ms"):
        dims, doc = metrics[name]
        assert dims == COUNTER_DIMENSIONS, name
        assert doc["stage"] == staged and doc["function"] == "cloudwatch_logs"
    assert "parse_ms" not in metrics  # only stages that ran
    [line] = [r for r in caplog.records if r.getMessage() == "ledger"]
    assert set(line.timings_ms) == {"decode", "route"}  # type: ignore[attr-defined]
    assert observe.take_times() == {}  # the tally starts afresh for the next invocation


def test_rule_metrics_carry_the_stage(staged: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-rule metrics add the rule to the same dimensions."""
    ledger = Ledger(received=1, archived=1)
    ledger.rule("computer-alerts")["matched"] += 1
    observe.report("kinesis_records", ledger, "SluiceTest")
    dims, doc = emitted(capsys.readouterr().out)["matched"]
    assert dims == RULE_DIMENSIONS
    assert (doc["rule"], doc["stage"]) == ("computer-alerts", staged)


@pytest.mark.parametrize(
    ("env", "stage"),
    [
        pytest.param({"SLUICE_STAGE": "prod"}, "prod", id="setting"),
        pytest.param(
            {"AWS_LAMBDA_FUNCTION_NAME": "sluice-dev-cloudwatch_logs"}, "dev", id="function-name"
        ),
        pytest.param(
            {"SLUICE_STAGE": "prod", "AWS_LAMBDA_FUNCTION_NAME": "sluice-dev-x"},
            "prod",
            id="setting-wins",
        ),
        pytest.param({"AWS_LAMBDA_FUNCTION_NAME": "my-function"}, "local", id="other-name"),
        pytest.param({}, "local", id="nothing"),
    ],
)
def test_stage_setting(env: dict[str, str], stage: str) -> None:
    """The stage comes from SLUICE_STAGE, else from the function's templated name."""
    from chalicelib.settings import get_settings

    base = {"SLUICE_RULES_TABLE": "r", "SLUICE_ARCHIVE_BUCKET": "b", "SLUICE_DLQ_URL": "q"}
    import os

    saved = dict(os.environ)
    try:
        for k in ("SLUICE_STAGE", "AWS_LAMBDA_FUNCTION_NAME"):
            os.environ.pop(k, None)
        os.environ.update({**base, **env})
        get_settings.cache_clear()
        assert observe.stage_name() == stage
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def _cloudwatch(runtime: Any, context: Any, load_event: Callable[[str], Any]) -> None:
    from chalicelib.handlers import handle_cloudwatch_logs

    handle_cloudwatch_logs(load_event("cloudwatch_logs"), context, runtime)


def _kinesis(runtime: Any, context: Any, load_event: Callable[[str], Any]) -> None:
    from chalicelib.handlers import handle_kinesis_records

    handle_kinesis_records(load_event("kinesis_records"), context, runtime)


@pytest.mark.parametrize(
    ("handler", "stages"),
    [
        pytest.param(_cloudwatch, ("decode", "route", "archive"), id="cloudwatch_logs"),
        pytest.param(_kinesis, ("decode", "route", "archive"), id="kinesis_records"),
    ],
)
def test_handlers_time_each_pipeline_stage(
    handler: Callable[..., None],
    stages: tuple[str, ...],
    runtime: Any,
    lambda_context: Any,
    load_event: Callable[[str], Any],
    staged: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real invocation reports the time of each stage it went through, as metrics."""
    handler(runtime, lambda_context, load_event)
    metrics = emitted(capsys.readouterr().out)
    for stage in stages:
        dims, doc = metrics[f"{stage}_ms"]
        value = doc[f"{stage}_ms"]  # Powertools writes values as lists
        assert (
            dims == COUNTER_DIMENSIONS and min(value if isinstance(value, list) else [value]) >= 0
        )


def test_deliver_is_timed_when_rules_act(
    runtime: Any,
    lambda_context: Any,
    load_event: Callable[[str], Any],
    apply_rules: Callable[[dict[str, Any]], Any],
    staged: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An invocation whose rules send something reports `deliver_ms`."""
    apply_rules(
        {
            "rules": [
                {"id": "all", "match": {"tag": "**"}, "actions": [{"sns": {"topic": "ops-pager"}}]}
            ]
        }
    )
    _cloudwatch(runtime, lambda_context, load_event)
    assert "deliver_ms" in emitted(capsys.readouterr().out)


def test_timed_reader_counts_only_its_own_time() -> None:
    """`timed` counts the time producing items (also when the consumer stops early), and
    `add_rest` counts the remainder of a loop without what other stages counted."""
    observe.take_times()

    def slow() -> Any:
        for i in range(1000):
            sum(range(200))
            yield i

    started, counted = observe.perf_counter(), observe.tally()
    items = observe.timed(slow(), "decode")
    for i in items:
        if i == 500:
            break
    items.close()
    observe.add_rest("parse", started, counted)
    times = observe.take_times()
    assert times["decode"] > 0 and times["parse"] >= 0
    assert set(times) == {"decode", "parse"}


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([("received", "Count", 10), ("archived", "Count", 9)], id="counters"),
        pytest.param(
            [("received", "Count", 0), ("route_ms", "Milliseconds", 0.123456789)],
            id="a zero and a fractional time",
        ),
        pytest.param([("rules_unavailable", "Count", 1)], id="one metric"),
    ],
)
def test_invocation_metrics_are_the_document_powertools_writes(
    values: list[tuple[str, str, float]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The invocation's EMF line, written directly, is the document Powertools' Metrics
    writes for the same metrics and dimensions (its timestamp aside)."""
    from aws_lambda_powertools import Metrics

    m = Metrics(namespace="Sluice-test", service=observe.SERVICE)
    m.add_dimension(name="function", value="cloudwatch_logs")
    m.add_dimension(name="stage", value="dev")
    for name, unit, value in values:
        m.add_metric(name=name, unit=unit, value=value)
    m.flush_metrics()
    theirs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ours = json.loads(observe._invocation_metrics("cloudwatch_logs", "Sluice-test", "dev", values))
    for doc in (theirs, ours):
        doc["_aws"].pop("Timestamp")
    assert ours == theirs
    assert list(ours) == list(theirs)


# ---------------------------------------------------------------- the ledger line
_LEDGER = {
    "function": "cloudwatch_logs",
    "received": 10,
    "archived": 9,
    "dropped": 1,
    "dead_lettered": 0,
    "alerts": 0,
    "actions_failed": 0,
    "lost": 0,
    "dropped_by": {"noise": 1},
    "dead_letter_reasons": {},
    "rules": {"computer-alerts": {"matched": 2, "alerted": 1}},
    "timings_ms": {"decode": 0.012, "route": 1.5, "archive": 0.0},
}
LINES = [
    pytest.param("ledger", _LEDGER, {}, id="a balanced ledger"),
    pytest.param("ledger unbalanced", {**_LEDGER, "lost": 3}, {}, id="an unbalanced one"),
    pytest.param(
        "ledger",
        {
            **_LEDGER,
            "log_group": 'ünïcødé 日本 "q" \\ \n\t\x00\x1f\x7f \u2028 😀',
            "errors": ["rule r: alert sent, dedupe record not written", ""],
            "decode_error": None,
        },
        {},
        id="text to escape, lists, a None",
    ),
    pytest.param(
        "ledger",
        {**_LEDGER, "extra": {1: "int key", "f": 1.25, "neg": -0.0, "t": (1, 2), "b": True}},
        {},
        id="numbers, int keys, tuples, booleans",
    ),
    pytest.param("ledger", {**_LEDGER, "odd": {"a set"}}, {}, id="a value json writes with str"),
    pytest.param(
        "ledger",
        {**_LEDGER, "huge": 2**70, "surrogate": "\udcff"},
        {},
        id="values only Powertools' json writes",
    ),
    pytest.param(
        "ledger",
        _LEDGER,
        {"_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"},
        id="an X-Ray trace",
    ),
]


@pytest.mark.parametrize(("message", "fields", "env"), LINES)
def test_the_ledger_line_is_the_one_powertools_writes(
    message: str, fields: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The formatter writes the ledger line itself, character for character as
    Powertools' formatter writes it (keys, order, values, escapes), appended and context
    keys included; any other record is Powertools' own."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    log = observe.logger()
    std = log._logger
    formatter = log.registered_handler.formatter
    log.append_keys(cold_start=False)
    log.thread_safe_append_keys(request="r-1")
    try:
        for msg in (message, "another message", "ledger %s"):
            level = 40 if "unbalanced" in msg else 20
            record = std.makeRecord(std.name, level, __file__, 7, msg, (), None, "report", fields)
            ours = formatter.format(record)
            assert ours == LambdaPowertoolsFormatter.format(formatter, record)
            if msg == message and "huge" not in fields:  # written by the formatter itself
                with monkeypatch.context() as m:
                    m.setattr(formatter, "_extract_log_keys", None)  # Powertools' own path
                    assert formatter.format(record) == ours
        json.loads(ours)
    finally:
        log.remove_keys(["cold_start"])
        log.thread_safe_clear_keys()


def test_report_logs_one_record_as_the_powertools_logger_would(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report` hands the logging system one record per invocation, from `report`, at INFO
    (ERROR when unbalanced), with the ledger's fields as attributes, and a level that
    hides INFO hides the balanced line, never the metrics."""
    log = observe.logger()
    for lost, level in ((0, "INFO"), (2, "ERROR")):
        caplog.clear()
        ledger = Ledger(received=3, archived=3 - lost)
        observe.report("cloudwatch_logs", ledger, "SluiceTest", {"log_group": "g"})
        [record] = [r for r in caplog.records if r.name == log._logger.name]
        assert (record.levelname, record.funcName) == (level, "report")
        assert record.getMessage() == ("ledger unbalanced" if lost else "ledger")
        assert (record.received, record.log_group) == (3, "g")  # type: ignore[attr-defined]
    previous = log._logger.level
    log.setLevel("WARNING")
    try:
        caplog.clear()
        capsys.readouterr()
        observe.report("cloudwatch_logs", Ledger(received=1, archived=1), "SluiceTest")
        assert not [r for r in caplog.records if r.name == log._logger.name]
        assert "received" in emitted(capsys.readouterr().out)
    finally:
        log._logger.setLevel(previous)


class _Seen(logging.Handler):
    """A handler above the logger that keeps what reaches it."""

    def __init__(self, *filters: Any) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        for f in filters:
            self.addFilter(f)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _line_of(text: str) -> dict[str, Any]:
    [line] = [ln for ln in text.splitlines() if '"message":"ledger"' in ln]
    doc = json.loads(line)
    doc.pop("timestamp")  # the instant it was written
    return {"keys": list(json.loads(line)), **doc}


@pytest.mark.parametrize(
    ("above", "direct"),
    [
        pytest.param(lambda: [], True, id="no other handler"),
        pytest.param(
            lambda: [
                _Seen(
                    __import__(
                        "aws_lambda_powertools.logging.filters"
                    ).logging.filters.SuppressFilter("sluice")
                )
            ],
            True,
            id="Lambda's root handler, filtering the logger out",
        ),
        pytest.param(lambda: [_Seen()], False, id="a handler that sees the record"),
    ],
)
def test_the_ledger_line_is_written_directly_only_where_no_one_else_sees_it(
    above: Callable[[], list[_Seen]], direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the logger's own handler is the only one its record would reach, the ledger
    line is written to that handler's stream without a record: the same line (keys,
    order, values, location) the record path writes; a handler that would see the
    record gets it as before."""
    import io

    log = observe.logger()
    handler = log.registered_handler
    handlers = above()
    monkeypatch.setattr(logging.root, "handlers", list(handlers))
    made: list[int] = []
    real = log._logger.makeRecord
    monkeypatch.setattr(log._logger, "makeRecord", lambda *a, **k: made.append(1) or real(*a, **k))
    saved, handler.stream = handler.stream, io.StringIO()  # (setStream flushes the old one)
    try:
        ledger = Ledger(received=2, archived=2)
        ledger.rule("r")["matched"] += 2
        observe.report("cloudwatch_logs", ledger, "SluiceTest", {"log_group": "ü\\n"})
        ours = _line_of(handler.stream.getvalue())
        assert bool(made) is not direct
        for h in handlers:
            assert len(h.records) == (0 if direct else 1)
        # The same report through a record (a handler above that sees it):
        monkeypatch.setattr(logging.root, "handlers", [_Seen()])
        handler.stream = io.StringIO()
        observe.report("cloudwatch_logs", ledger, "SluiceTest", {"log_group": "ü\\n"})
        assert _line_of(handler.stream.getvalue()) == ours
        assert ours["location"].startswith("report:")
    finally:
        handler.stream = saved


def test_a_failing_stream_fails_as_logging_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that cannot be written (closed) does not make `report` raise: the record
    path then reports it as logging does."""
    import io

    log = observe.logger()
    handler = log.registered_handler
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging, "raiseExceptions", False)
    closed = io.StringIO()
    closed.close()
    saved, handler.stream = handler.stream, closed
    try:
        observe.report("cloudwatch_logs", Ledger(received=1, archived=1), "SluiceTest")
    finally:
        handler.stream = saved
