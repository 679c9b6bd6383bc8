"""Test helpers: a real HTTP server standing in for Slack, event generators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs

import numpy as np
import orjson

from tests.http_standin import HttpStandIn


class FakeSlack(HttpStandIn):
    """Answers chat.postMessage, chat.update, conversations.history, conversations.replies and
    an incoming webhook like Slack does; any other POST (a pipeline's webhook) gets ``ok``.

    Messages are kept per channel as Slack keeps them: ``ts`` strings that increase
    (``first_ts``, then one second more per message; three decimals, where Slack has six), thread replies with ``thread_ts``,
    message ``metadata`` returned by the history methods only with ``include_all_metadata``.
    ``channel_ids`` maps channel names to IDs as a workspace does: then chat.postMessage
    answers the ID and the history methods take only IDs (``channel_not_found`` for a name);
    without it every channel is its own ID (the answer echoes what was asked).
    ``tokens``, when given, are the only bot tokens accepted (others: ``invalid_auth``).

    ``throttle`` answers that many requests with HTTP 429 and Retry-After first.
    ``phases`` decides by a (fake) ``clock`` shared with the test: a list of
    ``(until, status)`` — until ``clock()`` reaches ``until`` every request gets
    ``status`` (429 with ``Retry-After: retry_after``); after the last phase, success.
    ``delivered`` holds the requests that posted or changed something, answered with success
    (not the history methods' look-ups).

    ``hang`` holds the first ``hang_count`` chat.postMessage requests that long (seconds,
    or until the stand-in is closed), then closes the connection without an answer and,
    unless ``hang_posts``, without posting: a Slack that took the request and never
    processed it. Those are in ``hung`` (with ``hung_at``, ``time.monotonic()`` on arrival),
    never in ``delivered``. With ``hang_posts`` the message is posted first (it is in
    :meth:`posted`): a Slack that posted and whose answer was lost. Real Slack has no
    idempotency key for chat.postMessage: a message posted on a request the client gave up
    on is in the channel, and the driftline key in its metadata is how a reader (driftline's
    lookup on retry) tells. What the stand-in can say honestly is how many times a message
    was posted (:meth:`posted`) and how often it was asked.
    """

    methods = ("POST", "GET")  # the history methods may come as GET

    def __init__(self, throttle: int = 0, retry_after: int = 7, fail: bool = False,
                 phases: list[tuple[float, int]] = (), clock=None, hang: float = 0.0, hang_count: int = 1,
                 hang_posts: bool = False, channel_ids: dict[str, str] | None = None,
                 tokens: tuple[str, ...] = (), first_ts: float = 1.0):
        super().__init__(hang=hang)
        self.delivered: list[dict] = []
        self.hung: list[dict] = []
        self.hang_count, self.hang_posts = hang_count, hang_posts
        self.fail = fail
        self.throttle, self.retry_after = throttle, retry_after
        self.phases, self.clock = list(phases), clock
        self.channel_ids, self.tokens = dict(channel_ids or {}), tuple(tokens)
        self.channels: dict[str, list[dict]] = {}  # channel ID → its messages, oldest first
        self._next_ts, self._lock = first_ts, threading.Lock()

    def record(self, handler, raw: bytes) -> dict:
        path, _, query = handler.path.partition("?")
        return {"path": handler.path, "method": path.rsplit("/", 1)[-1] if path.startswith("/api/") else None,
                "auth": handler.headers.get("Authorization"), "body": self.parse(raw, query, handler.headers),
                "raw": raw, "headers": dict(handler.headers)}

    @staticmethod
    def parse(raw: bytes, query: str, headers) -> dict:
        """A request's arguments: its JSON or form body, and its query string."""
        args = {k: v[0] for k, v in parse_qs(query).items()}
        if "json" in headers.get("Content-Type", ""):
            return args | json.loads(raw)
        return args | {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def answer(self, request: dict) -> tuple[int, dict | bytes, dict]:
        throttled = (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.retry_after)})
        phase = self.phase()
        if phase == 429:
            return throttled
        if phase is not None:
            return phase, {"ok": False, "error": "boom"}, {}
        if self.throttle > 0:
            self.throttle -= 1
            return throttled
        if self.fail:
            return 500, {"ok": False, "error": "boom"}, {}
        if request["method"] is None:  # an incoming webhook, a pipeline's webhook
            self.delivered.append(request)
            return 200, b"ok", {}
        payload = self.api(request)
        if payload.get("ok") and request["method"] in ("chat.postMessage", "chat.update"):
            self.delivered.append(request)
        return 200, payload, {}

    def api(self, request: dict) -> dict:
        if self.tokens and request["auth"] not in {f"Bearer {t}" for t in self.tokens}:
            return {"ok": False, "error": "invalid_auth"}
        handler = {"chat.postMessage": self.post_message, "chat.update": self.update,
                   "conversations.history": self.history, "conversations.replies": self.replies}.get(request["method"])
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        with self._lock:
            return handler(request["body"])

    def channel_id(self, channel: str | None, create: bool) -> str | None:
        """What a method's ``channel`` argument names: a name or an ID."""
        if not channel:
            return None
        if self.channel_ids:
            ident = self.channel_ids.get(channel) or self.channel_ids.get("#" + channel.lstrip("#"))
            ident = ident or (channel if channel in self.channel_ids.values() else None)
            if ident is None or (not create and ident != channel):
                return None  # an unknown channel; the history methods take IDs only
        else:
            ident = channel
        if create or ident in self.channels:
            self.channels.setdefault(ident, [])
            return ident
        return None

    def post_message(self, args: dict) -> dict:
        channel = self.channel_id(args.get("channel"), create=True)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = f"{self._next_ts:.3f}"
        self._next_ts += 1.0
        message = {"type": "message", "user": "U0DRIFTBOT", "bot_id": "B0DRIFTBOT", "app_id": "A0DRIFTAPP",
                   "text": args.get("text", ""), "ts": ts, "blocks": args.get("blocks") or [],
                   "metadata": args.get("metadata")}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
            parent = self.find(channel, args["thread_ts"])
            if parent is not None:
                parent.setdefault("thread_ts", parent["ts"])
                parent["reply_count"] = parent.get("reply_count", 0) + 1
        self.channels[channel].append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": self.shown(message, True)}

    def update(self, args: dict) -> dict:
        channel = self.channel_id(args.get("channel"), create=False)
        message = self.find(channel, args.get("ts")) if channel else None
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.update({k: args[k] for k in ("text", "blocks", "metadata") if args.get(k) is not None})
        message["edited"] = {"user": "U0DRIFTBOT", "ts": f"{self._next_ts:.3f}"}
        message["updates"] = message.get("updates", 0) + 1
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"],
                "message": self.shown(message, True)}

    def history(self, args: dict) -> dict:
        channel = self.channel_id(args.get("channel"), create=False)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        tops = [m for m in self.channels[channel] if m.get("thread_ts", m["ts"]) == m["ts"]]
        return self.page(list(reversed(tops)), args)  # newest first

    def replies(self, args: dict) -> dict:
        channel = self.channel_id(args.get("channel"), create=False)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = self.find(channel, args.get("ts"))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for m in self.channels[channel] if m is not parent and m.get("thread_ts") == parent["ts"]]
        page = self.page(thread, args)
        page["messages"].insert(0, self.shown(parent, args.get("include_all_metadata") in ("1", "true")))
        return page

    def page(self, messages: list[dict], args: dict) -> dict:
        """The messages after ``oldest`` and before ``latest``, at most ``limit`` of them."""
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        chosen = [m for m in messages if oldest < float(m["ts"]) < latest]
        limit = int(args.get("limit") or 100)
        everything = args.get("include_all_metadata") in ("1", "true")
        return {"ok": True, "messages": [self.shown(m, everything) for m in chosen[:limit]],
                "has_more": len(chosen) > limit, "response_metadata": {"next_cursor": ""}}

    @staticmethod
    def shown(message: dict, metadata: bool) -> dict:
        """A message as Slack returns it: the metadata only when asked for."""
        out = {k: v for k, v in message.items() if k not in ("metadata", "updates")}
        if metadata and message.get("metadata"):
            out["metadata"] = message["metadata"]
        return out

    def find(self, channel: str | None, ts: str | None) -> dict | None:
        return next((m for m in self.channels.get(channel, []) if m["ts"] == ts), None)

    def hangs(self, request: dict) -> bool:
        if not (self.hang and request["method"] == "chat.postMessage" and len(self.hung) < self.hang_count):
            return False
        self.hung.append(request | {"hung_at": time.monotonic()})
        if self.hang_posts:
            with self._lock:
                self.post_message(request["body"])
        return True

    def phase(self) -> int | None:
        now = self.clock() if self.clock else 0.0
        return next((status for until, status in self.phases if now < until), None)

    def messages(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["method"] == "chat.postMessage"]

    def posted(self) -> list[dict]:
        """Every message in every channel (as stored, metadata included), in the order posted."""
        return sorted((m | {"channel": c} for c, ms in self.channels.items() for m in ms), key=lambda m: float(m["ts"]))

    def posted_keys(self) -> list[str]:
        """The driftline key of every message posted (answered ``ok``), in order."""
        return [r["body"]["metadata"]["event_payload"]["key"] for r in self.delivered
                if r["method"] == "chat.postMessage"]


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        store = ready_store(db)
        if store is not None and len(store.reads.windows(model)) >= n:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read()


def ready_store(db):
    """The store in the SQLite file ``db`` once the process writing it has created the schema,
    else ``None`` (opening it earlier would race that process to create the tables)."""
    from sqlalchemy import create_engine

    from driftline.store import SqlStore, migrate
    if not db.exists():
        return None
    engine = create_engine(f"sqlite:///{db}")
    try:
        if migrate.current(engine) != migrate.head():
            return None
    except Exception:  # noqa: BLE001 - the file is being created or is locked: not yet
        return None
    finally:
        engine.dispose()
    return SqlStore(f"sqlite:///{db}")


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
