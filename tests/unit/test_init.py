"""driftline init: samples of several shapes → a configuration that check-config accepts
and replay runs unedited; bad input → exit 2 with a message, never a traceback."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import yaml

from driftline.cli import main
from tests.helpers import events


def write_lines(path, docs) -> str:
    path.write_bytes(b"\n".join(d if isinstance(d, bytes) else orjson.dumps(d) for d in docs) + b"\n")
    return str(path)


def nested(n: int, seed: int = 0, rate_ms: int = 250) -> list[dict]:
    """A shape unlike the repository's: metadata object, inputs, output object, ISO times."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = np.datetime64(1_790_000_000_000 + i * rate_ms, "ms")
        out.append({"meta": {"model_name": "churn", "model_version": 7, "request_id": f"r-{seed}-{i}",
                             "timestamp": str(ts) + "Z"},
                    "inputs": {"tenure_months": int(rng.integers(0, 72)), "monthly_fee": float(rng.gamma(2, 20)),
                               "plan": str(rng.choice(["basic", "plus", "pro"])), "autopay": bool(rng.random() < 0.4),
                               "session": f"s{seed}-{i}", "region": "eu"},
                    "output": {"score": float(rng.random()), "label": "stay"}})
    return out


def init(tmp_path, *args, capsys=None) -> tuple[int, str, str]:
    out = tmp_path / "driftline.yaml"
    rc = main(["init", *args, "-o", str(out)])
    captured = capsys.readouterr() if capsys else None
    return rc, captured.out if captured else "", captured.err if captured else ""


def check_and_replay(tmp_path, events_path, capsys) -> list[dict]:
    cfg = str(tmp_path / "driftline.yaml")
    assert main(["check-config", cfg]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["replay", "-c", cfg, events_path]) == 0
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    windows = [x for x in lines if x["type"] == "window"]
    assert windows, "the replay printed no window"
    return windows


def test_default_shape_checks_and_replays_unedited(tmp_path, capsys):
    path = write_lines(tmp_path / "events.jsonl", events(4000, seed=1) + events(2000, start=4000, seed=2))
    rc, out, _ = init(tmp_path, "--from", path, capsys=capsys)
    assert rc == 0
    assert "the default event shape" in out and "colour: categorical, top_k 3" in out
    raw = yaml.safe_load((tmp_path / "driftline.yaml").read_text())
    model = raw["models"][0]
    assert model["name"] == "m" and "fields" not in model
    assert model["features"] == {"x": "numeric", "y": "numeric", "colour": {"kind": "categorical", "top_k": 3}}
    assert model["window"]["duration"] == "1m" and model["reference"] == {"first_n": 3000}
    windows = check_and_replay(tmp_path, path, capsys)
    assert sum(w["count"] for w in windows) == 3000


def test_nested_shape_gets_a_fields_mapping_and_flags(tmp_path, capsys):
    path = write_lines(tmp_path / "churn.jsonl", nested(3000))
    rc, out, _ = init(tmp_path, "--from", path, capsys=capsys)
    assert rc == 0
    model = yaml.safe_load((tmp_path / "driftline.yaml").read_text())["models"][0]
    assert model["name"] == "churn"
    assert model["fields"] == {"model": "meta.model_name", "version": "meta.model_version",
                               "id": "meta.request_id", "ts": "meta.timestamp", "features": "inputs",
                               "prediction": "output.score"}
    assert model["features"] == {"tenure_months": "numeric", "monthly_fee": "numeric",
                                 "plan": {"kind": "categorical", "top_k": 3}, "autopay": "boolean"}
    assert "session: not monitored — id-like" in out and "region: not monitored — constant" in out
    assert model["prediction"] == "numeric"
    assert model["window"]["duration"] == "15m"  # 4 events/s: 5000 events in ~21 min, 15m the nearest
    windows = check_and_replay(tmp_path, path, capsys)
    assert {w["version"] for w in windows} == {"7"}


def test_id_like_and_constant_columns_are_commented_out_not_monitored(tmp_path, capsys):
    docs = [orjson.loads(e) for e in events(1000)]
    for i, d in enumerate(docs):
        d["features"] |= {"user": f"u{i:05d}", "source": "web", "empty": None}
    path = write_lines(tmp_path / "e.jsonl", docs)
    assert init(tmp_path, "--from", path, capsys=capsys)[0] == 0
    text = (tmp_path / "driftline.yaml").read_text()
    features = yaml.safe_load(text)["models"][0]["features"]
    assert set(features) == {"x", "y", "colour"}
    assert "# user: not monitored — id-like: 1000 distinct strings in 1000 values" in text
    assert "# source: not monitored — constant: always 'web'" in text
    assert "# empty: not monitored — always missing" in text


def test_mixed_and_garbage_lines_are_named_and_skipped(tmp_path, capsys):
    good = events(1500)
    lines = good[:500] + [b"not json", b"[1, 2]", b"\xff\xfe", b'{"model": 3}'] + good[500:]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    rc, out, _ = init(tmp_path, "--from", path, capsys=capsys)
    assert rc == 0
    assert "skipped line 501: malformed JSON" in out and "skipped line 502: a JSON list, not an object" in out
    assert "skipped line 503" in out and "line 504 would be a bad record" in out
    check_and_replay(tmp_path, path, capsys)


@pytest.mark.parametrize("content, message", [
    (b"", "no records to learn from (the input is empty)"),
    (b"\n\n", "no records to learn from"),
    (b"garbage\nmore garbage\n", "none of its 2 record(s) is a JSON object (line 1: malformed JSON"),
    (b'{"model": "m", "ts": 1, "amount": 3}\n' * 300, "found no field for the features as one object"),
    (b'{"model": "m", "ts": 1795000000000, "features": {"a": 1}}\n' * 50, "each model needs at least 200"),
])
def test_bad_input_is_a_clear_error_with_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    rc, _, err = init(tmp_path, "--from", str(path), capsys=capsys)
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "driftline.yaml").exists()


def test_missing_and_unknown_files_exit_2(tmp_path, capsys):
    assert init(tmp_path, "--from", str(tmp_path / "nope.jsonl"), capsys=capsys)[2].endswith("does not exist\n")
    (tmp_path / "x.xlsx").write_text("a")
    assert "unknown format" in init(tmp_path, "--from", str(tmp_path / "x.xlsx"), capsys=capsys)[2]
    assert main(["init"]) == 2


def test_an_existing_file_is_kept_unless_forced(tmp_path, capsys):
    path = write_lines(tmp_path / "events.jsonl", events(1000))
    (tmp_path / "driftline.yaml").write_text("mine\n")
    rc, _, err = init(tmp_path, "--from", path, capsys=capsys)
    assert rc == 2 and "exists; pass --force" in err and (tmp_path / "driftline.yaml").read_text() == "mine\n"
    assert init(tmp_path, "--from", path, "--force", capsys=capsys)[0] == 0
    assert "models:" in (tmp_path / "driftline.yaml").read_text()


def table_columns(n: int = 2000) -> dict:
    rng = np.random.default_rng(3)
    return {"order_id": [f"o{i}" for i in range(n)], "basket_eur": rng.gamma(2, 30, n),
            "items": rng.integers(1, 9, n), "channel": rng.choice(["app", "web", "store"], n).tolist(),
            "gift": (rng.random(n) < 0.1).tolist(), "label": rng.integers(0, 2, n), "prediction": rng.random(n)}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_training_tables_become_the_reference(tmp_path, capsys, fmt, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the written config's store is relative: .driftline/driftline.db here
    table = pa.table(table_columns())
    path = tmp_path / f"basket_train.{fmt}"
    (pcsv.write_csv if fmt == "csv" else pq.write_table)(table, path)
    rc, out, _ = init(tmp_path, "--from", str(path), capsys=capsys)
    assert rc == 0, out
    model = yaml.safe_load((tmp_path / "driftline.yaml").read_text())["models"][0]
    assert model["name"] == "basket_train" and model["reference"] == {"path": str(path)}
    assert model["features"] == {"basket_eur": "numeric", "items": "numeric",
                                 "channel": {"kind": "categorical", "top_k": 3}, "gift": "boolean"}
    assert model["prediction"] == "numeric" and "size" in model["window"]
    assert "order_id: not monitored — id-like" in out and "label: not monitored — looks like the ground truth" in out
    assert main(["check-config", str(tmp_path / "driftline.yaml")]) == 0
    cfg = str(tmp_path / "driftline.yaml")
    assert main(["reference", "-c", cfg, "basket_train", str(path)]) == 0


def test_events_with_a_training_file_as_reference(tmp_path, capsys):
    data = events(1000)
    rows = [orjson.loads(e) for e in data]
    pq.write_table(pa.table({"x": [r["features"]["x"] for r in rows], "colour": [r["features"]["colour"] for r in rows],
                             "prediction": [r["prediction"] for r in rows]}), tmp_path / "train.parquet")
    path = write_lines(tmp_path / "events.jsonl", data)
    assert init(tmp_path, "--from", path, "--reference", str(tmp_path / "train.parquet"), capsys=capsys)[0] == 0
    text = (tmp_path / "driftline.yaml").read_text()
    model = yaml.safe_load(text)["models"][0]
    assert model["reference"] == {"path": str(tmp_path / "train.parquet")} and "y" not in model["features"]
    assert '# "y": not monitored — not a column of the reference file' in text
    assert main(["check-config", str(tmp_path / "driftline.yaml")]) == 0


def test_several_models_slow_rate_and_epoch_iso_mix(tmp_path, capsys):
    """Two models, a slow stream (one event a minute: a count window) and a fast one."""
    rng = np.random.default_rng(5)
    docs = []
    for i in range(3000):
        docs.append({"model": "slow", "id": i, "ts": 1_700_000_000_000 + i * 60_000,
                     "features": {"temp": float(rng.normal(20, 3)), "ok": bool(i % 3)}, "prediction": "hot"
                     if i % 2 else "cold"})
        docs.append({"model": "fast", "version": "b", "id": f"f{i}", "ts": 1_700_000_000_000 + i * 2,
                     "features": {"v": float(rng.random()), "k": str(i % 7)}, "prediction": float(rng.random())})
    path = write_lines(tmp_path / "two.jsonl", docs)
    assert init(tmp_path, "--from", path, capsys=capsys)[0] == 0
    models = {m["name"]: m for m in yaml.safe_load((tmp_path / "driftline.yaml").read_text())["models"]}
    assert "size" in models["slow"]["window"] and models["slow"]["prediction"] == {"kind": "categorical", "top_k": 2}
    assert models["fast"]["window"]["duration"] == "10s"
    windows = check_and_replay(tmp_path, path, capsys)
    assert {w["model"] for w in windows} == {"slow", "fast"}


import json  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from driftline.errors import InputError  # noqa: E402
from driftline.init import load  # noqa: E402
from driftline.init.sample import from_records  # noqa: E402

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
_doc = st.fixed_dictionaries({"model": st.sampled_from(["a", "b", 3]), "ts": st.one_of(st.integers(), st.text(max_size=5)),
                              "features": st.dictionaries(st.text(max_size=4), _scalar, max_size=4)},
                             optional={"id": _scalar, "version": _scalar, "prediction": _scalar})
_json = (lambda v: json.dumps(v).encode())  # noqa: E731 - big integers and infinities too, unlike orjson
_line = st.one_of(st.binary(max_size=30), _doc.map(_json),
                  st.recursive(_scalar, lambda c: st.lists(c) | st.dictionaries(st.text(max_size=3), c),
                               max_leaves=6).map(_json))


@given(st.lists(_line, max_size=40), st.integers(0, 400))
def test_init_is_total_over_any_records(lines, copies):
    """Any records: a proposal whose YAML validates, or an InputError; nothing else escapes."""
    good = orjson.dumps({"model": "a", "id": "1", "ts": 1_795_000_000_000, "features": {"v": 1.5, "k": "x"}})
    records = lines + [good.replace(b'"1"', f'"{i}"'.encode()) for i in range(copies)]
    try:
        proposal = load.from_events(from_records("sample", records, 10_000))
    except InputError:
        return
    load.checked_yaml(proposal)


def test_an_output_object_with_one_scalar_is_the_prediction_whatever_its_name():
    from driftline.init import shape
    docs = [{"modelName": "ctr", "requestId": f"r{i}", "eventTime": 1_795_000_000_000 + i,
             "inputs": {"dwell": float(i % 7), "device": "ios"}, "output": {"p_click": i / 100}} for i in range(50)]
    found = shape.find(docs)
    assert (found.features, found.prediction) == ("inputs", "output.p_click")
