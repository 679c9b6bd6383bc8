"""A checkpoint written by an older driftline (one pickle per consumer group) is converted
once on start into keyed state, and the windows it held close and test as before.

``checkpoint_6a3cd25.pkl`` is the pickled monitors of commit 6a3cd25 (an older release of
the detectors): the test configuration's model after 6,500 events — its reference, four
closed windows, one open window of 500 events, Page–Hinkley trend detectors and a capped
table of "other" categories. ``checkpoint_bf21b16.pkl`` is the same stream pickled by
the last release that wrote pickles (bf21b16: trend and ADWIN per version, sketches), and
``checkpoint_bf21b16_domain.pkl`` the same with the domain classifier on (a row sample and
its numpy random generator in the open window)."""

import logging
from pathlib import Path

import pytest

from driftline import legacy
from driftline.config import parse_settings
from driftline.detectors.profile import ReferenceProfile
from driftline.store import SqlStore
from driftline.store import schema as t
from driftline.types import Batch, CommitUnit, SourcePosition
from tests.helpers import config, events, make_pipeline

DATA = Path(__file__).parent.parent / "data"


def old_store(blob: bytes) -> SqlStore:
    """A store as the old release left it: its reference, its offsets and its pickle."""
    store = SqlStore("sqlite://", upgrade=True)
    (profile,) = legacy.profiles(blob).values()
    store.commit("g", CommitUnit(references=[ReferenceProfile.from_dict(profile)], offsets={("t", 0): 6500}))
    with store.engine.begin() as c:
        c.execute(t.checkpoints.insert().values(group="g", state=blob, updated_at=0.0))
    return store


@pytest.mark.parametrize("name, model", [("checkpoint_6a3cd25.pkl", {}), ("checkpoint_bf21b16.pkl", {}),
                                         ("checkpoint_bf21b16_domain.pkl", {"domain_classifier": {"enabled": True}})])
def test_a_pickled_checkpoint_converts_once_and_its_open_window_closes(name, model, caplog):
    blob = (DATA / name).read_bytes()
    store = old_store(blob)
    settings = parse_settings(config(model=model), {})
    windows = []
    with caplog.at_level(logging.WARNING):
        pipe = make_pipeline(settings, store, windows.append, group="g")
    assert "converted the checkpoint of the previous release" in caplog.text
    assert "discarded" not in caplog.text  # the open window fits: it is kept
    vals = events(1500, start=6500, shift=1.0, seed=3)
    pipe.process(Batch(vals, lambda i: SourcePosition("t", 0, 6500 + i), {("t", 0): 8000}), force=True)
    assert [w["count"] for w in windows] == [1000, 1000]  # the old open window (500 events) + 500 new, then 1000
    first, s = windows
    assert first["seq"] == 4 and first["tests_run"]
    assert "x" in s["drifted"] and s["features"]["x"]["drift"]["level"] == "drift"
    assert s["multivariate"]["method"] == "pca_reconstruction"
    assert {t["method"] for t in s["features"]["y"]["tests"]} >= {"meanvar", "ks", "trend"}
    assert s["prediction_adwin"]["width"] > 0
    if model:  # the converted row sample held the old window's 500 rows: the first window tests them all
        assert first["domain_classifier"]["effect"]["rows_in_window"] == 1000
    assert store.state.load_checkpoint("g") is None  # converted once: the pickle is gone
    assert {k[:2] for k in store.state.load_states("g")} == {("m", "v1")}
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = make_pipeline(settings, store, windows.append, group="g")
    assert "converted" not in caplog.text and again.monitors["m"].versions["v1"].seq == 6


def test_the_restricted_unpickler_runs_nothing_a_blob_names():
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/driftline-pwned",))

    monitors = legacy.read(pickle.dumps({"m": Evil()}))
    assert isinstance(monitors["m"], legacy.Stub) and not Path("/tmp/driftline-pwned").exists()


def test_a_blob_that_is_not_a_checkpoint_is_refused_with_what_it_is():
    with pytest.raises(legacy.LegacyError, match="cannot be read"):
        legacy.convert(b"not a pickle")


def test_a_hostile_blob_whose_shared_references_unfold_for_ever_is_refused_quickly():
    """40 nested lists that share their halves: 2**40 values once unfolded, 1 kB pickled."""
    import pickle
    import sys
    import types

    import numpy as np

    fake = types.ModuleType("fake_checkpoint")
    sys.modules["fake_checkpoint"] = fake

    def obj(name, **attrs):
        cls = type(name, (), {"__module__": "fake_checkpoint"})
        setattr(fake, name, cls)
        o = cls.__new__(cls)
        o.__dict__.update(attrs)
        return o

    bomb = [True]
    for _ in range(40):
        bomb = [bomb, bomb]
    col = obj("NumericColumn", values=np.zeros(3), valid=np.ones(3, bool), missing=np.zeros(3, bool))
    cols = obj("Columns", ts=np.arange(3), features={"x": col}, extra={"f": bomb})
    blob = pickle.dumps({"m": obj("ModelMonitor", profile=None, pending=[cols], versions={}, online={})})
    with pytest.raises(legacy.LegacyError, match="unfolds into more than"):
        legacy.convert(blob)
