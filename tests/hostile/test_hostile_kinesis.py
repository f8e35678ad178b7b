"""kinesis_records against hostile input: each case of tests/data/hostile/kinesis_records.json
as one batch through the real handler over moto, read back from the archive and the DLQ.

A record that cannot be decoded is dead-lettered with its sequence number and its bytes,
and counts as handled: no case may leave a batch item failure (that would block the
shard), and every invocation's ledger balances.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.handlers import handle_kinesis_records

from .harness import Account, Outcome, load_make, mocked_account

make = load_make()
CASES = make.cases("kinesis_records")
DEFAULT_TAG = f"kinesis.{make.KINESIS_STREAM}"


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        yield acct


@pytest.fixture(scope="module")
def outcomes(account: Account) -> dict[str, tuple[Any, Outcome]]:
    """Each case's batch, invoked once: case id -> (the event sent, what it left)."""
    out = {}
    for case in CASES:
        event = make.kinesis_event(case)
        out[case["id"]] = (event, account.run(handle_kinesis_records, event))
    return out


def sequence(event: Any, index: int | None) -> str:
    if index is None:
        return ""
    return str(event["Records"][index - 1]["kinesis"]["sequenceNumber"])


def canonical(items: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(i, option=orjson.OPT_SORT_KEYS) for i in items)


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_kinesis_case(case: dict[str, Any], outcomes: dict[str, Any]) -> None:
    """Each hostile batch ends as its case says: events archived with the right tag and
    record, undecodable records dead-lettered with stage, sequence number and bytes, no
    batch item failure, ledger balanced."""
    event, got = outcomes[case["id"]]
    want = case["expect"]
    assert got.result == {"batchItemFailures": []}
    assert got.balanced(), [led.as_dict() for led in got.ledgers]
    assert list(got.ledger) == want["ledger"]
    if "dead_letter_stages" in want:
        assert [m["reason"].split(":")[0] for m in got.dead_letters] == want["dead_letter_stages"]
    if want.get("whole_event"):
        (msg,) = got.dead_letters
        assert base64.b64decode(msg["raw"]) == orjson.dumps(event)
    specs = want.get("dead_letters", [])
    if "dead_letters" in want:
        assert len(got.dead_letters) == len(specs), got.dead_letters
    for msg, spec in zip(got.dead_letters, specs, strict=False):
        assert msg["stage"] == "decode" and msg["reason"].startswith(f"{spec['stage']}: ")
        assert spec.get("reason", "") in msg["reason"], msg["reason"]
        if "record" in spec:
            assert msg["origin"]["sequence"] == sequence(event, spec["record"])
        if spec.get("record"):
            rec = event["Records"][spec["record"] - 1]
            assert base64.b64decode(msg["raw"]) == base64.b64decode(rec["kinesis"]["data"])
        if "raw_file" in spec:
            assert base64.b64decode(msg["raw"]) == make.data({"file": spec["raw_file"]})
    if "dead_letters" not in want and "dead_letter_stages" not in want:
        assert got.dead_letters == []
    if "archived" in want:
        got_items = [{"tag": line["tag"], "record": line["record"]} for line in got.lines]
        assert canonical(got_items) == canonical(want["archived"])
    assert len(got.lines) == want["ledger"][1]
    if "all_tag" in want:
        assert {line["tag"] for line in got.lines} == {want["all_tag"]}
    if want.get("record_keeps_tag"):
        assert all("tag" in line["record"] for line in got.lines)
    if "key_parts" in want:
        assert [k.count("/") + 1 for k in got.keys] == [want["key_parts"]] * len(got.keys)
    if "fields" in want:
        (line,) = got.lines
        for key, value in want["fields"].items():
            assert line["record"][key] == value, key
    if "message_length" in want:
        (line,) = got.lines
        assert len(line["record"]["message"]) == want["message_length"]
    if "time" in want:
        (line,) = got.lines
        assert line["time"] == want["time"]
    if "source_kind" in want:
        assert {line["source"]["kind"] for line in got.lines} == {want["source_kind"]}
    if "distinct_ids" in want:
        assert len({line["id"] for line in got.lines}) == want["distinct_ids"]
    if "dropped_by" in want:
        assert dict(got.ledgers[0].dropped_by) == want["dropped_by"]


def test_every_default_tagged_event_names_the_stream(outcomes: dict[str, Any]) -> None:
    """Across the corpus an archived Kinesis event is tagged by its record's own usable tag,
    by the CloudWatch log group it came from, or by the stream: never by anything else."""
    tags = {line["tag"] for _, got in outcomes.values() for line in got.lines}
    assert tags <= {DEFAULT_TAG, "app.web", "aws.lambda.hostile"}
