"""Every stateful part's state is data: ``from_state(to_state(x))`` behaves like ``x``
(the same summaries after the same further events), it encodes without pickle, and a
checkpoint writes only the keys that changed."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.strategies import binary, booleans

from driftline import state as st
from driftline.config import parse_settings
from driftline.detectors.online import PredictionADWIN
from driftline.monitor import MODEL_KEY, ModelMonitor
from driftline.store import SqlStore
from driftline.streams.decode import Decoder
from driftline.types import Batch, CommitUnit, SourcePosition
from tests.helpers import config, events, make_pipeline


def batch(values, start=0):
    return Batch(values, lambda i: SourcePosition("t", 0, start + i), {("t", 0): start + len(values)})


def decoded(spec, values):
    return Decoder([spec]).decode(batch(values)).groups


def without_random(summary):
    """A summary without what depends on a sketch's coin flips (KLL compaction)."""
    out = {k: v for k, v in summary.items() if k not in ("features", "prediction")}
    for part in ("features", "prediction"):
        if part in summary:
            items = summary[part].items() if part == "features" else [(None, summary[part])]
            out[part] = {k: {x: y for x, y in f.items() if x != "quantiles"} for k, f in items}
    return out


WINDOWS = {
    "count": {"size": 1000, "min_count": 200},
    "time": {"duration": "5s", "allowed_lateness": "1s", "min_count": 100},
}


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("domain", [False, True])
def test_a_monitor_restored_from_its_state_summarises_like_the_original(window, domain):
    spec = parse_settings(config(model={"window": WINDOWS[window], "domain_classifier": {"enabled": domain}}),
                          {}).models[0]
    first = decoded(spec, events(2600, seed=1) + events(300, start=2600, seed=2, version="v2"))
    rest = decoded(spec, events(2400, start=2900, shift=0.7, seed=3) + events(1200, start=5300, seed=4, version="v2"))
    a = ModelMonitor(spec)
    for (_, version), cols in first.items():
        a.ingest(version, cols)
    b = ModelMonitor(spec, a.profile)
    for key in a.keys():
        b.load(key, st.decode(st.encode(a.to_state(key))))
    assert set(b.keys()) == set(a.keys()) == {"v1", "v2"}
    for mon in (a, b):
        mon.out = []
        for (_, version), cols in rest.items():
            closed, _ = mon.ingest(version, cols)
            mon.out += [mon.summarise(w) for w in closed]
        mon.out += [mon.summarise(w) for w in mon.close_all()]
    assert len(a.out) >= 4
    if domain:  # its row sample depends on the order in which keys were drawn: compare the verdicts
        assert [s.get("domain_classifier", {}).get("level") for s in b.out] == \
            [s.get("domain_classifier", {}).get("level") for s in a.out]  # an empty window (a gap) has none
        for s in a.out + b.out:
            s.pop("domain_classifier", None)
    assert [without_random(s) for s in b.out] == [without_random(s) for s in a.out]


def test_the_reference_being_collected_is_state_too():
    spec = parse_settings(config(), {}).models[0]
    a = ModelMonitor(spec)
    (cols,) = decoded(spec, events(1500)).values()
    a.ingest("v1", cols)
    assert a.profile is None and a.keys() == [MODEL_KEY]
    b = ModelMonitor(spec)
    b.load(MODEL_KEY, st.decode(st.encode(a.to_state(MODEL_KEY))))
    (more,) = decoded(spec, events(600, start=1500)).values()
    for m in (a, b):
        m.ingest("v1", more)
    assert b.profile.to_dict() == a.profile.to_dict()


def test_adwin_round_trip_goes_on_detecting_like_the_original():
    rng = np.random.default_rng(0)
    a = PredictionADWIN()
    a.update(rng.normal(size=3000))
    b = PredictionADWIN.from_state(st.decode(st.encode(a.to_state())))
    tail = rng.normal(1.0, 1, size=3000)
    a.update(tail)
    b.update(tail)
    assert a.get() == b.get()


def test_state_is_encoded_without_pickle_and_refuses_what_it_cannot_hold():
    spec = parse_settings(config(), {}).models[0]
    mon = ModelMonitor(spec)
    for (_, version), cols in decoded(spec, events(2500)).items():
        mon.ingest(version, cols)
    blob = st.encode(mon.to_state("v1"))
    assert not blob.startswith(b"\x80")  # not a pickle (protocol 2+ starts with PROTO)
    with pytest.raises(TypeError, match="dtype object"):
        st.encode({"x": np.array(["a", None], dtype=object)})
    with pytest.raises(st.StateError, match="cannot be read"):
        st.decode(pickle.dumps({"a": 1}))


def test_a_state_of_an_unknown_format_is_refused_with_what_to_do():
    spec = parse_settings(config(), {}).models[0]
    mon = ModelMonitor(spec)
    with pytest.raises(st.StateError, match=r"model m, version v1: stored state has format 99.*reset-state"):
        mon.load("v1", {"format": 99})


def test_a_service_restarted_from_the_store_goes_on_like_one_that_never_stopped(tmp_path):
    settings = parse_settings(config(), {})
    stream = events(4300, seed=5) + events(3000, start=4300, shift=0.8, seed=6)
    whole, parts = [], []
    ref = make_pipeline(settings, SqlStore("sqlite://", upgrade=True), whole.append)
    ref.process(batch(stream[:4300]), force=True)  # the same batches: ADWIN reads a batch before
    ref.process(batch(stream[4300:], 4300), force=True)  # its windows close, and sums add in order
    ref.end_of_input()
    url = f"sqlite:///{tmp_path}/s.db"
    first = make_pipeline(settings, SqlStore(url, upgrade=True), parts.append)
    first.process(batch(stream[:4300]), force=True)
    second = make_pipeline(settings, SqlStore(url), parts.append)
    assert second.offsets == {("t", 0): 4300}
    second.process(batch(stream[4300:], 4300), force=True)
    second.end_of_input()
    assert [without_random(s) for s in parts] == [without_random(s) for s in whole]
    assert any(s["drifted"] for s in parts) and len(parts) == 6


def test_a_checkpoint_writes_only_the_keys_that_changed():
    settings = parse_settings(config(model={"window": {"size": 100_000, "min_count": 10}}), {})
    store = SqlStore("sqlite://", upgrade=True)
    units = []
    commit = store.commit
    store.commit = lambda group, unit: (units.append(unit), commit(group, unit))
    pipe = make_pipeline(settings, store, lambda s: None)
    values, start = events(2000), 0  # the reference
    for v in range(50):
        values += events(20, start=2000 + 20 * v, version=f"v{v:02d}")
    pipe.process(batch(values), force=True)
    # every version (v1 sent the reference), and the model's collected reference (deleted)
    assert len(units[-1].states) == 52
    assert units[-1].states[("m", MODEL_KEY, "*")] is None
    start = len(values)
    pipe.process(batch(events(30, start=start, version="v07"), start), force=True)
    assert list(units[-1].states) == [("m", "v07", "*")]
    pipe.process(batch([], start + 30), force=True)
    assert units[-1].states == {}
    assert len(store.state.load_states("driftline")) == 51


def test_db_reset_state_discards_open_windows_and_keeps_results(tmp_path, capsys):
    import yaml

    from driftline.cli import main
    db = tmp_path / "s.db"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(store={"url": f"sqlite:///{db}"})))
    settings = parse_settings(config(store={"url": f"sqlite:///{db}"}), {})
    pipe = make_pipeline(settings, SqlStore(settings.store.url, upgrade=True), lambda s: None)
    pipe.process(batch(events(3500)), force=True)
    assert main(["db", "reset-state", "-c", str(cfg)]) == 0
    assert "1 stored state(s) discarded" in capsys.readouterr().out
    store = SqlStore(settings.store.url)
    assert store.state.load_states("driftline") == {} and len(store.reads.windows()) == 1
    assert store.state.load_offsets("driftline") == {("t", 0): 3500}


def test_with_a_state_secret_a_row_written_without_it_is_refused_before_it_is_read():
    state = {"format": st.FORMAT, "sketch": b"\x05" * 40}
    signed = st.encode(state, b"the deployment's secret")
    assert st.decode(signed, secret=b"the deployment's secret") == state
    for forged in (st.encode(state), st.encode(state, b"a guess"), signed[:-1] + b"\x00"):
        with pytest.raises(st.StateError, match="signature does not match"):
            st.decode(forged, "model m, version v1", secret=b"the deployment's secret")


@settings(max_examples=300, deadline=None)
@given(blob=binary(max_size=300), signed=booleans())
def test_decoding_any_bytes_gives_a_value_or_a_state_error(blob, signed):
    data = st._MAGIC + st._mac(blob, None) + blob if signed else blob  # past the checksum, into the parser
    try:
        st.decode(data)
    except st.StateError:
        pass


def test_a_stored_state_that_makes_restoring_fail_is_a_state_error_naming_its_key(tmp_path):
    from driftline.errors import DriftlineError
    settings_ = parse_settings(config(), {})
    url = f"sqlite:///{tmp_path}/s.db"
    make_pipeline(settings_, SqlStore(url, upgrade=True), lambda s: None).process(batch(events(2500)), force=True)
    store = SqlStore(url)
    state = st.decode(store.state.load_states("driftline")[("m", "v1", "*")])
    state["windows"]["current"]["stats"]["features"]["x"]["hist"] = "not an array"
    store.commit("driftline", CommitUnit(states={("m", "v1", "*"): st.encode(state)}))
    with pytest.raises(DriftlineError, match=r"model m, version v1: stored state cannot be read.*reset-state"):
        make_pipeline(settings_, SqlStore(url), lambda s: None)


def test_an_invalid_category_collected_for_the_reference_stays_invalid_across_a_restart():
    spec = parse_settings(config(), {}).models[0]
    vals = events(1500)
    vals[::4] = [v.replace(b'"colour":"', b'"colour":["x"],"was":"') for v in vals[::4]]
    a = ModelMonitor(spec)
    for (_, version), cols in decoded(spec, vals).items():
        a.ingest(version, cols)
    b = ModelMonitor(spec)
    b.load(MODEL_KEY, st.decode(st.encode(a.to_state(MODEL_KEY))))
    more = decoded(spec, events(600, start=1500))
    for m in (a, b):
        for (_, version), cols in more.items():
            m.ingest(version, cols)
    assert b.profile.features["colour"].to_dict() == a.profile.features["colour"].to_dict()
    assert "\x00invalid" not in b.profile.features["colour"].categories


def test_a_reference_file_set_after_a_restart_drops_what_was_collected_for_one(tmp_path):
    from driftline.monitor import reference_for
    settings_ = parse_settings(config(), {})
    url = f"sqlite:///{tmp_path}/s.db"
    make_pipeline(settings_, SqlStore(url, upgrade=True), lambda s: None).process(batch(events(1500)), force=True)
    store = SqlStore(url)
    assert ("m", MODEL_KEY, "*") in store.state.load_states("driftline")
    pipe = make_pipeline(settings_, store, lambda s: None)
    spec = settings_.models[0]
    cols = {"x": np.random.default_rng(0).normal(size=3000), "y": np.random.default_rng(1).normal(10, 2, 3000),
            "colour": ["red", "green"] * 1500, "prediction": np.random.default_rng(2).random(3000)}
    pipe.set_reference(reference_for(spec, cols, "file"))
    pipe.process(batch([], 1500), force=True)
    assert ("m", MODEL_KEY, "*") not in store.state.load_states("driftline")
