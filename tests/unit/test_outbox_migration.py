"""Migration 0002: notifications the old max_attempts rule gave up get a second chance."""

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
    assert store.schema_version() == migrate.head() == "0002"
    got = {r["key"]: r for r in store.outbox()}
    assert got["recent"]["status"] == "pending" and got["recent"]["next_attempt_at"] == 0.0
    assert got["recent"]["attempts"] == 8 and got["recent"]["deadline_at"] is None
    assert got["recent"]["last_error"] == "webhook http://hooks.example:8080/… answered HTTP 500"
    assert got["old"]["status"] == "failed"  # more than 24 h old: left given up (`--retry-failed` revives it)
    assert got["old"]["last_error"] == "webhook https://hooks.example/… unreachable: boom"
    assert got["sent"]["status"] == "sent" and got["waiting"]["status"] == "pending"
    assert got["waiting"]["last_error"] == "Slack rate limit"
    assert [i.key for i in store.due_notifications(now)] == ["recent"]
    store.close()
