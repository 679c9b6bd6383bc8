"""Retraining triggers: the cooldown between two of them, and their CloudEvent.

A model version gets at most one trigger per ``retrain.cooldown`` seconds of event
time (window ends), however many of its alerts fire meanwhile.

>>> c = Cooldowns()
>>> c.allows(("fraud", "v3"), 3_600_000, cooldown=3600), c.record(("fraud", "v3"), 3_600_000)
(True, None)
>>> c.allows(("fraud", "v3"), 7_199_999, cooldown=3600), c.allows(("fraud", "v3"), 7_200_000, cooldown=3600)
(False, True)
>>> Cooldowns.from_state(c.to_state()) == c
True
"""

from __future__ import annotations

import uuid

Key = tuple[str, str]  # (model, version)


class Cooldowns:
    """When each model version was last sent a trigger (its window end, epoch ms)."""

    FORMAT = 1

    def __init__(self, last: dict[Key, int] | None = None):
        self.last: dict[Key, int] = dict(last or {})

    def allows(self, key: Key, end_ms: int, cooldown: float) -> bool:
        last = self.last.get(key)
        return last is None or end_ms - last >= cooldown * 1000

    def record(self, key: Key, end_ms: int) -> None:
        self.last[key] = end_ms

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cooldowns) and other.last == self.last

    def to_state(self) -> dict:
        return {"format": self.FORMAT, "last_trigger": [[m, v, ms] for (m, v), ms in sorted(self.last.items())]}

    @classmethod
    def from_state(cls, state: dict) -> Cooldowns:
        if not isinstance(state, dict) or state.get("format") != cls.FORMAT:
            raise ValueError(f"cooldown state: format {state.get('format') if isinstance(state, dict) else None!r}"
                             f" is not {cls.FORMAT}")
        try:
            return cls({(str(m), str(v)): int(ms) for m, v, ms in state["last_trigger"]})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"cooldown state: last_trigger is not a list of [model, version, ms]: {exc}") from exc


def cloud_event(alert: dict, summary: dict, group: str, incident: dict | None = None,
                performance: dict[str, dict] | None = None) -> dict:
    """A CloudEvents 1.0 structured-mode retraining request carrying its evidence: the
    incident's (every feature that drifted while it was open) when there is one, else the
    alert's. Its id is derived from the incident (else the alert and window), so a redelivery
    or a replay carries the same one. ``performance``: the evidence of the incident's firing
    performance rules (rule → metric → value, standard error, labelled share, reference)."""
    name = f"incident:{incident['id']}" if incident else f"{alert['fingerprint']}:{summary['end']}"
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"driftline:{name}")
    drifted = incident["features"] if incident else alert["features"]
    return {
        "specversion": "1.0",
        "id": str(ident),
        "source": f"driftline/{group}",
        "type": "dev.driftline.retrain.requested",
        "subject": f"{alert['model']}/{alert['version']}",
        "time": summary["end"],
        "datacontenttype": "application/json",
        "data": {
            "model": alert["model"], "version": alert["version"],
            "reason": alert["rule"], "alert": alert["fingerprint"], "severity": alert["severity"],
            "incident": incident["id"] if incident else None,
            "window": {"start": summary["start"], "end": summary["end"], "count": summary["count"]},
            "drifted": {k: {x: v.get(x) for x in ("method", "statistic", "p_value", "threshold")}
                        for k, v in drifted.items() if not (performance and k in _metrics(performance))},
            **({"performance": performance} if performance else {}),
        },
    }


def _metrics(performance: dict[str, dict]) -> set[str]:
    return {m for evidence in performance.values() for m in evidence}
