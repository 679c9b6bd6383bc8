"""A replayed checkpoint is harmless: every row is written by its key with ON CONFLICT,
on SQLite and PostgreSQL (the store's unique keys: uq_window, uq_alert_event, the
outbox key, the trigger id, the offsets' and alert state's primary keys)."""

from sqlalchemy import event, func, select

from driftline.store import SqlStore
from driftline.store import schema as t
from driftline.types import AlertState, CommitUnit, Notification


def window(seq: int, drifted: bool) -> dict:
    drift = {"method": "wasserstein", "statistic": 0.13 if drifted else 0.01, "p_value": None,
             "threshold": 0.1, "drifted": drifted}
    return {"model": "m", "version": "v1", "seq": seq, "start": f"2026-11-24T12:0{seq}:00.000Z",
            "end": f"2026-11-24T12:0{seq + 1}:00.000Z", "count": 1000, "invalid": 0, "late": 0,
            "tests_run": True, "drifted": ["x"] if drifted else [],
            "features": {"x": {"kind": "numeric", "drift": drift}, "y": {"kind": "numeric", "drift": drift}},
            "prediction": {"kind": "numeric", "drift": drift}}


def unit(offset: int) -> CommitUnit:
    event_ = {"status": "firing", "window_end": "2026-11-24T12:02:00.000Z", "model": "m"}
    state = AlertState("fp", "m", "v1", "feature_drift", "firing", 1, 0, "2026-11-24T12:01:00.000Z",
                       last_event=event_)
    trigger = {"event": {"id": "ev1", "subject": "m/v1",
                         "data": {"model": "m", "version": "v1",
                                  "window": {"end": "2026-11-24T12:02:00.000+00:00"}}}}
    return CommitUnit(windows=[window(0, False), window(1, True)], alert_states=[state],
                      notifications=[Notification("fp:firing:slack", "slack", "alert", event_)],
                      triggers=[trigger], offsets={("events", 0): offset}, states={("m", "v1", "*"): b"state"})


def counts(store: SqlStore) -> dict[str, int]:
    with store.engine.connect() as c:
        return {table.name: c.execute(select(func.count()).select_from(table)).scalar()
                for table in (t.windows, t.drift_results, t.alerts, t.alert_events, t.outbox, t.triggers)}


def test_a_replayed_unit_inserts_nothing_twice_by_on_conflict(store_url):
    store = SqlStore(store_url)
    store.commit("g", unit(100))
    first = counts(store)
    assert first == {"windows": 2, "drift_results": 6, "alerts": 1, "alert_events": 1, "outbox": 1, "triggers": 1}
    statements: list[str] = []

    def record(_conn, _cursor, sql, *_args):
        statements.append(" ".join(sql.split()))

    event.listen(store.engine, "before_cursor_execute", record)
    store.commit("g", unit(200))  # the same checkpoint again, after a crash before the offset commit
    event.remove(store.engine, "before_cursor_execute", record)
    assert counts(store) == first
    assert store.state.load_offsets("g") == {("events", 0): 200}  # offsets and state: upserted
    assert store.state.load_states("g") == {("m", "v1", "*"): b"state"}
    writes = [s for s in statements if s not in ("BEGIN", "COMMIT")]
    assert writes and all(s.startswith("INSERT") and "ON CONFLICT" in s for s in writes), [
        s for s in writes if "ON CONFLICT" not in s]
    assert not any(s.startswith("INSERT INTO drift_results") for s in writes)  # window rows not new
    assert [w["seq"] for w in store.reads.windows("m")] == [0, 1]
    store.close()


def test_a_window_stored_before_gets_no_second_set_of_drift_results(store_url):
    """The same window in a later unit beside a new one: only the new one's results are written."""
    store = SqlStore(store_url)
    store.commit("g", CommitUnit(windows=[window(0, False)]))
    store.commit("g", CommitUnit(windows=[window(0, False), window(1, True)]))
    with store.engine.connect() as c:
        per_window = dict(c.execute(select(t.drift_results.c.window_id, func.count())
                                    .group_by(t.drift_results.c.window_id)).all())
    assert sorted(per_window.values()) == [3, 3] and len(store.reads.windows()) == 2
    store.close()
