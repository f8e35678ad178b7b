"""Formats of log objects in S3, one class per format, detected from the content.

A line format turns one line into record fields and may consume header lines
(CSV's column names, CloudFront's `#Fields:`, the VPC flow log header). Field
splitting uses string methods only: log text is untrusted and these run per line.
Field lists are from the AWS documentation of each log type.
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from chalicelib.errors import DecodeError
from chalicelib.event import format_time
from chalicelib.normalise import to_epoch_ms
from chalicelib.parsers import MAX_FIELDS, parse_message
from chalicelib.parsers.fields import number
from chalicelib.sources.firehose import looks_like_documents


def split_quoted(line: str) -> list[str]:
    """Space-separated fields where `"..."` groups (ALB/ELB access logs); linear time."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        if line[i] == '"':
            j = i + 1
            buf = []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n:
                    buf.append(line[j + 1])
                    j += 2
                    continue
                buf.append(line[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            out.append(line[i:j])
            i = j
    return out


def _num(v: str) -> Any:
    """A typed number, absent for `-`, or the text itself when it is no number the
    archive can write (an integer beyond 64 bits stays text)."""
    if v in ("-", ""):
        return None
    n = number(v)
    return v if n is None else n


class LineFormat(ABC):
    name: ClassVar[str]
    # Names of the fields to type as numbers; "-" becomes absent.
    numeric: ClassVar[frozenset[str]] = frozenset()
    # False for files that describe other objects and hold no log events.
    events: ClassVar[bool] = True

    def header(self, line: str) -> bool:
        """Consume a header line (return True) or not."""
        return False

    @abstractmethod
    def record(self, line: str) -> dict[str, Any]:
        """One line -> record fields (never raises)."""

    def _typed(self, names: list[str], values: list[str], line: str) -> dict[str, Any]:
        if len(values) > MAX_FIELDS:
            return {"message": line, "parse_error": f"{self.name}: over {MAX_FIELDS} fields"}
        rec: dict[str, Any] = {}
        for k, v in zip(names, values, strict=False):
            if k in self.numeric:
                n = _num(v)
                if n is not None:
                    rec[k] = n
            elif v != "-":
                rec[k] = v
        if len(values) != len(names):
            rec["parse_error"] = f"{self.name}: expected {len(names)} fields, found {len(values)}"
        rec["message"] = line
        return rec


FORMATS: dict[str, type[LineFormat]] = {}


def register(cls: type[LineFormat]) -> type[LineFormat]:
    FORMATS[cls.name] = cls
    return cls


@register
class Text(LineFormat):
    name = "text"

    def record(self, line: str) -> dict[str, Any]:
        return {"message": line}


@register
class JsonLines(LineFormat):
    """JSON lines (and any line: non-JSON lines are kept as text, as from CloudWatch)."""

    name = "jsonl"

    def record(self, line: str) -> dict[str, Any]:
        # The record as the CloudWatch path makes it: its time field kept as written (the
        # reader takes the event time from it again).
        # No cut before parsing: a JSON document (CloudTrail's Records) may be far larger
        # than one message; the reader caps what remains a single message afterwards.
        return parse_message(line, max_chars=None)[0]


@register
class CloudWatchDocuments(LineFormat):
    """CloudWatch Logs subscription documents, as Firehose writes them to S3 (concatenated
    or one per line): each document becomes its log events, tagged and sourced as the
    `cloudwatch_logs` trigger makes them (the reader splits documents, see firehose.py)."""

    name = "cloudwatch"

    def record(self, line: str) -> dict[str, Any]:
        return parse_message(line, max_chars=None)[0]


@register
class CloudTrailInsight(JsonLines):
    """CloudTrail Insights files: `Records` of Insights events (`eventType`
    `AwsCloudTrailInsight`, `insightDetails`), expanded like an event file's."""

    name = "cloudtrail_insight"


@register
class CloudTrailDigest(LineFormat):
    """CloudTrail digest files: signed hashes of the log files delivered in an hour, for
    integrity validation. Metadata about other objects, not log events: read, reported,
    and no event is made of them."""

    name = "cloudtrail_digest"
    events = False

    def record(self, line: str) -> dict[str, Any]:
        return {"message": line}


@register
class Csv(LineFormat):
    """CSV with a header line; a row with the wrong column count keeps its text."""

    name = "csv"
    delimiter = ","

    def __init__(self) -> None:
        self.columns: list[str] | None = None

    def _split(self, line: str) -> list[str]:
        return next(csv.reader([line], delimiter=self.delimiter))

    def header(self, line: str) -> bool:
        if self.columns is None:
            try:
                names = self._split(line)
            except csv.Error as e:  # a bare CR (old Mac line ends): the rows cannot be named
                raise DecodeError(self.name, f"header line: {e}") from e
            self.columns = [c.strip() for c in names]
            return True
        return False

    def record(self, line: str) -> dict[str, Any]:
        cols = self.columns or []
        try:
            values = self._split(line)
        except csv.Error as e:
            return {"message": line, "parse_error": f"{self.name}: {e}"}
        if len(values) > MAX_FIELDS:
            return {"message": line, "parse_error": f"{self.name}: over {MAX_FIELDS} columns"}
        if len(values) != len(cols):
            return {
                "message": line,
                "parse_error": f"{self.name}: expected {len(cols)} columns, found {len(values)}",
            }
        rec: dict[str, Any] = dict(zip(cols, values, strict=True))
        rec.setdefault("message", line)
        return rec


@register
class Tsv(Csv):
    name = "tsv"
    delimiter = "\t"


ALB_FIELDS = (
    "type time elb client target request_processing_time target_processing_time "
    "response_processing_time elb_status_code target_status_code received_bytes sent_bytes "
    "request user_agent ssl_cipher ssl_protocol target_group_arn trace_id domain_name "
    "chosen_cert_arn matched_rule_priority request_creation_time actions_executed "
    "redirect_url error_reason target_port_list target_status_code_list classification "
    "classification_reason conn_trace_id"
).split()

ELB_FIELDS = (
    "time elb client backend request_processing_time backend_processing_time "
    "response_processing_time elb_status_code backend_status_code received_bytes sent_bytes "
    "request user_agent ssl_cipher ssl_protocol"
).split()

_HTTP_NUMERIC = frozenset(
    "request_processing_time target_processing_time response_processing_time elb_status_code "
    "target_status_code received_bytes sent_bytes matched_rule_priority backend_processing_time "
    "backend_status_code".split()
)


def _request_parts(rec: dict[str, Any]) -> None:
    method, _, rest = str(rec.get("request", "")).partition(" ")
    url, _, proto = rest.rpartition(" ")
    if method and method != "-" and url:  # TCP/SSL listeners write "- - - "
        rec["method"], rec["url"], rec["protocol"] = method, url, proto


@register
class Alb(LineFormat):
    """Application Load Balancer access logs (Elastic Load Balancing docs, field order)."""

    name = "alb"
    numeric = _HTTP_NUMERIC

    def record(self, line: str) -> dict[str, Any]:
        values = split_quoted(line)
        # Newer ALB versions append fields: keep the documented ones, never fail on more.
        rec = self._typed(ALB_FIELDS, values[: len(ALB_FIELDS)], line)
        if len(values) >= len(ALB_FIELDS) - 2:
            rec.pop("parse_error", None)
        _request_parts(rec)
        return rec


@register
class Elb(LineFormat):
    """Classic Load Balancer access logs."""

    name = "elb"
    numeric = _HTTP_NUMERIC

    def record(self, line: str) -> dict[str, Any]:
        rec = self._typed(ELB_FIELDS, split_quoted(line), line)
        _request_parts(rec)
        return rec


_YEAR_10000_S = 253_402_300_800

VPC_DEFAULT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
).split()
# Every field a flow log format may name (VPC docs, "Flow log records", versions 2-8): a
# custom format's header lists some of them in its own order, `version` first or not.
VPC_FIELDS = frozenset(
    VPC_DEFAULT
    + (
        "vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id "
        "sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service "
        "flow-direction traffic-path ecs-cluster-arn ecs-cluster-name "
        "ecs-container-instance-arn ecs-container-instance-id ecs-container-id "
        "ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn "
        "ecs-task-id reject-reason resource-id encryption-status"
    ).split()
)


def vpc_header(line: str) -> list[str] | None:
    """The field names of a flow log header line (every word a known field), or None."""
    names = line.split()
    return names if len(names) >= 2 and all(n in VPC_FIELDS for n in names) else None


@register
class VpcFlow(LineFormat):
    """VPC flow logs: a header line names the fields, in the order of the log's format
    (default or custom, any version); without one, VPC_DEFAULT."""

    name = "vpcflow"
    numeric = frozenset(
        "version srcport dstport protocol packets bytes start end tcp-flags traffic-path".split()
    )

    def __init__(self) -> None:
        self.fields: list[str] | None = None

    def header(self, line: str) -> bool:
        if self.fields is None:
            self.fields = vpc_header(line)
            return self.fields is not None
        return False

    def record(self, line: str) -> dict[str, Any]:
        fields = self.fields or VPC_DEFAULT
        rec = self._typed(fields, line.split(), line)
        start = rec.get("start")
        # Epoch seconds within years 1970-9999: a larger number would overflow gmtime.
        if isinstance(start, int) and 0 <= start < _YEAR_10000_S:
            rec["time"] = format_time(start * 1000)
        return rec


@register
class CloudFront(LineFormat):
    """CloudFront standard logs: `#Version:` then `#Fields:` header, tab-separated rows."""

    name = "cloudfront"
    # Every count, size, status and duration of the documented fields (standard logging's
    # field list, and the ones its version 2 adds), so each is a number or absent.
    numeric = frozenset(
        "sc-bytes sc-status cs-bytes time-taken c-port time-to-first-byte sc-content-len "
        "sc-range-start sc-range-end fle-encrypted-fields origin-fbl origin-lbl asn".split()
    )

    def __init__(self) -> None:
        self.fields: list[str] = []

    def header(self, line: str) -> bool:
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                self.fields = line[len("#Fields:") :].split()
            return True
        return False

    def record(self, line: str) -> dict[str, Any]:
        rec = self._typed(self.fields, line.split("\t"), line)
        if "date" in rec and "time" in rec:
            ms = to_epoch_ms(f"{rec.pop('date')}T{rec['time']}+00:00")
            if ms is not None:
                rec["time"] = format_time(ms)
        return rec


def cloudtrail_kind(line: str, key: str) -> str | None:
    """CloudTrail's files other than event files, from their key and first bytes (CloudTrail
    docs: digest files under `CloudTrail-Digest/`, Insights under `CloudTrail-Insight/`)."""
    head = line[:4096]
    if "CloudTrail-Digest" in key and '"digestStartTime"' in head:
        return "cloudtrail_digest"
    if head.startswith('{"Records":') and (
        "CloudTrail-Insight" in key or '"AwsCloudTrailInsight"' in head
    ):
        return "cloudtrail_insight"
    return None


def _host_port(field: str) -> bool:
    """`192.168.131.39:2817` (an ELB client), not `worker:` (a logger name in a text line)."""
    host, sep, port = field.rpartition(":")
    return bool(sep and host and ":" not in host and port.isdigit())


def detect(first_line: str, key: str) -> str:
    """The line format of an object from its first line (and, for CSV/TSV, its key)."""
    line = first_line.lstrip("\ufeff")
    k = key.lower().removesuffix(".gz").removesuffix(".zst")
    if line.startswith("#Version:") or line.startswith("#Fields:"):
        return "cloudfront"
    if line.startswith("{") and looks_like_documents(line[:4096].encode()):
        return "cloudwatch"
    if len(line) < 2048 and vpc_header(line) and len(line.split()) >= 3:
        return "vpcflow"
    if line.startswith("{"):
        cloudtrail = cloudtrail_kind(line, key)
        if cloudtrail is not None:
            return cloudtrail
    head = line.split(" ", 3)
    if len(head) > 1 and head[0] in ("http", "https", "h2", "ws", "wss", "grpcs"):
        if to_epoch_ms(head[1]) is not None:
            return "alb"
    if len(head) > 3 and to_epoch_ms(head[0]) is not None and _host_port(head[2]):
        return "elb"
    if k.endswith(".csv"):
        return "csv"
    if k.endswith(".tsv"):
        return "tsv"
    if line.startswith("{"):
        return "jsonl"
    return "text"


LineParser = Callable[[str], dict[str, Any]]
