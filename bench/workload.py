"""The bench's workload: CloudWatch subscription payloads and 20 routing rules.

Payloads are deterministic (seeded) and shaped like what a subscription filter
delivers for a busy function: invocations framed by Lambda's START / END /
REPORT lines, with application lines in between — two thirds JSON (three
common logger dialects: Powertools, pino, a structlog-like access log), the
rest plain text and Python-runtime `[LEVEL]\\t<time>\\t<request id>\\t<text>`
lines. An ECS log group adds a web tier with no Lambda lines. Per 1,000 events
that is about 500 JSON, 250 platform, 150 plain text and 100 runtime lines,
averaging ~200 bytes a message.

About 3% of invocations print a Python traceback, one event per line (what
`traceback.print_exc()` produces in Lambda), so stack-trace joining runs too.

Shares chosen so each rule does real work: ~5% health checks and ~3% DEBUG or
METRIC lines are dropped, ~1% mention "computer" (Slack), ~1.5% are ERROR lines
with a timeout or refused connection (SNS).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from stubs import ACCOUNT

from sluice_cli.payloads import awslogs, gzip_bytes, log_document

# 2026-11-26T10:07:00Z: a payload of 1,000 events spans ~3 s, 10,000 ~30 s, so
# all land in one (tag, hour) archive object like most real payloads.
T0_MS = 1_795_687_620_000

LAMBDA_GROUPS = (
    "/aws/lambda/checkout-api",
    "/aws/lambda/payments-worker",
    "/aws/lambda/search-indexer",
    "/aws/lambda/auth-service",
)
ECS_GROUP = "/ecs/web-frontend"
LOG_GROUPS = (*LAMBDA_GROUPS, ECS_GROUP)

_PATHS = (
    "/api/orders",
    "/api/orders/{n}",
    "/api/cart/{n}/items",
    "/api/v1/products/{n}",
    "/api/search",
    "/api/users/{n}/profile",
    "/api/payments/{n}/capture",
)
_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "okhttp/4.12.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "ELB-HealthChecker/2.0",
)
_WORDS = (
    "order",
    "cart",
    "inventory",
    "invoice",
    "customer",
    "session",
    "shipment",
    "payment",
    "refund",
    "coupon",
    "catalog",
    "price",
    "warehouse",
    "ticket",
)


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


def _pad(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


class _Gen:
    def __init__(self, log_group: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.log_group = log_group
        self.service = log_group.rsplit("/", 1)[-1]
        self.rid = str(uuid.UUID(int=self.rng.getrandbits(128)))

    # -- application lines ------------------------------------------------------
    def json_line(self, ms: int) -> str:
        rng = self.rng
        r = rng.random()
        path = rng.choice(_PATHS).replace("{n}", str(rng.randint(1000, 99999)))
        if r < 0.10:  # health check from the load balancer: dropped
            return orjson.dumps(
                {
                    "severity": "info",
                    "ts": _iso(ms),
                    "event": "http_request",
                    "method": "GET",
                    "path": "/healthz",
                    "status": 200,
                    "duration_ms": round(rng.uniform(0.2, 2), 2),
                    "user_agent": _AGENTS[4],
                    "env": "prod",
                }
            ).decode()
        if r < 0.40:  # structlog-like access log
            doc: dict[str, Any] = {
                "severity": rng.choice(("info", "info", "info", "warning")),
                "ts": _iso(ms),
                "event": "http_request",
                "method": rng.choice(("GET", "GET", "POST", "PUT")),
                "path": path,
                "status": rng.choice((200, 200, 200, 201, 304, 404, 500, 503)),
                "duration_ms": round(rng.uniform(1, 900), 1),
                "user_agent": rng.choice(_AGENTS[:4]),
                "env": rng.choice(("prod", "prod", "prod", "staging")),
            }
            if rng.random() < 0.1:
                doc["authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9.redact-me"
            return orjson.dumps(doc).decode()
        if r < 0.70:  # Powertools Logger
            verb = rng.choice(("created", "updated", "settled", "declined", "queued"))
            msg = f"{rng.choice(_WORDS)} {rng.randint(10000, 99999)} {verb}: {_pad(rng, 6)}"
            if rng.random() < 0.04:
                msg = "Computer says no: quota exceeded for tenant " + str(rng.randint(1, 500))
            level = (
                "DEBUG" if rng.random() < 0.06 else rng.choice(("INFO", "INFO", "INFO", "WARNING"))
            )
            return orjson.dumps(
                {
                    "level": level,
                    "location": f"handler:{rng.randint(20, 300)}",
                    "message": msg,
                    "timestamp": _iso(ms).replace("T", " ").replace(".", ",").replace("Z", "+0000"),
                    "service": self.service,
                    "cold_start": False,
                    "function_request_id": self.rid,
                    "xray_trace_id": f"1-{ms // 1000:08x}-{rng.getrandbits(96):024x}",
                }
            ).decode()
        # pino (numeric level, epoch ms, `msg`)
        return orjson.dumps(
            {
                "level": rng.choice((30, 30, 30, 40, 20)),
                "time": ms,
                "pid": 8,
                "hostname": "169.254.12.1",
                "reqId": self.rid[:8],
                "msg": f"{rng.choice(_WORDS)} cache {rng.choice(('hit', 'miss'))} for {path}: "
                f"{_pad(rng, 3)}",
                "usr": f"u{rng.randint(1, 99999)}",
                "latency_ms": rng.randint(1, 300),
            }
        ).decode()

    def plain_line(self, ms: int) -> str:
        rng = self.rng
        if rng.random() < 0.06:  # an app's own metric lines: dropped
            return (
                f"METRIC latency_ms={rng.randint(1, 900)} route={rng.choice(_PATHS)} "
                f"service={self.service} region=us-east-1"
            )
        stamp = _iso(ms).replace("T", " ").removesuffix("Z")
        return (
            f"{stamp} {rng.choice(('INFO', 'INFO', 'WARN'))}  [pool-3-thread-{rng.randint(1, 16)}] "
            f"c.e.{self.service}.{rng.choice(_WORDS).title()}Service - {rng.choice(_WORDS)} "
            f"{uuid.UUID(int=rng.getrandbits(128))} {_pad(rng, 9)} latency={rng.randint(1, 400)}ms"
        )

    def runtime_line(self, ms: int) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            text = rng.choice(
                (
                    "ConnectionRefusedError: [Errno 111] Connection refused "
                    "(db-primary.internal:5432)",
                    "ReadTimeout: HTTPSConnectionPool(host='payments.example.net', port=443): "
                    "read timeout=3.0",
                    "KeyError: 'customer_id' while handling order "
                    + str(rng.randint(10000, 99999)),
                )
            )
            level = "ERROR"
        elif r < 0.40:
            level, text = (
                "WARNING",
                f"retrying {rng.choice(_WORDS)} lookup after throttling "
                f"(attempt {rng.randint(1, 3)})",
            )
        else:
            level, text = (
                "INFO",
                f"fetched {rng.randint(1, 100)} {rng.choice(_WORDS)} records from cache in "
                f"{rng.randint(1, 90)} ms",
            )
        return f"[{level}]\t{_iso(ms)}\t{self.rid}\t{text}"

    def traceback_lines(self) -> list[str]:
        n = self.rng.randint(10000, 99999)
        return [
            "Traceback (most recent call last):",
            f'  File "/var/task/{self.service.replace("-", "_")}/handler.py", line 42, in handler',
            "    result = charge(order)",
            '  File "/var/task/payments/client.py", line 88, in charge',
            "    raise PaymentDeclined(order.id)",
            f"payments.client.PaymentDeclined: order {n} declined by issuer (do_not_honor)",
        ]

    def app_line(self, ms: int) -> str:
        r = self.rng.random()
        if r < 0.66:
            return self.json_line(ms)
        if r < 0.86:
            return self.plain_line(ms)
        return self.runtime_line(ms)

    # -- invocations ------------------------------------------------------------
    def lambda_messages(self, n: int) -> list[tuple[int, str]]:
        rng = self.rng
        out: list[tuple[int, str]] = []
        ms = T0_MS
        while len(out) < n:
            self.rid = str(uuid.UUID(int=rng.getrandbits(128)))
            out.append((ms, f"START RequestId: {self.rid} Version: $LATEST"))
            for _ in range(rng.randint(6, 12)):
                ms += rng.randint(0, 5)
                out.append((ms, self.app_line(ms)))
            if rng.random() < 0.03:  # traceback.print_exc(): one CloudWatch event per line
                for line in self.traceback_lines():
                    out.append((ms, line))
            ms += rng.randint(0, 5)
            out.append((ms, f"END RequestId: {self.rid}"))
            dur = rng.uniform(2, 900)
            init = f"\tInit Duration: {rng.uniform(150, 400):.2f} ms" if rng.random() < 0.05 else ""
            out.append(
                (
                    ms,
                    f"REPORT RequestId: {self.rid}\tDuration: {dur:.2f} ms\tBilled Duration: "
                    f"{int(dur) + 1} ms\tMemory Size: 512 MB\tMax Memory Used: "
                    f"{rng.randint(70, 200)} MB{init}\t",
                )
            )
        return out[:n]

    def ecs_messages(self, n: int) -> list[tuple[int, str]]:
        rng = self.rng
        out: list[tuple[int, str]] = []
        ms = T0_MS
        for _ in range(n):
            ms += rng.randint(0, 5)
            if rng.random() < 0.55:
                out.append((ms, self.json_line(ms)))
            else:  # nginx combined format
                ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                path = rng.choice(_PATHS).replace("{n}", str(rng.randint(1000, 99999)))
                out.append(
                    (
                        ms,
                        f"{ip} - - [26/Nov/2026:10:07:{ms // 1000 % 60:02d} +0000] "
                        f'"GET {path} HTTP/1.1" {rng.choice((200, 200, 304, 404))} '
                        f'{rng.randint(200, 90000)} "-" "{rng.choice(_AGENTS)}"',
                    )
                )
        return out


def document(log_group: str, n: int, seed: int) -> dict[str, Any]:
    """The decoded subscription document (what CloudWatch gzips)."""
    g = _Gen(log_group, seed)
    msgs = g.ecs_messages(n) if log_group == ECS_GROUP else g.lambda_messages(n)
    stream = f"2026/11/26/[$LATEST]{uuid.UUID(int=g.rng.getrandbits(128)).hex}"
    # CloudWatch event ids: 56 decimal digits.
    events = [
        {"id": f"{ms:020d}{seed:06d}{i:030d}", "timestamp": ms, "message": m}
        for i, (ms, m) in enumerate(msgs)
    ]
    return log_document(log_group, stream, events, filters=["sluice-all"], owner=ACCOUNT)


def one_event_document() -> dict[str, Any]:
    """The cold-start payload: one Powertools INFO line that no rule alerts on or drops,
    so the first invocation does the common work (rules, parse, archive), not Slack."""
    ms = T0_MS + 123
    msg = orjson.dumps(
        {
            "level": "INFO",
            "location": "handler:88",
            "message": "order 48213 created: 3 items, total 129.95 EUR",
            "timestamp": "2026-11-26 10:07:00,123+0000",
            "service": "checkout-api",
            "cold_start": True,
            "function_request_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            "xray_trace_id": "1-6926d144-a6e7fa887324ba9424952502",
        }
    ).decode()
    return log_document(
        LAMBDA_GROUPS[0],
        "2026/11/26/[$LATEST]5d1f0c7e3b2a49d68f0e1a2b3c4d5e6f",
        [{"id": f"{ms:020d}{0:036d}", "timestamp": ms, "message": msg}],
        filters=["sluice-all"],
        owner=ACCOUNT,
    )


def event_for(doc: dict[str, Any]) -> dict[str, Any]:
    """The Lambda trigger event: base64(gzip(json)), as CloudWatch delivers it."""
    return awslogs(gzip_bytes(orjson.dumps(doc), level=6))


def variant(doc: dict[str, Any], k: int) -> dict[str, Any]:
    """The trigger event for `doc` with event ids made unique to `k`: a replayed
    payload would otherwise be an exact retry, and alert dedupe would (rightly)
    skip every alert after the first round."""
    evs = [{**le, "id": le["id"][:26] + f"{k:06d}" + le["id"][32:]} for le in doc["logEvents"]]
    return event_for({**doc, "logEvents": evs})


def payloads(n_events: int = 1000) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """One (document, trigger event) per log group."""
    out = []
    for i, lg in enumerate(LOG_GROUPS):
        doc = document(lg, n_events, seed=1000 + i)
        out.append((doc, event_for(doc)))
    return out


# -- rules ---------------------------------------------------------------------------
RULES: list[dict[str, Any]] = [
    {
        "id": "health-noise",
        "priority": 5,
        "description": "load balancer health checks",
        "match": {"tag": "**", "where": [{"field": "path", "equals": "/healthz"}]},
        "actions": ["drop"],
        "stop": True,
    },
    {
        "id": "drop-debug",
        "priority": 6,
        "match": {"tag": "aws.lambda.**", "where": [{"field": "level", "in": ["DEBUG", "TRACE"]}]},
        "actions": ["drop"],
    },
    {
        "id": "drop-metric-lines",
        "priority": 7,
        "match": {"tag": "aws.lambda.*", "where": [{"field": "message", "regex": "^METRIC "}]},
        "actions": ["drop"],
    },
    {
        "id": "strip-credentials",
        "priority": 10,
        "match": {"tag": "**", "where": [{"field": "authorization", "exists": True}]},
        "transform": {"remove": ["authorization", "cookie"], "set": {"redacted": True}},
    },
    {
        "id": "unify-request-id",
        "priority": 11,
        "match": {"tag": "**", "where": [{"field": "reqId", "exists": True}]},
        "transform": {"rename": {"reqId": "request_id", "usr": "user_id"}},
    },
    {
        "id": "team-payments",
        "priority": 20,
        "match": {"tag": "aws.lambda.{checkout-api,payments-worker}"},
        "transform": {"set": {"team": "payments"}},
    },
    {
        "id": "team-search",
        "priority": 21,
        "match": {"tag": "aws.lambda.search-*"},
        "transform": {"set": {"team": "search"}},
    },
    {
        "id": "team-web",
        "priority": 22,
        "match": {"tag": "ecs.*"},
        "transform": {"set": {"team": "web"}, "rename": {"remote_addr": "client_ip"}},
    },
    {
        "id": "platform-report",
        "priority": 30,
        "match": {"tag": "aws.lambda.*", "where": [{"field": "lambda_event", "equals": "report"}]},
        "transform": {"set": {"kind": "platform_report"}},
    },
    {
        "id": "cold-starts",
        "priority": 31,
        "match": {"tag": "aws.lambda.*", "where": [{"field": "init_duration_ms", "exists": True}]},
        "transform": {"set": {"cold_start": True}},
    },
    {
        "id": "http-5xx",
        "priority": 40,
        "match": {"tag": "**", "where": [{"field": "status", "regex": "^5[0-9][0-9]$"}]},
        "transform": {"set": {"http_error": True}},
    },
    {
        "id": "payment-declined",
        "priority": 41,
        "match": {
            "tag": "aws.lambda.payments-*",
            "where": [{"field": "message", "contains": "declined"}],
        },
        "transform": {"set": {"alert_class": "payments"}},
    },
    {
        "id": "computer-alerts",
        "priority": 50,
        "match": {"tag": "**", "where": [{"field": "message", "regex": "(?i)computer"}]},
        "throttle": {"window": "5m", "max": 3},  # the README's example alert budget
        "actions": [
            {
                "slack": {
                    "channel": "#ops",
                    "text": "{tag}: {message}",
                    "runbook": "https://wiki.example.com/runbooks/computer",
                }
            }
        ],
    },
    {
        "id": "connection-errors",
        "priority": 51,
        "match": {
            "tag": "aws.lambda.**",
            "where": [
                {"field": "level", "in": ["ERROR", "CRITICAL", "FATAL"]},
                {"field": "message", "regex": "timeout|refused"},
            ],
        },
        "actions": [{"sns": {"topic": "ops-pager"}}],
    },
    {
        "id": "env-unknown",
        "priority": 60,
        "match": {
            "tag": "{aws.lambda.**,ecs.**}",
            "where": [{"not": {"field": "env", "exists": True}}],
        },
        "transform": {"set": {"env": "prod"}},
    },
    {
        "id": "staging-marker",
        "priority": 61,
        "match": {"tag": "**", "where": [{"field": "env", "equals": "staging"}]},
        "transform": {"set": {"non_prod": True}},
    },
    {
        "id": "crawlers",
        "priority": 70,
        "match": {
            "tag": "ecs.web-frontend",
            "where": [{"field": "user_agent", "regex": "(?i)(bot|crawler|spider)"}],
        },
        "transform": {"set": {"bot": True}},
    },
    {
        "id": "deprecated-api",
        "priority": 71,
        "match": {"tag": "**", "where": [{"field": "path", "regex": "^/api/v1/"}]},
        "transform": {"set": {"deprecated_api": True}},
    },
    {
        "id": "warn-not-debug",
        "priority": 80,
        "match": {
            "tag": "aws.lambda.search-indexer",
            "where": [
                {"field": "level", "equals": "WARNING"},
                {"not": {"field": "level", "in": ["DEBUG"]}},
            ],
        },
        "transform": {"set": {"sampled": True}},
    },
    {
        "id": "auth-audit",
        "priority": 90,
        "match": {
            "tag": "aws.lambda.auth-service",
            "where": [{"field": "message", "contains": "session"}],
        },
        "transform": {"set": {"audit": True}},
        "stop": True,
    },
]


def rule_items(rules: list[dict[str, Any]] = RULES) -> list[dict[str, Any]]:
    """DynamoDB items as `sluice rules apply` writes them (chalicelib/rules/store.py)."""
    return [
        {
            "pk": {"S": "rules"},
            "sk": {"S": r["id"]},
            "body": {"S": orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode()},
            "priority": {"N": str(r.get("priority", 100))},
            "updated_at": {"S": "2026-11-20T09:00:00+00:00"},
        }
        for r in rules
    ]
