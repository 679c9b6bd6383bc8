"""Prometheus metrics: the only module that imports prometheus_client.

:class:`Metrics` keeps its own registry (so tests and several services in one
process do not collide); :class:`NullMetrics` is the do-nothing fake that the
pipeline uses when no metrics port is configured.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import start_http_server

from driftline import performance_view as pv
from driftline import summary


class NullMetrics:
    def observe_batch(self, decoded, seconds: float) -> None:
        pass

    def observe_window(self, summary: dict) -> None:
        pass

    def observe_alert(self, state) -> None:
        pass

    def observe_commit(self, seconds: float) -> None:
        pass

    def observe_internal_error(self, kind: str) -> None:
        pass

    def observe_notification(self, sink: str, outcome: str) -> None:
        """``outcome``: sent, silenced, retry (a failed attempt) or failed (given up)."""

    def set_notifications(self, pending: int, failed: int) -> None:
        """How many notifications the outbox holds undelivered, and given up."""

    def set_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """Consumer lag per (topic, partition): the high watermark minus the stored offset."""

    def set_process(self, name: str) -> None:
        """Scale-out: the name this process's own metrics are labelled with (``process``)."""

    def set_assignment(self, partitions: list[tuple[str, int]]) -> None:
        """Scale-out: the partitions this process owns now."""

    def observe_labels(self, realized: dict, revisions: list[dict]) -> None:
        """After a checkpoint: each model's :class:`~driftline.realized.RealizedPerformance`
        (its ``counts`` and ``buffer``) and the performance revisions just stored."""

    def close(self) -> None:
        pass


class _LabelCounters:
    """Counters whose totals are kept elsewhere (the label join's counts): exported as they
    were at the last checkpoint."""

    def __init__(self):
        self._lock = threading.Lock()
        self._labels: dict[tuple[str, str], int] = {}
        self._predictions: dict[tuple[str, str], int] = {}

    def update(self, realized: dict) -> None:
        labels = {(m, k): int(v) for m, r in realized.items() for k, v in r.counts.items()}
        preds = {(m, k): int(r.buffer.counts.get(k, 0)) for m, r in realized.items() for k in ("evicted", "expired")}
        with self._lock:
            self._labels, self._predictions = labels, preds

    def collect(self):
        with self._lock:
            labels, preds = dict(self._labels), dict(self._predictions)
        total = CounterMetricFamily("driftline_labels", "Label events by what became of them (since the process "
                                    "started): joined, orphan, expired, duplicate, sampled_out", labels=["model", "result"])
        for (model, result), n in sorted(labels.items()):
            total.add_metric([model, result], n)
        yield total
        for kind, doc in (("evicted", "Pending predictions evicted by labels.max_pending before their label came"),
                          ("expired", "Pending predictions expired (labels.max_delay) before their label came")):
            family = CounterMetricFamily(f"driftline_predictions_{kind}", doc + " (as stored with the join buffer)",
                                         labels=["model"])
            for (model, k), n in sorted(preds.items()):
                if k == kind:
                    family.add_metric([model], n)
            yield family


class Metrics(NullMetrics):
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.events = Counter("driftline_events", "Events decoded into windows", ["model", "version"], registry=r)
        self.bad = Counter("driftline_bad_records", "Records sent to the dead-letter topic", ["model"], registry=r)
        self.windows = Counter("driftline_windows", "Windows closed and stored", ["model", "version"], registry=r)
        self.invalid = Counter("driftline_invalid_values", "Values of the wrong type, NaN or inf",
                               ["model", "version", "feature"], registry=r)
        self.drift = Gauge("driftline_drift_statistic", "Drift statistic of the last window",
                           ["model", "version", "feature", "method"], registry=r)
        self.drifted = Gauge("driftline_drifted_features", "Features drifted in the last window",
                             ["model", "version"], registry=r)
        self.firing = Gauge("driftline_alert_firing", "1 while an alert fires", ["model", "version", "rule"],
                            registry=r)
        self.batch = Histogram("driftline_batch_seconds", "Time to decode and window one batch", registry=r)
        self.commit = Histogram("driftline_commit_seconds", "Time of one checkpoint transaction", registry=r)
        self.internal = Counter("driftline_internal_errors", "Records dead-lettered because processing them "
                                "raised (the poison-pill guard)", ["exception"], registry=r)
        self.notified = Counter("driftline_notifications_sent", "Notifications a sink accepted", ["sink"],
                                registry=r)
        self.retries = Counter("driftline_notification_retries", "Failed delivery attempts that will be retried",
                               ["sink"], registry=r)
        self.given_up = Counter("driftline_notifications_failed",
                                "Notifications given up at their delivery deadline", ["sink"], registry=r)
        self.pending = Gauge("driftline_notifications_pending", "Notifications in the outbox not yet delivered",
                             registry=r)
        self.failed_now = Gauge("driftline_notifications_given_up",
                                "Notifications in the outbox given up and not retried since", registry=r)
        self.threshold = Gauge("driftline_drift_threshold", "Drift threshold the last window was tested against",
                               ["model", "version", "feature", "method"], registry=r)
        self.lag = Gauge("driftline_consumer_lag", "High watermark minus the offset the store has committed",
                         ["topic", "partition"], registry=r)
        self._lag_labels: set[tuple[str, str]] = set()
        self._labels_gauges(r)
        self._process_gauges(r)
        self._server = None

    def _process_gauges(self, r: CollectorRegistry) -> None:
        """Scale-out: what each of several processes owns and does, labelled by ``process``."""
        self.process = None
        self.assigned = Gauge("driftline_assigned_partitions", "1 for each partition this process owns (scale-out)",
                              ["process", "topic", "partition"], registry=r)
        self.process_lag = Gauge("driftline_process_lag", "Consumer lag summed over this process's partitions",
                                 ["process"], registry=r)
        self.process_events = Counter("driftline_process_events", "Events this process decoded (rate: its "
                                      "throughput)", ["process"], registry=r)
        self._assigned: set[tuple[str, str]] = set()

    def set_process(self, name: str) -> None:
        self.process = name

    def set_assignment(self, partitions: list[tuple[str, int]]) -> None:
        if self.process is None:
            return
        now = {(t, str(p)) for t, p in partitions}
        for gone in self._assigned - now:
            self.assigned.remove(self.process, *gone)
        for topic, partition in now:
            self.assigned.labels(self.process, topic, partition).set(1)
        self._assigned = now

    def _labels_gauges(self, r: CollectorRegistry) -> None:
        self.labels_pending = Gauge("driftline_labels_pending", "Predictions waiting for their label", ["model"],
                                    registry=r)
        self.labels_bytes = Gauge("driftline_labels_buffer_bytes", "Bytes the label-join buffer holds in arrays",
                                  ["model"], registry=r)
        self.performance = Gauge("driftline_performance", "Headline metrics of the newest window with enough "
                                 "labels", ["model", "version", "metric"], registry=r)
        self.labelled_share = Gauge("driftline_performance_labelled_share", "Labelled share of the window "
                                    "driftline_performance is of", ["model", "version"], registry=r)
        self._label_counters = _LabelCounters()
        r.register(self._label_counters)
        self._newest: dict[tuple[str, str], tuple] = {}
        self._perf_labels: set[tuple[str, str, str]] = set()

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve ``/metrics``; return the port (useful with ``port=0``)."""
        self._server, _ = start_http_server(port, host, registry=self.registry)
        return self._server.server_port

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def observe_batch(self, decoded, seconds: float) -> None:
        self.batch.observe(seconds)
        for (model, version), cols in decoded.groups.items():
            self.events.labels(model, version).inc(cols.n)
            if self.process is not None:
                self.process_events.labels(self.process).inc(cols.n)
        for record in decoded.bad:
            self.bad.labels(record.model or "").inc()

    def observe_window(self, s: dict) -> None:
        model, version = s["model"], s["version"]
        self.windows.labels(model, version).inc()
        self.drifted.labels(model, version).set(len(s["drifted"]))
        subjects = summary.subjects(s)
        for name, f in subjects.items():
            if f.get("invalid"):
                self.invalid.labels(model, version, name).inc(f["invalid"])
            for r in f.get("tests") or ([f["drift"]] if f.get("drift") else []):
                self.drift.labels(model, version, name, r["method"]).set(r["statistic"])
                if r.get("threshold") is not None:
                    self.threshold.labels(model, version, name, r["method"]).set(r["threshold"])

    def observe_alert(self, state) -> None:
        self.firing.labels(state.model, state.version, state.rule).set(1 if state.status == "firing" else 0)

    def observe_commit(self, seconds: float) -> None:
        self.commit.observe(seconds)

    def observe_internal_error(self, kind: str) -> None:
        self.internal.labels(kind).inc()

    def observe_notification(self, sink: str, outcome: str) -> None:
        counter = {"sent": self.notified, "retry": self.retries, "failed": self.given_up}.get(outcome)
        if counter is not None:
            counter.labels(sink).inc()

    def set_notifications(self, pending: int, failed: int) -> None:
        self.pending.set(pending)
        self.failed_now.set(failed)

    def set_lag(self, lag: dict[tuple[str, int], int]) -> None:
        labels = {(topic, str(partition)) for topic, partition in lag}
        for gone in self._lag_labels - labels:  # a partition assigned elsewhere now
            self.lag.remove(*gone)
        self._lag_labels = labels
        for (topic, partition), n in lag.items():
            self.lag.labels(topic, str(partition)).set(n)
        if self.process is not None:
            self.process_lag.labels(self.process).set(sum(lag.values()))

    def observe_labels(self, realized: dict, revisions: list[dict]) -> None:
        for model, r in realized.items():
            self.labels_pending.labels(model).set(r.buffer.pending)
            self.labels_bytes.labels(model).set(r.buffer.nbytes)
        self._label_counters.update(realized)
        for rev in revisions:
            self._performance(rev)

    def _performance(self, rev: dict) -> None:
        """Keep the newest window (by start, then key) with ``enough`` labels per model version."""
        key, at = (rev["model"], rev["version"]), (rev["window"]["start"] or "", rev["window_key"])
        if not rev["enough"] or rev.get("segment") or at < self._newest.get(key, ("", -1)):
            return
        self._newest[key] = at
        for name in pv.HEADLINE[pv.task_of(rev["metrics"])]:
            value, labels = rev["metrics"].get(name), (*key, name)
            if value is not None:
                self.performance.labels(*labels).set(value)
                self._perf_labels.add(labels)
            elif labels in self._perf_labels:  # undefined in this window (e.g. AUC with one class)
                self.performance.remove(*labels)
                self._perf_labels.discard(labels)
        self.labelled_share.labels(*key).set(rev["labelled_share"])

    def lag_values(self) -> list[dict]:
        """What the lag gauge holds now, for the API."""
        return [{"topic": s.labels["topic"], "partition": int(s.labels["partition"]), "lag": int(s.value)}
                for m in self.lag.collect() for s in m.samples]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
