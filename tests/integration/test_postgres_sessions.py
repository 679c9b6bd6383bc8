"""PostgreSQL sessions of several processes: replicas that start together on a new database
all come up (one creates the schema, under an advisory lock), and a process frozen inside a
transaction does not hold the others' writes for longer than ``IDLE_IN_TRANSACTION``."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from driftline.errors import StoreUnavailable
from driftline.store import SqlStore
from driftline.store import engine as engines
from driftline.store.engine import store_error
from driftline.store.migrate import current, head
from driftline.types import CommitUnit


def test_replicas_starting_together_on_a_new_database_all_come_up(postgres_url):
    start, errors, stores = threading.Barrier(4), [], []

    def open_one():
        start.wait()
        try:
            stores.append(SqlStore(postgres_url))
        except Exception as exc:  # noqa: BLE001 - the failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(stores) == 4
        assert current(stores[0].engine) == head()
    finally:
        for s in stores:
            s.close()


def test_a_transaction_left_open_is_ended_and_stops_holding_the_others(postgres_url, monkeypatch):
    monkeypatch.setattr(engines, "IDLE_IN_TRANSACTION", 1)
    frozen, other = SqlStore(postgres_url), SqlStore(postgres_url)
    try:
        other.commit("g", CommitUnit(offsets={("t", 0): 1}))
        conn = frozen.engine.connect()
        tx = conn.begin()
        conn.execute(text("update offsets set \"offset\" = 5"))  # holds the row, then sleeps
        began = time.monotonic()
        other.commit("g", CommitUnit(offsets={("t", 0): 7}))  # waits for the frozen one, not forever
        assert time.monotonic() - began < 10
        assert other.state.load_offsets("g") == {("t", 0): 7}
        with pytest.raises(DBAPIError) as info:  # the frozen process wakes to an ended session
            conn.execute(text("select 1"))
            tx.commit()
        conn.close()
        assert isinstance(store_error(info.value, "checkpoint"), StoreUnavailable)  # waited out, retried
    finally:
        frozen.close()
        other.close()
