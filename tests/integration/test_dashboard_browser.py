"""The pages in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium with the system binaries: no browser download) against a server over a
real pipeline run with drift. Screenshots go to ``$DRIFTLINE_ARTEFACTS`` (default
``test-artefacts/``)."""

import os
import shutil
import time
from pathlib import Path

import pytest

from driftline.app import build_http
from driftline.config import parse_settings
from tests.dashboard_data import HOSTILE, HOSTILE_FEATURE, WINDOWS, fill

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
                                reason="needs Chromium and its driver: apt-get install chromium chromium-driver")
ARTEFACTS = Path(os.environ.get("DRIFTLINE_ARTEFACTS", "test-artefacts"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    cfg = fill(f"sqlite:///{tmp / 'd.db'}", tmp)
    server = build_http(parse_settings(cfg, {}), port=0)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def firing_site(tmp_path_factory):
    """The same traffic, the input ending while it drifts: its incident still fires; a rule on the
    markup-named feature is inhibited by the model-level rule."""
    tmp = tmp_path_factory.mktemp("firing")
    cfg = fill(f"sqlite:///{tmp / 'd.db'}", tmp, stop_at=23_000, feature_rule=True)
    server = build_http(parse_settings(cfg, {}), port=0)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2400"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    yield driver
    driver.quit()


def load(browser, url, timeout=30):
    browser.get(url)
    deadline = time.monotonic() + timeout
    while browser.execute_script("return document.body.dataset.loaded") != "1":
        assert time.monotonic() < deadline, browser.find_element("tag name", "body").text[:500]
        time.sleep(0.2)


def shot(browser, name):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTEFACTS / f"{name}.png"))


def traces(browser, selector):
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(d => (d.data || []).map(t => t.x.length))",
        selector)


def test_fleet_page(browser, site):
    load(browser, site + "/")
    row = browser.find_element("css selector", "tr[data-model=fraud]")
    assert "fraud" in row.text and row.find_element("css selector", "[data-status]").text == "ok"
    assert row.find_element("css selector", ".firing-incidents").text == "0"  # its incident resolved
    assert traces(browser, ".spark") == [[WINDOWS]]
    assert browser.find_element("css selector", "#lag-note").text.startswith("lag: not available")  # ui: no Kafka
    shot(browser, "fleet")


def test_model_page_charts_and_a_windows_histograms(browser, site):
    load(browser, site + "/models/fraud/v3")
    rows = browser.find_elements("css selector", ".feature")
    worst = browser.execute_script("return Array.from(document.querySelectorAll('.feature .chart'))"
                                   ".map(d => Math.max(...d.data[0].y))")
    assert worst == sorted(worst, reverse=True) and worst[0] > 1  # sorted by how far over threshold
    charts = traces(browser, ".feature .chart")
    assert len(charts) == len(rows) >= 11
    for ratio, threshold, warning, alerts, triggers in charts:
        assert ratio == threshold == warning == WINDOWS and (alerts, triggers) == (2, 1)
    assert traces(browser, "#counts") == [[WINDOWS] * 3]  # events, invalid, late
    trend_rows = browser.find_elements("css selector", "#trends .trend")
    assert {r.get_attribute("data-subject") for r in trend_rows} >= {"amount", "age"}
    trend_worst = browser.execute_script("return Array.from(document.querySelectorAll('#trends .chart'))"
                                         ".map(d => Math.max(...d.data[0].y))")
    assert trend_worst == sorted(trend_worst, reverse=True)
    assert all(len(t) == 5 and t[0] > 0 for t in traces(browser, "#trends .chart"))
    browser.find_elements("css selector", "button[data-window]")[6].click()
    deadline = time.monotonic() + 20
    while len(traces(browser, "#histograms .hist")) < 11:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    hists = traces(browser, "#histograms .hist")
    assert all(len(h) == 2 for h in hists)  # reference and window
    cats = [c.text for c in browser.find_elements("css selector", "#categories .category")]
    assert set(HOSTILE) <= set(cats)  # shown as text
    assert browser.execute_script("return window.__pwned") is None
    assert not browser.find_elements("css selector", "#window img, #window script")
    shot(browser, "model")


def test_incidents_page(browser, site):
    load(browser, site + "/incidents")
    [inc] = browser.find_elements("css selector", "section.incident")
    assert inc.get_attribute("data-status") == "resolved"
    assert inc.find_element("css selector", "[data-status]").text == "resolved"
    assert "warning" in inc.find_element("css selector", "h2").text
    meta = inc.find_element("css selector", ".meta").text
    assert "opened 2026-" in meta and "resolved 2026-" in meta and " · 1m 40s · " in meta and "window(s)" in meta
    link = inc.find_element("css selector", "a.model-link")
    assert link.get_attribute("href").endswith("/models/fraud/v3") and link.text == "fraud v3"
    features = [c.text for c in inc.find_elements("css selector", ".features .feature-name")]
    assert {"amount", "country", HOSTILE_FEATURE} <= set(features)  # the markup name shown as text
    assert inc.find_element("css selector", ".worst").text.startswith("worst: ")
    assert [r.text.split()[:3] for r in inc.find_elements("css selector", ".incident-alerts tbody tr")] == [
        ["feature_drift", "no", "drifted"]]
    steps = inc.find_elements("css selector", ".incident-timeline > li")
    assert [s.get_attribute("data-type") for s in steps] == ["alert", "notification", "alert", "notification"]
    assert HOSTILE_FEATURE in steps[1].text and "pagerduty: sent" in steps[1].text
    rows = inc.find_elements("css selector", ".deliveries tbody tr")
    assert [(r.get_attribute("data-event"), r.get_attribute("data-sink")) for r in rows] == [
        ("opened", "pagerduty"), ("resolved", "pagerduty")]
    incident_id = inc.get_attribute("data-incident")
    for r in rows:
        assert "sent" in r.text and r.find_element("css selector", ".receipt").text == f"dedup key {incident_id}, HTTP 202"
    trigger = inc.find_element("css selector", ".trigger")
    assert trigger.get_attribute("data-trigger") and "dev.driftline.retrain.requested" in trigger.text
    assert "console: sent" in trigger.text and incident_id in trigger.find_element("css selector", "pre").text
    assert browser.execute_script("return window.__pwned") is None  # no hostile value ran
    assert not browser.find_elements("css selector", "#incidents img, #incidents script, #alerts img, #alerts script")
    assert browser.find_elements("css selector", "#silences thead")  # the silences table (none in force)
    alerts = browser.find_elements("css selector", "#alerts tbody tr")
    assert len(alerts) == 2 and "console: sent" in alerts[0].text and incident_id in alerts[0].text
    assert len(browser.find_elements("css selector", "#triggers tbody tr")) == 1
    assert "dev.driftline.retrain.requested" in browser.find_element("css selector", "#triggers pre").text
    assert traces(browser, "#timeline") == [[2, 1]]  # one alert (fired, resolved), one trigger
    shot(browser, "incidents")
    load(browser, site + "/incidents?status=firing")
    assert not browser.find_elements("css selector", "section.incident")
    assert "no incidents" in browser.find_element("css selector", "#incidents").text


def test_a_firing_incident_on_the_fleet_and_incidents_pages(browser, firing_site):
    load(browser, firing_site + "/")
    row = browser.find_element("css selector", "tr[data-model=fraud]")
    assert row.find_element("css selector", "[data-status]").text == "firing"
    cell = row.find_element("css selector", ".firing-incidents")
    assert cell.text == "1" and cell.find_element("css selector", "a").get_attribute("href").endswith(
        "/incidents?status=firing&model=fraud")
    shot(browser, "fleet-firing")
    cell.find_element("css selector", "a").click()
    deadline = time.monotonic() + 30
    while browser.execute_script("return document.body.dataset.loaded") != "1":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [inc] = browser.find_elements("css selector", "section.incident")
    assert inc.get_attribute("data-status") == "firing" and "firing" in inc.find_element("css selector", "h2").text
    meta = inc.find_element("css selector", ".meta").text
    assert "still firing" in meta and "so far" in meta
    assert "status firing" in browser.find_element("css selector", "#filter").text
    assert HOSTILE_FEATURE in inc.find_element("css selector", ".features").text
    alerts = inc.find_elements("css selector", ".incident-alerts tbody tr")
    assert [a.get_attribute("data-status") for a in alerts] == ["firing", "inhibited"]
    assert "inhibited" in alerts[1].get_attribute("class") and alerts[1].text.startswith("device_drift " + HOSTILE_FEATURE)
    steps = inc.find_elements("css selector", ".incident-timeline > li")
    assert [s.get_attribute("class") for s in steps] == ["", "inhibited", ""] and steps[1].text.endswith("— inhibited")
    assert not browser.find_elements("css selector", "#incidents img, #incidents script")
    assert browser.execute_script("return window.__pwned") is None
    shot(browser, "incidents-firing")
