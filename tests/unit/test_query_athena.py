"""`sluice query` through Athena (moto): start, wait, page, cost; the engine chosen by endpoint."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.athena.models import QueryResults, athena_backends

from sluice_cli.query import athena_cost, default_engine, run_athena

COLUMNS = ["level", "n"]


def _row(*values: str) -> dict[str, Any]:
    return {"Data": [{"VarCharValue": v} for v in values]}


def test_athena_query_is_started_in_the_stage_database_waited_for_and_read(aws: Any) -> None:
    """The query runs in database sluice_<stage> and workgroup sluice-<stage>; the header row
    is not returned as data; every row comes back."""
    athena = boto3.client("athena", region_name="us-east-1")
    athena.create_work_group(
        Name="sluice-dev", Configuration={"ResultConfiguration": {"OutputLocation": "s3://r/"}}
    )
    rows = [_row(*COLUMNS), _row("ERROR", "9"), _row("INFO", "7")]
    info = [{"Name": c, "Type": "varchar"} for c in COLUMNS]
    backend = athena_backends["123456789012"]["us-east-1"]
    backend.query_results_queue.append(QueryResults(rows=rows, column_info=info))
    waits: list[float] = []

    result = run_athena(
        athena, "SELECT 1 FROM archive", "sluice_dev", "sluice-dev", sleep=waits.append
    )

    assert (result.columns, result.rows) == (COLUMNS, [["ERROR", "9"], ["INFO", "7"]])
    [qid] = backend.executions
    ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert ex["QueryExecutionContext"]["Database"] == "sluice_dev"
    assert ex["WorkGroup"] == "sluice-dev" and result.detail == f"query {qid}"


@pytest.mark.parametrize(
    ("scanned", "usd"),
    [
        pytest.param(0, 10 * 1024 * 1024 / 1e12 * 5, id="10 MB minimum"),
        pytest.param(10**12, 5.0, id="one TB"),
        pytest.param(3 * 10**9, 0.015, id="3 GB"),
    ],
)
def test_cost_is_five_dollars_a_terabyte_with_a_10_mb_minimum(scanned: int, usd: float) -> None:
    """Athena's price: $5 per TB scanned, at least 10 MB per query."""
    assert athena_cost(scanned) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("endpoint", "engine"),
    [
        pytest.param("http://127.0.0.1:5000", "local", id="local stack"),
        pytest.param("http://localhost:4566", "local", id="localhost"),
        pytest.param("", "athena", id="AWS"),
        pytest.param("https://vpce-1.s3.eu-west-1.vpce.amazonaws.com", "athena", id="VPC endpoint"),
    ],
)
def test_engine_defaults_to_local_when_the_endpoint_is_this_machine(
    endpoint: str, engine: str
) -> None:
    """AWS_ENDPOINT_URL on loopback means the local stack: DuckDB; anything else: Athena."""
    assert default_engine({"AWS_ENDPOINT_URL": endpoint}) == engine
