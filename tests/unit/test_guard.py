"""The poison-pill guard and outage handling, on a real SQLite file and an in-memory source.

Faults are injected where no real input can cause them any more (the decoder is
total): a decoder that raises on one marked record, a store whose commits fail
for a while. Everything else is the real pipeline and store.
"""

import pytest

from driftline.alerts.console import RecordingSink
from driftline.app import build_service
from driftline.config import parse_settings
from driftline.errors import StoreUnavailable
from driftline.store import SqlStore
from driftline.streams.decode import Decoder
from driftline.streams.memory import MemorySource
from tests.helpers import config, events

POISON = b"POISON"


class PoisonousDecoder(Decoder):
    """Raises on any batch holding a record with ``POISON`` in it, like a bug meeting an odd input."""

    def decode(self, batch, now_ms=None):
        if any(v and POISON in v for v in batch.values):
            raise RuntimeError("decoder bug")
        return super().decode(batch, now_ms)


class Letters:
    def __init__(self):
        self.sent, self.count = [], 0

    def send(self, record):
        self.sent.append(record)

    def flush(self):
        pass


def poisoned(values, at):
    bad = values[at][:-1] + b', "x": "' + POISON + b'"}'
    return values[:at] + [bad] + values[at:]


def run(store, values, batch_size=700, cfg=None):
    settings = parse_settings(cfg or config(), {})
    src = MemorySource(values, batch_size=batch_size)
    windows, letters = [], Letters()
    svc = build_service(settings, store, src, letters, {"console": RecordingSink()}, windows.append)
    svc.pipeline.decoder = PoisonousDecoder(settings.models)
    svc.run(until=lambda: src.done)
    return windows, letters, svc


def summary_of(windows):
    return [(w["seq"], w["count"], w["start"], w["end"]) for w in windows]


@pytest.mark.parametrize("at", [0, 2500, 4321, 5999])
def test_a_record_that_makes_processing_raise_is_dead_lettered_and_nothing_else_is_lost(tmp_path, at):
    values = events(6000, seed=1)
    clean, _, _ = run(SqlStore(f"sqlite:///{tmp_path / 'clean.db'}"), values)
    store = SqlStore(f"sqlite:///{tmp_path / 'p.db'}")
    windows, letters, svc = run(store, poisoned(values, at))
    assert summary_of(windows) == summary_of(clean)  # same windows, same counts, none twice
    assert summary_of(store.reads.windows("m")) == summary_of(clean)
    (bad,) = letters.sent
    assert bad.reason == "internal error: RuntimeError: decoder bug"
    assert POISON in bad.value and bad.position.offset == at
    assert svc.guard.poisoned == 1 and not svc.guard.careful_until


def test_two_poison_records_in_one_batch_and_the_stream_goes_on(tmp_path):
    values = poisoned(poisoned(events(5000, seed=2), 3100), 3050)
    store = SqlStore(f"sqlite:///{tmp_path / 'p.db'}")
    windows, letters, _ = run(store, values, batch_size=5000)
    assert sorted(r.position.offset for r in letters.sent) == [3050, 3101]  # the second shifted by the first
    assert [w["count"] for w in windows] == [1000] * 3  # 2,000 reference events, then 3 windows


class FlakyStore(SqlStore):
    """A real SQLite store whose commits fail as if the database were down, ``down`` times."""

    def __init__(self, url, down):
        super().__init__(url)
        self.down, self.refused = down, 0

    def commit(self, group, unit):
        if self.down > 0:
            self.down -= 1
            self.refused += 1
            raise StoreUnavailable("could not commit window results: the database is unreachable: test")
        return super().commit(group, unit)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_a_store_outage_is_waited_out_and_nothing_is_lost_or_doubled(tmp_path):
    values = events(6000, seed=3)
    clean, _, _ = run(SqlStore(f"sqlite:///{tmp_path / 'clean.db'}"), values)
    store = FlakyStore(f"sqlite:///{tmp_path / 'f.db'}", down=5)
    windows, letters, svc = run(store, values)
    assert store.refused == 5 and letters.sent == []
    assert summary_of(store.reads.windows("m")) == summary_of(clean)
    assert summary_of(windows) == summary_of(clean)


def test_past_max_outage_the_service_stops_with_a_clear_error_and_stored_offsets_are_behind(tmp_path):
    settings = parse_settings(config(store={"max_outage": "30s"}), {})
    store = FlakyStore(f"sqlite:///{tmp_path / 'f.db'}", down=10**6)
    src = MemorySource(events(3000, seed=4), batch_size=700)
    svc = build_service(settings, store, src, Letters(), {}, lambda s: None)
    svc.clock = FakeClock()
    with pytest.raises(StoreUnavailable, match=r"store.max_outage is 30 s\), stopping. Nothing is lost"):
        svc.run(until=lambda: src.done)
    assert store.state.load_offsets("driftline") == {} and src.committed == {}
