"""`sluice search` and `sluice query` over an archive written by the pipeline on the local stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.sources.cloudwatch import tag_for_log_group
from sluice_cli import archive_read
from sluice_cli.local import LocalStack
from sluice_cli.payloads import subscription_event
from sluice_cli.poller import LambdaContext
from sluice_cli.query import query
from sluice_cli.search import Search, run, search

pytestmark = pytest.mark.functional

H = 3_600_000
T0 = 1_795_690_800_000  # 2026-11-26T11:00:00Z
GONE = "/aws/lambda/nightly-export-7f3a"  # a function deleted since
WEB = "/aws/lambda/web"


def _lines(n: int, level: str, base: int, step: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{base + i * step:d}{i:04d}{level}",
            "timestamp": base + i * step,
            "message": json.dumps({"level": level, "message": f"{level.lower()} line {i}", "n": i}),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def archive() -> Iterator[tuple[LocalStack, list[archive_read.Partition]]]:
    """Three hours of two functions' logs, written through the `cloudwatch_logs` handler."""
    with LocalStack(poll_interval_s=0.05) as stack:
        batches = [
            (GONE, _lines(5, "INFO", T0, 60_000)),  # hour 11
            (GONE, _lines(3, "ERROR", T0 + H + 1000, 60_000)),  # hour 12
            (GONE, _lines(4, "INFO", T0 + 2 * H, 60_000)),  # hour 13
            (WEB, _lines(6, "ERROR", T0 + H, 1000)),  # hour 12
        ]
        for group, events in batches:
            stack.invoke_cloudwatch_logs(subscription_event(group, "s1", events), LambdaContext())
        s3 = stack.clients.get("s3")
        parts = archive_read.partitions(s3, stack.names.archive_bucket, "**", None, None)
        yield stack, parts


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param(Search(tag_for_log_group(GONE), limit=0), 12, id="one tag, all hours"),
        pytest.param(Search("**", limit=0), 18, id="every tag"),
        pytest.param(Search("**", where=({"field": "level", "equals": "ERROR"},), limit=0), 9,
                     id="field condition"),
        pytest.param(Search("**", since_ms=T0 + H, until_ms=T0 + 2 * H, limit=0), 9,
                     id="one hour"),
        pytest.param(Search("**", grep=r"line [0-2]$", limit=0), 12, id="RE2 text"),
        pytest.param(Search("**", limit=4), 4, id="limit"),
        pytest.param(Search("nothing.*", limit=0), 0, id="no tag matches"),
        pytest.param(Search(origin=({"field": "account", "in": ["123456789012"]},), limit=0), 18,
                     id="source account"),
        pytest.param(Search(origin=({"field": "region", "regex": "^eu-.*$"},), limit=0), 0,
                     id="another region"),
    ],
)  # fmt: skip
def test_search_finds_exactly_the_matching_events(
    archive: tuple[LocalStack, list[archive_read.Partition]], q: Search, expected: int
) -> None:
    """Each filter keeps exactly the archived events it describes, newest first."""
    stack, _ = archive
    found = list(run(stack.clients.get("s3"), stack.names.archive_bucket, q))
    assert len(found) == expected
    times = [e["time"] for e in found]
    assert times == sorted(times, reverse=True)


def test_oldest_first_is_a_time_ordered_stream(
    archive: tuple[LocalStack, list[archive_read.Partition]],
) -> None:
    """--oldest-first yields the earliest events first, across tags and hours."""
    stack, _ = archive
    found = list(
        run(
            stack.clients.get("s3"), stack.names.archive_bucket, Search(limit=7, newest_first=False)
        )
    )
    times = [e["time"] for e in found]
    assert times == sorted(times) and len(times) == 7
    assert times[0].startswith("2026-11-26T11:00:00")


def test_only_selected_partitions_are_read(
    archive: tuple[LocalStack, list[archive_read.Partition]],
) -> None:
    """A tag and a one-hour range list and read only that tag's partition of that hour."""
    stack, parts = archive
    assert len(parts) == 4
    s3 = stack.clients.get("s3")
    read: list[str] = []
    real = s3.get_object

    def spy(**kw: Any) -> Any:
        read.append(kw["Key"])
        return real(**kw)

    s3.get_object = spy
    try:
        q = Search(tag_for_log_group(GONE), T0 + H, T0 + 2 * H, limit=0)
        assert len(list(run(s3, stack.names.archive_bucket, q))) == 3
    finally:
        del s3.get_object
    assert read and all("/hour=12/" in k and tag_for_log_group(GONE) in k for k in read)


def test_search_command_finds_a_vanished_functions_errors_as_json(
    archive: tuple[LocalStack, list[archive_read.Partition]],
) -> None:
    """One command, by tag and time, prints that function's ERROR events as JSON lines."""
    stack, _ = archive
    env = {**stack.env}
    res = CliRunner().invoke(
        search,
        ["--tag", "**.nightly-export-*", "--from", "2026-11-26T11:00:00Z", "--to",
         "2026-11-26T14:00:00Z", "--where", "level=ERROR", "--json"],
        env=env,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["record"]["message"] for r in rows] == [
        "error line 2",
        "error line 1",
        "error line 0",
    ]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT json_extract_scalar(record, '$.level') AS level, count(*) AS n FROM archive "
            "GROUP BY 1 ORDER BY 1", [{"level": "ERROR", "n": 9}, {"level": "INFO", "n": 9}],
            id="group by a record field"),
        pytest.param(
            "SELECT hour, count(*) AS n FROM sluice_dev.archive WHERE tag = '"
            + tag_for_log_group(GONE) + "' AND dt = '2026-11-26' GROUP BY hour ORDER BY hour",
            [{"hour": "11", "n": 5}, {"hour": "12", "n": 3}, {"hour": "13", "n": 4}],
            id="partition columns, the Glue database name"),
        pytest.param("SELECT count(*) AS n FROM archive WHERE event_time >= '2026-11-26T13'",
                     [{"n": 4}], id="event_time"),
        pytest.param("SELECT account, region, count(*) AS n FROM archive GROUP BY 1, 2",
                     [{"account": "123456789012", "region": "us-east-1", "n": 18}],
                     id="account and region columns"),
    ],
)  # fmt: skip
def test_query_runs_the_same_sql_locally_through_duckdb(
    archive: tuple[LocalStack, list[archive_read.Partition]],
    sql: str,
    expected: list[dict[str, Any]],
) -> None:
    """Athena's SQL over table `archive` runs on the local stack with the same answers."""
    stack, _ = archive
    res = CliRunner().invoke(query, [sql, "--json"], env={**stack.env})
    assert res.exit_code == 0, res.output
    assert [json.loads(line) for line in res.stdout.splitlines()] == expected
    assert "local: " in res.stderr and "bytes scanned" in res.stderr
