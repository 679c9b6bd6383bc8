"""Silences in SQL: added by ``driftline silence add``, listed, expired, and read by the
dispatcher on every delivery pass (:meth:`Silences.active_silences`, on the
``ix_silences_ends`` index). Rows become :class:`~driftline.silencing.Silence` values here.

:class:`Silences` is a part of :class:`~driftline.store.outbox.Outbox`, so the delivery
thread's own outbox (on its own engine) reads them too.
"""

from __future__ import annotations

import time

from sqlalchemy import insert, select, update

from driftline.silencing import Silence, check_new
from driftline.store import schema as t
from driftline.store.engine import mapped

S = t.silences


def silence_of(row) -> Silence | None:
    """The row as a :class:`Silence`; ``None`` for one that is not a valid silence (written by
    hand, or a regex this Python no longer compiles): skipped, so delivery never stops on it."""
    r = row._mapping
    try:
        return Silence(r["id"], tuple(tuple(m) for m in r["matchers"]), r["starts_at"], r["ends_at"], r["author"],
                       r["comment"], r["created_at"], r["expired_at"])
    except (ValueError, TypeError):
        return None


def silences_of(rows) -> list[Silence]:
    return [s for s in map(silence_of, rows) if s is not None]


class Silences:
    """The silence queries on ``self.engine``."""

    @mapped("could not add a silence")
    def add_silence(self, matchers, starts_at: float, ends_at: float, author: str, comment: str,
                    now: float | None = None) -> int:
        """Store a silence (``matchers``: :class:`~driftline.silencing.Matcher` values or their
        text, e.g. ``"rule=~feature_.*"``) and return its id; ``ValueError`` for a bad one."""
        matchers = check_new(matchers, starts_at, ends_at)
        for name, value, most in (("author", author, 200), ("comment", comment, 1000)):
            if not isinstance(value, str) or len(value) > most:
                raise ValueError(f"{name}: text of at most {most} characters, got {str(value)[:40]!r}…")
        now = time.time() if now is None else now
        self._active = None
        with self.engine.begin() as c:
            return c.execute(insert(S).values(
                matchers=[m.to_list() for m in matchers], starts_at=starts_at, ends_at=ends_at,
                author=author, comment=comment, created_at=now).returning(S.c.id)).scalar_one()

    @mapped("could not read silences")
    def silences(self, now: float, include_expired: bool = False) -> list[Silence]:
        """Silences active at ``now`` and those starting later (every one with ``include_expired``),
        by end, then id."""
        q = select(S)
        if not include_expired:
            q = q.where(S.c.ends_at > now)
        with self.engine.connect() as c:
            return silences_of(c.execute(q.order_by(S.c.ends_at, S.c.id)))

    @mapped("could not read silences")
    def active_silences(self, now: float) -> list[Silence]:
        """Silences in force at ``now`` (started, not ended): the dispatcher's, for every
        notification of a pass. A pass asks with one ``now``, so it is read once per pass
        (kept until ``now`` changes, or this object adds or expires one)."""
        cached = getattr(self, "_active", None)
        if cached is not None and cached[0] == now:
            return list(cached[1])
        q = select(S).where(S.c.ends_at > now, S.c.starts_at <= now).order_by(S.c.id)
        with self.engine.connect() as c:
            found = silences_of(c.execute(q))
        self._active = (now, found)
        return list(found)

    @mapped("could not expire a silence")
    def expire_silence(self, silence_id: int, now: float) -> bool:
        """End silence ``silence_id`` at ``now`` (a pending one never starts: its start becomes
        ``now`` too, as Alertmanager does). ``False``: no such silence, or it had already ended."""
        self._active = None
        with self.engine.begin() as c:
            row = c.execute(select(S.c.starts_at).where(S.c.id == silence_id, S.c.ends_at > now)).first()
            if row is None:
                return False
            c.execute(update(S).where(S.c.id == silence_id).values(
                ends_at=now, starts_at=min(row.starts_at, now), expired_at=now))
        return True
