"""Plain value types shared by every layer. No I/O, no third-party clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone

import numpy as np

#: Marks a categorical value of the wrong type (a list, a float, ...).
INVALID = "\x00invalid"
#: the longest event ``version`` (characters): it names store rows, alerts and segments' versions
MAX_VERSION = 100


@dataclass(frozen=True)
class NumericColumn:
    """One numeric feature over a batch: ``values`` is NaN where not ``valid``."""

    values: np.ndarray
    valid: np.ndarray
    missing: np.ndarray

    def take(self, sel) -> NumericColumn:
        return NumericColumn(self.values[sel], self.valid[sel], self.missing[sel])


@dataclass(frozen=True)
class CategoricalColumn:
    """One categorical feature: an object array of str, ``None`` (missing) or ``INVALID``.

    The columnar decoder also keeps its dictionary encoding, ``values == categories[codes]``
    (``None`` where a column was built otherwise), so a window counts values with one
    ``np.bincount`` instead of hashing every string."""

    values: np.ndarray
    codes: np.ndarray | None = None
    categories: np.ndarray | None = None

    def take(self, sel) -> CategoricalColumn:
        if self.codes is None:
            return CategoricalColumn(self.values[sel])
        return CategoricalColumn(self.values[sel], self.codes[sel], self.categories)


Column = NumericColumn | CategoricalColumn


@dataclass(frozen=True)
class Columns:
    """The decoded events of one model version, in arrival order."""

    ts: np.ndarray  # int64 epoch milliseconds
    features: dict[str, Column]
    #: fields of the records' features object that the model does not declare → which records had them
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    #: the events' ids as text (an object array), kept only for models with ``labels``
    ids: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.ts.size)

    def take(self, sel) -> Columns:
        return Columns(self.ts[sel], {k: c.take(sel) for k, c in self.features.items()},
                       {k: m[sel] for k, m in self.extra.items()}, None if self.ids is None else self.ids[sel])


@dataclass(frozen=True)
class LabelColumns:
    """The decoded label events of one model, in arrival order."""

    ids: np.ndarray  # object array of str: the predictions' ids
    ts: np.ndarray  # int64 epoch ms: when the label was known
    label: np.ndarray  # float64: the class (0/1) or the target
    version: np.ndarray  # object array: the version the label names, or None (informational)

    @property
    def n(self) -> int:
        return int(self.ts.size)

    def take(self, sel) -> LabelColumns:
        return LabelColumns(self.ids[sel], self.ts[sel], self.label[sel], self.version[sel])

    @staticmethod
    def concat(parts: list[LabelColumns]) -> LabelColumns:
        return LabelColumns(*(np.concatenate([getattr(p, a) for p in parts])
                              for a in ("ids", "ts", "label", "version")))


@dataclass(frozen=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be decoded or does not fit its model."""

    reason: str
    value: bytes | None
    position: SourcePosition
    model: str | None = None
    version: str | None = None


@dataclass
class Batch:
    """Raw record values from a source, and where the next read would start.

    ``position(i)`` says where record ``i`` came from; it is only asked for
    records that go to the dead-letter topic, so sources may compute it lazily.
    """

    values: list[bytes | None]
    position: Callable[[int], SourcePosition]
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: each record's ``(topic, partition)`` when the source has it at hand (scale-out splits by it)
    sources: list[tuple[str, int]] | None = None


@dataclass(frozen=True)
class Notification:
    """One message for one sink, stored in the outbox before it is sent."""

    key: str  # idempotency key: the same alert state change never pages twice
    sink: str  # "console", "slack", "alerts_topic", "retrain_topic", "jsonl"
    kind: str  # "alert", "incident" or "trigger"
    payload: dict
    #: not delivered before this wall-clock time (epoch seconds; group_wait, group_interval)
    not_before: float = 0.0


@dataclass(frozen=True)
class DriftResult:
    """One test's verdict on one window: every detector gives this (see ``detectors/base.py``)."""

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_ref: int
    n_cur: int
    level: str = "ok"  # ok | warning | drift
    warning_threshold: float | None = None
    reason: str = ""
    mode: str = "fixed"  # fixed | calibrated
    effect: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        # not dataclasses.asdict: its recursive deep copy was a third of a window's test time
        return {f: getattr(self, f) for f in _RESULT_FIELDS} | {"effect": dict(self.effect)}


_RESULT_FIELDS = tuple(f.name for f in fields(DriftResult) if f.name != "effect")


@dataclass(frozen=True)
class Receipt:
    """What a sink says after it accepted a notification, stored with it in the outbox:
    ``detail`` holds Slack's ``channel`` and message ``ts`` (to thread and update), a
    webhook's HTTP ``status``, a topic's partition and offset."""

    status: str = "sent"
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryContext:
    """What the dispatcher tells a sink about one delivery (see docs/alerting.md).

    ``attempted``: an earlier attempt may have reached the sink (the process died, or the
    request timed out, after sending), so a sink that can look for its own key first does.
    ``thread``: the receipt detail of the incident's ``opened`` notification to the same
    sink, once delivered (Slack: ``channel`` and ``ts``); ``None`` otherwise.
    """

    attempted: bool = False
    thread: dict | None = None


ALERT_STATUSES = ("ok", "pending", "firing")


@dataclass(frozen=True)
class AlertState:
    """Where one alert (one rule on one model version) stands: ok → pending → firing."""

    fingerprint: str
    model: str
    version: str
    rule: str
    status: str = "ok"  # ok | pending | firing
    breaches: int = 0
    clears: int = 0
    since: str | None = None
    severity: str = "warning"
    last_event: dict | None = None
    #: a performance rule's newest window observed (its window key): revisions of older windows
    #: (their late labels) are no observation, so they cannot resolve what newer windows fire
    judged: int | None = None
    #: a concept-drift rule's newest detection observed (its ``at``: labels its version's detectors
    #: had taken): a finding counts once, not at every revision of its window
    seen: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AlertState:
        """The inverse of :meth:`to_dict`; a dict of another shape raises ``ValueError``.

        >>> s = AlertState("f1", "fraud", "v3", "feature_drift", "firing", breaches=2)
        >>> AlertState.from_dict(s.to_dict()) == s
        True
        >>> AlertState.from_dict({"fingerprint": "f1"})
        Traceback (most recent call last):
        ...
        ValueError: alert state: missing model, rule, version
        """
        if not isinstance(data, dict):
            raise ValueError(f"alert state: expected a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        if unknown := sorted(set(data) - names):
            raise ValueError(f"alert state: unknown {', '.join(unknown)}")
        if missing := sorted(required - set(data)):
            raise ValueError(f"alert state: missing {', '.join(missing)}")
        if data.get("status", "ok") not in ALERT_STATUSES:
            raise ValueError(f"alert state: status {data['status']!r} is not one of {', '.join(ALERT_STATUSES)}")
        return cls(**data)


@dataclass
class CommitUnit:
    """Everything one database transaction writes (the store's contract)."""

    windows: list[dict] = field(default_factory=list)
    alert_states: list[AlertState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    references: list = field(default_factory=list)  # ReferenceProfile: ``.model`` and ``.to_dict()``
    triggers: list[dict] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)  # Incident.to_state(), newest last
    #: revised per-window performance (the ``performance`` JSON line, plus ``window_key``)
    performance: list[dict] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: the state keys changed since the last checkpoint → their encoded state (``None``: delete the key)
    states: dict[StateKey, bytes | None] = field(default_factory=dict)
    #: the group's pickled checkpoint of an older release was converted: delete it in this transaction
    drop_legacy: bool = False
    #: scale-out: partial windows closed by their partition, and each partition's mark (store/partials.py)
    partials: list[dict] = field(default_factory=list)
    marks: dict[tuple[str, int], dict] = field(default_factory=dict)
    #: scale-out: each partition's changed performance accumulators (``data`` ``None``: finished)
    perf_partials: list[dict] = field(default_factory=list)

    def add(self, routed: Routed) -> None:
        """Take what alerting returned for one window."""
        self.alert_states.extend(routed.alert_states)
        self.notifications.extend(routed.notifications)
        self.triggers.extend(routed.triggers)
        self.incidents.extend(routed.incidents)


#: ``(model, key, source)``: ``key`` is a version, or ``""`` for the model's own state; ``source`` is
#: the topic-partition the state came from, ``"*"`` while one process serves every partition
StateKey = tuple[str, str, str]


@dataclass
class Routed:
    """What alerting returns for one window summary: its share of the :class:`CommitUnit`."""

    alert_states: list[AlertState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    triggers: list[dict] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)


def iso(ms: int) -> str:
    """Epoch milliseconds → ``2026-11-24T12:00:00.123Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ms(text: str) -> int:
    """ISO-8601 → epoch milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)
