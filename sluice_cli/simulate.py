"""Simulated applications writing logs: the demo's apps and `sluice simulate`.

An `App` (the demo's) is a log group and stream and how it shapes a record
around a message. Messages come from `corpus/messages.txt`, drawn with a seeded
`random.Random`, so a run is reproducible line for line.

`sluice simulate` draws entries from the profiles of `profiles.py` and writes
them with `targets.py` to CloudWatch Logs, Kinesis, S3 or a file, wherever the
SDK points (AWS_ENDPOINT_URL: the local stack).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from chalicelib.aws import Clients
from sluice_cli import profiles, targets
from sluice_cli.logs_writer import Line, write_to_cloudwatch
from sluice_cli.synthetic import iso, level_for, load_corpus
from sluice_cli.targets import target_options

RecordFn = Callable[[random.Random, str, int], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class App:
    name: str
    log_group: str
    log_stream: str
    record: RecordFn

    def lines(
        self,
        n: int,
        rng: random.Random,
        corpus: Sequence[str],
        start_ms: int | None = None,
        step_ms: int = 3,
    ) -> list[Line]:
        """`n` log lines (JSON text), timestamps `step_ms` apart from `start_ms` (default now)."""
        t = int(time.time() * 1000) if start_ms is None else start_ms
        out: list[Line] = []
        for i in range(n):
            ts = t + i * step_ms
            out.append((ts, json.dumps(self.record(rng, rng.choice(corpus), ts))))
        return out


def _quiet_billing(rng: random.Random, message: str, ts: int) -> dict[str, Any]:
    # Payload under `event`, amounts in cents-free decimals, an ISO `time`.
    return {
        "level": level_for(message),
        "event": message,
        "user": f"u-{rng.randint(1000, 9999)}",
        "amount": round(rng.uniform(2, 900), 2),
        "currency": rng.choice(("EUR", "EUR", "USD", "GBP")),
        "time": iso(ts),
    }


HEALTHZ_SHARE = 0.15  # a load balancer probing every few seconds, among real traffic
_PATHS = (
    "/",
    "/cart",
    "/checkout",
    "/search",
    "/product/LAP-1405",
    "/account",
    "/api/cart",
    "/api/payments",
    "/invoice/INV-2026-004211",
)


def _chatty_frontend(rng: random.Random, message: str, ts: int) -> dict[str, Any]:
    # Payload under `message`, other names (`ts`, `severity`), another field order.
    if rng.random() < HEALTHZ_SHARE:
        return {
            "ts": iso(ts),
            "severity": "DEBUG",
            "path": "/healthz",
            "message": "GET /healthz 200",
            "status": 200,
            "duration_ms": rng.randint(1, 4),
        }
    level = level_for(message)
    status = 500 if level == "error" and rng.random() < 0.5 else 200
    return {
        "ts": iso(ts),
        "severity": level.upper(),
        "path": rng.choice(_PATHS),
        "message": message,
        "status": status,
        "duration_ms": rng.randint(5, 900),
    }


def quiet_billing(group: str = "/demo/quiet-billing") -> App:
    return App("quiet-billing", group, "billing-worker-1", _quiet_billing)


def chatty_frontend(group: str = "/demo/chatty-frontend") -> App:
    return App("chatty-frontend", group, "frontend-web-1", _chatty_frontend)


def run_app(
    logs: Any,
    app: App,
    n: int,
    *,
    seed: int,
    batch: int = 40,
    pause_s: float = 0.1,
    corpus: Sequence[str] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Write `n` lines of `app` in batches of `batch`, `pause_s` apart; return lines accepted."""
    rng = random.Random(seed)
    corpus = corpus or load_corpus()
    stop = stop or threading.Event()
    sent = accepted = 0
    while sent < n and not stop.is_set():
        k = min(batch, n - sent)
        accepted += write_to_cloudwatch(
            logs, app.log_group, app.log_stream, app.lines(k, rng, corpus)
        )
        sent += k
        if sent < n and pause_s:
            stop.wait(pause_s)
    return accepted


# ---------------------------------------------------------------- sluice simulate
def parse_rate(text: str) -> float:
    """`100`, `100/s`, `6000/m` or `2/h` -> entries per second."""
    number, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}.get(unit.strip().lower())
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if per is None or not value > 0:
        raise click.BadParameter(f"{text!r}: a positive number of entries, as N, N/s, N/m or N/h")
    return value / per


def parse_lead(text: str) -> tuple[float, float]:
    """`2-10` or `5` (seconds) -> (shortest, longest) delay from precursor to burst."""
    low, _, high = text.partition("-")
    try:
        lead = (float(low), float(high or low))
    except ValueError:
        lead = (-1.0, -1.0)
    if not 0 <= lead[0] <= lead[1]:
        raise click.BadParameter(f"{text!r}: seconds as MIN-MAX (2-10) or one number")
    return lead


def _share(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0 <= value <= 1:
        raise click.BadParameter("a share between 0 and 1 (0.05 is 5%)")
    return value


@click.command()
@click.option(
    "--profile",
    "profile_names",
    multiple=True,
    metavar="NAME",
    help="application profile (repeatable; default: all; --list-profiles shows them)",
)
@click.option("--list-profiles", is_flag=True, help="list the profiles and exit")
@click.option("--rate", default="10/s", show_default=True, help="entries per second: N, N/s, N/m")
@click.option("--duration", type=float, default=None, help="stop after S seconds")
@click.option("--count", type=click.IntRange(min=1), default=None, help="stop after N entries")
@click.option("--seed", type=int, default=None, help="random seed (default: random, printed)")
@click.option(
    "--errors",
    type=float,
    default=0.05,
    show_default=True,
    callback=_share,
    help="share of ERROR entries",
)
@click.option(
    "--precursors",
    type=float,
    default=0.01,
    show_default=True,
    callback=_share,
    help="share of precursor warnings, each followed --lead seconds later by an error burst "
    "on its host",
)
@click.option(
    "--lead",
    default="2-10",
    show_default=True,
    help="seconds from a precursor to its burst: MIN-MAX or one number",
)
@click.option(
    "--corpus",
    "corpus_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="messages to draw from, one per line (default: the corpus Sluice ships)",
)
@click.option(
    "--group-prefix", default="/sim/", show_default=True, help="CloudWatch: group = PREFIX + app"
)
@target_options
def simulate(
    profile_names: tuple[str, ...],
    list_profiles: bool,
    rate: str,
    duration: float | None,
    count: int | None,
    seed: int | None,
    errors: float,
    precursors: float,
    lead: str,
    corpus_file: Path | None,
    group_prefix: str,
    **target: Any,
) -> None:
    """Write synthetic application logs at a given rate until --count, --duration or Ctrl-C.

    \b
    sluice simulate --rate 50/s --duration 60
    sluice simulate --profile frontend --profile payments --target kinesis --kpl --count 10000
    sluice simulate --target s3 --bucket app-logs --gzip --rate 200/s
    sluice simulate --target file --out app.log --errors 0.2 --seed 7

    Ctrl-C writes the batches in progress, prints what was written and exits 130.
    """
    if list_profiles:
        for p in profiles.PROFILES.values():
            click.echo(f"{p.name:<10} {p.fmt:<7} weight {p.weight:>4g}  {p.description}")
        return
    unknown = [n for n in profile_names if n not in profiles.PROFILES]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}; known: {', '.join(profiles.PROFILES)}", param_hint="--profile"
        )
    chosen = [profiles.PROFILES[n] for n in dict.fromkeys(profile_names)] or list(
        profiles.PROFILES.values()
    )
    per_s = parse_rate(rate)
    lead_s = parse_lead(lead)
    corpus = load_corpus(corpus_file) if corpus_file else load_corpus()
    if not corpus:
        raise click.BadParameter("no message in the file", param_hint="--corpus")
    seed = random.randrange(2**31) if seed is None else seed
    out = targets.build_targets(
        Clients(),
        target.pop("targets"),
        group_prefix=group_prefix,
        **{k: v for k, v in target.items() if k != "no_progress"},
    )
    start_ms = int(time.time() * 1000)
    gen = profiles.Generator(
        chosen,
        corpus,
        rate=per_s,
        seed=seed,
        errors=errors,
        precursors=precursors,
        start_ms=start_ms,
        lead_s=lead_s,
    )
    timeline = (((e.time_ms - start_ms) / 1000, e) for e in gen)
    click.echo(
        f"simulating {', '.join(p.name for p in chosen)} at {per_s:g}/s, seed {seed}", err=True
    )
    status = targets.execute(
        timeline,
        out,
        label="simulate",
        count=count,
        duration_s=duration,
        show_progress=not target["no_progress"],
    )
    if status:
        raise SystemExit(status)
