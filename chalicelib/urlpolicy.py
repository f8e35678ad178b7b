"""Which outbound URLs Sluice may post to: parsed and judged, never prefix-tested.

A prefix test lets `http://127.0.0.1@evil.example/` through as "loopback": the part
before `@` is userinfo and the host is `evil.example`. Every URL Sluice sends to (a
Slack incoming webhook from a secret, an HTTP forward from the rules file) is parsed
with `urllib.parse.urlsplit` and refused when it carries:

- userinfo (`user:pass@`): credentials belong in a secret, and `@` is how a host is
  disguised;
- a scheme other than https (plain http only to loopback, and only where allowed);
- a port other than the scheme's default, unless the port is configured;
- a loopback or unspecified host (`127.0.0.0/8`, `::1`, `localhost`, `0.0.0.0`, also
  written `127.1` or `2130706433`), unless loopback is explicitly allowed (the local
  stack sets `SLUICE_ALLOW_LOOPBACK_URLS`); a link-local one (`169.254.0.0/16`, where
  instance metadata lives) always;
- whitespace, control characters or backslashes (parsers disagree on them).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """What a kind of URL may do beyond https to a public host on port 443."""

    allow_loopback: bool = False  # loopback hosts (any port, http too): the local stack only
    ports: Collection[int] = field(default_factory=frozenset)  # non-default ports allowed
    any_port: bool = False  # every port allowed (the URL's port is itself configuration)
    allow_http: bool = False  # plain http to non-loopback hosts (never by default)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Shorthand and numeric IPv4 forms the resolver accepts: `127.1`, `2130706433`, `0x7f.1`.
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def local_kind(host: str) -> str | None:
    """ "loopback" for a host naming this machine (or none: 0.0.0.0), "link-local" for
    169.254.0.0/16 and fe80::/10, None for any other host."""
    h = host.lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return "loopback"
    ip = _ip(h)
    if ip is None:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return "loopback"
    return "link-local" if ip.is_link_local else None


def url_problem(url: object, policy: UrlPolicy = UrlPolicy()) -> str | None:
    """Why `url` may not be posted to under `policy`, or None when it may."""
    if not isinstance(url, str) or not url:
        return "must be a URL"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in url):
        return "must not hold spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be an http(s) URL with a valid host and port"
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return "must be an http(s) URL with a host"
    if "@" in parts.netloc:
        return "must not hold credentials (user:password@): put them in the secret"
    kind = local_kind(parts.hostname)
    if kind == "link-local":
        return f"must not point at link-local host {parts.hostname} (instance metadata)"
    if kind == "loopback":
        if not policy.allow_loopback:
            return f"must not point at loopback host {parts.hostname} (the local stack only)"
        return None
    if scheme != "https" and not policy.allow_http:
        return "must be https"
    default = DEFAULT_PORTS[scheme]
    if port not in (None, default) and not policy.any_port and port not in policy.ports:
        return f"must use the default port, not port {port} (allow it in the settings)"
    return None


class UrlRefused(ValueError):
    """A URL the policy does not allow."""


def check_url(url: object, policy: UrlPolicy, what: str) -> str:
    """`url` itself when allowed, else UrlRefused naming `what` and the reason."""
    problem = url_problem(url, policy)
    if problem is not None:
        raise UrlRefused(f"{what} {problem}")
    assert isinstance(url, str)
    return url


def webhook_policy(settings: object) -> UrlPolicy:
    """What a Slack incoming-webhook URL may be beyond https on port 443, from the settings
    (SLUICE_ALLOW_LOOPBACK_URLS, SLUICE_ALLOWED_URL_PORTS); closed where they say nothing."""
    return UrlPolicy(
        allow_loopback=bool(getattr(settings, "allow_loopback_urls", False)),
        ports=frozenset(getattr(settings, "allowed_url_ports", ())),
    )
