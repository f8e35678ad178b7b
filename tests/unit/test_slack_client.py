"""chalicelib.actions.slack_client: the WebClient Sluice builds logs what slack_sdk's own
logger would log, without formatting debug lines that logging would drop."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.actions.slack_client import SDK_LOGGER, connection, sdk_logger


@pytest.fixture
def sdk_log_config() -> Iterator[None]:
    """Leave the root logger's and slack_sdk's logger's levels as they were found."""
    root, own = logging.getLogger(), logging.getLogger(SDK_LOGGER)
    levels = root.level, own.level
    yield
    root.setLevel(levels[0])
    own.setLevel(levels[1])


# (root level, slack_sdk logger's own level, the client gets a logger of its own)
LEVELS: list[Any] = [
    pytest.param(logging.WARNING, logging.NOTSET, True, id="Lambda's default: WARNING"),
    pytest.param(logging.ERROR, logging.NOTSET, True, id="ERROR"),
    pytest.param(logging.INFO, logging.NOTSET, False, id="INFO: retry lines are logged"),
    pytest.param(logging.DEBUG, logging.NOTSET, False, id="DEBUG: every line is logged"),
    pytest.param(logging.WARNING, logging.DEBUG, False, id="slack_sdk's logger set to DEBUG"),
    pytest.param(logging.DEBUG, logging.WARNING, False, id="slack_sdk's logger set to WARNING"),
]


@pytest.mark.parametrize(("root", "own", "replaced"), LEVELS)
def test_the_client_s_logger_skips_only_lines_logging_would_drop(
    sdk_log_config: None, root: int, own: int, replaced: bool
) -> None:
    """Where slack_sdk's logger would drop its debug and info lines, the client gets a
    logger of the same name and effective level whose own level turns off their
    formatting; otherwise slack_sdk's own logger is used as it is."""
    logging.getLogger().setLevel(root)
    logging.getLogger(SDK_LOGGER).setLevel(own)
    got = sdk_logger()
    if not replaced:
        assert got is None
        return
    assert got is not None
    assert got.name == SDK_LOGGER
    assert got.parent is logging.getLogger(SDK_LOGGER)
    assert got.level == got.getEffectiveLevel() == logging.getLogger(SDK_LOGGER).getEffectiveLevel()
    assert got.level > logging.INFO  # slack_sdk's `if logger.level <= DEBUG` guard is off


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _failed_post(client: Any) -> None:
    from slack_sdk.errors import SlackClientError

    client.retry_handlers = []
    with pytest.raises((OSError, SlackClientError)):
        client.chat_postMessage(channel="#ops", text="x", blocks=[{"type": "divider"}])


def test_the_client_s_records_are_slack_sdk_s(
    runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sdk_log_config: None,
) -> None:
    """Under WARNING, the client Sluice builds logs the same records, by the same logger
    name, as a WebClient on slack_sdk's own logger (here: a refused connection's error),
    and no debug line."""
    from slack_sdk import WebClient

    monkeypatch.setenv("SLUICE_SLACK_API_URL", f"http://127.0.0.1:{_closed_port()}/api")
    logging.getLogger().setLevel(logging.WARNING)
    caplog.set_level(logging.WARNING)
    ours = connection(runtime.services).client()
    assert ours.logger is not logging.getLogger(SDK_LOGGER)
    _failed_post(ours)
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    caplog.clear()
    _failed_post(WebClient(token="xoxb-test", base_url=ours.base_url, timeout=10))
    want = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == want and got and all(n == SDK_LOGGER for n, _, _ in got)
