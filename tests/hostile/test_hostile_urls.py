"""Outbound URLs: parsed and judged, never prefix-tested.

A Slack incoming webhook comes from a secret, and a prefix test once let
`http://127.0.0.1@evil.example/` through as loopback (the host is `evil.example`; the
rest is userinfo). Webhook URLs are refused when they carry userinfo, a scheme other
than https, a port other than the default (unless configured), or a loopback or
link-local host (loopback only with the local stack's explicit setting). HTTP forwards
apply the same parser: userinfo refused, https required but to loopback. Nothing here
reaches the network: every refused URL is refused before any connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.actions.slack_client import connection
from chalicelib.errors import ActionError, RulesInvalid
from chalicelib.rules.schema import load_rules
from chalicelib.urlpolicy import UrlPolicy, url_problem

from .harness import SLACK_SECRET, Account, mocked_account

HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"

# (url, refused because ...) for a webhook with the default settings
REFUSED = [
    pytest.param("http://127.0.0.1@evil.example/services/x", "credentials", id="userinfo host"),
    pytest.param("https://127.0.0.1@evil.example/x", "credentials", id="https userinfo host"),
    pytest.param("https://user:pass@hooks.slack.com/services/x", "credentials", id="user pass"),
    pytest.param("https://@hooks.slack.com/x", "credentials", id="empty userinfo"),
    pytest.param("http://hooks.slack.com/services/x", "must be https", id="plain http"),
    pytest.param("HTTP://hooks.slack.com/services/x", "must be https", id="upper-case http"),
    pytest.param("ftp://hooks.slack.com/x", "http(s) URL", id="ftp"),
    pytest.param("file:///etc/passwd", "http(s) URL", id="file"),
    pytest.param("javascript:alert(1)", "http(s) URL", id="javascript"),
    pytest.param("https://hooks.slack.com:8443/services/x", "port 8443", id="other port"),
    pytest.param("https://hooks.slack.com:80/services/x", "port 80", id="http port on https"),
    pytest.param("https://hooks.slack.com:99999/x", "valid host and port", id="port out of range"),
    pytest.param("http://127.0.0.1:9001/services/x", "loopback", id="loopback"),
    pytest.param("http://localhost/x", "loopback", id="localhost"),
    pytest.param("http://api.localhost/x", "loopback", id="a .localhost name"),
    pytest.param("http://127.1/x", "loopback", id="short loopback"),
    pytest.param("http://2130706433/x", "loopback", id="decimal loopback"),
    pytest.param("http://[::1]:8080/x", "loopback", id="ipv6 loopback"),
    pytest.param("http://[::ffff:127.0.0.1]/x", "loopback", id="ipv4-mapped loopback"),
    pytest.param("http://0.0.0.0/x", "loopback", id="unspecified"),
    pytest.param("http://169.254.169.254/latest", "link-local", id="metadata address"),
    pytest.param("https://hooks.slack.com\\@evil.example/x", "backslashes", id="backslash"),
    pytest.param("https://hooks.slack.com /x", "spaces", id="space"),
    pytest.param("https://hooks.slack.com/x\r\nHost: evil", "control", id="header injection"),
    pytest.param("https:///services/x", "with a host", id="no host"),
    pytest.param("//hooks.slack.com/x", "with a host", id="no scheme"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    """Each URL a webhook must not be is refused by the default policy, with the reason."""
    problem = url_problem(url)
    assert problem is not None and reason in problem, problem


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        pytest.param(HOOK, UrlPolicy(), id="a Slack webhook"),
        pytest.param("https://hooks.slack.com:443/services/x", UrlPolicy(), id="explicit 443"),
        pytest.param("https://proxy.example:8443/x", UrlPolicy(ports={8443}), id="allowed port"),
        pytest.param("http://127.0.0.1:9/x", UrlPolicy(allow_loopback=True), id="local stack"),
        pytest.param("http://[::1]:9/x", UrlPolicy(allow_loopback=True), id="local stack ipv6"),
    ],
)
def test_allowed_urls_pass(url: str, policy: UrlPolicy) -> None:
    """https on the default port passes; a port or loopback passes only when configured."""
    assert url_problem(url, policy) is None


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        pytest.param("http://127.0.0.1@evil.example/", UrlPolicy(allow_loopback=True), id="ui"),
        pytest.param("http://evil.example/", UrlPolicy(allow_loopback=True), id="http remote"),
        pytest.param("https://x.example:8443/", UrlPolicy(allow_loopback=True), id="port"),
        pytest.param("http://169.254.169.254/", UrlPolicy(allow_loopback=True), id="metadata"),
    ],
)
def test_allowing_loopback_allows_nothing_else(url: str, policy: UrlPolicy) -> None:
    """The local stack's loopback setting opens loopback only: not userinfo, remote http,
    other ports or the metadata address."""
    assert url_problem(url, policy) is not None


# ---------------------------------------------------------------- through the runtime
@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        yield acct


def webhook_secret(account: Account, url: str) -> None:
    account.secretsmanager.put_secret_value(
        SecretId=SLACK_SECRET, SecretString=json.dumps({"webhook_url": url})
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1@evil.example/services/x",
        "https://u:p@hooks.slack.com/services/x",
        "http://hooks.slack.com/services/x",
        "https://hooks.slack.com:8443/services/x",
        "http://127.0.0.1:9/services/x",
    ],
)
def test_webhook_secret_with_a_refused_url_is_an_action_error(account: Account, url: str) -> None:
    """A webhook URL from the secret that the policy refuses is an ActionError (the alert
    is dead-lettered with the reason) before any client is built or request sent."""
    webhook_secret(account, url)
    with pytest.raises(ActionError) as info:
        connection(account.runtime.services).client(refresh=True)
    assert "webhook_url" in str(info.value)
    assert url not in str(info.value)  # the URL is a credential: never in a dead letter


def test_configured_settings_open_only_what_they_name(account: Account) -> None:
    """SLUICE_ALLOWED_URL_PORTS allows those ports; SLUICE_ALLOW_LOOPBACK_URLS allows
    loopback (the local stack); without them both URLs are refused."""
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime

    for url, changes in (
        ("https://hooks.slack.com:8443/services/x", {"allowed_url_ports": frozenset({8443})}),
        ("http://127.0.0.1:9/services/x", {"allow_loopback_urls": True}),
    ):
        webhook_secret(account, url)
        with pytest.raises(ActionError):
            connection(account.runtime.services).credential(force=True)
        configured = Runtime(replace(account.runtime.settings, **changes), Clients())
        assert connection(configured.services).credential(force=True) == ("webhook", url)


def test_settings_read_the_url_options_from_the_environment() -> None:
    """Ports are a comma-separated list; loopback is on only for true/1/yes."""
    from chalicelib.settings import Settings

    base = {"SLUICE_RULES_TABLE": "r", "SLUICE_ARCHIVE_BUCKET": "b", "SLUICE_DLQ_URL": "q"}
    s = Settings.from_env(
        {**base, "SLUICE_ALLOWED_URL_PORTS": "8443, 9000", "SLUICE_ALLOW_LOOPBACK_URLS": "true"}
    )
    assert (s.allowed_url_ports, s.allow_loopback_urls) == (frozenset({8443, 9000}), True)
    s = Settings.from_env(base)
    assert (s.allowed_url_ports, s.allow_loopback_urls) == (frozenset(), False)


# ---------------------------------------------------------------- forwards
def forward_problems(url: str, **opts: Any) -> list[tuple[str, str]]:
    """The rules schema's errors for one forward action, as (option, reason)."""
    try:
        load_rules(
            {"rules": [{"id": "r", "actions": [{"forward": {"to": "http", "url": url, **opts}}]}]}
        )
    except RulesInvalid as e:
        return [(err.field.removeprefix("actions[0].forward."), err.reason) for err in e.errors]
    return []


@pytest.mark.parametrize(
    ("url", "opts", "refused"),
    [
        pytest.param("http://127.0.0.1@evil.example/", {}, True, id="userinfo host"),
        pytest.param("http://logs.example/ingest", {}, True, id="plain http to a remote host"),
        pytest.param("http://169.254.169.254/", {}, True, id="metadata address"),
        pytest.param("https://x.example\\@y.example/", {}, True, id="backslash"),
        pytest.param("https://hec.example:8088", {"format": "splunk"}, False, id="HEC port"),
        pytest.param("http://localhost:4318/v1/logs", {}, False, id="a local collector"),
        pytest.param("https://logs.example/ingest", {}, False, id="https"),
    ],
)
def test_forward_urls_use_the_same_parser(url: str, opts: dict[str, Any], refused: bool) -> None:
    """Forward URLs (written in the rules file, port included) refuse userinfo, backslashes,
    link-local hosts and plain http to a remote host; https on any port and loopback
    collectors (Lambda extensions) stay allowed."""
    problems = forward_problems(url, **opts)
    assert bool([p for p in problems if p[0] == "url"]) is refused, problems
