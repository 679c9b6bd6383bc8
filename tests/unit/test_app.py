"""The composition root and the ports: what every command gets from ``app.build_service``."""

import pytest

from driftline.alerts.console import ConsoleSink, RecordingSink
from driftline.app import build_service, build_store
from driftline.config import parse_settings
from driftline.errors import StoreError
from driftline.ports import DeadLetterSink, MemoryDeadLetters, NoDeadLetters, Sink, Source
from driftline.streams.files import FileSource
from driftline.streams.memory import MemorySource
from tests.helpers import config, events


def reference_file(tmp_path):
    path = tmp_path / "ref.jsonl"
    path.write_bytes(b"\n".join(events(500, seed=1)) + b"\n")
    return path


def test_the_fakes_and_the_real_edges_fit_their_ports(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b"{}\n")
    assert isinstance(MemorySource([]), Source) and isinstance(FileSource(tmp_path / "in.jsonl"), Source)
    assert isinstance(MemoryDeadLetters(), DeadLetterSink) and isinstance(NoDeadLetters(), DeadLetterSink)
    assert isinstance(RecordingSink(), Sink) and isinstance(ConsoleSink(), Sink)


def test_a_service_the_root_opens_holds_the_group_lock_and_loads_reference_files(tmp_path):
    cfg = config(model={"reference": {"path": str(reference_file(tmp_path))}},
                 store={"url": f"sqlite:///{tmp_path / 'd.db'}"})
    settings = parse_settings(cfg, {})
    letters = MemoryDeadLetters()
    first = build_service(settings, source=MemorySource(events(1000, start=500)), dead_letters=letters,
                          sinks={"console": RecordingSink()}, output=lambda w: None)
    assert first.pipeline.monitors["m"].profile.n == 500
    assert build_store(settings).state.load_references()["m"]["source"] == str(tmp_path / "ref.jsonl")
    with pytest.raises(StoreError, match="another driftline process is serving consumer group 'driftline'"):
        build_service(settings, source=MemorySource([]), sinks={}, output=lambda w: None)
    first.run(until=lambda: first.source.done)  # shutdown releases the lock
    again = build_service(settings, source=MemorySource([]), sinks={}, output=lambda w: None)
    again.shutdown()


def test_a_store_handed_in_is_the_callers(tmp_path):
    from driftline.store import SqlStore
    url = f"sqlite:///{tmp_path / 'd.db'}"
    settings = parse_settings(config(store={"url": url}), {})
    holder = SqlStore(url)
    holder.state.lock_group("driftline")
    svc = build_service(settings, SqlStore(url), MemorySource([]), MemoryDeadLetters(), {}, lambda w: None)
    svc.shutdown()
    holder.close()
