"""/readyz under run: records read but not checkpointed for longer than the bound make the
service not ready; the next checkpoint makes it ready again (a real service over a SQLite file)."""

import pytest

from driftline.alerts.console import RecordingSink
from driftline.api.health import Readiness
from driftline.app import build_service, build_store
from driftline.config import parse_settings
from driftline.streams.memory import MemorySource
from tests.helpers import config, events


def test_input_waiting_for_a_checkpoint_past_the_bound_is_not_ready(tmp_path):
    settings = parse_settings(config(store={"url": f"sqlite:///{tmp_path / 'd.db'}"}), {})
    service = build_service(settings, source=MemorySource(events(10), batch_size=10), sinks={"c": RecordingSink()},
                            output=lambda w: None)
    now = [1000.0]
    service.pipeline.clock = lambda: now[0]
    service.pipeline._last_checkpoint = now[0]
    reads = build_store(settings)
    ready = Readiness(reads.browse, service, max_checkpoint_age=60.0)
    try:
        assert ready() == (True, "store reachable, consumer polling")
        service.step()  # ten records read; no window closes, no checkpoint is due yet
        now[0] += 30
        assert ready()[0] and service.pipeline.unstored_for() == 30
        now[0] += 31
        ok, reason = ready()
        assert not ok and "not stored yet" in reason and "61 s" in reason
        service.step()  # an empty poll: the checkpoint is due and written
        assert ready() == (True, "store reachable, consumer polling")
        now[0] += 3600  # no input since: an old checkpoint is no reason
        assert ready()[0]
    finally:
        service.shutdown()
        reads.close()


def test_store_checkpoint_every_sets_how_long_read_input_waits_for_its_checkpoint(tmp_path):
    settings = parse_settings(config(store={"url": f"sqlite:///{tmp_path / 'd.db'}", "checkpoint_every": "20s"}), {})
    service = build_service(settings, source=MemorySource(events(20), batch_size=10), sinks={"c": RecordingSink()},
                            output=lambda w: None)
    now = [1000.0]
    service.pipeline.clock = lambda: now[0]
    service.pipeline._last_checkpoint = now[0]
    reads = build_store(settings)
    try:
        service.step()
        now[0] += 6  # past the default 5 s, not past 20 s: no checkpoint yet
        service.step()
        assert service.pipeline.unstored_for() == 6 and reads.state.load_offsets("driftline") == {}
        now[0] += 15
        service.step()  # an empty poll; 21 s since the last checkpoint: written
        assert service.pipeline.unstored_for() == 0 and reads.state.load_offsets("driftline") == {("memory", 0): 20}
    finally:
        service.shutdown()
        reads.close()


def test_checkpoint_every_is_checked_at_start_up_with_its_path():
    from driftline.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        parse_settings(config(store={"checkpoint_every": "10m"}), {})
    assert [p for p, _ in info.value.problems] == ["store.checkpoint_every"]
