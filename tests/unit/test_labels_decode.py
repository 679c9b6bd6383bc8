"""Label events: recognised on any topic, decoded into columns per model, bad ones dead-lettered with why."""

import numpy as np
import orjson

from driftline.config import parse_settings
from driftline.streams.decode import Decoder
from driftline.types import Batch, SourcePosition
from tests.helpers import config


def _batch(records) -> Batch:
    return Batch([orjson.dumps(r) for r in records], lambda i: SourcePosition("t", 0, i))


def _event(i, **kw):
    return {"model": "m", "version": "v1", "id": f"p{i}", "ts": 1000 + i,
            "features": {"x": 1.0, "y": 2.0, "colour": "r"}, "prediction": 0.25} | kw


def _decoder(**model):
    return Decoder(parse_settings(config(model=model), {}).models)


def test_events_of_a_model_with_labels_keep_their_ids_on_both_paths():
    d = _decoder(labels={})
    clean = d.decode(_batch([_event(i) for i in range(3)] + [_event(3, id=7)]))  # the columnar path
    assert clean.groups[("m", "v1")].ids.tolist() == ["p0", "p1", "p2", "7"]
    mixed = d.decode(_batch([_event(0), {"model": "m", "id": "p0", "ts": 9000, "label": 1}, _event(1, id=7)]))
    assert mixed.groups[("m", "v1")].ids.tolist() == ["p0", "7"]
    assert _decoder().decode(_batch([_event(0)])).groups[("m", "v1")].ids is None  # no labels: not kept


def test_label_events_are_decoded_per_model_in_arrival_order():
    d = _decoder(labels={"task": "regression"})  # a target of 2.5 is a label here
    out = d.decode(_batch([{"model": "m", "id": "p1", "ts": 5000, "label": 1},
                           _event(0),
                           {"model": "m", "id": 42, "ts": "2026-01-01T00:00:00Z", "label": False, "version": "v1"},
                           {"model": "m", "id": "p3", "ts": 6000, "label": 2.5}]))
    lab = out.labels["m"]
    assert lab.ids.tolist() == ["p1", "42", "p3"]
    assert lab.ts.tolist() == [5000, 1767225600000, 6000]
    assert lab.label.tolist() == [1.0, 0.0, 2.5] and lab.version.tolist() == [None, "v1", None]
    assert not out.bad and out.groups[("m", "v1")].n == 1


def test_malformed_label_events_go_to_the_dead_letter_topic_with_a_reason():
    d = Decoder(parse_settings({"models": [config(model={"labels": {}})["models"][0],
                                           config(model={"name": "plain"})["models"][0]]}, {}).models)
    out = d.decode(_batch([{"model": "m", "ts": 5000, "label": 1},
                           {"model": "m", "id": "a", "label": 1},
                           {"model": "m", "id": "a", "ts": 5000, "label": "yes"},
                           {"model": "m", "id": "a", "ts": 5000, "label": None},
                           {"model": "m", "id": ["a"], "ts": 5000, "label": 1},
                           {"model": "nope", "id": "a", "ts": 5000, "label": 1},
                           {"model": "plain", "id": "a", "ts": 5000, "label": 1},
                           {"id": "a", "ts": 5000, "label": 1},
                           {"model": "m", "id": "ok", "ts": 5000, "label": 1},
                           {"model": "m", "id": "b", "ts": 5000, "label": 2}]))
    reasons = sorted((b.position.offset, b.reason) for b in out.bad)
    assert reasons == [
        (0, "label event: missing field 'id'"),
        (1, "label event: missing field 'ts'"),
        (2, "label event: field 'label' is a str, expected a number or a boolean"),
        (3, "label event: field 'label' is null, expected a number or a boolean"),
        (4, "label event: field 'id' is a list, expected a string or integer"),
        (5, "label event: unknown model 'nope'"),
        (6, "label event for model 'plain', which has no 'labels' configured"),
        (7, "label event: missing field 'model'"),
        (9, "label event: field 'label' is 2, expected 0 or 1 (or true/false) for a binary model"),
    ]
    assert out.labels["m"].ids.tolist() == ["ok"]
    assert not out.invalid  # a bad label is no invalid event of a window


def test_a_label_event_for_a_configuration_without_labels_is_named_as_such():
    out = _decoder().decode(_batch([_event(0), {"model": "m", "id": "p0", "ts": 9000, "label": 1}]))
    assert [b.reason for b in out.bad] == ["label event for model 'm', which has no 'labels' configured"]
    assert not out.invalid and out.groups[("m", "v1")].n == 1


def test_an_event_of_a_model_with_labels_but_no_id_is_an_invalid_event_not_a_crash():
    out = _decoder(labels={}).decode(_batch([_event(0), {k: v for k, v in _event(1).items() if k != "id"}]))
    assert [b.reason for b in out.bad] == ["missing field 'id'"]
    assert out.invalid == {("m", "v1"): 1} and out.groups[("m", "v1")].ids.tolist() == ["p0"]


def test_a_batch_of_events_and_labels_decodes_as_record_by_record():
    d = _decoder(labels={})
    records = [_event(i) for i in range(20)] + [{"model": "m", "id": f"p{i}", "ts": 9000 + i, "label": i % 2}
                                                for i in range(0, 20, 3)]
    records += [{"model": "m", "id": "q", "ts": 9000, "label": "no"}, _event(20, id=21)]
    records = [records[k] for k in np.random.default_rng(1).permutation(len(records))]
    whole, split = d.decode_records(_batch(records)), d.decode(_batch(records))
    assert split.groups.keys() == whole.groups.keys()
    for key, cols in whole.groups.items():
        assert split.groups[key].ids.tolist() == cols.ids.tolist()
        assert split.groups[key].ts.tolist() == cols.ts.tolist()
    assert split.labels["m"].ids.tolist() == whole.labels["m"].ids.tolist()
    assert [(b.reason, b.position.offset) for b in split.bad] == [(b.reason, b.position.offset) for b in whole.bad]
    # an event that looks like a label in its bytes (no features) sends the batch down the record path
    odd = records + [{"model": "m", "version": "v1", "id": "z", "ts": 1, "prediction": 0.1, "note": "label"}]
    assert [b.reason for b in d.decode(_batch(odd)).bad] == [b.reason for b in d.decode_records(_batch(odd)).bad]


def test_a_label_field_mapping_takes_labels_of_another_shape():
    d = _decoder(labels={}, fields={"id": "meta.request", "ts": "meta.at", "label": "outcome.fraud",
                                    "features": "inputs"})
    out = d.decode(_batch([{"model": "m", "meta": {"request": "r1", "at": 5000}, "outcome": {"fraud": True}},
                           {"model": "m", "meta": {"request": "r2", "at": 5000}, "outcome": {"fraud": "yes"}},
                           {"model": "m", "meta": {"request": "r3", "at": 5000}, "outcome": {"fraud": 3}},
                           {"model": "m", "version": "v1", "meta": {"request": "p9", "at": 1000},
                            "inputs": {"x": 1.0, "y": 2.0, "colour": "r"}, "prediction": 0.2}]))
    assert out.labels["m"].ids.tolist() == ["r1"] and out.labels["m"].label.tolist() == [1.0]
    assert sorted(b.reason for b in out.bad) == [
        "label event: field 'outcome.fraud' is 3, expected 0 or 1 (or true/false) for a binary model",
        "label event: field 'outcome.fraud' is a str, expected a number or a boolean"]
    assert out.groups[("m", "v1")].ids.tolist() == ["p9"]  # an event: it has the features
