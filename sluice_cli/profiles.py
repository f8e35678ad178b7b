"""Simulated applications for `sluice simulate`: profiles and the entry generator.

A `Profile` is one application: its hosts, how loud it is (`weight`, its share
of the total rate), and how it writes a log entry (JSON with its own field
names, logfmt, syslog RFC 5424, Apache combined, text with Java or Python stack
traces over several lines, CSV). `Generator` draws entries from a seeded
`random.Random`: a run is reproducible line for line.

Entries sit on a logical clock, entry i at `start + i / rate`, so the shares
and the precursor timing do not depend on how fast a target accepts them; the
runner paces the writes to the clock. A precursor ("disk usage above 90%") is
followed, `lead_s` later, by a burst of related errors on the same host of the
same application.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sluice_cli.synthetic import iso, level_for

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
CSV_HEADER = "time,level,host,job,message"
# (format, S3 object extension, header line of an object or file)
FORMATS: dict[str, tuple[str, str | None]] = {
    "json": ("jsonl", None),
    "logfmt": ("log", None),
    "syslog": ("log", None),
    "apache": ("log", None),
    "java": ("log", None),
    "python": ("log", None),
    "csv": ("csv", CSV_HEADER),
    "raw": ("log", None),  # replayed lines, written as read
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry an application wrote: one line, or several for a stack trace."""

    time_ms: int
    app: str
    host: str
    level: str  # DEBUG | INFO | WARN | ERROR
    kind: str  # normal | error | precursor | burst
    lines: tuple[str, ...]
    fmt: str


@dataclass(frozen=True, slots=True)
class Draw:
    """What a profile renders: one entry's time, host, level and message."""

    rng: random.Random
    ms: int
    host: str
    level: str
    message: str
    kind: str


Render = Callable[[Draw], list[str]]

# A precursor, then the errors it announces, on the same host.
PRECURSORS: tuple[tuple[str, str], ...] = (
    ("disk usage above 90% on /var/lib/app", "write failed: No space left on device"),
    ("connection pool 95% in use (38 of 40)", "connection pool exhausted after 30000 ms"),
    ("heap usage above 90% after full GC", "OutOfMemoryError: Java heap space"),
    ("replica lag above 30 s on db-2", "read failed: replica lag exceeded 120 s"),
    ("open files at 92% of the limit (60300 of 65536)", "accept failed: Too many open files"),
    ("certificate for api.shop.example expires in 2 days", "TLS handshake failed: expired"),
)
PRECURSOR_MESSAGES = frozenset(p for p, _ in PRECURSORS)
BURST_MESSAGES = frozenset(b for _, b in PRECURSORS)


# ---------------------------------------------------------------- renderers
def _json_billing(d: Draw) -> list[str]:
    # Payload under `event`, lower-case `level`, ISO `time` (like the demo's billing app).
    rec = {
        "level": d.level.lower(),
        "event": d.message,
        "host": d.host,
        "user": f"u-{d.rng.randint(1000, 9999)}",
        "amount": round(d.rng.uniform(2, 900), 2),
        "currency": d.rng.choice(("EUR", "EUR", "USD", "GBP")),
        "time": iso(d.ms),
    }
    return [json.dumps(rec)]


_PATHS = ("/", "/cart", "/checkout", "/search", "/product/LAP-1405", "/account", "/api/cart")


def _json_frontend(d: Draw) -> list[str]:
    # Payload under `message`, `ts` and upper-case `severity`; load balancer probes.
    healthz = d.level == "DEBUG"
    rec = {
        "ts": iso(d.ms),
        "severity": d.level,
        "host": d.host,
        "path": "/healthz" if healthz else d.rng.choice(_PATHS),
        "message": "GET /healthz 200" if healthz else d.message,
        "status": 500 if d.level == "ERROR" else 200,
        "duration_ms": d.rng.randint(1, 4) if healthz else d.rng.randint(5, 900),
    }
    return [json.dumps(rec)]


def _logfmt_value(v: str) -> str:
    if v and all(c.isalnum() or c in "-_.:/@" for c in v):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _logfmt(d: Draw) -> list[str]:
    pairs = [
        ("time", iso(d.ms)),
        ("level", d.level.lower()),
        ("host", d.host),
        ("msg", d.message),
        ("order", f"o-{d.rng.randint(80000, 99999)}"),
        ("duration_ms", str(d.rng.randint(3, 1200))),
    ]
    return [" ".join(f"{k}={_logfmt_value(v)}" for k, v in pairs)]


_SYSLOG_SEVERITY = {"DEBUG": 7, "INFO": 6, "WARN": 4, "ERROR": 3}
_AUTHPRIV = 10  # facility: security/authorization messages (RFC 5424, table 1)


def _syslog(d: Draw) -> list[str]:
    pri = _AUTHPRIV * 8 + _SYSLOG_SEVERITY[d.level]
    user = f"u-{d.rng.randint(1000, 9999)}"
    msgid = {"ERROR": "authfail", "WARN": "authwarn"}.get(d.level, "auth")
    sd = f'[req@32473 user="{user}" ip="10.0.{d.rng.randint(0, 255)}.{d.rng.randint(1, 254)}"]'
    return [
        f"<{pri}>1 {iso(d.ms)} {d.host} auth {d.rng.randint(100, 32000)} {msgid} {sd} {d.message}"
    ]


_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
    "curl/8.5.0",
)


def _apache(d: Draw) -> list[str]:
    # Combined Log Format: no message; an error is a 5xx, a warning a 4xx.
    status = {
        "ERROR": d.rng.choice((500, 502, 503, 504)),
        "WARN": d.rng.choice((404, 429)),
    }.get(d.level, d.rng.choice((200, 200, 200, 304, 301)))
    when = datetime.fromtimestamp(d.ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    client = f"203.0.113.{d.rng.randint(1, 254)}"
    path = d.rng.choice(_PATHS)
    size = d.rng.randint(200, 90000) if status < 400 else d.rng.randint(150, 600)
    return [
        f'{client} - - [{when}] "GET {path} HTTP/1.1" {status} {size} '
        f'"https://shop.example{d.rng.choice(_PATHS)}" "{d.rng.choice(_AGENTS)}"'
    ]


def _stamp(ms: int, sep: str) -> str:
    t = datetime.fromtimestamp(ms / 1000, UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S") + f"{sep}{ms % 1000:03d}"


_JAVA_FRAMES = (
    "com.shop.orders.OrderService.place(OrderService.java:142)",
    "com.shop.orders.OrderController.create(OrderController.java:58)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
)
TRACE_SHARE = 0.7  # errors that carry a stack trace in the text profiles


def _java(d: Draw) -> list[str]:
    level = {"WARN": "WARN ", "INFO": "INFO ", "DEBUG": "DEBUG"}.get(d.level, "ERROR")
    thread = f"http-nio-8080-exec-{d.rng.randint(1, 20)}"
    head = f"{_stamp(d.ms, '.')} {level} {d.host} [{thread}] com.shop.orders.OrderService - "
    lines = [head + d.message]
    if d.level == "ERROR" and d.rng.random() < TRACE_SHARE:
        lines.append(f"java.lang.IllegalStateException: {d.message}")
        lines += [f"\tat {f}" for f in _JAVA_FRAMES[: d.rng.randint(2, 4)]]
        if d.rng.random() < 0.5:
            lines.append("Caused by: java.net.SocketTimeoutException: Read timed out")
            lines.append(
                "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)"
            )
            lines.append(f"\t... {d.rng.randint(20, 60)} more")
    return lines


def _python(d: Draw) -> list[str]:
    level = {"WARN": "WARNING"}.get(d.level, d.level)
    lines = [f"{_stamp(d.ms, ',')} {level} {d.host} reports.nightly: {d.message}"]
    if d.level == "ERROR" and d.rng.random() < TRACE_SHARE:
        lines += [
            "Traceback (most recent call last):",
            '  File "/app/reports/nightly.py", line 88, in run',
            "    rows = fetch(batch)",
            '  File "/app/reports/db.py", line 41, in fetch',
            "    raise TimeoutError(reason)",
            f"TimeoutError: {d.message}",
        ]
    return lines


def _csv(d: Draw) -> list[str]:
    out = io.StringIO()
    job = d.rng.choice(("ledger-export", "payout-report", "vat-return"))
    csv.writer(out, lineterminator="").writerow([iso(d.ms), d.level, d.host, job, d.message])
    return [out.getvalue()]


# ---------------------------------------------------------------- profiles
@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    fmt: str
    weight: float  # share of the total rate, relative to the other profiles chosen
    hosts: tuple[str, ...]
    render: Render
    description: str
    messages: bool = True  # False: the format has no message (access logs): no precursors
    debug_share: float = 0.0  # probes and other noise among the normal entries


_ALL = (
    Profile(
        name="billing",
        fmt="json",
        weight=1,
        hosts=("billing-1",),
        render=_json_billing,
        description="quiet JSON worker: payload under `event`, lower-case `level`, ISO `time`",
    ),
    Profile(
        name="frontend",
        fmt="json",
        weight=12,
        hosts=("web-1", "web-2", "web-3"),
        render=_json_frontend,
        description="chatty JSON web tier: `message`, `severity`, `ts`; 15% /healthz probes",
        debug_share=0.15,
    ),
    Profile(
        name="payments",
        fmt="logfmt",
        weight=3,
        hosts=("payments-1", "payments-2"),
        render=_logfmt,
        description="logfmt service: time= level= host= msg= order= duration_ms=",
    ),
    Profile(
        name="auth",
        fmt="syslog",
        weight=2,
        hosts=("auth-1",),
        render=_syslog,
        description="syslog RFC 5424 (facility authpriv) with structured data",
    ),
    Profile(
        name="edge",
        fmt="apache",
        weight=10,
        hosts=("edge-1", "edge-2"),
        render=_apache,
        description="chatty Apache combined access log: errors are 5xx, warnings 4xx",
        messages=False,
    ),
    Profile(
        name="orders",
        fmt="java",
        weight=2,
        hosts=("orders-1", "orders-2"),
        render=_java,
        description="JVM service, logback text; most errors followed by a Java stack trace",
    ),
    Profile(
        name="reports",
        fmt="python",
        weight=1,
        hosts=("reports-1",),
        render=_python,
        description="quiet Python batch job, logging text; most errors followed by a traceback",
    ),
    Profile(
        name="exports",
        fmt="csv",
        weight=1,
        hosts=("exports-1",),
        render=_csv,
        description="quiet CSV job log: time,level,host,job,message (a header line per object)",
    ),
)
PROFILES: dict[str, Profile] = {p.name: p for p in _ALL}


# ---------------------------------------------------------------- generator
@dataclass(slots=True)
class _Burst:
    due_ms: int
    profile: Profile
    host: str
    message: str
    left: int


class Generator:
    """An endless, reproducible sequence of entries from several profiles.

    `errors`: share of ERROR entries, bursts included. `precursors`: share of
    precursor entries (carried by the profiles that write messages). Each
    precursor schedules a burst of `burst` errors `lead_s` seconds later on its
    host; bursts count towards `errors`, so an error share smaller than the
    bursts' is exceeded.
    """

    def __init__(
        self,
        profiles: Sequence[Profile],
        corpus: Sequence[str],
        *,
        rate: float,
        seed: int,
        errors: float = 0.05,
        precursors: float = 0.01,
        start_ms: int = 0,
        lead_s: tuple[float, float] = (2.0, 10.0),
        burst: tuple[int, int] = (2, 4),
    ) -> None:
        if not profiles or rate <= 0:
            raise ValueError("at least one profile and a positive rate")
        self.profiles = list(profiles)
        self.weights = [p.weight for p in self.profiles]
        self.rng = random.Random(seed)
        self.rate = rate
        self.start_ms = start_ms
        self.lead_s = lead_s
        self.burst = burst
        self.error_pool = [m for m in corpus if level_for(m) == "error"] or list(corpus)
        self.normal_pool = [m for m in corpus if level_for(m) != "error"] or list(corpus)
        if not self.error_pool:
            raise ValueError("the corpus holds no message")
        # Per-draw probabilities that give the requested shares of all entries once
        # bursts (k errors per precursor, on average) are counted in. With m the
        # weight share of profiles that take precursors and a the precursor chance
        # of one of their draws: precursors/all = a*m / (1 + a*m*k).
        k = (burst[0] + burst[1]) / 2
        m = sum(p.weight for p in self.profiles if p.messages) / sum(self.weights)
        am = min(precursors / (1 - precursors * k), m) if precursors > 0 and m > 0 else 0.0
        self.p_precursor = am / m if m else 0.0
        err = (errors * (1 + am * k) - am * k) / (1 - am) if am < 1 else 0.0
        self.p_error = min(max(err, 0.0), 1.0)
        self._pending: list[_Burst] = []

    def __iter__(self) -> Iterator[Entry]:
        i = 0
        while True:
            ms = self.start_ms + round(i * 1000 / self.rate)
            i += 1
            yield self._next(ms)

    def _next(self, ms: int) -> Entry:
        rng = self.rng
        due = [b for b in self._pending if b.due_ms <= ms]
        if due:
            b = min(due, key=lambda b: b.due_ms)
            b.left -= 1
            if not b.left:
                self._pending.remove(b)
            return self._entry(b.profile, b.host, ms, "ERROR", b.message, "burst")
        p = rng.choices(self.profiles, self.weights)[0]
        host = rng.choice(p.hosts)
        if p.messages and rng.random() < self.p_precursor:
            precursor, error = rng.choice(PRECURSORS)
            lead_ms = round(rng.uniform(*self.lead_s) * 1000)
            self._pending.append(_Burst(ms + lead_ms, p, host, error, rng.randint(*self.burst)))
            return self._entry(p, host, ms, "WARN", precursor, "precursor")
        if rng.random() < self.p_error:
            return self._entry(p, host, ms, "ERROR", rng.choice(self.error_pool), "error")
        message = rng.choice(self.normal_pool)
        if p.debug_share and rng.random() < p.debug_share:
            level = "DEBUG"
        else:
            level = "WARN" if level_for(message) == "warn" else "INFO"
        return self._entry(p, host, ms, level, message, "normal")

    def _entry(self, p: Profile, host: str, ms: int, level: str, message: str, kind: str) -> Entry:
        lines = p.render(Draw(self.rng, ms, host, level, message, kind))
        return Entry(ms, p.name, host, level, kind, tuple(lines), p.fmt)
