"""Operator-caused failures end with one line on stderr (what is wrong; how to fix it), exit 1,
and no traceback unless --debug. Each case runs `sluice` as a user would, in a fresh process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ONE_LINE = re.compile(r"Error: [^\n]+; [^\n]+\n")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port, with no resources in it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(tmp_path: Path) -> dict[str, str]:
    """A shell with nothing configured: no region, credentials, profile or endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_"))}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
        SLUICE_RULES_TABLE="sluice-dev-rules",
        SLUICE_DLQ_URL="http://127.0.0.1:1/000000000000/sluice-dev-dlq",
        NO_COLOR="1",
    )
    return env


CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = {"AWS_DEFAULT_REGION": "us-east-1"}
RULES = "rules:\n  - id: keep-all\n    match: {tag: 'app.**'}\n    actions: [archive]\n"


def sluice(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "from sluice_cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


NO_REGION = "no AWS region configured; set AWS_DEFAULT_REGION"
CASES = [
    pytest.param(
        ["rules", "list"],
        {**CREDS},
        NO_REGION,
        id="no region: rules list",
    ),
    pytest.param(
        ["rules", "apply", "{rules}"],
        {**CREDS},
        NO_REGION,
        id="no region: rules apply",
    ),
    pytest.param(
        ["dlq", "list"],
        {**CREDS},
        NO_REGION,
        id="no region: dlq list",
    ),
    pytest.param(
        ["rules", "list"],
        {**REGION},
        "no AWS credentials found (looked for AWS_ACCESS_KEY_ID",
        id="no credentials",
    ),
    pytest.param(
        ["rules", "list"],
        {**REGION, **CREDS, "AWS_ENDPOINT_URL": "http://127.0.0.1:{port}"},
        "the endpoint http://127.0.0.1:{port}/ did not answer; start the local stack with "
        "`sluice local up`",
        id="endpoint down",
    ),
    pytest.param(
        ["rules", "list"],
        {**REGION, **CREDS, "AWS_ENDPOINT_URL": "{moto}"},
        "the DynamoDB table sluice-dev-rules does not exist in us-east-1 (GetItem); create it with "
        "`sluice bootstrap`",
        id="rules table missing",
    ),
    pytest.param(
        ["invoke", "cloudwatch_logs", "--event", "{not_json}"],
        {**REGION, **CREDS},
        "{not_json} is not JSON (line 2, column 3",
        id="--event file not JSON",
    ),
    pytest.param(
        ["rules", "test", "{rules}", "--event", "{not_json}"],
        {},
        "{not_json} is not JSON (line 2, column 3",
        id="rules test --event file not JSON",
    ),
    pytest.param(
        ["invoke", "cloudwatch_logs", "--event", str(EVENTS / "kinesis_records.json")],
        {**REGION, **CREDS},
        f"{EVENTS / 'kinesis_records.json'} does not look like a CloudWatch Logs subscription "
        "event",
        id="Kinesis payload to invoke cloudwatch_logs",
    ),
]


@pytest.mark.parametrize(("args", "extra_env", "expected"), CASES)
def test_operator_error_is_one_actionable_line(
    args: list[str],
    extra_env: dict[str, str],
    expected: str,
    tmp_path: Path,
    moto_endpoint: str,
) -> None:
    """The command exits 1 with nothing on stdout and exactly one `Error: what; fix` line on
    stderr, naming the problem, and no traceback."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    not_json = tmp_path / "event.json"
    not_json.write_text('{\n  awslogs: "no quotes"\n}\n', encoding="utf-8")
    values = {
        "rules": str(rules),
        "not_json": str(not_json),
        "port": str(free_port()),
        "moto": moto_endpoint,
    }
    env = base_env(tmp_path)
    env.update({k: v.format(**values) for k, v in extra_env.items()})

    proc = sluice([a.format(**values) for a in args], env, tmp_path)

    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert ONE_LINE.fullmatch(proc.stderr), proc.stderr
    assert proc.stderr.startswith("Error: " + expected.format(**values)), proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """With --debug the same failure shows the original exception and its traceback."""
    env = {**base_env(tmp_path), **CREDS}

    proc = sluice(["--debug", "rules", "list"], env, tmp_path)

    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "NoRegionError" in proc.stderr


def test_usage_error_keeps_exit_code_2(tmp_path: Path) -> None:
    """A usage error (a missing setting the command names) stays exit 2 with click's message."""
    env = {k: v for k, v in base_env(tmp_path).items() if k != "SLUICE_RULES_TABLE"}

    proc = sluice(["rules", "list"], {**env, **REGION, **CREDS}, tmp_path)

    assert proc.returncode == 2
    assert "no rules table: pass --table or set SLUICE_RULES_TABLE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_force_sends_a_mismatched_payload_with_a_warning(tmp_path: Path) -> None:
    """--force runs the handler anyway after one warning line; the result (a dead letter) is
    the only thing on stdout."""
    from sluice_cli.local import LocalStack

    with LocalStack(poll_interval_s=3600) as stack:
        env = {**base_env(tmp_path), **stack.env}
        proc = sluice(
            [
                "invoke",
                "cloudwatch_logs",
                "--force",
                "--json",
                "--event",
                str(EVENTS / "kinesis_records.json"),
            ],
            env,
            tmp_path,
        )

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("Warning: ")
    assert "(sent anyway: --force)" in proc.stderr.splitlines()[0]
    import json

    result = json.loads(proc.stdout)
    assert result["received"] == 1 and result["dead_lettered"] == 1


def test_shell_completion_completes_commands(tmp_path: Path) -> None:
    """The completion the README documents answers with Sluice's commands."""
    env = {
        **base_env(tmp_path),
        "_SLUICE_COMPLETE": "bash_complete",
        "COMP_WORDS": "sluice ru",
        "COMP_CWORD": "1",
    }

    script = Path(sys.executable).parent / "sluice"  # what `make setup` installs
    proc = subprocess.run(
        [str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert proc.returncode == 0, proc.stderr
    assert "plain,rules" in proc.stdout.splitlines()
