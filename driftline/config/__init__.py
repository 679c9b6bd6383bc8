"""Configuration: one frozen settings model loaded from YAML."""

from driftline.config.loader import load_settings, masked, parse_settings
from driftline.config.settings import ModelSpec, Settings

__all__ = ["ModelSpec", "Settings", "load_settings", "masked", "parse_settings"]
