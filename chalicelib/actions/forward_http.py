"""The HTTP destination of `forward`: batches in one of the formats of forward_formats,
POSTed with urllib3, retried on 429, 5xx and transport errors.

urllib3 rather than urllib.request: it ships with botocore (no new dependency), it
keeps connections alive across batches and warm invocations (one TLS handshake
instead of one per request), and it can refuse redirects, where urllib.request
turns a redirected POST into a body-less GET and carries the Authorization header
to the new host.

Per batch: 2xx is read for per-item failures (OpenSearch `_bulk`, Splunk HEC) and
only the retryable items go again; 429 and 5xx wait (Retry-After honoured) and
retry; 413 halves the batch; 401/403 re-reads the secret once (rotation); any
other status fails the batch for good. The auth value never reaches a reason.
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from chalicelib.actions.forward_common import Outcome, Retry, chunks, envelopes
from chalicelib.actions.forward_formats import Format, Piece
from chalicelib.errors import ActionError
from chalicelib.event import LogEvent

USER_AGENT = "sluice-forward/1"
Stop = tuple[str, bool]  # why later batches are not tried, and whether a replay may help


class Auth:
    """The Authorization header from a Secrets Manager secret, or an SSM parameter when
    the name starts with `/` or `ssm:`, through the runtime's Secrets (Powertools
    parameters, cached 5 minutes per warm function; re-read at once after a 401/403).

    Values: `{"authorization": "<header value>"}`, `{"username": .., "password": ..}`
    (Basic), `{"token": ..}` or a bare token (`Splunk <token>` for HEC, else Bearer).
    """

    def __init__(self, runtime: Any, name: str, scheme: str) -> None:
        self.runtime = runtime
        self.name = name
        self.scheme = scheme
        self.secrets: list[str] = []  # values to keep out of reasons

    def header(self, refresh: bool = False) -> str:
        try:
            raw = self._read(refresh)
        except Exception as e:  # Powertools' GetParameterError, the SDK's error its context
            cause = e.__cause__ or e.__context__ or e
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            raise ActionError(
                "forward",
                f"secret {self.name!r} could not be read: {code or type(cause).__name__}",
                retryable=code not in ("ResourceNotFoundException", "ParameterNotFound"),
            ) from None
        return self._parse(raw)

    def _read(self, refresh: bool) -> str:
        return str(self.runtime.secrets.get(self.name, force=refresh))

    def _parse(self, raw: str) -> str:
        text = raw.strip()
        token = text
        if text.startswith("{"):
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError:
                doc = None  # the parser's message could quote the secret: say nothing of it
            if not isinstance(doc, dict):
                raise ActionError("forward", f"secret {self.name!r} is not a JSON object")
            if isinstance(doc.get("authorization"), str):
                value = str(doc["authorization"])
                return self._keep(value, value, *value.split(" ", 1)[1:])
            user, password = doc.get("username"), doc.get("password")
            if isinstance(user, str) and isinstance(password, str):
                basic = base64.b64encode(f"{user}:{password}".encode()).decode()
                return self._keep(f"Basic {basic}", basic, password)
            token = str(doc["token"]) if isinstance(doc.get("token"), str) else ""
        if not token:
            raise ActionError(
                "forward",
                f"secret {self.name!r} holds none of authorization, username/password, token",
            )
        return self._keep(f"{self.scheme} {token}", token)

    def _keep(self, header: str, *secret: str) -> str:
        # Short values would redact ordinary words from server messages.
        self.secrets = [s for s in (header, *secret) if len(s) >= 6]
        return header


def retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return 0.0


class HttpSink:
    def __init__(
        self, runtime: Any, url: str, fmt: Format, secret: str | None, timeout_s: float
    ) -> None:
        parts = urlsplit(url)
        if parts.path in ("", "/") and fmt.path:
            parts = parts._replace(path=fmt.path)
        self.url = urlunsplit(parts)
        self.fmt = fmt
        self.name = f"http {fmt.name} {parts.hostname}"
        self.timeout_s = timeout_s
        scheme = "Splunk" if fmt.name == "splunk" else "Bearer"
        self.auth = Auth(runtime, secret, scheme) if secret else None
        self._pool: Any = None
        self._headers: dict[str, str] = {}

    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        encoded, bad = envelopes(events)
        out = Outcome(failures=bad)
        headers = {"Content-Type": self.fmt.content_type, "User-Agent": USER_AGENT}
        if self.auth is not None:
            try:
                headers["Authorization"] = self.auth.header()
            except ActionError as e:
                out.fail([ev for ev, _ in encoded], e.reason, e.retryable)
                return out
        self._headers = headers
        stop: Stop | None = None
        batches = chunks(self.fmt.pieces(encoded), _size, 1 << 30, self.fmt.max_body)
        for batch in batches:
            if stop is not None:
                out.fail([p.event for p in batch], f"not sent: {stop[0]}", stop[1])
                continue
            stop = self._batch(batch, Retry(retry.max_retries, retry.remaining_ms), out)
        return out

    def _batch(self, pieces: list[Piece], retry: Retry, out: Outcome) -> Stop | None:
        """Deliver one batch; return (reason, retryable) when later batches should not
        be tried: the endpoint refused the request itself, not some of its items."""
        why: dict[int, str] = {}
        refreshed = False
        while pieces:
            out.requests += 1
            status, headers, data, error = self._post(self.fmt.body(pieces), retry)
            wait = 0.0
            if status is None:
                why = dict.fromkeys(map(id, pieces), error)
            elif 200 <= status < 300:
                again = []
                failed = {e.index: e for e in self.fmt.check(status, data, pieces)}
                out.delivered += len(pieces) - len(failed)
                for i, e in failed.items():
                    if e.retryable:
                        again.append(pieces[i])
                        why[id(pieces[i])] = self._redact(e.reason)
                    else:
                        out.fail([pieces[i].event], self._redact(e.reason), False)
                if not again:
                    return None
                pieces = again
            elif status == 413 and len(pieces) > 1:
                half = len(pieces) // 2
                first, second = pieces[:half], pieces[half:]
                stop = self._batch(first, Retry(retry.max_retries, retry.remaining_ms), out)
                if stop is not None:
                    out.fail([p.event for p in second], f"not sent: {stop[0]}", stop[1])
                    return stop
                return self._batch(second, Retry(retry.max_retries, retry.remaining_ms), out)
            elif status in (401, 403) and self.auth is not None and not refreshed:
                refreshed = True  # the secret may have been rotated: read it again, once
                try:
                    self._headers["Authorization"] = self.auth.header(refresh=True)
                except ActionError as e:
                    out.fail([p.event for p in pieces], e.reason, e.retryable)
                    return e.reason, e.retryable
                continue
            elif status == 429 or status >= 500:
                why = dict.fromkeys(map(id, pieces), f"HTTP {status}{self._detail(data)}")
                wait = retry_after(headers.get("Retry-After"))
            else:
                reason = f"HTTP {status}{self._detail(data)}"
                if 300 <= status < 400:
                    reason = f"HTTP {status} redirect not followed (point url at the final address)"
                elif status == 413:
                    reason = f"HTTP 413: one event of {len(pieces[0].data):,} bytes is too large"
                out.fail([p.event for p in pieces], reason, False)
                return None if status == 413 else (reason, False)
            if not retry.wait(wait):
                for p in pieces:
                    out.fail([p.event], f"{why[id(p)]} {retry.gave_up()}", True)
                return None if status is not None and status < 300 else (why[id(pieces[0])], True)
        return None

    def _post(self, body: bytes, retry: Retry) -> tuple[int | None, Mapping[str, str], bytes, str]:
        import urllib3

        if self._pool is None:
            # No retries or redirects of urllib3's own: this module decides both.
            self._pool = urllib3.PoolManager(num_pools=4, maxsize=2, retries=False)
        t = retry.timeout_s(self.timeout_s)
        try:
            resp = self._pool.request(
                "POST",
                self.url,
                body=body,
                headers=self._headers,
                timeout=urllib3.Timeout(connect=min(5.0, t), read=t),
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as e:
            kind = type(e).__name__  # its text holds object addresses: no use to group by
            return None, {}, b"", kind + (f" (timeout {t:g} s)" if "Timeout" in kind else "")
        return resp.status, resp.headers, resp.data, ""

    def _detail(self, data: bytes) -> str:
        text = " ".join(data[:400].decode("utf-8", "replace").split())[:160]
        return f": {self._redact(text)}" if text else ""

    def _redact(self, text: str) -> str:
        for s in self.auth.secrets if self.auth is not None else ():
            text = text.replace(s, "***")
        return text


def _size(p: Piece) -> int:
    return p.size
