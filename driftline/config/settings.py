"""The whole configuration as one frozen pydantic model.

Unknown keys are errors, secrets are ``SecretStr``. Durations accept ``30s``,
``5m``, ``1h``, ``2d`` or a number of seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> float:
    """Seconds from ``"5m"``, ``"30s"``, ``"1h"``, ``"250ms"`` or a number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5m', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like '30s', '5m' or '1h', got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _number_or_duration(value: object) -> object:
    """A bound of a ``metric`` rule: a number, or a duration for the label-delay metrics (``3d``)."""
    return parse_duration(value) if isinstance(value, str) else value
FeatureKind = Literal["numeric", "categorical", "boolean"]
DEFAULT_TESTS = {"numeric": ("meanvar", "ks"), "categorical": ("chisquare",)}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathError(ValueError):
    """A problem found by a model's validator at a path below it (``loc``, e.g.
    ``("labels", "segments", 1)``): the loader adds the path to the model's own."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


class DriftTest(_Frozen):
    """A drift test, by its name in ``driftline.detectors.drift.METHODS``.

    Without ``threshold`` the test is calibrated to the model's ``false_alarms``.
    With one it is fixed: for ``ks``, ``chisquare``, ``meanvar``, ``z`` and
    ``fisher`` the threshold is a p-value (drift when below), for the distances a
    statistic (drift when at or above); ``warning`` is the same kind of number,
    nearer to normal.
    """

    method: str
    threshold: float | None = Field(default=None, gt=0)
    warning: float | None = Field(default=None, gt=0)


def _tests_shorthand(value: object) -> object:
    """``ks`` / ``{method: ks}`` / ``[ks, {method: psi, threshold: 0.2}]`` → a list."""
    items = value if isinstance(value, list) else [value]
    return [{"method": v} if isinstance(v, str) else v for v in items]


Tests = Annotated[list[DriftTest], BeforeValidator(_tests_shorthand), Field(min_length=1)]


class FeatureSpec(_Frozen):
    kind: FeatureKind
    drift: Tests | None = None
    top_k: int = Field(default=20, ge=1, le=1000)


def _feature_shorthand(value: object) -> object:
    return {"kind": value} if isinstance(value, str) else value


def _rate(value: object) -> object:
    from driftline.detectors.calibrate import parse_rate

    return None if value is None else parse_rate(value)


class FieldMapping(_Frozen):
    """Where each part of an event lives, as dotted JSON paths.

    ``id`` is required in every event unless set to ``null``: a model whose
    events carry no id says so (``fields: {id: null}``).
    """

    model: str = "model"
    version: str = "version"
    id: str | None = "id"
    ts: str = "ts"
    features: str = "features"
    prediction: str = "prediction"
    #: a label event's label (a model with ``labels``): a record with it and without ``features`` is one
    label: str = "label"


class WindowSpec(_Frozen):
    """Tumbling windows by ``size`` (events) or ``duration`` (event time).

    An event stamped more than ``max_future`` ahead of the wall clock is a bad
    record (a clock or unit error would otherwise close every time window at once);
    ``null`` turns the check off.
    """

    size: int | None = Field(default=None, ge=10)
    duration: Duration | None = Field(default=None, gt=0)
    allowed_lateness: Duration = 0.0
    idle_close: Duration | None = Field(default=None, gt=0)
    max_future: Duration | None = Field(default=86400.0, gt=0)
    min_count: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> WindowSpec:
        if (self.size is None) == (self.duration is None):
            raise ValueError("set exactly one of 'size' (events) or 'duration' (e.g. '5m')")
        if self.idle_close is not None and self.duration is None:
            raise ValueError("'idle_close' applies to time windows ('duration') only")
        return self


class ReferenceSpec(_Frozen):
    path: str | None = None
    first_n: int | None = Field(default=None, ge=100)
    bins: int = Field(default=100, ge=10, le=1000)
    #: events a segment (``segments``) collects for its own reference when the file has too few
    #: of its rows or there is no file; default ``first_n``, else 1,000
    segment_first_n: int | None = Field(default=None, ge=100)

    @model_validator(mode="after")
    def _one_kind(self) -> ReferenceSpec:
        if (self.path is None) == (self.first_n is None):
            raise ValueError("set exactly one of 'path' (CSV, JSONL or Parquet) or 'first_n'")
        return self


class VolumeSpec(_Frozen):
    """Events per window against the reference's rate: fires below ``below`` × or above ``above`` ×."""

    below: float | None = Field(default=None, gt=0, le=1)
    above: float | None = Field(default=None, gt=1)

    @model_validator(mode="after")
    def _some_bound(self) -> VolumeSpec:
        if self.below is None and self.above is None:
            raise ValueError("set 'below' (e.g. 0.5) or 'above' (e.g. 2.0), or both")
        return self


class RuleSpec(_Frozen):
    """Turns windows into an alert (see docs/alerting.md).

    Exactly one condition: ``share`` (fraction of monitored subjects drifted), ``count``,
    ``feature`` (one named feature, ``prediction``, ``multivariate`` or ``domain_classifier``),
    ``quality: true`` (any data-quality finding), ``no_data`` (no event for that long, by
    event time and by wall clock), ``volume`` (events per window against the reference's
    rate), ``dead_letters`` (share of the window's records that were bad), ``metric`` or
    ``concept_drift: true`` (a realized-performance revision holds a concept-drift detection).
    """

    name: str = "feature_drift"
    share: float | None = Field(default=None, gt=0, le=1)
    count: int | None = Field(default=None, ge=1)
    feature: str | None = None
    quality: bool = False
    no_data: Duration | None = Field(default=None, gt=0)
    volume: VolumeSpec | None = None
    dead_letters: float | None = Field(default=None, gt=0, le=1)
    #: a realized-performance metric (needs ``labels``), breached ``below`` or ``above`` a value
    metric: str | None = None
    below: Annotated[float | None, BeforeValidator(_number_or_duration)] = None
    above: Annotated[float | None, BeforeValidator(_number_or_duration)] = None
    #: worse than the labelled reference's value of ``metric``: ``significant`` (by more than
    #: ``labels.z`` standard errors of both) or by more than a number; ``drop: x`` is short for a number
    drop_from_reference: Literal["significant"] | Annotated[float, Field(gt=0)] | None = None
    drop: float | None = Field(default=None, gt=0)
    #: worse than the model's previous version (the one first seen before this one: the version
    #: it replaced, or the champion beside a challenger), as ``drop_from_reference``: the rollback rule
    drop_from_previous: Literal["significant"] | Annotated[float, Field(gt=0)] | None = None
    #: ``label_coverage`` only: judge a window once it is this old (by the newest event or label time)
    after: Duration | None = Field(default=None, gt=0)
    #: a concept-drift detection (worse) on the error stream of the labels (needs ``labels``)
    concept_drift: bool = False
    retrain: bool = True  # whether firing requests retraining (data-quality problems are fixed, not retrained)
    severity: Literal["info", "warning", "critical"] = "warning"
    for_windows: int = Field(default=1, ge=1)
    #: windows it stays firing after the condition stops, before ``resolve_after`` starts counting
    keep_firing_for: int = Field(default=0, ge=0)
    resolve_after: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _one_condition(self) -> RuleSpec:
        given = [x for x in (self.share, self.count, self.feature, self.no_data, self.volume,
                             self.dead_letters, self.metric) if x is not None] \
            + [1] * self.quality + [1] * self.concept_drift
        if len(given) != 1:
            raise ValueError("set exactly one of 'share', 'count', 'feature', 'quality: true', "
                             "'no_data', 'volume', 'dead_letters', 'metric' or 'concept_drift: true'")
        drops = {"drop", "drop_from_reference", "drop_from_previous"}
        bounds = [k for k in ("below", "above", *sorted(drops)) if getattr(self, k) is not None]
        if (self.metric is None) != (not bounds):
            raise ValueError("'below'/'above'/'drop'/'drop_from_reference'/'drop_from_previous' go with 'metric' "
                             "(e.g. metric: roc_auc, below: 0.75), and 'metric' needs one of them")
        if len(set(bounds) & drops) > 1 or (set(bounds) & drops and set(bounds) & {"below", "above"}):
            raise ValueError("a 'metric' rule has 'below'/'above', or one of 'drop'/'drop_from_reference'/"
                             "'drop_from_previous'")
        if self.after is not None and self.metric != "label_coverage":
            raise ValueError("'after' goes with 'metric: label_coverage' (judge a window once it is that old)")
        if self.metric in LABEL_METRICS and set(bounds) & drops:
            raise ValueError(f"metric {self.metric!r} has no reference value: use 'below' or 'above'")
        return self

    @property
    def reference_drop(self) -> str | float | None:
        """``significant``, a number, or ``None`` (a fixed bound)."""
        return self.drop if self.drop is not None else self.drop_from_reference

    @property
    def level(self) -> str:
        """``feature`` for a rule on one feature; ``model`` for the rest (they inhibit feature alerts)."""
        return "feature" if self.feature is not None else "model"


class RetrainSpec(_Frozen):
    """Which alerts request retraining: ``rules`` (default: every rule with ``retrain: true``)
    once one has breached ``min_windows`` windows of an incident; one trigger per incident,
    at most one per ``cooldown`` of event time per model version."""

    enabled: bool = True
    cooldown: Duration = 3600.0
    rules: list[str] | None = None
    min_windows: int = Field(default=1, ge=1)


class DomainClassifierSpec(_Frozen):
    """The domain-classifier test (off by default: it keeps a sample of raw rows at rest)."""

    enabled: bool = False
    sample: int = Field(default=1000, ge=100, le=20_000)


#: what a ``metric`` rule may name, per ``labels.task`` (docs/performance.md)
PERFORMANCE_METRICS = {
    "binary": ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "average_precision",
               "log_loss", "brier", "ece", "base_rate", "predicted_positive_rate"),
    "regression": ("mae", "mse", "rmse", "bias", "mape", "r2"),
}


#: metrics of the labels themselves, for any task: the labelled share, the label delay (seconds)
LABEL_METRICS = ("label_coverage", "label_delay_p50", "label_delay_p90", "label_delay_max")


def metric_names(task: str) -> tuple[str, ...]:
    """What a ``metric`` rule may name for ``task``: realized metrics, ``estimated_`` ones
    (binary; the estimate before labels), and :data:`LABEL_METRICS`."""
    est = tuple(f"estimated_{m}" for m in ESTIMATED_METRICS) if task == "binary" else ()
    return PERFORMANCE_METRICS[task] + est + LABEL_METRICS


#: what the estimate of a binary classifier reports (driftline.detectors.performance.EstimatedStats)
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "log_loss", "brier",
                     "base_rate", "predicted_positive_rate")


class LabelsSpec(_Frozen):
    """Realized performance from label events (see docs/labels.md, "In the pipeline").

    ``task``: ``binary`` (the prediction is a score P(positive), positive when
    ``>= threshold``) or ``regression``. A prediction waits at most ``max_delay``
    (event time) for its label, at most ``max_pending`` of them per model; ``sample``
    keeps that share of the ids (by hash). A window's performance is reported
    ``enough: false`` while less than ``min_labelled`` of its predictions are labelled.
    ``segments``: categorical (or boolean) features of the model whose values each get
    their own performance line, at most ``max_segments`` values per feature (the first
    seen; the rest in ``(other)``; docs/labels.md, "Segments").
    """

    task: Literal["binary", "regression"] = "binary"
    threshold: float = Field(default=0.5, ge=0, le=1)
    max_delay: Duration = Field(default=30 * 86400.0, gt=0)
    max_pending: int = Field(default=10_000_000, ge=1)
    sample: float = Field(default=1.0, gt=0, le=1)
    min_labelled: float = Field(default=0.3, ge=0, le=1)
    segments: list[str] = Field(default_factory=list)
    max_segments: int = Field(default=10, ge=1, le=1000)
    #: the reference file's column of labels: with it, each window's performance is compared
    #: with the reference's, and a binary model's is estimated before its labels come
    reference_label: str = Field(default="label", min_length=1)
    #: how many standard errors worse than the reference a metric must be to be ``significant``
    z: float = Field(default=3.0, gt=0)
    #: a label read before its prediction (two topics are not read in a fixed order) is held
    #: this long (event time) for it, at most ``max_early`` of them; ``0`` holds none
    early_for: Duration = Field(default=300.0, ge=0)
    max_early: int = Field(default=100_000, ge=1)


class ModelSpec(_Frozen):
    name: str = Field(min_length=1)
    fields: FieldMapping = FieldMapping()
    features: dict[str, Annotated[FeatureSpec, BeforeValidator(_feature_shorthand)]]
    prediction: Annotated[FeatureSpec, BeforeValidator(_feature_shorthand)] | None = None
    window: WindowSpec
    reference: ReferenceSpec
    false_alarms: Annotated[float | None, BeforeValidator(_rate)] = 0.001
    multivariate: bool = True
    trend_windows: list[Annotated[int, Field(ge=2, le=1000)]] = Field(default_factory=lambda: [4, 16])
    domain_classifier: DomainClassifierSpec = DomainClassifierSpec()
    drift: dict[str, Tests] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=lambda: [
        RuleSpec(count=1), RuleSpec(name="data_quality", quality=True, retrain=False)])
    retrain: RetrainSpec = RetrainSpec()
    #: realized performance from label events; off when absent
    labels: LabelsSpec | None = None
    #: categorical (or boolean) features whose values each get their own windows, drift tests and
    #: rules (docs/segments.md); at most ``max_segments`` values per feature (the first seen, the
    #: rest in ``(other)``). With ``labels`` and no ``labels.segments``, performance is segmented too.
    segments: list[str] = Field(default_factory=list)
    max_segments: int = Field(default=10, ge=1, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _labels_segments(cls, data: object) -> object:
        """``labels.segments`` defaults to the model's ``segments`` (and ``max_segments``)."""
        if not isinstance(data, dict) or not data.get("segments") or not isinstance(data.get("labels"), dict):
            return data
        labels = data["labels"]
        if "segments" in labels:
            return data
        extra = {"segments": data["segments"]} | ({"max_segments": data["max_segments"]}
                                                  if "max_segments" in data and "max_segments" not in labels else {})
        return {**data, "labels": {**labels, **extra}}

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: dict) -> dict:
        if not value:
            raise ValueError("declare at least one feature")
        return value

    @model_validator(mode="after")
    def _check_methods(self) -> ModelSpec:
        for key in self.drift:
            if key not in ("numeric", "categorical"):
                raise ValueError(f"drift: unknown kind {key!r} (expected numeric, categorical)")
        from driftline.detectors.drift import lookup

        for name, spec in self.all_features().items():
            for test in self.tests_for(spec):
                try:
                    lookup(test.method, spec.kind)
                except ValueError as exc:
                    raise ValueError(f"feature {name!r}: {exc}") from None
                if test.threshold is None and self.false_alarms is None:
                    raise ValueError(f"feature {name!r}: test {test.method!r} needs a 'threshold' "
                                     "when 'false_alarms' is off (null)")
        for rule in self.rules:
            if rule.feature is not None and rule.feature not in {*self.all_features(), "multivariate",
                                                                 "domain_classifier"}:
                raise ValueError(
                    f"rule {rule.name!r}: unknown feature {rule.feature!r} "
                    f"(expected one of {', '.join(self.all_features())})"
                )
            if rule.volume is not None and self.window.duration is None:
                raise ValueError(f"rule {rule.name!r}: 'volume' needs time windows ('window.duration'): "
                                 "a count window always holds the same number of events")
        self._check_segments(self.segments, ("segments",))
        self._check_labels()
        names = [r.name for r in self.rules]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"rules: the name {dup[0]!r} is used twice (an alert is named by its rule)")
        if unknown := sorted(set(self.retrain.rules or ()) - set(names)):
            raise ValueError(f"retrain.rules: unknown rule {unknown[0]!r} (the model's rules: {', '.join(names)})")
        return self

    def _check_labels(self) -> None:
        metric_rules = [r for r in self.rules if r.metric is not None]
        if metric_rules and self.labels is None:
            raise ValueError(f"rule {metric_rules[0].name!r}: a 'metric' rule needs 'labels'")
        if self.labels is None and (cd := [r for r in self.rules if r.concept_drift]):
            raise ValueError(f"rule {cd[0].name!r}: a 'concept_drift' rule needs 'labels'")
        for r in metric_rules:
            known = metric_names(self.labels.task)
            if r.metric not in known:
                raise ValueError(f"rule {r.name!r}: unknown metric {r.metric!r} for task {self.labels.task!r} "
                                 f"(expected one of {', '.join(known)})")
        if self.labels is None:
            return
        if self.fields.id is None:
            raise ValueError("labels: a label joins its prediction by id; map 'fields.id' (it is null)")
        if self.prediction is None or self.prediction.kind != "numeric":
            raise ValueError("labels: needs a numeric 'prediction' (a score for 'binary', "
                             "the predicted value for 'regression')")
        for i, r in enumerate(self.rules):
            if r.after is not None and r.after > self.labels.max_delay:
                raise ValueError(f"rules[{i}].after ({r.after / 86400:g}d, rule {r.name!r}) is past labels.max_delay "
                                 f"({self.labels.max_delay / 86400:g}d), when a window is forgotten")
        self._check_segments(self.labels.segments, ("labels", "segments"))

    def _check_segments(self, names: list[str], at: tuple) -> None:
        from driftline.labels.segments import MAX_VALUE
        from driftline.types import MAX_VERSION
        usable = [k for k, f in self.features.items() if f.kind != "numeric"]
        for i, name in enumerate(names):
            room = 200 - 3 - MAX_VALUE - max(MAX_VERSION, len(self.name))  # v3[name=value] in a 200-character column
            if at == ("segments",) and name in usable and len(name) > room:
                raise PathError((*at, i), f"{name!r} is {len(name)} characters long; a segment feature's name is "
                                          f"at most {room} here (its segments' versions, {self.name}[{name}=…], "
                                          "must fit the store's 200)")
            if name not in usable:
                raise PathError((*at, i), f"{name!r} is not a categorical feature of model {self.name} (its "
                                          f"categorical and boolean features: {', '.join(usable) or 'none'})")
            if name in names[:i]:
                raise PathError((*at, i), f"{name!r} is listed twice")

    def trend_features(self) -> list[str]:
        """The features with a trend test: numeric ones, when thresholds are calibrated."""
        if not self.trend_windows or self.false_alarms is None:
            return []
        return [k for k, f in self.all_features().items() if f.kind == "numeric"]

    def all_features(self) -> dict[str, FeatureSpec]:
        """Monitored features, with the prediction under the name ``prediction``."""
        out = dict(self.features)
        if self.prediction is not None:
            out["prediction"] = self.prediction
        return out

    def tests_for(self, spec: FeatureSpec) -> list[DriftTest]:
        """The feature's own tests, else its kind's, else the defaults."""
        if spec.drift is not None:
            return spec.drift
        kind = "numeric" if spec.kind == "numeric" else "categorical"
        return self.drift.get(kind) or [DriftTest(method=m) for m in DEFAULT_TESTS[kind]]

    def test_source(self, name: str, spec: FeatureSpec) -> str:
        """Why a feature has its tests (recorded in every result)."""
        kind = "numeric" if spec.kind == "numeric" else "categorical"
        if spec.drift is not None:
            return f"configured for feature {name!r}"
        return f"configured for {kind} features" if kind in self.drift else f"default for {kind} features"


class KafkaSpec(_Frozen):
    bootstrap_servers: str = "localhost:9092"
    group_id: str = "driftline"
    topics: list[str] = Field(default_factory=lambda: ["model-events"], min_length=1)
    #: topics of label events, consumed beside ``topics`` (labels may also come on those); with
    #: ``scale_out``, ``label_topics[i]`` is co-partitioned with ``topics[i]`` (same partition count,
    #: each label on its prediction's partition number)
    label_topics: list[str] = Field(default_factory=list)
    dead_letter_topic: str = "driftline-dead-letter"
    batch_size: int = Field(default=10000, ge=1)
    poll_timeout: Duration = 0.5
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    client: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: static group membership: ``auto`` is ``<group_id>-<hostname>``; ``null`` turns it off
    group_instance_id: str | None = "auto"
    #: how long an unreachable broker (or dead-letter topic) is waited out before the service exits
    max_outage: Duration = Field(default=900.0, gt=0)
    #: several `driftline run` processes share the group (docs/architecture.md "Scaling out"); needs PostgreSQL
    scale_out: bool = False
    #: scale-out: a partition that gave no record for this long no longer holds windows open
    partition_idle: Duration = Field(default=30.0, gt=0)

    def instance_id(self, hostname: str) -> str | None:
        if self.group_instance_id == "auto":
            return f"{self.group_id}-{hostname}"
        return self.group_instance_id or None


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class StoreSpec(_Frozen):
    url: str = "sqlite:///.driftline/driftline.db"
    #: how long an unreachable database is waited out (consumption paused) before the service exits
    max_outage: Duration = Field(default=900.0, gt=0)
    #: while input flows, a checkpoint (open windows' state, offsets, partials) at least this often;
    #: a closed window is stored at once either way. Longer: fewer, larger transactions (scale-out's
    #: per-partition state is the weight), more to read again after a crash
    checkpoint_every: Duration = Field(default=5.0, gt=0, le=300)
    #: signs every stored state (HMAC-SHA256): set it where others can write to the database, so a
    #: state row written by anyone without it is refused before any of it is read
    state_secret: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None


class SlackSpec(_Frozen):
    """Slack is off unless a bot token (with a channel) or a webhook URL is set;
    an empty value, e.g. an unset ``${SLACK_BOT_TOKEN:-}``, counts as not set."""

    token: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    channel: str | None = None
    webhook_url: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    base_url: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SlackSpec:
        if self.token is not None and not self.channel:
            raise ValueError("a bot token needs a 'channel' to post to")
        return self

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.webhook_url is not None


#: the path each preset's API posts to (the URL's path must end like this), and how to say it
_PRESET_PATHS = {
    "github": (r"/repos/[^/]+/[^/]+/dispatches", "/repos/OWNER/REPO/dispatches"),
    "github_workflow": (r"/repos/[^/]+/[^/]+/actions/workflows/[^/]+/dispatches",
                        "/repos/OWNER/REPO/actions/workflows/WORKFLOW/dispatches"),
    "airflow": (r"/api/v1/dags/[^/]+/dagRuns", "/api/v1/dags/DAG_ID/dagRuns (Airflow 2)"),
    "airflow3": (r"/api/v2/dags/[^/]+/dagRuns", "/api/v2/dags/DAG_ID/dagRuns (Airflow 3)"),
}


class WebhookSpec(_Frozen):
    """An HTTP endpoint that receives retraining triggers (see ``alerts/webhook.py``): the
    CloudEvent (``cloudevents``), a GitHub ``repository_dispatch`` (``github``) or
    ``workflow_dispatch`` on ``ref`` (``github_workflow``), an Airflow 2 or 3 DAG run
    (``airflow``, ``airflow3``). ``token`` is sent as ``Authorization: Bearer``."""

    url: SecretStr
    preset: Literal["cloudevents", "github", "github_workflow", "airflow", "airflow3"] = "cloudevents"
    secret: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    token: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    event_type: str = "driftline-retrain"
    #: the branch or tag a ``github_workflow`` dispatch runs the workflow on
    ref: str = Field(default="main", min_length=1)
    legacy_signature: bool = False  # also send X-Driftline-Signature-Legacy: sha256=HMAC(secret, body)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not re.match(r"^https?://[^/?#\s]+", value.get_secret_value()):
            raise ValueError("expected an http:// or https:// URL")  # never echo it: it may hold a token
        return value

    @model_validator(mode="after")
    def _preset_path(self) -> WebhookSpec:
        """A preset's URL ends with its API's path (an Airflow 2 URL with ``airflow3`` would 404)."""
        if self.preset not in _PRESET_PATHS:
            return self
        pattern, shown = _PRESET_PATHS[self.preset]
        path = re.sub(r"^https?://[^/?#]+", "", self.url.get_secret_value()).split("?")[0].split("#")[0]
        if not re.search(pattern + r"/?$", path):  # never echo the URL: it may hold a token
            raise ValueError(f"preset {self.preset!r} posts to {shown}: the url's path does not end like that")
        return self


class PagerDutySpec(_Frozen):
    """Incidents to PagerDuty's Events API v2 (see ``alerts/pagerduty.py``). ``routing_key`` (the
    service integration's key) must be given; an empty value, e.g. an unset
    ``${PAGERDUTY_ROUTING_KEY:-}``, turns PagerDuty off. ``url``: the EU service is
    ``https://events.eu.pagerduty.com``. ``source``: default ``driftline/<model>/<version>``."""

    routing_key: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)]
    url: str = "https://events.pagerduty.com"
    source: str | None = None
    timeout: Duration = Field(default=10.0, gt=0)

    @field_validator("routing_key")
    @classmethod
    def _key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) != 32:
            raise ValueError("expected the 32-character integration key of an Events API v2 integration")  # never echo it
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/?#\s]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @property
    def enabled(self) -> bool:
        return self.routing_key is not None


class AlertmanagerSpec(_Frozen):
    """Incidents to a Prometheus Alertmanager's API v2 (see ``alerts/alertmanager.py``): firing
    alerts are re-sent every ``resend_interval`` and end 4 × that later unless re-sent. Optional
    ``token`` (bearer) or ``username`` and ``password`` (basic auth), never both."""

    url: str
    resend_interval: Duration = Field(default=60.0, gt=0)
    token: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    username: str | None = None
    password: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    timeout: Duration = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/?#\s]+", value):
            raise ValueError("expected an http:// or https:// URL")  # not echoed: it may hold a password
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> AlertmanagerSpec:
        if self.token is not None and (self.username or self.password is not None):
            raise ValueError("set a bearer 'token' or 'username' and 'password', not both")
        if bool(self.username) != (self.password is not None):
            raise ValueError("basic auth needs both 'username' and 'password'")
        return self


class AlertsSpec(_Frozen):
    """Where alerts and triggers go. A notification is retried (backoff, ``Retry-After``)
    until ``delivery_deadline`` after it was created, then given up."""

    console: bool = True
    topic: str | None = "driftline-alerts"
    retrain_topic: str | None = "driftline-retrain"
    slack: SlackSpec = SlackSpec()
    retrain_webhooks: list[WebhookSpec] = Field(default_factory=list)
    delivery_deadline: Duration = Field(default=86400.0, gt=0)
    #: incidents (docs/alerting.md): alerts grouped by these labels; timing as in Alertmanager
    group_by: list[Literal["model", "version", "rule", "subject"]] = Field(
        default_factory=lambda: ["model", "version"])
    group_wait: Duration = Field(default=30.0, ge=0)
    group_interval: Duration = Field(default=300.0, ge=0)
    repeat_interval: Duration = Field(default=14400.0, gt=0)
    #: the dashboard's address as on-call staff reach it; incident messages link to its model page
    dashboard_url: str | None = None
    pagerduty: PagerDutySpec | None = None
    alertmanager: AlertmanagerSpec | None = None

    @field_validator("group_by")
    @classmethod
    def _by_model(cls, value: list[str]) -> list[str]:
        if "model" not in value:
            raise ValueError("must include 'model'")
        return value


class MetricsSpec(_Frozen):
    """Prometheus ``/metrics``; off unless a port is set."""

    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "0.0.0.0"


class HttpSpec(_Frozen):
    """The read-only HTTP API, dashboard, ``/healthz``, ``/readyz`` and ``/metrics``
    (``driftline ui`` always; ``run`` when ``port`` is set). Bound to localhost unless
    ``host`` says otherwise; any other host without ``auth_token`` is logged as open."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    auth_token: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    #: ``Host`` header values answered besides the loopback names (bound to localhost: others
    #: get 400, against DNS rebinding); bound elsewhere and empty, any host is answered
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("auth_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")  # never echo it
        return value

    @property
    def local(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")


class Settings(_Frozen):
    kafka: KafkaSpec = KafkaSpec()
    store: StoreSpec = StoreSpec()
    alerts: AlertsSpec = AlertsSpec()
    metrics: MetricsSpec = MetricsSpec()
    http: HttpSpec = HttpSpec()
    models: list[ModelSpec] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        names = [m.name for m in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _scale_out(self) -> Settings:
        if self.kafka.scale_out:
            _check_scale_out(self)
        return self

    def model(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)


def _check_scale_out(settings: Settings) -> None:
    """Raise :class:`PathError` at the first setting scale-out mode cannot serve (driftline/scale/limits.py)."""
    url = settings.store.url
    if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise PathError(("store", "url"), "kafka.scale_out needs PostgreSQL (several processes share its "
                                          f"state and a lock per model); got {_scheme(url)}")
    k = settings.kafka
    if k.label_topics and any(m.labels is not None for m in settings.models):
        if len(k.label_topics) != len(k.topics) or set(k.label_topics) & set(k.topics):
            raise PathError(("kafka", "label_topics"),
                            "kafka.scale_out joins a label in the process that owns its prediction's partition, "
                            "so each label topic is paired with the event topic at its position (kafka.topics[i] "
                            "with kafka.label_topics[i]: partition p of one with partition p of the other); got "
                            f"{len(k.label_topics)} label topic(s) for {len(k.topics)} event topic(s)"
                            + (" and a topic in both lists" if set(k.label_topics) & set(k.topics) else "")
                            + ". Or produce the labels to the event topics with the key of their prediction, and "
                            "drop kafka.label_topics")
    for i, spec in enumerate(settings.models):
        if spec.window.size is not None:
            raise PathError(("models", i, "window", "size"),
                            f"model {spec.name}: kafka.scale_out merges time windows only; "
                            "use 'window.duration' (count windows cannot be merged across partitions)")
        if spec.segments and spec.reference.segment_first_n is not None:
            raise PathError(("models", i, "reference", "segment_first_n"),
                            f"model {spec.name}: kafka.scale_out cannot collect a segment's reference from the "
                            "stream (each process sees some partitions): a segment's reference is its rows of "
                            "reference.path or one already stored (docs/segments.md, \"Scale-out\")")


def _scheme(url: str) -> str:
    return url.split(":", 1)[0] + " (" + ("a SQLite file" if url.startswith("sqlite") else "not PostgreSQL") + ")"
