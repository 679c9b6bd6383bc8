"""Realized performance through the pipeline on a SQLite file: time windows, labels for windows
already closed, a restart between checkpoints, and the state keys it writes."""

import orjson
from sklearn.metrics import mean_absolute_error, roc_auc_score

from driftline.config import parse_settings
from driftline.store import SqlStore
from driftline.types import Batch, SourcePosition
from tests.helpers import config, events, make_pipeline

START = 1_795_000_000_000


def _settings(task="binary", **labels):
    return parse_settings(config(model={"window": {"duration": "10s", "min_count": 10},
                                        "labels": {"task": task, "max_delay": "1h"} | labels}), {})


def _batch(values, first):
    return Batch(values, lambda i: SourcePosition("t", 0, first + i), {("t", 0): first + len(values)})


def _label(i, y, ts):
    return orjson.dumps({"model": "m", "id": str(i), "ts": ts, "label": y})


def _run(pipeline, values, size=300, start=0):
    for k in range(start, len(values), size):
        pipeline.process(_batch(values[k:k + size], k))


def test_time_windows_are_keyed_by_start_and_closed_windows_still_get_their_labels(tmp_path):
    store, out = SqlStore(f"sqlite:///{tmp_path / 'd.db'}"), []
    p = make_pipeline(_settings(), store, out.append)
    evs = events(6000)  # ts START + i*10 ms: reference 2000 events, then 40 s in 4 windows of 10 s
    preds = {i: orjson.loads(e)["prediction"] for i, e in enumerate(evs)}
    labels = [_label(i, int(preds[i] > 0.4), START + i * 10 + 60_000) for i in range(2000, 3000)]
    _run(p, evs + labels)
    p.end_of_input()
    revs = [r for r in out if r["type"] == "performance"]
    assert {r["window_key"] for r in revs} == {START + 20_000 - (START + 20_000) % 10_000}
    last = revs[-1]
    assert last["window"]["start"].endswith("0.000Z") and last["window_kind"] == "time"
    assert last["labelled"] == 1000 and last["count"] == 1000 and last["enough"]
    y, s = [int(preds[i] > 0.4) for i in range(2000, 3000)], [preds[i] for i in range(2000, 3000)]
    assert abs(last["metrics"]["roc_auc"] - roc_auc_score(y, s)) <= last["metrics"]["roc_auc_max_error"] + 1e-12
    assert last["delay"]["max"] == 60.0
    (row,) = store.results.performance("m")
    assert row["window_key"] == last["window_key"] and row["revision"] == last["revision"]
    closed = [w for w in out if w["type"] == "window"]
    assert closed and closed[0]["start"] == last["window"]["start"]  # it closed before its labels came


def test_a_restart_from_the_last_checkpoint_credits_no_label_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    evs = events(4000)
    labels = [_label(i, i % 2, START + i * 10 + 5_000) for i in range(2000, 4000)]
    values = evs + labels
    p = make_pipeline(_settings(), SqlStore(url), [].append, checkpoint_every=0.0)
    _run(p, values[:4900])  # checkpointed at every batch
    p2 = make_pipeline(_settings(), SqlStore(url), [].append)  # as after a SIGKILL
    p2.process(_batch(values[4800:4900], 4800))  # already credited, read again: not stored (no checkpoint)
    p3 = make_pipeline(_settings(), SqlStore(url), [].append)
    offset = p3.offsets[("t", 0)]
    _run(p3, values, start=offset)
    p3.end_of_input()
    whole = make_pipeline(_settings(), SqlStore(f"sqlite:///{tmp_path / 'w.db'}"), [].append)
    _run(whole, values, size=1000)
    whole.end_of_input()

    def rows(s):
        return [(r["window_key"], r["count"], r["labelled"], r["metrics"]["tp"], r["metrics"]["fn"])
                for r in s.results.performance("m")]
    assert rows(SqlStore(url)) == rows(whole.store) and sum(r[2] for r in rows(whole.store)) == 2000
    keys = {k for (_, k, _) in SqlStore(url).state.load_states("driftline")}
    assert "labels/versions" in keys and "labels/buf/meta" in keys
    assert any(k.startswith("labels/perf/0/") for k in keys)


def test_regression_labels_give_the_mean_absolute_error():
    import numpy as np

    from driftline.store import SqlStore as Store
    store, out = Store("sqlite://"), []
    p = make_pipeline(_settings("regression"), store, out.append)
    evs = events(3000)
    preds = np.array([orjson.loads(e)["prediction"] for e in evs])
    target = np.round(preds[2000:] + 0.1, 3)
    _run(p, evs + [_label(2000 + k, float(t), START + 40_000) for k, t in enumerate(target)])
    p.end_of_input()
    rev = [r for r in out if r["type"] == "performance"][-1]
    assert abs(rev["metrics"]["mae"] - mean_absolute_error(target, preds[2000:].astype(np.float32))) < 1e-6


def test_a_metric_rule_fires_on_a_revision_below_its_bound_and_resolves_when_labels_lift_it(tmp_path):
    cfg = config(model={"window": {"duration": "10s", "min_count": 10},
                        "labels": {"max_delay": "1h", "min_labelled": 0.3},
                        "rules": [{"name": "auc", "metric": "roc_auc", "below": 0.75, "resolve_after": 1}]})
    settings = parse_settings(cfg, {})
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    p = make_pipeline(settings, store, [].append, checkpoint_every=0.0)
    evs = events(3000)
    preds = {i: orjson.loads(e)["prediction"] for i, e in enumerate(evs)}
    noise = [_label(i, i % 2, START + 40_000) for i in range(2000, 2500)]  # labels unrelated to the score
    _run(p, evs + noise)
    states = store.results.load_alert_states()
    (auc,) = [s for s in states.values() if s.rule == "auc"]
    assert auc.status == "firing" and auc.last_event["features"]["roc_auc"]["labelled"] >= 300
    good = [_label(i, int(preds[i] > 0.5), START + 41_000) for i in range(2500, 3000)]
    _run(p, good, start=0)
    (auc,) = [s for s in store.results.load_alert_states().values() if s.rule == "auc"]
    assert auc.status == "ok" and auc.last_event["status"] == "resolved"


def test_metric_rules_are_checked_with_their_paths():
    import pytest

    from driftline.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        parse_settings(config(model={"rules": [{"name": "auc", "metric": "roc_auc", "below": 0.7}]}), {})
    assert "a 'metric' rule needs 'labels'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_settings(config(model={"labels": {}, "rules": [{"name": "a", "metric": "mae", "above": 1}]}), {})
    assert "unknown metric 'mae' for task 'binary'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_settings(config(model={"labels": {}, "rules": [{"name": "a", "metric": "roc_auc"}]}), {})
    assert "'metric' needs one of them" in str(info.value)


def test_migration_0009_keeps_stored_performance_as_whole_version_rows(store_url):
    """Rows of 0008 become segment "" rows; a segment's row is its own; the downgrade keeps the former."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from driftline.store import migrate
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.upgrade(engine, "0008")
    with engine.begin() as c:
        c.execute(text("INSERT INTO performance (model, version, window_key, window_kind, count, labelled, metrics, "
                       "revision, updated_at) VALUES ('m', 'v1', 7, 'count', 10, 4, '{\"n\": 4}', 2, 1.0)"))
    engine.dispose()
    store = SqlStore(store_url, upgrade=True)
    (row,) = store.results.performance("m")
    assert (row["window_key"], row["segment"], row["metrics"], row["revision"], row["estimated"]) == \
        (7, "", {"n": 4}, 2, None)
    base = {"model": "m", "version": "v1", "window_key": 7, "window": {"start": None, "end": None, "seq": 7},
            "window_kind": "count", "count": 5, "labelled": 1, "labelled_share": 0.2, "delay": {},
            "metrics": {"n": 1}, "revision": 1, "segment": {"feature": "country", "value": "DE"},
            "estimated": {"accuracy": 0.9}, "findings": [{"kind": "x"}]}
    from driftline.types import CommitUnit
    store.commit("g", CommitUnit(performance=[base]))
    rows = store.results.performance("m")
    assert [(r["segment"], r["count"], r["estimated"], r["findings"]) for r in rows] == \
        [("", 10, None, None), ("country=DE", 5, {"accuracy": 0.9}, [{"kind": "x"}])]
    with store.engine.begin() as c:
        command.downgrade(migrate._config(c), "0008")
        assert [tuple(r) for r in c.execute(text("SELECT window_key, count FROM performance"))] == [(7, 10)]
    store.close()
