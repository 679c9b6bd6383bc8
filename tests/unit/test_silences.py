"""Silences by label matchers: parsing and matching (with Hypothesis), the dispatcher's decision
for alert, incident and trigger payloads, the store on SQLite and PostgreSQL, migration 0007
from the old (model, rule, until, reason) rows, and `driftline silence add|list|expire`."""

import re

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from driftline.alerts.outbox import Dispatcher
from driftline.alerts.silences import Matcher, Silence, alert_labels, is_silenced, parse_matcher
from driftline.cli import main
from driftline.silencing import check_new, view
from driftline.store import SqlStore, migrate
from driftline.types import CommitUnit, Notification, Receipt
from tests.helpers import config

HOUR = 3600.0
ALERT = {"type": "alert", "status": "firing", "fingerprint": "f1", "model": "fraud", "version": "v3",
         "rule": "feature_drift", "subject": "amount", "severity": "warning", "value": 0.5, "threshold": 0.3}


def silence(*matchers: str, starts: float = 0.0, ends: float = HOUR, sid: int = 1) -> Silence:
    return Silence(sid, tuple(parse_matcher(m) for m in matchers), starts, ends, "ana", "test")


def incident(*alerts: dict, model: str = "fraud", version: str = "v3") -> dict:
    return {"type": "incident", "event": "opened",
            "incident": {"id": "9f1c", "model": model, "version": version, "group": {"model": model},
                         "status": "firing", "alerts": list(alerts)}}


def member(rule: str, status: str = "firing", subject: str = "amount", severity: str = "warning") -> dict:
    return {"fingerprint": rule, "rule": rule, "subject": subject, "severity": severity, "status": status}


# -- matchers ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, name, op, value", [
    ("model=fraud", "model", "=", "fraud"),
    ('model="fraud"', "model", "=", "fraud"),
    ("model='fraud'", "model", "=", "fraud"),
    ("rule=~feature_.*", "rule", "=~", "feature_.*"),
    ('rule=~"feature_.*"', "rule", "=~", "feature_.*"),
    ("rule!~volume|no_data", "rule", "!~", "volume|no_data"),
    ("severity != warning", "severity", "!=", "warning"),
    ('subject="amount, country"', "subject", "=", "amount, country"),
    ('subject="say \\"hi\\""', "subject", "=", 'say "hi"'),
    ("version=", "version", "=", ""),
    ('version=""', "version", "=", ""),
    ("subject=a=b", "subject", "=", "a=b"),
])
def test_parse_matcher(text, name, op, value):
    assert parse_matcher(text) == Matcher(name, op, value)


@pytest.mark.parametrize("text, says", [
    ("fraud", "expected NAME=VALUE"), ("=fraud", "expected NAME=VALUE"), ("1model=x", "expected NAME=VALUE"),
    ("model~fraud", "expected NAME=VALUE"), ('model="fraud', "quoted value"), ('model="a" "b"', "quoted value"),
    ("rule=~feature_(", "bad regular expression 'feature_('"), ("rule!~[a-", "bad regular expression '[a-'"),
])
def test_a_bad_matcher_is_a_clear_error(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_matcher(text)


def test_regexes_are_anchored_like_alertmanager():
    m = parse_matcher("rule=~feature")
    assert not m.matches("feature_drift") and not m.matches("my_feature") and m.matches("feature")
    assert not m.matches("feature\n")  # ^(?:re)$ in Go: no match before a trailing newline, unlike Python's $
    assert parse_matcher("rule=~a|b").matches("b") and not parse_matcher("rule=~a|b").matches("ab")
    assert parse_matcher("rule!~feature_.*").matches("volume")
    assert not parse_matcher("rule!~feature_.*").matches("feature_drift")


def test_str_is_alertmanager_text():
    assert [str(parse_matcher(t)) for t in ("model=fraud", "rule=~feature_.*", 'subject!="a \\"b\\""')] == \
        ['model="fraud"', 'rule=~"feature_.*"', 'subject!="a \\"b\\""']


NAMES = st.sampled_from(["model", "version", "rule", "subject", "severity", "x_1"])
VALUES = st.text(max_size=20)


@given(NAMES, st.sampled_from(["=", "!=", "=~", "!~"]), VALUES)
def test_text_round_trips(name, op, value):
    value = re.escape(value) if op in ("=~", "!~") else value
    m = Matcher(name, op, value)
    assert parse_matcher(str(m)) == m


@given(VALUES, VALUES)
def test_each_operator_against_an_independent_rule(wanted, seen):
    assert Matcher("rule", "=", wanted).matches(seen) == (wanted == seen)
    assert Matcher("rule", "!=", wanted).matches(seen) == (wanted != seen)
    assert Matcher("rule", "=~", re.escape(wanted)).matches(seen) == (wanted == seen)
    assert Matcher("rule", "!~", re.escape(wanted)).matches(seen) == (wanted != seen)


@given(st.text(max_size=30))
def test_parse_matcher_returns_a_matcher_or_raises_value_error(text):
    try:
        m = parse_matcher(text)
    except ValueError:
        return
    assert isinstance(m, Matcher) and parse_matcher(str(m)) == m


# -- silences ------------------------------------------------------------------------------

def test_a_silence_needs_a_matcher_and_an_end_after_its_start():
    with pytest.raises(ValueError, match="matchers: a silence needs at least one matcher"):
        Silence(1, (), 0.0, HOUR)
    with pytest.raises(ValueError, match="ends_at"):
        Silence(1, ("model=fraud",), HOUR, 0.0)
    with pytest.raises(ValueError, match="end: must be after the start"):
        check_new(["model=fraud"], HOUR, HOUR)
    with pytest.raises(ValueError, match="mute every alert without those labels"):
        check_new(["model!=churn", 'version=~".*"'], 0.0, HOUR)  # matches an alert with no labels at all
    assert [str(m) for m in check_new(['model=~".+"'], 0.0, HOUR)] == ['model=~".+"']


def test_all_matchers_must_match_and_an_absent_label_is_empty():
    s = silence("model=fraud", "rule=~feature_.*")
    assert s.matches({"model": "fraud", "rule": "feature_drift"})
    assert not s.matches({"model": "fraud", "rule": "volume"}) and not s.matches({"rule": "feature_drift"})
    assert silence("model=fraud", 'subject=""').matches({"model": "fraud"})
    assert silence("model=fraud", 'subject=""').matches({"model": "fraud", "subject": None})
    assert not silence("model=fraud", "subject=~.+").matches({"model": "fraud"})


def test_active_pending_and_expired():
    s = silence("model=fraud", starts=100.0, ends=200.0)
    assert [s.active(t) for t in (99.0, 100.0, 199.0, 200.0)] == [False, True, True, False]
    assert [s.state(t) for t in (99.0, 150.0, 200.0)] == ["pending", "active", "expired"]
    v = view(s, 150.0)
    assert v["matchers"] == ['model="fraud"'] and v["state"] == "active"
    assert v["starts_at_iso"] == "1970-01-01T00:01:40.000Z" and v["expired_at_iso"] is None
    assert view(Silence(2, ("model=x",), 0.0, 1e20), 0.0)["ends_at_iso"] is None  # a hand-written row: no crash


# -- is_silenced: what the dispatcher mutes ------------------------------------------------

def test_alert_labels_are_the_five_labels():
    assert alert_labels(ALERT) == {"model": "fraud", "version": "v3", "rule": "feature_drift",
                                   "subject": "amount", "severity": "warning"}
    assert alert_labels({"model": "m"})["subject"] == ""


def test_a_firing_alert_is_silenced_by_a_matching_active_silence():
    s = silence("model=fraud", "rule=~feature_.*")
    assert is_silenced("alert", ALERT, [s], 10.0)
    assert not is_silenced("alert", {**ALERT, "rule": "volume"}, [s], 10.0)
    assert not is_silenced("alert", {**ALERT, "model": "churn"}, [s], 10.0)
    assert is_silenced("alert", ALERT, [silence("model=churn"), silence("severity=warning")], 10.0)  # any one
    assert not is_silenced("alert", ALERT, [], 10.0)


def test_resolved_notices_are_muted_while_the_silence_lasts_as_in_alertmanager():
    resolved = {**ALERT, "status": "resolved"}
    s = silence("model=fraud", ends=HOUR)
    assert is_silenced("alert", resolved, [s], 10.0)
    assert not is_silenced("alert", resolved, [s], HOUR)  # the silence ended: the resolve is sent


def test_expired_silences_no_longer_mute_and_future_ones_not_yet():
    s = silence("model=fraud", starts=100.0, ends=200.0)
    assert [is_silenced("alert", ALERT, [s], t) for t in (50.0, 100.0, 150.0, 200.0, 300.0)] == \
        [False, True, True, False, False]


def test_an_incident_is_silenced_only_when_every_firing_alert_is_matched():
    s = silence("model=fraud", "rule=~feature_.*")
    both = incident(member("feature_drift"), member("feature_share"))
    assert is_silenced("incident", both, [s], 10.0)
    one_unmatched = incident(member("feature_drift"), member("volume", subject="", severity="critical"))
    assert not is_silenced("incident", one_unmatched, [s], 10.0)
    assert is_silenced("incident", one_unmatched, [s, silence("rule=volume", "severity=critical")], 10.0)
    assert not is_silenced("incident", incident(member("feature_drift"), model="churn"), [s], 10.0)
    assert is_silenced("incident", incident(member("feature_drift"), member("volume", status="resolved")), [s], 10.0)


def test_incident_labels_are_the_incidents_model_and_version_with_the_alerts_rest():
    s = silence("version=v3", "subject=amount", "severity=critical")
    assert is_silenced("incident", incident(member("x", severity="critical")), [s], 10.0)
    assert not is_silenced("incident", incident(member("x", severity="critical"), version="v4"), [s], 10.0)
    assert not is_silenced("incident", incident(member("x", subject="country", severity="critical")), [s], 10.0)


def test_inhibited_alerts_do_not_count_and_a_resolved_incident_follows_its_alerts():
    s = silence("rule=feature_drift")
    assert is_silenced("incident", incident(member("feature_drift"), member("f2", status="inhibited")), [s], 10.0)
    resolved = incident(member("feature_drift", status="resolved"), member("f2", status="inhibited"))
    assert is_silenced("incident", resolved, [s], 10.0)
    assert not is_silenced("incident", resolved, [s], HOUR)
    assert not is_silenced("incident", incident(member("feature_drift", "resolved"), member("v", "resolved")), [s], 10.0)
    assert not is_silenced("incident", incident(), [s], 10.0)  # no alerts: nothing says it is silenced
    assert not is_silenced("incident", {"type": "incident"}, [s], 10.0)


def test_triggers_are_never_silenced():
    trigger = {"type": "trigger", "model": "fraud", "version": "v3", "incident": "9f1c"}
    assert not is_silenced("trigger", trigger, [silence("model=fraud"), silence('model=~".+"')], 10.0)


# -- the store, SQLite and PostgreSQL ------------------------------------------------------

def test_store_round_trip(store_url):
    store = SqlStore(store_url)
    o = store.outbox
    a = o.add_silence(["model=fraud", "rule=~feature_.*"], 100.0, 200.0, "ana", "backfill", now=90.0)
    b = o.add_silence([Matcher("severity", "=", "warning")], 150.0, 400.0, "bo", "later", now=90.0)
    c = o.add_silence(['subject="a \\"b\\""'], 0.0, 50.0, "cy", "ended", now=0.0)
    assert len({a, b, c}) == 3
    (first, second) = o.silences(120.0)
    assert (first.id, second.id) == (a, b)  # active, then pending; the ended one left out
    assert [str(m) for m in first.matchers] == ['model="fraud"', 'rule=~"feature_.*"']
    assert (first.starts_at, first.ends_at, first.author, first.comment, first.created_at, first.expired_at) == \
        (100.0, 200.0, "ana", "backfill", 90.0, None)
    assert [s.id for s in o.active_silences(120.0)] == [a]
    assert [s.id for s in o.active_silences(160.0)] == [a, b]
    assert [s.id for s in o.silences(120.0, include_expired=True)] == [c, a, b]
    assert str(o.silences(0.0, include_expired=True)[0].matchers[0]) == 'subject="a \\"b\\""'
    with pytest.raises(ValueError, match="matchers"):
        o.add_silence([], 0.0, 10.0, "ana", "x")
    with pytest.raises(ValueError, match="bad regular expression"):
        o.add_silence(["rule=~("], 0.0, 10.0, "ana", "x")
    store.close()


def test_expire_ends_an_active_silence_and_cancels_a_pending_one(store_url):
    store = SqlStore(store_url)
    o = store.outbox
    active = o.add_silence(["model=fraud"], 100.0, 200.0, "ana", "x", now=100.0)
    pending = o.add_silence(["model=churn"], 500.0, 600.0, "ana", "x", now=100.0)
    assert o.expire_silence(active, 150.0) and o.expire_silence(pending, 150.0)
    assert not o.expire_silence(active, 160.0) and not o.expire_silence(999, 160.0)
    assert o.silences(150.0) == [] and o.active_silences(150.0) == []
    ended = {s.id: s for s in o.silences(150.0, include_expired=True)}
    assert (ended[active].starts_at, ended[active].ends_at, ended[active].expired_at) == (100.0, 150.0, 150.0)
    assert (ended[pending].starts_at, ended[pending].ends_at) == (150.0, 150.0)  # never starts
    assert o.active_silences(550.0) == []
    store.close()


def _old_database(url: str, rows: list[tuple]) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.upgrade(engine, "0006")
    with engine.begin() as c:
        for row in rows:  # ids from the database's own sequence, as the old release wrote them
            c.execute(text("INSERT INTO silences (model, rule, until, reason) VALUES (:m, :r, :u, :why)"),
                      dict(zip(("m", "r", "u", "why"), row)))
    engine.dispose()


def test_migration_0007_turns_old_silences_into_matchers(store_url):
    import time
    now = time.time()
    _old_database(store_url, [("fraud", None, now + HOUR, "backfill"), ("fraud", "volume", now + HOUR, None),
                              ("churn", None, now - HOUR, "over")])
    store = SqlStore(store_url, upgrade=True)
    assert store.schema_version() == migrate.head()
    got = {s.id: s for s in store.outbox.silences(now, include_expired=True)}
    assert [str(m) for m in got[1].matchers] == ['model="fraud"']
    assert [str(m) for m in got[2].matchers] == ['model="fraud"', 'rule="volume"']
    assert (got[1].ends_at, got[1].comment, got[1].author, got[2].comment) == (now + HOUR, "backfill", "unknown", "")
    assert now - 5 <= got[1].starts_at <= time.time() and got[1].created_at == got[1].starts_at
    assert got[3].starts_at == got[3].ends_at == now - HOUR  # had ended: stays ended
    assert [s.id for s in store.outbox.active_silences(time.time())] == [1, 2]
    assert is_silenced("alert", {**ALERT, "rule": "volume"}, store.outbox.active_silences(time.time()), time.time())
    new = store.outbox.add_silence(["model=x"], now, now + 10, "ana", "after", now=now)
    assert new > 3  # PostgreSQL's id sequence kept counting from the migrated rows
    store.close()


def test_migration_0007_downgrades_what_the_old_columns_can_say(store_url):
    from alembic import command
    _old_database(store_url, [("fraud", "volume", 5000.0, "why")])
    store = SqlStore(store_url, upgrade=True)
    store.outbox.add_silence(["rule=~feature_.*"], 0.0, 9000.0, "ana", "regex: lost on downgrade", now=0.0)
    with store.engine.begin() as c:
        command.downgrade(migrate._config(c), "0006")
        rows = [tuple(r) for r in c.execute(text("SELECT id, model, rule, until, reason FROM silences"))]
    assert rows == [(1, "fraud", "volume", 5000.0, "why")]
    store.close()


def test_a_stored_row_that_is_no_silence_is_skipped_not_fatal(store_url):
    store = SqlStore(store_url)
    with store.engine.begin() as c:
        c.execute(text("INSERT INTO silences (matchers, starts_at, ends_at, author, comment, created_at) "
                       "VALUES (:m, 0, 100, 'x', '', 0)"), {"m": '[["rule", "=~", "("]]'})
    good = store.outbox.add_silence(["model=fraud"], 0.0, 100.0, "ana", "ok", now=0.0)
    assert [s.id for s in store.outbox.active_silences(50.0)] == [good]
    assert [s.id for s in store.browse.silences(50.0)] == [good]
    with pytest.raises(ValueError, match="comment: text of at most 1000"):
        store.outbox.add_silence(["model=fraud"], 0.0, 100.0, "ana", "x" * 1001)
    store.close()


# -- the dispatcher ------------------------------------------------------------------------

class Recording:
    accepts = frozenset({"alert", "incident", "trigger"})

    def __init__(self):
        self.sent = []

    def send(self, kind, payload, key, ctx=None):
        self.sent.append(key)
        return Receipt()


def test_the_dispatcher_mutes_by_matchers_from_start_to_end():
    store, now = SqlStore("sqlite://"), [150.0]
    store.outbox.add_silence(["model=fraud", "rule=~feature_.*"], 100.0, 200.0, "ana", "x", now=100.0)
    sink = Recording()
    d = Dispatcher(store, {"s": sink}, clock=lambda: now[0])

    def deliver(key: str, kind: str, payload: dict, at: float) -> str:
        now[0] = at
        store.commit("g", CommitUnit(notifications=[Notification(key, "s", kind, payload)]))
        d.deliver_due()
        return {r["key"]: r["status"] for r in store.reads.outbox()}[key]

    assert deliver("early", "alert", ALERT, 50.0) == "sent"  # the silence starts later
    assert deliver("during", "alert", ALERT, 150.0) == "silenced"
    assert deliver("resolved", "alert", {**ALERT, "status": "resolved"}, 150.0) == "silenced"
    assert deliver("other", "alert", {**ALERT, "rule": "volume"}, 150.0) == "sent"
    assert deliver("trigger", "trigger", {"model": "fraud"}, 150.0) == "sent"
    assert deliver("incident", "incident", incident(member("feature_drift")), 150.0) == "silenced"
    assert deliver("after", "alert", ALERT, 200.0) == "sent"  # it ended
    assert sink.sent == ["early", "other", "trigger", "after"]


def test_a_delivery_pass_reads_the_silences_once():
    from sqlalchemy import event
    store = SqlStore("sqlite://")
    store.outbox.add_silence(["rule=volume"], 0.0, 900.0, "ana", "x", now=0.0)
    store.commit("g", CommitUnit(notifications=[Notification(f"k{i}", "s", "alert", ALERT) for i in range(5)]))
    reads = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *a: reads.append(statement) if "FROM silences" in statement else None)
    assert Dispatcher(store, {"s": Recording()}, clock=lambda: 100.0).deliver_due() == 5
    assert len(reads) == 1
    store.outbox.add_silence(["rule=feature_drift"], 0.0, 900.0, "ana", "x", now=0.0)  # forgets what it read
    assert [str(s.matchers[0]) for s in store.outbox.active_silences(100.0)] == ['rule="volume"', 'rule="feature_drift"']


def test_an_expired_silence_no_longer_mutes():
    store, now = SqlStore("sqlite://"), [150.0]
    sid = store.outbox.add_silence(["model=fraud"], 100.0, 900.0, "ana", "x", now=100.0)
    store.outbox.expire_silence(sid, 160.0)
    d = Dispatcher(store, {"s": Recording()}, clock=lambda: now[0])
    store.commit("g", CommitUnit(notifications=[Notification("k", "s", "alert", ALERT)]))
    now[0] = 170.0
    d.deliver_due()
    assert store.reads.outbox()[0]["status"] == "sent"


# -- the command ---------------------------------------------------------------------------

@pytest.fixture
def cfg(tmp_path) -> str:
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(config(store={"url": f"sqlite:///{tmp_path / 'd.db'}"})))
    return str(path)


def test_add_list_expire(cfg, capsys, monkeypatch):
    monkeypatch.setenv("USER", "ana")
    assert main(["silence", "add", "-c", cfg, "model=m", "rule=~feature_.*", "--for", "2h",
                 "--comment", "backfill"]) == 0
    first = int(capsys.readouterr().out.strip())
    assert main(["silence", "-c", cfg, "add", "version=v1", "--starts", "2999-01-01T00:00:00Z",
                 "--until", "2999-01-01T02:00", "--author", "bo", "--comment", "later"]) == 0
    second = int(capsys.readouterr().out.strip())
    assert main(["silence", "list", "-c", cfg, "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["state"], r["author"], r["matchers"]) for r in rows] == \
        [(first, "active", "ana", ['model="m"', 'rule=~"feature_.*"']), (second, "pending", "bo", ['version="v1"'])]
    assert rows[0]["ends_at"] - rows[0]["starts_at"] == pytest.approx(7200)
    assert rows[1]["starts_at_iso"] == "2999-01-01T00:00:00.000Z" and rows[1]["ends_at_iso"] == "2999-01-01T02:00:00.000Z"
    assert main(["silence", "expire", "-c", cfg, str(first)]) == 0
    assert capsys.readouterr().out.strip() == f"expired silence {first}"
    assert main(["silence", "list", "-c", cfg]) == 0
    out = capsys.readouterr().out
    assert f"{second}  pending" in out and "1 silence(s) active or pending" in out and "backfill" not in out
    assert main(["silence", "list", "-c", cfg, "--all"]) == 0
    assert "expired" in capsys.readouterr().out
    assert main(["silence", "expire", "-c", cfg, str(first)]) == 2
    assert "ID: no active or pending silence" in capsys.readouterr().err


def test_the_deprecated_form_adds_model_and_rule_matchers(cfg, capsys):
    assert main(["silence", "-c", cfg, "m", "--for", "30m", "--rule", "feature_drift", "--reason", "why"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "silenced m feature_drift for 30m"
    assert "deprecated; use: driftline silence add" in captured.err
    (s,) = SqlStore(yaml.safe_load(open(cfg))["store"]["url"]).outbox.silences(0.0)
    assert [str(m) for m in s.matchers] == ['model="m"', 'rule="feature_drift"'] and s.comment == "why"
    assert main(["silence", "-c", cfg, "nope", "--for", "1h"]) == 2
    assert "MODEL: unknown model 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (["model=m", "rule=~(", "--for", "1h"], "MATCHER: matcher rule=~\"(\": bad regular expression '('"),
    (["fraud", "--for", "1h"], "MATCHER: matcher 'fraud': expected NAME=VALUE"),
    (["modle=m", "--for", "1h"], "MATCHER 'modle=m': driftline's alerts have no label 'modle'"),
    (["model=nope", "--for", "1h"], "MATCHER 'model=nope': no configured model 'nope'"),
    (['rule=~".*"', "--for", "1h"], "MATCHER: matchers: rule=~\".*\" all match an empty value"),
    (["model=m", "--for", "soon"], "--for: expected a duration"),
    (["model=m", "--until", "tomorrow"], "--until: expected an ISO-8601 time"),
    (["model=m", "--until", "2000-01-01T00:00:00Z"], "--until: the end must be after the start"),
    (["model=m", "--starts", "2999-01-02T00:00:00Z", "--until", "2999-01-01T00:00:00Z"], "--until: the end must be after"),
    (["model=m", "--for", "0s"], "--for: the end must be after the start"),
    (["model=m", "--starts", "2000-01-01T00:00:00Z", "--for", "1h"], "--for: the end is in the past"),
    (["model=m", "--starts", "1960-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"], "--starts: start: must be"),
    (["model=m", "--for", "1h", "--author", " "], "--author: required"),
    (["model=m", "--for", "100000000h"], "--for: end: must be between 1970 and 9999"),
    (["model=m", "--for", "1h", "--author", "a" * 201], "--author: at most 200 characters"),
])
def test_bad_arguments_are_exit_2_naming_the_argument(cfg, capsys, args, says):
    assert main(["silence", "add", "-c", cfg, *args, "--comment", "x"]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (["silence", "add", "model=m", "--for", "1h", "--comment", "x"], "-c/--config FILE: required"),
    (["silence", "add", "-c", "F", "model=m", "--comment", "x"], "one of the arguments --for --until is required"),
    (["silence", "add", "-c", "F", "--for", "1h", "--comment", "x"], "the following arguments are required: MATCHER"),
    (["silence", "add", "-c", "F", "model=m", "--for", "1h"], "the following arguments are required: --comment"),
    (["silence", "expire", "-c", "F", "three"], "invalid int value"),
    (["silence"], "the following arguments are required: ACTION"),
    (["silence", "lsit", "-c", "F"], "unknown action 'lsit' (choose from add, list, expire"),
    (["silence", "-c", "F", "m", "--for", "1h", "--colour", "red"], "unrecognized arguments: --colour red"),
])
def test_missing_arguments_are_exit_2(capsys, args, says):
    try:
        code = main(args)
    except SystemExit as done:
        code = done.code
    assert code == 2 and says in capsys.readouterr().err
