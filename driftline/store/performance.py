"""Read queries over the ``performance`` table (realized performance per window), bounded in SQL.

Mixed into :class:`~driftline.store.browse.Browse`, so the API, the dashboard and
``driftline performance`` read them the same way. The newest windows come first by
window start (ISO-8601, which sorts like time; a window stored without one sorts first),
then window key, and each answer is given back oldest first.
"""

from __future__ import annotations

from sqlalchemy import func, select

from driftline.store import schema as t
from driftline.store.engine import Queries, mapped

P = t.performance


def _newest_first(q):
    return q.order_by(func.coalesce(P.c.start, "").desc(), P.c.window_key.desc(), P.c.version.desc())


class PerformanceReads(Queries):

    @mapped("could not read performance")
    def performance_rows(self, model: str, version: str | None = None, segment: str = "",
                         limit: int = 100) -> list[dict]:
        """The newest ``limit`` windows' performance of ``model`` (of one ``version``, of one
        ``segment``: ``""`` the whole version, ``feature=value`` one segment), oldest first."""
        q = select(P).where(P.c.model == model, P.c.segment == segment)
        if version is not None:
            q = q.where(P.c.version == version)
        return self._rows(_newest_first(q).limit(limit))[::-1]

    @mapped("could not read performance")
    def performance_recent(self, n: int) -> dict[tuple[str, str], list[dict]]:
        """Per model version, its newest ``n`` windows' whole-version performance, oldest first."""
        rank = func.row_number().over(partition_by=(P.c.model, P.c.version),
                                      order_by=(func.coalesce(P.c.start, "").desc(), P.c.window_key.desc()))
        inner = select(P, rank.label("rank")).where(P.c.segment == "").subquery()
        q = select(*[inner.c[c.name] for c in P.columns]).where(inner.c.rank <= n).order_by(
            inner.c.model, inner.c.version, func.coalesce(inner.c.start, ""), inner.c.window_key)
        out: dict[tuple[str, str], list[dict]] = {}
        for r in self._rows(q):
            out.setdefault((r["model"], r["version"]), []).append(r)
        return out

    @mapped("could not read performance")
    def performance_models(self) -> list[str]:
        """Models with stored performance."""
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(select(P.c.model).distinct().order_by(P.c.model))]
