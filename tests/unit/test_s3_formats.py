"""chalicelib.sources.s3_formats: format detection and fields, from the AWS documentation's samples.

The samples in tests/data/s3/ are the documented example entries: ALB and Classic ELB
("Access log entries", Elastic Load Balancing), VPC flow logs ("Flow log record
examples", default format), CloudFront ("Standard logging reference", the example
log file), CloudTrail ("CloudTrail log file examples").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.parsers import parse_message
from chalicelib.sources import s3_formats
from chalicelib.sources.s3_formats import FORMATS, detect, split_quoted

DATA = Path(__file__).resolve().parents[1] / "data" / "s3"


def sample(name: str) -> list[str]:
    """The lines of a sample file (no trailing empty line)."""
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def records(fmt_name: str, lines: list[str]) -> list[dict[str, Any]]:
    """Lines through one fresh format instance, header lines consumed as the reader does."""
    fmt = FORMATS[fmt_name]()
    return [fmt.record(line) for line in lines if not fmt.header(line)]


def without_message(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "message"}


# ---------------------------------------------------------------- detection
@pytest.mark.parametrize(
    ("first_line", "key", "fmt"),
    [
        *[
            pytest.param(line, "AWSLogs/x.log.gz", "alb", id=f"ALB {line.split()[0]}")
            for line in sample("alb.log")[:5]
        ],
        pytest.param(sample("elb.log")[0], "AWSLogs/x.log", "elb", id="Classic ELB HTTP"),
        pytest.param(sample("elb.log")[2], "AWSLogs/x.log", "elb", id="Classic ELB TCP"),
        pytest.param(sample("vpcflow.log")[0], "AWSLogs/x.log.gz", "vpcflow", id="VPC header"),
        pytest.param("#Version: 1.0", "cf/E1.2019-12-04-21.a1b2.gz", "cloudfront", id="#Version"),
        pytest.param(sample("cloudfront.log")[1], "cf/x.gz", "cloudfront", id="#Fields first"),
        pytest.param(sample("cloudtrail.json")[0], "AWSLogs/x.json.gz", "jsonl", id="CloudTrail"),
        pytest.param(sample("app.jsonl")[0], "app/x.log", "jsonl", id="JSON lines"),
        pytest.param("\ufeff" + sample("app.jsonl")[0], "app/x.log", "jsonl", id="JSON with BOM"),
        pytest.param(sample("app.log")[0], "app/x.log", "text", id="syslog-style text"),
        pytest.param(sample("orders.csv")[0], "exports/orders.csv", "csv", id="CSV by key"),
        pytest.param(sample("orders.csv")[0], "exports/orders.CSV.gz", "csv", id="CSV .gz"),
        pytest.param(sample("orders.tsv")[0], "exports/orders.tsv.zst", "tsv", id="TSV .zst"),
        pytest.param(sample("orders.csv")[0], "exports/orders.txt", "text", id="CSV not by key"),
        pytest.param(
            "2026-11-26T10:07:01.000Z INFO worker: started", "app/x.log", "text", id="ISO text"
        ),
        pytest.param(
            "2026-11-26T10:07:01.000Z web-1 app: GET /cart 200", "app/x.log", "text", id="ISO app"
        ),
        pytest.param("", "app/x.log", "text", id="empty first line"),
    ],
)
def test_format_is_detected_from_the_first_line(first_line, key, fmt):
    """Each documented log type is recognised from its first line; CSV/TSV by their key;
    a text line that merely starts with a timestamp is text, not an ELB entry."""
    assert detect(first_line, key) == fmt


def test_every_documented_alb_and_elb_entry_is_detected():
    """Every line of the ALB and Classic ELB samples would be detected as its type."""
    assert {detect(line, "k") for line in sample("alb.log")} == {"alb"}
    assert {detect(line, "k") for line in sample("elb.log")} == {"elb"}


# ---------------------------------------------------------------- ALB
ALB_HTTP = {
    "type": "http",
    "time": "2018-07-02T22:23:00.186641Z",
    "elb": "app/my-loadbalancer/50dc6c495c0c9188",
    "client": "192.168.131.39:2817",
    "target": "10.0.0.1:80",
    "request_processing_time": 0.0,
    "target_processing_time": 0.001,
    "response_processing_time": 0.0,
    "elb_status_code": 200,
    "target_status_code": 200,
    "received_bytes": 34,
    "sent_bytes": 366,
    "request": "GET http://www.example.com:80/ HTTP/1.1",
    "method": "GET",
    "url": "http://www.example.com:80/",
    "protocol": "HTTP/1.1",
    "user_agent": "curl/7.46.0",
    "target_group_arn": (
        "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067"
    ),
    "trace_id": "Root=1-58337262-36d228ad5d99923122bbe354",
    "matched_rule_priority": 0,
    "request_creation_time": "2018-07-02T22:22:48.364000Z",
    "actions_executed": "forward",
    "target_port_list": "10.0.0.1:80",
    "target_status_code_list": "200",
    "conn_trace_id": "TID_1234abcd5678ef90",
}


def test_alb_http_entry_gives_every_documented_field():
    """The documented HTTP entry: typed numbers, request split, `-` fields absent, no error."""
    (rec, *_) = records("alb", sample("alb.log"))
    assert without_message(rec) == ALB_HTTP
    assert rec["message"] == sample("alb.log")[0]


def test_alb_https_entry_keeps_tls_and_certificate_fields():
    """The HTTPS entry carries cipher, protocol, domain, certificate and both actions."""
    rec = records("alb", sample("alb.log"))[1]
    assert {
        k: rec[k] for k in ("ssl_cipher", "ssl_protocol", "domain_name", "chosen_cert_arn")
    } == {
        "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "ssl_protocol": "TLSv1.2",
        "domain_name": "www.example.com",
        "chosen_cert_arn": (
            "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
        ),
    }
    assert (rec["actions_executed"], rec["matched_rule_priority"]) == ("authenticate,forward", 1)
    assert (rec["request_processing_time"], rec["target_processing_time"]) == (0.086, 0.048)


@pytest.mark.parametrize(
    ("index", "fields"),
    [
        pytest.param(
            2,
            {
                "type": "h2",
                "protocol": "HTTP/2.0",
                "actions_executed": "redirect",
                "redirect_url": "https://example.com:80/",
            },
            id="HTTP/2 redirect",
        ),
        pytest.param(
            3, {"type": "ws", "elb_status_code": 101, "user_agent": "-" and None}, id="WebSockets"
        ),
        pytest.param(
            4,
            {"type": "wss", "sent_bytes": 786, "target": "10.0.0.171:8010"},
            id="secured WebSockets",
        ),
        pytest.param(
            5, {"type": "http", "target": None, "target_port_list": None}, id="Lambda target"
        ),
        pytest.param(
            6,
            {
                "elb_status_code": 502,
                "target_status_code": None,
                "error_reason": "LambdaInvalidResponse",
            },
            id="Lambda failed",
        ),
    ],
)
def test_alb_documented_entries(index, fields):
    """Each documented ALB entry parses without error; `-` values are absent (None here)."""
    rec = records("alb", sample("alb.log"))[index]
    assert "parse_error" not in rec
    assert {k: rec.get(k) for k in fields} == fields


def test_alb_entry_with_fields_newer_than_sluice_is_kept():
    """Fields ALB may append after the known ones do not make the entry an error."""
    (rec,) = records("alb", [sample("alb.log")[0] + ' "new-field" 42'])
    assert "parse_error" not in rec
    assert rec["conn_trace_id"] == "TID_1234abcd5678ef90"


def test_alb_entry_missing_most_fields_is_flagged():
    """An entry cut short keeps its text and says how many fields it had."""
    (rec,) = records("alb", ["http 2018-07-02T22:23:00.186641Z app/my-lb/50dc 1.2.3.4:1"])
    assert rec["parse_error"] == "alb: expected 30 fields, found 4"
    assert rec["message"].startswith("http 2018-07-02T22:23:00")


# ---------------------------------------------------------------- Classic ELB
ELB = [
    {
        "time": "2015-05-13T23:39:43.945958Z",
        "elb": "my-loadbalancer",
        "client": "192.168.131.39:2817",
        "backend": "10.0.0.1:80",
        "request_processing_time": 0.000073,
        "backend_processing_time": 0.001048,
        "response_processing_time": 0.000057,
        "elb_status_code": 200,
        "backend_status_code": 200,
        "received_bytes": 0,
        "sent_bytes": 29,
        "request": "GET http://www.example.com:80/ HTTP/1.1",
        "method": "GET",
        "url": "http://www.example.com:80/",
        "protocol": "HTTP/1.1",
        "user_agent": "curl/7.38.0",
    },
    {
        "time": "2015-05-13T23:39:43.945958Z",
        "elb": "my-loadbalancer",
        "client": "192.168.131.39:2817",
        "backend": "10.0.0.1:80",
        "request_processing_time": 0.000086,
        "backend_processing_time": 0.001048,
        "response_processing_time": 0.001337,
        "elb_status_code": 200,
        "backend_status_code": 200,
        "received_bytes": 0,
        "sent_bytes": 57,
        "request": "GET https://www.example.com:443/ HTTP/1.1",
        "method": "GET",
        "url": "https://www.example.com:443/",
        "protocol": "HTTP/1.1",
        "user_agent": "curl/7.38.0",
        "ssl_cipher": "DHE-RSA-AES128-SHA",
        "ssl_protocol": "TLSv1.2",
    },
    {
        "time": "2015-05-13T23:39:43.945958Z",
        "elb": "my-loadbalancer",
        "client": "192.168.131.39:2817",
        "backend": "10.0.0.1:80",
        "request_processing_time": 0.001069,
        "backend_processing_time": 0.000028,
        "response_processing_time": 0.000041,
        "received_bytes": 82,
        "sent_bytes": 305,
        "request": "- - - ",
    },
    {
        "time": "2015-05-13T23:39:43.945958Z",
        "elb": "my-loadbalancer",
        "client": "192.168.131.39:2817",
        "backend": "10.0.0.1:80",
        "request_processing_time": 0.001065,
        "backend_processing_time": 0.000015,
        "response_processing_time": 0.000023,
        "received_bytes": 57,
        "sent_bytes": 502,
        "request": "- - - ",
        "ssl_cipher": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ssl_protocol": "TLSv1.2",
    },
]


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="HTTP"),
        pytest.param(1, id="HTTPS"),
        pytest.param(2, id="TCP"),
        pytest.param(3, id="SSL"),
    ],
)
def test_classic_elb_documented_entries(index):
    """Each documented Classic ELB entry gives exactly its fields; TCP/SSL listeners'
    `"- - - "` request yields no method, URL or protocol."""
    rec = records("elb", sample("elb.log"))[index]
    assert without_message(rec) == ELB[index]


# ---------------------------------------------------------------- VPC flow logs
VPC_ACCEPT = {
    "version": 2,
    "account-id": "123456789010",
    "interface-id": "eni-1235b8ca123456789",
    "srcaddr": "172.31.16.139",
    "dstaddr": "172.31.16.21",
    "srcport": 20641,
    "dstport": 22,
    "protocol": 6,
    "packets": 20,
    "bytes": 4249,
    "start": 1418530010,
    "end": 1418530070,
    "action": "ACCEPT",
    "log-status": "OK",
    "time": "2014-12-14T04:06:50.000Z",
}


def test_vpc_flow_header_names_the_fields():
    """The header line is consumed, not an event; the SSH ACCEPT record gets every field."""
    recs = records("vpcflow", sample("vpcflow.log"))
    assert len(recs) == len(sample("vpcflow.log")) - 1
    assert without_message(recs[0]) == VPC_ACCEPT


@pytest.mark.parametrize(
    ("index", "fields"),
    [
        pytest.param(1, {"action": "REJECT", "dstport": 3389, "log-status": "OK"}, id="REJECT"),
        pytest.param(
            2,
            {
                "log-status": "NODATA",
                "srcaddr": None,
                "action": None,
                "packets": None,
                "start": 1431280876,
                "end": 1431280934,
                "time": "2015-05-10T18:01:16.000Z",
            },
            id="NODATA",
        ),
        pytest.param(
            3,
            {"log-status": "SKIPDATA", "interface-id": "eni-11111111aaaaaaaaa", "bytes": None},
            id="SKIPDATA",
        ),
        pytest.param(4, {"protocol": 1, "srcport": 0, "action": "ACCEPT"}, id="ICMP"),
        pytest.param(
            6,
            {"srcaddr": "2001:db8:1234:a100:8d6e:3477:df66:f105", "dstport": 22, "bytes": 8855},
            id="IPv6",
        ),
    ],
)
def test_vpc_flow_documented_records(index, fields):
    """Documented records: `-` values absent, counters and ports numeric, time from `start`."""
    rec = records("vpcflow", sample("vpcflow.log"))[index]
    assert "parse_error" not in rec
    assert {k: rec.get(k) for k in fields} == fields


def test_vpc_flow_custom_format_follows_its_header():
    """A custom-format file's header decides the field order."""
    lines = [
        "version vpc-id srcaddr dstaddr srcport dstport protocol start end action tcp-flags",
        "5 vpc-abcdefab012345678 10.0.0.62 52.213.180.42 5001 43416 6 1566848875 1566848933"
        " ACCEPT 19",
    ]
    (rec,) = records("vpcflow", lines)
    assert without_message(rec) == {
        "version": 5,
        "vpc-id": "vpc-abcdefab012345678",
        "srcaddr": "10.0.0.62",
        "dstaddr": "52.213.180.42",
        "srcport": 5001,
        "dstport": 43416,
        "protocol": 6,
        "start": 1566848875,
        "end": 1566848933,
        "action": "ACCEPT",
        "tcp-flags": 19,
        "time": "2019-08-26T19:47:55.000Z",
    }


def test_vpc_flow_without_header_uses_the_default_format():
    """Records read without their header (a format chosen per prefix) use the default fields."""
    (rec,) = records("vpcflow", sample("vpcflow.log")[1:2])
    assert without_message(rec) == VPC_ACCEPT


@pytest.mark.parametrize(
    "start",
    [
        pytest.param("99999999999999999999", id="beyond year 9999"),
        pytest.param("-99999999999999", id="before year 1"),
    ],
)
def test_vpc_flow_start_out_of_range_is_not_a_time(start):
    """A `start` no clock can hold leaves the record without a time instead of raising."""
    line = f"2 123456789010 eni-1235b8ca123456789 - - - - - - - {start} 1431280934 - NODATA"
    (rec,) = records("vpcflow", [sample("vpcflow.log")[0], line])
    assert "time" not in rec
    assert rec["log-status"] == "NODATA"


# ---------------------------------------------------------------- CloudFront
CLOUDFRONT_FIRST = {
    "time": "2019-12-04T21:02:31.000Z",
    "x-edge-location": "LAX1",
    "sc-bytes": 392,
    "c-ip": "192.0.2.100",
    "cs-method": "GET",
    "cs(Host)": "d111111abcdef8.cloudfront.net",
    "cs-uri-stem": "/index.html",
    "sc-status": 200,
    "cs(User-Agent)": (
        "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36"
        "%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36"
    ),
    "x-edge-result-type": "Hit",
    "x-edge-request-id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
    "x-host-header": "d111111abcdef8.cloudfront.net",
    "cs-protocol": "https",
    "cs-bytes": 23,
    "time-taken": 0.001,
    "ssl-protocol": "TLSv1.2",
    "ssl-cipher": "ECDHE-RSA-AES128-GCM-SHA256",
    "x-edge-response-result-type": "Hit",
    "cs-protocol-version": "HTTP/2.0",
    "c-port": 11040,
    "time-to-first-byte": 0.001,
    "x-edge-detailed-result-type": "Hit",
    "sc-content-type": "text/html",
    "sc-content-len": 78,
}


def test_cloudfront_example_file():
    """`#Version`/`#Fields` are consumed; six entries, the first with every documented field
    and date + time joined into one UTC time."""
    recs = records("cloudfront", sample("cloudfront.log"))
    assert len(recs) == 6
    assert without_message(recs[0]) == CLOUDFRONT_FIRST
    assert all("parse_error" not in r for r in recs)


def test_cloudfront_error_entry():
    """The documented origin DNS error keeps its status, referer and detailed result type."""
    rec = records("cloudfront", sample("cloudfront.log"))[3]
    assert (rec["sc-status"], rec["cs(Referer)"], rec["x-edge-detailed-result-type"]) == (
        502,
        "http://www.example.com/",
        "OriginDnsError",
    )
    assert rec["time"] == "2019-12-13T22:36:27.000Z"
    assert "date" not in rec


# ---------------------------------------------------------------- JSON lines, CloudTrail, text
@pytest.mark.parametrize("index", range(5))
def test_json_lines_record_is_what_cloudwatch_makes_of_the_same_message(index):
    """A line read from S3 gives the same record as the same message from CloudWatch Logs:
    aliases normalised, the time field kept as written."""
    line = sample("app.jsonl")[index]
    (rec,) = records("jsonl", [line])
    assert rec == parse_message(line)[0]


def test_json_line_keeps_its_epoch_time_field_as_written():
    """An epoch-ms `timestamp` stays a number; no `time` field is added to the record."""
    (rec,) = records("jsonl", [sample("app.jsonl")[1]])
    assert rec["timestamp"] == 1795687621250
    assert "time" not in rec


def test_cloudtrail_document_is_one_json_record_holding_records():
    """The CloudTrail file is one JSON line whose `Records` list the reader expands."""
    (rec,) = records("jsonl", sample("cloudtrail.json"))
    assert [r["eventName"] for r in rec["Records"]] == [
        "StartInstances",
        "StopInstances",
        "StartLogging",
    ]


def test_text_lines_are_messages():
    """Plain text becomes `{"message": line}`."""
    assert records("text", sample("app.log")[:1]) == [{"message": sample("app.log")[0]}]


# ---------------------------------------------------------------- CSV / TSV
def test_csv_header_names_the_columns_and_quotes_are_honoured():
    """The header line names the fields; a quoted comma stays in its column."""
    recs = records("csv", sample("orders.csv"))
    assert without_message(recs[1]) == {
        "order_id": "o-1842",
        "placed_at": "2026-11-26T10:07:05Z",
        "customer": "Doe, Jane",
        "total": "12.50",
        "currency": "EUR",
    }
    assert recs[1]["message"] == sample("orders.csv")[2]


def test_csv_row_with_wrong_column_count_keeps_its_text_and_says_why():
    """A short row gets `parse_error` and its text; the rows around it are fine."""
    recs = records("csv", sample("orders.csv"))
    assert recs[2] == {
        "message": "o-1843,2026-11-26T10:07:09Z,c-12,8.00",
        "parse_error": "csv: expected 5 columns, found 4",
    }
    assert "parse_error" not in recs[0] and "parse_error" not in recs[3]


def test_tsv_splits_on_tabs_only():
    """TSV columns split on tabs: a comma inside a value is just a character."""
    recs = records("tsv", sample("orders.tsv"))
    assert recs[1]["customer"] == "Doe, Jane"
    assert len(recs) == 2


def test_csv_column_named_message_is_not_overwritten():
    """A CSV with its own `message` column keeps it; the line text is not forced in."""
    (rec,) = records("csv", ["time,message", "2026-11-26T10:07:01Z,hello"])
    assert rec == {"time": "2026-11-26T10:07:01Z", "message": "hello"}


# ---------------------------------------------------------------- split_quoted
@pytest.mark.parametrize(
    ("line", "fields"),
    [
        pytest.param('a "b c" d', ["a", "b c", "d"], id="quoted group"),
        pytest.param('"- - - " "-"', ["- - - ", "-"], id="ELB TCP request"),
        pytest.param(r'"say \"hi\"" x', ['say "hi"', "x"], id="escaped quote"),
        pytest.param("a  b", ["a", "b"], id="double space"),
        pytest.param('"unterminated', ["unterminated"], id="unterminated quote"),
        pytest.param("", [], id="empty"),
    ],
)
def test_split_quoted(line, fields):
    """Space-separated fields where double quotes group, backslash escapes."""
    assert split_quoted(line) == fields


# ---------------------------------------------------------------- never raises
_FIELD = st.one_of(
    st.text(
        st.characters(blacklist_characters='\n\t "', blacklist_categories=("Cs",)), max_size=12
    ),
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
    st.sampled_from(
        [
            '"',
            "-",
            '"-"',
            "#",
            "#Fields:",
            "version",
            "srcaddr",
            "date",
            "time",
            "start",
            "9999-12-31",
            "0001-01-01",
            "23:59:59",
            "T",
            "\\",
            "\r",
            "\x00",
        ]
    ),
)
_LINE = st.one_of(
    st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",))),
    st.lists(_FIELD, max_size=35).map(" ".join),
    st.lists(_FIELD, max_size=35).map("\t".join),
    st.lists(_FIELD, max_size=35).map(",".join),
)
# Headers a reader may have consumed before the line (the format's own, or none).
_HEADERS = {
    "csv": [None, "a,b,time", "message"],
    "tsv": [None, "a\tb\ttime"],
    "vpcflow": [None, sample("vpcflow.log")[0], "version start end"],
    "cloudfront": [None, sample("cloudfront.log")[1], "#Fields: date time"],
}


@settings(max_examples=200, deadline=None)
@given(line=_LINE, data=st.data())
def test_any_line_through_any_format_gives_a_dict(line, data):
    """Whatever text a line holds, every format's `record` returns a dict and never raises
    (a raise would fail the whole object and retry it forever)."""
    for name, cls in FORMATS.items():
        fmt = cls()
        header = data.draw(st.sampled_from(_HEADERS.get(name, [None])), label=f"{name} header")
        if header is not None:
            fmt.header(header)
        rec = fmt.record(line)
        assert isinstance(rec, dict), name
        detect(line, "k.csv")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-(10**30), max_value=10**30), min_size=14, max_size=14))
def test_any_numbers_in_a_vpc_flow_record_give_a_dict(numbers):
    """Numbers of any size in every field of a VPC flow record never raise."""
    fmt = s3_formats.VpcFlow()
    rec = fmt.record(" ".join(map(str, numbers)))
    assert isinstance(rec, dict)
