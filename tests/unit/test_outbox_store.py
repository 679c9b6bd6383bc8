"""The outbox in SQLite and PostgreSQL: migrations 0002 and 0003 (receipts), the queries delivery by deadline uses."""

import time

from sqlalchemy import create_engine, text

from driftline.store import SqlStore, migrate


def test_recent_failed_rows_become_pending_and_stored_urls_lose_their_path(store_url):
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.upgrade(engine, "0001")
    now = time.time()
    rows = [("recent", "failed", now - 3600, "webhook http://hooks.example:8080/x/Tok3n answered HTTP 500"),
            ("old", "failed", now - 2 * 86400, "webhook https://hooks.example/y?token=abc unreachable: boom"),
            ("sent", "sent", now - 60, None),
            ("waiting", "pending", now - 60, "Slack rate limit")]
    with engine.begin() as c:
        for key, status, created, error in rows:
            c.execute(text("INSERT INTO outbox (key, sink, kind, payload, status, attempts, next_attempt_at, "
                           "last_error, created_at) VALUES (:k, 'slack', 'alert', '{}', :s, 8, :n, :e, :c)"),
                      {"k": key, "s": status, "n": now + 999, "e": error, "c": created})
    engine.dispose()
    store = SqlStore(store_url, upgrade=True)
    assert store.schema_version() == migrate.head()
    got = {r["key"]: r for r in store.reads.outbox()}
    assert got["recent"]["status"] == "pending" and got["recent"]["next_attempt_at"] == 0.0
    assert got["recent"]["attempts"] == 8 and got["recent"]["deadline_at"] is None
    assert got["recent"]["last_error"] == "webhook http://hooks.example:8080/… answered HTTP 500"
    assert got["old"]["status"] == "failed"  # more than 24 h old: left given up (`--retry-failed` revives it)
    assert got["old"]["last_error"] == "webhook https://hooks.example/… unreachable: boom"
    assert got["sent"]["status"] == "sent" and got["waiting"]["status"] == "pending"
    assert got["waiting"]["last_error"] == "Slack rate limit"
    assert [i.key for i in store.outbox.due(now)] == ["recent"]
    store.close()


def test_outbox_queries_for_delivery_by_deadline(store_url):
    from driftline.types import CommitUnit, Notification
    store = SqlStore(store_url)
    store.commit("g", CommitUnit(notifications=[Notification(k, sink, "alert", {"n": k})
                                                for k, sink in (("a", "slack"), ("b", "slack"), ("c", "hook"))]))
    now = time.time()
    a, b, c = store.outbox.due(now)
    store.outbox.mark_retry(a.id, 1, now + 10, "boom", give_up=False)
    assert [i.key for i in store.outbox.due(now)] == ["b", "c"]
    assert [i.key for i in store.outbox.due(now, exclude_sinks=("slack",))] == ["c"]
    assert [i.key for i in store.outbox.due(now + 10)] == ["b", "c", "a"]  # longest waiting first
    assert store.outbox.overdue(now, deadline=3600) == []
    assert [i.key for i in store.outbox.overdue(now + 3601, deadline=3600)] == ["a", "b", "c"]
    store.outbox.mark_retry(b.id, 5, now, "HTTP 500", give_up=True)
    assert store.outbox.counts() == {"pending": 2, "failed": 1}
    assert store.outbox.retry_failed(now, deadline_at=now + 7200) == 1
    (revived,) = [i for i in store.outbox.due(now) if i.key == "b"]
    assert revived.deadline_at == now + 7200 and revived.attempts == 0 and revived.last_error == "HTTP 500"
    assert [i.key for i in store.outbox.overdue(now + 3601, deadline=3600)] == ["a", "c"]
    store.outbox.mark_sent(c.id)
    assert store.outbox.counts() == {"pending": 2} and store.outbox.counts(("sent",)) == {"sent": 1}
    store.close()


def test_migration_0003_adds_receipts_and_mark_sent_stores_one(store_url):
    from driftline.types import CommitUnit, Notification, Receipt
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.upgrade(engine, "0002")
    with engine.begin() as c:
        c.execute(text("INSERT INTO outbox (key, sink, kind, payload, status, attempts, next_attempt_at, "
                       "created_at) VALUES ('old', 'slack', 'alert', '{}', 'sent', 1, 0, 0)"))
    engine.dispose()
    store = SqlStore(store_url, upgrade=True)
    store.commit("g", CommitUnit(notifications=[Notification(k, "slack", "alert", {}) for k in ("a", "b")]))
    old, a, b = store.reads.outbox()
    assert old["receipt"] is None and old["status"] == "sent"  # sent before receipts existed
    store.outbox.mark_sent(a["id"], receipt=Receipt(detail={"channel": "C1", "ts": "1.000"}))
    store.outbox.mark_sent(b["id"], status="silenced")
    _, a, b = store.reads.outbox()
    assert (a["status"], a["receipt"]) == ("sent", {"channel": "C1", "ts": "1.000"})
    assert (b["status"], b["receipt"]) == ("silenced", None)
    store.close()
