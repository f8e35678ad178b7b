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


def _direct_and_record(formatter: Any, std: Any, fields: dict[str, Any]) -> tuple[Any, Any]:
    """The line `direct` writes now and the one the record path writes for the same call
    (timestamps left out: the two are made a moment apart)."""
    import time

    line = formatter.direct("INFO", "report", 7, "ledger", fields)
    record = std.makeRecord(std.name, 20, __file__, 7, "ledger", (), None, "report", fields)
    record.created = time.time()
    ours, theirs = json.loads(line), json.loads(formatter.format(record))
    for doc in (ours, theirs):
        doc.pop("timestamp", None)
    return [list(ours), ours], [list(theirs), theirs]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda log: log.append_keys(cold_start=True), id="a key appended"),
        pytest.param(lambda log: log.append_keys(service="other"), id="a key's value changed"),
        pytest.param(lambda log: log.remove_keys(["service"]), id="a key removed"),
        pytest.param(
            lambda log: log.append_keys(level="%(levelname)s at %(asctime)s"),
            id="a reserved key's format now uses the time",
        ),
        pytest.param(
            lambda log: log.thread_safe_append_keys(request="r-2"), id="a context key set"
        ),
    ],
)
def test_a_changed_log_format_reaches_the_next_direct_line(
    change: Callable[[Any], None],
) -> None:
    """`direct` writes the keys the log format has when it writes (appended, changed,
    removed, context keys), as the record path does, also after lines it wrote before."""
    log = observe.logger()
    formatter = log.registered_handler.formatter
    std = log._logger
    saved = dict(formatter.log_format)
    fields = {"function": "f", "received": 1}
    try:
        first, reference = _direct_and_record(formatter, std, fields)
        assert first == reference
        change(log)
        after, reference = _direct_and_record(formatter, std, fields)
        assert after == reference and after != first
    finally:
        formatter.log_format.clear()
        formatter.log_format.update(saved)
        log.thread_safe_clear_keys()


@pytest.mark.parametrize(
    ("tz", "utc"),
    [
        pytest.param("UTC", False, id="UTC"),
        pytest.param("Asia/Kolkata", False, id="a half-hour zone"),
        pytest.param("America/New_York", False, id="a zone with summer time"),
        pytest.param("America/New_York", True, id="utc=True in a zone"),
    ],
)
def test_timestamps_are_powertools_format_time(
    tz: str, utc: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger line's timestamp is Powertools' `formatTime` of the same instant: at
    every millisecond of a second, across seconds, in zones with offsets and summer time,
    also when the zone setting changes within a second."""
    import time

    formatter = observe._formatter()
    if utc:
        monkeypatch.setattr(formatter, "converter", time.gmtime)
    now = float(int(time.time()))
    instants = [now + ms / 1000 for ms in (0, 1, 499, 999)] + [now + 1.0005, now - 86400 * 180]
    try:
        for i, zone in enumerate(("UTC", tz, "UTC")):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            # Each zone starts with the second the previous one ended with.
            for created in instants if i % 2 == 0 else instants[::-1]:
                msecs = int((created - int(created)) * 1000) + 0.0
                want = formatter.formatTime(record=observe._Instant(created, msecs))
                assert formatter._asctime(created, msecs) == want, (zone, created)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param({"computer-alerts": {"matched": 2, "alerted": 1}}, id="one rule"),
        pytest.param(
            {
                'ünï "q" \\ \n': {"matched": 1},
                "drop": {"dropped": 5, "matched": 5, "transformed": 0},
                "idle": {"matched": 0},
            },
            id="ids to escape, a rule that did nothing",
        ),
        pytest.param({}, id="no rules"),
    ],
)
def test_rule_metric_lines_are_one_document_each(
    rules: dict[str, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rule's EMF line is the JSON document of its directive, dimensions and every
    counter (0 where it did not count), in that order; rules that did nothing have none."""
    import orjson

    monkeypatch.setattr(observe.time, "time", lambda: 1_767_000_000.25)
    ledger = Ledger(received=1, archived=1)
    for rule_id, counts in rules.items():
        for name, n in counts.items():
            ledger.rule(rule_id)[name] += n
    lines = observe._rule_metrics("f", ledger, "Ns", "dev")
    want = []
    for rule_id, counts in rules.items():
        if not any(counts.values()):
            continue
        doc = {
            "_aws": {
                "Timestamp": 1_767_000_000_250,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Ns",
                        "Dimensions": [["function", "rule", "service", "stage"]],
                        "Metrics": [{"Name": n, "Unit": "Count"} for n in observe._RULE_COUNTERS],
                    }
                ],
            },
            "function": "f",
            "rule": rule_id,
            "service": observe.SERVICE,
            "stage": "dev",
            **{n: counts.get(n, 0) for n in observe._RULE_COUNTERS},
        }
        want.append(orjson.dumps(doc))
    assert lines == want


@pytest.mark.parametrize(
    ("dev", "disabled", "off"),
    [
        (None, None, False),
        ("true", None, True),
        ("true", "false", False),
        (None, "1", True),
        ("false", "yes", True),
        ("0", "off", False),
    ],
)
def test_metrics_are_switched_off_as_powertools_says(
    dev: str | None, disabled: str | None, off: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`metrics_disabled` follows Powertools' two switches as they are set at each call
    (also after other values were seen)."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    for name in observe._SWITCHES:
        monkeypatch.delenv(name, raising=False)
    assert observe.metrics_disabled() is False
    for name, value in zip(observe._SWITCHES, (dev, disabled), strict=True):
        if value is not None:
            monkeypatch.setenv(name, value)
    assert observe.metrics_disabled() is off is is_metrics_disabled()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "maybe")
    with pytest.raises(ValueError):
        observe.metrics_disabled()


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        pytest.param("datefmt", "%H:%M:%S.%F", id="a date format"),
        pytest.param("use_rfc3339_iso8601", True, id="RFC 3339"),
        pytest.param("custom_ms_time_directive", "%Q", id="another millisecond directive"),
        pytest.param("default_time_format", "%Y/%m/%d %F", id="another default format"),
    ],
)
def test_other_time_settings_are_formatted_by_powertools(
    attribute: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A formatter whose time settings are not Powertools' defaults has its timestamps
    formatted by Powertools' own `formatTime`."""
    import time

    formatter = observe._formatter()
    monkeypatch.setattr(formatter, attribute, value)
    now = time.time()
    msecs = int((now - int(now)) * 1000) + 0.0
    want = formatter.formatTime(record=observe._Instant(now, msecs))
    assert formatter._asctime(now, msecs) == want
