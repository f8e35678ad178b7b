"""What every HTTP sink of `forward` shares: the `url`/`secret`/`timeout_s` options,
the Authorization header from a secret, and batches POSTed with urllib3 and retried.

An HTTP sink (`to: http`, one module per `format`) subclasses `HttpSink` and says
how events become a body (`pieces`, `body`), where it goes by default (`path`), and
how the endpoint reports per-item failures in a 2xx (`check`) or a number of records
refused without naming them (`refused`). Its class variables set the retry policy
when the receiving protocol prescribes one (OTLP does).

urllib3 rather than urllib.request: it ships with botocore (no new dependency), it
keeps connections alive across batches and warm invocations (one TLS handshake
instead of one per request), and it can refuse redirects, where urllib.request
turns a redirected POST into a body-less GET and carries the Authorization header
to the new host.

Per batch, by default: 2xx is read for per-item failures and only the retryable
items go again; 429 and 5xx wait (Retry-After honoured) and retry; 413 halves the
batch; 401/403 re-reads the secret once (rotation); any other status fails the
batch for good. The auth value never reaches a reason.
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from chalicelib.actions.context import ActionContext
from chalicelib.actions.forward.common import Failure, MiB, Outcome, Retry, chunks, envelopes
from chalicelib.actions.forward.sink import Sink
from chalicelib.errors import ActionError, SecretError
from chalicelib.event import LogEvent
from chalicelib.options import Option
from chalicelib.template import clip
from chalicelib.urlpolicy import UrlPolicy, local_kind, url_problem

if TYPE_CHECKING:  # read through the ActionContext when first sent
    from chalicelib.secrets import Secret

USER_AGENT = "sluice-forward/1"
Stop = tuple[str, bool]  # why later batches are not tried, and whether a replay may help


# A forward's URL is written in the rules file: its port and a loopback host (a Lambda
# extension's collector) are the operator's explicit configuration. Plain http is for
# loopback only (checked in `validate`, which knows whether a secret is sent).
_FORWARD_URLS = UrlPolicy(allow_loopback=True, any_port=True, allow_http=True)


def check_url(v: str) -> str | None:
    problem = url_problem(v, _FORWARD_URLS)
    if problem is None or "credentials" in problem:
        return problem and "no credentials in the URL: put them in the secret"
    return problem if "link-local" in problem else "an http(s) URL"


def _check_timeout(v: float) -> str | None:
    return None if not isinstance(v, bool) and 1 <= v <= 60 else "seconds, 1-60"


# The options every HTTP sink takes (each sink's table starts with these).
HTTP_OPTIONS: dict[str, Option] = {
    "url": Option(
        str,
        "endpoint URL (to: http); with no path, the format's own",
        required=True,
        check=check_url,
    ),
    "secret": Option(str, "Secrets Manager secret or SSM parameter (/name) with the auth"),
    "timeout_s": Option(
        (int, float), "seconds per HTTP request (default 10)", default=10, check=_check_timeout
    ),
}


@dataclass(slots=True)
class Piece:
    event: LogEvent
    data: bytes
    key: Hashable = ()  # what the body groups by (Loki's label set, OTLP's resource)
    size: int = 0


@dataclass(slots=True)
class ItemError:
    index: int
    reason: str
    retryable: bool


class Auth:
    """The Authorization header from a Secrets Manager secret, or an SSM parameter when
    the name starts with `/` or `ssm:`, through the action's context (Powertools
    parameters, cached 5 minutes per warm function; re-read at once after a 401/403).

    Values: `{"authorization": "<header value>"}`, `{"username": .., "password": ..}`
    (Basic), `{"token": ..}` or a bare token (`Splunk <token>` for HEC, else Bearer).
    """

    def __init__(self, ctx: ActionContext, name: str, scheme: str) -> None:
        self.ctx = ctx
        self.name = name
        self.scheme = scheme
        self.secrets: list[str] = []  # values to keep out of reasons
        self.stale = False  # refused by the endpoint: read it afresh next time

    def header(self, refresh: bool = False) -> str:
        refresh, self.stale = refresh or self.stale, False
        try:
            secret = self.ctx.secret(self.name, force=refresh)
        except SecretError as e:
            raise ActionError("forward", str(e)) from None
        except Exception as e:  # Powertools' GetParameterError, the SDK's error its context
            cause = e.__cause__ or e.__context__ or e
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            raise ActionError(
                "forward",
                f"secret {self.name!r} could not be read: {code or type(cause).__name__}",
                retryable=code not in ("ResourceNotFoundException", "ParameterNotFound"),
            ) from None
        return self._header(secret)

    def _header(self, secret: Secret) -> str:
        token = secret.text
        if secret.fields is not None:
            value = secret.field("authorization")
            if value is not None:
                return self._keep(value, value, *value.split(" ", 1)[1:])
            user, password = secret.field("username"), secret.field("password")
            if user is not None and password is not None:
                basic = base64.b64encode(f"{user}:{password}".encode()).decode()
                return self._keep(f"Basic {basic}", basic, password)
            token = secret.field("token") or ""
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


class HttpSink(Sink):
    """The transport and the hooks of an HTTP body format."""

    to = "http"
    options: ClassVar[dict[str, Option]] = HTTP_OPTIONS
    content_type: ClassVar[str] = "application/x-ndjson"
    content_encoding: ClassVar[str | None] = None  # "gzip": bodies are compressed
    path: ClassVar[str] = ""  # added when the URL has no path of its own
    auth_scheme: ClassVar[str] = "Bearer"  # for a bare token in the secret
    # 5 MiB per request: under Loki's default per-tenant burst (ingestion_burst_size_mb
    # 6 MB: a larger push gets 429 however often it is retried) and OpenSearch's
    # http.max_content_length (100 MB; 10 MiB on the smallest Amazon OpenSearch
    # Service instance types), and large enough for a thousand typical events.
    max_body: ClassVar[int] = 5 * MiB
    # The retry policy: what a protocol that prescribes its own changes.
    split_too_large: ClassVar[bool] = True  # 413: send the batch in halves
    resend_after_reauth: ClassVar[bool] = True  # 401/403: re-read the secret, send again

    @classmethod
    def validate(cls, opts: dict[str, Any]) -> list[tuple[str, str]]:
        url = opts.get("url")
        if isinstance(url, str) and check_url(url) is None:
            parts = urlsplit(url)
            if parts.scheme.lower() == "http" and local_kind(parts.hostname or "") is None:
                # Log records are as sensitive as a secret: neither crosses a network in clear.
                what = "to send a secret" if opts.get("secret") else "for a remote host"
                return [("url", f"https is required {what} (http: loopback only)")]
        return []

    def __init__(self, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(opts, ctx)
        parts = urlsplit(opts["url"])
        if parts.path in ("", "/") and self.path:
            parts = parts._replace(path=self.path)
        self.url = urlunsplit(parts)
        self.host = parts.hostname or ""
        self.name = f"http {self.format} {self.host}"
        self.timeout_s = float(opts["timeout_s"])
        secret = opts.get("secret")
        self.auth = Auth(ctx, secret, self.auth_scheme) if secret else None
        self._pool: Any = None
        self._headers: dict[str, str] = {}

    # ------------------------------------------------------------ format hooks
    def encode(self, events: list[LogEvent]) -> tuple[list[tuple[LogEvent, bytes]], list[Failure]]:
        """Each event with its archive envelope (what most formats carry), and the
        events that cannot be sent at all."""
        return envelopes(events)

    def pieces(self, encoded: list[tuple[LogEvent, bytes]]) -> list[Piece]:
        """Each event's share of a body, sized so batches stay under `max_body`."""
        return [Piece(ev, line + b"\n", (), len(line) + 1) for ev, line in encoded]

    def body(self, pieces: list[Piece]) -> bytes:
        return b"".join(p.data for p in pieces)

    def check(self, status: int, body: bytes, pieces: list[Piece]) -> list[ItemError]:
        """Per-item failures reported inside a 2xx response."""
        return []

    def refused(self, body: bytes) -> tuple[int, str] | None:
        """Records a 2xx response says were refused without naming them, and why."""
        return None

    def retryable(self, status: int) -> bool:
        """Whether a non-2xx status may succeed if the same request is sent again."""
        return status == 429 or status >= 500

    def detail(self, data: bytes) -> str:
        """The useful part of an error response's body."""
        return data[:400].decode("utf-8", "replace")

    def preview(self, events: list[LogEvent]) -> str:
        encoded, bad = self.encode(events[:1])
        if not encoded:
            return f"http: not sendable: {bad[0].reason}"
        body = self.body(self.pieces(encoded)).decode()
        return f"http {self.format} {self.host}: {clip(body, 300)}"

    # ------------------------------------------------------------ transport
    def send(self, events: list[LogEvent], retry: Retry) -> Outcome:
        encoded, bad = self.encode(events)
        out = Outcome(failures=bad)
        headers = {"Content-Type": self.content_type, "User-Agent": USER_AGENT}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        if self.auth is not None:
            try:
                headers["Authorization"] = self.auth.header()
            except ActionError as e:
                out.fail([ev for ev, _ in encoded], e.reason, e.retryable)
                return out
        self._headers = headers
        stop: Stop | None = None
        for batch in chunks(self.pieces(encoded), _size, 1 << 30, self.max_body):
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
            status, headers, data, error = self._post(self.body(pieces), retry)
            wait = 0.0
            if status is None:
                why = dict.fromkeys(map(id, pieces), error)
            elif 200 <= status < 300:
                again = self._accepted(status, data, pieces, why, out)
                if not again:
                    return None
                pieces = again
            elif status == 413 and len(pieces) > 1 and self.split_too_large:
                half = len(pieces) // 2
                first, second = pieces[:half], pieces[half:]
                stop = self._batch(first, Retry(retry.max_retries, retry.remaining_ms), out)
                if stop is not None:
                    out.fail([p.event for p in second], f"not sent: {stop[0]}", stop[1])
                    return stop
                return self._batch(second, Retry(retry.max_retries, retry.remaining_ms), out)
            elif status in (401, 403) and self.auth is not None and not refreshed:
                if not self.resend_after_reauth:
                    self.auth.stale = True  # later requests read the secret afresh
                    return self._final(status, data, pieces, out)
                refreshed = True  # the secret may have been rotated: read it again, once
                try:
                    self._headers["Authorization"] = self.auth.header(refresh=True)
                except ActionError as e:
                    out.fail([p.event for p in pieces], e.reason, e.retryable)
                    return e.reason, e.retryable
                continue
            elif self.retryable(status):
                why = dict.fromkeys(map(id, pieces), f"HTTP {status}{self._detail(data)}")
                wait = retry_after(headers.get("Retry-After"))
            else:
                return self._final(status, data, pieces, out)
            if not retry.wait(wait):
                for p in pieces:
                    out.fail([p.event], f"{why[id(p)]} {retry.gave_up()}", True)
                return None if status is not None and status < 300 else (why[id(pieces[0])], True)
        return None

    def _accepted(
        self, status: int, data: bytes, pieces: list[Piece], why: dict[int, str], out: Outcome
    ) -> list[Piece]:
        """Count a 2xx: per-item failures failed or kept for another attempt (returned),
        records refused without names dead-lettered with the whole request."""
        again = []
        failed = {e.index: e for e in self.check(status, data, pieces)}
        refused = self.refused(data)
        if refused is not None and refused[0] > 0:
            ok = [p.event for i, p in enumerate(pieces) if i not in failed]
            out.refuse_unnamed(ok, refused[0], self._redact(refused[1]))
        else:
            out.delivered += len(pieces) - len(failed)
        for i, e in failed.items():
            if e.retryable:
                again.append(pieces[i])
                why[id(pieces[i])] = self._redact(e.reason)
            else:
                out.fail([pieces[i].event], self._redact(e.reason), False)
        return again

    def _final(self, status: int, data: bytes, pieces: list[Piece], out: Outcome) -> Stop | None:
        """A status not worth sending again: the batch fails; later batches too, unless
        the refusal was about this batch's size."""
        reason = f"HTTP {status}{self._detail(data)}"
        if 300 <= status < 400:
            reason = f"HTTP {status} redirect not followed (point url at the final address)"
        elif status == 413 and len(pieces) == 1:
            reason = f"HTTP 413: one event of {len(pieces[0].data):,} bytes is too large"
        out.fail([p.event for p in pieces], reason, False)
        return None if status == 413 else (reason, False)

    def _post(self, body: bytes, retry: Retry) -> tuple[int | None, Mapping[str, str], bytes, str]:
        import urllib3

        if self.content_encoding == "gzip":
            from chalicelib.actions.archive import gzip_bytes

            body = gzip_bytes(body, 1)
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
        text = " ".join(self.detail(data).split())[:160]
        return f": {self._redact(text)}" if text else ""

    def _redact(self, text: str) -> str:
        for s in self.auth.secrets if self.auth is not None else ():
            text = text.replace(s, "***")
        return text


def _size(p: Piece) -> int:
    return p.size
