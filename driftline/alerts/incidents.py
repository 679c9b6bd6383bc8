"""Incidents: the alerts of one group (by default one model version) while any of them fires.

An incident opens when the first alert of its group fires and resolves when none of its
alerts fires any more. While it is open its evidence grows: every feature that drifted
in a window of the group is named with its worst result (by statistic ÷ threshold), and
the windows involved are counted. Each change says which notification it calls for
(``opened``, ``updated``, ``repeat``, ``resolved``; see docs/alerting.md).

>>> inc = Incident.open({"model": "m", "version": "v"}, "m", "v", "2026-01-01T00:00:05.000Z")
>>> inc.add_alert({"fingerprint": "f1", "rule": "r", "subject": "x", "severity": "warning",
...                "status": "firing", "value": 1.0, "threshold": 0.5, "since": "s"}, "model")
True
>>> inc.add_evidence({"x": {"method": "psi", "statistic": 0.4, "threshold": 0.2, "drifted": True}}, "e1")
['x']
>>> inc.add_evidence({"x": {"method": "psi", "statistic": 0.3, "threshold": 0.2, "drifted": True}}, "e2")
[]
>>> inc.features["x"]["ratio"], inc.windows["count"]
(2.0, 2)
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

SEVERITY = {"info": 0, "warning": 1, "critical": 2}


def group_key(group: dict[str, str]) -> str:
    text = "|".join(f"{k}={v}" for k, v in sorted(group.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _ratio(r: dict) -> float:
    t = r.get("threshold") or 0.0
    return float(r["statistic"]) / t if t > 0 else float("inf") if r["statistic"] > 0 else 0.0


@dataclass
class Incident:
    id: str
    key: str
    group: dict
    model: str
    version: str
    opened_end: str  # the window end at which it opened (part of its id)
    status: str = "firing"  # firing | resolved
    severity: str = "info"
    opened_at: str | None = None  # the start of its first firing alert's first breaching window
    updated_at: str | None = None
    resolved_at: str | None = None
    alerts: dict = field(default_factory=dict)  # fingerprint → the alert as the incident saw it last
    features: dict = field(default_factory=dict)  # feature → its worst result in the incident
    windows: dict = field(default_factory=lambda: {"first": None, "last": None, "count": 0})
    trigger: str | None = None  # the id of the CloudEvent it sent, once
    notified_at: float = 0.0  # wall clock of its last notification (group_interval, repeat_interval)
    repeats: int = 0
    url: str | None = None  # its model page on the dashboard, when alerts.dashboard_url is set

    @classmethod
    def open(cls, group: dict, model: str, version: str, end: str) -> Incident:
        key = group_key(group)
        ident = hashlib.sha256(f"{key}|{end}".encode()).hexdigest()[:20]
        return cls(ident, key, dict(group), model, version, end, updated_at=end)

    @property
    def firing(self) -> list[dict]:
        return [a for a in self.alerts.values() if a["status"] == "firing"]

    def add_alert(self, event: dict, level: str, inhibited: bool = False) -> bool:
        """Take an alert event (firing or resolved); return whether it changes what was paged
        (a new firing alert that is not inhibited, or a higher severity)."""
        fp, before = event["fingerprint"], self.alerts.get(event["fingerprint"])
        status = event["status"] if not (inhibited and event["status"] == "firing") else "inhibited"
        self.alerts[fp] = {k: event.get(k) for k in ("fingerprint", "rule", "subject", "severity", "value",
                                                      "threshold", "since")} | {"level": level, "status": status}
        if self.opened_at is None and status == "firing":
            self.opened_at = event.get("since") or event["window_start"]
        old = self.severity
        self.severity = max((a["severity"] for a in self.firing), key=SEVERITY.get, default=self.severity)
        news = status == "firing" and (before is None or before["status"] != "firing")
        return news or SEVERITY[self.severity] > SEVERITY[old]

    def add_evidence(self, drifted: dict[str, dict], end: str) -> list[str]:
        """One window of the group: its drifted results; return the features new to the incident."""
        w = self.windows
        w["first"], w["last"], w["count"] = w["first"] or end, end, w["count"] + 1
        self.updated_at = end
        new = []
        for name, r in drifted.items():
            if not r.get("drifted"):
                continue
            ratio, seen = _ratio(r), self.features.get(name)
            if seen is None:
                new.append(name)
            if seen is None or ratio > seen["ratio"]:
                self.features[name] = {k: r.get(k) for k in ("method", "statistic", "threshold", "p_value",
                                                             "effect")} | {
                    "ratio": ratio, "worst_window": end,
                    "first_window": seen["first_window"] if seen else end}
        return new

    @property
    def worst(self) -> dict | None:
        if not self.features:
            return None
        name, r = max(self.features.items(), key=lambda kv: kv[1]["ratio"])
        return {"feature": name, **{k: r[k] for k in ("method", "statistic", "threshold", "ratio")}}

    def title(self) -> str:
        firing = self.firing
        if not firing:
            return f"{self.model} {self.version}: resolved"
        lead = max(firing, key=lambda a: (SEVERITY[a["severity"]], a["level"] == "model"))
        more = f" (+{len(firing) - 1} more alerts)" if len(firing) > 1 else ""
        return f"{self.model} {self.version}: {lead['rule']}: {lead['subject']}"[:140] + more

    def resolve(self, end: str) -> None:
        self.status, self.resolved_at, self.updated_at = "resolved", end, end

    def snapshot(self, new_features: list[str] | None = None) -> dict:
        """The incident as notifications carry it (docs/alerting.md)."""
        return {"id": self.id, "group": self.group, "model": self.model, "version": self.version,
                "status": self.status, "severity": self.severity, "title": self.title(),
                "opened_at": self.opened_at, "updated_at": self.updated_at, "resolved_at": self.resolved_at,
                "alerts": list(self.alerts.values()), "features": self.features,
                "new_features": list(self.features if new_features is None else new_features),
                "worst": self.worst, "windows": dict(self.windows), "trigger": self.trigger, "url": self.url}

    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> Incident:
        return cls(**state)
