"""A small fault-injection toolkit: botocore event hooks on the runtime's own clients,
and kills that end an invocation half-way the way Lambda does.

AWS faults hook `before-send.<service>.<Operation>` on the clients a `Runtime` uses.
That event fires once per HTTP attempt, inside botocore's retry loop, so an injected
`SlowDown` or `ProvisionedThroughputExceededException` meets the SDK's real retry
handling (standard mode, chalicelib/aws.py) exactly as a service's answer would. The
hook answers with an error response in the service's own protocol (rest-xml, query,
JSON), parsed into the same `ClientError` a real one becomes, and the request is
pointed away from moto so the faulted attempt changes nothing in the mocked account
(moto's stubber is a `before-send` handler too, called after ours). Counting is per
HTTP attempt: a call the SDK retried twice is three attempts.

A kill raises `Killed`, a BaseException: no `except Exception` in the runtime can
catch it, so the invocation ends where it stood, with whatever it had written, as
when Lambda times out or runs out of memory. The retry is then a new invocation with
the SAME aws_request_id (Lambda's asynchronous retries keep it) on a fresh Runtime
(Lambda replaces an execution environment that timed out).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

# The faulted request goes nowhere: moto's stubber ignores URLs outside AWS.
NOWHERE = "http://fault.sluice.invalid/"

# What each service answers when it throttles (botocore retries every one of these).
THROTTLE = {
    "s3": (503, "SlowDown", "Please reduce your request rate."),
    "dynamodb": (400, "ProvisionedThroughputExceededException", "Rate of requests exceeds"),
    "sqs": (400, "RequestThrottled", "Request is throttled."),
    "sns": (400, "Throttling", "Rate exceeded"),
    "kinesis": (400, "ProvisionedThroughputExceededException", "Rate exceeded for shard"),
}
# A service failing outright (5xx: retried by the SDK, then raised).
DOWN = {
    "s3": (500, "InternalError", "We encountered an internal error. Please try again."),
    "dynamodb": (500, "InternalServerError", "Internal server error"),
    "sqs": (500, "InternalError", "The request processing has failed"),
    "sns": (500, "InternalError", "Internal failure"),
    "kinesis": (500, "InternalFailure", "Internal service failure"),
}


class Killed(BaseException):
    """Lambda ending the invocation mid-way (timeout, out of memory, crash)."""


class _Raw:
    """The body of a synthetic response, as botocore reads it."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body

    def read(self, *_: Any) -> bytes:
        body, self.body = self.body, b""
        return body


def error_response(protocol: str, url: str, status: int, code: str, message: str) -> AWSResponse:
    """An AWS error answer in the service's protocol, as botocore parses them."""
    if protocol == "rest-xml":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml"}
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>FAULT</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    else:  # json
        body = orjson.dumps({"__type": code, "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "FAULT"}
    return AWSResponse(url, status, headers, _Raw(body))


Match = Callable[[AWSPreparedRequest], bool]


@dataclass
class Fault:
    """One injected fault: which attempts of an operation it takes, and what they get."""

    service: str
    operation: str
    skip: int = 0  # matching attempts let through before the fault starts
    times: int | None = None  # attempts faulted (None: every one, for the whole test)
    answer: tuple[int, str, str] | None = None  # (HTTP status, error code, message)
    exception: Callable[[], BaseException] | None = None
    when: Match | None = None  # only requests this accepts count
    seen: int = 0  # matching attempts so far
    fired: int = 0  # attempts faulted so far

    def applies(self, request: AWSPreparedRequest) -> bool:
        if self.when is not None and not self.when(request):
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


class Faults:
    """Faults on the clients of one Runtime (`rt.clients`); `attempts` counts every
    HTTP attempt the runtime made per (service, operation), faulted or not."""

    def __init__(self, clients: Any) -> None:
        self.clients = clients
        self.faults: list[Fault] = []
        self.attempts: Counter[tuple[str, str]] = Counter()
        self._hooked: set[str] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------- injecting
    def error(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        status: int = 400,
        message: str = "injected fault",
        times: int | None = None,
        skip: int = 0,
        when: Match | None = None,
    ) -> Fault:
        """Answer matching attempts with an error code and HTTP status."""
        return self._add(
            Fault(service, operation, skip, times, (status, code, message), None, when)
        )

    def throttle(
        self, service: str, operation: str, times: int = 2, *, when: Match | None = None
    ) -> Fault:
        """The service's own throttling answer for the next `times` attempts, then through."""
        status, code, message = THROTTLE[service]
        return self.error(
            service, operation, code, status=status, message=message, times=times, when=when
        )

    def down(
        self, service: str, operation: str, *, when: Match | None = None, skip: int = 0
    ) -> Fault:
        """A 5xx for every matching attempt from now to the end of the test."""
        status, code, message = DOWN[service]
        return self.error(
            service, operation, code, status=status, message=message, when=when, skip=skip
        )

    def raise_(
        self,
        service: str,
        operation: str,
        exception: Callable[[], BaseException],
        *,
        times: int | None = 1,
        skip: int = 0,
        when: Match | None = None,
    ) -> Fault:
        """Raise `exception()` from the attempt (a connection error, a timeout...)."""
        return self._add(Fault(service, operation, skip, times, None, exception, when))

    def kill(
        self, service: str, operation: str, *, skip: int = 0, when: Match | None = None
    ) -> Fault:
        """End the invocation at the (skip+1)-th matching attempt: `Killed` is raised
        before the request leaves, so that attempt changes nothing."""
        return self.raise_(
            service,
            operation,
            lambda: Killed(f"{service}.{operation}"),
            times=1,
            skip=skip,
            when=when,
        )

    def clear(self) -> None:
        """Every fault off: the services recover."""
        with self._lock:
            self.faults.clear()

    # ------------------------------------------------------------- plumbing
    def _add(self, fault: Fault) -> Fault:
        client = self.clients.get(fault.service)
        if fault.service not in self._hooked:
            # register_first: ahead of moto's stubber, which listens on `before-send` too.
            client.meta.events.register_first(f"before-send.{fault.service}", self._before_send)
            self._hooked.add(fault.service)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> Any:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self.attempts[(service, operation)] += 1
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.service == service and f.operation == operation and f.applies(request)
                ),
                None,
            )
        if fault is None:
            return None
        if fault.exception is not None:
            raise fault.exception()
        assert fault.answer is not None
        status, code, message = fault.answer
        protocol = self.clients.get(service).meta.service_model.protocol
        request.url = NOWHERE  # moto must not carry out what the "service" refused
        return error_response(protocol, NOWHERE, status, code, message)


def body_has(*needles: str) -> Match:
    """A `when` filter: the request's URL or body mentions every needle (a table name,
    a partition of the archive, a queue)."""

    def match(request: AWSPreparedRequest) -> bool:
        body = request.body
        text = unquote(request.url)
        if isinstance(body, bytes):
            text += body.decode("utf-8", "replace")
        elif isinstance(body, str):
            text += body
        return all(n in text for n in needles)

    return match


def kill_before(monkeypatch: Any, owner: Any, name: str, *, skip: int = 0) -> list[int]:
    """Replace `owner.name` (a function or method) so its (skip+1)-th call raises `Killed`
    before doing anything; returns the call counter (a one-item list)."""
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == skip + 1:
            raise Killed(f"{getattr(owner, '__name__', owner)}.{name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls
