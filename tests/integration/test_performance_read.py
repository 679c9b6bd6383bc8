"""Reading realized performance back: ``driftline performance`` (a real process), the HTTP API
(a real uvicorn server, SQLite and PostgreSQL) and the Prometheus metrics (the real /metrics
endpoint), over a store filled by a real pipeline run; metrics checked against scikit-learn."""

import subprocess
import sys

import httpx
import numpy as np
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics as skm

from driftline.app import build_http
from driftline.config import parse_settings
from driftline.metrics import Metrics
from tests.performance_data import (
    DUPLICATES,
    HOSTILE_MODEL,
    HOSTILE_VERSION,
    MIN_LABELLED,
    ORPHANS,
    REG_SHARES,
    SHARES,
    WINDOW,
    fill,
)


def _check_binary(line, score, label):
    m = line["metrics"]
    assert (line["count"], line["labelled"]) == (WINDOW, label.size)
    assert abs(m["accuracy"] - skm.accuracy_score(label, score >= 0.5)) < 1e-12
    assert abs(m["roc_auc"] - skm.roc_auc_score(label, score)) <= m["roc_auc_max_error"] + 1e-12
    assert abs(m["log_loss"] - skm.log_loss(label, score)) < 1e-9


def _check_regression(line, pred, target):
    m = line["metrics"]
    assert abs(m["mae"] - skm.mean_absolute_error(target, pred)) < 1e-9
    assert abs(m["r2"] - skm.r2_score(target, pred)) < 1e-9


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("perf")
    cfg, expected = fill(f"sqlite:///{tmp / 'p.db'}", tmp)
    path = tmp / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, expected


def cli(path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "driftline.cli", "performance", "-c", str(path), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_each_windows_performance_as_scikit_learn_computes_it(filled):
    path, expected = filled
    proc = cli(path, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert [(x["model"], x["window"]["seq"]) for x in lines] == [("m", 0), ("m", 1), ("m", 2), ("r", 0), ("r", 1)]
    assert all(x["type"] == "performance" and x["segment"] is None for x in lines)
    for x in lines:
        check = _check_binary if x["model"] == "m" else _check_regression
        check(x, *expected[x["model"]][x["window"]["seq"]])
    shares = [x["labelled_share"] for x in lines]
    assert shares == list(SHARES + REG_SHARES)
    assert [x["enough"] for x in lines] == [s >= MIN_LABELLED for s in shares]


def test_cli_table_has_the_headline_metrics_and_says_when_not_enough(filled):
    path, expected = filled
    proc = cli(path, "--model", "m", "--version", HOSTILE_VERSION, "--last", "2")
    assert proc.returncode == 0, proc.stderr
    head, *rows = proc.stdout.splitlines()
    assert head.split() == ["model", "version", "window", "labelled", "share", "enough", "roc_auc", "accuracy", "f1",
                            "log_loss", "delay_p50", "delay_p90", "revision"]
    assert len(rows) == 2 and all(HOSTILE_VERSION in r for r in rows)  # the newest two, oldest first
    assert "#1 " in rows[0] and "500/1000" in rows[0] and " yes " in rows[0]
    assert "#2 " in rows[1] and "100/1000" in rows[1] and " NO " in rows[1]
    auc = skm.roc_auc_score(expected["m"][2][1], expected["m"][2][0])
    cell = rows[1][head.index("roc_auc"):].split()[0]  # the columns are aligned under their header
    assert abs(float(cell) - auc) < 0.002  # 4 significant digits, within the bins' bound
    reg = cli(path, "--model", "r").stdout.splitlines()[0].split()
    assert reg[6:9] == ["mae", "rmse", "r2"]


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "--model: unknown model 'nope' (configured: m, r, "),
    (["--model", HOSTILE_MODEL], "has no labels configured"),
    (["--segment", "country"], "--segment: expected FEATURE=VALUE"),
    (["--last", "0"], "--last"),
])
def test_cli_refuses_bad_arguments_naming_them(filled, args, message):
    proc = cli(filled[0], *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_cli_says_when_nothing_is_stored(filled):
    proc = cli(filled[0], "--model", "m", "--segment", "colour=red")
    assert proc.returncode == 0 and proc.stdout.strip() == "no performance stored yet for model m, segment colour=red"


@pytest.fixture
def served(store_url, tmp_path):
    cfg, expected = fill(store_url, tmp_path)
    server = build_http(parse_settings(cfg, {}), port=0)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client, expected
    server.stop()


def test_api_answers_a_models_performance_per_window(served):
    client, expected = served
    body = client.get("/api/v1/models/m/performance").json()
    assert body["labels"] is True and body["min_labelled"] == MIN_LABELLED
    assert [x["window"]["seq"] for x in body["items"]] == [0, 1, 2]
    for x in body["items"]:
        _check_binary(x, *expected["m"][x["window"]["seq"]])
    assert [x["enough"] for x in body["items"]] == [True, True, False]
    one = client.get("/api/v1/models/m/performance", params={"version": HOSTILE_VERSION, "limit": 1}).json()
    assert [x["window"]["seq"] for x in one["items"]] == [2] and one["items"][0]["version"] == HOSTILE_VERSION
    plain = client.get(f"/api/v1/models/{HOSTILE_MODEL}/performance").json()
    assert plain["labels"] is False and plain["items"] == []


@pytest.mark.parametrize("path, params, status, message", [
    ("m", {"limit": "0"}, 400, "limit: must be an integer from 1 to 1000"),
    ("m", {"segment": "colour"}, 400, "segment: expected FEATURE=VALUE"),
    ("m", {"version": "v" * 201}, 400, "version: at most 200 characters"),
    ("m", {"from": "2026-01-01"}, 400, "unknown parameter 'from'"),
    ("nope", {}, 404, "no model 'nope'"),
    ("m", {"version": "v9"}, 404, "no windows stored for model 'm' version 'v9'"),
])
def test_api_bad_parameters_answer_what_was_wrong(served, path, params, status, message):
    r = served[0].get(f"/api/v1/models/{path}/performance", params=params)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_models_summary_has_label_coverage_and_the_newest_trustworthy_headline(served):
    client, expected = served
    items = {(m["model"], m["version"]): m for m in client.get("/api/v1/models").json()["items"]}
    m = items[("m", HOSTILE_VERSION)]["performance"]
    assert m["labels"] is True and m["task"] == "binary"
    assert m["coverage"] == {"windows": 3, "labelled": int(sum(SHARES) * WINDOW), "count": 3 * WINDOW,
                             "share": int(sum(SHARES) * WINDOW) / (3 * WINDOW)}
    score, label = expected["m"][1]  # window 2 is not enough: window 1 is the newest trustworthy one
    h = m["headline"]
    assert (h["metric"], h["window"]["seq"], h["labelled_share"]) == ("roc_auc", 1, SHARES[1])
    assert abs(h["value"] - skm.roc_auc_score(label, score)) < 0.002 and h["se"] > 0
    r = items[("r", "v1")]["performance"]
    assert r["headline"]["metric"] == "mae" and r["headline"]["window"]["seq"] == 1
    assert items[(HOSTILE_MODEL, "v1")]["performance"] is None


def _samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_endpoint_exports_the_label_join_and_the_newest_performance(tmp_path):
    metrics = Metrics()
    _, expected = fill(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, metrics=metrics)
    port = metrics.serve(0, "127.0.0.1")  # the replay's service closed its own on the way out
    try:
        s = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        metrics.close()
    joined = int(sum(SHARES) * WINDOW)
    assert s[("driftline_labels_total", (("model", "m"), ("result", "joined")))] == joined
    assert s[("driftline_labels_total", (("model", "m"), ("result", "orphan")))] == ORPHANS
    assert s[("driftline_labels_total", (("model", "m"), ("result", "duplicate")))] == DUPLICATES
    assert s[("driftline_labels_total", (("model", "r"), ("result", "joined")))] == int(sum(REG_SHARES) * WINDOW)
    assert s[("driftline_labels_pending", (("model", "m"),))] == 3 * WINDOW - joined  # the rest wait
    assert s[("driftline_labels_buffer_bytes", (("model", "m"),))] > 0
    assert s[("driftline_predictions_expired_total", (("model", "m"),))] == 0  # max_delay 1 h: none yet
    assert s[("driftline_predictions_evicted_total", (("model", "m"),))] == 0
    score, label = expected["m"][1]  # the newest window with enough labels
    auc = s[("driftline_performance", (("metric", "roc_auc"), ("model", "m"), ("version", HOSTILE_VERSION)))]
    assert abs(auc - skm.roc_auc_score(label, score)) < 0.002
    acc = s[("driftline_performance", (("metric", "accuracy"), ("model", "m"), ("version", HOSTILE_VERSION)))]
    assert acc == skm.accuracy_score(label, score >= 0.5)
    assert s[("driftline_performance_labelled_share", (("model", "m"), ("version", HOSTILE_VERSION)))] == SHARES[1]
    pred, target = expected["r"][1]
    mae = s[("driftline_performance", (("metric", "mae"), ("model", "r"), ("version", "v1")))]
    assert abs(mae - float(np.mean(np.abs(target - pred)))) < 1e-9


def test_cli_output_into_a_reader_that_stops_early_is_no_error(filled):
    path, _ = filled
    # `true` has exited (it reads nothing) long before driftline writes its first line: that write fails
    cmd = f"{sys.executable} -m driftline.cli performance -c {path} --output json | true"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
