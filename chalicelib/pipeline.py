"""decode → parse → normalise → route → act → ledger.

`Runtime` holds what lives across invocations of a warm function (settings,
clients, the rule cache, action instances); `Pipeline.process` runs one batch of
LogEvents through rules and actions and returns the ledger. Handlers in
`app.py` only adapt their trigger's event to this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from chalicelib import actions as action_registry
from chalicelib import org, tap
from chalicelib.actions import ROUTING_VERBS, Action
from chalicelib.actions.archive import Archiver
from chalicelib.actions.context import ArchiveLinks, Services
from chalicelib.aws import Clients
from chalicelib.aws import clients as default_clients
from chalicelib.budget import Budget, budget
from chalicelib.errors import DecodeError, aws_fault
from chalicelib.event import Ledger, LogEvent
from chalicelib.invocation import Invocation
from chalicelib.observe import add_time
from chalicelib.records import record
from chalicelib.rules.compile import CompiledRule, RuleSet
from chalicelib.rules.firing import label
from chalicelib.rules.schema import ActionDef
from chalicelib.rules.store import RuleStore, TableRules
from chalicelib.rules.straight import BatchRouter
from chalicelib.rules.transforms import keep_sample
from chalicelib.settings import Settings, get_settings
from chalicelib.state import StateTable

if TYPE_CHECKING:
    # Loaded when first used (actions to deliver, events to dead-letter, absence rules):
    # a cold start whose first events need none of them does not pay for them.
    from chalicelib.actions.deadletter import DeadLetters
    from chalicelib.delivery import DeadLetter


@record()
class Routed:
    """What routing a batch gave: events to archive, drops, action batches, rule counts."""

    __slots__ = ("archive", "deliveries", "dropped", "matched", "transformed")

    archive: list[LogEvent]
    dropped: dict[str, int]
    deliveries: dict[tuple[str, int], list[LogEvent]]
    matched: dict[str, int]  # rule id -> events matched
    transformed: dict[str, int]

    def __init__(
        self,
        archive: list[LogEvent] | None = None,
        dropped: dict[str, int] | None = None,
        deliveries: dict[tuple[str, int], list[LogEvent]] | None = None,
        matched: dict[str, int] | None = None,
        transformed: dict[str, int] | None = None,
    ) -> None:
        self.archive = [] if archive is None else archive
        self.dropped = {} if dropped is None else dropped
        self.deliveries = {} if deliveries is None else deliveries
        self.matched = {} if matched is None else matched
        self.transformed = {} if transformed is None else transformed


def route(events: list[LogEvent], rules: RuleSet) -> Routed:
    """Apply rules in priority order; collect archive set, drops and action batches.

    What `route_interpreted` does, through the straight-line functions compiled for each
    tag's rules (chalicelib/rules/straight.py): each run of consecutive events of one
    tag (a CloudWatch payload is one) goes through one loop compiled for that tag's
    rules; the same outcome, in the same order, for every event.
    """
    out = Routed()
    archive = out.archive.append
    deliveries = out.deliveries
    matched = out.matched
    transformed = out.transformed
    dropped = out.dropped
    redact = rules.redact

    def cont(ev: LogEvent, after: int) -> None:
        """An event whose tag a rule rewrote: the new tag's rules after that one."""
        while True:
            run = rules.router(tuple(r for r in rules.for_tag(ev.tag) if r.ordinal > after))
            dropped_by, next_after = run(ev, ev.record, matched, transformed, deliveries)
            if next_after is None:
                break
            after = next_after
        if dropped_by is None:
            archive(ev)
        else:
            dropped[dropped_by] = dropped.get(dropped_by, 0) + ev.count

    routers: dict[str, BatchRouter | None] = {}
    n = len(events)
    i = 0
    while i < n:
        tag = events[i].tag
        j = i + 1
        while j < n and events[j].tag == tag:
            j += 1
        run_all = routers.get(tag, _NO_ROUTER)
        if run_all is _NO_ROUTER:
            applicable = rules.for_tag(tag)
            run_all = routers[tag] = rules.batch_router(applicable) if applicable else None
        batch = events if i == 0 and j == n else events[i:j]
        if run_all is None:
            for ev in batch:
                if redact is not None:
                    redact(ev.record)
                archive(ev)
        else:
            run_all(batch, archive, matched, transformed, deliveries, dropped, cont)
        i = j
    return out


_NO_ROUTER: Any = object()


def route_interpreted(events: list[LogEvent], rules: RuleSet) -> Routed:
    """Apply rules in priority order; collect archive set, drops and action batches.

    Per rule and event: parse, conditions, transform, sample, actions, then drop /
    stop / rewrite_tag. A rewritten tag continues with the later rules that match
    the new tag. The reference `route` is held to (tests/unit/test_rules_straight.py).
    """
    out = Routed()
    archive = out.archive.append
    deliveries = out.deliveries
    matched = out.matched
    transformed = out.transformed
    redact = rules.redact
    tag_rules: dict[str, tuple[CompiledRule, ...]] = {}
    for ev in events:
        if redact is not None:
            redact(ev.record)
        applicable = tag_rules.get(ev.tag)
        if applicable is None:
            applicable = tag_rules[ev.tag] = rules.for_tag(ev.tag)
        if not applicable:
            archive(ev)
            continue
        record = ev.record
        dropped_by = None
        while True:
            restart: tuple[CompiledRule, ...] | None = None
            for rule in applicable:
                if rule.parse is not None:
                    rule.parse(record)
                if rule.where is not None and not rule.where(record):
                    continue
                if rule.origin is not None and not rule.origin(ev.source):
                    continue
                matched[rule.id] = matched.get(rule.id, 0) + 1
                if rule.transform is not None:
                    rule.transform(record, ev)
                    transformed[rule.id] = transformed.get(rule.id, 0) + 1
                if rule.sample is not None and not keep_sample(ev.id, rule.sample):
                    dropped_by = rule.id
                    break
                for idx, _ in rule.actions:
                    key = (rule.id, idx)
                    batch = deliveries.get(key)
                    if batch is None:
                        deliveries[key] = [ev]
                    else:
                        batch.append(ev)
                if rule.drop:
                    dropped_by = rule.id
                    break
                if rule.stop:
                    break
                if rule.rewrite_tag is not None:
                    new_tag = rule.rewrite_tag(ev)
                    if new_tag != ev.tag:
                        ev.tag = new_tag
                        restart = tuple(
                            r for r in rules.for_tag(new_tag) if r.ordinal > rule.ordinal
                        )
                        break
            if restart is None:
                break
            applicable = restart
        if dropped_by is None:
            archive(ev)
        else:
            out.dropped[dropped_by] = out.dropped.get(dropped_by, 0) + ev.count
    return out


def _count_rules(ledger: Ledger, routed: Routed) -> None:
    """Add each rule's matched, transformed and dropped events to the ledger, a rule's
    counters in that order, with one update per rule."""
    per_rule: dict[str, dict[str, int]] = {}
    for name, counts in (
        ("matched", routed.matched),
        ("transformed", routed.transformed),
        ("dropped", routed.dropped),
    ):
        for rule_id, n in counts.items():
            found = per_rule.get(rule_id)
            if found is None:
                per_rule[rule_id] = {name: n}
            else:
                found[name] = n
    for rule_id, values in per_rule.items():
        ledger.add_counts(rule_id, values)


class Runtime:
    """Process-wide state of a function: built once, lazily, injectable for tests."""

    def __init__(self, settings: Settings | None = None, clients: Clients | None = None) -> None:
        self._settings = settings
        self.clients = clients or default_clients
        self._rules: RuleStore | None = None
        self._services: Services | None = None
        self.queue_urls: dict[str, str] = {}  # SQS ARN -> URL, for S3 continuations
        self._state: StateTable | None = None
        # (rule id, action index) -> (rules version, its ActionDef, the instance)
        self._actions: dict[tuple[str, int], tuple[str, ActionDef, Action]] = {}

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    @property
    def rules(self) -> RuleStore:
        if self._rules is None:
            s = self.settings
            self._rules = RuleStore(
                TableRules(self.clients.get("dynamodb"), s.rules_table), s.rules_ttl_s
            )
        return self._rules

    def state(self) -> StateTable | None:
        """The state table (idempotency, throttles), or None when not configured."""
        if not self.settings.state_table:
            return None
        if self._state is None:
            self._state = StateTable(self.clients.get("dynamodb"), self.settings.state_table)
        return self._state

    def archiver(self) -> Archiver:
        s = self.settings
        return Archiver(self.clients.get("s3"), s.archive_bucket, s.archive_gzip_level)

    def dead_letters(self) -> DeadLetters:
        from chalicelib.actions.deadletter import DeadLetters

        s = self.settings
        return DeadLetters(
            self.clients.get("sqs"), s.dlq_url, self.clients.get("s3"), s.archive_bucket
        )

    @property
    def services(self) -> Services:
        """What actions may use (settings, clients, secrets): their ActionContext."""
        if self._services is None:
            self._services = Services(lambda: self.settings, self.clients)
        return self._services

    def action(self, rule_id: str, index: int, adef: ActionDef, *, version: str = "") -> Action:
        """The action instance for a rule's action, kept while the rules `version` stays
        (recompiling a version does not rebuild it, so a forward keeps its connection
        pool); rules without a version keep it while the ActionDef is the same object."""
        cached = self._actions.get((rule_id, index))
        if cached is not None and (cached[0] == version if version else cached[1] is adef):
            return cached[2]
        act = action_registry.get(adef.name)(rule_id, adef.opts, self.services)
        self._actions[(rule_id, index)] = (version, adef, act)
        return act


class Pipeline:
    """One invocation's pipeline (handlers make one per invocation)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        # Archive partitions (tag, hour) opened so far: bounded per invocation.
        self.partitions: set[tuple[str, int]] = set()
        # When each (account, region) last sent data: written once per invocation each.
        self.last_seen: org.LastSeen | None = None

    def process(
        self,
        events: Iterable[LogEvent],
        inv: Invocation,
        batch_id: str | None = None,
        *,
        archived: Callable[[LogEvent], bool] | None = None,
        on_archived: Callable[[], None] | None = None,
    ) -> Ledger:
        """Route and act on `events` in slices that fit the memory budget (a list that
        fits is one slice, as it always was). `batch_id` names the archive objects
        (default: the invocation id); sources whose input can be re-delivered pass a
        stable one, and each later slice adds its number to it. `archived` and
        `on_archived` as for `process_slice`, applied to every slice."""
        b = budget()
        if (
            type(events) is list
            and len(events) <= b.slice_events
            and sum([ev.size for ev in events]) <= b.slice_bytes
        ):
            return self.process_slice(
                events, inv, batch_id, archived=archived, on_archived=on_archived
            )
        sink = self.slices(inv, batch_id, archived=archived, on_archived=on_archived)
        sink.extend(events)
        return sink.close()

    def slices(
        self,
        inv: Invocation,
        batch_id: str | None = None,
        *,
        archived: Callable[[LogEvent], bool] | None = None,
        on_archived: Callable[[], None] | None = None,
        isolate: bool = False,
    ) -> Slices:
        """A sink events are pushed into one at a time, processed slice by slice. With
        `isolate`, a slice that fails for a reason that is not AWS's is bisected and the
        event that fails alone dead-lettered (stage `process`), the others processed."""
        sink = Slices(self, inv, batch_id or inv.request_id, budget())
        sink.archived, sink.on_archived = archived, on_archived
        if isolate:
            dead_letter = self._dead_letter(inv)
            sink.isolate = lambda evs, reason: dead_letter(evs, reason, "process")
        return sink

    def process_slice(
        self,
        events: list[LogEvent],
        inv: Invocation,
        batch_id: str | None = None,
        *,
        archived: Callable[[LogEvent], bool] | None = None,
        on_archived: Callable[[], None] | None = None,
    ) -> Ledger:
        """Route and act on one slice of events, held in memory together. Events
        `archived` says are in the archive already (a retry's) are routed and acted on
        but not written again; `on_archived` runs once the slice's other events are
        archived or dead-lettered, before any action (where a source records its position)."""
        ledger = Ledger(received=sum([ev.count for ev in events]))
        rules = self.rt.rules.get()
        events = self._senders(events, inv, ledger, rules)
        tap.observe(self.rt, events, rules, inv.function_name, route)  # `sluice tap`, if on
        t = perf_counter()
        routed = route(events, rules)
        t = add_time("route", t)
        for rule_id, n in routed.dropped.items():
            ledger.drop(rule_id, n)

        dead_letter = self._dead_letter(inv)
        to_write = routed.archive
        if archived is not None:
            to_write = [ev for ev in routed.archive if not archived(ev)]
            ledger.archived += sum(ev.count for ev in routed.archive) - sum(
                ev.count for ev in to_write
            )
        result = self.rt.archiver().write(
            to_write, batch_id or inv.request_id, rules.version, self.partitions
        )
        self.partitions |= result.partitions
        ledger.archived += result.archived
        # Alerts link to the archive object holding their first event (this slice's only).
        links = ArchiveLinks(self.rt.settings.archive_bucket, inv.region, result.by_group)
        for evs, reason in result.failed:
            dead_letter(evs, reason, "archive")
            ledger.dead_letter("archive", sum(ev.count for ev in evs))
        t = add_time("archive", t)
        if on_archived is not None:
            on_archived()

        _count_rules(ledger, routed)
        if routed.deliveries:
            from chalicelib.delivery import deliver

            deliver(routed.deliveries, rules, self.rt, inv, ledger, dead_letter, links)
            add_time("deliver", t)
        return ledger

    def check_absence(self, inv: Invocation, now_ms: int) -> tuple[Ledger, list[dict[str, str]]]:
        """Absence rules: one alert per silence for each tag a rule expects that has logged
        nothing matching it for longer than the rule's window (a stopped heartbeat), sent
        through the rule's actions like any other alert. Returns the ledger and the silences."""
        from chalicelib.alerting.absence import silence_event, silent_tags
        from chalicelib.alerting.gates import Firing
        from chalicelib.alerting.state import AlertState
        from chalicelib.delivery import send

        ledger = Ledger()
        silent: list[dict[str, str]] = []
        table = self.rt.state()
        rules = self.rt.rules.get()
        if table is None:
            ledger.errors.append("absence rules need SLUICE_STATE_TABLE")
            return ledger, silent
        state = AlertState(table.ddb, table.table)
        dead_letter = self._dead_letter(inv)
        for d in rules.defs:
            if not d.absence:
                continue
            spec = d.absence
            window = label(spec.window, spec.window_s)
            indices = [i for i, a in enumerate(d.actions) if a.name not in ROUTING_VERBS]
            for tag, last in silent_tags(state, d.id, spec.window_s, list(spec.tags), now_ms):
                ev = silence_event(d.id, tag, last, window, now_ms)
                silent.append({"rule": d.id, "tag": tag})
                send(
                    d,
                    indices,
                    [Firing([ev])],
                    self.rt,
                    inv,
                    state,
                    ledger,
                    dead_letter,
                    version=rules.version,
                )
        return ledger, silent

    def _senders(
        self, events: list[LogEvent], inv: Invocation, ledger: Ledger, rules: RuleSet
    ) -> list[LogEvent]:
        """The events of allowed senders (chalicelib/org.py); the others dead-lettered
        with their account named. Notes when each (account, region) last sent data."""
        settings = self.rt.settings
        events, refused, origins = org.split_senders(events, settings.allowed_accounts)
        if refused:
            dead_letter = self._dead_letter(inv)
            for account, evs in refused.items():
                dead_letter(evs, org.refused_reason(account), org.REFUSED_STAGE)
                ledger.dead_letter(org.REFUSED_STAGE, sum(ev.count for ev in evs))
        org.name_accounts(events, rules.account_names)
        table = self.rt.state()
        if table is not None and events:
            if self.last_seen is None:
                self.last_seen = org.LastSeen(table.ddb, table.table)
            try:
                self.last_seen.note(origins, inv.function_name or "")
            except Exception as e:
                ledger.errors.append(f"last seen: {type(e).__name__}: {e}")
        return events

    def _dead_letter(self, inv: Invocation) -> DeadLetter:
        """Dead-letter events on behalf of `inv` (the queue's client built on first use)."""
        dlq: DeadLetters | None = None

        def dead_letter(evs: list[LogEvent], reason: str, stage: str, **kw: Any) -> None:
            nonlocal dlq
            dlq = dlq or self.rt.dead_letters()
            dlq.send_events(
                evs,
                reason,
                stage=stage,
                invocation=inv.request_id,
                function=inv.function_name,
                **kw,
            )

        return dead_letter

    def reject(
        self, raw: bytes, err: DecodeError, inv: Invocation, origin: dict[str, Any] | None = None
    ) -> Ledger:
        """An input that never became events: one unit received, one dead-lettered."""
        self.rt.dead_letters().send_raw(
            raw,
            str(err),
            stage="decode",
            invocation=inv.request_id,
            function=inv.function_name,
            origin=origin,
        )
        ledger = Ledger(received=1)
        ledger.dead_letter(f"decode:{err.stage}", 1)
        return ledger


class Slices:
    """Events pushed one at a time and processed in slices of at most `slice_events`
    events and `slice_bytes` of input text (`chalicelib.budget`): a payload of a
    million events never holds more than one slice of them. Slice k's archive objects
    are named `<batch id>-s<k>` (the first keeps the batch id), so a retried input,
    sliced the same way, rewrites the same keys. `ledger` holds the slices done so far
    (what a handler reports if a later slice fails)."""

    __slots__ = (
        "added",
        "archived",
        "batch_id",
        "done",
        "events",
        "inv",
        "isolate",
        "ledger",
        "max_bytes",
        "max_events",
        "n",
        "nbytes",
        "on_archived",
        "pipeline",
    )

    def __init__(self, pipeline: Pipeline, inv: Invocation, batch_id: str, b: Budget) -> None:
        self.pipeline = pipeline
        self.inv = inv
        self.batch_id = batch_id
        self.max_events = b.slice_events
        self.max_bytes = b.slice_bytes
        self.events: list[LogEvent] = []
        self.nbytes = 0
        self.n = 0
        self.added = 0  # events added so far
        self.done = 0  # of those, events in slices processed to the end
        self.ledger = Ledger()
        self.archived: Callable[[LogEvent], bool] | None = None
        self.on_archived: Callable[[], None] | None = None
        # Set: a slice that fails for a reason that is not AWS's is bisected, so only the
        # event that fails alone is dead-lettered (through this, with the reason).
        self.isolate: Callable[[list[LogEvent], str], None] | None = None

    def add(self, ev: LogEvent) -> None:
        self.added += 1
        self.events.append(ev)
        self.nbytes += ev.size
        if len(self.events) >= self.max_events or self.nbytes >= self.max_bytes:
            self.flush()

    def extend(self, events: Iterable[LogEvent]) -> None:
        add = self.add
        for ev in events:
            add(ev)

    @property
    def taken(self) -> int:
        """Input events taken so far, processed or not."""
        return self.ledger.received + len(self.events)

    @property
    def pending(self) -> int:
        """Input events taken but not yet processed."""
        return sum(ev.count for ev in self.events)

    def flush(self) -> None:
        if not self.events:
            return
        events, self.events, self.nbytes = self.events, [], 0
        batch_id = self.batch_id if self.n == 0 else f"{self.batch_id}-s{self.n}"
        self.n += 1
        if self.isolate is None:
            ledger = self.pipeline.process_slice(
                events, self.inv, batch_id, archived=self.archived, on_archived=self.on_archived
            )
        else:
            ledger = self._bisected(events, batch_id)
            if self.on_archived is not None:
                self.on_archived()
        self.ledger.merge(ledger)
        self.done += len(events)

    def _bisected(self, events: list[LogEvent], batch_id: str) -> Ledger:
        """Process `events`; if that raises something that is not AWS's (a value no code
        path expected: the same on every attempt), each half again under its own name
        (`<id>a`, `<id>b`: a retry that fails the same way writes the same objects), down
        to the event that fails alone, which is dead-lettered with the reason. A failure
        after the archive was written is not bisected: those events are archived."""
        written = []
        try:
            return self.pipeline.process_slice(
                events,
                self.inv,
                batch_id,
                archived=self.archived,
                on_archived=lambda: written.append(1),
            )
        except Exception as e:
            if aws_fault(e) or self.isolate is None:
                raise
            if written:
                ledger = Ledger(received=sum(ev.count for ev in events))
                ledger.archived = ledger.received
                ledger.errors.append(f"after the archive: {type(e).__name__}: {e}"[:500])
                return ledger
            if len(events) == 1:
                reason = f"process: {type(e).__name__}: {e}"
                self.isolate(events, reason)
                ledger = Ledger(received=events[0].count)
                ledger.dead_letter(f"process:{type(e).__name__}", events[0].count)
                return ledger
        mid = len(events) // 2
        ledger = self._bisected(events[:mid], batch_id + "a")
        ledger.merge(self._bisected(events[mid:], batch_id + "b"))
        return ledger

    def close(self) -> Ledger:
        self.flush()
        return self.ledger
