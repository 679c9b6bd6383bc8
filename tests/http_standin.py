"""The base of every HTTP stand-in in the tests (Slack, PagerDuty, Alertmanager, webhook
receivers): a real threaded HTTP server on a free loopback port that records every request
and answers from a script of responses.

``answers`` is a list of ``(status, body, headers)`` served in turn, before :meth:`answer`
(the stand-in's normal answer) takes over. A body of ``bytes`` is sent as ``text/plain``,
``None`` as an empty body without ``Content-Type``, anything else as JSON. ``hang`` holds
each request that :meth:`hangs` picks (by default every one, when ``hang`` is set) that many
seconds, or until the stand-in is closed, then closes the connection without an answer.
The server runs between ``__enter__`` and ``__exit__``."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class HttpStandIn:
    methods: tuple[str, ...] = ("POST",)  # the HTTP methods served; others get 501

    def __init__(self, answers: list[tuple[int, object, dict]] = (), hang: float = 0.0):
        self.requests: list[dict] = []
        self.answers = list(answers)
        self.hang = hang
        self._released = threading.Event()
        outer = self

        def serve(handler):
            outer._serve(handler)

        handler = type("Handler", (_Quiet,), {f"do_{method}": serve for method in self.methods})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def record(self, handler: BaseHTTPRequestHandler, raw: bytes) -> dict:
        """What is kept of a request: path, headers (lower-case names), body (JSON, else ``None``), raw."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return {"path": handler.path, "headers": {k.lower(): v for k, v in handler.headers.items()},
                "body": body, "raw": raw}

    def hangs(self, request: dict) -> bool:
        return bool(self.hang)

    def answer(self, request: dict) -> tuple[int, object, dict]:
        return 200, b"", {}

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        request = self.record(handler, raw)
        self.requests.append(request)
        if self.hangs(request):
            self._released.wait(self.hang)
            handler.close_connection = True  # no answer: the client timed out long ago
            return
        status, body, headers = self.answers.pop(0) if self.answers else self.answer(request)
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        if body is not None:
            handler.send_header("Content-Type", "text/plain" if isinstance(body, bytes) else "application/json")
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def bodies(self) -> list:
        return [r["body"] for r in self.requests]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A local port nothing listens on (a server that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
