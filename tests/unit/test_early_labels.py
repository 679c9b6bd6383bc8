"""Labels read before their prediction (``labels.early_for``): held, joined once the prediction
comes, orphans once their time is up or the cap pushes them out; the holder is checkpointed."""

import numpy as np
import orjson

from driftline.config import parse_settings
from driftline.store import SqlStore
from driftline.types import Batch, SourcePosition
from tests.helpers import config, events, make_pipeline

START = 1_795_000_000_000


def _settings(**labels):
    return parse_settings(config(model={"window": {"size": 1000, "min_count": 200},
                                        "labels": {"max_delay": "1h"} | labels}), {})


def _label(i, y, ts):
    return orjson.dumps({"model": "m", "id": str(i), "ts": int(ts), "label": int(y)})


def _run(p, values, size=500, first=0):
    for k in range(0, len(values), size):
        chunk = values[k:k + size]
        p.process(Batch(chunk, lambda i, k=k: SourcePosition("t", 0, first + k + i), {("t", 0): first + k + len(chunk)}),
                  force=True)


def _last(out):
    last = {}
    for r in out:
        if r["type"] == "performance":
            last[r["window"]["seq"]] = r
    return last


def test_a_label_read_before_its_prediction_joins_it_when_it_comes(tmp_path):
    evs = events(4000)
    early = [_label(i, i % 2, START + i * 10 + 1) for i in range(2000, 2300)]  # read first, in batch 0
    p, out = make_pipeline(_settings(), SqlStore(f"sqlite:///{tmp_path / 'd.db'}"), [].append), []
    p.output = out.append
    _run(p, early + evs)
    r = p.labels["m"]
    assert r.counts["joined"] == 300 and r.counts["orphan"] == 0 and r.early.n == 0
    (rev,) = _last(out).values()
    assert rev["labelled"] == 300 and rev["metrics"]["positives"] == 150
    assert r.buffer.counts["orphan_labels"] == 0 and r.buffer.counts["joined"] == 300


def test_held_labels_are_orphans_once_their_time_is_up_or_the_cap_pushes_them_out(tmp_path):
    evs = events(4000)
    never = [_label(f"x{i}", 1, START + 21_000) for i in range(50)]  # no such prediction
    p = make_pipeline(_settings(early_for="10s", max_early=40), SqlStore(f"sqlite:///{tmp_path / 'd.db'}"),
                      [].append)
    _run(p, never + evs[:2500])  # the newest prediction at 25 s: held (the cap keeps 40 of them)
    r = p.labels["m"]
    assert (r.early.n, r.counts["orphan"]) == (40, 10)
    _run(p, evs[2500:], first=2550)  # event time reaches 40 s: more than 10 s after theirs, given up
    assert (r.early.n, r.counts["orphan"], r.buffer.counts["orphan_labels"]) == (0, 50, 50)


def test_labels_held_at_a_checkpoint_survive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    evs = events(4000)
    early = [_label(i, 1, START + i * 10 + 1) for i in range(3000, 3100)]
    p = make_pipeline(_settings(), SqlStore(url), [].append)
    _run(p, early + evs[:2500])  # checkpointed with the 100 labels held
    assert p.labels["m"].early.n == 100
    again, out = make_pipeline(_settings(), SqlStore(url), [].append), []
    again.output = out.append
    assert again.labels["m"].early.n == 100 and np.array_equal(again.labels["m"].early.hash, p.labels["m"].early.hash)
    _run(again, evs[2500:], first=2600)
    assert again.labels["m"].counts["joined"] == 100 and again.labels["m"].early.n == 0
    assert [r["labelled"] for r in _last(out).values()] == [100]
