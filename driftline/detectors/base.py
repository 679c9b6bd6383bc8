"""The one interface every detector has, and the context a window is tested in.

A detector is built from the reference (``build``), learns from a window's columns
(``update``), combines with another of its kind (``merge``), gives a typed result
(``result``: a :class:`~driftline.types.DriftResult`, or one per feature), and says
what it must remember as data (``to_state`` / ``from_state``, see
:mod:`driftline.state`). Two scopes, one registry each (``detectors/registry.py``):

- **window** tests hold one window's statistics; they are mergeable, so windows
  computed on different partitions combine (PCA reconstruction, domain classifier);
- **sequence** tests follow a model version across windows or events; they are
  sequential, and ``merge`` raises (the trend of pooled windows, ADWIN).

The per-feature drift tests are the catalogue :data:`driftline.detectors.drift.METHODS`
over each feature's mergeable statistics (``detectors/stats.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from driftline.types import Columns


@dataclass(frozen=True)
class Context:
    """What a test is judged by: the model's per-test false-alarm budget (``alpha``, ``None``
    in fixed mode), whether the window has enough events to be tested, and the window's
    per-feature summaries so far (a sequence test reads them)."""

    profile: Any  # ReferenceProfile
    alpha: float | None
    warn_alpha: float | None
    run_tests: bool = True
    features: dict | None = None


class Detector(Protocol):
    #: the window summary's key for the result (a feature's ``tests`` for per-feature ones)
    name: str

    @classmethod
    def build(cls, profile, spec) -> Detector | None:
        """From the reference profile and the model's spec; ``None`` when it does not apply."""

    def update(self, cols: Columns) -> None: ...

    def merge(self, other: Detector) -> None: ...

    def result(self, ctx: Context): ...

    def to_state(self) -> dict: ...

    @classmethod
    def from_state(cls, state: dict, profile, spec) -> Detector: ...


class NotMergeable(TypeError):
    """A sequence test follows one ordered stream; two of them cannot be combined."""
