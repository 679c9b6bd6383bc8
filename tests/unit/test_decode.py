"""Bad input: each kind of bad record is named, counted and kept; the rest goes on."""

import numpy as np
import orjson
import pytest

from driftline.config import parse_settings
from driftline.streams.decode import Decoder, parse_ts
from driftline.types import INVALID, Batch, SourcePosition
from tests.helpers import config, events


def batch(values):
    return Batch(values, lambda i: SourcePosition("t", 0, 100 + i), {("t", 0): 100 + len(values)})


@pytest.fixture
def decoder():
    return Decoder(parse_settings(config(), {}).models)


def ev(**over):
    base = {"model": "m", "version": "v1", "id": "1", "ts": "2026-11-24T12:00:00.123Z",
            "features": {"x": 1.5, "y": 2, "colour": "red"}, "prediction": 0.8}
    base.update(over)
    return orjson.dumps(base)


def test_good_events_become_columns_per_model_version(decoder):
    d = decoder.decode(batch(events(50) + events(20, version="v2")))
    assert set(d.groups) == {("m", "v1"), ("m", "v2")} and not d.bad
    cols = d.groups[("m", "v1")]
    assert cols.n == 50 and cols.features["x"].values.dtype == np.float64
    assert cols.features["colour"].values[0] in ("red", "green", "blue")


@pytest.mark.parametrize("value, reason", [
    (b'{"model": "m", "ts": 1, "features": {', "malformed JSON"),
    (b"[1, 2, 3]", "record is a JSON list, expected an object"),
    (None, "empty record (tombstone)"),
    (ev(model="churn"), "unknown model 'churn'"),
    (orjson.dumps({"ts": 1, "features": {}}), "missing field 'model'"),
    (orjson.dumps({"model": "m", "features": {"x": 1}}), "missing field 'ts'"),
    (orjson.dumps({"model": "m", "ts": 5}), "missing field 'features'"),
    (ev(features=[1, 2]), "field 'features' is a list, expected an object"),
    (ev(ts="yesterday"), "field 'ts' is not ISO-8601 or epoch ms: 'yesterday'"),
])
def test_each_bad_record_is_named_positioned_and_counted(decoder, value, reason):
    d = decoder.decode(batch(events(5) + [value] + events(5, start=5)))
    (bad,) = d.bad
    assert bad.reason.startswith(reason)
    assert bad.position == SourcePosition("t", 0, 105)
    assert d.groups[("m", "v1")].n == 10  # the stream goes on
    known_model = bad.model == "m"
    assert d.invalid == ({(bad.model, bad.version): 1} if known_model else {})


def test_wrong_values_inside_a_valid_record_are_data_quality_findings(decoder):
    values = [ev(features={"x": "12.5", "y": None, "colour": 7}),
              ev(features={"x": True, "colour": ["a"]}),
              ev(features={"x": 2.0, "y": 1, "colour": "red"})]
    d = decoder.decode(batch(values))
    assert not d.bad
    cols = d.groups[("m", "v1")]
    x, y, c = cols.features["x"], cols.features["y"], cols.features["colour"]
    assert x.valid.tolist() == [False, False, True] and x.missing.tolist() == [False, False, False]
    assert y.missing.tolist() == [True, True, False]
    assert c.values.tolist() == ["7", INVALID, "red"]


def test_nan_and_infinity_are_kept_and_counted_invalid(decoder):
    nan = b'{"model": "m", "id": 7, "ts": 1, "features": {"x": NaN, "y": Infinity, "colour": "red"}}'
    d = decoder.decode(batch([nan, ev()]))
    assert not d.bad
    cols = d.groups[("m", "default")]
    assert not cols.features["x"].valid[0] and not cols.features["x"].missing[0]
    assert not cols.features["y"].valid[0]


def test_timestamps_iso_offsets_and_epoch_ms():
    ms, bad = parse_ts(["2026-11-24T12:00:00.123Z", "2026-11-24T13:00:00.123+01:00", 1795521600123, "x"])
    assert ms[:3].tolist() == [1795521600123] * 3 and bad == [3]


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        ca, cb = a[key], b[key]
        assert (ca.ts == cb.ts).all()
        for name, col in ca.features.items():
            other = cb.features[name]
            if hasattr(col, "valid"):
                assert (col.valid == other.valid).all() and (col.missing == other.missing).all(), name
                assert np.allclose(col.values[col.valid], other.values[other.valid]), name
            else:
                assert col.values.tolist() == other.values.tolist(), name
        assert ca.extra.keys() == cb.extra.keys()
        for name, mask in ca.extra.items():
            assert mask.tolist() == cb.extra[name].tolist(), name


def test_fast_columnar_path_gives_the_same_columns_as_the_record_path():
    raw = config(model={"features": {"x": "numeric", "y": "numeric", "colour": "categorical",
                                     "flag": "boolean"}})
    decoder = Decoder(parse_settings(raw, {}).models)
    values = events(300, seed=3) + events(200, seed=4, version="v2")
    values += [ev(features={"x": None, "colour": "red", "flag": True}, ts=1795000000001),
               ev(features={"x": 3, "y": 2.5, "flag": False}, ts=1795000000002),
               ev(features={"x": 3, "y": 2.5, "score_v2": 0.4, "tags": {"a": 1}}, ts=1795000000004),
               ev(features={"x": 3, "y": 2.5, "score_v2": None}, ts=1795000000005),
               b'{"model": "m", "version": "v1", "id": "n", "ts": 1795000000003, '
               b'"features": {"x": NaN, "y": Infinity, "flag": null}, "extra": 1}']
    fast = decoder._arrow.decode(values)
    assert fast is not None, "a clean batch must take the columnar path"
    _same(fast, decoder.decode_records(batch(values)).groups)
    extra = fast[("m", "v1")].extra  # undeclared fields, with the records that carry them (non-null)
    assert sorted(extra) == ["score_v2", "tags"] and int(extra["score_v2"].sum()) == 1


def test_dirty_batches_fall_back_to_the_record_path(decoder):
    for dirty in (b"{oops", ev(features={"x": "1.5"}, ts=1), ev(model="other", ts=1), b"[1]", None,
                  ev(ts="2026-11-24T12:00:00Z")):  # the last: epoch ms and ISO in one batch
        assert decoder._arrow.decode(events(10) + [dirty]) is None


def test_a_per_model_field_mapping_reads_other_event_shapes():
    raw = config(model={"fields": {"model": "meta.model", "version": "meta.v", "id": "meta.id", "ts": "meta.time",
                                   "features": "inputs", "prediction": "output.score"}})
    decoder = Decoder(parse_settings(raw, {}).models)
    shaped = [orjson.dumps({"meta": {"model": "m", "v": "v9", "id": i, "time": 1795000000000 + i},
                            "inputs": {"x": float(i), "y": 1.0, "colour": "red"},
                            "output": {"score": 0.25}}) for i in range(5)]
    missing = orjson.dumps({"meta": {"model": "m", "v": "v9"}, "inputs": {}})
    d = decoder.decode(batch(shaped + [missing]))
    cols = d.groups[("m", "v9")]
    assert cols.features["x"].values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert cols.features["prediction"].values.tolist() == [0.25] * 5
    assert cols.ts[0] == 1795000000000
    (bad,) = d.bad
    assert bad.reason == "missing field 'meta.time'" and d.invalid == {("m", "v9"): 1}


def test_a_missing_broker_binary_is_a_clear_error(monkeypatch, tmp_path):
    from driftline.errors import BrokerError
    from driftline.streams.broker import EmbeddedBroker
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(BrokerError, match="Tansu broker binary is missing"):
        EmbeddedBroker().start()


def test_events_too_far_in_the_future_are_bad_records(decoder):
    now = 1_795_000_000_000
    day_ahead = ev(ts=now + 86_400_000 + 1)
    values = events(5, start_ms=now - 10_000) + [day_ahead]
    assert decoder._arrow.decode(values, decoder._limits(now)) is None
    d = decoder.decode(batch(values), now_ms=now)
    (bad,) = d.bad
    assert bad.reason == f"field 'ts' is {now + 86_400_001}, more than 86400 s ahead of the clock"
    assert d.groups[("m", "v1")].n == 5 and d.invalid == {("m", "v1"): 1}
    assert not decoder.decode(batch(values)).bad  # without a clock nothing is judged
