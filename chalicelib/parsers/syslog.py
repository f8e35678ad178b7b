"""Syslog: RFC 5424 and RFC 3164 (BSD) lines, told apart by the version after PRI.

RFC 5424: `<165>1 2003-10-11T22:14:15.003Z host app procid msgid [sd-id k="v"] msg`
RFC 3164: `<34>Oct 11 22:14:15 host su[123]: msg` (PRI optional: files written by
syslog daemons, as shipped to S3, carry none).

Fields: `facility`, `severity` (numbers), `level` (the RFC 5424 keyword: EMERG,
ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG), `time` (UTC ISO 8601), `host`,
`app`, `pid` (an int when the process id is numeric, else the text as `procid`),
`msgid`, `sd` (structured data: `{sd-id: {param: value}}`, a repeated param
becomes a list) and `message`. Nil values (`-`) are absent.

RFC 3164 times carry neither year nor zone: they are read as UTC, in the latest
year that does not put them more than a day ahead of now. That is the current
year, or the year before for a December line read in January; the day of
tolerance covers senders' zones (a local time east of UTC reads ahead), so a
`Jan  1 00:30` read at 23:30 UTC on 31 December is the coming year's. A 3164
header that does not parse is, as RFC 3164 section 4.3.2 says, content: the line
keeps its PRI fields and the rest is the message. String methods throughout: no
regex. The field names are fixed and none is an alias, so records skip
`normalise` (its time parsing would be wasted).
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.event import format_time
from chalicelib.parsers.fields import closing_quote as _closing_quote
from chalicelib.parsers.registry import failed, simple

LEVELS = ("EMERG", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG")
MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def epoch_ms(dt: datetime) -> int:
    """Exact epoch milliseconds (integer arithmetic: float timestamps lose the odd ms)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MS


def civil_ms(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int | None:
    """A UTC calendar time -> epoch ms, or None if no such time.

    Integer arithmetic (H. Hinnant's days_from_civil): a fifth of what building a
    datetime costs, and these run once per line.
    """
    if not (1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month]):
        return None
    if month == 2 and day == 29 and (year % 4 or (year % 100 == 0 and year % 400)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000


def _pri(text: str) -> tuple[int, int] | None:
    """`<PRI>` at the start -> (PRI, index after `>`), or None."""
    if text[:1] != "<":
        return None
    end = text.find(">", 1, 5)
    digits = text[1:end]
    if end < 2 or not (digits.isascii() and digits.isdigit()):
        return None
    pri = int(digits)
    return (pri, end + 1) if pri <= 191 else None


def _pri_fields(pri: int) -> dict[str, Any]:
    return {"facility": pri >> 3, "severity": pri & 7, "level": LEVELS[pri & 7]}


def _proc(rec: dict[str, Any], procid: str) -> None:
    if procid.isascii() and procid.isdigit() and len(procid) < 19:
        rec["pid"] = int(procid)
    else:
        rec["procid"] = procid


def _iso_ms(ts: str) -> int | None:
    """An RFC 3339 timestamp -> epoch ms, or None."""
    if len(ts) < 19 or ts[10:11] not in ("T", "t") or ts[4:5] != "-":
        return None
    try:
        return epoch_ms(datetime.fromisoformat(ts.upper()))
    except ValueError:
        return None


# ---- RFC 5424 ---------------------------------------------------------------


def _unescape_sd(raw: str) -> str:
    """PARAM-VALUE escapes (RFC 5424 6.3.3): only \\" \\\\ \\] are escapes."""
    out: list[str] = []
    i = 0
    while (j := raw.find("\\", i)) != -1 and j + 1 < len(raw):
        nxt = raw[j + 1]
        out.append(raw[i:j] if nxt in '"\\]' else raw[i : j + 1])
        out.append(nxt)
        i = j + 2
    out.append(raw[i:])
    return "".join(out)


def parse_sd(s: str) -> tuple[dict[str, dict[str, Any]], int] | None:
    """STRUCTURED-DATA at the start of `s` -> (sd, index after it), or None if malformed."""
    sd: dict[str, dict[str, Any]] = {}
    i, n = 0, len(s)
    while i < n and s[i] == "[":
        close, space = s.find("]", i), s.find(" ", i)
        if close == -1:
            return None
        end = close if space == -1 or close < space else space
        sd_id = s[i + 1 : end]
        if not sd_id or "=" in sd_id or '"' in sd_id:
            return None
        params: dict[str, Any] = sd.setdefault(sd_id, {})
        i = end
        while s[i] == " ":
            eq = s.find("=", i + 1)
            name = s[i + 1 : eq]
            if eq == -1 or not name or any(c in name for c in ' ]"') or s[eq + 1 : eq + 2] != '"':
                return None
            q = _closing_quote(s, eq + 2)
            if q == -1 or q + 1 >= n:
                return None
            raw = s[eq + 2 : q]
            value = _unescape_sd(raw) if "\\" in raw else raw
            prior = params.get(name)
            if prior is None:
                params[name] = value
            elif type(prior) is list:
                prior.append(value)
            else:
                params[name] = [prior, value]
            i = q + 1
        if s[i] != "]":
            return None
        i += 1
    return sd, i


def parse_5424(text: str) -> dict[str, Any]:
    p = _pri(text)
    if p is None:
        return failed(text, "syslog5424", "no <PRI>")
    pri, start = p
    parts = text[start:].split(" ", 6)
    if len(parts) < 7:
        return failed(text, "syslog5424", "header has fewer than 7 fields")
    version, ts, host, app, procid, msgid, rest = parts
    if not (version.isascii() and version.isdigit() and version[0] != "0" and len(version) <= 3):
        return failed(text, "syslog5424", f"bad version {version[:8]!r}")
    rec = _pri_fields(pri)
    if ts != "-":
        ms = _iso_ms(ts)
        if ms is None:
            return failed(text, "syslog5424", f"bad timestamp {ts[:40]!r}")
        rec["time"] = format_time(ms)
    if host != "-":
        rec["host"] = host
    if app != "-":
        rec["app"] = app
    if procid != "-":
        _proc(rec, procid)
    if msgid != "-":
        rec["msgid"] = msgid
    if rest[:1] == "-":
        after = 1
    else:
        parsed = parse_sd(rest)
        if parsed is None or not parsed[0]:
            return failed(text, "syslog5424", "malformed structured data")
        rec["sd"], after = parsed
    if after < len(rest) and rest[after] != " ":
        return failed(text, "syslog5424", "no space after structured data")
    # MSG may start with a UTF-8 BOM (RFC 5424 6.4).
    rec["message"] = rest[after + 1 :].removeprefix("\ufeff").rstrip("\r\n")
    return rec


# ---- RFC 3164 ---------------------------------------------------------------


_Clock = tuple[int, int, int, int, int, int]  # month, day, hour, minute, second, index after
# Lines of one batch mostly share their second: the last stamp read is kept.
_last_bsd: tuple[str, _Clock | None] = ("", None)


def _bsd_time(s: str, now_ms: int) -> tuple[int, int] | None:
    """`Mmm dd HH:MM:SS` (day space- or zero-padded, or not) -> (epoch ms, index after)."""
    global _last_bsd
    key = s[:17]  # every character _bsd_clock can read
    if key == _last_bsd[0]:
        clock = _last_bsd[1]
    else:
        clock = _bsd_clock(s)
        _last_bsd = (key, clock)
    if clock is None:
        return None
    month, d, hh, mm, ss, after = clock
    year = _time.gmtime(now_ms // 1000).tm_year
    # The latest year that is not more than a day ahead: next year only for a
    # sender east of UTC already past midnight on 1 January; Feb 29 may be up
    # to eight years back (2096 -> 2104 skips a leap year).
    for y in range(year + 1 if month == 1 else year, year - 9, -1):
        ms = civil_ms(y, month, d, hh, mm, ss)
        if ms is not None and ms <= now_ms + _DAY_MS:
            return ms, after
    return None


def _bsd_clock(s: str) -> _Clock | None:
    month = MONTHS.get(s[:3])
    if month is None or s[3:4] != " ":
        return None
    j = 5 if s[4:5] == " " else 4
    k = s.find(" ", j, j + 3)
    day, clock = s[j:k], s[k + 1 : k + 9]
    if k == -1 or not day or len(clock) != 8:
        return None
    digits = day + clock[0:2] + clock[3:5] + clock[6:8]
    if clock[2] != ":" or clock[5] != ":" or not (digits.isascii() and digits.isdigit()):
        return None
    if s[k + 9 : k + 10] not in ("", " "):
        return None
    return month, int(day), int(clock[0:2]), int(clock[3:5]), int(clock[6:8]), k + 9


def _header_time(s: str, now_ms: int) -> tuple[int, int] | None:
    if s[:1].isdigit():  # an RFC 3339 stamp in the 3164 layout (rsyslog's high-precision form)
        end = s.find(" ")
        ms = _iso_ms(s if end == -1 else s[:end])
        return None if ms is None else (ms, len(s) if end == -1 else end)
    return _bsd_time(s, now_ms)


def _tag(rec: dict[str, Any], token: str) -> bool:
    """`app:` or `app[pid]:` -> fields; False when `token` is not a tag."""
    if len(token) < 2 or not token.endswith(":"):
        return False
    tag = token[:-1]
    if tag.endswith("]") and (b := tag.find("[")) > 0:
        rec["app"] = tag[:b]
        _proc(rec, tag[b + 1 : -1])
    else:
        rec["app"] = tag
    return True


def parse_3164(text: str, now_ms: int | None = None) -> dict[str, Any]:
    """An RFC 3164 line -> fields. `now_ms` (default: the clock) settles the year."""
    if now_ms is None:
        now_ms = int(_time.time() * 1000)
    p = _pri(text)
    rec: dict[str, Any] = {} if p is None else _pri_fields(p[0])
    body = text[0 if p is None else p[1] :].rstrip("\r\n")
    stamp = _header_time(body, now_ms)
    if stamp is None:
        if p is None:
            return failed(text, "syslog3164", "neither <PRI> nor a timestamp")
        rec["message"] = body
        return rec
    ms, after = stamp
    rec["time"] = format_time(ms)
    rest = body[after + 1 :]
    first, _, tail = rest.partition(" ")
    if _tag(rec, first):  # no HOSTNAME: a local daemon's line
        rec["message"] = tail
        return rec
    if first:
        rec["host"] = first
    second, _, content = tail.partition(" ")
    rec["message"] = content if _tag(rec, second) else tail
    return rec


def _is_5424(text: str) -> bool:
    p = _pri(text)
    if p is None:
        return False
    start = p[1]
    space = text.find(" ", start, start + 4)
    return space > start and text[start:space].isdigit()


@simple("syslog", description="syslog, RFC 5424 or RFC 3164 (detected per line)")
def parse_syslog(text: str) -> dict[str, Any]:
    return parse_5424(text) if _is_5424(text) else parse_3164(text)


@simple("syslog5424", description="syslog RFC 5424 only")
def parse_syslog5424(text: str) -> dict[str, Any]:
    return parse_5424(text)


@simple("syslog3164", description="BSD syslog (RFC 3164) only")
def parse_syslog3164(text: str) -> dict[str, Any]:
    return parse_3164(text)
