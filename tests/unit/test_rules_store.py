"""chalicelib.rules.store: rules in DynamoDB (one item per rule) and the functions' cached view."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from chalicelib.errors import RuleError, RulesInvalid
from chalicelib.rules import store as store_module
from chalicelib.rules.schema import load_document, load_rules
from chalicelib.rules.store import RuleStore, read_rule_defs, write_document, write_rule_defs

DOC: dict[str, Any] = {
    "rules": [
        {"id": "unify", "priority": 10, "transform": {"rename": {"event": "message"}}},
        {
            "id": "noise",
            "match": {"where": [{"field": "path", "equals": "/healthz"}]},
            "actions": ["drop"],
        },
        {"id": "alerts", "priority": 50, "actions": [{"sns": {"topic": "ops-pager"}}]},
    ]
}


def table_items(aws) -> dict[str, dict[str, Any]]:
    """sk -> item, for every rule item in the table."""
    items = aws.dynamodb.scan(TableName=aws.rules_table)["Items"]
    return {it["sk"]["S"]: it for it in items if it["pk"]["S"] == "rules"}


# ---------------------------------------------------------------- write_rule_defs
def test_apply_writes_one_item_per_rule(aws):
    """Each rule becomes an item keyed pk=rules, sk=<id>, holding the rule as written."""
    result = write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(DOC))
    assert sorted(result.written) == ["alerts", "noise", "unify"]
    assert (result.unchanged, result.removed) == ([], [])
    items = table_items(aws)
    assert sorted(items) == ["alerts", "noise", "unify"]
    assert json.loads(items["unify"]["body"]["S"]) == DOC["rules"][0]
    assert items["alerts"]["priority"] == {"N": "50"}
    assert items["noise"]["priority"] == {"N": "100"}
    assert items["unify"]["updated_at"]["S"].endswith("+00:00")


def test_reapplying_the_same_rules_writes_nothing(aws):
    """Rules whose body did not change are reported unchanged and not rewritten."""
    write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(DOC))
    before = table_items(aws)
    result = write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(json.loads(json.dumps(DOC))))
    assert result.written == []
    assert sorted(result.unchanged) == ["alerts", "noise", "unify"]
    assert table_items(aws) == before


def test_apply_writes_changed_keeps_unchanged_and_deletes_removed(aws):
    """Only the changed rule is written, the untouched one stays, the one left out is deleted."""
    write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(DOC))
    changed = {
        "rules": [
            DOC["rules"][0],
            {"id": "alerts", "priority": 40, "actions": [{"sns": {"topic": "ops-pager"}}]},
        ]
    }
    result = write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(changed))
    assert (result.written, result.unchanged, result.removed) == (["alerts"], ["unify"], ["noise"])
    items = table_items(aws)
    assert sorted(items) == ["alerts", "unify"]
    assert items["alerts"]["priority"] == {"N": "40"}


def test_applying_no_rules_empties_the_table(aws):
    """An empty rules document removes every stored rule."""
    write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(DOC))
    result = write_rule_defs(aws.dynamodb, aws.rules_table, [])
    assert sorted(result.removed) == ["alerts", "noise", "unify"]
    assert table_items(aws) == {}


def test_key_order_in_the_file_does_not_count_as_a_change(aws):
    """The stored body is canonical JSON, so reordering keys in the file changes nothing."""
    write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(DOC))
    reordered = {"rules": [dict(reversed(list(r.items()))) for r in DOC["rules"]]}
    result = write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(reordered))
    assert result.written == []


def test_read_back_gives_validated_rules_in_priority_order(aws):
    """Reading the table gives RuleDefs equal to the file's, sorted by priority."""
    write_rule_defs(aws.dynamodb, aws.rules_table, load_rules(DOC))
    rules = read_rule_defs(aws.dynamodb, aws.rules_table)
    assert [(r.id, r.priority) for r in rules] == [("unify", 10), ("alerts", 50), ("noise", 100)]
    assert rules[2].actions[0].name == "drop"


def test_many_rules_are_read_across_pages(aws):
    """A table written without versions (per-rule items only) with more rules than one
    DynamoDB page holds is read back whole (pagination followed)."""
    from chalicelib.rules.store import _write_rule_items

    big = "x" * 9000  # ~9 KB per item: a 1 MB query page holds ~110
    doc = {"rules": [{"id": f"r{i:03d}", "description": big} for i in range(150)]}
    _write_rule_items(aws.dynamodb, aws.rules_table, load_rules(doc))
    queries: list[dict[str, Any]] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(aws.dynamodb, name)

        def query(self, **kw: Any) -> Any:
            queries.append(kw)
            return aws.dynamodb.query(**kw)

    assert len(read_rule_defs(Counting(), aws.rules_table)) == 150
    assert len(queries) >= 2  # 1.35 MB of rules in 1 MB pages


def test_hand_edited_invalid_item_is_reported_as_rules_invalid(aws):
    """An item that does not validate makes the read fail with RulesInvalid naming the rule."""
    aws.dynamodb.put_item(
        TableName=aws.rules_table,
        Item={
            "pk": {"S": "rules"},
            "sk": {"S": "bad"},
            "body": {"S": '{"id": "bad", "stop": "yes"}'},
        },
    )
    with pytest.raises(RulesInvalid) as info:
        read_rule_defs(aws.dynamodb, aws.rules_table)
    assert [(e.rule_id, e.field) for e in info.value.errors] == [("bad", "stop")]


# ---------------------------------------------------------------- RuleStore
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """A rule source whose answers the test scripts (rules, or an exception to raise)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store_module.time, "monotonic", c)
    return c


def test_rules_are_cached_for_the_ttl(clock):
    """Within the TTL the table is not read again; after it, it is."""
    loader = Loader(load_rules(DOC))
    rs = RuleStore(loader, ttl_s=60)
    first = rs.get()
    clock.now += 59.9
    assert rs.get() is first
    assert loader.calls == 1
    clock.now += 0.2
    assert [r.id for r in rs.get().rules] == ["unify", "alerts", "noise"]
    assert loader.calls == 2


def test_failed_read_keeps_the_last_good_rules(clock):
    """When DynamoDB fails, the rules loaded before stay in force and the error is reported."""
    loader = Loader(load_rules(DOC), ConnectionError("endpoint unreachable"))
    rs = RuleStore(loader, ttl_s=60)
    good = rs.get()
    clock.now += 61
    assert rs.get() is good
    assert rs.last_error == "rules unavailable: ConnectionError: endpoint unreachable"


def test_recovery_clears_the_error(clock):
    """A successful read after a failure replaces the rules and clears `last_error`."""
    loader = Loader(load_rules(DOC), TimeoutError("slow"), load_rules({"rules": [{"id": "new"}]}))
    rs = RuleStore(loader, ttl_s=60)
    rs.get()
    clock.now += 61
    rs.get()
    assert rs.last_error is not None
    clock.now += 61
    assert [r.id for r in rs.get().rules] == ["new"]
    assert rs.last_error is None


def test_invalid_rules_in_the_table_keep_the_last_good_rules(clock):
    """A hand-edited invalid table does not replace working rules; the error says why."""
    invalid = RulesInvalid([RuleError("bad", "stop", "must be true or false")])
    loader = Loader(load_rules(DOC), invalid)
    rs = RuleStore(loader, ttl_s=60)
    good = rs.get()
    clock.now += 61
    assert rs.get() is good
    assert rs.last_error.startswith("rules in table invalid: 1 error(s) in rules")


def test_no_rules_ever_loaded_means_an_empty_rule_set_and_an_error(clock):
    """A cold function that cannot read the table runs with no rules (archive all) and says so."""
    rs = RuleStore(Loader(PermissionError("AccessDenied")), ttl_s=60)
    rules = rs.get()
    assert len(rules) == 0
    assert rules.for_tag("aws.lambda.checkout-api") == ()
    assert rs.last_error == "rules unavailable: PermissionError: AccessDenied"


def test_failed_read_with_rules_in_force_is_not_retried_before_the_ttl(clock):
    """With good rules in force, a failed read waits a TTL before the next try."""
    loader = Loader(load_rules(DOC), OSError("down"))
    rs = RuleStore(loader, ttl_s=60)
    rs.get()
    clock.now += 61
    rs.get()
    clock.now += 30
    rs.get()
    assert loader.calls == 2
    clock.now += 31
    rs.get()
    assert loader.calls == 3


def test_without_any_rules_every_get_tries_the_table_again(clock):
    """A store that never loaded rules retries at once, so rules apply as soon as they can."""
    loader = Loader(OSError("down"), load_rules(DOC))
    rs = RuleStore(loader, ttl_s=60)
    assert len(rs.get()) == 0
    assert len(rs.get()) == 3
    assert loader.calls == 2


def test_invalidate_forces_a_reload(clock):
    """`invalidate()` makes the next `get` read the table even within the TTL."""
    loader = Loader(load_rules(DOC))
    rs = RuleStore(loader, ttl_s=60)
    rs.get()
    rs.invalidate()
    rs.get()
    assert loader.calls == 2


def test_runtime_store_reads_the_table_written_by_apply(runtime, apply_rules):
    """The function's RuleStore sees what `apply` wrote to DynamoDB."""
    apply_rules(DOC)
    assert [r.id for r in runtime.rules.get().rules] == ["unify", "alerts", "noise"]
    assert runtime.rules.last_error is None


# ---------------------------------------------------------------- version-aware reloads
V1: dict[str, Any] = {"rules": [{"id": "alerts", "actions": [{"sns": {"topic": "ops-pager"}}]}]}
V2: dict[str, Any] = {"rules": [{"id": "noise", "actions": ["drop"]}]}


class Counted:
    """Counts the runtime's DynamoDB calls, and the store's validations and compilations."""

    def __init__(self, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.validated = 0
        self.compiled = 0
        runtime.clients.get("dynamodb").meta.events.register(
            "before-call.dynamodb.*", lambda model, **kw: self.calls.append(model.name)
        )
        real_load, real_ruleset = store_module.load_document, store_module.RuleSet

        def load(*a: Any, **kw: Any) -> Any:
            self.validated += 1
            return real_load(*a, **kw)

        def ruleset(*a: Any, **kw: Any) -> Any:
            self.compiled += 1
            return real_ruleset(*a, **kw)

        monkeypatch.setattr(store_module, "load_document", load)
        monkeypatch.setattr(store_module, "RuleSet", ruleset)

    def reset(self) -> None:
        self.calls.clear()
        self.validated = self.compiled = 0


def apply_version(aws: Any, doc: dict[str, Any]) -> int:
    return write_document(aws.dynamodb, aws.rules_table, load_document(doc)).version


@pytest.fixture
def counted(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(runtime, monkeypatch)


def test_a_reload_of_an_unchanged_version_is_one_read(aws, runtime, clock, counted):
    """After the TTL, the store reads the current-version pointer only: the same version
    is not read, validated or compiled again, and the same rule set stays in force."""
    apply_version(aws, V1)
    first = runtime.rules.get()
    assert (first.version, counted.calls, counted.compiled) == ("1", ["GetItem", "GetItem"], 1)
    for _ in range(3):
        counted.reset()
        clock.now += 61
        assert runtime.rules.get() is first
        assert (counted.calls, counted.validated, counted.compiled) == (["GetItem"], 0, 0)
    assert runtime.rules.last_error is None


def test_a_new_version_is_read_and_compiled_once(aws, runtime, clock, counted):
    """A new current version is read, validated and compiled once; the reloads after it
    cost the pointer read again."""
    apply_version(aws, V1)
    runtime.rules.get()
    apply_version(aws, V2)
    counted.reset()
    clock.now += 61
    rules = runtime.rules.get()
    assert ([r.id for r in rules.rules], rules.version) == (["noise"], "2")
    assert (counted.calls, counted.validated, counted.compiled) == (["GetItem", "GetItem"], 1, 1)
    counted.reset()
    clock.now += 61
    assert runtime.rules.get() is rules
    assert (counted.calls, counted.compiled) == (["GetItem"], 0)


def test_an_invalid_version_is_read_once_and_its_error_kept(aws, runtime, clock, counted):
    """A current version that no longer validates keeps the last good rules; the store does
    not re-read it every TTL (a version never changes), and keeps saying why."""
    apply_version(aws, V1)
    good = runtime.rules.get()
    bad = {"rules": [{"id": "bad", "stop": "yes"}]}
    aws.dynamodb.put_item(
        TableName=aws.rules_table,
        Item={
            "pk": {"S": "version"},
            "sk": {"S": "00000002"},
            "doc": {"B": zlib.compress(json.dumps(bad).encode())},
        },
    )
    aws.dynamodb.put_item(
        TableName=aws.rules_table,
        Item={"pk": {"S": "config"}, "sk": {"S": "version"}, "current": {"N": "2"}},
    )
    clock.now += 61
    assert runtime.rules.get() is good
    assert runtime.rules.last_error.startswith("rules in table invalid")
    counted.reset()
    clock.now += 61
    assert runtime.rules.get() is good
    assert counted.calls == ["GetItem"]
    assert runtime.rules.last_error.startswith("rules in table invalid")


def test_an_unreadable_pointer_keeps_the_rules_and_retries(aws, runtime, clock, counted):
    """A failed pointer read keeps the rules in force and reports it; the next reload that
    reads the same version clears the error without recompiling."""
    apply_version(aws, V1)
    first = runtime.rules.get()
    ddb = runtime.clients.get("dynamodb")

    def down(**kw: Any) -> None:
        raise ConnectionError("endpoint unreachable")

    ddb.meta.events.register("before-call.dynamodb.GetItem", down)
    clock.now += 61
    assert runtime.rules.get() is first
    assert runtime.rules.last_error == "rules unavailable: ConnectionError: endpoint unreachable"
    ddb.meta.events.unregister("before-call.dynamodb.GetItem", down)
    counted.reset()
    clock.now += 61
    assert runtime.rules.get() is first
    assert (runtime.rules.last_error, counted.compiled) == (None, 0)


def test_an_unversioned_table_is_read_whole_every_ttl(aws, runtime, clock, counted, apply_rules):
    """Rules written without versions (per-rule items only) cannot be compared by version:
    each reload reads them all, as before versions existed."""
    from chalicelib.rules.store import _write_rule_items

    _write_rule_items(aws.dynamodb, aws.rules_table, load_rules(DOC))
    runtime.rules.invalidate()
    runtime.rules.get()
    counted.reset()
    clock.now += 61
    runtime.rules.get()
    assert counted.validated == 1 and counted.compiled == 1
