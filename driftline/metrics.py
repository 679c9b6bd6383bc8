"""Prometheus metrics: the only module that imports prometheus_client.

:class:`Metrics` keeps its own registry (so tests and several services in one
process do not collide); :class:`NullMetrics` is the do-nothing fake that the
pipeline uses when no metrics port is configured.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

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

    def close(self) -> None:
        pass


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
        self._server = None

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

    def lag_values(self) -> list[dict]:
        """What the lag gauge holds now, for the API."""
        return [{"topic": s.labels["topic"], "partition": int(s.labels["partition"]), "lag": int(s.value)}
                for m in self.lag.collect() for s in m.samples]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
