"""Web server access logs: Apache's Common and Combined Log Formats, nginx's `combined`.

    %h %l %u %t "%r" %>s %b                                   (common)
    %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"    (combined = nginx combined)

Fields: `remote_addr`, `ident`, `user` (each absent when `-`), `time` (UTC ISO
8601), `method`, `path`, `protocol`, `status` (int), `bytes` (int, 0 for `-`),
`referer` and `user_agent` (combined; absent when `-`), and `message` = the whole
line. A request line that is not `METHOD PATH PROTOCOL` (`"-"`, a scanner's
garbage, HTTP/0.9's `GET /`) is kept as `request` instead of failing the line.
Text after the format's last field (a `%D` or `$request_time` appended by the
operator) is allowed; it stays in `message`.

One RE2 match per line (linear time; quoted fields honour `\\"` escapes, which
both servers write for a quote inside a field).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import re2

from chalicelib.event import format_time
from chalicelib.normalise import normalise
from chalicelib.parsers.registry import failed, simple
from chalicelib.parsers.syslog import MONTHS, epoch_ms

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# Byte counts past 18 digits would not fit the archive's 64-bit integers.
_COMMON = r"(\S+) (\S+) (.+?) \[([^\]]+)\] " + _QUOTED + r" (\d{3}) (\d{1,18}|-)"
_COMBINED = _COMMON + " " + _QUOTED + " " + _QUOTED
_END = r"(?:\s|$)"


def _compile(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    return re2.compile("^" + pattern + _END, options)


_COMMON_RX = _compile(_COMMON)
_COMBINED_RX = _compile(_COMBINED)


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return "\\".join(part.replace('\\"', '"') for part in value.split("\\\\"))


def clf_time_ms(s: str) -> int | None:
    """`10/Oct/2000:13:55:36 -0700` -> epoch ms, or None."""
    if len(s) != 26 or s[2] != "/" or s[6] != "/" or s[11] != ":" or s[20] != " ":
        return None
    month = MONTHS.get(s[3:6])
    digits = s[0:2] + s[7:11] + s[12:14] + s[15:17] + s[18:20] + s[22:26]
    if month is None or not (digits.isascii() and digits.isdigit()) or s[21] not in "+-":
        return None
    if s[14] != ":" or s[17] != ":":
        return None
    offset = timedelta(hours=int(s[22:24]), minutes=int(s[24:26]))
    try:
        tz = timezone(-offset if s[21] == "-" else offset)
        dt = datetime(
            int(s[7:11]), month, int(s[0:2]), int(s[12:14]), int(s[15:17]), int(s[18:20]), tzinfo=tz
        )
    except ValueError:
        return None
    return epoch_ms(dt)


def _parse(text: str, rx: Any, fmt: str, combined: bool) -> dict[str, Any]:
    m = rx.match(text)
    if m is None:
        return failed(text, fmt, f"not in {fmt} format")
    g = m.groups()
    ms = clf_time_ms(g[3])
    if ms is None:
        return failed(text, fmt, f"bad time {g[3][:40]!r}")
    rec: dict[str, Any] = {"remote_addr": g[0]}
    if g[1] != "-":
        rec["ident"] = g[1]
    if g[2] != "-":
        rec["user"] = g[2]
    rec["time"] = format_time(ms)
    request = _unescape(g[4])
    parts = request.split(" ")
    if len(parts) == 3 and all(parts):
        rec["method"], rec["path"], rec["protocol"] = parts
    else:
        rec["request"] = request
    rec["status"] = int(g[5])
    rec["bytes"] = 0 if g[6] == "-" else int(g[6])
    if combined:
        if g[7] != "-":
            rec["referer"] = _unescape(g[7])
        if g[8] != "-":
            rec["user_agent"] = _unescape(g[8])
    rec["message"] = text
    return normalise(rec)[0]


@simple("apache_common", description='Apache Common Log Format (%h %l %u %t "%r" %>s %b)')
def parse_apache_common(text: str) -> dict[str, Any]:
    return _parse(text, _COMMON_RX, "apache_common", combined=False)


@simple("apache_combined", description="Apache Combined Log Format (common + referer, agent)")
def parse_apache_combined(text: str) -> dict[str, Any]:
    return _parse(text, _COMBINED_RX, "apache_combined", combined=True)


@simple("nginx", description="nginx's default `combined` access log format")
def parse_nginx(text: str) -> dict[str, Any]:
    return _parse(text, _COMBINED_RX, "nginx", combined=True)
