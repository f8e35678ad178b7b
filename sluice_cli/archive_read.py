"""Reading the archive for `sluice search` and `sluice query`: only the partitions a tag
pattern and a time range select, objects fetched by a bounded thread pool.

Layout: `archive/tag=<tag>/dt=YYYY-MM-DD/hour=HH/<object>.jsonl.gz`. Partitions are found
by delimited listings, tag first, then day, then hour, so a narrow search lists a few
prefixes instead of every key of the bucket.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from chalicelib.actions.archive import PREFIX
from chalicelib.rules.tags import TagPattern

HOUR_MS = 3_600_000
WORKERS = 8  # S3 GETs are latency-bound; 8 in flight keeps a laptop's link busy
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Partition:
    tag: str
    hour: int  # hours since the epoch (UTC)
    prefix: str  # "archive/tag=.../dt=.../hour=HH/"


def _prefixes(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    ):
        for p in page.get("CommonPrefixes", []):
            yield p["Prefix"]


def _value(prefix: str, name: str) -> str:
    """`archive/tag=a/dt=2026-12-01/` , "dt" -> "2026-12-01"."""
    return prefix.rstrip("/").rsplit("/", 1)[-1].removeprefix(f"{name}=")


def tags(s3: Any, bucket: str, pattern: str) -> list[str]:
    """The archived tags the Fluentd pattern matches."""
    matcher = TagPattern(pattern)
    out = []
    for p in _prefixes(s3, bucket, f"{PREFIX}/tag="):
        tag = _value(p, "tag")
        if matcher.matches(tag):
            out.append(tag)
    return sorted(out)


def partitions(
    s3: Any, bucket: str, pattern: str, since_ms: int | None, until_ms: int | None
) -> list[Partition]:
    """Partitions of matching tags whose hour overlaps [since, until); any order."""
    first = since_ms // HOUR_MS if since_ms is not None else None
    last = (until_ms - 1) // HOUR_MS if until_ms is not None else None
    first_day = first // 24 if first is not None else None
    last_day = last // 24 if last is not None else None
    out = []
    for tag in tags(s3, bucket, pattern):
        for day_prefix in _prefixes(s3, bucket, f"{PREFIX}/tag={tag}/"):
            try:
                day = (
                    int(
                        datetime.strptime(_value(day_prefix, "dt"), "%Y-%m-%d")
                        .replace(tzinfo=UTC)
                        .timestamp()
                    )
                    // 86_400
                )
            except ValueError:
                continue  # not a partition Sluice wrote
            if (first_day is not None and day < first_day) or (
                last_day is not None and day > last_day
            ):
                continue
            for hour_prefix in _prefixes(s3, bucket, day_prefix):
                try:
                    hour = day * 24 + int(_value(hour_prefix, "hour"))
                except ValueError:
                    continue
                if (first is not None and hour < first) or (last is not None and hour > last):
                    continue
                out.append(Partition(tag, hour, hour_prefix))
    return out


def object_keys(s3: Any, bucket: str, partition: Partition) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=partition.prefix
    ):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def read_object(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The envelopes of one archive object (gzip JSON lines); undecodable lines skipped."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    out = []
    for line in zlib.decompress(body, 47).splitlines():  # 47: gzip or zlib header
        if not line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """`fn` over `items` on `pool`, results in input order, at most `window` in flight:
    memory holds `window` results however many items there are."""
    pending: list[Future[R]] = []
    for it in items:
        pending.append(pool.submit(fn, it))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for f in pending:
        yield f.result()
