"""chalicelib.alerting (gates, state): throttles, thresholds, sequences and alert dedupe."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.alerting import gates
from chalicelib.alerting.gates import Firing, Gate, Throttle, batch_token, render_key
from chalicelib.alerting.state import AlertState
from chalicelib.errors import RulesInvalid
from chalicelib.rules.firing import AbsenceSpec, SequenceSpec, ThresholdSpec, ThrottleSpec
from chalicelib.rules.schema import load_rules

from .factories import T0, log_event

THREADS = 8
NOW_S = T0 // 1000  # the clock stands at the sample payloads' time


class Clock:
    """A settable wall clock (epoch seconds)."""

    def __init__(self, t: float = NOW_S) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the state table's TTLs and the throttle's windows."""
    c = Clock()
    monkeypatch.setattr(gates, "time", SimpleNamespace(time=c))
    return c


@pytest.fixture
def state(aws: Any, clock: Clock) -> AlertState:
    return AlertState(aws.dynamodb, aws.state_table, clock=clock)


@pytest.fixture
def atomic_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto apply each item operation atomically, as DynamoDB does.

    moto 5.2.5 checks a ConditionExpression and then writes without a lock, so two
    threads can both pass `sent < max` (measured: 7 of 30 runs of 8 threads let
    through more than the limit with no code under test involved). DynamoDB
    serialises writes to one item, and that is the guarantee the code relies on.
    The lock wraps single API calls only, so an implementation that read and then
    wrote in two calls would still race here and fail these tests.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "get_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *a: Any, _original: Any = original, **kw: Any) -> Any:
            with lock:
                return _original(self, *a, **kw)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def run_threads(aws: Any, clock: Clock, work: Callable[[AlertState], Any]) -> list[Any]:
    """Run `work` in THREADS threads released at once, sharing one client on one table
    (boto3's low-level clients are thread-safe; sessions and resources are not)."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []
    st = AlertState(aws.dynamodb, aws.state_table, clock=clock)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(st)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread did not finish in 30 s"
    assert not errors, errors
    return results


def item(aws: Any, pk: str, sk: str) -> dict[str, Any]:
    return aws.dynamodb.get_item(
        TableName=aws.state_table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item", {})


# ---------------------------------------------------------------- keys
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(None, "-", id="no key: one budget per rule"),
        pytest.param(
            "{tag}:{record.error_code}", "aws.lambda.checkout-api:E42", id="tag and field"
        ),
        pytest.param("{error_code}", "E42", id="bare field"),
        pytest.param("{record.missing}", "-", id="missing field"),
        pytest.param("{user.name}", "alice", id="nested"),
        pytest.param("fixed", "fixed", id="literal"),
        pytest.param("{unclosed", "{unclosed", id="unclosed brace"),
    ],
)
def test_render_key(template, expected):
    """Key templates name a field of the event; a missing field renders as `-`."""
    ev = log_event("x", error_code="E42", user={"name": "alice"})
    assert render_key(template, ev) == expected


def test_render_key_caps_each_field():
    """A huge field value cannot make a huge state-table key (200 characters per field)."""
    ev = log_event("x", error_code="E" * 10_000)
    assert len(render_key("{error_code}", ev)) == 200


# ---------------------------------------------------------------- throttle
def one(i: int, **fields: Any) -> Firing:
    return Firing([log_event(f"failure {i}", id=f"ev-{i}", **fields)])


def test_throttle_allows_max_alerts_per_window(state, clock):
    """`max: 2` lets two alerts through in a window and suppresses the rest."""
    throttle = Throttle("r", ThrottleSpec(300, 2))
    results = [throttle.apply(one(i), state) for i in range(5)]
    assert [len(r.firings) for r in results] == [1, 1, 0, 0, 0]
    assert [r.suppressed for r in results] == [0, 0, 1, 1, 1]
    assert all(f.note is None for r in results for f in r.firings)


def test_next_alert_after_suppression_says_how_many(state, clock):
    """The first alert of the next window carries "N similar alert(s) suppressed", once."""
    throttle = Throttle("r", ThrottleSpec(600, 1))
    assert len(throttle.apply(one(0), state).firings) == 1
    for i in range(1, 4):
        assert throttle.apply(one(i), state).firings == []
    clock.t += 600
    (firing,) = throttle.apply(one(4), state).firings
    assert firing.note == "3 similar alert(s) suppressed since the last one"
    clock.t += 600
    (firing,) = throttle.apply(one(5), state).firings
    assert firing.note is None


def test_suppressed_count_counts_alerts_not_events(state, clock):
    """A suppressed alert of many events counts as one suppressed alert (the note says alerts)."""
    throttle = Throttle("r", ThrottleSpec(600, 1))
    throttle.apply(one(0), state)
    many = Firing([log_event(f"failure {i}", id=f"ev-{i}") for i in range(1, 8)])
    assert throttle.apply(many, state).suppressed == 7
    clock.t += 600
    (firing,) = throttle.apply(one(9), state).firings
    assert firing.note == "1 similar alert(s) suppressed since the last one"


def test_suppressed_note_is_appended_to_the_gate_note(state, clock):
    """A threshold's note and the suppressed count are both kept."""
    throttle = Throttle("r", ThrottleSpec(600, 1))
    throttle.apply(one(0), state)
    throttle.apply(one(1), state)
    clock.t += 600
    (firing,) = throttle.apply(Firing(one(2).events, "5 matches within 1m"), state).firings
    assert firing.note == "5 matches within 1m; 1 similar alert(s) suppressed since the last one"


def test_throttle_per_key_keeps_separate_budgets(state, clock):
    """With a key template each key has its own budget; one firing splits by key."""
    throttle = Throttle("r", ThrottleSpec(600, 1, "{tag}:{record.error_code}"))
    events = [
        log_event("a", id="1", error_code="E1"),
        log_event("b", id="2", error_code="E2"),
        log_event("c", id="3", error_code="E1"),
    ]
    out = throttle.apply(Firing(events), state)
    assert sorted([e.id for e in f.events] for f in out.firings) == [["1", "3"], ["2"]]
    again = throttle.apply(
        Firing([log_event("d", id="4", error_code="E1"), log_event("e", id="5", error_code="E3")]),
        state,
    )
    assert [[e.id for e in f.events] for f in again.firings] == [["5"]]
    assert again.suppressed == 1


def test_throttle_state_has_a_ttl(aws, state, clock):
    """Budget and suppressed counters carry `expires_at`, so the table cleans itself."""
    throttle = Throttle("r", ThrottleSpec(300, 1))
    throttle.apply(one(0), state)
    throttle.apply(one(1), state)
    win = str(NOW_S // 300)
    sent = item(aws, "throttle#r#-", win)
    assert sent["sent"] == {"N": "1"}
    assert int(sent["expires_at"]["N"]) == NOW_S + 600
    assert int(item(aws, "throttle#r#-", "suppressed")["expires_at"]["N"]) > NOW_S


@pytest.mark.parametrize("limit", [1, 3])
def test_add_below_under_concurrency_allows_exactly_the_limit(aws, clock, atomic_items, limit):
    """Eight threads racing on one budget item get exactly `limit` successes in total."""

    def work(st: AlertState) -> int:
        return sum(st.add_below("throttle#race#-", "w", "sent", limit, ttl_s=60) for _ in range(3))

    assert sum(run_threads(aws, clock, work)) == limit
    assert item(aws, "throttle#race#-", "w")["sent"] == {"N": str(limit)}


def reported(note: str | None) -> int:
    """The suppressed count a note reports (0 when it reports none)."""
    m = re.search(r"(\d+) similar alert\(s\) suppressed", note or "")
    return int(m.group(1)) if m else 0


def test_throttle_under_concurrency_sends_max_and_reports_every_suppression(
    aws, clock, atomic_items
):
    """Eight concurrent single-alert invocations, `max: 2`: two alerts go out, and the six
    suppressed are reported exactly once in total (by a concurrent alert or the next one)."""
    throttle = Throttle("r", ThrottleSpec(600, 2))
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def work(st: AlertState) -> Any:
        with lock:
            i = next(counter)
        return throttle.apply(one(i), st)

    results = run_threads(aws, clock, work)
    firings = [f for r in results for f in r.firings]
    assert len(firings) == 2
    assert sum(r.suppressed for r in results) == THREADS - 2
    clock.t += 600
    st = AlertState(aws.dynamodb, aws.state_table, clock=clock)
    (after,) = throttle.apply(one(99), st).firings
    assert sum(reported(f.note) for f in [*firings, after]) == THREADS - 2


# ---------------------------------------------------------------- threshold
def threshold(key: str | None = None) -> Gate:
    return Gate("burst", ThresholdSpec(count=3, window_s=60, key=key, window="1m"))


def at(seconds: float, i: int, **fields: Any) -> Any:
    """An event `seconds` after T0 (T0 is one second into its minute)."""
    return log_event(f"timeout {i}", time=T0 + int(seconds * 1000), id=f"ev-{i}", **fields)


def test_threshold_fires_once_when_the_count_is_reached_across_invocations(state):
    """Counts accumulate in the table: 2 then 1 matches fire on the third, with the count."""
    gate = threshold()
    first = gate.apply([at(0, 0), at(1, 1)], state)
    assert (first.firings, first.suppressed) == ([], 2)
    second = gate.apply([at(2, 2)], state)
    (firing,) = second.firings
    assert [e.id for e in firing.events] == ["ev-2"]
    assert firing.note == "3 matches within 1m (window from 2026-11-26T10:07:00.000Z)"


def test_threshold_does_not_fire_twice_in_one_window(state):
    """After firing, more matches in the same window are suppressed."""
    gate = threshold()
    assert len(gate.apply([at(0, 0), at(1, 1), at(2, 2)], state).firings) == 1
    later = gate.apply([at(10, 3), at(20, 4), at(30, 5)], state)
    assert (later.firings, later.suppressed) == ([], 3)


def test_threshold_starts_again_in_a_new_window(state):
    """A new window counts from zero: it fires again only when it reaches the count."""
    gate = threshold()
    assert len(gate.apply([at(0, 0), at(1, 1), at(2, 2)], state).firings) == 1
    # 59 s after T0 is 10:08:00, the next minute.
    assert gate.apply([at(59, 3), at(60, 4)], state).firings == []
    (firing,) = gate.apply([at(61, 5)], state).firings
    assert "window from 2026-11-26T10:08:00.000Z" in str(firing.note)


def test_threshold_matches_in_different_windows_do_not_add_up(state):
    """Two matches at the end of one minute and two at the start of the next never fire (N=3)."""
    gate = threshold()
    assert gate.apply([at(57, 0), at(58, 1), at(59, 2), at(60, 3)], state).firings == []


def test_threshold_per_key(state):
    """With a key, each key counts on its own."""
    gate = threshold(key="{record.user}")
    out = gate.apply([at(0, 0, user="alice"), at(1, 1, user="bob"), at(2, 2, user="alice")], state)
    assert out.firings == []
    out = gate.apply([at(3, 3, user="alice"), at(4, 4, user="bob")], state)
    (firing,) = out.firings
    assert [e.record["user"] for e in firing.events] == ["alice"]


def test_threshold_state_has_a_ttl(aws, state):
    """The window's counter expires after two windows."""
    threshold().apply([at(0, 0)], state)
    win = str(T0 // 1000 // 60)
    it = item(aws, "threshold#burst#-", win)
    assert len(it["ids"]["BS"]) == 1
    assert int(it["expires_at"]["N"]) == NOW_S + 120


def test_threshold_fires_once_under_concurrent_invocations(aws, clock, atomic_items):
    """Eight concurrent invocations of one match each, N=3: exactly one fires."""
    gate = threshold()
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def work(st: AlertState) -> Any:
        with lock:
            i = next(counter)
        return gate.apply([at(i, i)], st)

    results = run_threads(aws, clock, work)
    assert sum(len(r.firings) for r in results) == 1


# ---------------------------------------------------------------- sequence
def sequence(within_s: int = 300, key: str | None = "{record.host}") -> Gate:
    spec = SequenceSpec(
        first=({"field": "message", "contains": "connection pool"},),
        then=({"field": "message", "contains": "outage"},),
        within_s=within_s,
        key=key,
    )
    return Gate("precursor", spec)


def a(seconds: float, host: str = "db-1", i: int = 0) -> Any:
    return log_event(
        "connection pool nearly exhausted", time=T0 + int(seconds * 1000), id=f"a-{i}", host=host
    )


def b(seconds: float, host: str = "db-1", i: int = 0) -> Any:
    return log_event("outage: 503", time=T0 + int(seconds * 1000), id=f"b-{i}", host=host)


def test_sequence_fires_when_b_follows_a_within_the_window(state):
    """A then B for the same key, B within the window: one firing for B, naming A."""
    out = sequence().apply([a(0), b(60)], state)
    (firing,) = out.firings
    assert [e.id for e in firing.events] == ["b-0"]
    assert firing.note == (
        "preceded by 'connection pool nearly exhausted' at 2026-11-26T10:07:01.000Z (key db-1)"
    )


def test_sequence_across_invocations(state):
    """A in one invocation and B in a later one still fire (A waits in the table)."""
    gate = sequence()
    assert gate.apply([a(0)], state).firings == []
    assert len(gate.apply([b(120)], state).firings) == 1


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([b(10)], id="B without A"),
        pytest.param([a(0, host="db-1"), b(10, host="db-2")], id="A and B for different keys"),
        pytest.param([a(0), b(301)], id="B after the window"),
        pytest.param([b(0), a(10)], id="B before A"),
    ],
)
def test_sequence_does_not_fire(state, events):
    """No alert unless B follows A for the same key within the window."""
    out = sequence().apply(events, state)
    assert out.firings == []
    assert out.suppressed == sum(1 for e in events if e.id.startswith("b-"))


def test_a_is_consumed_by_the_b_that_matches_it(state):
    """One A pairs with one B: a second B needs a new A."""
    gate = sequence()
    assert len(gate.apply([a(0), b(10, i=1)], state).firings) == 1
    assert gate.apply([b(20, i=2)], state).firings == []
    assert len(gate.apply([a(30, i=3), b(40, i=3)], state).firings) == 1


def test_an_older_b_leaves_a_for_a_later_b(state):
    """A B older than the stored A (late delivery) does not consume it."""
    gate = sequence()
    gate.apply([a(100)], state)
    assert gate.apply([b(50, i=1)], state).firings == []
    assert len(gate.apply([b(150, i=2)], state).firings) == 1


def test_a_later_a_replaces_the_earlier_one(state):
    """The window runs from the latest A: B is within it though far from the first A."""
    gate = sequence()
    gate.apply([a(0, i=1)], state)
    gate.apply([a(250, i=2)], state)
    (firing,) = gate.apply([b(400)], state).firings
    assert "10:11:11.000Z" in str(firing.note)


def test_expired_a_is_ignored(state, clock):
    """A stored A past its TTL (DynamoDB deletes expired items late) pairs with nothing."""
    gate = sequence(within_s=120)
    gate.apply([a(0)], state)
    clock.t += 121
    assert gate.apply([b(100)], state).firings == []


def test_sequence_without_key_pairs_any_a_and_b(state):
    """Without a key, the rule has one slot: any A then any B."""
    out = sequence(key=None).apply([a(0, host="x"), b(5, host="y")], state)
    assert len(out.firings) == 1
    assert "(key -)" in str(out.firings[0].note)


def test_only_one_of_concurrent_bs_consumes_a(aws, clock, atomic_items, state):
    """Eight invocations each with a B race for one stored A: exactly one fires."""
    gate = sequence()
    gate.apply([a(0)], state)
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def work(st: AlertState) -> Any:
        with lock:
            i = next(counter)
        return gate.apply([b(10 + i, i=i)], st)

    results = run_threads(aws, clock, work)
    assert sum(len(r.firings) for r in results) == 1
    assert sum(r.suppressed for r in results) == THREADS - 1


# ---------------------------------------------------------------- dedupe records
def test_alerted_ids_are_remembered_per_rule_and_action(state):
    """Marked ids (more than one batch of each API) are found again; other actions are separate."""
    ids = [f"ev-{i:04d}" for i in range(230)] + ["ev-0000"]  # duplicates are harmless
    state.mark_alerted("r", 0, ids)
    assert state.already_alerted("r", 0, [*ids, "new"]) == set(ids)
    assert state.already_alerted("r", 1, ids) == set()
    assert state.already_alerted("other", 0, ids) == set()


def test_alerted_ids_expire_after_a_day(aws, state):
    """Dedupe records carry a TTL of a day: retries come within minutes."""
    state.mark_alerted("r", 0, ["ev-1"])
    assert int(item(aws, "alerted#r#0", "ev-1")["expires_at"]["N"]) == NOW_S + 86400


def test_take_counter_reads_and_clears(state):
    """A counter is read and deleted in one step; a second take finds nothing."""
    state.add("p", "suppressed", "suppressed", 4, ttl_s=60)
    assert state.take_counter("p", "suppressed") == 4
    assert state.take_counter("p", "suppressed") == 0


def test_set_once_is_once(state):
    """Only the first `set_once` of an attribute succeeds."""
    assert state.set_once("p", "s", "fired", ttl_s=60) is True
    assert state.set_once("p", "s", "fired", ttl_s=60) is False


# ---------------------------------------------------------------- schema
BASE: dict[str, Any] = {"id": "r", "actions": [{"slack": {"channel": "#ops"}}]}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"throttle": {"max": 1}}, "throttle.window", id="throttle needs a window"),
        pytest.param({"throttle": {"window": "5x"}}, "throttle.window", id="bad duration"),
        pytest.param({"throttle": {"window": "5m", "max": 0}}, "throttle.max", id="max zero"),
        pytest.param({"throttle": {"window": "5m", "per": "x"}}, "throttle.per", id="unknown key"),
        pytest.param({"throttle": {"window": "5m", "key": 3}}, "throttle.key", id="key not text"),
        pytest.param({"threshold": {"window": "1m"}}, "threshold.count", id="count required"),
        pytest.param(
            {"threshold": {"count": "5", "window": "1m"}}, "threshold.count", id="count as text"
        ),
        pytest.param(
            {"sequence": {"first": [], "then": [{"field": "m", "exists": True}], "within": "5m"}},
            "sequence.first",
            id="empty first",
        ),
        pytest.param(
            {
                "sequence": {
                    "first": [{"field": "m"}],
                    "then": [{"field": "m", "exists": True}],
                    "within": "5m",
                }
            },
            "sequence.first[0]",
            id="condition without operator",
        ),
        pytest.param(
            {
                "threshold": {"count": 2, "window": "1m"},
                "sequence": {
                    "first": [{"field": "m", "exists": True}],
                    "then": [{"field": "m", "exists": True}],
                    "within": "5m",
                },
            },
            "sequence",
            id="threshold and sequence together",
        ),
        pytest.param({"absence": {"window": "5m", "tags": "app.x"}}, "absence.tags", id="tags"),
    ],
)
def test_invalid_firing_specs_are_rejected_with_their_field(extra, field):
    """Each malformed throttle, threshold, sequence or absence is reported with rule and field."""
    with pytest.raises(RulesInvalid) as e:
        load_rules({"rules": [{**BASE, **extra}]})
    assert ("r", field) in [(er.rule_id, er.field) for er in e.value.errors]


def test_absence_rule_needs_actions():
    """An absence rule without actions could never tell anyone: rejected."""
    with pytest.raises(RulesInvalid) as e:
        load_rules({"rules": [{"id": "hb", "absence": {"window": "5m"}}]})
    assert [er.field for er in e.value.errors] == ["absence"]


def test_valid_firing_specs_load():
    """Throttle combines with threshold; specs come typed, durations in seconds."""
    (rule,) = load_rules(
        {
            "rules": [
                {
                    **BASE,
                    "throttle": {"window": "10m", "max": 1, "key": "{tag}:{record.error_code}"},
                    "threshold": {"count": 5, "window": "1m", "key": "{tag}"},
                }
            ]
        }
    )
    assert rule.throttle == ThrottleSpec(600, 1, "{tag}:{record.error_code}", "10m")
    assert rule.threshold == ThresholdSpec(5, 60, "{tag}", "1m")


POOL_WARNING = {"field": "message", "contains": "pool"}
OUTAGE = {"field": "message", "contains": "outage"}


@pytest.mark.parametrize(
    ("extra", "attr", "spec"),
    [
        pytest.param(
            {"throttle": {"window": "30s"}},
            "throttle",
            ThrottleSpec(30, 1, None, "30s"),
            id="throttle",
        ),
        pytest.param(
            {"threshold": {"count": 5, "window": 90}},
            "threshold",
            ThresholdSpec(5, 90, None, "90"),
            id="threshold in plain seconds",
        ),
        pytest.param(
            {
                "sequence": {
                    "first": [POOL_WARNING],
                    "then": [OUTAGE],
                    "within": "2h",
                    "key": "{record.host}",
                }
            },
            "sequence",
            SequenceSpec((POOL_WARNING,), (OUTAGE,), 7200, "{record.host}", "2h"),
            id="sequence",
        ),
        pytest.param(
            {"absence": {"window": "1d", "tags": ["app.heartbeat"]}},
            "absence",
            AbsenceSpec(86400, ("app.heartbeat",), "1d"),
            id="absence",
        ),
    ],
)
def test_firing_blocks_become_typed_specs_in_seconds(extra, attr, spec):
    """Each firing block reaches the gates as its frozen spec, durations already in seconds."""
    (rule,) = load_rules({"rules": [{**BASE, **extra}]})
    assert getattr(rule, attr) == spec


# ---------------------------------------------------------------- retries keep their spends
def test_a_retried_batch_gets_back_the_budget_it_spent(state):
    """The same token is granted again (the retry of a killed send); others stay refused."""
    assert state.add_below("t", "w", "sent", 1, ttl_s=60, token="batch-a") is True
    assert state.add_below("t", "w", "sent", 1, ttl_s=60, token="batch-a") is True
    assert state.add_below("t", "w", "sent", 1, ttl_s=60, token="batch-b") is False


def test_a_retried_then_event_consumes_its_precursor_again(state):
    """A precursor taken by one event id is given to that id again, and to no other."""
    state.put("seq", "first", {"time": 1, "id": "a", "message": "disk"}, ttl_s=600)
    assert state.take("seq", "first", token="b1") is not None
    assert state.take("seq", "first", token="b1") is not None
    assert state.take("seq", "first", token="b2") is None


def test_a_retried_threshold_batch_fires_again_for_itself_only(state):
    """The batch that fired a window fires again on retry; another batch stays suppressed."""
    assert state.set_once("th", "w", "fired", ttl_s=60, token="x") is True
    assert state.set_once("th", "w", "fired", ttl_s=60, token="x") is True
    assert state.set_once("th", "w", "fired", ttl_s=60, token="y") is False


def test_a_known_spent_window_is_suppressed_without_asking_the_table(state, aws, clock):
    """After the table refuses a window, later batches of that window are suppressed by the
    container's memo (one counter update, no conditional spend); a spender's retry is not."""
    from chalicelib.event import LogEvent

    def firing(i: int) -> Firing:
        return Firing([LogEvent("app.x", 0, {"message": f"m{i}"}, {}, f"id-{i}")])

    t = Throttle("r", ThrottleSpec(300, 1))
    first = firing(1)
    assert len(t.apply(first, state).firings) == 1  # spends the budget
    assert t.apply(firing(2), state).suppressed == 1  # refused by the table: memo filled
    calls: list[str] = []
    # Every request the table receives passes `before-send` (the prepared path's too).
    aws.dynamodb.meta.events.register(
        "before-send.dynamodb.*", lambda event_name, **kw: calls.append(event_name.split(".")[2])
    )
    assert t.suppress_if_exhausted(firing(3), state) == 1
    assert calls == ["UpdateItem"]  # the suppressed counter only
    assert t.suppress_if_exhausted(first, state) is None  # the spender's retry asks the table
    assert batch_token(first.events) in Throttle._exhausted["throttle#r#-"][1]
    clock.t += 300  # the next window: the memo no longer applies
    assert t.suppress_if_exhausted(firing(4), state) is None
