"""`sluice query "SQL"`: SQL over the archive, through Athena on a deployed stage and
DuckDB on the local stack, against one table name: `archive` (the Glue table the
template creates, in database `sluice_<stage>`).

Both engines see the same columns: event_time, record and source (JSON text, read with
`json_extract_scalar(record, '$.level')`), id, account and region (where the event came
from), and the partition columns tag, dt, hour (text). DuckDB is given a
`json_extract_scalar` macro so Athena's spelling works in both.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import orjson

from sluice_cli.archive_read import WORKERS, bounded_map, object_keys, partitions
from sluice_cli.search import parse_time

USD_PER_TB = 5.0  # Athena's price per TB (10**12 bytes) scanned
ATHENA_MIN_BYTES = 10 * 1024 * 1024  # Athena bills at least 10 MB per query
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class Result:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    scanned_bytes: int = 0
    detail: str = ""  # engine-specific: the execution id, the objects read


def athena_cost(scanned: int) -> float:
    """US dollars Athena bills for a query that scanned `scanned` bytes."""
    return max(scanned, ATHENA_MIN_BYTES) / 1e12 * USD_PER_TB


def default_engine(env: dict[str, str] | None = None) -> str:
    """`local` when the SDK's endpoint is on this machine (the local stack), else `athena`."""
    e = os.environ if env is None else env
    host = urlparse(e.get("AWS_ENDPOINT_URL", "")).hostname or ""
    return "local" if host in _LOCAL_HOSTS else "athena"


# ---------------------------------------------------------------- Athena
def run_athena(
    athena: Any,
    sql: str,
    database: str,
    workgroup: str,
    *,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Start the query, wait for it, page its results."""
    qid = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": database}, WorkGroup=workgroup
    )["QueryExecutionId"]
    try:
        while True:
            ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            state = ex["Status"]["State"]
            if state in _DONE:
                break
            sleep(poll_s)
    except KeyboardInterrupt:
        athena.stop_query_execution(QueryExecutionId=qid)  # stop paying for it
        raise
    if state != "SUCCEEDED":
        reason = ex["Status"].get("StateChangeReason", "no reason given")
        raise click.ClickException(f"Athena query {qid} {state.lower()}: {reason}")
    scanned = int(ex.get("Statistics", {}).get("DataScannedInBytes", 0))
    result = Result([], scanned_bytes=scanned, detail=f"query {qid}")
    first = True
    for page in _pages(athena, qid):
        rs = page["ResultSet"]
        if first:
            result.columns = [
                c["Name"] for c in rs.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            ]
        rows = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in rs.get("Rows", [])]
        if first and rows and rows[0] == result.columns:
            rows = rows[1:]  # a SELECT's first row repeats the column names
        first = False
        result.rows.extend(rows)
    return result


def _pages(athena: Any, qid: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        kw: dict[str, Any] = {"QueryExecutionId": qid, "MaxResults": 1000}
        if token:
            kw["NextToken"] = token
        page = athena.get_query_results(**kw)
        yield page
        token = page.get("NextToken")
        if not token:
            return


# ---------------------------------------------------------------- DuckDB
_COLUMNS = (
    "{'time': 'VARCHAR', 'record': 'JSON', 'source': 'JSON', 'id': 'VARCHAR', "
    "'account': 'VARCHAR', 'region': 'VARCHAR'}"
)
_HIVE = "{'tag': 'VARCHAR', 'dt': 'VARCHAR', 'hour': 'VARCHAR'}"
_SELECT = (
    "SELECT time AS event_time, CAST(record AS VARCHAR) AS record, "
    "CAST(source AS VARCHAR) AS source, id, account, region, tag, dt, hour FROM "
)
_EMPTY = (
    "SELECT NULL::VARCHAR AS event_time, NULL::VARCHAR AS record, NULL::VARCHAR AS source, "
    "NULL::VARCHAR AS id, NULL::VARCHAR AS account, NULL::VARCHAR AS region, "
    "NULL::VARCHAR AS tag, NULL::VARCHAR AS dt, NULL::VARCHAR AS hour "
    "WHERE false"
)


def download(
    s3: Any,
    bucket: str,
    into: Path,
    tag: str = "**",
    since_ms: int | None = None,
    until_ms: int | None = None,
    workers: int = WORKERS,
) -> tuple[int, int]:
    """Copy the selected partitions' objects under `into`, keeping the `tag=/dt=/hour=`
    layout; (objects, bytes)."""
    parts = partitions(s3, bucket, tag, since_ms, until_ms)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="query") as pool:
        keys = [k for ks in pool.map(lambda p: object_keys(s3, bucket, p), parts) for k in ks]

        def fetch(key: str) -> int:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            path = into / key.split("/", 1)[1]  # drop "archive/"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            return len(body)

        sizes = list(bounded_map(pool, fetch, keys, workers * 2))
    return len(sizes), sum(sizes)


def run_duckdb(root: Path, sql: str, database: str) -> Result:
    """`sql` over the archive files under `root`, as table `archive` (and `<database>.archive`)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)")
        files = next(root.rglob("*.jsonl.gz"), None)
        if files is None:
            body = _EMPTY
        else:
            glob = str(root / "**" / "*.jsonl.gz").replace("'", "''")
            # The path is this process's own temporary directory, quoted; nothing else varies.
            reader = (
                f"read_json('{glob}', format = 'newline_delimited', compression = 'gzip', "
                f"hive_partitioning = true, hive_types = {_HIVE}, columns = {_COLUMNS})"
            )
            body = _SELECT + reader
        con.execute(f"CREATE VIEW archive AS {body}")
        if not database.replace("_", "").replace("-", "").isalnum():
            raise click.BadParameter(f"{database!r}: letters, digits, - and _ only")
        con.execute(f'CREATE SCHEMA "{database}"')
        con.execute(f'CREATE VIEW "{database}".archive AS SELECT * FROM main.archive')  # noqa: S608
        try:
            cur = con.execute(sql)
        except duckdb.Error as e:
            raise click.ClickException(f"query failed: {e}") from e
        columns = [d[0] for d in cur.description or []]
        rows = [list(r) for r in cur.fetchall()]
    finally:
        con.close()
    return Result(columns, rows)


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


@click.command("query")
@click.argument("sql")
@click.option(
    "--engine",
    type=click.Choice(["local", "athena"]),
    help="default: local when AWS_ENDPOINT_URL is on this machine (the local stack), else athena",
)
@click.option(
    "--stage",
    default=lambda: os.environ.get("SLUICE_STAGE", "dev"),
    show_default="$SLUICE_STAGE or dev",
    help="database sluice_<stage>, workgroup sluice-<stage>",
)
@click.option("--tag", default="**", show_default=True, help="local: partitions to load")
@click.option("--since", help="local: load partitions newer than this age or ISO time")
@click.option("--bucket", help="local: archive bucket (default: $SLUICE_ARCHIVE_BUCKET)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per row")
def query(
    sql: str,
    engine: str | None,
    stage: str,
    tag: str,
    since: str | None,
    bucket: str | None,
    as_json: bool,
) -> None:
    """Run SQL over the archive's table `archive`.

    Columns: event_time, record, source (JSON text), id, account, region, tag, dt, hour
    (text).

    \b
    sluice query "SELECT json_extract_scalar(record, '$.level') AS level, count(*) AS n
                  FROM archive WHERE tag = 'aws.lambda.billing' AND dt >= '2026-11-26'
                  GROUP BY 1 ORDER BY n DESC"
    """
    import boto3

    engine = engine or default_engine()
    database = f"sluice_{stage}"
    t0 = time.perf_counter()
    if engine == "athena":
        result = run_athena(boto3.client("athena"), sql, database, f"sluice-{stage}")
        cost = f" (${athena_cost(result.scanned_bytes):.6f} at ${USD_PER_TB:.0f}/TB)"
    else:
        name = bucket or os.environ.get("SLUICE_ARCHIVE_BUCKET")
        if not name:
            raise click.UsageError("no archive bucket: pass --bucket or set SLUICE_ARCHIVE_BUCKET")
        with tempfile.TemporaryDirectory(prefix="sluice-query-") as tmp:
            n, size = download(
                boto3.client("s3"), name, Path(tmp), tag, parse_time(since, "--since")
            )
            result = run_duckdb(Path(tmp), sql, database)
        result.scanned_bytes, result.detail = size, f"{n} object(s) read"
        cost = ""
    took = time.perf_counter() - t0
    if as_json:
        for row in result.rows:
            click.echo(orjson.dumps(dict(zip(result.columns, row, strict=False)), default=str))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, show_edge=False)
        for c in result.columns:
            table.add_column(c, overflow="fold")
        for row in result.rows:
            table.add_row(*map(_cell, row))
        Console(soft_wrap=False).print(table)
    click.echo(
        f"{engine}: {len(result.rows)} row(s), {result.scanned_bytes:,} bytes scanned{cost}, "
        f"{result.detail}, {took:.2f}s",
        err=True,
    )
