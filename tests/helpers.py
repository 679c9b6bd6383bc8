"""Test helpers: a real HTTP server standing in for Slack, event generators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import numpy as np
import orjson


class FakeSlack:
    """Answers chat.postMessage and an incoming webhook like Slack does; any other
    POST (a pipeline's webhook) gets ``ok``.

    ``throttle`` answers that many requests with HTTP 429 and Retry-After first.
    ``phases`` decides by a (fake) ``clock`` shared with the test: a list of
    ``(until, status)`` — until ``clock()`` reaches ``until`` every request gets
    ``status`` (429 with ``Retry-After: retry_after``); after the last phase, success.
    ``delivered`` holds the requests answered with success.

    ``hang`` holds the first ``hang_count`` chat.postMessage requests that long (seconds,
    or until the stand-in is closed), then closes the connection without an answer and
    without posting: a Slack that took the request and never processed it. Those are in
    ``hung`` (with ``hung_at``, ``time.monotonic()`` on arrival), never in ``delivered``.
    Real Slack has no idempotency key for chat.postMessage: had it posted a request the
    client gave up on, the channel would show the message twice (the driftline key in the
    message's metadata is how a reader would tell). What the stand-in can say honestly is
    how many times a message was posted (``delivered``) and how often it was asked.
    """

    def __init__(self, throttle: int = 0, retry_after: int = 7, fail: bool = False,
                 phases: list[tuple[float, int]] = (), clock=None, hang: float = 0.0, hang_count: int = 1):
        self.requests: list[dict] = []
        self.delivered: list[dict] = []
        self.hung: list[dict] = []
        self.hang, self.hang_count = hang, hang_count
        self._released = threading.Event()
        self.fail = fail
        self.throttle, self.retry_after = throttle, retry_after
        self.phases, self.clock = list(phases), clock
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ctype = self.headers.get("Content-Type", "")
                body = json.loads(raw) if "json" in ctype else {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                request = {"path": self.path, "auth": self.headers.get("Authorization"),
                           "body": body, "raw": raw, "headers": dict(self.headers)}
                outer.requests.append(request)
                if outer.hangs(request):
                    outer._released.wait(outer.hang)
                    self.close_connection = True  # no answer: the client timed out long ago
                    return
                phase = outer.phase()
                if phase == 429:
                    self._answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(outer.retry_after)})
                elif phase is not None:
                    self._answer(phase, {"ok": False, "error": "boom"})
                elif outer.throttle > 0:
                    outer.throttle -= 1
                    self._answer(429, {"ok": False, "error": "ratelimited"},
                                 {"Retry-After": str(outer.retry_after)})
                elif outer.fail:
                    self._answer(500, {"ok": False, "error": "boom"})
                elif self.path.startswith("/api/chat.postMessage"):
                    outer.delivered.append(request)
                    self._answer(200, {"ok": True, "channel": body.get("channel"), "ts": "1.000"})
                else:
                    outer.delivered.append(request)
                    self._answer(200, None)

            def _answer(self, status, payload, headers=None):
                data = b"ok" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if payload is None else "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def hangs(self, request: dict) -> bool:
        if not (self.hang and request["path"].startswith("/api/chat.postMessage")
                and len(self.hung) < self.hang_count):
            return False
        self.hung.append(request | {"hung_at": time.monotonic()})
        return True

    def phase(self) -> int | None:
        now = self.clock() if self.clock else 0.0
        return next((status for until, status in self.phases if now < until), None)

    def __enter__(self) -> FakeSlack:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def messages(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].startswith("/api/chat.postMessage")]

    def posted_keys(self) -> list[str]:
        """The driftline key of every message posted (answered ``ok``), in order."""
        return [r["body"]["metadata"]["event_payload"]["key"] for r in self.delivered
                if r["path"].startswith("/api/chat.postMessage")]


def events(n: int, start: int = 0, shift: float = 0.0, seed: int = 0, model: str = "m",
           version: str = "v1", start_ms: int = 1_795_000_000_000) -> list[bytes]:
    """Events with two numeric features, one categorical and a prediction.

    ``shift`` moves ``x`` by that many standard deviations and skews the colours.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    y = rng.normal(10, 2, n)
    p = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    colour = rng.choice(["red", "green", "blue"], n, p=p)
    pred = 1 / (1 + np.exp(-x))
    return [orjson.dumps({"model": model, "version": version, "id": str(start + i),
                          "ts": start_ms + (start + i) * 10,
                          "features": {"x": float(x[i]), "y": float(y[i]), "colour": str(colour[i])},
                          "prediction": float(pred[i])}) for i in range(n)]


def config(**overrides) -> dict:
    """A small model configuration for the tests."""
    model = {"name": "m", "features": {"x": "numeric", "y": "numeric", "colour": "categorical"},
             "prediction": "numeric", "window": {"size": 1000, "min_count": 200},
             "reference": {"first_n": 2000},
             "rules": [{"name": "feature_drift", "share": 0.5, "resolve_after": 1}],
             "retrain": {"cooldown": "1h"}}
    model |= overrides.pop("model", {})
    return {"models": [model], **overrides}


def start_run(config_path) -> subprocess.Popen:
    """``driftline run -c config_path`` as a process, its output captured as text."""
    return subprocess.Popen([sys.executable, "-m", "driftline.cli", "run", "-c", str(config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})


def wait_for_windows(proc, db, n: int, timeout: float, model: str = "m") -> None:
    """Until the SQLite file ``db`` holds ``n`` windows of ``model``; the process must stay up."""
    from driftline.store import SqlStore
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and len(SqlStore(f"sqlite:///{db}").reads.windows(model)) >= n:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read()


def make_pipeline(settings, store, output, group: str = "driftline", routes=None, **kw):
    """A pipeline with its router (no sinks unless ``routes``) and dead letters on stderr."""
    from driftline.alerts.routing import Router
    from driftline.pipeline import Pipeline
    from driftline.ports import NoDeadLetters
    return Pipeline(settings, store, Router(settings, routes or {}, store, group), NoDeadLetters(), output,
                    group=group, **kw)


def terminate(proc: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    """Stop a ``driftline run`` as an operator does (SIGTERM) and return its output; the
    caller's ``finally`` kills it if it does not exit."""
    import signal
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=timeout)
