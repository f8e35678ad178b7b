"""The README's CLI example, run as written: the logs of a function that no longer exists,
found by tag and time in one command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from sluice_cli import simulate
from sluice_cli.local import LocalStack

pytestmark = pytest.mark.functional

GROUP = "/aws/lambda/nightly-export-7f3a"


def minute(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%MZ")


def test_search_finds_a_deleted_functions_errors_by_tag_and_time(stack: LocalStack) -> None:
    """After the function's log group is deleted, `sluice search --tag … --from … --to …
    --where level=ERROR` still prints its error lines from the archive, and only those."""
    assert stack.poller is not None
    lines = [
        json.dumps({"level": "INFO", "message": "export of 3 tables started"}),
        json.dumps({"level": "ERROR", "message": "export of 3 tables failed: S3 AccessDenied"}),
        json.dumps({"level": "ERROR", "message": "retry 3/3 for s3://exports/orders.csv"}),
    ]
    logs = stack.clients.get("logs")
    written = simulate.write_to_cloudwatch(logs, GROUP, "2026/12/01/[$LATEST]0f3a", lines)
    simulate.write_to_cloudwatch(logs, "/aws/lambda/nightly-import", "s", lines)
    stack.poller.wait_received(written * 2, timeout=30)
    logs.delete_log_group(logGroupName=GROUP)  # the function and its logs are gone
    now = datetime.now(UTC)
    code = "from sluice_cli.main import main; main()"
    args = [
        "search",
        "--tag",
        "aws.lambda.nightly-export-*",
        "--from",
        minute(now - timedelta(hours=1)),
        "--to",
        minute(now + timedelta(hours=1)),
        "--where",
        "level=ERROR",
    ]
    env = {"PATH": "/usr/bin:/bin", **stack.env, "NO_COLOR": "1", "COLUMNS": "160"}

    table = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )
    as_json = subprocess.run(
        [sys.executable, "-c", code, *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert table.returncode == 0, table.stderr
    assert "export of 3 tables failed: S3 AccessDenied" in table.stdout
    assert "retry 3/3" in table.stdout and "started" not in table.stdout
    found = [json.loads(x) for x in as_json.stdout.splitlines()]
    assert {d["tag"] for d in found} == {"aws.lambda.nightly-export-7f3a"}
    assert sorted(d["record"]["message"] for d in found) == sorted(
        json.loads(x)["message"] for x in lines[1:]
    )
