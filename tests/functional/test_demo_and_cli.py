"""`sluice demo`, `sluice bootstrap` and `sluice local up`, run as a user would."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner

from chalicelib.rules.schema import load_rules
from sluice_cli import local, scenario, simulate
from sluice_cli.local import LocalStack

pytestmark = pytest.mark.functional

LAST_LINE = re.compile(
    r"demo: received=(\d+) archived=(\d+) dropped=(\d+) dead_lettered=(\d+)"
    r" alerts=(\d+) lost=(-?\d+)"
)


def test_demo_ends_with_a_balanced_ledger_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo exits 0 and its last line accounts for every event, with alerts and nothing lost;
    every archive line names the rules version that routed it."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()

    status = scenario.run(seed=7, out=out)

    text = out.getvalue()
    m = LAST_LINE.fullmatch(text.rstrip("\n").splitlines()[-1])
    assert m is not None, text[-2000:]
    received, archived, dropped, dead_lettered, alerts, lost = map(int, m.groups())
    assert status == 0
    assert received == 624 and lost == 0 and received == archived + dropped + dead_lettered
    assert dropped > 0 and alerts > 0
    assert "duplicate ids in the archive: 0" in text
    assert "rules applied from demo-rules.yaml as version 1: " in text
    assert f"archive lines by rules_version: 1={archived}\n" in text  # every line versioned
    assert "#ops" in text and "computer-alerts" in text
    assert '{"level"' not in text and "_aws" not in text  # the functions' own output stays out


def test_demo_rules_file_is_valid_and_ordered() -> None:
    """The demo's rules validate and run unify, drop, then alert."""
    rules = load_rules(yaml.safe_load(scenario.RULES.read_text(encoding="utf-8")))

    assert [r.id for r in rules] == ["unify-payload", "health-noise", "computer-alerts"]


@pytest.mark.parametrize(
    ("message", "alerted"),
    [
        pytest.param("my computer is on fire", True, id="lower case"),
        pytest.param("Computer says no", True, id="capitalised"),
        pytest.param("two minicomputers", True, id="inside a word"),
        pytest.param("COMPUTER OVERHEATED", False, id="upper case"),
        pytest.param("cOMPUTER", False, id="mixed case"),
        pytest.param("the compute node", False, id="no computer"),
    ],
)
def test_demo_alerts_with_the_reference_pattern(message: str, alerted: bool) -> None:
    """The demo's alert rule is the reference scenario's grep `/[Cc]omputer/`: lower case or a
    capital C, not any case."""
    from chalicelib.event import LogEvent
    from chalicelib.rules.compile import RuleSet
    from sluice_cli.explain import explain

    rules = RuleSet(load_rules(yaml.safe_load(scenario.RULES.read_text(encoding="utf-8"))))
    event = LogEvent("demo.chatty-frontend", 0, {"message": message}, {"kind": "cloudwatch"}, "1")
    verdicts = {v.rule_id: v.matched for v in explain(event, rules).verdicts}
    assert verdicts["computer-alerts"] is alerted


def test_corpus_is_varied_with_a_tenth_about_computers() -> None:
    """About 150 distinct one-line messages, roughly 10% mentioning computer in mixed case."""
    corpus = simulate.load_corpus()
    computer = [m for m in corpus if "computer" in m.lower()]

    assert 140 <= len(corpus) == len(set(corpus)) <= 170
    assert 0.08 <= len(computer) / len(corpus) <= 0.12
    assert {"Computer", "COMPUTER", "computer"} <= {
        w for m in computer for w in re.findall(r"(?i)computer", m)
    }


def test_bootstrap_command_prints_the_env_and_is_idempotent(stack: LocalStack) -> None:
    """`sluice bootstrap` on the stack's endpoint prints export lines; a rerun creates nothing."""
    runner = CliRunner()

    first = runner.invoke(local.bootstrap, ["--prefix", "sluice-cli"], env=stack.aws_env)
    second = runner.invoke(local.bootstrap, ["--prefix", "sluice-cli"], env=stack.aws_env)

    assert first.exit_code == 0, first.output
    assert "export SLUICE_RULES_TABLE=sluice-cli-rules" in first.stdout
    assert "created table sluice-cli-rules" in first.stderr
    assert second.exit_code == 0 and "created" not in second.stderr
    assert first.stdout.splitlines() == second.stdout.splitlines()


def test_local_up_serves_until_interrupted(tmp_path: Path) -> None:
    """`sluice local up` prints a usable endpoint, archives what is logged, stops on SIGINT,
    also when started with SIGINT ignored (what a shell does to a command it runs in the
    background: `sluice local up &`, then `kill -INT`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    env.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING")
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "from sluice_cli.local import local; local(['up', '--port', '0', '--slack-port', '0'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for ln in proc.stdout or []:
            lines.put(ln)

    threading.Thread(target=read, daemon=True).start()
    try:
        exported: dict[str, str] = {}
        while "SLUICE_STATE_TABLE" not in exported:
            line = lines.get(timeout=20)
            if line.startswith("export "):
                k, _, v = line.removeprefix("export ").strip().partition("=")
                exported[k] = v
        kwargs = {
            "endpoint_url": exported["AWS_ENDPOINT_URL"],
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        simulate.write_to_cloudwatch(boto3.client("logs", **kwargs), "/app/cli", "s", ["hello"])
        s3 = boto3.client("s3", **kwargs)
        deadline = time.monotonic() + 10
        while not s3.list_objects_v2(Bucket=exported["SLUICE_ARCHIVE_BUCKET"]).get("KeyCount"):
            assert time.monotonic() < deadline, "nothing archived"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            status = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:  # still up: not left running after the test
                proc.kill()
    assert status == 0, proc.stderr.read() if proc.stderr else ""
