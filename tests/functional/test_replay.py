"""`sluice replay FILE`: times read and re-stamped in place, gaps kept and scaled, Ctrl-C."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sluice_cli import replay
from sluice_cli.local import LocalStack

pytestmark = pytest.mark.functional

NOW = 1_795_690_000_000  # 2026-11-26T10:46:40Z
T0 = 1_795_161_600_000  # 2026-11-20T08:00:00Z, the recorded file's first line


def restamped(lines: list[str], speed: float = 1.0, **kwargs: float) -> list[tuple[float, str]]:
    """(offset, re-stamped text) per line, replayed from NOW."""
    out = replay.timeline(iter(lines), app="t", start_ms=NOW, speed=speed, **kwargs)
    return [(round(offset, 6), e.lines[0]) for offset, e in out]


MS, S = 1, 1000  # a format's precision: milliseconds or whole seconds


@pytest.mark.parametrize(
    ("line", "stamp", "precision"),
    [
        pytest.param("2026-11-20T08:00:01.250Z GET /", "2026-11-20T08:00:01.250Z", MS, id="ISO Z"),
        pytest.param("2026-11-20T09:00:01.250+01:00 x", "2026-11-20T09:00:01.250+01:00", MS,
                     id="ISO offset"),
        pytest.param("2026-11-20 08:00:01,250 ERROR jobs-1 x", "2026-11-20 08:00:01,250", MS,
                     id="Python logging"),
        pytest.param("[2026-11-20 08:00:01.250] INFO x", "2026-11-20 08:00:01.250", MS,
                     id="bracketed"),
        pytest.param("<134>1 2026-11-20T08:00:01.250Z web-1 app 1 - - x",
                     "2026-11-20T08:00:01.250Z", MS, id="syslog 5424"),
        pytest.param("Nov 20 08:00:01 web-1 sshd[7]: x", "Nov 20 08:00:01", S, id="syslog 3164"),
        pytest.param('203.0.113.9 - - [20/Nov/2026:08:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "c"',
                     "20/Nov/2026:08:00:01 +0000", S, id="access log"),
        pytest.param("time=2026-11-20T08:00:01.250Z level=info msg=x", "2026-11-20T08:00:01.250Z",
                     MS, id="logfmt"),
        pytest.param("1795161601.250 x", "1795161601.250", MS, id="epoch seconds"),
        pytest.param("1795161601250 x", "1795161601250", MS, id="epoch ms"),
    ],
)  # fmt: skip
def test_a_leading_time_is_read_and_rewritten_in_its_own_format(
    line: str, stamp: str, precision: int
) -> None:
    """The time a text line starts with (or its access-log time) is read, and a new time is
    written in its place in the same format, the rest of the line untouched."""
    found = replay.find_time(line, NOW)

    assert found is not None
    ms, restamp = found
    assert ms == T0 + 1000 + (250 if precision == MS else 0)
    new = restamp(NOW + 1234)
    prefix, _, suffix = line.partition(stamp)
    assert new.startswith(prefix) and new.endswith(suffix) and stamp not in new
    assert len(new) == len(line)  # same shape: as many digits, the same separators
    again = replay.find_time(new, NOW)
    assert again is not None and again[0] == (NOW + 1234) // precision * precision


@pytest.mark.parametrize(
    ("value", "rewritten"),
    [
        pytest.param("2026-11-20T08:00:01.250Z", "2026-11-26T10:46:41.484Z", id="ISO text"),
        pytest.param(1795161601250, 1795690001484, id="epoch ms"),
        pytest.param(1795161601.25, 1795690001.484, id="epoch seconds"),
        pytest.param("1795161601", "1795690001", id="epoch text"),
    ],
)
def test_a_json_line_keeps_its_fields_and_its_time_type(value: object, rewritten: object) -> None:
    """A JSON line's time field is re-stamped with the same type and unit; other fields stay."""
    line = json.dumps({"ts": value, "message": "paid", "amount": 12.5, "tags": ["a"]})

    ms, restamp = replay.find_time(line, NOW) or (None, None)

    assert ms == T0 + (1000 if value == "1795161601" else 1250)
    assert restamp is not None
    assert json.loads(restamp(NOW + 1484)) == {
        "ts": rewritten,
        "message": "paid",
        "amount": 12.5,
        "tags": ["a"],
    }


def test_gaps_between_lines_are_kept_and_divided_by_the_speed() -> None:
    """Lines keep their original spacing, ten times shorter at --speed 10, and each new
    time is the replay's start plus the line's offset."""
    gaps_ms = [0, 1500, 250, 3000, 0, 10]
    lines, t = [], T0
    for i, gap in enumerate(gaps_ms):
        t += gap
        lines.append(json.dumps({"time": t, "n": i}))

    out = restamped(lines, speed=10)

    offsets = [o for o, _ in out]
    assert offsets == pytest.approx([0, 0.15, 0.175, 0.475, 0.475, 0.476])
    assert [json.loads(text)["time"] for _, text in out] == [NOW + round(o * 1000) for o in offsets]


def test_untimed_lines_keep_the_previous_gap_and_a_stack_trace_stays_with_its_line() -> None:
    """A line without a time follows after the previous gap; a trace's lines follow at once."""
    lines = [
        "2026-11-20 08:00:00,000 INFO started",
        "2026-11-20 08:00:02,000 ERROR failed",
        "Traceback (most recent call last):",
        '  File "/app/x.py", line 3, in run',
        "    boom()",
        "ValueError: bad",
        "a plain line",
        "",
        "another plain line",
        "2026-11-20 08:00:07,000 INFO after",
    ]

    offsets = [o for o, _ in restamped(lines)]

    assert offsets == [0, 2, 2, 2, 2, 2, 4, 6, 7]  # blank line skipped; 07 is 1 s after 06


def test_a_long_gap_is_capped_with_max_gap() -> None:
    """--max-gap bounds any one wait (in the file's seconds), so a quiet night is not waited out."""
    lines = ["2026-11-20T08:00:00Z a", "2026-11-20T20:00:00Z b", "2026-11-20T20:00:01Z c"]

    assert [o for o, _ in restamped(lines, max_gap_s=5)] == [0, 5, 6]


@pytest.fixture
def replay_stack() -> Iterator[LocalStack]:
    with LocalStack(poll_interval_s=0.05) as s:
        yield s


def test_replay_to_cloudwatch_stamps_events_as_live(
    replay_stack: LocalStack, tmp_path: Path
) -> None:
    """A gzip JSON-lines file replayed at 20x lands in /replay/<name> with today's times,
    its fields intact and its gaps divided by 20."""
    path = tmp_path / "checkout-2026-11-20.jsonl.gz"
    records = [
        {"time": f"2026-11-20T08:00:{i // 10:02d}.{i % 10}00Z", "message": f"order {i}", "n": i}
        for i in range(40)
    ]
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    before = int(time.time() * 1000)

    result = CliRunner().invoke(
        replay.replay, [str(path), "--speed", "20", "--no-progress"], env=replay_stack.aws_env
    )

    assert result.exit_code == 0, result.output
    logs = replay_stack.clients.get("logs")
    events = logs.filter_log_events(logGroupName="/replay/checkout-2026-11-20")["events"]
    assert len(events) == 40
    docs = [json.loads(e["message"]) for e in events]
    assert [d["n"] for d in docs] == list(range(40))
    assert [d["message"] for d in docs] == [r["message"] for r in records]
    stamps = [e["timestamp"] for e in events]
    assert before <= stamps[0] <= before + 5_000
    assert {b - a for a, b in itertools.pairwise(stamps)} == {5}  # 100 ms / 20
    assert [replay.find_time(e["message"], before)[0] for e in events] == stamps


def test_ctrl_c_during_a_replay_writes_what_was_due_and_exits_130(tmp_path: Path) -> None:
    """SIGINT while waiting for a line an hour away ends the replay: the lines already due are
    written, the summary counts them, the exit status is 130."""
    src = tmp_path / "incident.log"
    src.write_text(
        "2026-11-20T08:00:00Z first\n2026-11-20T08:00:00.5Z second\n2026-11-20T09:00:00Z later\n"
    )
    out = tmp_path / "out.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sluice_cli.main import main; main()", "replay",
         str(src), "--out", str(out)],  # with the progress bar: its thread may get the signal
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
            not out.exists() or len(out.read_text().splitlines()) < 2
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 130, stderr
    assert re.search(r"written to file: 2 events, 2 lines", stderr), stderr
    lines = out.read_text().splitlines()
    assert [ln.split(" ", 1)[1] for ln in lines] == ["first", "second"]
    assert not lines[0].startswith("2026-11-20")
