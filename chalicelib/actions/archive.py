"""The archive: the audit trail every non-dropped event lands in.

Layout (Athena/Glue-friendly, gzip JSON lines, one event per line):
    s3://<bucket>/archive/tag=<tag>/dt=YYYY-MM-DD/hour=HH/<batch id>-<n>.jsonl.gz
One object per (tag, hour) per batch; `n` counts objects within the partition (0
when partitions are by event time). The batch id is the invocation id, which Lambda
keeps across its own asynchronous retries, or a stable id the source derives from its
input (a Kinesis shard and start sequence, an S3 object, a dead letter), so a retried
or replayed batch overwrites its objects instead of duplicating them.

Lines are assembled from pre-encoded pieces: the tag and the payload's shared
`source` (with its account and region, repeated at the top level for the Glue table's
columns) are serialised once per object, so per event only the record, the
time and the id are encoded (orjson of the whole envelope costs ~1.3 µs/event,
most of it the repeated source).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Collection, Iterable
from functools import lru_cache
from typing import Any

import orjson

from chalicelib.actions.s3put import prepared_put
from chalicelib.budget import budget
from chalicelib.event import UNENCODABLE, LogEvent, format_time
from chalicelib.normalise import FUTURE_MS, PAST_MS
from chalicelib.records import record

PREFIX = "archive"


@record()
class ArchiveObject:
    """One archive object to write: its key, gzip body and the events in it."""

    __slots__ = ("body", "events", "group", "key", "moved_in")

    key: str
    body: bytes
    events: list[LogEvent]
    group: tuple[str, int]  # (tag, hour since the epoch)
    # (tag, hour) of events written here because the invocation's partitions ran out
    moved_in: list[tuple[str, int]]

    def __init__(
        self,
        key: str,
        body: bytes,
        events: list[LogEvent],
        group: tuple[str, int] = ("", 0),
        moved_in: list[tuple[str, int]] | None = None,
    ) -> None:
        self.key = key
        self.body = body
        self.events = events
        self.group = group
        self.moved_in = [] if moved_in is None else moved_in


@record()
class ArchiveResult:
    """What writing a batch's archive objects did: keys written, events archived, failures."""

    __slots__ = ("archived", "by_group", "failed", "keys", "partitions")

    archived: int
    keys: list[str]
    failed: list[tuple[list[LogEvent], str]]
    by_group: dict[tuple[str, int], str]  # (tag, hour) -> key
    partitions: set[tuple[str, int]]  # (tag, hour) opened

    def __init__(
        self,
        archived: int = 0,
        keys: list[str] | None = None,
        failed: list[tuple[list[LogEvent], str]] | None = None,
        by_group: dict[tuple[str, int], str] | None = None,
        partitions: set[tuple[str, int]] | None = None,
    ) -> None:
        self.archived = archived
        self.keys = [] if keys is None else keys
        self.failed = [] if failed is None else failed
        self.by_group = {} if by_group is None else by_group
        self.partitions = set() if partitions is None else partitions


def partition_key(tag: str, ms: int) -> str:
    return _partition(tag, ms // 3_600_000)


@lru_cache(maxsize=1024)
def _partition(tag: str, hour: int) -> str:
    """The prefix of partition (tag, hour since the epoch); a batch's few are made once."""
    t = time.gmtime(hour * 3600)
    return f"{PREFIX}/tag={tag}/dt={time.strftime('%Y-%m-%d', t)}/hour={t.tm_hour:02d}"


def group(
    events: Iterable[LogEvent],
    written: Collection[tuple[str, int]] = (),
    limit: int | None = None,
) -> tuple[dict[tuple[str, int], list[LogEvent]], dict[tuple[str, int], tuple[str, int]]]:
    """Events by partition (tag, hour), and where events not in their own hour went.

    An event's partition is its own hour while its time lies within a sane window
    around its arrival (`normalise.PAST_MS` / `FUTURE_MS`), else its arrival hour; its
    envelope keeps its own time either way. Each partition is a PutObject: an
    invocation opens at most `limit` of them (`written`: those its earlier slices
    opened). Past that, an event of a new (tag, hour) joins its tag's first partition
    of the invocation, or the invocation's first partition for a new tag; its own tag
    and time stay in its envelope. So a payload of 5,000 distinct hours costs `limit`
    PUTs, not 5,000; a retry groups the same way."""
    if type(events) is list and events:
        found = _one_tag(events, written, limit)
        if found is not None:
            return found
    return _group(events, written, limit)


def _one_tag(
    events: list[LogEvent], written: Collection[tuple[str, int]], limit: int | None
) -> tuple[dict[tuple[str, int], list[LogEvent]], dict[tuple[str, int], tuple[str, int]]] | None:
    """`group` of events of one tag whose partitions all fit under the limit (a
    CloudWatch payload's usual case, with a few events far from their arrival at most):
    each event's hour in one pass, the events in one list when they share it; None
    otherwise (`_group` then takes them one by one)."""
    tag = events[0].tag
    if any([ev.tag != tag for ev in events]):
        return None
    times = [ev.time for ev in events]
    arrivals = [ev.arrival for ev in events]
    # An event whose time is far from its arrival goes to its arrival's hour.
    low, high = -PAST_MS, FUTURE_MS
    moved: dict[tuple[str, int], tuple[str, int]] = {}
    earliest, latest, first = min(times), max(times), min(arrivals)
    if first < 0 or not max(arrivals) + low <= earliest <= latest <= first + high:
        gaps = [t - a for t, a in zip(times, arrivals, strict=True)]
        placed = list(times)  # the time each event is partitioned by
        for i in [i for i, gap in enumerate(gaps) if not low <= gap <= high]:
            arrival = arrivals[i]
            if arrival >= 0:  # no arrival known: its own hour
                moved.setdefault((tag, times[i] // 3_600_000), (tag, arrival // 3_600_000))
                placed[i] = arrival
        if moved:
            earliest, latest = min(placed), max(placed)
        times = placed
    hours: list[int] | None
    if earliest // 3_600_000 == latest // 3_600_000:
        hours = None  # all in one
        distinct: dict[int, None] = {earliest // 3_600_000: None}
    else:
        hours = [t // 3_600_000 for t in times]
        distinct = dict.fromkeys(hours)
    if limit is not None:
        new = [h for h in distinct if (tag, h) not in written]
        if len(new) > limit - len(written):
            return None  # some would go elsewhere: `_group` decides where
    if hours is None or len(distinct) == 1:
        return {(tag, next(iter(distinct))): list(events)}, moved
    groups: dict[tuple[str, int], list[LogEvent]] = {(tag, h): [] for h in distinct}
    for ev, h in zip(events, hours, strict=True):
        groups[(tag, h)].append(ev)
    return groups, moved


def _group(
    events: Iterable[LogEvent],
    written: Collection[tuple[str, int]] = (),
    limit: int | None = None,
) -> tuple[dict[tuple[str, int], list[LogEvent]], dict[tuple[str, int], tuple[str, int]]]:
    """`group`, event by event."""
    groups: dict[tuple[str, int], list[LogEvent]] = {}
    moved: dict[tuple[str, int], tuple[str, int]] = {}  # own (tag, hour) -> partition
    limited: dict[tuple[str, int], tuple[str, int]] = {}  # past the limit -> partition
    first: dict[str, tuple[str, int]] = {}
    for k in written:
        first.setdefault(k[0], k)
    overall = next(iter(written), None)
    room = None if limit is None else limit - len(written)
    for ev in events:
        t, a = ev.time, ev.arrival
        if a >= 0 and not a - PAST_MS <= t <= a + FUTURE_MS:
            # Its own clock is far from its arrival (1999, 2300, or one of 5,000 hours):
            # archived under the arrival hour, where Athena's projection finds it.
            t = a
            moved.setdefault((ev.tag, ev.time // 3_600_000), (ev.tag, a // 3_600_000))
        k = (ev.tag, t // 3_600_000)
        g = groups.get(k)
        if g is not None:
            g.append(ev)
            continue
        if room is not None and k not in written:
            target = limited.get(k)
            if target is None and room > 0:
                room -= 1
                first.setdefault(k[0], k)
                overall = overall or k
            elif target is None:
                target = limited[k] = first.get(k[0]) or overall or k
            if target is not None:
                k = target
                g = groups.get(k)
                if g is not None:
                    g.append(ev)
                    continue
        groups[k] = [ev]
    for k, target in limited.items():
        moved[k] = target
    return groups, moved


def encode_lines(
    events: list[LogEvent], rules_version: str = ""
) -> tuple[bytes, list[tuple[LogEvent, str]]]:
    """JSON lines for events of one tag; events that cannot be encoded are returned.

    `rules_version` (the rules that routed these events) ends each line when set.
    Each line is written in one pass from pieces: `{"tag":…,"time":"<second>` encoded
    once per second, `.mmmZ","record":` from a table, orjson of the record, the source
    (with account and region) once per source object, orjson of the id, the end.
    """
    dumps = orjson.dumps
    end = b',"rules_version":' + dumps(rules_version) + b"}\n" if rules_version else b"}\n"
    tag_part = b'{"tag":' + dumps(events[0].tag) + b',"time":"'
    millis = _MILLIS_RECORD
    sources: dict[int, bytes] = {}  # id(source) -> its encoded piece
    last_source: Any = None
    src = b""
    last_second = None
    head = b""
    out: list[bytes] = []
    append = out.append
    bad: list[tuple[LogEvent, str]] = []
    for ev in events:
        # One event's failure costs that event only: orjson writes 254 levels of nesting
        # but reads 1,024, and refuses integers beyond 64 bits and non-string keys (a
        # transform's work); a time the calendar cannot format raises here too. The
        # event is dead-lettered with the reason (documented in the README); the rest of
        # the batch is archived.
        try:
            if ev.source is not last_source:
                last_source = s = ev.source
                src = sources.get(id(s), b"")
            if not src:
                # Account and region also at the top level: the Glue table's columns (its
                # JSON SerDe maps top-level keys only). Once per source, like the source.
                src = sources[id(s)] = b"".join(
                    (
                        b',"source":',
                        dumps(s),
                        b',"account":',
                        dumps(s.get("account")),
                        b',"region":',
                        dumps(s.get("region")),
                        b',"id":',
                    )
                )
            second, ms = divmod(ev.time, 1000)
            if second != last_second:
                head = tag_part + format_time(second * 1000)[:-5].encode()
                last_second = second
            append(b"".join((head, millis[ms], dumps(ev.record), src, dumps(ev.id), end)))
        except UNENCODABLE as e:
            bad.append((ev, f"archive: record not serialisable: {_brief(e)}"))
    return b"".join(out), bad


# `.mmmZ","record":` for every millisecond: the line's piece between second and record.
_MILLIS_RECORD = tuple(f'.{i:03d}Z","record":'.encode() for i in range(1000))


_deflate: Any = zlib
_MAX_LEVEL = 9
try:
    # ISA-L writes the same gzip format ~4x faster than zlib level 1 on log lines (1.46 ->
    # 0.32 µs/event measured by `make bench`'s stage table) and a little smaller.
    from isal import isal_zlib

    _deflate, _MAX_LEVEL = isal_zlib, 3  # ISA-L has levels 0-3
except ImportError:  # a platform without the wheel: the standard library, same format
    pass


def gzip_bytes(body: bytes, level: int) -> bytes:
    return bytes(_deflate.compress(body, min(level, _MAX_LEVEL), 31))  # 31: gzip container


def build_objects(
    events: list[LogEvent],
    invocation_id: str,
    level: int,
    rules_version: str = "",
    written: Collection[tuple[str, int]] = (),
    limit: int | None = None,
) -> tuple[list[ArchiveObject], list[tuple[LogEvent, str]]]:
    objects: list[ArchiveObject] = []
    bad_all: list[tuple[LogEvent, str]] = []
    groups, moved = group(events, written, limit)
    # The suffix counts objects within one partition only, so an object's name does not
    # depend on which other tags and hours the batch held: a retry or replay of the same
    # events under the same id rewrites the same objects even if a rule now drops a group.
    per_partition: dict[str, int] = {}
    for (tag, hour), evs in sorted(groups.items(), key=lambda kv: kv[0]):
        body, bad = encode_lines(evs, rules_version)
        if bad:
            bad_ids = {id(e) for e, _ in bad}
            evs = [e for e in evs if id(e) not in bad_ids]
            bad_all.extend(bad)
        if not evs:
            continue
        partition = partition_key(tag, hour * 3_600_000)
        n = per_partition[partition] = per_partition.get(partition, -1) + 1
        key = f"{partition}/{invocation_id}-{n}.jsonl.gz"
        also = [k for k, target in moved.items() if target == (tag, hour)]
        objects.append(ArchiveObject(key, gzip_bytes(body, level), evs, (tag, hour), also))
    return objects, bad_all


class Archiver:
    def __init__(self, s3: Any, bucket: str, gzip_level: int) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.gzip_level = gzip_level

    def write(
        self,
        events: list[LogEvent],
        invocation_id: str,
        rules_version: str = "",
        written: Collection[tuple[str, int]] = (),
    ) -> ArchiveResult:
        """Archive `events`; `written`: the (tag, hour) partitions this invocation wrote
        before (in earlier slices), which count against its partition limit."""
        result = ArchiveResult()
        if not events:
            return result
        objects, bad = build_objects(
            events, invocation_id, self.gzip_level, rules_version, written, budget().partitions
        )
        for ev, reason in bad:
            result.failed.append(([ev], reason))
        put = prepared_put(self.s3).put
        for obj in objects:
            try:
                put(self.bucket, obj.key, obj.body, "application/x-ndjson", "gzip")
            except Exception as e:  # botocore already retried transient errors
                result.failed.append((obj.events, f"archive: put_object {obj.key}: {_brief(e)}"))
            else:
                result.archived += sum([ev.count for ev in obj.events])
                result.keys.append(obj.key)
                result.by_group[obj.group] = obj.key
                result.partitions.add(obj.group)
                for k in obj.moved_in:
                    result.by_group[k] = obj.key
        return result


def _brief(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:500]


def read_lines(body: bytes) -> list[dict[str, Any]]:
    """Decode an archive object (for the CLI, the demo and tests)."""
    return [orjson.loads(line) for line in zlib.decompress(body, 47).splitlines() if line]


class ArchiveIndex:
    """Which events the archive holds, by event id, read partition by partition on first
    use (replay checks before it writes, so what a retry archived is not archived twice).
    Reads every object of a partition the events fall in: a cost for replay tools, never
    for the functions."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self._ids: dict[str, set[str]] = {}

    def contains(self, ev: LogEvent) -> bool:
        prefix = partition_key(ev.tag, ev.time) + "/"
        ids = self._ids.get(prefix)
        if ids is None:
            ids = self._ids[prefix] = self._read(prefix)
        return ev.id in ids

    def _read(self, prefix: str) -> set[str]:
        ids: set[str] = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                ids.update(str(line.get("id", "")) for line in read_lines(body))
        return ids
