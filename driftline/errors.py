"""Every error driftline raises on purpose.

::

    DriftlineError
    ├── ConfigError            bad configuration; carries every problem with its YAML path
    ├── BrokerError            the embedded broker could not start or is missing
    ├── SourceError            a stream source failed (Kafka, file)
    │   └── BrokerUnavailable  the broker cannot be reached now; waited out up to ``kafka.max_outage``
    ├── StoreError             the database refused or is at the wrong schema
    │   └── StoreUnavailable   the database cannot be reached now; waited out up to ``store.max_outage``
    ├── ReferenceError_        a reference profile cannot be built or is missing
    ├── InputError             a file or sample given on the command line cannot be used (``init``)
    └── DeliveryError          a notification sink failed; ``retry_after`` when throttled
        ├── ThrottledError     the destination asked us to wait ``retry_after`` seconds
        └── DeadLettersUnavailable  the dead-letter topic did not take every bad record; retried

A record that cannot be decoded is not an exception: it becomes a
:class:`driftline.types.BadRecord` and goes to the dead-letter topic.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base of every driftline error."""


class ConfigError(DriftlineError):
    """The configuration is invalid; ``problems`` lists ``(yaml_path, message)``."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "configuration"):
        self.problems = problems
        self.source = source
        lines = [f"{path}: {msg}" if path else msg for path, msg in problems]
        super().__init__(f"{source}: {len(problems)} error(s)\n  " + "\n  ".join(lines))


class BrokerError(DriftlineError):
    """The embedded broker could not be found, started or reached."""


class SourceError(DriftlineError):
    """A stream source failed."""


class StoreError(DriftlineError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (connection refused or lost, locked, I/O error).

    The service pauses consumption and retries; nothing is committed past what is stored."""


class BrokerUnavailable(SourceError):
    """No Kafka broker answers; the service waits (up to ``kafka.max_outage``)."""


class ReferenceError_(DriftlineError):  # noqa: N801 - avoid shadowing the builtin
    """A reference profile could not be built."""


class InputError(DriftlineError):
    """Input named on the command line (a sample for ``driftline init``) is missing, empty or unusable."""


class DeliveryError(DriftlineError):
    """A sink could not deliver a notification; it will be retried."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(DeliveryError):
    """The destination throttled us (HTTP 429); wait ``retry_after`` seconds."""


class DeadLettersUnavailable(DeliveryError):
    """Some bad records are not yet in the dead-letter topic; they are kept and sent again."""
