"""Every event of a window is accounted for in every feature's counts.

numeric: ``count`` (valid values) + ``missing`` + ``invalid`` == the window's ``count``;
categorical: the reference's top-K (every one of them, under ``top``) + ``other`` +
``missing`` + ``invalid`` == the window's ``count``."""

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config import parse_settings
from driftline.monitor import ModelMonitor, reference_for
from driftline.streams.decode import Decoder
from driftline.types import Batch, SourcePosition
from tests.helpers import config

COLOURS = [f"c{i}" for i in range(12)]


def spec(top_k: int = 20, size: int = 50):
    raw = config(model={"features": {"x": "numeric", "colour": {"kind": "categorical", "top_k": top_k},
                                     "flag": "boolean"},
                        "window": {"size": size, "min_count": 10}})
    return parse_settings(raw, {}).models[0]


def monitor(s, seed: int = 0) -> ModelMonitor:
    rng = np.random.default_rng(seed)
    ref = {"x": rng.normal(size=2000), "colour": list(rng.choice(COLOURS, 2000)),
           "flag": list(rng.choice([True, False], 2000)), "prediction": rng.uniform(size=2000)}
    return ModelMonitor(s, reference_for(s, ref, "test"))


def summaries(s, mon: ModelMonitor, records: list[dict]) -> list[dict]:
    values = [orjson.dumps({"model": "m", "version": "v1", "id": str(i), "ts": 1_795_000_000_000 + i,
                            "features": f, "prediction": 0.5}) for i, f in enumerate(records)]
    decoded = Decoder([s]).decode(Batch(values, lambda i: SourcePosition("t", 0, i)), 1_795_000_000_000)
    cols = decoded.groups.get(("m", "v1"))
    closed = mon.ingest("v1", cols)[0] if cols is not None else []
    return [mon.summarise(w) for w in closed + mon.close_all()]


def check(summary: dict, mon: ModelMonitor) -> None:
    n = summary["count"]
    for name, f in {**summary["features"], "prediction": summary["prediction"]}.items():
        if f["kind"] == "numeric":
            assert f["count"] + f["missing"] + f["invalid"] == n, name
        else:
            assert set(f["top"]) == set(mon.profile.features[name].categories), name
            assert sum(f["top"].values()) + f["other"] == f["count"], name
            assert f["count"] + f["missing"] + f["invalid"] == n, name


def test_a_twelve_value_feature_reports_every_category_of_a_top_20():
    s = spec(size=2000)
    mon = monitor(s)
    rng = np.random.default_rng(1)
    records = [{"x": float(v), "colour": str(c), "flag": True} for v, c in
               zip(rng.normal(size=2000), rng.choice(COLOURS, 2000))]
    (w,) = summaries(s, mon, records)
    top = w["features"]["colour"]["top"]
    assert len(top) == 12 and sum(top.values()) == 2000 and w["features"]["colour"]["other"] == 0
    check(w, mon)


number = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.none(),
                   st.sampled_from(["1.5", "abc", True, [], {}]))
category = st.one_of(st.sampled_from(COLOURS), st.sampled_from(["unseen-a", "unseen-b", ""]),
                     st.text(max_size=3), st.none(), st.integers(-3, 3), st.floats(), st.booleans())
flag = st.one_of(st.booleans(), st.none(), st.sampled_from(["yes", 1, 0.0]))
record = st.fixed_dictionaries({}, optional={"x": number, "colour": category, "flag": flag})


@settings(max_examples=40, deadline=None)
@given(st.lists(record, min_size=1, max_size=180), st.sampled_from([3, 20]))
def test_window_counts_add_up_on_random_records(records, top_k):
    s = spec(top_k=top_k)
    mon = monitor(s)
    out = summaries(s, mon, records)
    assert sum(w["count"] + w["invalid"] for w in out) == len(records)  # none lost
    for w in out:
        check(w, mon)
