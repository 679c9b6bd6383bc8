"""What one batch of labels produced: the joined pairs, column by column, and why the rest did not join."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Joined:
    """Labels that met their prediction, in label-batch order, and counts of those that did not.

    ``index`` is each joined label's position in the batch; ``version``, ``window``,
    ``pred``, ``segments`` and ``ts`` (event time) are its prediction's; ``delay`` is
    ``label_ts - ts`` in ms. A label that did not join is counted once, by reason:
    ``orphan`` (no prediction seen, or one forgotten), ``expired`` (its prediction
    expired or was evicted), ``duplicate`` (its prediction was labelled already, or the
    id came earlier in this batch), ``sampled_out`` (its id hash is outside the sample).
    """

    index: np.ndarray
    hash: np.ndarray
    version: np.ndarray
    window: np.ndarray
    pred: np.ndarray
    segments: dict[str, np.ndarray]
    ts: np.ndarray
    label: np.ndarray
    label_ts: np.ndarray
    orphan: int = 0
    expired: int = 0
    duplicate: int = 0
    sampled_out: int = 0
    #: positions in the batch of the ``orphan`` labels (for a caller that holds them a while)
    orphans: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n(self) -> int:
        return int(self.index.size)

    @property
    def delay(self) -> np.ndarray:
        return self.label_ts - self.ts

    @property
    def counts(self) -> dict[str, int]:
        return {"joined": self.n, "orphan": self.orphan, "expired": self.expired,
                "duplicate": self.duplicate, "sampled_out": self.sampled_out}
