"""Configuration: every error carries its YAML path; secrets are masked."""

import pytest
import yaml

from driftline.config import load_settings, masked, parse_settings
from driftline.errors import ConfigError
from tests.helpers import config


def errors_of(raw, env=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, env or {})
    return [f"{p}: {m}" for p, m in info.value.problems]


def test_minimal_configuration_is_valid_with_defaults():
    s = parse_settings(config(), {})
    m = s.models[0]
    assert m.window.size == 1000 and [t.method for t in m.tests_for(m.features["x"])] == ["meanvar", "ks"]
    assert set(m.all_features()) == {"x", "y", "colour", "prediction"}


def test_unknown_kind_names_the_yaml_path():
    raw = config(model={"features": {"amount": "numerc"}})
    assert errors_of(raw) == [
        "models[0].features.amount: unknown kind 'numerc' (expected numeric, categorical, boolean)"]


def test_every_error_is_reported_at_once():
    raw = config(kafka={"bogus": 1, "batch_size": 0},
                 model={"window": {"size": 100, "duration": "5m"},
                        "features": {"x": {"kind": "categorical", "top_k": 0}}})
    errs = errors_of(raw)
    assert "kafka.bogus: unknown key" in errs
    assert any(e.startswith("kafka.batch_size: Input should be greater than or equal to 1") for e in errs)
    assert "models[0].window: set exactly one of 'size' (events) or 'duration' (e.g. '5m')" in errs
    assert any(e.startswith("models[0].features.x.top_k:") for e in errs)


def test_trend_and_domain_classifier_settings_are_checked_with_their_paths():
    m = parse_settings(config(), {}).models[0]
    assert m.trend_windows == [4, 16] and m.trend_features() == ["x", "y", "prediction"]
    assert not m.domain_classifier.enabled  # it keeps raw rows at rest: asked for, never default
    errs = errors_of(config(model={"trend_windows": [1, 16], "domain_classifier": {"enabled": True, "sample": 5}}))
    assert any(e.startswith("models[0].trend_windows[0]: Input should be greater than or equal to 2") for e in errs)
    assert any(e.startswith("models[0].domain_classifier.sample: Input should be greater than or equal to 100")
               for e in errs)


def test_wrong_drift_method_for_kind_is_named():
    raw = config(model={"features": {"c": {"kind": "categorical", "drift": {"method": "ks", "threshold": 0.05}}}})
    (err,) = errors_of(raw)
    assert err.startswith("models[0]: feature 'c': unknown drift method 'ks' for a categorical feature")


def test_rule_on_unknown_feature_is_named():
    (err,) = errors_of(config(model={"rules": [{"feature": "nope"}]}))
    assert "rule 'feature_drift': unknown feature 'nope'" in err


def test_missing_environment_variable_is_named_with_its_path():
    raw = config(alerts={"slack": {"token": "${SLACK_TOKEN_FOR_TEST}", "channel": "#x"}})
    assert errors_of(raw) == ["alerts.slack.token: environment variable SLACK_TOKEN_FOR_TEST is not set"]


def test_secrets_are_substituted_and_masked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(alerts={"slack": {"token": "${TOK}", "channel": "#oncall"}},
                                          kafka={"sasl_username": "u", "sasl_password": "${PW:-hunter2}"})))
    s = load_settings(path, {"TOK": "xoxb-secret"})
    assert s.alerts.slack.token.get_secret_value() == "xoxb-secret"
    shown = yaml.safe_dump(masked(s))
    assert "xoxb-secret" not in shown and "hunter2" not in shown and "**********" in shown
    assert "xoxb-secret" not in repr(s) and "xoxb-secret" not in str(s)


def test_unreadable_and_non_yaml_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("models: []  # café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text: invalid byte at position 17"):
        load_settings(path)


def test_a_false_alarm_rate_per_zero_windows_names_its_path():
    (msg,) = errors_of(config(model={"false_alarms": "1 per 0 windows"}))
    assert msg.startswith("models[0].false_alarms: a false-alarm rate needs a number of windows above 0")


def test_the_store_urls_password_is_masked_when_printed():
    s = parse_settings(config(store={"url": "postgresql://drift:DBPASS-zq87@db:5432/d"}), {})
    shown = yaml.safe_dump(masked(s))
    assert "DBPASS-zq87" not in shown and "postgresql://drift:***@db:5432/d" in shown
    assert s.store.url.endswith("DBPASS-zq87@db:5432/d")  # the service still gets the real one


def test_alerting_rules_and_grouping_are_checked_with_their_paths():
    (err,) = errors_of(config(model={"rules": [{"name": "v", "volume": {"below": 0.5}}]}))  # count windows
    assert err.startswith("models[0]: rule 'v': 'volume' needs time windows")
    assert errors_of(config(model={"window": {"duration": "1m"}, "rules": [{"name": "v", "volume": {}}]})) == [
        "models[0].rules[0].volume: set 'below' (e.g. 0.5) or 'above' (e.g. 2.0), or both"]
    (err,) = errors_of(config(model={"rules": [{"name": "a", "count": 1}, {"name": "a", "share": 0.5}]}))
    assert "the name 'a' is used twice" in err
    (err,) = errors_of(config(model={"retrain": {"rules": ["nope"]}}))
    assert "retrain.rules: unknown rule 'nope'" in err
    (err,) = errors_of(config(model={"rules": [{"name": "n", "no_data": "10m", "count": 1}]}))
    assert err.startswith("models[0].rules[0]: set exactly one of")
    (err,) = errors_of(config(alerts={"group_by": ["version"]}))
    assert err.startswith("alerts.group_by: must include")
    s = parse_settings(config(model={"rules": [{"name": "n", "no_data": "10m", "keep_firing_for": 2}]}), {})
    assert s.models[0].rules[0].no_data == 600 and s.alerts.group_wait == 30 and s.alerts.repeat_interval == 14400


def test_labels_are_off_by_default_and_take_their_defaults():
    s = parse_settings(config(model={"labels": {}}, kafka={"label_topics": ["labels"]}), {})
    lab = s.models[0].labels
    assert (lab.task, lab.threshold, lab.max_delay, lab.max_pending, lab.sample, lab.min_labelled) == (
        "binary", 0.5, 30 * 86400.0, 10_000_000, 1.0, 0.3)
    assert s.kafka.label_topics == ["labels"]
    plain = parse_settings(config(), {})
    assert plain.models[0].labels is None and plain.kafka.label_topics == []


def test_labels_need_an_id_and_a_numeric_prediction_and_name_their_paths():
    (err,) = errors_of(config(model={"labels": {}, "fields": {"id": None}}))
    assert err.startswith("models[0]: labels: a label joins its prediction by id")
    (err,) = errors_of(config(model={"labels": {}, "prediction": None}))
    assert err.startswith("models[0]: labels: needs a numeric 'prediction'")
    errs = errors_of(config(model={"labels": {"task": "multiclass", "sample": 0, "max_delay": "soon"}}))
    assert any(e.startswith("models[0].labels.task:") for e in errs)
    assert any(e.startswith("models[0].labels.sample:") for e in errs)
    assert any(e.startswith("models[0].labels.max_delay:") for e in errs)
