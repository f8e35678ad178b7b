"""A scripted HTTP endpoint on 127.0.0.1 for the tests of HTTP destinations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, str], bytes]
Answer = Callable[[str, dict[str, str], bytes], Reply]


@contextmanager
def serve(answer: Answer) -> Iterator[str]:
    """Serve POSTs with `answer(path, headers (lower-cased names), body)` on a free port
    of 127.0.0.1, HTTP/1.1 with keep-alive as urllib3's pool expects; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply_headers, data = answer(self.path, headers, body)
            self.send_response(status)
            for k, v in reply_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
