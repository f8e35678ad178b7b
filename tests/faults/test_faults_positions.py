"""Kinesis retries whose batch is not the batch that failed: Lambda retries from the first
failed record (later ones included), bisects a batch that crashed the function, and a
batching window or new records may add records at the end. Whatever the composition, each
event is archived once (positions per shard) and alerted once (dedupe by event id)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.budget import Budget
from chalicelib.budget import budget as current_budget
from chalicelib.handlers import handle_kinesis_records
from chalicelib.ingest.kinesis import ingest_batch
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Pipeline
from chalicelib.state import Positions

from .inject import Killed, kill_before
from .payloads import RULES, SHARD, kinesis_batch, kinesis_record, sequence, token
from .readback import Inputs

pytestmark = pytest.mark.faults


def recs(event: dict[str, Any], start: int, stop: int | None = None) -> dict[str, Any]:
    """Records [start, stop) of a batch, as Lambda sends a retry or a bisected half."""
    return {"Records": event["Records"][start:stop]}


def failed(answer: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


def fail_whole_batch(
    runtime: Any, faults: Any, slack: Any, event: dict[str, Any], ctx: Any
) -> None:
    """The batch is archived, its alert fails and cannot be dead-lettered: every record goes
    back to Lambda, which retries (the archive objects already written)."""
    slack.fail_next(status=500, count=3)
    faults.down("sqs", "SendMessage")
    assert len(failed(handle_kinesis_records(event, ctx, runtime))) == len(event["Records"])
    faults.clear()


def test_retry_with_new_records_appended_archives_each_event_once(
    runtime, faults, slack, kinesis_ctx, apply_rules, settle, make_runtime
):
    """The retry of a failed 2-record batch also carries a record that arrived since (a
    batching window): the two archived already are not written again, the new one is, and
    the alert goes out once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oao")
    fail_whole_batch(runtime, faults, slack, recs(event, 0, 2), kinesis_ctx("first"))
    retry = handle_kinesis_records(event, kinesis_ctx("retry-1"), make_runtime())
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.archived == 3 and figures.alerted == {"evt-0002": 1}


def test_bisected_halves_of_an_archived_batch_archive_nothing_twice(
    runtime, faults, slack, kinesis_ctx, apply_rules, settle, make_runtime
):
    """A batch archived before it failed comes back as two halves (bisect-on-error): neither
    half writes its records again, and the alert in the first half is sent once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oaoo")
    fail_whole_batch(runtime, faults, slack, event, kinesis_ctx("first"))
    for n, half in enumerate((recs(event, 0, 2), recs(event, 2))):
        answer = handle_kinesis_records(half, kinesis_ctx(f"half-{n}"), make_runtime())
        assert answer == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.archived == 4 and figures.alerted == {"evt-0002": 1}


def test_killed_before_the_position_is_written_bisected_retry_archives_once(
    runtime, kinesis_ctx, apply_rules, settle, make_runtime, monkeypatch
):
    """Killed after the archive write but before the position moved: the halves Lambda sends
    next start where the position is, so the first half rewrites the objects the killed
    attempt wrote and the second half adds the rest: each event once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oaoao")
    kill_before(monkeypatch, Positions, "advance")
    with pytest.raises(Killed):
        handle_kinesis_records(event, kinesis_ctx("first"), runtime)
    for n, half in enumerate((recs(event, 0, 2), recs(event, 2))):
        answer = handle_kinesis_records(half, kinesis_ctx(f"half-{n}"), make_runtime())
        assert answer == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.archived == 5


def test_retry_from_a_poison_record_plus_new_records_dead_letters_it_once(
    runtime, faults, kinesis_ctx, apply_rules, settle, make_runtime
):
    """A poison record the queue could not take is retried with the records after it and
    two new ones: the poison record is dead-lettered once, each event archived once."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oxooao")
    faults.down("sqs", "SendMessage")
    first = handle_kinesis_records(recs(event, 0, 4), kinesis_ctx("first"), runtime)
    assert failed(first)[0] == event["Records"][1]["kinesis"]["sequenceNumber"]
    faults.clear()
    retry = handle_kinesis_records(recs(event, 1), kinesis_ctx("retry-1"), make_runtime())
    assert retry == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dead_lettered) == (5, 1)


def test_same_batch_delivered_twice_after_success_archives_once(
    runtime, kinesis_ctx, apply_rules, settle, make_runtime
):
    """A batch delivered again after it succeeded (the response was lost) with one record
    more: the position says what is archived, so only the new record is written."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("ooho")
    assert handle_kinesis_records(recs(event, 0, 3), kinesis_ctx("a"), runtime) == {
        "batchItemFailures": []
    }
    again = handle_kinesis_records(event, kinesis_ctx("b"), make_runtime())
    assert again == {"batchItemFailures": []}
    figures = settle(inputs)
    assert (figures.archived, figures.dropped) == (3, 1)


def test_a_concurrent_batch_of_the_shard_is_reported(
    runtime, kinesis_ctx, apply_rules, settle, monkeypatch
):
    """A later batch of the same shard moving the position while this one was archiving can
    only happen with batches of one shard running concurrently (ParallelizationFactor above
    1, which the template pins to 1): the batch is archived and the conflict reported."""
    apply_rules(RULES)
    event, inputs = kinesis_batch("oo")
    later = kinesis_batch("o", first=20)[0]["Records"][0]["kinesis"]["sequenceNumber"]
    original = Positions.advance

    def concurrent(self: Positions, stream: str, shard: str, seq: str) -> bool:
        original(self, stream, shard, later)  # the other batch finished first
        return original(self, stream, shard, seq)

    monkeypatch.setattr(Positions, "advance", concurrent)
    out = ingest_batch(Pipeline(runtime), event, Invocation("concurrent"))
    assert out.response.as_dict() == {"batchItemFailures": []}
    assert out.extra["position_conflict"] is True
    assert any("ParallelizationFactor must be 1" in e for e in out.ledger.errors)
    settle(inputs)


def test_records_spanning_several_slices_move_the_position_without_a_conflict(
    runtime, kinesis_ctx, apply_rules, settle, make_runtime, monkeypatch
):
    """Records of several lines each, processed in slices smaller than one record (a 1 MiB
    record can hold millions of lines): the position moves only when a record is complete,
    never twice to the same place, so no conflict is reported; the batch delivered again
    archives nothing twice."""
    b = current_budget()
    small = Budget(**{**{f: getattr(b, f) for f in Budget.__slots__}, "slice_events": 2})
    monkeypatch.setattr("chalicelib.pipeline.budget", lambda: small)
    apply_rules(RULES)
    records, inputs = [], Inputs()
    for n in (1, 2, 3):
        toks = [token(10 * n + i) for i in range(3)]
        records.append(kinesis_record(n, "\n".join(f"order placed {t}" for t in toks).encode()))
        for i, tok in enumerate(toks):
            inputs.units[f"sluice-fan-in:{SHARD}:{sequence(n)}:{i}"] = 1
            inputs.tokens[tok] = f"sluice-fan-in:{SHARD}:{sequence(n)}:{i}"
    event = {"Records": records}
    out = ingest_batch(Pipeline(runtime), event, Invocation("slices"))
    assert out.response.as_dict() == {"batchItemFailures": []}
    assert "position_conflict" not in out.extra, out.ledger.errors
    assert out.ledger.errors == []
    again = handle_kinesis_records(event, kinesis_ctx("again"), make_runtime())
    assert again == {"batchItemFailures": []}
    figures = settle(inputs)
    assert figures.archived == 9
