"""The Performance panel of the model page and the fleet's performance columns in a real
headless Chromium (as test_dashboard_browser.py), over a store filled by a real pipeline run
with labels: a binary model whose version name is markup, a regression model, and a model
without labels whose name is markup."""

import time
from urllib.parse import quote

import pytest
from sklearn import metrics as skm

from driftline.app import build_http
from driftline.config import parse_settings
from tests.integration import test_dashboard_browser as dash
from tests.performance_data import HOSTILE_MODEL, HOSTILE_VERSION, MIN_LABELLED, SHARES, fill

browser, load, shot = dash.browser, dash.load, dash.shot  # the same Chromium fixture and helpers
pytestmark = pytest.mark.skipif(not (dash.CHROMIUM and dash.DRIVER), reason="needs Chromium and its driver: "
                                "apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("perfdash")
    cfg, expected = fill(f"sqlite:///{tmp / 'p.db'}", tmp)
    server = build_http(parse_settings(cfg, {}), port=0)
    yield server.url, expected
    server.stop()


def page(model: str, version: str) -> str:
    return f"/models/{quote(model, safe='')}/{quote(version, safe='')}"


def test_model_page_draws_the_realized_metric_per_window_with_a_note_for_thin_ones(browser, site):
    url, expected = site
    load(browser, url + page("m", HOSTILE_VERSION))
    box = browser.find_element("css selector", "#performance")
    assert box.get_attribute("data-state") == "shown"
    data = browser.execute_script("return document.getElementById('performance-chart').data"
                                  ".map(t => ({name: t.name, y: t.y, se: t.error_y ? t.error_y.array : null}))")
    realized, share = data
    assert [t["name"] for t in data] == ["realized roc_auc", "labelled share"]  # no estimates stored yet
    assert share["y"] == list(SHARES)
    for w, (auc, se) in enumerate(zip(realized["y"], realized["se"])):
        score, label = expected["m"][w]
        assert abs(auc - skm.roc_auc_score(label, score)) < 0.002 and se > 0
    note = browser.find_element("css selector", "#performance-note").text
    assert note.startswith("1 window(s)") and str(MIN_LABELLED) in note
    rows = browser.find_elements("css selector", "#performance-table tr[data-enough]")
    assert [r.get_attribute("data-enough") for r in rows] == ["true", "true", "false"]
    assert "not enough" in rows[2].text
    assert browser.find_element("css selector", "#title").text == "m " + HOSTILE_VERSION  # shown as text
    assert browser.execute_script("return window.__pwned") is None
    assert not browser.find_elements("css selector", "#performance img, #title img")
    shot(browser, "model-performance")


def test_a_model_without_labels_says_so(browser, site):
    url, _ = site
    load(browser, url + page(HOSTILE_MODEL, "v1"))
    box = browser.find_element("css selector", "#performance")
    assert box.get_attribute("data-state") == "no-labels" and "no labels configured" in box.text
    assert not browser.find_elements("css selector", "#performance-chart")
    assert browser.find_element("css selector", "#title").text == HOSTILE_MODEL + " v1"
    assert browser.execute_script("return window.__pwned") is None


def test_fleet_page_has_label_coverage_and_the_headline_metric(browser, site):
    url, expected = site
    load(browser, url + "/")
    deadline = time.monotonic() + 10
    while not browser.find_elements("css selector", "#fleet tbody tr"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    row = browser.find_element("css selector", "tr[data-model=m]")
    coverage = row.find_element("css selector", ".coverage")
    assert coverage.get_attribute("data-labels") == "1"
    assert float(coverage.get_attribute("data-share")) == pytest.approx(sum(SHARES) / 3)
    assert "1400/3000, 3 windows" in coverage.text
    headline = row.find_element("css selector", ".headline")
    score, label = expected["m"][1]  # window 2 is not enough: the newest trustworthy one is 1
    assert headline.get_attribute("data-metric") == "roc_auc" and "window 1" in headline.text
    assert abs(float(headline.get_attribute("data-value")) - skm.roc_auc_score(label, score)) < 0.002
    assert browser.find_element("css selector", "tr[data-model=r] .headline").get_attribute("data-metric") == "mae"
    plain = [r for r in browser.find_elements("css selector", "#fleet tbody tr")
             if r.get_attribute("data-model") == HOSTILE_MODEL]
    assert len(plain) == 1 and plain[0].find_element("css selector", ".coverage").text == "no labels"
    assert HOSTILE_VERSION in row.text and browser.execute_script("return window.__pwned") is None
    assert not browser.find_elements("css selector", "#fleet img")
    shot(browser, "fleet-performance")
