"""The demo for its length on the embedded broker: its labels come late, its input drift is
caught by the drift tests and its concept drift (same inputs, a moved relation) by the
performance rule alone."""

import copy
import signal
import sqlite3

import numpy as np
import orjson
import pytest
from sklearn.metrics import roc_auc_score

from driftline import demo
from driftline.config import parse_settings
from driftline.streams.simulator import DEMO_CONFIG, fraud_batch, true_probability

pytestmark = pytest.mark.slow

REFERENCE, SIZE = DEMO_CONFIG["models"][0]["reference"]["first_n"], DEMO_CONFIG["models"][0]["window"]["size"]


def settings_for(broker, tmp_path, uid):
    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["kafka"] |= {"bootstrap_servers": broker.bootstrap, "topics": [f"events-{uid}"],
                     "label_topics": [f"labels-{uid}"], "group_id": f"demo-{uid}",
                     "dead_letter_topic": f"dead-{uid}", "group_instance_id": None,
                     "client": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}}
    cfg["alerts"] |= {"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}"}
    cfg["store"] = {"url": f"sqlite:///{tmp_path / 'driftline.db'}"}
    return parse_settings(cfg, {})


def events_of(seq: int) -> range:
    """The event indexes of count window ``seq`` (the first ``REFERENCE`` events are the reference)."""
    return range(REFERENCE + SIZE * seq, REFERENCE + SIZE * (seq + 1))


def phase(seq: int, p: demo.Phases) -> str:
    """``normal``, ``input`` (drift), ``concept`` (drift), or ``mixed`` for a window across a boundary."""
    first, last = events_of(seq)[0], events_of(seq)[-1]
    for name, lo, hi in (("input", p.drift_after, p.drift_until), ("concept", p.concept_after, p.concept_until)):
        if lo <= first and last < hi:
            return name
        if first < hi and last >= lo:
            return "mixed"
    return "normal"


def expected_auc() -> float:
    """The ROC AUC the true relation gives a calibrated score in normal traffic: every event
    weighted as a positive by P(y=1) and as a negative by P(y=0), so no labels are drawn."""
    cols = fraud_batch(200_000, 0, 10**9, np.random.default_rng(7))
    p = true_probability(cols, np.zeros(200_000, dtype=bool))
    s = cols["prediction"]
    return roc_auc_score(np.r_[np.ones_like(p), np.zeros_like(p)], np.r_[s, s], sample_weight=np.r_[p, 1 - p])


def test_the_demo_alerts_on_its_concept_drift_from_labels_where_no_input_test_fires(broker, tmp_path, uid, capsys):
    settings, phases = settings_for(broker, tmp_path, uid), demo.Phases(30_000, 30_000)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:  # its length: until the concept drift has run its course, and a little after
        summary = demo.serve(settings, duration=phases.concept_until / 1000 + 15, phases=phases)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    out = capsys.readouterr().out
    db = sqlite3.connect(tmp_path / "driftline.db")
    windows = {s["seq"]: s for s in (orjson.loads(r) for (r,) in db.execute("select summary from windows"))}
    assert windows and all(w["count"] == SIZE for w in windows.values())
    assert max(windows) >= (phases.concept_until - REFERENCE) // SIZE, f"the run did not reach the end: {summary}"

    # performance lines: printed, one per window once it has enough labels, and stored
    printed = [line for line in out.splitlines() if line.startswith("performance fraud v3 #")]
    rows = {seq: (labelled, count, orjson.loads(m)) for seq, labelled, count, m in db.execute(
        "select seq, labelled, count, metrics from performance where segment = ''")}
    assert len(printed) >= 0.8 * len(windows) and len(rows) >= 0.8 * len(windows)
    assert all(" labelled (" in line and "roc_auc 0." in line for line in printed)
    assert sum(c for _, c, _ in rows.values()) and sum(n for n, _, _ in rows.values()) / sum(
        c for _, c, _ in rows.values()) > 0.85  # most labels came within the run; 3% never come

    # realized AUC: near the true relation's in normal traffic, near chance under concept drift
    auc = {ph: [rows[s][2]["roc_auc"] for s in rows if phase(s, phases) == ph and rows[s][0] >= SIZE // 2]
           for ph in ("normal", "input", "concept")}
    assert len(auc["normal"]) >= 15 and len(auc["concept"]) >= 10
    assert abs(np.mean(auc["normal"]) - expected_auc()) < 0.02, auc["normal"]
    assert max(auc["concept"]) < 0.6 < min(auc["normal"]), auc

    # alerts: the input drift's during the input drift; during the concept drift only the performance rule's
    events = [orjson.loads(r) for (r,) in db.execute("select payload from alert_events order by id")]
    seq_of = {w["start"]: s for s, w in windows.items()}

    def when(e):
        return phase(seq_of[e["window_start"]], phases) if e["window_start"] in seq_of else "mixed"

    drift = [(e["status"], when(e)) for e in events if e["rule"] == "feature_drift"]
    assert drift[0] == ("firing", "input") and drift[-1][0] == "resolved" and len(drift) == 2, drift
    resolved_at = seq_of[[e for e in events if e["rule"] == "feature_drift"][-1]["window_start"]]
    assert events_of(resolved_at)[-1] < phases.concept_after
    perf = [e for e in events if e["rule"] == "auc_drop"]
    assert perf and perf[0]["status"] == "firing" and when(perf[0]) == "concept", perf[:1]
    first = seq_of[perf[0]["window_start"]]
    assert events_of(first)[0] < phases.concept_after + 10_000  # within 10 s of event time of its start
    assert [e["status"] for e in perf] == ["firing", "resolved"], [(e["status"], when(e)) for e in perf]  # no flap
    assert [when(e) for e in events if e["rule"] != "auc_drop" and e["status"] == "firing"] == ["input"]
    # river's detectors on the error stream saw it too: a detection made worse by a label that came
    # during the concept drift (it is kept in the window of that label's prediction, which may be
    # an earlier window's: labels come late, in their own order)
    spans = sorted((w["start"], w["end"], s) for s, w in windows.items())

    def phase_at(ts):
        return next((phase(s, phases) for start, end, s in spans if start <= ts < end), "after")
    found = [x for (f,) in db.execute("select findings from performance where segment = ''")
             for x in orjson.loads(f or "null") or () if x["kind"] == "concept_drift" and x["direction"] == "worse"]
    assert "concept" in {phase_at(x["ts"]) for x in found}, [(x["ts"], phase_at(x["ts"]), x["window"]) for x in found]
    assert "auc_drop firing" in out and "roc_auc: 0." in out  # the console's alert, with its evidence
