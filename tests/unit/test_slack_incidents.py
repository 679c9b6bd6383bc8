"""Incidents in Slack (docs/alerting.md), through slack-sdk's real client against FakeSlack.

The sink is called directly, as the dispatcher calls it: ``send(kind, payload, key, ctx)``
with ``ctx.thread`` the receipt of the incident's ``opened`` notification and
``ctx.attempted`` when an earlier attempt may have reached Slack.
"""

from __future__ import annotations

import copy
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.alerts import messages
from driftline.alerts.slack import SlackSink
from driftline.errors import DeliveryError, ThrottledError
from driftline.types import DeliveryContext
from tests.helpers import FakeSlack

T0 = 1_795_000_000.0
CHANNEL, CHANNEL_ID = "#ml-oncall", "C0MLONCALL"
TOKEN = "xoxb-SECRET-TOKEN-4242"


def feature(statistic=32.8, threshold=4.45, shift=0.84, window="2026-11-18T11:07:02.000Z") -> dict:
    return {"method": "meanvar", "statistic": statistic, "threshold": threshold, "p_value": 5.5e-236,
            "ratio": round(statistic / threshold, 2), "effect": {"mean_shift_sd": shift},
            "first_window": window, "worst_window": window}


def incident(event: str = "opened", features: dict | None = None, new: list | None = None, **changes) -> dict:
    """A notification payload shaped like the contract's example (docs/alerting.md)."""
    features = {"amount": feature()} if features is None else features
    worst_name = max(features, key=lambda k: features[k]["ratio"]) if features else None
    inc = {
        "id": "9f1c0a7e5b2d4c3a1e0f", "group": {"model": "fraud", "version": "v3"},
        "model": "fraud", "version": "v3", "status": "firing", "severity": "warning",
        "title": f"fraud v3: {len(features)} of 11 subjects drifted",
        "opened_at": "2026-11-18T11:07:00.000Z", "updated_at": "2026-11-18T11:07:02.000Z", "resolved_at": None,
        "alerts": [{"fingerprint": "a560e9f0daf261d2326d", "rule": "feature_drift", "level": "model",
                    "subject": ", ".join(list(features)[:2]) + ", …", "severity": "warning", "status": "firing",
                    "value": 0.72, "threshold": 0.25, "since": "2026-11-18T11:07:00.000Z"}],
        "features": features,
        "new_features": list(features) if new is None else new,
        "worst": ({"feature": worst_name} | {k: features[worst_name][k]
                                             for k in ("method", "statistic", "threshold", "ratio")})
        if worst_name else None,
        "windows": {"first": "2026-11-18T11:07:02.000Z", "last": "2026-11-18T11:07:02.000Z", "count": 1},
        "url": "http://127.0.0.1:8765/models/fraud/v3",
    }
    inc |= changes
    return {"type": "incident", "event": event,
            "window": {"start": "2026-11-18T11:07:00.000Z", "end": inc["updated_at"]}, "incident": inc}


def key(payload: dict) -> str:
    return f"incident:{payload['incident']['id']}:{payload['event']}:{payload['window']['end']}:slack"


def trigger() -> dict:
    return {"type": "trigger", "model": "fraud", "version": "v3", "time": "2026-11-18T11:07:02.000Z",
            "incident": "9f1c0a7e5b2d4c3a1e0f",
            "event": {"specversion": "1.0", "id": "0b5e-cloud", "type": "dev.driftline.retrain.requested",
                      "data": {"model": "fraud", "version": "v3", "reason": "feature_drift",
                               "window": {"end": "2026-11-18T11:07:02.000Z"}, "drifted": {"amount": {}}}}}


class FakeClock:
    """The sink's clock and sleeper: sleeping moves the clock."""

    def __init__(self, now: float = T0):
        self.now, self.slept = now, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def bot(slack: FakeSlack, clock: FakeClock | None = None, channel: str = CHANNEL, **kw) -> SlackSink:
    clock = clock or FakeClock()
    return SlackSink(token=TOKEN, channel=channel, base_url=slack.url + "/api/", clock=clock,
                     sleep=clock.sleep, **kw)


def realistic(**kw) -> FakeSlack:
    return FakeSlack(channel_ids={CHANNEL: CHANNEL_ID, "#elsewhere": "C0ELSEWHERE"}, first_ts=T0, **kw)


def calls(slack: FakeSlack, method: str) -> list[dict]:
    return [r["body"] for r in slack.requests if r["method"] == method]


def top_level(slack: FakeSlack) -> list[dict]:
    return [msg for msg in slack.posted() if msg.get("thread_ts", msg["ts"]) == msg["ts"]]


# -- one incident, one thread ---------------------------------------------------------


def test_opened_posts_one_root_message_with_blocks_text_link_and_the_key_in_metadata():
    with realistic() as slack:
        payload = incident()
        receipt = bot(slack).send("incident", payload, key(payload))
        (body,) = calls(slack, "chat.postMessage")
    assert receipt.detail == {"channel": CHANNEL_ID, "ts": f"{T0:.3f}", "severity": "warning"}
    assert body["channel"] == CHANNEL and "thread_ts" not in body
    assert body["metadata"] == {"event_type": "driftline_notification",
                                "event_payload": {"key": key(payload), "incident": "9f1c0a7e5b2d4c3a1e0f"}}
    text = body["text"]
    for part in ("[WARNING]", "fraud v3", "amount", "meanvar 32.8 vs threshold 4.45 (×7.37)",
                 "since 2026-11-18T11:07:00.000Z", "http://127.0.0.1:8765/models/fraud/v3"):
        assert part in text, part
    blocks = body["blocks"]
    assert blocks[0]["type"] == "header" and "fraud v3: 1 of 11 subjects drifted" in blocks[0]["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in blocks[1]["fields"]}
    assert fields["*Model*"] == "fraud v3" and fields["*Severity*"] == "WARNING"
    assert fields["*Since*"] == "2026-11-18T11:07:00.000Z"
    assert "meanvar 32.8 vs threshold 4.45 (×7.37)" in fields["*Worst*"]
    assert "*amount* meanvar 32.8 vs threshold 4.45 (×7.37) — mean +0.84 sd" in blocks[2]["text"]["text"]
    (button,) = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert button["url"] == "http://127.0.0.1:8765/models/fraud/v3"


def test_no_dashboard_url_no_button():
    with realistic() as slack:
        payload = incident(url=None)
        bot(slack).send("incident", payload, key(payload))
        (body,) = calls(slack, "chat.postMessage")
    assert not [b for b in body["blocks"] if b["type"] == "actions"] and "http" not in body["text"]


def test_opened_updated_repeat_resolved_is_one_root_its_replies_and_one_update_of_the_root():
    with realistic() as slack:
        sink = bot(slack)
        opened = incident()
        root = sink.send("incident", opened, key(opened)).detail
        thread = DeliveryContext(thread=root)
        updated = incident("updated", {"amount": feature(), "country": feature(90.0, 4.45)}, new=["country"],
                           severity="critical", updated_at="2026-11-18T11:09:02.000Z")
        reply = sink.send("incident", updated, key(updated), thread).detail
        repeat = incident("repeat", updated["incident"]["features"], new=[], updated_at="2026-11-18T15:09:02.000Z")
        sink.send("incident", repeat, key(repeat), thread)
        resolved = incident("resolved", updated["incident"]["features"], new=[], status="resolved",
                            updated_at="2026-11-18T16:00:00.000Z", resolved_at="2026-11-18T16:00:00.000Z")
        done = sink.send("incident", resolved, key(resolved), thread).detail
        (only_root,) = top_level(slack)
        replies = [msg for msg in slack.posted() if msg["ts"] != only_root["ts"]]
        (update,) = calls(slack, "chat.update")
        stored_root = slack.find(CHANNEL_ID, root["ts"])
    assert only_root["ts"] == root["ts"] and len(replies) == 3
    assert {r["thread_ts"] for r in replies} == {root["ts"]}
    assert reply == {"channel": CHANNEL_ID, "ts": replies[0]["ts"], "thread_ts": root["ts"]}
    assert "1 new drifted feature: country" in replies[0]["text"]
    assert "severity now critical (opened as warning)" in replies[0]["text"]
    assert "worst *country* meanvar 90 vs threshold 4.45 (×20.22)" in replies[0]["text"]
    assert "Still firing since 2026-11-18T11:07:00.000Z" in replies[1]["text"]
    assert "Resolved after 4h 53m (2 features involved" in replies[2]["text"]
    assert update["channel"] == CHANNEL_ID and update["ts"] == root["ts"]
    assert stored_root["updates"] == 1 and stored_root["text"].startswith("[RESOLVED]")
    assert stored_root["blocks"][0]["text"]["text"].startswith(":white_check_mark: RESOLVED")
    fields = "\n".join(f["text"] for f in stored_root["blocks"][1]["fields"])
    assert "*Duration*\n4h 53m" in fields
    assert "*country*" in stored_root["blocks"][2]["text"]["text"]  # the features involved
    assert done == {"channel": CHANNEL_ID, "ts": replies[2]["ts"], "thread_ts": root["ts"], "root_updated": True}


def test_without_a_root_an_update_is_a_top_level_message_naming_its_incident():
    with realistic() as slack:
        sink = bot(slack)
        for event in ("updated", "repeat", "resolved"):
            payload = incident(event, status="resolved" if event == "resolved" else "firing",
                               resolved_at="2026-11-18T12:07:00.000Z" if event == "resolved" else None)
            sink.send("incident", payload, key(payload), DeliveryContext(thread=None))
        posted = top_level(slack)
        assert calls(slack, "chat.update") == []
    assert len(posted) == 3 and all("Update to incident `9f1c0a7e5b2d4c3a1e0f` (fraud v3)" in msg["text"]
                                    for msg in posted)
    assert "Resolved after 1h 00m" in posted[2]["text"]


def test_a_root_that_was_deleted_still_gets_its_resolution_in_the_thread():
    with realistic() as slack:
        sink = bot(slack)
        resolved = incident("resolved", status="resolved", resolved_at="2026-11-18T12:07:00.000Z")
        ctx = DeliveryContext(thread={"channel": CHANNEL_ID, "ts": "1.000"})  # no such message
        root = sink.send("incident", incident(), "k-open").detail  # the channel exists
        detail = sink.send("incident", resolved, key(resolved), ctx).detail
    assert root["ts"] != "1.000" and detail["root_updated"] is False and detail["thread_ts"] == "1.000"


def test_a_trigger_replies_in_its_incidents_thread_or_stands_alone():
    with realistic() as slack:
        sink = bot(slack)
        root = sink.send("incident", incident(), "k-open").detail
        in_thread = sink.send("trigger", trigger(), "trigger:fp:end:slack", DeliveryContext(thread=root)).detail
        alone = sink.send("trigger", trigger(), "trigger:fp2:end:slack").detail
        first, second = calls(slack, "chat.postMessage")[1:]
    assert in_thread["thread_ts"] == root["ts"] and first["thread_ts"] == root["ts"]
    assert "thread_ts" not in alone and "thread_ts" not in second
    assert "[RETRAIN] fraud v3: retraining requested for incident `9f1c0a7e5b2d4c3a1e0f`" in first["text"]
    assert first["metadata"]["event_payload"] == {"key": "trigger:fp:end:slack", "incident": "9f1c0a7e5b2d4c3a1e0f"}


def test_slack_takes_incidents_and_triggers():
    assert SlackSink.accepts == frozenset({"incident", "trigger"})


# -- pacing ------------------------------------------------------------------------------


def test_posts_to_one_channel_are_paced_to_one_a_second():
    clock = FakeClock()
    with realistic() as slack:
        sink = bot(slack, clock)
        root = sink.send("incident", incident(), "k1").detail
        clock.now += 0.25
        sink.send("incident", incident("updated"), "k2", DeliveryContext(thread=root))
        sink.send("incident", incident("repeat"), "k3", DeliveryContext(thread=root))
        clock.now += 5
        sink.send("incident", incident("repeat"), "k4", DeliveryContext(thread=root))
        other = bot(slack, clock, channel="#elsewhere")  # another channel: its own pace
        other.send("incident", incident(), "k5")
    assert clock.slept == [0.75, 1.0]


# -- failures, retries and the look-up -------------------------------------------------------


def test_429_is_throttled_with_retry_after_and_the_retry_posts_once():
    with realistic(throttle=1, retry_after=7) as slack:
        sink, payload = bot(slack, channel=CHANNEL_ID), incident()
        with pytest.raises(ThrottledError) as info:
            sink.send("incident", payload, key(payload))
        receipt = sink.send("incident", payload, key(payload), DeliveryContext(attempted=True))
        (history,) = calls(slack, "conversations.history")
        posted = slack.posted()
    assert info.value.retry_after == 7
    assert history["channel"] == CHANNEL_ID and history["include_all_metadata"] == "1"
    assert int(history["limit"]) <= 200 and float(history["oldest"]) == T0 - 86400
    assert len(posted) == 1 and receipt.detail["ts"] == posted[0]["ts"] and "found" not in receipt.detail


def test_500_for_a_while_then_success_is_posted_once():
    now = [T0]
    with realistic(phases=[(T0 + 60, 500)], clock=lambda: now[0]) as slack:
        sink, payload = bot(slack, channel=CHANNEL_ID), incident()
        for attempt in range(3):
            with pytest.raises(DeliveryError, match=r"failed: boom \(HTTP 500\)"):
                sink.send("incident", payload, key(payload), DeliveryContext(attempted=attempt > 0))
            now[0] += 20
        receipt = sink.send("incident", payload, key(payload), DeliveryContext(attempted=True))
        assert len(slack.posted()) == 1 and receipt.detail["ts"] == slack.posted()[0]["ts"]


@pytest.mark.parametrize("hang", [3.0, 0.05], ids=["timed-out", "connection-closed"])
def test_a_root_posted_on_an_attempt_whose_answer_was_lost_is_found_not_posted_again(hang):
    with realistic(hang=hang, hang_posts=True) as slack:
        sink, payload = bot(slack, channel=CHANNEL_ID, timeout=1), incident()  # see the restart test for a name
        with pytest.raises(DeliveryError, match="Slack unreachable"):
            sink.send("incident", payload, key(payload))
        assert len(slack.posted()) == 1  # Slack posted it; the answer never came
        receipt = sink.send("incident", payload, key(payload), DeliveryContext(attempted=True))
        (posted,) = slack.posted()
        assert len(calls(slack, "chat.postMessage")) == 1 and len(calls(slack, "conversations.history")) == 1
    assert receipt.detail == {"channel": CHANNEL_ID, "ts": posted["ts"], "found": True, "severity": "warning"}


def test_a_reply_posted_on_a_lost_attempt_is_found_in_the_thread():
    with realistic(hang=0.05, hang_posts=True) as slack:
        slack.hang_count = 0  # the root goes through
        sink = bot(slack, timeout=1)
        root = sink.send("incident", incident(), "k-open").detail
        slack.hang_count = 1
        payload, ctx = incident("updated"), DeliveryContext(thread=root)
        with pytest.raises(DeliveryError):
            sink.send("incident", payload, key(payload), ctx)
        receipt = sink.send("incident", payload, key(payload), DeliveryContext(attempted=True, thread=root))
        (replies,) = calls(slack, "conversations.replies")
        posted = slack.posted()
    assert len(posted) == 2 and posted[1]["thread_ts"] == root["ts"]
    assert replies["ts"] == root["ts"] and replies["include_all_metadata"] == "1"
    assert receipt.detail == {"channel": CHANNEL_ID, "ts": posted[1]["ts"], "thread_ts": root["ts"], "found": True}


def test_a_retry_that_finds_nothing_posts_and_a_retry_of_resolve_updates_again():
    with realistic() as slack:
        sink = bot(slack)
        root = sink.send("incident", incident(), "k-open").detail
        resolved = incident("resolved", status="resolved", resolved_at="2026-11-18T12:07:00.000Z")
        ctx = DeliveryContext(attempted=True, thread=root)
        first = sink.send("incident", resolved, key(resolved), ctx).detail
        again = sink.send("incident", resolved, key(resolved), ctx).detail  # e.g. the receipt was never stored
        assert len(calls(slack, "chat.update")) == 2  # an update is idempotent: same text, same message
        assert len(slack.posted()) == 2  # the root and one resolved reply
    assert "found" not in first and again["found"] is True and again["ts"] == first["ts"]


def test_after_a_restart_a_channel_given_by_name_cannot_be_looked_up_and_that_is_said(caplog):
    with realistic(hang=0.05, hang_posts=True) as slack:
        payload = incident()
        with pytest.raises(DeliveryError):
            bot(slack, timeout=1).send("incident", payload, key(payload))
        restarted = bot(slack)  # knows no channel ID yet
        with caplog.at_level(logging.WARNING, "driftline.alerts.slack"):
            restarted.send("incident", payload, key(payload), DeliveryContext(attempted=True))
        by_id = bot(slack, channel=CHANNEL_ID)  # the README's advice: the channel by its ID
        assert by_id.send("incident", payload, key(payload), DeliveryContext(attempted=True)).detail["found"]
        assert len(slack.posted()) == 2
    assert "cannot look for an earlier attempt" in caplog.text and "channel_not_found" in caplog.text


@pytest.mark.parametrize("error, options", [("channel_not_found", {"channel": "#nowhere"}),
                                            ("invalid_auth", {})])
def test_slack_errors_are_delivery_errors_with_slacks_name_and_no_token(error, options):
    with realistic(tokens=("xoxb-the-right-one",)) if error == "invalid_auth" else realistic() as slack:
        with pytest.raises(DeliveryError) as info:
            bot(slack, **options).send("incident", incident(), "k")
    assert error in str(info.value) and TOKEN not in str(info.value)
    assert not isinstance(info.value, ThrottledError)


# -- incoming webhook ------------------------------------------------------------------------


def test_a_webhook_posts_every_event_top_level_and_never_looks_up():
    with realistic() as slack:
        sink = SlackSink(webhook_url=slack.url + "/services/T0/B0/SECRETPATH", sleep=lambda s: None)
        receipts = []
        for event in ("opened", "updated", "resolved"):
            payload = incident(event, status="resolved" if event == "resolved" else "firing",
                               resolved_at="2026-11-18T12:07:00.000Z" if event == "resolved" else None)
            thread = receipts[0] if receipts else None  # the opened receipt: no ts
            receipts.append(sink.send("incident", payload, key(payload),
                                      DeliveryContext(attempted=True, thread=thread)).detail)
        paths = [r["path"] for r in slack.requests]
        bodies = [r["body"] for r in slack.requests]
    assert paths == ["/services/T0/B0/SECRETPATH"] * 3  # no look-up, no update
    assert all(r["mode"] == "incoming-webhook" and r["ts"] is None and "cannot be threaded" in r["note"]
               for r in receipts)
    assert bodies[0]["text"].startswith("[WARNING]") and "Update to incident" in bodies[2]["text"]
    assert "thread_ts" not in bodies[1]


# -- Block Kit limits and escaping ---------------------------------------------------------------

HOSTILE = ["<!channel>", "<script>alert(1)</script>", "a&b", "<@U024BE7LH>", "<https://evil.example|click>"]


def hostile_incident(event: str) -> dict:
    names = [f"{HOSTILE[i % len(HOSTILE)]}_{i}_" + "x" * (300 if i % 7 == 0 else 5) for i in range(500)]
    features = {n: feature(10.0 + i % 13, 4.45) for i, n in enumerate(names)}
    payload = incident(event, features, new=names[:450] if event == "updated" else None,
                       status="resolved" if event == "resolved" else "firing",
                       resolved_at="2026-11-18T12:07:00.000Z" if event == "resolved" else None,
                       title="<!channel> " + "T" * 400, model="<!here>&model", version="<v>" * 50)
    payload["incident"]["alerts"] = [copy.deepcopy(payload["incident"]["alerts"][0]) for _ in range(40)]
    return payload


def mrkdwn_texts(blocks: list[dict]) -> list[str]:
    out = []
    for b in blocks:
        for part in [b.get("text")] + (b.get("fields") or []) + (b.get("elements") or []):
            if isinstance(part, dict) and part.get("type") == "mrkdwn":
                out.append(part["text"])
    return out


def check_block_kit(blocks: list[dict]) -> None:
    """Slack's documented limits, checked independently of the sink's own clipping."""
    assert 0 < len(blocks) <= 50
    for b in blocks:
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and len(b["text"]["text"]) <= 150
        if b["type"] == "section":
            assert "text" in b or "fields" in b
            assert len(b.get("text", {}).get("text", "")) <= 3000
            assert len(b.get("fields", [])) <= 10 and all(len(f["text"]) <= 2000 for f in b.get("fields", []))
        if b["type"] == "context":
            assert len(b["elements"]) <= 10


def check_escaped(text: str) -> None:
    for raw in ("<!channel>", "<!here>", "<script>", "<@U024BE7LH>", "<https://evil", "a&b"):
        assert raw not in text, raw


@pytest.mark.parametrize("event", ["opened", "updated", "repeat", "resolved"])
def test_a_huge_hostile_incident_stays_within_block_kit_limits_and_pings_nobody(event):
    clock = FakeClock()
    with realistic() as slack:
        sink = bot(slack, clock)
        root = sink.send("incident", hostile_incident("opened"), "k-open").detail
        sink.send("incident", hostile_incident(event), "k", DeliveryContext(thread=root))
        sink.send("incident", hostile_incident(event), "k-alone")
        sink.send("trigger", trigger() | {"event": trigger()["event"] | {"data": trigger()["event"]["data"] | {
            "drifted": hostile_incident(event)["incident"]["features"], "model": "<!channel>"}}}, "k-t",
            DeliveryContext(thread=root))
        bodies = calls(slack, "chat.postMessage") + calls(slack, "chat.update")
    assert len(bodies) == 4 + (event == "resolved")
    for body in bodies:
        check_block_kit(body["blocks"])
        assert len(body["text"]) <= 3000  # Slack cuts at 40,000; a phone shows far less
        texts = [body["text"], *mrkdwn_texts(body["blocks"])]
        for text in texts:
            check_escaped(text)
        assert "&lt;" in "".join(texts) or "&amp;" in "".join(texts)  # the names are shown, escaped
    root_blocks = bodies[0]["blocks"]
    assert "… and 480 more" in root_blocks[2]["text"]["text"]
    assert "… and 30 more" in root_blocks[3]["text"]["text"]  # 40 alerts, 10 named
    assert "… and " in bodies[0]["text"]


# -- secrets in logs ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["token", "webhook"])
@pytest.mark.parametrize("status", [429, 500])
def test_slack_sdk_debug_logging_never_shows_the_token_or_the_webhook_path(caplog, mode, status):
    secret_path = "/services/T0SECRET/B0SECRET/SLACKHOOKSECRET99"
    with realistic(phases=[(float("inf"), status)], clock=lambda: 0.0, retry_after=3) as slack, \
            caplog.at_level(logging.DEBUG):
        sink = (bot(slack) if mode == "token" else SlackSink(webhook_url=slack.url + secret_path))
        with pytest.raises(ThrottledError if status == 429 else DeliveryError) as info:
            sink.send("incident", incident(), "k", DeliveryContext(attempted=True))
        sent = slack.requests[0]
    assert (sent["auth"] == f"Bearer {TOKEN}") if mode == "token" else sent["path"] == secret_path
    sdk = [r for r in caplog.records if r.name.startswith("slack_sdk")]
    assert sdk and any(r.levelno == logging.DEBUG for r in sdk)  # it did log, at debug
    everything = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + str(info.value)
    for secret in (TOKEN, "SLACKHOOKSECRET99", "T0SECRET/B0SECRET"):
        assert secret not in everything


# -- every payload renders, within the limits --------------------------------------------------

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.none(), st.text(max_size=20))
results = st.fixed_dictionaries({"method": st.text(max_size=30), "statistic": numbers, "threshold": numbers,
                                 "ratio": numbers, "effect": st.dictionaries(st.text(max_size=20), numbers,
                                                                              max_size=3)})


@settings(max_examples=60, deadline=None)
@given(features=st.dictionaries(st.text(max_size=200), results, max_size=60), title=st.text(max_size=400),
       model=st.text(max_size=100), event=st.sampled_from(["opened", "updated", "repeat", "resolved"]),
       threaded=st.booleans())
def test_any_incident_renders_escaped_and_within_block_kit_limits(features, title, model, event, threaded):
    inc = incident(event, {}, title=title, model=model, url=None)["incident"]
    inc["features"], inc["new_features"] = features, list(features)[:30]
    inc["worst"] = {"feature": next(iter(features), None), **(next(iter(features.values()), {}))}
    outputs = [(messages.incident_text(inc), messages.incident_blocks(inc)),
               (messages.update_text(event, inc, threaded, "warning"),
                messages.update_blocks(event, inc, threaded, "warning"))]
    for text, blocks in outputs:
        check_block_kit(blocks)
        assert len(text) <= 3000
        for mrkdwn in [text, *mrkdwn_texts(blocks)]:
            assert "<" not in mrkdwn and ">" not in mrkdwn, mrkdwn
            assert not re.search(r"&(?!amp;|lt;|gt;)", mrkdwn), mrkdwn
