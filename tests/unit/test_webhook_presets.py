"""Retraining trigger presets over real HTTP: a local server stands in for Airflow 2 and 3, GitHub's
repository_dispatch and workflow_dispatch, and a CloudEvents receiver; each request is checked as
the real API expects it, and delivery through the outbox (409, 429, 500 then 200, a server that is
down) is driven with a fake clock."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from email.utils import formatdate

import pytest

from driftline.alerts.outbox import Dispatcher
from driftline.alerts.webhook import INPUTS_LIMIT, WORKFLOW_INPUTS, WebhookSink
from driftline.app import build_sinks
from driftline.config import parse_settings
from driftline.errors import ConfigError, DeliveryError, ThrottledError
from driftline.store import SqlStore
from driftline.types import CommitUnit, Notification, Receipt
from tests.helpers import config
from tests.http_standin import HttpStandIn, closed_port

EVENT = {
    "specversion": "1.0", "id": "bb9b58fc-6bab-57e3-b813-40594f7c2664", "source": "driftline/g",
    "type": "dev.driftline.retrain.requested", "subject": "fraud/v3", "time": "2026-11-18T11:07:02.000Z",
    "datacontenttype": "application/json",
    "data": {"model": "fraud", "version": "v3", "reason": "feature_drift", "alert": "a560e9f0daf261d2326d",
             "severity": "warning",
             "window": {"start": "2026-11-18T11:07:00.000Z", "end": "2026-11-18T11:07:02.000Z", "count": 2000},
             "drifted": {"amount": {"method": "meanvar", "statistic": 32.8, "p_value": 5.5e-236, "threshold": 4.45}}},
}
INCIDENT = "9f1c0a7e5b2d4c3a1e0f"
TODAY = {"type": "trigger", "event": EVENT}  # the payload as the router writes it now
NEXT = {"type": "trigger", "model": "fraud", "version": "v3", "time": EVENT["time"], "incident": INCIDENT,
        "event": EVENT}  # the payload with the incident beside the CloudEvent (docs/alerting.md)
SECRET, TOKEN = "s3cret-for-tests", "eyJhbGciOiJIUzI1NiJ9.jwt-Tok3n"


class Endpoint(HttpStandIn):
    """A real HTTP server: records every POST and answers from ``answers`` — a list of
    ``(status, body, headers)`` used in turn, then ``default`` for every later request."""

    def __init__(self, answers=(), default=(200, {"ok": True}, {})):
        super().__init__(answers)
        self.default = default

    def answer(self, request: dict) -> tuple[int, object, dict]:
        return self.default


def readme_verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """The receiver's check, written from the README's words only: ``t=<unix seconds>,v1=<hex
    HMAC-SHA256(secret, "<t>.<body>")>``, a timestamp within 5 minutes, any one ``v1`` matching."""
    pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [v for k, v in pairs if k.strip() == "t"]
    if len(stamps) != 1 or abs(now - int(stamps[0])) > tolerance:
        return False
    mac = hmac.new(secret.encode(), f"{stamps[0]}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k.strip() == "v1" and hmac.compare_digest(mac, v) for k, v in pairs)


# -- each preset's request ---------------------------------------------------------------------

def test_airflow2_dag_run_is_what_api_v1_expects():
    with Endpoint() as api:
        receipt = WebhookSink(api.url + "/api/v1/dags/retrain_fraud/dagRuns", "airflow", token=TOKEN).send(
            "trigger", NEXT, "k")
        (req,) = api.requests
    assert req["path"] == "/api/v1/dags/retrain_fraud/dagRuns"
    assert req["headers"]["content-type"] == "application/json"
    assert req["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert req["body"] == {"dag_run_id": f"driftline-{EVENT['id']}",
                           "conf": {**EVENT["data"], "cloudevent_id": EVENT["id"], "incident": INCIDENT}}
    assert receipt == Receipt(detail={"status": 200})


def test_airflow3_dag_run_is_what_api_v2_expects():
    with Endpoint() as api:
        WebhookSink(api.url + "/api/v2/dags/retrain_fraud/dagRuns", "airflow3", token=TOKEN).send("trigger", NEXT, "k")
        (req,) = api.requests
    assert req["path"] == "/api/v2/dags/retrain_fraud/dagRuns"
    assert req["headers"]["authorization"] == f"Bearer {TOKEN}"  # Airflow 3: a JWT from /auth/token
    assert req["headers"]["content-type"] == "application/json"
    # TriggerDAGRunPostBody: logical_date is required (null allowed), unknown keys are refused
    assert set(req["body"]) == {"dag_run_id", "logical_date", "conf"}
    assert req["body"]["logical_date"] is None and req["body"]["dag_run_id"] == f"driftline-{EVENT['id']}"
    assert req["body"]["conf"]["model"] == "fraud" and req["body"]["conf"]["cloudevent_id"] == EVENT["id"]


def test_github_workflow_dispatch_sends_ref_and_string_inputs_and_takes_204():
    with Endpoint(default=(204, None, {})) as api:
        receipt = WebhookSink(api.url + "/repos/acme/models/actions/workflows/retrain.yml/dispatches",
                              "github_workflow", token="ghp_x", ref="release").send("trigger", NEXT, "k")
        (req,) = api.requests
    assert req["path"] == "/repos/acme/models/actions/workflows/retrain.yml/dispatches"
    assert req["headers"]["accept"] == "application/vnd.github+json"
    assert req["headers"]["x-github-api-version"] == "2022-11-28"
    assert req["headers"]["authorization"] == "Bearer ghp_x"
    assert set(req["body"]) == {"ref", "inputs"} and req["body"]["ref"] == "release"
    inputs = req["body"]["inputs"]
    assert list(inputs) == list(WORKFLOW_INPUTS) and len(inputs) <= 10  # GitHub's limit (10; 25 since 2025)
    assert all(isinstance(v, str) for v in inputs.values())
    assert inputs | {"evidence": None} == {"model": "fraud", "version": "v3", "reason": "feature_drift",
                                           "cloudevent_id": EVENT["id"], "window_end": "2026-11-18T11:07:02.000Z",
                                           "evidence": None}
    evidence = json.loads(inputs["evidence"])
    assert evidence["incident"] == INCIDENT and evidence["drifted"] == EVENT["data"]["drifted"]
    assert evidence["window"]["count"] == 2000 and evidence["severity"] == "warning"
    assert receipt == Receipt(detail={"status": 204})


def test_github_workflow_evidence_is_cut_to_githubs_inputs_limit_and_stays_json():
    drifted = {f"feature_{i:04d}": {"method": "ks", "statistic": 1.0 + i, "p_value": 0.0, "threshold": 1.0}
               for i in range(2000)}
    big = {**TODAY, "event": {**EVENT, "data": {**EVENT["data"], "drifted": drifted}}}
    with Endpoint(default=(204, None, {})) as api:
        WebhookSink(api.url + "/repos/a/b/actions/workflows/1234/dispatches", "github_workflow").send(
            "trigger", big, "k")
        (req,) = api.requests
    assert len(json.dumps(req["body"]["inputs"], separators=(",", ":")).encode()) <= INPUTS_LIMIT
    evidence = json.loads(req["body"]["inputs"]["evidence"])
    kept = evidence["drifted"]
    assert 0 < len(kept) < 2000 and evidence["drifted_omitted"] == 2000 - len(kept)
    assert "feature_1999" in kept and "feature_0000" not in kept  # the most drifted are kept


def test_github_repository_dispatch_and_cloudevents_presets():
    with Endpoint(default=(204, None, {})) as api:
        WebhookSink(api.url + "/repos/acme/models/dispatches", "github", token="ghp_x").send("trigger", NEXT, "k")
        WebhookSink(api.url + "/hooks/retrain", "cloudevents").send("trigger", NEXT, "k")
        gh, ce = api.requests
    assert gh["body"]["event_type"] == "driftline-retrain"
    assert gh["body"]["client_payload"]["incident"] == INCIDENT and gh["headers"]["x-github-api-version"]
    assert ce["headers"]["content-type"] == "application/cloudevents+json"
    assert ce["body"] == EVENT  # the CloudEvent itself, unchanged, in either payload shape


PRESETS = [("cloudevents", "/hooks/retrain"), ("airflow", "/api/v1/dags/d/dagRuns"),
           ("airflow3", "/api/v2/dags/d/dagRuns"), ("github", "/repos/o/r/dispatches"),
           ("github_workflow", "/repos/o/r/actions/workflows/w.yml/dispatches")]


@pytest.mark.parametrize("preset, path", PRESETS)
@pytest.mark.parametrize("payload", [TODAY, NEXT], ids=["event-only", "with-incident"])
def test_every_preset_is_signed_carries_the_event_id_and_verifies_with_the_readme_scheme(preset, path, payload):
    sent_at = time.time()
    with Endpoint() as api:
        WebhookSink(api.url + path, preset, secret=SECRET, token=TOKEN, clock=lambda: sent_at).send(
            "trigger", payload, "k")
        (req,) = api.requests
    h = req["headers"]
    assert h["idempotency-key"] == EVENT["id"] and h["authorization"] == f"Bearer {TOKEN}"
    assert readme_verify(SECRET, h["x-driftline-signature"], req["raw"], now=sent_at + 60)
    assert not readme_verify(SECRET, h["x-driftline-signature"], req["raw"] + b" ", now=sent_at + 60)
    assert not readme_verify(SECRET, h["x-driftline-signature"], req["raw"], now=sent_at + 301)  # a replay
    assert not readme_verify("other-secret", h["x-driftline-signature"], req["raw"], now=sent_at)


# -- answers -------------------------------------------------------------------------------------

CONFLICT = (409, {"detail": "DAG Run with id driftline-bb9b already exists", "status": 409, "title": "Conflict"}, {})


@pytest.mark.parametrize("preset, path", [("airflow", "/api/v1/dags/d/dagRuns"), ("airflow3", "/api/v2/dags/d/dagRuns")])
def test_airflow_409_means_already_triggered(preset, path):
    with Endpoint(default=CONFLICT) as api:
        receipt = WebhookSink(api.url + path, preset).send("trigger", NEXT, "k")
    assert receipt == Receipt(status="sent", detail={"status": 409, "note": "already triggered"})


def test_a_409_from_anything_but_airflow_is_an_error():
    with Endpoint(default=CONFLICT) as api, pytest.raises(DeliveryError, match="answered HTTP 409"):
        WebhookSink(api.url + "/hooks/x", "cloudevents").send("trigger", NEXT, "k")


def outbox_with(tmp_path, payload=NEXT, sink="webhook:x") -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    store.commit("g", CommitUnit(notifications=[Notification(f"trigger:{EVENT['id']}:{sink}", sink, "trigger",
                                                             payload)]))
    return store


def test_airflow_409_through_the_outbox_is_one_row_sent_and_no_retry(tmp_path):
    store = outbox_with(tmp_path)
    now = [time.time()]
    with Endpoint(default=CONFLICT) as api:
        d = Dispatcher(store, {"webhook:x": WebhookSink(api.url + "/api/v2/dags/d/dagRuns", "airflow3")},
                       clock=lambda: now[0])
        assert d.deliver_due() == 1
        now[0] += 3600
        assert d.deliver_due() == 0
        assert len(api.requests) == 1
    (row,) = store.reads.outbox()
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)
    assert row["receipt"] == {"status": 409, "note": "already triggered"}


def test_500_then_200_is_retried_with_the_same_delivery_id(tmp_path):
    store = outbox_with(tmp_path)
    now = [time.time()]
    with Endpoint([(500, {"detail": "scheduler busy"}, {})]) as api:
        d = Dispatcher(store, {"webhook:x": WebhookSink(api.url + "/api/v1/dags/d/dagRuns", "airflow",
                                                        secret=SECRET, clock=lambda: now[0])},
                       clock=lambda: now[0])
        assert d.deliver_due() == 0
        (row,) = store.reads.outbox()
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert row["last_error"] == f"webhook {api.url}/… answered HTTP 500: scheduler busy"
        now[0] += 5
        assert d.deliver_due() == 1
        first, second = api.requests
    assert first["headers"]["idempotency-key"] == second["headers"]["idempotency-key"] == EVENT["id"]
    assert first["body"]["dag_run_id"] == second["body"]["dag_run_id"]  # so Airflow would answer 409
    (row,) = store.reads.outbox()
    assert (row["status"], row["attempts"], row["receipt"]) == ("sent", 2, {"status": 200})


def test_429_with_retry_after_is_throttled_in_seconds_or_as_a_date():
    with Endpoint([(429, {"message": "slow down"}, {"Retry-After": "42"}),
                   (503, None, {"Retry-After": formatdate(time.time() + 120, usegmt=True)}),
                   (429, None, {})]) as api:
        sink = WebhookSink(api.url + "/repos/o/r/dispatches", "github")
        with pytest.raises(ThrottledError) as info:
            sink.send("trigger", NEXT, "k")
        assert info.value.retry_after == 42 and "slow down" in str(info.value)
        with pytest.raises(ThrottledError) as info:
            sink.send("trigger", NEXT, "k")
        assert 100 <= info.value.retry_after <= 121
        with pytest.raises(ThrottledError) as info:
            sink.send("trigger", NEXT, "k")
        assert info.value.retry_after is None  # the outbox backs off on its own


def test_an_error_answer_never_shows_the_path_query_or_token():
    secret_path = "/api/v2/dags/Tok3nDag/dagRuns"
    echo = (422, {"detail": f"bad request to {secret_path}?key=Qu3ryKey with {TOKEN}"}, {})
    with Endpoint(default=echo) as api:
        with pytest.raises(DeliveryError) as info:
            WebhookSink(api.url + secret_path + "?key=Qu3ryKey", "airflow3", token=TOKEN).send("trigger", NEXT, "k")
    text = str(info.value)
    assert text.startswith(f"webhook {api.url}/… answered HTTP 422: bad request to …")
    for secret in ("Tok3nDag", "Qu3ryKey", TOKEN):
        assert secret not in text


def test_a_server_that_is_down_or_silent_is_a_delivery_error_without_url_path_or_token():
    url = f"http://127.0.0.1:{closed_port()}/api/v2/dags/Tok3nInPath/dagRuns?token=Qu3ryTok3n"
    with pytest.raises(DeliveryError) as info:
        WebhookSink(url, "airflow3", token=TOKEN).send("trigger", NEXT, "k")
    assert str(info.value).startswith("webhook http://127.0.0.1:") and "unreachable" in str(info.value)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts the connection, never answers
    try:
        with pytest.raises(DeliveryError) as timed_out:
            WebhookSink(f"http://127.0.0.1:{silent.getsockname()[1]}/hooks/Tok3nInPath?token=Qu3ryTok3n",
                        timeout=0.3).send("trigger", NEXT, "k")
    finally:
        silent.close()
    assert "timed out" in str(timed_out.value)
    for text in (str(info.value), str(timed_out.value)):
        assert "Tok3nInPath" not in text and "Qu3ryTok3n" not in text and TOKEN not in text


def test_a_redirect_is_not_followed():
    with Endpoint(default=(302, None, {"Location": "http://127.0.0.1:1/elsewhere"})) as api:
        with pytest.raises(DeliveryError, match="answered HTTP 302"):
            WebhookSink(api.url + "/hooks/x", token=TOKEN).send("trigger", NEXT, "k")
        assert len(api.requests) == 1


# -- configuration -------------------------------------------------------------------------------

def hook_of(spec: dict, env=None) -> WebhookSink:
    settings = parse_settings(config(alerts={"topic": None, "retrain_topic": None, "retrain_webhooks": [spec]}),
                              env or {})
    (hook,) = [s for n, s in build_sinks(settings).items() if n.startswith("webhook:")]
    return hook


@pytest.mark.parametrize("preset, path", PRESETS)
def test_every_preset_is_configurable(preset, path):
    assert hook_of({"url": "https://ci.example" + path, "preset": preset}).preset == preset


def test_ref_defaults_to_main_and_a_path_that_does_not_fit_the_preset_is_refused_without_showing_it():
    url = "https://api.github.com/repos/o/r/actions/workflows/w.yml/dispatches"
    assert hook_of({"url": url, "preset": "github_workflow"}).ref == "main"
    assert hook_of({"url": url, "preset": "github_workflow", "ref": "v2.1"}).ref == "v2.1"
    bad = {"url": "https://airflow.example/api/v1/dags/Tok3nDag/dagRuns", "preset": "airflow3"}
    with pytest.raises(ConfigError) as info:
        hook_of(bad)
    assert "preset 'airflow3' posts to /api/v2/dags/DAG_ID/dagRuns (Airflow 3)" in str(info.value)
    assert "Tok3nDag" not in str(info.value)
    with pytest.raises(ConfigError, match="ref"):
        hook_of({"url": "https://api.github.com/repos/o/r/actions/workflows/1/dispatches",
                 "preset": "github_workflow", "ref": ""})
