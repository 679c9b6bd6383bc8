"""A checkpoint written by an older driftline still loads and the windows it holds close.

``tests/data/checkpoint_6a3cd25.pkl`` is the pickled monitors of the version that landed
at commit 6a3cd25 (the previous release of the detectors): the test configuration's model
after 6,500 events — its reference, four closed windows, one open window of 500 events,
Page–Hinkley trend detectors and a capped table of "other" categories. The service
restores exactly this from the store on start (``Pipeline._restore``)."""

import pickle
from pathlib import Path

from driftline.config import parse_settings
from driftline.monitor import ModelMonitor
from driftline.streams.decode import Decoder
from driftline.types import Batch, SourcePosition
from tests.helpers import config, events

OLD = Path(__file__).parent.parent / "data" / "checkpoint_6a3cd25.pkl"


def test_a_checkpoint_of_the_previous_release_loads_and_its_open_window_closes():
    monitors = pickle.loads(OLD.read_bytes())
    mon = monitors["m"]
    assert isinstance(mon, ModelMonitor) and mon.profile is not None
    spec = parse_settings(config(), {}).models[0]
    mon.spec = spec  # as Pipeline._restore does
    cols = Decoder([spec]).decode(Batch(events(1500, start=6500, shift=1.0, seed=3),
                                        lambda i: SourcePosition("t", 0, i))).groups[("m", "v1")]
    closed, _ = mon.ingest("v1", cols)
    assert [w.count for w in closed] == [1000, 1000]  # the old open window (500 events) + 500 new, then 1000
    first = mon.summarise(closed[0])
    assert first["seq"] == 4 and first["count"] == 1000 and first["tests_run"]
    s = mon.summarise(closed[1])
    assert "x" in s["drifted"] and s["features"]["x"]["drift"]["level"] == "drift"
    assert s["multivariate"]["method"] == "pca_reconstruction"
    assert {t["method"] for t in s["features"]["y"]["tests"]} >= {"meanvar", "ks", "trend"}
    again = pickle.loads(pickle.dumps(monitors))["m"]  # and it checkpoints again, in the new shape
    assert set(again.online["v1"]) >= {"trend", "adwin"}
