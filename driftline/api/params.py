"""Query parameters, validated: a bad one raises :class:`BadRequest` saying what was wrong.

>>> when({"from": "2026-11-24T12:00:00Z"}, "from")
'2026-11-24T12:00:00.000Z'
>>> when({"from": "1795000000000"}, "from")
'2026-11-18T11:06:40.000Z'
>>> limit({"limit": "0"})
Traceback (most recent call last):
...
driftline.api.params.BadRequest: limit: must be an integer from 1 to 1000, got '0'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from driftline.types import iso

MAX_LIMIT = 1000
MAX_POINTS = 2000
_CURSOR = re.compile(r"([0-9TZ:.+-]{0,40}),([0-9a-f]{1,40})")


class BadRequest(ValueError):
    """A query parameter that cannot be used (answered with 400 and this message)."""


def _integer(q, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise BadRequest(f"{name}: must be an integer from {lo} to {hi}, got {raw[:40]!r}")
    return value


def limit(q, default: int = 100) -> int:
    return _integer(q, "limit", default, 1, MAX_LIMIT)


def points(q, default: int = 500) -> int:
    return _integer(q, "points", default, 2, MAX_POINTS)


def flag(q, name: str) -> bool:
    """A yes/no parameter: ``1``/``true``/``yes`` or ``0``/``false``/``no`` (absent or empty: no)."""
    raw = (q.get(name) or "").lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise BadRequest(f"{name}: must be 1 or 0 (true or false), got {raw[:40]!r}")


def after(q) -> int | None:
    return _integer(q, "after", None, 0, 2**62)


def cursor(q) -> tuple[str, str] | None:
    """``after`` as an incident page's cursor: the previous page's ``next``, ``{updated_at},{id}``."""
    raw = q.get("after")
    if raw is None or raw == "":
        return None
    m = _CURSOR.fullmatch(raw)
    if m is None:
        raise BadRequest(f"after: expected the previous page's next ({{updated_at}},{{id}}), got {raw[:60]!r}")
    return m.group(1), m.group(2)


def one_of(q, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise BadRequest(f"{name}: must be one of {', '.join(allowed)}, got {raw[:40]!r}")
    return raw


def when(q, name: str) -> str | None:
    """``name`` as the store's timestamp format, from ISO-8601 or epoch milliseconds."""
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            ms = int(raw)
        else:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
            ms = int(dt.timestamp() * 1000)
        if not 0 <= ms < 253402300800000:
            raise ValueError
        return iso(ms)
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name}: expected ISO-8601 (2026-11-24T12:00:00Z) or epoch milliseconds "
                         f"within years 1970..9999, got {raw[:40]!r}") from None


def time_range(q) -> tuple[str | None, str | None]:
    start, end = when(q, "from"), when(q, "to")
    if start is not None and end is not None and start >= end:
        raise BadRequest(f"from: must be before to (from {start}, to {end})")
    return start, end


def only(q, allowed: set[str]) -> None:
    unknown = sorted(set(q.keys()) - allowed)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}; this endpoint takes "
                         + (", ".join(sorted(allowed)) or "none"))
