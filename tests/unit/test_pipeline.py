"""chalicelib.pipeline: routing through rules, then archive, actions, dead letters, ledger."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import ActionError
from chalicelib.invocation import Invocation
from chalicelib.pipeline import Pipeline, route
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_rules

from .factories import log_event, log_events

INV = Invocation(request_id="inv-0001", function_name="cloudwatch_logs", account="123456789012")


def rules(*items: dict[str, Any]) -> RuleSet:
    return RuleSet(load_rules({"rules": list(items)}))


SLACK = {"slack": {"channel": "#ops"}}
SNS = {"sns": {"topic": "ops-pager"}}


# ---------------------------------------------------------------- route (pure)
def test_no_rules_archive_everything():
    """With no rules every event is archived and nothing is dropped or delivered."""
    events = log_events(5)
    out = route(events, rules())
    assert out.archive == events
    assert (out.dropped, out.deliveries) == ({}, {})


def test_events_of_tags_no_rule_matches_are_archived():
    """Rules for other tags leave an event to the default: archived."""
    out = route(
        [log_event(tag="ecs.web")],
        rules({"id": "lambda", "match": {"tag": "aws.lambda.**"}, "actions": ["drop"]}),
    )
    assert [e.tag for e in out.archive] == ["ecs.web"]
    assert out.dropped == {}


def test_several_rules_match_one_event():
    """Every matching rule gets the event for its actions, in priority order; archived once."""
    ev = log_event("disk full", level="ERROR")
    out = route(
        [ev],
        rules(
            {
                "id": "pager",
                "priority": 20,
                "match": {"where": [{"field": "level", "equals": "ERROR"}]},
                "actions": [SNS],
            },
            {"id": "chat", "priority": 10, "actions": [SLACK, SNS]},
            {
                "id": "other",
                "match": {"where": [{"field": "level", "equals": "DEBUG"}]},
                "actions": [SLACK],
            },
        ),
    )
    assert list(out.deliveries) == [("chat", 0), ("chat", 1), ("pager", 0)]
    assert all(batch == [ev] for batch in out.deliveries.values())
    assert out.archive == [ev]


def test_drop_is_counted_by_rule_id():
    """Dropped events are not archived and are counted under the rule that dropped them."""
    events = [
        log_event("GET /healthz", path="/healthz", id="1"),
        log_event("GET /checkout", path="/checkout", id="2"),
        log_event("GET /healthz", path="/healthz", id="3"),
        log_event("debug noise", level="DEBUG", id="4"),
    ]
    out = route(
        events,
        rules(
            {
                "id": "health",
                "match": {"where": [{"field": "path", "equals": "/healthz"}]},
                "actions": ["drop"],
            },
            {
                "id": "debug",
                "match": {"where": [{"field": "level", "equals": "DEBUG"}]},
                "actions": ["drop"],
            },
        ),
    )
    assert out.dropped == {"health": 2, "debug": 1}
    assert [e.id for e in out.archive] == ["2"]


def test_a_dropping_rule_still_runs_its_own_actions():
    """`[slack, drop]` alerts on the event and then discards it."""
    ev = log_event("secret leaked")
    out = route([ev], rules({"id": "alert-and-drop", "actions": [SLACK, "drop"]}))
    assert out.deliveries == {("alert-and-drop", 0): [ev]}
    assert out.archive == []
    assert out.dropped == {"alert-and-drop": 1}


def test_drop_ends_evaluation():
    """No rule after a drop sees the event."""
    out = route(
        [log_event()],
        rules(
            {"id": "drop", "priority": 1, "actions": ["drop"]},
            {"id": "later", "priority": 2, "actions": [SLACK]},
        ),
    )
    assert out.deliveries == {}


def test_stop_ends_evaluation_but_keeps_the_event():
    """`stop: true` hides the event from later rules; it is still archived."""
    ev = log_event()
    out = route(
        [ev],
        rules(
            {"id": "first", "priority": 1, "actions": [SLACK], "stop": True},
            {"id": "second", "priority": 2, "actions": [SNS]},
        ),
    )
    assert list(out.deliveries) == [("first", 0)]
    assert out.archive == [ev]


def test_earlier_transforms_are_seen_by_later_conditions():
    """A rule's rename applies before later rules test their conditions (the README example)."""
    ev = log_event("ignored", event="My COMPUTER is on fire")
    del ev.record["message"]
    out = route(
        [ev],
        rules(
            {
                "id": "unify",
                "priority": 10,
                "transform": {"rename": {"event": "message"}, "set": {"transformed": True}},
            },
            {
                "id": "computer",
                "priority": 100,
                "match": {"where": [{"field": "message", "regex": "(?i)computer"}]},
                "actions": [SLACK],
            },
        ),
    )
    assert list(out.deliveries) == [("computer", 0)]
    assert ev.record == {"message": "My COMPUTER is on fire", "transformed": True}


# ---------------------------------------------------------------- process (moto)
def test_process_archives_and_balances_the_ledger(runtime, archive):
    """With no rules in the table, a batch is archived whole and the ledger balances."""
    events = log_events(7)
    ledger = Pipeline(runtime).process(events, INV)
    assert (ledger.received, ledger.archived, ledger.dropped, ledger.dead_lettered) == (7, 7, 0, 0)
    assert ledger.balanced()
    assert len(archive.lines()) == 7
    assert all(k.endswith(("inv-0001-0.jsonl.gz",)) for k in archive.keys())


def test_process_counts_drops_by_rule(runtime, apply_rules, archive):
    """Drops are counted by rule id in the ledger and dropped events are not archived."""
    apply_rules(
        {
            "rules": [
                {
                    "id": "health",
                    "match": {"where": [{"field": "path", "equals": "/healthz"}]},
                    "actions": ["drop"],
                }
            ]
        }
    )
    events = [
        log_event(path="/healthz", id="1"),
        log_event(path="/", id="2"),
        log_event(path="/healthz", id="3"),
    ]
    ledger = Pipeline(runtime).process(events, INV)
    assert ledger.as_dict()["dropped_by"] == {"health": 2}
    assert (ledger.archived, ledger.dropped) == (1, 2)
    assert ledger.balanced()
    assert [line["id"] for line in archive.lines()] == ["2"]


def test_archive_failure_dead_letters_the_events_and_balances(runtime, aws, dlq):
    """When S3 refuses the archive, the events go to the DLQ with the reason; nothing is lost."""
    aws.s3.delete_bucket(Bucket=aws.bucket)
    events = log_events(3)
    ledger = Pipeline(runtime).process(events, INV)
    assert (ledger.received, ledger.archived, ledger.dead_lettered) == (3, 0, 3)
    assert ledger.as_dict()["dead_letter_reasons"] == {"archive": 3}
    assert ledger.balanced()
    (msg,) = dlq.messages()
    assert msg["stage"] == "archive"
    assert "NoSuchBucket" in msg["reason"]
    assert [e["id"] for e in msg["events"]] == [e.id for e in events]


def test_failed_action_is_dead_lettered_and_events_still_archived(
    runtime, apply_rules, archive, dlq, monkeypatch
):
    """A failed action sends its batch to the DLQ with action and rule; events are archived."""
    apply_rules({"rules": [{"id": "pager", "actions": [SNS]}]})

    def refuse(self, batch):
        raise ActionError("sns", "publish: AuthorizationError: not allowed", retryable=False)

    from chalicelib.actions.sns import SnsAction

    monkeypatch.setattr(SnsAction, "deliver", refuse)
    ledger = Pipeline(runtime).process(log_events(2), INV)
    assert (ledger.archived, ledger.dead_lettered, ledger.actions_failed, ledger.alerts) == (
        2,
        0,
        1,
        0,
    )
    assert ledger.balanced()
    (msg,) = dlq.messages()
    assert (msg["stage"], msg["action"], msg["rule"], msg["count"]) == ("action", "sns", "pager", 2)
    assert msg["reason"] == "sns: publish: AuthorizationError: not allowed"
    assert len(archive.lines()) == 2


def test_successful_alert_is_counted(runtime, apply_rules, aws):
    """A delivered SNS alert counts once in `alerts` (one publish per rule per batch)."""
    apply_rules({"rules": [{"id": "pager", "actions": [SNS]}]})
    ledger = Pipeline(runtime).process(log_events(4), INV)
    assert (ledger.alerts, ledger.actions_failed) == (1, 0)


def test_dlq_failure_propagates(runtime, aws, monkeypatch):
    """If the archive and the DLQ both fail, the error reaches the caller (the platform retries)."""
    aws.s3.delete_bucket(Bucket=aws.bucket)
    aws.sqs.delete_queue(QueueUrl=aws.dlq_url)
    with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist"):
        Pipeline(runtime).process(log_events(1), INV)


# ---------------------------------------------------------------- actions cached by rules version
ALERT_DOC: dict[str, Any] = {
    "rules": [{"id": "page", "actions": [{"sns": {"topic": "ops-pager"}}]}]
}


def test_an_action_is_kept_while_the_rules_version_stays(runtime):
    """The same rules version compiled twice (a forced reload) gives the same action instance,
    so a forward's connection pool lives as long as the warm function; another version, or
    rules without a version, build their own."""
    first, again = (RuleSet(load_rules(ALERT_DOC), version="7") for _ in range(2))
    adef, same_def = first.defs[0].actions[0], again.defs[0].actions[0]
    assert adef is not same_def
    act = runtime.action("page", 0, adef, version="7")
    assert runtime.action("page", 0, same_def, version="7") is act
    newer = runtime.action("page", 0, same_def, version="8")
    assert newer is not act
    assert runtime.action("page", 0, same_def, version="8") is newer
    unversioned = RuleSet(load_rules(ALERT_DOC)).defs[0].actions[0]
    assert runtime.action("page", 0, unversioned) is not newer


def test_deliveries_reuse_actions_across_reloads_of_one_version(
    aws, runtime, invoke, load_event, monkeypatch
):
    """Invocations under one rules version build each action once, even when the rules are
    reloaded (and recompiled) in between."""
    from chalicelib.actions.sns import SnsAction
    from chalicelib.rules.schema import load_document
    from chalicelib.rules.store import write_document

    built: list[str] = []
    real_init = SnsAction.__init__

    def counting_init(self: Any, *a: Any, **kw: Any) -> None:
        built.append(self.name)
        real_init(self, *a, **kw)

    monkeypatch.setattr(SnsAction, "__init__", counting_init)
    write_document(aws.dynamodb, aws.rules_table, load_document(ALERT_DOC))
    for _ in range(3):
        runtime.rules.invalidate()
        invoke(load_event("cloudwatch_logs"))
    assert built == ["sns"]


@pytest.mark.parametrize(
    ("matched", "transformed", "dropped", "before"),
    [
        ({}, {}, {}, {}),
        ({"a": 3, "b": 1}, {"b": 1}, {"c": 2}, {}),
        ({"a": 3}, {"t": 2, "a": 1}, {"a": 3, "d": 1}, {}),
        ({"a": 1}, {}, {"a": 1}, {"a": {"matched": 2, "alerted": 1}, "z": {"failed": 1}}),
    ],
)
def test_rule_counts_reach_the_ledger_as_counted_one_by_one(
    matched: dict[str, int],
    transformed: dict[str, int],
    dropped: dict[str, int],
    before: dict[str, dict[str, int]],
) -> None:
    """A slice's per-rule matched, transformed and dropped counts are added to the ledger
    as counting them one by one adds them: the same rules, counters, values and order,
    added to counters the ledger already has."""
    from collections import Counter

    from chalicelib.event import Ledger
    from chalicelib.pipeline import Routed, _count_rules

    routed = Routed(matched=matched, transformed=transformed, dropped=dropped)
    ours, reference = Ledger(), Ledger()
    for ledger in (ours, reference):
        for rule_id, counts in before.items():
            ledger.rule(rule_id).update(counts)
    _count_rules(ours, routed)
    for name, counts in (("matched", matched), ("transformed", transformed), ("dropped", dropped)):
        for rule_id, n in counts.items():
            reference.rule(rule_id)[name] += n
    assert ours.as_dict() == reference.as_dict()
    assert [(k, list(v.items())) for k, v in ours.rules.items()] == [
        (k, list(v.items())) for k, v in reference.rules.items()
    ]
    assert all(type(c) is Counter for c in ours.rules.values())
    ours.rule("a")["suppressed"] += 1  # a Counter: a missing counter counts from 0
    assert ours.rules["a"]["suppressed"] == 1
