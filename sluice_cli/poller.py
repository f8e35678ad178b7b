"""CloudWatch Logs subscription delivery, emulated: new events in, handler calls out.

`LogsPoller` reads what anyone writes to CloudWatch Logs (moto's, for the local
stack) and calls a `deliver(event, context)` function, normally the
`cloudwatch_logs` handler, with the payload AWS would send: `{"awslogs":
{"data": base64(gzip(json))}}`, one per log stream batch, and a Lambda-like
context object.
"""

from __future__ import annotations

import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from sluice_cli.payloads import ACCOUNT, REGION, subscription_event

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-cloudwatch_logs"
# Sluice's own functions log to /aws/lambda/sluice-*: feeding those back would loop.
OWN_LOG_GROUPS = ("/aws/lambda/sluice-",)
# CloudWatch Logs puts up to 10,000 events in a subscription payload; 1,000 is
# closer to what a function sees under light load and keeps an invocation short.
# 1 MiB of message text bounds a batch of huge lines.
MAX_BATCH_EVENTS = 1_000
MAX_BATCH_BYTES = 1_048_576
# Lambda retries a failed asynchronous invocation twice (1 + 2 attempts), minutes
# apart; locally the same count, milliseconds apart.
ATTEMPTS = 3
RETRY_PAUSE_S = 0.2


def function_arn(function: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-{function}"


@dataclass(slots=True)
class LambdaContext:
    """What the handlers read from Lambda's context object."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "cloudwatch_logs"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 512
    timeout_ms: int = 60_000  # Chalice's default lambda_timeout
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, function: str, timeout_ms: int, request_id: str | None = None) -> LambdaContext:
        """The context of another of Sluice's functions (timeouts: .chalice/config.json)."""
        return cls(
            aws_request_id=request_id or str(uuid.uuid4()),
            function_name=function,
            invoked_function_arn=function_arn(function),
            timeout_ms=timeout_ms,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


Deliver = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


@dataclass(slots=True)
class Outcome:
    """One delivery: where from, how many items, and what the handler answered.

    `group`/`stream` name the origin per source: log group and stream
    (cloudwatch), stream and shard (kinesis), queue and "" (sqs).
    """

    group: str
    stream: str
    events: int  # items delivered: log events, Kinesis records, SQS messages
    result: dict[str, Any] | None = None  # the handler's ledger dict
    error: str | None = None  # set when every attempt raised (or retries ran out)
    source: str = "cloudwatch"


class Poller(ABC):
    """A background thread that polls a source and hands batches to a handler.

    Subclasses implement `poll()` (one pass; returns items delivered) and call
    `_record` per delivery. Progress is observable from other threads:
    `delivered`, `wait_delivered`, `results`, `wait_received`.
    """

    thread_name = "poller"

    def __init__(
        self,
        *,
        interval_s: float = 0.1,
        on_outcome: Callable[[Outcome], None] | None = None,
        retry_pause_s: float = RETRY_PAUSE_S,
    ) -> None:
        self.interval_s = interval_s
        self.retry_pause_s = retry_pause_s
        self.on_outcome = on_outcome
        self.outcomes: list[Outcome] = []
        self.errors: list[str] = []  # polling errors (retried on the next poll)
        self._poll_lock = threading.Lock()  # one poll at a time: no double delivery
        self._cond = threading.Condition()
        self._delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as e:  # moto answering mid-shutdown, a resource deleted under us
                self.errors = [*self.errors[-99:], f"{type(e).__name__}: {e}"]  # the last 100
            self._stop.wait(self.interval_s)

    @abstractmethod
    def poll(self) -> int:
        """Deliver what is new since the last call; return how many events went."""

    # ------------------------------------------------------------- progress
    def _record(self, outcome: Outcome) -> None:
        with self._cond:
            self.outcomes.append(outcome)
            self._delivered += outcome.events
            self._cond.notify_all()
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    @property
    def delivered(self) -> int:
        """Items handed to the handler (whatever it did with them)."""
        with self._cond:
            return self._delivered

    def wait_delivered(self, n: int, timeout: float = 10.0) -> int:
        """Block until at least `n` items were delivered; TimeoutError after `timeout` s."""
        self._wait(
            lambda: self._delivered >= n,
            timeout,
            lambda: f"{self._delivered} of {n} items delivered",
        )
        return self.delivered

    def received(self) -> int:
        """Events the handler's ledgers say they received, over every delivery."""
        with self._cond:
            return self._received()

    def _received(self) -> int:
        return sum(int(o.result.get("received", 0)) for o in self.outcomes if o.result)

    def wait_received(self, n: int, timeout: float = 10.0) -> int:
        """Block until the handler's ledgers count at least `n` received events."""
        self._wait(
            lambda: self._received() >= n,
            timeout,
            lambda: f"{self._received()} of {n} events received",
        )
        return self.received()

    def _wait(self, done: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{what()} after {timeout}s; poll errors: {self.errors[-3:]}"
                    )
                self._cond.wait(left)

    def results(self) -> list[dict[str, Any]]:
        with self._cond:
            return [o.result for o in self.outcomes if o.result is not None]


class LogsPoller(Poller):
    """Delivers what is written to CloudWatch Logs to the `cloudwatch_logs` handler.

    Why polling instead of moto's own subscription delivery (put_subscription_filter
    to a Kinesis stream, then get_records): a subscription only sees events put
    *after* it exists, and applications (the simulator included) create a group
    and write at once, before any poller could subscribe it; moto also sends
    ids as integers where AWS sends strings. Polling reads what is stored, so
    a group created and written a millisecond ago is not missed.

    How, checked against moto 5.2.5: `describe_log_streams` reports an
    `uploadSequenceToken` that moto bumps after each PutLogEvents has appended
    its events, so a stream whose token is unchanged has nothing new and is not
    read. A changed stream is read with `filter_log_events`, which carries each
    event's `eventId` (a process-wide counter in moto; AWS: unique per group).
    Positions are the set of ids delivered per (group, stream): timestamps
    cannot serve, since events arrive with older timestamps than ones already
    stored and moto returns them sorted by timestamp. The token is read before
    the events, so a write that races a poll changes the token again and is
    picked up by the next poll; the id sets make that re-read harmless. They
    grow with the stored events, as moto's own store does (which keeps the
    messages too), so they cost a fraction of what the local stack holds anyway.
    """

    thread_name = "logs-poller"

    def __init__(
        self,
        logs: Any,
        deliver: Deliver,
        *,
        interval_s: float = 0.1,
        exclude_prefixes: tuple[str, ...] = OWN_LOG_GROUPS,
        on_outcome: Callable[[Outcome], None] | None = None,
        retry_pause_s: float = RETRY_PAUSE_S,
    ) -> None:
        super().__init__(interval_s=interval_s, on_outcome=on_outcome, retry_pause_s=retry_pause_s)
        self.logs = logs
        self.deliver = deliver
        self.exclude_prefixes = exclude_prefixes
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._tokens: dict[tuple[str, str], tuple[Any, ...]] = {}

    # ------------------------------------------------------------- polling
    def poll(self) -> int:
        """One pass over every log group; returns the number of events delivered.

        Safe to call from any thread (the poller's own included): when it
        returns, everything written before the call has been delivered.
        """
        with self._poll_lock:
            n = 0
            for page in self.logs.get_paginator("describe_log_groups").paginate():
                for g in page.get("logGroups", []):
                    name = g["logGroupName"]
                    if not name.startswith(self.exclude_prefixes):
                        n += self._poll_group(name)
            return n

    def _poll_group(self, group: str) -> int:
        changed: dict[str, tuple[Any, ...]] = {}
        for page in self.logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
            for s in page.get("logStreams", []):
                token = (
                    s.get("uploadSequenceToken"),
                    s.get("storedBytes"),
                    s.get("lastIngestionTime"),
                )
                if token[0] is not None and self._tokens.get((group, s["logStreamName"])) != token:
                    changed[s["logStreamName"]] = token
        n = 0
        names = sorted(changed)
        for i in range(0, len(names), 100):  # filter_log_events takes at most 100 stream names
            fresh: dict[str, list[dict[str, Any]]] = {}
            pages = self.logs.get_paginator("filter_log_events").paginate(
                logGroupName=group, logStreamNames=names[i : i + 100]
            )
            for page in pages:
                for ev in page.get("events", []):
                    seen = self._seen.setdefault((group, ev["logStreamName"]), set())
                    if ev["eventId"] not in seen:
                        fresh.setdefault(ev["logStreamName"], []).append(ev)
            for stream in names[i : i + 100]:
                n += self._deliver_stream(group, stream, fresh.get(stream, []))
                self._tokens[(group, stream)] = changed[stream]
        return n

    def _deliver_stream(self, group: str, stream: str, events: list[dict[str, Any]]) -> int:
        events.sort(key=lambda e: (e["timestamp"], _id_order(e["eventId"])))
        seen = self._seen.setdefault((group, stream), set())
        n = 0
        for batch in _batches(events):
            log_events = [
                {"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]}
                for e in batch
            ]
            outcome = self._invoke(
                group, stream, len(batch), subscription_event(group, stream, log_events)
            )
            # Marked delivered whatever the outcome: after its retries Lambda
            # discards an async event too, and the outcome records the error.
            seen.update(e["eventId"] for e in batch)
            self._record(outcome)
            n += len(batch)
        return n

    def _invoke(self, group: str, stream: str, n: int, event: dict[str, Any]) -> Outcome:
        # One request id across the attempts, as Lambda keeps it for async retries
        # (the archive's object keys derive from it, so a retry overwrites).
        request_id = str(uuid.uuid4())
        error = ""
        for attempt in range(ATTEMPTS):
            try:
                result = self.deliver(event, LambdaContext(aws_request_id=request_id))
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
                if attempt + 1 < ATTEMPTS and not self._stop.wait(self.retry_pause_s * 2**attempt):
                    continue
                break
            return Outcome(group, stream, n, result=result)
        return Outcome(group, stream, n, error=error)


def _id_order(event_id: str) -> tuple[int, int | str]:
    return (0, int(event_id)) if event_id.isdigit() else (1, event_id)


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for e in events:
        n = len(e["message"])
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + n > MAX_BATCH_BYTES):
            out.append(batch)
            batch, size = [], 0
        batch.append(e)
        size += n
    if batch:
        out.append(batch)
    return out
