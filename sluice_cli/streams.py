"""stdout is the command's result; what the functions log goes to stderr.

In Lambda the functions write their ledger line, their metrics (EMF) and their
Powertools log lines to stdout, where CloudWatch Logs collects them. When the CLI
runs a function in its own process (`sluice invoke`, the local stack, `dlq
replay`), those lines would land in the middle of the command's output, and
`sluice invoke … | jq` would fail. So, for the length of each command:

- `sys.stdout` is a `Router`: writes go to the real stdout, except writes made by
  a thread while it runs function code (`function_output()`), which go to stderr;
- the Powertools logger writes to stderr (whatever `sys.stderr` is at each write).

Threads matter: the local stack's pollers run handlers while the main thread
prints the command's own output.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from chalicelib.observe import logger

_state = threading.local()


class _StderrNow:
    """A stream that is whatever `sys.stderr` is at each write (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _StdoutNow:
    """A stream that is whatever `sys.stdout` is at each write."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class Router:
    """`sys.stdout` while a command runs: function output to stderr, the rest through."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    @property
    def wrapped(self) -> TextIO:
        return self._out

    def write(self, text: str) -> int:
        if getattr(_state, "depth", 0):
            return sys.stderr.write(text)
        return self._out.write(text)

    def flush(self) -> None:
        self._out.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, buffer...
        return getattr(self._out, name)


@contextmanager
def function_output() -> Iterator[None]:
    """Whatever this thread writes to stdout meanwhile (a handler's ledger line and
    metrics) goes to stderr; the Powertools logger writes to stderr too."""
    _logger_to_stderr()
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


_logger_stream: list[Any] = []  # the logger's stream before `_logger_to_stderr`
_logger_lock = threading.Lock()  # the local stack's pollers enter function_output together


def _logger_to_stderr() -> None:
    if _logger_stream or not isinstance(sys.stdout, Router):
        return  # done already, or not inside a command (a library caller keeps stdout)
    with _logger_lock:
        if _logger_stream:
            return
        handler = logger().registered_handler
        _logger_stream.append(handler.stream)
        handler.setStream(_StderrNow())


def install() -> Callable[[], None]:
    """Route function output to stderr until the returned undo is called."""
    if isinstance(sys.stdout, Router):
        return lambda: None
    router = Router(sys.stdout)
    sys.stdout = router

    def undo() -> None:
        if sys.stdout is router:
            sys.stdout = router.wrapped
        if _logger_stream:
            saved = _logger_stream.pop()
            # A logger first built during the command holds the router: stdout it is.
            logger().registered_handler.setStream(
                _StdoutNow() if isinstance(saved, Router) else saved
            )

    return undo
