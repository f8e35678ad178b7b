"""cloudwatch_logs against hostile input: every case of the corpus through the real handler
over moto, read back from the archive and the dead-letter queue.

Cases are data (tests/data/hostile/cloudwatch_*.json): each says what it is and what must
follow. Every invocation's ledger balances (received == archived + dropped +
dead_lettered) and nothing is lost.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chalicelib.budget import budget
from chalicelib.handlers import handle_cloudwatch_logs
from chalicelib.parsers import MAX_DEPTH, MAX_FIELDS, MAX_MESSAGE_CHARS

from .harness import Account, Outcome, load_make, mocked_account

make = load_make()
PAYLOADS = make.cases("cloudwatch_payloads")
MESSAGES = make.cases("cloudwatch_messages")
TAG = "aws.lambda.hostile"
T0_TEXT = "2026-11-26T10:07:01.000Z"


def params(cases: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(c, id=c["id"]) for c in cases]


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        yield acct


@pytest.fixture(scope="module")
def payload_outcomes(account: Account) -> dict[str, tuple[Any, Outcome]]:
    """Each payload case, invoked once: case id -> (the event sent, what it left)."""
    out = {}
    for case in PAYLOADS:
        event = make.event(case["event"])
        out[case["id"]] = (event, account.run(handle_cloudwatch_logs, event))
    return out


@pytest.fixture(scope="module")
def message_outcomes(account: Account) -> dict[str, tuple[str, Outcome]]:
    """Each message case alone in its own payload: case id -> (message, what it left)."""
    out = {}
    for case in MESSAGES:
        message = make.text(case["message"])
        event = make.cloudwatch_event(messages=[message])
        out[case["id"]] = (message, account.run(handle_cloudwatch_logs, event))
    return out


def depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    return 0


# ---------------------------------------------------------------- whole payloads
@pytest.mark.parametrize("case", params(PAYLOADS))
def test_payload_case(case: dict[str, Any], payload_outcomes: dict[str, Any]) -> None:
    """Each malformed or unusual payload ends as its case says: dead-lettered whole with the
    stage and reason, the raw trigger event kept byte for byte, or routed; ledger balanced."""
    event, got = payload_outcomes[case["id"]]
    want = case["expect"]
    assert got.balanced(), got.ledgers
    if "dead_letter" in want:
        stage = want["dead_letter"]
        assert got.ledger == (1, 0, 0, 1)
        assert got.ledgers[0].dead_letter_reasons == {f"decode:{stage}": 1}
        assert got.lines == []
        (msg,) = got.dead_letters
        assert msg["stage"] == "decode" and msg["function"] == "sluice-dev-hostile"
        assert msg["reason"].startswith(f"{stage}: "), msg["reason"]
        assert want.get("reason", "") in msg["reason"]
        assert base64.b64decode(msg["raw"]) == orjson.dumps(event), "raw event not kept whole"
        assert got.result["decode_error"] == msg["reason"]
        return
    assert got.dead_letters == []
    if want.get("control"):
        assert got.ledger == (0, 0, 0, 0) and got.result["control_message"] is True
        assert got.lines == []
        return
    if "ledger" in want:
        assert list(got.ledger) == want["ledger"]
    if "archived_lines" in want:
        assert len(got.lines) == want["archived_lines"]
    if "dropped_by" in want:
        assert dict(got.ledgers[0].dropped_by) == want["dropped_by"]
    if "tag" in want:
        assert {line["tag"] for line in got.lines} == {want["tag"]}
    if "key_parts" in want:
        assert [k.count("/") + 1 for k in got.keys] == [want["key_parts"]] * len(got.keys)
    if "ids" in want:
        assert [line["id"] for line in got.lines] == want["ids"]
    if "multiline_total" in want:
        counts = [line["record"].get("multiline_count", 1) for line in got.lines]
        assert sum(counts) == want["multiline_total"]
        assert len(got.lines) < want["multiline_total"], "the trace was not joined"
        assert all(len(line["record"]["message"]) <= MAX_MESSAGE_CHARS for line in got.lines)


# ---------------------------------------------------------------- one message each
@pytest.mark.parametrize("case", params(MESSAGES))
def test_message_case(case: dict[str, Any], message_outcomes: dict[str, Any]) -> None:
    """Each hostile message becomes one archived event whose record is what its case says,
    inside an envelope (tag, source, id) the message cannot overwrite; ledger balanced."""
    message, got = message_outcomes[case["id"]]
    want = case["expect"]
    assert got.balanced() and got.ledger == (1, 1, 0, 0), got.ledgers
    assert got.dead_letters == []
    (line,) = got.lines
    assert list(line) == ["tag", "time", "record", "source", "account", "region", "id"]
    assert line["tag"] == TAG
    assert line["source"]["kind"] == "cloudwatch"
    assert line["source"]["log_group"] == make.GROUP
    assert line["id"] == f"3791{0:052d}"
    assert line["time"] == want.get("time", T0_TEXT)
    record = line["record"]
    if "record" in want:
        assert record == want["record"]
    for key, value in want.get("fields", {}).items():
        assert record[key] == value, key
    for key in want.get("absent", []):
        assert key not in record, key
    if "parse_error" in want:
        if want["parse_error"] is None:
            assert "parse_error" not in record
        else:
            assert record["parse_error"].startswith(want["parse_error"]), record["parse_error"]
    if want.get("message_is_input"):
        assert record["message"] == message
    if "message_length" in want:
        assert len(record["message"]) == want["message_length"]
    if want.get("message_prefix_of_input"):
        assert message.startswith(record["message"])
    if "depth" in want:
        assert depth(record) == want["depth"] <= MAX_DEPTH
    if "field_count" in want:
        assert len(record) == want["field_count"] <= MAX_FIELDS


# ---------------------------------------------------------------- a million events
MILLION = 1_000_000


def test_a_million_tiny_events_in_one_payload_are_all_archived(account: Account) -> None:
    """A subscription payload of 1,000,000 two-character events (56 MB of JSON in a 6 MB
    gzip, under the 64 MiB decode cap) is decoded, archived and counted without an error,
    one archive object per pipeline slice."""
    raw = make.tiny_events(MILLION)
    assert len(raw) < 64 * 1024 * 1024
    event = make.awslogs(gzip.compress(raw, 1, mtime=0))
    del raw
    got = account.run(handle_cloudwatch_logs, event, parse=False)
    assert got.balanced() and got.ledger == (MILLION, MILLION, 0, 0)
    assert got.dead_letters == []
    assert len(got.keys) == -(-MILLION // budget().slice_events)
    assert got.line_count == MILLION
    # The first and last lines of each slice's object were read back: the payload's first
    # and last events are among them, intact.
    ends = {x["id"]: x["record"] for x in got.lines}
    assert ends["0"] == {"message": "e0"}
    assert ends[str(MILLION - 1)] == {"message": "e9"}


# ---------------------------------------------------------------- the skeleton's samples
def test_every_malformed_sample_is_a_hostile_case() -> None:
    """Each malformed trigger event in events/malformed/ is a case of the hostile corpus
    (CloudWatch payloads, Kinesis records or S3 notifications), so a new one is not
    forgotten here."""
    root = make.HERE.parents[2] / "events" / "malformed"
    samples = {f"malformed/{p.stem}" for p in root.glob("*.json")}
    used = {
        c["event"]["sample"]
        for name in ("cloudwatch_payloads", "kinesis_records", "s3_notifications")
        for c in make.cases(name)
        if "sample" in c.get("event", {})
    }
    assert samples and samples <= used, sorted(samples - used)
