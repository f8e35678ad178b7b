"""An event's own clock cannot steer the archive: a payload whose lines each claim another
hour, or a time decades away, costs a bounded number of archive partitions (one
PutObject each), lands where Athena's projection finds it (the arrival hour when its
own time is outside a sane window around arrival) and keeps its own time in the record.
Each case goes through the real handler (CloudWatch payload, Kinesis record, S3 object).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator

import orjson
import pytest

from chalicelib.budget import budget
from chalicelib.event import format_time
from chalicelib.handlers import handle_cloudwatch_logs, handle_kinesis_records, handle_s3_objects
from chalicelib.normalise import FUTURE_MS, PAST_MS

from .harness import Account, Outcome, load_make, mocked_account

make = load_make()
HOUR = 3_600_000
T0 = make.T0  # 2026-11-26T10:07:01Z: the arrival time of every case below
LINES = 5_002


def spread(i: int) -> int:
    """Line i's own time: a different hour per line, half before and half after T0."""
    return T0 + (i - LINES // 2) * HOUR


def near(i: int) -> int:
    """Line i's own time: a different hour per line, all inside the sane window."""
    return T0 - (i % (PAST_MS // HOUR - 1)) * HOUR


def epoch_far(i: int) -> int:
    """Line i's own time: far away (before 1980 or after 2200), a different hour each."""
    return (i * HOUR) if i % 2 else 7_258_118_400_000 + i * HOUR


def lines(when: Callable[[int], int]) -> list[str]:
    return [
        orjson.dumps({"time": format_time(when(i)), "message": f"line {i}"}).decode()
        for i in range(LINES)
    ]


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        acct.s3.create_bucket(Bucket=make.S3_BUCKET)
        acct.sqs.create_queue(QueueName=make.OBJECTS_QUEUE)
        yield acct


def via_cloudwatch(account: Account, texts: list[str]) -> Outcome:
    doc = make.cloudwatch_doc(
        events=[{"id": str(i), "timestamp": T0, "message": m} for i, m in enumerate(texts)]
    )
    event = make.awslogs(gzip.compress(orjson.dumps(doc), mtime=0))
    return account.run(handle_cloudwatch_logs, event)


def via_kinesis(account: Account, texts: list[str]) -> Outcome:
    rec = make.kinesis_record("\n".join(texts).encode(), 1)
    rec["kinesis"]["approximateArrivalTimestamp"] = T0 / 1000
    return account.run(handle_kinesis_records, {"Records": [rec]})


def via_s3(account: Account, texts: list[str]) -> Outcome:
    key = f"app/hours-{len(account.keys(''))}.log"
    body = ("\n".join(texts) + "\n").encode()
    etag = account.s3.put_object(Bucket=make.S3_BUCKET, Key=key, Body=body)["ETag"].strip('"')
    arrival = account.s3.head_object(Bucket=make.S3_BUCKET, Key=key)["LastModified"]
    global ARRIVAL_S3
    ARRIVAL_S3 = int(arrival.timestamp() * 1000)
    return account.run(
        handle_s3_objects, make.sqs_event([make.s3_notification(key, etag, len(body))])
    )


ARRIVAL_S3 = 0
SOURCES = {"cloudwatch": via_cloudwatch, "kinesis": via_kinesis, "s3": via_s3}
CLOCKS = {"5,002 hours around arrival": spread, "decades away": epoch_far, "inside": near}


@pytest.mark.parametrize("clock", list(CLOCKS))
@pytest.mark.parametrize("source", list(SOURCES))
def test_lines_each_in_another_hour_cost_bounded_partitions(
    account: Account, source: str, clock: str
) -> None:
    """5,002 lines each claiming a different hour are all archived in at most the
    budget's number of partitions; a line whose own time is outside the sane window
    around arrival is archived under the arrival hour, its own time kept in its
    envelope and record."""
    when = CLOCKS[clock]
    got = SOURCES[source](account, lines(when))
    arrival = ARRIVAL_S3 if source == "s3" else T0
    assert got.balanced() and got.ledger == (LINES, LINES, 0, 0)
    partitions = {k.rsplit("/", 1)[0] for k in got.keys}
    assert len(partitions) <= budget().partitions
    # A later slice (an S3 object's next chunk of lines) writes its own object into a
    # partition already open: objects stay within the partitions' count per slice.
    assert len(got.keys) <= 2 * budget().partitions
    by_line = {int(x["record"]["message"].split()[1]): x for x in got.lines}
    assert sorted(by_line) == list(range(LINES))
    allowed = {arrival // HOUR}
    for i, x in by_line.items():
        own = when(i)
        assert x["record"]["time"] == format_time(own)  # as written
        assert x["time"] == format_time(own)  # the envelope keeps the event's own time
        if arrival - PAST_MS <= own <= arrival + FUTURE_MS:
            allowed.add(own // HOUR)
    # Every object is in the arrival hour or in a line's own hour inside the window:
    # never in 1970, 2200 or one of thousands of hours an hour each.
    hours = {hour_of(k) for k in got.keys}
    assert hours <= allowed
    if any(not arrival - PAST_MS <= when(i) <= arrival + FUTURE_MS for i in range(LINES)):
        assert arrival // HOUR in hours


def hour_of(key: str) -> int:
    """The hour since the epoch of an archive key's `dt=.../hour=...` partition."""
    from datetime import UTC, datetime

    dt = key.split("/dt=")[1].split("/")[0]
    hour = int(key.split("/hour=")[1].split("/")[0])
    day = datetime.fromisoformat(dt).replace(tzinfo=UTC)
    return int(day.timestamp()) // 3600 + hour


def test_partition_limit_keeps_every_hour_inside_the_window_findable(account: Account) -> None:
    """More distinct hours inside the window than the partition limit: exactly the
    limit's number of partitions are written and every event is archived with its
    own time."""
    got = via_kinesis(account, lines(near))
    own = {x["time"][:13] for x in got.lines}
    assert len(own) > budget().partitions  # more distinct hours than partitions
    assert len({k.rsplit("/", 1)[0] for k in got.keys}) == budget().partitions
    assert got.ledger == (LINES, LINES, 0, 0)
