"""Logging set-up for the command line: level, format, and redaction on every handler.

``setup`` installs one handler on the root logger, so driftline's own loggers and
third-party ones (slack_sdk, urllib3, alembic) all go through the same
:class:`RedactingFormatter`; ``protect`` adds the secrets of a loaded configuration to
the redaction every handler applies. Levels come from ``--log-level``, else ``-v``
(info; ``-vv`` debug), else ``DRIFTLINE_LOG_LEVEL``, else warning.

>>> resolve_level(None, 0, {"DRIFTLINE_LOG_LEVEL": "debug"})
10
>>> resolve_level("error", 2, {})
40
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Mapping

from driftline.redact import Redactor

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: the process-wide redaction every handler installed by :func:`setup` applies
REDACT = Redactor()


def resolve_level(option: str | None, verbose: int, env: Mapping[str, str] | None = None) -> int:
    """The level from the command line, else the environment; ``ValueError`` if unknown."""
    env = os.environ if env is None else env
    name = option or ({1: "info"}.get(verbose) or ("debug" if verbose >= 2 else None)) \
        or env.get("DRIFTLINE_LOG_LEVEL") or "warning"
    level = LEVELS.get(name.strip().lower())
    if level is None:
        raise ValueError(f"unknown log level {name!r} (expected {', '.join(LEVELS)})")
    return level


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and, if any, exception."""

    def __init__(self, redact: Redactor):
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": self.redact(record.getMessage())}
        if record.exc_info:
            out["exception"] = self.redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = self.redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """Wraps another formatter; the whole formatted text, traceback included, is redacted."""

    def __init__(self, inner: logging.Formatter, redact: Redactor):
        super().__init__()
        self.inner, self.redact = inner, redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


def _handler_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(REDACT)
    if fmt == "text":
        return RedactingFormatter(logging.Formatter(TEXT_FORMAT), REDACT)
    raise ValueError(f"unknown log format {fmt!r} (expected {', '.join(FORMATS)})")


def setup(level: int = logging.WARNING, fmt: str = "text", stream=None) -> logging.Handler:
    """Replace the handler a previous ``setup`` installed and return the new one.

    Other handlers already on the root logger (an embedding program's, a test runner's)
    stay, with their formatter wrapped in the same redaction."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_driftline", False)]:
        root.removeHandler(old)
    for other in root.handlers:
        if not isinstance(other.formatter, (RedactingFormatter, JsonFormatter)):
            other.setFormatter(RedactingFormatter(other.formatter or logging.Formatter(), REDACT))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_handler_formatter(fmt))
    handler._driftline = True
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    _redact_uncaught()
    return handler


def protect(redactor: Redactor) -> None:
    """Add a redactor's secrets (a loaded configuration's) to what every handler masks."""
    REDACT.extend(redactor)


def _redact_uncaught() -> None:
    """Tracebacks of uncaught exceptions go through the redaction too."""

    def hook(exc_type, exc, tb):
        sys.stderr.write(REDACT("".join(traceback.format_exception(exc_type, exc, tb))))

    def thread_hook(args):
        if args.exc_type is not SystemExit:
            sys.stderr.write(REDACT(f"Exception in thread {args.thread.name if args.thread else '?'}:\n" + "".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))))

    sys.excepthook = hook
    threading.excepthook = thread_hook
