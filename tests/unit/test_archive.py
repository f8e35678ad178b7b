"""chalicelib.actions.archive: gzip JSON lines in S3, one object per (tag, hour) per invocation."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.actions.archive import Archiver, build_objects, partition_key, read_lines

from .factories import SOURCE, T0, log_event, log_events

INV = "c0ffee00-0000-4000-8000-000000000001"
HOUR = 3_600_000
KEY_RE = re.compile(
    r"archive/tag=(?P<tag>[^/]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    + re.escape(INV)
    + r"-(?P<n>\d+)\.jsonl\.gz"
)


@pytest.mark.parametrize(
    ("tag", "ms", "key"),
    [
        pytest.param(
            "aws.lambda.checkout-api",
            T0,
            "archive/tag=aws.lambda.checkout-api/dt=2026-11-26/hour=10",
            id="sample time",
        ),
        pytest.param("a", 0, "archive/tag=a/dt=1970-01-01/hour=00", id="epoch"),
        pytest.param(
            "a", 1798761599999, "archive/tag=a/dt=2026-12-31/hour=23", id="last ms of a year"
        ),
        pytest.param(
            "a", 1798761600000, "archive/tag=a/dt=2027-01-01/hour=00", id="first ms of a year"
        ),
        pytest.param("a", 3_599_999, "archive/tag=a/dt=1970-01-01/hour=00", id="last ms of hour"),
        pytest.param("b", -1, "archive/tag=b/dt=1969-12-31/hour=23", id="before the epoch"),
    ],
)
def test_partition_key_layout(tag, ms, key):
    """Partitions are `archive/tag=<tag>/dt=YYYY-MM-DD/hour=HH` in UTC (Athena/Glue-friendly)."""
    assert partition_key(tag, ms) == key


def test_one_object_per_tag_and_hour():
    """Events of two tags across an hour boundary make four objects, each holding its own events."""
    boundary = (T0 // HOUR + 1) * HOUR  # 11:00:00.000
    events = [
        log_event("a1", tag="app.a", time=boundary - 1, id="a1"),
        log_event("b1", tag="app.b", time=boundary - 1, id="b1"),
        log_event("a2", tag="app.a", time=boundary, id="a2"),
        log_event("a3", tag="app.a", time=boundary - 2, id="a3"),
        log_event("b2", tag="app.b", time=boundary + 5, id="b2"),
    ]
    objects, bad = build_objects(events, INV, 1)
    assert bad == []
    by_key = {o.key: [e.id for e in o.events] for o in objects}
    assert by_key == {
        f"archive/tag=app.a/dt=2026-11-26/hour=10/{INV}-0.jsonl.gz": ["a1", "a3"],
        f"archive/tag=app.a/dt=2026-11-26/hour=11/{INV}-0.jsonl.gz": ["a2"],
        f"archive/tag=app.b/dt=2026-11-26/hour=10/{INV}-0.jsonl.gz": ["b1"],
        f"archive/tag=app.b/dt=2026-11-26/hour=11/{INV}-0.jsonl.gz": ["b2"],
    }


def test_an_objects_key_does_not_depend_on_the_batchs_other_groups():
    """A group's key is the same whether or not the batch also held other tags or hours (a
    replay under the same id whose rules now drop one group rewrites the others in place)."""
    both = log_events(3, tag="app.a") + log_events(2, tag="app.b")
    only_b = log_events(2, tag="app.b")
    keys_both = {o.group[0]: o.key for o in build_objects(both, INV, 1)[0]}
    keys_b = {o.group[0]: o.key for o in build_objects(only_b, INV, 1)[0]}
    assert keys_b["app.b"] == keys_both["app.b"]


def test_keys_are_the_same_for_a_retried_invocation():
    """The same events under the same invocation id give the same keys (a retry overwrites)."""
    events = log_events(3) + log_events(2, tag="app.other")
    first = [o.key for o in build_objects(events, INV, 1)[0]]
    again = [o.key for o in build_objects(list(reversed(events)), INV, 1)[0]]
    assert first == again
    assert all(KEY_RE.fullmatch(k) for k in first)


def test_lines_have_exactly_the_envelope_keys_in_order():
    """Each line is one JSON object with keys tag, time, record, source, account, region, id,
    in that order."""
    ev = log_event("payment failed", time=T0 + 201, id="ev-1", user="alice", amount=42.5)
    (obj,), _ = build_objects([ev], INV, 1)
    raw = gzip.decompress(obj.body)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    line = json.loads(raw)  # dicts keep the order of the text
    assert list(line) == ["tag", "time", "record", "source", "account", "region", "id"]
    assert line == {
        "tag": "aws.lambda.checkout-api",
        "time": "2026-11-26T10:07:01.201Z",
        "record": {"message": "payment failed", "user": "alice", "amount": 42.5},
        "source": SOURCE,
        "account": SOURCE["account"],
        "region": SOURCE["region"],
        "id": "ev-1",
    }


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        pytest.param(T0, "2026-11-26T10:07:01.000Z", id="whole second"),
        pytest.param(T0 + 7, "2026-11-26T10:07:01.007Z", id="padded ms"),
        pytest.param(T0 + 999, "2026-11-26T10:07:01.999Z", id="last ms"),
    ],
)
def test_time_is_iso_utc_with_milliseconds(ms, text):
    """The line's time is ISO 8601 UTC with exactly three fraction digits and a Z."""
    (obj,), _ = build_objects([log_event(time=ms)], INV, 1)
    assert read_lines(obj.body)[0]["time"] == text


def test_text_survives_the_archive_exactly():
    """Unicode, quotes, control characters and a 256 KB message read back unchanged."""
    tricky = 'caf\u00e9 \u2603 "quoted" \\ back\tslash \x00\x1f \U0001f600 ' + "x" * (256 * 1024)
    (obj,), _ = build_objects([log_event(tricky)], INV, 1)
    assert read_lines(obj.body)[0]["record"]["message"] == tricky


@pytest.mark.parametrize("level", [0, 1, 9])
def test_body_is_gzip_at_any_level(level):
    """Any configured gzip level gives a standard gzip stream that `gzip` can read."""
    (obj,), _ = build_objects(log_events(50), INV, level)
    lines = gzip.decompress(obj.body).splitlines()
    assert [json.loads(x)["id"] for x in lines] == [f"ev-{i:06d}" for i in range(50)]


def test_unserialisable_record_is_returned_not_archived():
    """A record orjson cannot encode (an int beyond 64 bits) is set aside with a reason."""
    good = log_event("fine", id="good")
    bad = log_event("huge", id="bad", n=2**70)
    objects, failed = build_objects([good, bad], INV, 1)
    assert [e.id for o in objects for e in o.events] == ["good"]
    ((ev, reason),) = failed
    assert ev is bad
    assert reason.startswith("archive: record not serialisable")


def test_each_line_is_orjson_of_the_events_envelope():
    """Every line is byte-for-byte orjson of the event's envelope (tag, time, record,
    source, account, region, id, rules version) whatever the mix: seconds that change
    and repeat, times before 1970, sources alternating, unencodable events in between
    (set aside, the lines around them unchanged)."""
    import orjson

    from chalicelib.actions.archive import encode_lines
    from chalicelib.event import LogEvent

    other = {**SOURCE, "log_stream": "other", "account": "210987654321", "region": None}
    times = [T0, T0 + 1, T0 + 999, T0 + 1000, T0 + 1, -1, -1000, -1001, 0, 253402300799999]
    events = []
    for i, t in enumerate(times * 3):
        src = SOURCE if i % 3 else other
        rec: dict[str, object] = {"message": f"line {i}", "n": i}
        if i % 7 == 3:
            rec["huge"] = 2**70  # orjson refuses it: this event alone is set aside
        events.append(LogEvent("a.b", t, rec, src, f"id-{i}"))
    body, bad = encode_lines(events, "v7")
    kept = [ev for ev in events if all(ev is not b for b, _ in bad)]
    assert len(bad) == sum(1 for i in range(len(events)) if i % 7 == 3)
    lines = [orjson.dumps({**ev.envelope(), "rules_version": "v7"}) + b"\n" for ev in kept]
    expected = b"".join(lines)
    assert body == expected


# ---------------------------------------------------------------- Archiver on S3 (moto)
def test_archiver_writes_objects_to_s3(aws, archive):
    """Objects land in the bucket as gzip JSON lines with content type and encoding set."""
    events = log_events(3) + log_events(2, tag="app.other")
    result = Archiver(aws.s3, aws.bucket, 1).write(events, INV)
    assert result.archived == 5
    assert result.failed == []
    assert sorted(result.keys) == archive.keys()
    head = aws.s3.head_object(Bucket=aws.bucket, Key=result.keys[0])
    assert head["ContentType"] == "application/x-ndjson"
    assert head["ContentEncoding"] == "gzip"
    assert sorted(line["id"] for line in archive.lines()) == sorted(e.id for e in events)


def test_no_events_write_nothing(aws, archive):
    """An empty batch writes no object."""
    assert Archiver(aws.s3, aws.bucket, 1).write([], INV).archived == 0
    assert archive.keys() == []


def test_put_failure_returns_the_events_with_the_reason(aws):
    """When S3 refuses an object, its events come back as failed with the key and the error."""
    aws.s3.delete_bucket(Bucket=aws.bucket)
    events = log_events(4)
    result = Archiver(aws.s3, aws.bucket, 1).write(events, INV)
    assert result.archived == 0
    ((failed_events, reason),) = result.failed
    assert failed_events == events
    assert reason.startswith(
        f"archive: put_object archive/tag=aws.lambda.checkout-api/dt=2026-11-26/hour=10/{INV}-0"
    )
    assert "NoSuchBucket" in reason


def test_one_failed_object_does_not_stop_the_others(aws, archive):
    """A put failure for one (tag, hour) still writes the other objects."""

    class FailingForOneTag:
        def put_object(self, **kw):
            if "tag=app.broken" in kw["Key"]:
                raise ConnectionError("reset by peer")
            return aws.s3.put_object(**kw)

    events = log_events(3, tag="app.ok") + log_events(2, tag="app.broken")
    result = Archiver(FailingForOneTag(), aws.bucket, 1).write(events, INV)
    assert result.archived == 3
    ((failed_events, reason),) = result.failed
    assert [e.tag for e in failed_events] == ["app.broken", "app.broken"]
    assert "ConnectionError: reset by peer" in reason
    assert [k.split("/")[1] for k in archive.keys()] == ["tag=app.ok"]


def _arrived(events, arrival):
    for ev in events:
        ev.arrival = arrival
    return events


_NOW = T0 + 5 * 60_000  # arrival a few minutes after the events
GROUPINGS = [
    pytest.param(lambda: _arrived(log_events(10), _NOW), (), None, id="one tag, one hour"),
    pytest.param(lambda: _arrived(log_events(10), -1), (), None, id="no arrival"),
    pytest.param(
        lambda: _arrived(log_events(3, time=T0 - T0 % HOUR - 1), _NOW), (), None, id="two hours"
    ),
    pytest.param(
        lambda: _arrived([*log_events(2), log_event("x", tag="other")], _NOW),
        (),
        None,
        id="two tags",
    ),
    pytest.param(
        lambda: [*_arrived(log_events(2), _NOW), *_arrived([log_event("y")], -1)],
        (),
        None,
        id="one without arrival",
    ),
    pytest.param(
        lambda: _arrived(log_events(2), T0 + 30 * 86_400_000), (), None, id="far before arrival"
    ),
    pytest.param(lambda: _arrived(log_events(2), T0 - 3 * HOUR), (), None, id="far after arrival"),
    pytest.param(
        lambda: [*_arrived(log_events(2), _NOW), *_arrived([log_event("z")], T0 + 20 * 86_400_000)],
        (),
        None,
        id="arrivals that differ",
    ),
    pytest.param(
        lambda: _arrived(log_events(4), _NOW),
        [("aws.lambda.checkout-api", T0 // HOUR)],
        1,
        id="its partition written, the limit reached",
    ),
    pytest.param(
        lambda: _arrived(log_events(4), _NOW), [("other", 1)], 1, id="the limit reached elsewhere"
    ),
    pytest.param(lambda: _arrived(log_events(4), _NOW), [("other", 1)], 2, id="room for one"),
]


@pytest.mark.parametrize(("make", "written", "limit"), GROUPINGS)
def test_grouping_is_the_event_by_event_grouping(make, written, limit):
    """Events group into partitions (and moved hours) exactly as grouping them one event
    at a time does: one tag and hour, several, events far from their arrival, no
    arrival, partitions written before and the invocation's partition limit."""
    from chalicelib.actions.archive import _group, group

    events = make()
    assert group(events, written, limit) == _group(events, written, limit)


_DAY = 24 * HOUR
_offsets = st.one_of(
    st.integers(-2 * HOUR, 2 * HOUR),
    st.sampled_from([-40 * _DAY, -15 * _DAY, 3 * HOUR, 30 * _DAY, -T0 + 1000]),
)


def _edges(arrival: int) -> list[int]:
    """Times at the edges of an arrival's window (`normalise.PAST_MS` / `FUTURE_MS`)."""
    from chalicelib.normalise import FUTURE_MS, PAST_MS

    return [arrival - PAST_MS - 1, arrival - PAST_MS, arrival + FUTURE_MS, arrival + FUTURE_MS + 1]


@st.composite
def _batches(draw):
    """Events of one tag or a few, times near or far from arrivals that may differ or
    be unknown, partitions written before and a partition limit."""
    tags = draw(st.sampled_from([["app.a"], ["app.a"], ["app.a", "app.b"]]))
    arrival = T0 + draw(st.integers(0, HOUR))
    arrivals = [arrival, arrival, arrival + 20 * _DAY, -1]
    shared = draw(st.one_of(st.none(), st.sampled_from(arrivals)))  # one for all, a payload's
    events = []
    for i in range(draw(st.integers(1, 25))):
        own = shared if shared is not None else draw(st.sampled_from(arrivals))
        time = draw(st.one_of(_offsets.map(lambda d: T0 + d), st.sampled_from(_edges(own))))
        ev = log_event(f"m{i}", tag=draw(st.sampled_from(tags)), time=time)
        ev.arrival = own
        events.append(ev)
    hours = [T0 // HOUR + d for d in (-1, 0, 1)]
    written = draw(
        st.lists(
            st.tuples(st.sampled_from(["app.a", "app.b", "x"]), st.sampled_from(hours)),
            max_size=3,
            unique=True,
        )
    )
    limit = draw(st.one_of(st.none(), st.integers(0, 4)))
    return events, written, limit


@settings(max_examples=400, deadline=None)
@given(_batches())
def test_grouping_matches_the_event_by_event_grouping_in_order(batch):
    """For any batch, the partitions, their order, the events' order in each and the
    moved hours are those of grouping one event at a time."""
    from chalicelib.actions.archive import _group, group

    events, written, limit = batch
    groups, moved = group(events, written, limit)
    want_groups, want_moved = _group(events, written, limit)
    assert [(k, [id(e) for e in v]) for k, v in groups.items()] == [
        (k, [id(e) for e in v]) for k, v in want_groups.items()
    ]
    assert list(moved.items()) == list(want_moved.items())
