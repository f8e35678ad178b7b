"""`sluice search`: archived events by tag pattern, time range, field conditions (the
rules' own condition language) and an RE2 text pattern.

Only the partitions the tag pattern and the time range select are listed and read
(archive_read). Partitions are hours of event time, so hours are visited newest first
(or oldest first with --oldest-first) and the search stops once --limit events are
found: memory holds at most --limit matches (a bounded heap per hour) plus the objects
in flight in the thread pool.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from typing import Any

import click
import orjson

from chalicelib.errors import RulesInvalid
from chalicelib.normalise import to_epoch_ms
from chalicelib.rules import origin
from chalicelib.rules.conditions import compile_where
from chalicelib.rules.regexplan import RegexError, compile_regex
from chalicelib.rules.schema import load_rules, tag_pattern_problem
from sluice_cli.archive_read import (
    WORKERS,
    Partition,
    bounded_map,
    object_keys,
    partitions,
    read_object,
)
from sluice_cli.dlq import parse_since

Envelope = dict[str, Any]
_OPS = ("!=", "!~", "=", "~")


def parse_where(text: str) -> list[dict[str, Any]]:
    """One `--where`: `field=value`, `field!=value`, `field~RE2`, `field!~RE2`, `field?`
    (exists), `!field?` (absent), or a condition (or list) in YAML/JSON exactly as a
    rule's `match.where` writes it. Validated by the rules schema."""
    s = text.strip()
    if s.startswith(("{", "[")) or "\n" in s:
        import yaml

        try:
            doc = yaml.safe_load(s)
        except yaml.YAMLError as e:
            raise click.BadParameter(f"{text!r}: not YAML/JSON: {e}") from e
        conds = doc if isinstance(doc, list) else [doc]
    elif s.endswith("?"):
        name = s[:-1]
        conds = [
            {"not": {"field": name[1:], "exists": True}}
            if name.startswith("!")
            else {"field": name, "exists": True}
        ]
    else:
        at = min((i for i in (s.find(op) for op in _OPS) if i > 0), default=-1)
        if at < 0:
            raise click.BadParameter(
                f"{text!r}: use field=value, field!=value, field~RE2, field!~RE2, field?, "
                "or a YAML condition like '{field: level, in: [ERROR, FATAL]}'"
            )
        op = next(o for o in _OPS if s.startswith(o, at))
        name, value = s[:at].strip(), s[at + len(op) :]
        cond: dict[str, Any] = {"field": name, ("regex" if "~" in op else "equals"): value}
        conds = [{"not": cond} if op.startswith("!") else cond]
    try:
        load_rules({"rules": [{"id": "where", "match": {"where": conds}}]})
    except RulesInvalid as e:
        reasons = "; ".join(f"{er.field.removeprefix('match.')}: {er.reason}" for er in e.errors)
        raise click.BadParameter(f"{text!r}: {reasons}") from e
    return conds


@dataclass(frozen=True)
class Search:
    tag: str = "**"
    since_ms: int | None = None
    until_ms: int | None = None
    where: tuple[dict[str, Any], ...] = ()
    grep: str | None = None
    limit: int = 100  # 0: no limit
    newest_first: bool = True
    # Conditions over the source (`--account`, `--region`): chalicelib/rules/origin.py.
    origin: tuple[dict[str, Any], ...] = ()

    def predicate(self) -> Callable[[Envelope, int], bool]:
        where = compile_where(list(self.where))
        from_ = compile_where(list(self.origin))
        try:
            rx = compile_regex(self.grep).search if self.grep else None
        except RegexError as e:
            raise click.BadParameter(f"--grep {self.grep!r}: {e}") from e
        lo = self.since_ms if self.since_ms is not None else -(2**62)
        hi = self.until_ms if self.until_ms is not None else 2**62

        def keep(env: Envelope, ms: int) -> bool:
            if not lo <= ms < hi:
                return False
            record = env.get("record")
            if not isinstance(record, dict):
                return False
            if where is not None and not where(record):
                return False
            if from_ is not None:
                src = env.get("source")
                if not isinstance(src, dict) or not from_(src):
                    return False
            if rx is not None:
                msg = record.get("message")
                text = msg if isinstance(msg, str) else orjson.dumps(record).decode()
                return rx(text) is not None
            return True

        return keep


def run(s3: Any, bucket: str, q: Search, workers: int = WORKERS) -> Iterator[Envelope]:
    """Matching envelopes, newest first (or oldest first), at most `q.limit`."""
    keep = q.predicate()
    parts = partitions(s3, bucket, q.tag, q.since_ms, q.until_ms)
    by_hour: dict[int, list[Partition]] = {}
    for p in parts:
        by_hour.setdefault(p.hour, []).append(p)
    sign = -1 if q.newest_first else 1
    left = q.limit or None
    seq = count()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search") as pool:
        for hour in sorted(by_hour, reverse=q.newest_first):
            keys = [
                k
                for ks in pool.map(lambda p: object_keys(s3, bucket, p), by_hour[hour])
                for k in ks
            ]
            # A heap of the best `left` matches of this hour: (sort key, tie-break, event).
            best: list[tuple[int, int, Envelope]] = []
            for envs in bounded_map(pool, lambda k: read_object(s3, bucket, k), keys, workers * 2):
                for env in envs:
                    ms = to_epoch_ms(env.get("time"))
                    if ms is None or not keep(env, ms):
                        continue
                    # heapq is a min-heap: the root is the worst kept match, evicted first.
                    item = (-sign * ms, next(seq), env)
                    if left is None or len(best) < left:
                        heapq.heappush(best, item)
                    elif item > best[0]:
                        heapq.heapreplace(best, item)
            for _k, _s, env in sorted(best, reverse=True):
                yield env
            if left is not None:
                left -= len(best)
                if left <= 0:
                    return


def origin_conditions(
    accounts: tuple[str, ...], regions: tuple[str, ...]
) -> tuple[dict[str, Any], ...]:
    """`--account` / `--region` values as conditions over the source (as a rule's
    `match.account` / `match.region`), or a usage error naming the bad value."""
    conds = []
    problems: list[str] = []
    for key, values in (("account", accounts), ("region", regions)):
        if values:
            cond = origin.condition(key, list(values), {}, lambda f, r: problems.append(r))
            if cond is not None:
                conds.append(cond)
    if problems:
        raise click.BadParameter("; ".join(problems))
    return tuple(conds)


def parse_time(text: str | None, name: str) -> int | None:
    """ISO 8601 time or an age (30m, 6h, 2d) -> epoch ms."""
    if not text:
        return None
    try:
        s = parse_since(text)
    except click.BadParameter as e:
        raise click.BadParameter(str(e), param_hint=name) from e
    return None if s is None else int(s * 1000)


def _message(record: Any) -> str:
    if isinstance(record, dict):
        msg = record.get("message")
        if isinstance(msg, str):
            return msg
    return orjson.dumps(record).decode()


@click.command("search")
@click.option("--tag", "tag", default="**", show_default=True, help="Fluentd tag pattern")
@click.option("--since", help="only events newer than this age (30m, 2h, 7d) or ISO time")
@click.option("--from", "from_", help="start, ISO 8601 (UTC unless an offset is given)")
@click.option("--to", "to", help="end (exclusive), ISO 8601 or an age")
@click.option(
    "--where",
    "wheres",
    multiple=True,
    help="field condition, repeatable, all must hold: level=ERROR, status!=200, "
    "message~'time.?out', user?, or YAML '{field: level, in: [ERROR, FATAL]}'",
)
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="source account id or pattern (1111*), repeatable: any of them",
)
@click.option(
    "--region", "regions", multiple=True, help="source region or pattern (eu-*), repeatable"
)
@click.option("--grep", help="RE2 pattern searched in the message (or the record's JSON)")
@click.option("--limit", default=100, show_default=True, help="at most this many (0: all)")
@click.option("--oldest-first", is_flag=True, help="a time-ordered stream, oldest first")
@click.option("--bucket", help="archive bucket (default: $SLUICE_ARCHIVE_BUCKET)")
@click.option("--json", "as_json", is_flag=True, help="JSON lines (archive envelopes)")
def search(
    tag: str,
    since: str | None,
    from_: str | None,
    to: str | None,
    wheres: tuple[str, ...],
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    grep: str | None,
    limit: int,
    oldest_first: bool,
    bucket: str | None,
    as_json: bool,
) -> None:
    """Find archived events by tag, time, field conditions and text.

    Reads only the partitions (tag, day, hour) the tag pattern and time range select.

    \b
    sluice search --tag 'aws.lambda.billing-*' --since 2h --where level=ERROR
    sluice search --tag 'app.**' --from 2026-11-26T09:00Z --to 2026-11-26T10:00Z \\
        --grep 'timed? ?out'
    """
    import boto3

    if problem := tag_pattern_problem(tag):
        raise click.BadParameter(f"{tag!r}: {problem}", param_hint="--tag")
    if since and from_:
        raise click.UsageError("--since and --from both give the start: pass one")
    name = bucket or os.environ.get("SLUICE_ARCHIVE_BUCKET")
    if not name:
        raise click.UsageError("no archive bucket: pass --bucket or set SLUICE_ARCHIVE_BUCKET")
    start = parse_time(since or from_, "--since" if since else "--from")
    end = parse_time(to, "--to")
    if start is not None and end is not None and end <= start:
        raise click.UsageError("--to must come after the start")
    conds = tuple(c for w in wheres for c in parse_where(w))
    if limit < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--limit")
    q = Search(
        tag, start, end, conds, grep, limit, not oldest_first, origin_conditions(accounts, regions)
    )
    t0 = time.perf_counter()
    found = run(boto3.client("s3"), name, q)
    if as_json:
        for env in found:
            click.echo(orjson.dumps(env).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False)
    for col in ("time", "tag", "message"):
        table.add_column(col, overflow="fold")
    n = 0
    for env in found:
        n += 1
        table.add_row(
            str(env.get("time", "")), str(env.get("tag", "")), _message(env.get("record"))
        )
    Console(soft_wrap=False).print(table)
    Console(stderr=True).print(f"[dim]{n} event(s) in {time.perf_counter() - t0:.2f}s[/]")
