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


def _both(decoder, value):
    """``value`` alone among valid records, through both paths: each must keep the ten."""
    out = []
    for decode in (decoder.decode, decoder.decode_records):
        d = decode(batch(events(5) + [value] + events(5, start=5)))
        assert sum(c.n for c in d.groups.values()) + len(d.bad) == 11
        assert d.groups[("m", "v1")].n >= 10
        out.append(d)
    return out


def _record(features: bytes = b'"x": 1.5', **fields) -> bytes:
    head = {"model": b'"m"', "version": b'"v1"', "id": b'"1"', "ts": b"1795000000000"} | fields
    return (b"{" + b",".join(b'"%s": %s' % (k.encode(), v) for k, v in head.items() if v is not None)
            + b', "features": {' + features + b"}}")


@pytest.mark.parametrize("value, reason", [
    (_record(b'"x": ' + b"[" * 10_000 + b"]" * 10_000), "nested deeper than 1024 levels"),
    (_record(b'"x": NaN, "y": ' + b"[" * 300 + b"]" * 300), "nested deeper than 256 levels"),
    (_record(ts=b"100000000000000000000"), "field 'ts' is out of range (epoch ms 0..253402300799999"),
    (_record(ts=b"-1"), "field 'ts' is out of range"),
    (_record(ts=b"9" * 1000), "field 'ts' is out of range"),
    (_record(ts=b'"0001-01-01T00:00:00Z"'), "field 'ts' is out of range"),
    (_record(ts=b'"NaTZ"'), "field 'ts' is not ISO-8601 or epoch ms: 'NaTZ'"),
    (_record(ts=b'"nowZ"'), "field 'ts' is not ISO-8601 or epoch ms: 'nowZ'"),
    (_record(ts=b"true"), "field 'ts' is not ISO-8601 or epoch ms: True"),
    (_record(ts=b"[[1]]"), "field 'ts' is not ISO-8601 or epoch ms: a list"),
    (_record(b'"colour": "\\ud800"'), "lone surrogate in a string"),
    (_record(b'"colour": "\\udc00\\ud800"'), "lone surrogate in a string"),
    (_record(b'"x": NaN, "colour": "\\ud800"'), "lone surrogate in a string"),
    (_record(b'"\\udfff": 1'), "lone surrogate in a string"),
    (_record(b'"colour": "\xed\xa0\x80"'), "not UTF-8: invalid byte at position 85"),
    (_record(b'"colour": "\xff"'), "not UTF-8: invalid byte at position"),
    (_record().decode().encode("utf-16"), "not UTF-8: invalid byte at position 0"),
    (_record().decode().encode("utf-32-le"), "malformed JSON"),
    (b"\xef\xbb\xbf" + _record(), "malformed JSON"),
    (_record(id=None), "missing field 'id'"),
    (_record(id=b"null"), "missing field 'id'"),
    (_record(id=b'{"a": 1}'), "field 'id' is a dict, expected a string or integer"),
    (_record(id=b"true"), "field 'id' is a bool, expected a string or integer"),
    (_record(id=b"1.5"), "field 'id' is a float, expected a string or integer"),
    (_record(version=b"[1]"), "field 'version' is a list, expected a string or integer"),
    (_record(version=b"false"), "field 'version' is a bool, expected a string or integer"),
    (_record(model=b'["m"]'), "field 'model' is a list, expected a string"),
    (_record(model=b'"' + b"q" * 5000 + b'"'), "unknown model 'qqqq"),
    (b"", "malformed JSON"),
    (b"null", "record is a JSON null, expected an object"),
])
def test_hostile_records_are_bad_records_on_both_paths(decoder, value, reason):
    for d in _both(decoder, value):
        (bad,) = d.bad
        assert bad.reason.startswith(reason), bad.reason
        assert len(bad.reason) < 200 and bad.position == SourcePosition("t", 0, 105)


def test_a_huge_integer_in_a_feature_is_an_invalid_value_not_a_bad_record(decoder):
    huge = _record(b'"x": ' + b"9" * 1000 + b', "y": -' + b"9" * 30 + b', "colour": 123456789012345678901234')
    for d in _both(decoder, huge):
        assert not d.bad
        cols = d.groups[("m", "v1")]
        x, y, c = (cols.features[k] for k in ("x", "y", "colour"))
        assert not x.valid[5] and not x.missing[5]  # like NaN: counted invalid
        assert y.valid[5] and y.values[5] == -1e30  # beyond 64 bits, within the float range: a float
        assert c.values[5] == INVALID


def test_ids_strings_or_integers_versions_integers_and_duplicate_keys_last_wins(decoder):
    for d in _both(decoder, _record(id=b"42", version=b'"v1", "version": "v1"')):
        assert not d.bad
    (_, records) = _both(decoder, _record(version=b"3"))
    assert records.groups[("m", "3")].n == 1 and not records.bad


def test_a_model_without_ids_says_so_with_a_null_id_field():
    decoder = Decoder(parse_settings(config(model={"fields": {"id": None}}), {}).models)
    values = [orjson.dumps({k: v for k, v in orjson.loads(e).items() if k != "id"}) for e in events(10)]
    assert decoder._arrow.decode(values) is not None
    for decode in (decoder.decode, decoder.decode_records):
        d = decode(batch(values))
        assert not d.bad and d.groups[("m", "v1")].n == 10


def test_categorical_values_always_encode_as_utf8(decoder):
    values = events(5) + [_record(b'"colour": "\\ud83d\\ude00 \\u00e9 \\u0000"'),
                          _record(b'"colour": "\\\\ud800"')]  # an escaped backslash: no surrogate
    for d in _both(decoder, values[5]) + _both(decoder, values[6]):
        assert not d.bad
        for v in d.groups[("m", "v1")].features["colour"].values:
            v.encode("utf-8")


def test_a_batch_that_begins_with_null_does_not_reach_pyarrow(decoder):
    values = [b"null"] + events(5)  # pyarrow 26's reader crashes the process on this
    assert decoder._arrow.decode(values) is None
    d = decoder.decode(batch(values))
    assert [b.reason for b in d.bad] == ["record is a JSON null, expected an object"] and d.groups[("m", "v1")].n == 5


@pytest.mark.parametrize("empty", [b"", b" ", b"\n"])
def test_an_empty_record_beside_one_holding_two_lines_is_not_taken_as_two_events(decoder, empty):
    """Joined by newlines for pyarrow, the two would add up to the right row count."""
    good = events(6)
    values = good[:2] + [empty] + [good[2] + b"\n" + good[3]] + good[4:]
    assert decoder._arrow.decode(values) is None
    d = decoder.decode(batch(values))
    assert sorted(b.position.offset - 100 for b in d.bad) == [2, 3] and d.groups[("m", "v1")].n == 4
