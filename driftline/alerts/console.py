"""The console sink: alerts and triggers as text or as JSON lines."""

from __future__ import annotations

import sys
from typing import TextIO

import orjson

from driftline.alerts.messages import alert_text, trigger_text
from driftline.types import Receipt


class ConsoleSink:
    accepts = frozenset({"alert", "trigger"})

    def __init__(self, fmt: str = "text", stream: TextIO | None = None):
        self.fmt = fmt
        self.stream = stream or sys.stdout

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        if self.fmt == "jsonl":
            line = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        else:
            line = alert_text(payload) if kind == "alert" else trigger_text(payload)
        print(line, file=self.stream, flush=True)
        return Receipt()


class RecordingSink:
    """Keeps what it was sent; the fake for tests."""

    def __init__(self, accepts: frozenset[str] = frozenset({"alert", "trigger"})):
        self.accepts = accepts
        self.sent: list[tuple[str, dict, str]] = []

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        self.sent.append((kind, payload, key))
        return Receipt()
