"""driftline: watch machine-learning models in production from their Kafka events."""

__version__ = "0.1.0"
