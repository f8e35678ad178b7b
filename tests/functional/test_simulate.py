"""`sluice simulate`: profiles, shares, every target read back, and Ctrl-C."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from chalicelib.event import LogEvent
from chalicelib.parsers import registry
from chalicelib.parsers.multiline import join_multiline
from chalicelib.sources.kpl import deaggregate, is_aggregated
from sluice_cli import simulate
from sluice_cli.local import LocalStack
from sluice_cli.profiles import (
    BURST_MESSAGES,
    PRECURSOR_MESSAGES,
    PRECURSORS,
    PROFILES,
    Entry,
    Generator,
    Profile,
)

pytestmark = pytest.mark.functional

STREAM = "sim-fan-in"
BUCKET = "sim-app-logs"
TEXT_HEAD = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[.,]\d{3} (?P<level>[A-Z]+) ")
SYSLOG_LEVEL = {3: "ERROR", 4: "WARN", 6: "INFO", 7: "DEBUG"}


def entries(n: int, profiles: list[Profile] | None = None, **kwargs: Any) -> list[Entry]:
    """`n` entries of a generator (every profile, seed 11, 100/s unless given)."""
    args = {"rate": 100, "seed": 11, **kwargs}
    gen = Generator(profiles or list(PROFILES.values()), simulate.load_corpus(), **args)
    return list(itertools.islice(gen, n))


def level_of(line: str) -> str | None:
    """The level a written line carries, read with Sluice's parsers; None for a trace line."""
    if line.startswith("{"):
        rec = json.loads(line)
        return str(rec.get("level") or rec.get("severity")).upper()
    if line.startswith("time="):
        return str(registry.build("logfmt")(line)["level"]).replace("WARNING", "WARN")
    if line.startswith("<"):
        rec = registry.build("syslog5424")(line)
        assert "parse_error" not in rec, rec
        return SYSLOG_LEVEL[rec["severity"]]
    if line.startswith("203.0.113."):
        rec = registry.build("apache_combined")(line)
        assert "parse_error" not in rec, rec
        return "ERROR" if rec["status"] >= 500 else "WARN" if rec["status"] >= 400 else "INFO"
    m = TEXT_HEAD.match(line)
    if m:
        return m["level"].replace("WARNING", "WARN")
    if line[:4].isdigit() and "," in line:
        return next(csv.reader([line]))[1]
    return None  # a stack trace's line, or the CSV header


def shares(lines: list[str]) -> tuple[int, float, float]:
    """(entries, ERROR share, precursor share) of written lines."""
    levels = [lv for lv in map(level_of, lines) if lv is not None]
    precursors = sum(any(p in ln for p in PRECURSOR_MESSAGES) for ln in lines)
    return len(levels), levels.count("ERROR") / len(levels), precursors / len(levels)


# ---------------------------------------------------------------- the generator
def test_error_and_precursor_shares_hold_and_a_seed_reproduces_the_run() -> None:
    """With a fixed seed, ERROR and precursor entries come out at the requested shares, and
    the same seed gives the same entries."""
    run = entries(20_000, errors=0.05, precursors=0.01)

    kinds = Counter(e.kind for e in run)
    error_share = sum(e.level == "ERROR" for e in run) / len(run)
    assert 0.042 <= error_share <= 0.058
    assert 0.007 <= kinds["precursor"] / len(run) <= 0.013
    assert kinds["burst"] > kinds["error"] / 2  # both kinds of error are there
    assert entries(300, errors=0.05, precursors=0.01) == run[:300]
    assert entries(300, errors=0.05, precursors=0.01, seed=12) != run[:300]


def test_each_precursor_is_followed_by_an_error_burst_on_its_host() -> None:
    """A precursor warning is followed, within the lead time, by related errors for the same
    application and host."""
    run = entries(20_000, precursors=0.01, lead_s=(2.0, 10.0), burst=(2, 4))
    pairs = dict(PRECURSORS)
    last_ms = run[-1].time_ms

    precursors = [e for e in run if e.kind == "precursor" and e.time_ms < last_ms - 12_000]
    assert len(precursors) > 100
    for p in precursors:
        message = next(m for m in PRECURSOR_MESSAGES if any(m in ln for ln in p.lines))
        burst = [
            e
            for e in run
            if e.kind == "burst"
            and (e.app, e.host) == (p.app, p.host)
            and p.time_ms + 2_000 <= e.time_ms <= p.time_ms + 10_000 + 500
            and any(pairs[message] in ln for ln in e.lines)
        ]
        assert len(burst) >= 2, p
        assert {e.level for e in burst} == {"ERROR"}
    bursts = [e for e in run if e.kind == "burst"]
    assert all(any(m in e.lines[0] for m in BURST_MESSAGES) for e in bursts)


def test_a_users_corpus_supplies_the_messages() -> None:
    """With --corpus, normal entries draw the file's calm lines and errors its bad ones."""
    gen = Generator(
        [PROFILES["billing"]], ["cart viewed", "card declined"], rate=10, seed=1, precursors=0
    )

    run = list(itertools.islice(gen, 400))

    messages = {(json.loads(e.lines[0])["event"], e.level) for e in run}
    assert messages == {("cart viewed", "INFO"), ("card declined", "ERROR")}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_writes_lines_sluice_parses(name: str) -> None:
    """Each profile's lines are well-formed for their format, and the levels they carry are
    the entries' levels; stack traces join back into their own event."""
    run = entries(400, profiles=[PROFILES[name]], errors=0.3, precursors=0.02)

    for e in run:
        assert level_of(e.lines[0]) == e.level, e
        assert all(level_of(ln) is None for ln in e.lines[1:]), e
    traces = [e for e in run if len(e.lines) > 1]
    if PROFILES[name].fmt in ("java", "python"):
        assert traces
        for e in traces:
            source = {"log_group": "/sim", "log_stream": e.host}
            events = [
                LogEvent("t", 0, {"message": ln}, source, str(i)) for i, ln in enumerate(e.lines)
            ]
            joined = join_multiline(events)
            # The header line, then the exception and its frames as one event.
            assert [ev.count for ev in joined] == [1, len(e.lines) - 1]
    else:
        assert not traces


@pytest.mark.parametrize(
    ("text", "per_s"),
    [
        pytest.param("100", 100.0, id="bare number"),
        pytest.param("100/s", 100.0, id="per second"),
        pytest.param("6000/m", 100.0, id="per minute"),
        pytest.param("36/h", 0.01, id="per hour"),
        pytest.param("0.5", 0.5, id="fraction"),
    ],
)
def test_rates_are_read_per_second(text: str, per_s: float) -> None:
    """--rate takes N, N/s, N/m or N/h."""
    assert simulate.parse_rate(text) == pytest.approx(per_s)


@pytest.mark.parametrize("text", ["0", "-5/s", "ten", "5/d", ""])
def test_a_rate_that_is_not_positive_is_refused(text: str) -> None:
    """A rate that is not a positive number per s, m or h is a usage error."""
    with pytest.raises(click.BadParameter):
        simulate.parse_rate(text)


# ---------------------------------------------------------------- every target
@pytest.fixture
def sim_stack() -> Iterator[LocalStack]:
    """A local stack with a Kinesis stream and a watched bucket."""
    with LocalStack(poll_interval_s=0.05, kinesis_streams=[STREAM], watch_buckets=[BUCKET]) as s:
        yield s


def read_cloudwatch(stack: LocalStack) -> list[str]:
    logs = stack.clients.get("logs")
    out: list[str] = []
    for group in logs.describe_log_groups(logGroupNamePrefix="/sim/")["logGroups"]:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group["logGroupName"])
        for page in pages:
            out += [e["message"] for e in page["events"]]
    return out


def read_kinesis(stack: LocalStack) -> list[str]:
    kinesis = stack.clients.get("kinesis")
    out: list[str] = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=it, Limit=10_000)["Records"]
        for r in records:
            parts = deaggregate(r["Data"]) if is_aggregated(r["Data"]) else [("", r["Data"])]
            out += [ln for _, data in parts for ln in data.decode().split("\n")]
    return out


def read_s3(stack: LocalStack) -> list[str]:
    s3 = stack.clients.get("s3")
    out: list[str] = []
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        assert "/dt=" in obj["Key"] and obj["Key"].endswith(".gz"), obj["Key"]
        body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        out += body.decode().splitlines()
    return out


TARGETS: dict[str, tuple[list[str], Callable[[LocalStack, Path], list[str]]]] = {
    "cloudwatch": (["--target", "cloudwatch"], lambda s, _: read_cloudwatch(s)),
    "kinesis": (["--target", "kinesis", "--stream", STREAM], lambda s, _: read_kinesis(s)),
    "kinesis-kpl": (
        ["--target", "kinesis", "--stream", STREAM, "--kpl"],
        lambda s, _: read_kinesis(s),
    ),
    "s3-gzip": (
        ["--target", "s3", "--bucket", BUCKET, "--gzip"],
        lambda s, _: read_s3(s),
    ),
    "file": (["--out", "OUT"], lambda _, p: p.read_text().splitlines()),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_simulate_writes_each_target_in_the_requested_shares(
    target: str, sim_stack: LocalStack, tmp_path: Path
) -> None:
    """Every entry reaches the target once, in its profile's format, with the ERROR and
    precursor shares asked for."""
    args, read = TARGETS[target]
    out = tmp_path / "sim.log"
    args = [str(out) if a == "OUT" else a for a in args]

    result = CliRunner().invoke(
        simulate.simulate,
        [*args, "--count", "3000", "--rate", "10000/s", "--seed", "5", "--errors", "0.1",
         "--precursors", "0.02", "--lead", "0.002-0.01", "--no-progress"],
        env=sim_stack.aws_env,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "3000 events" in result.stderr
    lines = [ln for ln in read(sim_stack, out) if ln and not ln.startswith("time,level")]
    n, errors, precursors = shares(lines)
    assert n == 3000
    # Over 40 seeds, 3,000 entries gave errors 0.099 +- 0.007 and precursors 0.020 +- 0.002
    # (one standard deviation): the bounds are about 3.5 of them.
    assert 0.075 <= errors <= 0.125
    assert 0.013 <= precursors <= 0.027
    if target == "kinesis-kpl":
        assert re.search(r"3000 events, \d+ lines, \d{1,2} records", result.stderr)


def test_simulate_refuses_a_stream_or_bucket_that_does_not_exist(sim_stack: LocalStack) -> None:
    """A missing Kinesis stream or bucket is named, with the local stack flag that creates it."""
    runner = CliRunner()

    stream = runner.invoke(
        simulate.simulate, ["--target", "kinesis", "--stream", "nope", "--count", "1"],
        env=sim_stack.aws_env,
    )  # fmt: skip
    bucket = runner.invoke(
        simulate.simulate, ["--target", "s3", "--bucket", "no-such-bucket", "--count", "1"],
        env=sim_stack.aws_env,
    )  # fmt: skip

    assert stream.exit_code == 1 and "--kinesis-stream nope" in stream.stderr
    assert bucket.exit_code == 1 and "--watch-bucket no-such-bucket" in bucket.stderr
    assert read_cloudwatch(sim_stack) == []


def test_ctrl_c_writes_the_batch_in_progress_prints_the_summary_and_exits_130(
    tmp_path: Path,
) -> None:
    """SIGINT stops an endless run: what was taken is written, the summary says how much,
    and the exit status is 130."""
    out = tmp_path / "live.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sluice_cli.main import main; main()", "simulate",
         "--out", str(out), "--rate", "400/s", "--seed", "3", "--no-progress"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not (out.exists() and out.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists(), "nothing written before the deadline"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    m = re.search(r"written to file: (\d+) events, (\d+) lines", stderr)
    assert m is not None, stderr
    assert len(out.read_text().splitlines()) == int(m[2]) >= int(m[1]) > 0
