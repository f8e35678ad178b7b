# ruff: noqa: F811  (the fixtures imported from test_s3_objects are parameters here)
"""AWS's own files in S3, typed as documented: CloudFront's numeric fields, VPC flow logs in
a custom (version 5) field set named by their header, CloudTrail digest files (no events)
and Insights files. Samples in tests/data/s3, written from each service's documentation."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import handlers
from chalicelib.sources import s3_formats
from chalicelib.sources.s3_formats import FORMATS, detect

from .test_s3_objects import account, notify, reports, rt  # noqa: F401  (fixtures)

DATA = Path(__file__).resolve().parents[1] / "data" / "s3"
DIGEST_KEY = (
    "ct/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/26/"
    "111122223333_CloudTrail-Digest_us-east-1_management-trail_us-east-1_20261126T100000Z.json.gz"
)
INSIGHT_KEY = (
    "ct/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/26/"
    "111122223333_CloudTrail-Insight_us-east-1_20261126T0945Z_k1HqQ7cJzR3nV5tX.json.gz"
)
VPC_KEY = "vpc/AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/26/x_fl-0a1b2c3d_x.log.gz"


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def records(fmt_name: str, rows: list[str]) -> list[dict[str, Any]]:
    fmt = FORMATS[fmt_name]()
    return [fmt.record(row) for row in rows if not fmt.header(row)]


# ---------------------------------------------------------------- CloudFront
NUMERIC_CLOUDFRONT = sorted(s3_formats.CloudFront.numeric)


@pytest.mark.parametrize("index", range(6))
def test_cloudfront_numeric_fields_are_numbers_or_absent(index):
    """Every documented count, size, status and duration is a number (or absent for `-`),
    `sc-content-len` and the range fields included, never text beside typed neighbours."""
    rec = records("cloudfront", lines("cloudfront.log"))[index]
    present = {k: rec[k] for k in NUMERIC_CLOUDFRONT if k in rec}
    assert present and all(type(v) in (int, float) for v in present.values()), present


def test_cloudfront_range_fields_typed():
    """A ranged response's `sc-range-start`/`sc-range-end` and its content length are ints."""
    fmt = FORMATS["cloudfront"]()
    rows = lines("cloudfront.log")
    for row in rows[:2]:
        fmt.header(row)
    values = rows[2].split("\t")
    names = fmt.fields
    values[names.index("sc-content-len")] = "1024"
    values[names.index("sc-range-start")] = "0"
    values[names.index("sc-range-end")] = "1023"
    rec = fmt.record("\t".join(values))
    assert (rec["sc-content-len"], rec["sc-range-start"], rec["sc-range-end"]) == (1024, 0, 1023)


# ---------------------------------------------------------------- VPC flow logs
def test_vpc_flow_custom_v5_header_is_detected_and_names_the_fields():
    """A custom format whose header does not start with `version` is still a flow log; its
    header decides field order, numbers are typed, `-` fields absent."""
    rows = lines("vpcflow_v5_custom.log")
    assert detect(rows[0], VPC_KEY) == "vpcflow"
    first, back, outpost, nodata = records("vpcflow", rows)
    assert all("parse_error" not in r for r in (first, back, outpost, nodata))
    assert {k: first[k] for k in ("srcport", "dstport", "bytes", "tcp-flags", "traffic-path")} == {
        "srcport": 43416,
        "dstport": 443,
        "bytes": 5060,
        "tcp-flags": 19,
        "traffic-path": 8,
    }
    assert (first["flow-direction"], first["pkt-dst-aws-service"], first["version"]) == (
        "egress",
        "S3",
        5,
    )
    assert "pkt-src-aws-service" not in first
    assert (outpost["sublocation-type"], outpost["pkt-srcaddr"]) == ("outpost", "203.0.113.7")
    assert nodata["log-status"] == "NODATA" and "srcaddr" not in nodata
    assert first["time"] == "2021-05-04T15:04:21.000Z"


@pytest.mark.parametrize(
    "line, is_flow",
    [
        pytest.param(
            "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr",
            True,
            id="NAT gateway example format",
        ),
        pytest.param("version vpc-id srcaddr dstaddr srcport dstport", True, id="version first"),
        pytest.param("start end action", True, id="three known fields"),
        pytest.param("start of the day", False, id="prose"),
        pytest.param("srcaddr dstaddr", False, id="too few to tell"),
    ],
)
def test_vpc_flow_header_detection(line, is_flow):
    """Only a line made wholly of flow log field names is taken for a flow log header."""
    assert (detect(line, "vpc/x.log") == "vpcflow") is is_flow


def test_vpc_flow_custom_file_through_the_handler(notify, rt, archive, reports, lambda_context):
    """The custom-format file (gzip) gives one event per record, timed by `start`."""
    body = gzip.compress((DATA / "vpcflow_v5_custom.log").read_bytes(), mtime=0)
    handlers.handle_s3_objects(notify((VPC_KEY, body)), lambda_context, rt)
    ledger, extra = reports.last
    assert extra["objects"][0]["format"] == "vpcflow"
    assert (ledger.received, ledger.archived) == (4, 4)
    times = sorted(x["time"] for x in archive.lines())
    assert times[0] == "2021-05-04T15:04:21.000Z"


# ---------------------------------------------------------------- CloudTrail
def test_cloudtrail_digest_file_is_recognised_and_makes_no_events(
    notify, rt, archive, reports, lambda_context
):
    """A digest file (hashes of the hour's log files) is reported as such and never
    archived or routed as if it were a log event."""
    body = gzip.compress((DATA / "cloudtrail_digest.json").read_bytes(), mtime=0)
    result = handlers.handle_s3_objects(notify((DIGEST_KEY, body)), lambda_context, rt)
    assert result == {"batchItemFailures": []}
    ledger, extra = reports.last
    assert extra["objects"][0]["format"] == "cloudtrail_digest"
    assert extra["objects"][0]["metadata_lines"] == 1  # read and counted, not an event
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (0, 0, 0)
    assert archive.lines() == []


def test_cloudtrail_insight_file_expands_its_insight_events(
    notify, rt, archive, reports, lambda_context
):
    """An Insights file is recognised; its Start and End Insights events are one event each,
    timed by eventTime, with their details."""
    body = gzip.compress((DATA / "cloudtrail_insight.json").read_bytes(), mtime=0)
    handlers.handle_s3_objects(notify((INSIGHT_KEY, body)), lambda_context, rt)
    ledger, extra = reports.last
    assert extra["objects"][0]["format"] == "cloudtrail_insight"
    assert (ledger.received, ledger.archived) == (2, 2)
    got = sorted(archive.lines(), key=lambda x: x["time"])
    assert [x["record"]["insightDetails"]["state"] for x in got] == ["Start", "End"]
    assert [x["time"] for x in got] == ["2026-11-26T09:44:00.000Z", "2026-11-26T09:45:00.000Z"]
    assert all(x["record"]["eventCategory"] == "Insight" for x in got)


@pytest.mark.parametrize(
    "sample, key, fmt",
    [
        pytest.param("cloudtrail_digest.json", DIGEST_KEY, "cloudtrail_digest", id="digest"),
        pytest.param("cloudtrail_insight.json", INSIGHT_KEY, "cloudtrail_insight", id="insight"),
        pytest.param(
            "cloudtrail_insight.json",
            "ct/AWSLogs/x.json.gz",
            "cloudtrail_insight",
            id="insight by content",
        ),
        pytest.param(
            "cloudtrail.json",
            "ct/AWSLogs/1/CloudTrail/us-east-1/x.json.gz",
            "jsonl",
            id="event file",
        ),
        pytest.param(
            "cloudtrail_digest.json", "exports/x.json", "jsonl", id="digest-like JSON elsewhere"
        ),
    ],
)
def test_cloudtrail_files_are_told_apart(sample, key, fmt):
    """Digest and Insights files are recognised by where CloudTrail writes them and what
    they hold; event files stay JSON documents expanded by `Records`."""
    assert detect(json.dumps(json.loads((DATA / sample).read_text())), key) == fmt
