"""A loopback HTTP endpoint speaking the Slack Web API methods Sluice uses.

`POST /api/chat.postMessage` and `POST /api/auth.test`, answered like Slack
(HTTP 200 with `{"ok": ...}`; 429 with `Retry-After` when rate limited), so the
real `slack_sdk.WebClient(base_url="http://127.0.0.1:PORT/api/")` and its retry
handlers run unchanged. Every posted message is recorded (`messages()`,
`wait_for()`, `GET /_local/messages`), and faults can be injected for tests
(`fail_next`, `hang_next`).

Request bodies: slack_sdk 3.47 sends chat.postMessage as JSON always
(`api_call(..., json=kwargs)`, "intentionally using json ... for blocks");
methods called with `params=` (auth.test) go form-encoded, or with an empty body
and a JSON content type when there are no parameters. All three are accepted,
as is the token as a `token` form field (Slack allows it there too).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_USER = "U0LOCALBOT"
BOT_ID = "B0LOCALBOT"
TEAM_ID = "T0LOCAL"
# Block Kit limits Slack enforces with `invalid_blocks` (Block Kit reference: blocks,
# section, header, context; text objects), written here from Slack's documentation rather
# than imported from the runtime, so a wrong limit in Sluice fails the tests instead of
# agreeing with them. Messages follow Slack's: "must be less than 3001 characters
# [json-pointer:/blocks/1/text/text]".
MAX_BLOCKS = 50
MAX_SECTION = 3000  # a section's text
MAX_FIELDS = 10  # a section's fields
MAX_FIELD = 2000  # each field's text
MAX_HEADER = 150  # a header's plain_text
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_OBJECT = 3000  # any other text object (context elements)
MAX_TEXT = 40_000  # chat.postMessage: `msg_too_long` past it


@dataclass(frozen=True, slots=True)
class Fault:
    status: int = 0  # 0: answer normally (after `hang_s`)
    retry_after: int | None = None
    hang_s: float = 0.0


class SlackServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler must not block interpreter exit
    allow_reuse_address = True

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.token = token
        self._lock = threading.Condition()
        self._messages: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self._requests: list[tuple[str, int]] = []
        self._closing = threading.Event()
        self._released = threading.Event()
        self._thread: threading.Thread | None = None
        self._ts = 0

    # ------------------------------------------------------------- lifecycle
    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The `base_url` for slack_sdk (and `SLUICE_SLACK_API_URL`)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> SlackServer:
        # 50 ms shutdown poll (stdlib default 500 ms): tests start and stop many servers.
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="slack-local", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # releases hung requests
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- inspection
    def messages(self) -> list[dict[str, Any]]:
        """Messages accepted so far (channel, text, blocks, time, ...), oldest first."""
        with self._lock:
            return list(self._messages)

    def requests(self) -> list[tuple[str, int]]:
        """Every API request as (method, HTTP status), faults included."""
        with self._lock:
            return list(self._requests)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least `n` messages arrived; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._messages)} of {n} Slack messages after {timeout}s"
                    )
                self._lock.wait(left)
            return list(self._messages)

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self._faults.clear()

    # ------------------------------------------------------------- faults
    def fail_next(self, status: int = 429, retry_after: int | None = 1, count: int = 1) -> None:
        """Answer the next `count` API requests with `status` (429 carries Retry-After)."""
        ra = retry_after if status == 429 else None
        with self._lock:
            self._faults.extend(Fault(status=status, retry_after=ra) for _ in range(count))

    def hang_next(self, seconds: float) -> None:
        """Hold the next API request `seconds` before answering (client timeouts), or until
        `release_hangs()`: a test can tell "the client gave up first" by order, not time."""
        with self._lock:
            self._faults.append(Fault(hang_s=seconds))

    def release_hangs(self) -> None:
        """Answer every held request now."""
        self._released.set()

    # ------------------------------------------------------------- internals
    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _note(self, method: str, status: int) -> None:
        with self._lock:
            self._requests.append((method, status))

    def _record(self, msg: dict[str, Any]) -> str:
        with self._lock:
            # Slack's ts: epoch seconds with a 6-digit sequence, unique per channel.
            self._ts += 1
            ts = f"{int(time.time())}.{self._ts:06d}"
            msg["ts"] = ts
            self._messages.append(msg)
            self._lock.notify_all()
            return ts


def channel_id(name: str) -> str:
    """Slack answers with the channel's id even when posted by name: a stable fake one."""
    if name[:1] in ("C", "D", "G") and name[1:].isalnum() and name.isupper():
        return name
    return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:10].upper()  # noqa: S324


def _text_problem(obj: Any, limit: int, at: str, *, plain_only: bool = False) -> str | None:
    """A text object: {"type": "plain_text"|"mrkdwn", "text": 1..limit characters}."""
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        return f"must be a {' or '.join(kinds)} text object [json-pointer:{at}]"
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return f"must be more than 0 characters [json-pointer:{at}/text]"
    if len(text) > limit:
        return f"must be less than {limit + 1} characters [json-pointer:{at}/text]"
    return None


def _items_problem(items: Any, most: int, at: str) -> str | None:
    if not isinstance(items, list) or not items:
        return f"must provide at least 1 item [json-pointer:{at}]"
    if len(items) > most:
        return f"must provide no more than {most} items [json-pointer:{at}]"
    return None


def _block_problem(b: Any, at: str) -> str | None:
    if not isinstance(b, dict) or not isinstance(b.get("type"), str):
        return f"missing required field: type [json-pointer:{at}]"
    kind = b["type"]
    if kind == "header":
        return _text_problem(b.get("text"), MAX_HEADER, f"{at}/text", plain_only=True)
    if kind == "section":
        if "text" not in b and "fields" not in b:
            return f"must provide either text or fields [json-pointer:{at}]"
        if "text" in b and (p := _text_problem(b["text"], MAX_SECTION, f"{at}/text")):
            return p
        if "fields" in b:
            if p := _items_problem(b["fields"], MAX_FIELDS, f"{at}/fields"):
                return p
            for j, f in enumerate(b["fields"]):
                if p := _text_problem(f, MAX_FIELD, f"{at}/fields/{j}"):
                    return p
        return None
    if kind == "context":
        elements = b.get("elements")
        if p := _items_problem(elements, MAX_CONTEXT_ELEMENTS, f"{at}/elements"):
            return p
        assert isinstance(elements, list)
        for j, e in enumerate(elements):
            if isinstance(e, dict) and e.get("type") == "image":
                continue
            if p := _text_problem(e, MAX_TEXT_OBJECT, f"{at}/elements/{j}"):
                return p
    return None  # other block types: Sluice sends none; accepted as they are


def blocks_problem(blocks: Any) -> str | None:
    """What Slack would refuse in `blocks` (the first problem), or None."""
    if not isinstance(blocks, list):
        return "must be an array [json-pointer:/blocks]"
    if len(blocks) > MAX_BLOCKS:
        return f"must provide no more than {MAX_BLOCKS} items [json-pointer:/blocks]"
    for i, b in enumerate(blocks):
        if p := _block_problem(b, f"/blocks/{i}"):
            return p
    return None


class _Handler(BaseHTTPRequestHandler):
    server: SlackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the recorder is the log, and stderr stays the demo's."""

    # ------------------------------------------------------------- HTTP verbs
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/_local/messages":
            self._reply(200, {"ok": True, "messages": self.server.messages()})
        else:
            self._reply(404, {"ok": False, "error": "not_found"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        body = self._body()
        if not path.startswith("/api/"):
            self._reply(404, {"ok": False, "error": "not_found"})
            return
        method = path.removeprefix("/api/")
        fault = self.server._take_fault()
        if fault is not None:
            if fault.hang_s:
                deadline = time.monotonic() + fault.hang_s
                while not (self.server._closing.is_set() or self.server._released.is_set()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.server._released.wait(min(left, 0.05))
            if fault.status:
                headers = (
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                )
                error = "ratelimited" if fault.status == 429 else "internal_error"
                self.server._note(method, fault.status)
                self._reply(fault.status, {"ok": False, "error": error}, headers)
                return
        status, answer = self._api(method, body)
        self.server._note(method, status)
        self._reply(status, answer)

    # ------------------------------------------------------------- Slack API
    def _api(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = self._token(params)
        if not token:
            return 200, {"ok": False, "error": "not_authed"}
        if token != self.server.token:
            return 200, {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return 200, {
                "ok": True,
                "url": "https://sluice-local.slack.com/",
                "team": "Sluice Local",
                "user": "sluice",
                "team_id": TEAM_ID,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
            }
        if method == "chat.postMessage":
            return 200, self._post_message(params)
        return 200, {"ok": False, "error": "unknown_method"}

    def _post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if not isinstance(channel, str) or not channel:
            return {"ok": False, "error": "channel_not_found"}
        blocks = p.get("blocks")
        if isinstance(blocks, str):  # form-encoded: blocks travel as a JSON string
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return {"ok": False, "error": "invalid_blocks"}
        if blocks is not None and (problem := blocks_problem(blocks)):
            return {
                "ok": False,
                "error": "invalid_blocks",
                "errors": [problem],
                "response_metadata": {"messages": [f"[ERROR] {problem}"]},
            }
        text = p.get("text")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        text = str(text or "")
        if len(text) > MAX_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        cid = channel_id(channel)
        msg: dict[str, Any] = {
            "channel": channel,
            "channel_id": cid,
            "text": text,
            "blocks": blocks or [],
            "time": time.time(),
            "params": {
                k: v for k, v in p.items() if k not in ("channel", "text", "blocks", "token")
            },
        }
        ts = self.server._record(msg)
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "ts": ts,
            "blocks": blocks or [],
        }
        return {"ok": True, "channel": cid, "ts": ts, "message": message}

    # ------------------------------------------------------------- plumbing
    def _token(self, params: dict[str, Any]) -> str:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ").strip()
        return str(params.get("token") or "")

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return {}
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            try:
                doc = json.loads(raw)
            except ValueError:
                return {}
            return doc if isinstance(doc, dict) else {}
        # application/x-www-form-urlencoded (query-string encoding)
        return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}

    def _reply(
        self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(doc).encode()
        # A broken pipe: the client gave up (a hung request past its timeout), nothing to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
