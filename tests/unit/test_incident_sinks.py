"""What the PagerDuty and Alertmanager sinks share, tested once for both: their configuration
fails at start-up naming the YAML path, their secrets are masked, a server that is down or
silent is a delivery error without the secret, and the sink modules import no other edge."""

import ast
import json
from pathlib import Path

import pytest

import driftline.alerts.alertmanager
import driftline.alerts.pagerduty
import driftline.alerts.values
import driftline.alerts.webhook
from driftline.alerts.alertmanager import AlertmanagerSink
from driftline.alerts.pagerduty import PagerDutySink
from driftline.app import build_sinks
from driftline.config import masked, parse_settings
from driftline.errors import ConfigError, DeliveryError
from tests.helpers import config
from tests.http_standin import closed_port
from tests.standins import FakeAlertmanager, FakePagerDuty, incident_payload

KEY = "R0ut1ngK3ySecretR0ut1ngK3ySecret"  # 32 characters, like a PagerDuty integration key
TOKEN = "am-bearer-T0ken-9d8c7b6a5f4e"
PD_URL = "alerts.pagerduty.url: expected an http:// or https:// URL"
AM_URL = "alerts.alertmanager.url: expected an http:// or https:// URL"


@pytest.mark.parametrize("module", [driftline.alerts.pagerduty, driftline.alerts.alertmanager,
                                    driftline.alerts.webhook, driftline.alerts.values], ids=lambda m: m.__name__)
def test_the_sink_imports_no_other_edge(module):
    tree = ast.parse(Path(module.__file__).read_text())
    ours = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module.startswith("driftline")}
    assert ours <= {"driftline.errors", "driftline.redact", "driftline.types", "driftline.alerts.values"}


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize("section, problems", [
    ({"pagerduty": {}}, ["alerts.pagerduty.routing_key: required key is missing"]),
    ({"pagerduty": {"routing_key": "short-key"}},
     ["alerts.pagerduty.routing_key: expected the 32-character integration key of an Events API v2 integration"]),
    ({"pagerduty": {"routing_key": KEY, "url": "events.pagerduty.com"}}, [PD_URL]),
    ({"alertmanager": {}}, ["alerts.alertmanager.url: required key is missing"]),
    ({"alertmanager": {"url": "alertmanager:9093"}}, [AM_URL]),
    ({"alertmanager": {"url": "http://am:9093", "resend_interval": "0s"}},
     ["alerts.alertmanager.resend_interval: Input should be greater than 0 (got 0.0)"]),
    ({"alertmanager": {"url": "http://am:9093", "token": TOKEN, "username": "u", "password": "p4ssw0rd"}},
     ["alerts.alertmanager: set a bearer 'token' or 'username' and 'password', not both"]),
    ({"alertmanager": {"url": "http://am:9093", "username": "u"}},
     ["alerts.alertmanager: basic auth needs both 'username' and 'password'"]),
], ids=["pd-no-key", "pd-short-key", "pd-bad-url", "am-no-url", "am-bad-url", "am-zero-resend", "am-two-auths",
        "am-half-basic-auth"])
def test_bad_configuration_fails_at_start_up_naming_its_path(section, problems):
    with pytest.raises(ConfigError) as info:
        parse_settings(config(alerts=section), {})
    assert [f"{p}: {m}" for p, m in info.value.problems] == problems
    for secret in (KEY, TOKEN, "short-key", "p4ssw0rd"):
        assert secret not in str(info.value)


@pytest.mark.parametrize("name, section, env, secret, attrs", [
    ("pagerduty", {"routing_key": "${PD_KEY}", "timeout": "5s"}, {"PD_KEY": KEY}, KEY,
     {"url": "https://events.pagerduty.com", "timeout": 5}),
    ("alertmanager", {"url": "https://am.example.com:9093/", "resend_interval": "2m", "token": "${AM_TOKEN}"},
     {"AM_TOKEN": TOKEN}, TOKEN, {"url": "https://am.example.com:9093", "resend_interval": 120}),
])
def test_a_configured_sink_takes_incidents_and_its_secret_is_masked(name, section, env, secret, attrs):
    settings = parse_settings(config(alerts={name: section}), env)
    sink = build_sinks(settings)[name]
    assert sink.accepts == frozenset({"incident"})
    assert {k: getattr(sink, k) for k in attrs} == attrs
    assert secret not in json.dumps(masked(settings), default=str)
    assert secret not in repr(settings) and secret not in repr(sink)
    assert name not in build_sinks(parse_settings(config(), {}))  # not configured: no sink


# -- a server that is down or silent --------------------------------------------------

SINKS = {
    "pagerduty": (FakePagerDuty, KEY, lambda url, timeout: PagerDutySink(KEY, url, timeout=timeout)),
    "alertmanager": (FakeAlertmanager, TOKEN, lambda url, timeout: AlertmanagerSink(url, token=TOKEN, timeout=timeout)),
}


@pytest.mark.parametrize("name", SINKS)
def test_server_down_and_timeout_are_delivery_errors_without_the_secret(name):
    standin, secret, make = SINKS[name]
    with pytest.raises(DeliveryError) as down:
        make(f"http://127.0.0.1:{closed_port()}", 10.0).send("incident", incident_payload(), "k")
    with standin(hang=5) as server:
        with pytest.raises(DeliveryError) as slow:
            make(server.url, 0.3).send("incident", incident_payload(), "k")
    assert "unreachable" in str(down.value) and "timed out" in str(slow.value)
    assert secret not in str(down.value) and secret not in str(slow.value)
