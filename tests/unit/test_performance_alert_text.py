"""A performance alert (``rules.performance``) in the console's text and Slack's blocks: its
evidence is a metric, not a drift test, and is shown as one."""

import orjson

from driftline.alerts.messages import alert_blocks, alert_text
from driftline.alerts.rules import performance
from driftline.config.settings import RuleSpec


def revision(auc: float) -> dict:
    return {"model": "fraud", "version": "v3", "window": {"seq": 41, "start": "S", "end": "E"}, "window_key": 41,
            "labelled": 1275, "labelled_share": 0.6375, "revision": 3, "enough": True,
            "metrics": {"roc_auc": auc, "se": {"roc_auc": 0.0221}}}


def firing_alert() -> dict:
    rule = RuleSpec(name="auc_drop", metric="roc_auc", below=0.6, for_windows=2)
    state, event = performance(rule, revision(0.51), None)
    state, event = performance(rule, revision(0.5023), state)
    assert event is not None and event["status"] == "firing"
    return event


def test_the_console_prints_a_performance_alert_with_its_metric():
    text = alert_text(firing_alert())
    assert text.splitlines()[0] == ("[WARNING] fraud v3: auc_drop firing — roc_auc 0.5023 of window #41 "
                                    "(1275 labelled) (below 0.6) (0.502 vs threshold 0.6)")
    assert text.splitlines()[2] == "  roc_auc: 0.502 ± 0.0221 over 1275 labelled (64%), revision 3"


def test_slack_blocks_of_a_performance_alert_name_its_metric():
    blocks = orjson.dumps(alert_blocks(firing_alert())).decode()
    assert "roc_auc: 0.502 ± 0.0221 over 1275 labelled (64%), revision 3" in blocks
