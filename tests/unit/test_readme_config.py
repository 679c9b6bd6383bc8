"""The README's full configuration sample is a configuration driftline accepts (it once held a
rule under ``labels:``, which no YAML parser takes)."""

import re
from pathlib import Path

import yaml

from driftline.config import parse_settings

README = Path(__file__).resolve().parents[2] / "README.md"
ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
       "PAGERDUTY_ROUTING_KEY": "k" * 32, "WEBHOOK_SECRET": "s" * 32, "DATABASE_URL": "sqlite://",
       "KAFKA_BOOTSTRAP": "kafka:9092", "RETRAIN_HOOK_URL": "https://api.github.com/repos/acme/fraud/dispatches",
       "GITHUB_TOKEN": "t", "HOOK_SECRET": "s" * 32}


def test_the_readme_configuration_sample_parses_and_validates():
    samples = [tree for tree in map(yaml.safe_load, re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S))
               if isinstance(tree, dict) and "models" in tree]
    assert samples, "the README has a full configuration sample"
    for tree in samples:
        settings = parse_settings(tree, ENV)
        model = settings.models[0]
        assert model.labels is not None and {r.name for r in model.rules} >= {"concept_drift", "rollback", "auc"}
