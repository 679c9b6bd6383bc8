"""What the HTTP sinks (PagerDuty, Alertmanager, webhooks) read the same way: parts of an
incident payload of any release, and the parts of a failed request that may be shown.

An incident payload written by another release (or mangled in the store) still renders:
:func:`mapping` and :func:`alerts_of` give empty values where the expected shape is missing,
and :func:`ratio` is 0 where a feature has no usable ``ratio``. :func:`reason` says why a
request failed without the URL (its path and query may hold a token), so the text can go
to logs and stored errors; :func:`retry_after` reads a ``Retry-After`` of seconds.

>>> inc = {"worst": "not a mapping", "alerts": [{"rule": "r"}, "junk"], "features": {"a": {"ratio": 2.5}}}
>>> mapping(inc, "worst"), alerts_of(inc), ratio(inc["features"]["a"]), ratio(None)
({}, [{'rule': 'r'}], 2.5, 0.0)
>>> import urllib.error
>>> reason(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))
'Connection refused'
>>> retry_after("7"), retry_after("soon"), retry_after(None, 30.0), retry_after("-1", 30.0)
(7.0, None, 30.0, 30.0)
"""

from __future__ import annotations

import math
import urllib.error


def mapping(inc: dict, key: str) -> dict:
    """``inc[key]`` when it is a mapping, else empty: a payload of another release renders too."""
    value = inc.get(key)
    return value if isinstance(value, dict) else {}


def alerts_of(inc: dict) -> list[dict]:
    """The incident's alerts that are mappings (none when ``alerts`` is not a list)."""
    value = inc.get("alerts")
    return [a for a in value if isinstance(a, dict)] if isinstance(value, list) else []


def ratio(feature) -> float:
    """A feature's statistic ÷ threshold as the payload has it; 0 when missing or NaN."""
    value = feature.get("ratio") if isinstance(feature, dict) else None
    return value if isinstance(value, (int, float)) and not math.isnan(value) else 0.0


def reason(exc: Exception) -> str:
    """Why a request failed, without the URL (``URLError`` wraps the socket's error)."""
    cause = getattr(exc, "reason", exc)
    if isinstance(cause, str):
        return cause
    if isinstance(cause, TimeoutError):
        return "timed out"
    return cause.strerror if isinstance(cause, OSError) and cause.strerror else cause.__class__.__name__


def retry_after(value: str | None, default: float | None = None) -> float | None:
    """``Retry-After`` as a number of seconds; ``default`` when absent, unreadable, negative or infinite."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


def error_body(exc: urllib.error.HTTPError) -> bytes:
    """The body of an HTTP error answer; empty when it cannot be read."""
    try:
        return exc.read()
    except (OSError, ValueError):
        return b""
