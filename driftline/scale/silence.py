"""Scale-out: the no-data rules, evaluated by the merger from every partition's mark.

One process observes, per model version, the event-time gaps since its last look and how
long the version has sent nothing now (``ModelMonitor.silence``). Here no process reads
every partition, so the merger that holds a model's lock (``driftline/scale/merge.py``)
observes the same two things from what the partitions store, and calls the router's
no-data path (``Router.tick``) in the transaction of its merge, once for the group:

- **now**: each partition's mark carries, per version, its newest event time and the wall
  clock of its last arrival (``seen``, ``driftline/scale/partition.py``). The version's
  newest event and last arrival are the newest over the partitions. Its wall-clock silence
  counts from that arrival, and, unless its alert fires already, from the latest time an
  owner took one of the partitions that carried it at the earliest (``claimed``; one process
  counts from its start): a rebalance, a killed owner's stale arrival, neither fires an alert
  before the new owner had ``no_data`` to read, nor resolves a firing one. Its event-time
  silence runs from its newest event to the oldest watermark among the partitions that
  carried it and are not idle (every one of them has been read that far, so none can still
  bring an older event of it; all idle: the newest watermark of any). One process compares
  with the newest event of any partition instead; a version alone on a partition that
  carries nothing else is therefore seen silent by the wall clock only.
- **gaps**: a gap in event time is found between the merged windows of the version, from
  the last event of one to the first of the next (the newest merged event time is kept,
  ``SILENCE_SOURCE``), the longest of each merge pass that is long enough for a rule, as
  one process reports the longest of each batch. A gap inside one window is not seen:
  exact when ``no_data`` is at least the window's duration (such a gap always crosses a
  window's end). A gap that starts at or before the event a silence already observed was
  counted from is not observed again (windows are merged after their events were read, so
  the *now* silence usually saw it first), so it does not fire a second time after it
  resolved; the cost, a gap of a backlog merged after a later live silence was observed is
  not reported.

Arrivals are written with each checkpoint, so the merger knows them to within
``store.checkpoint_every``, and it compares wall clocks of several processes: they are
assumed to agree to well under ``no_data`` (NTP, or one machine).
"""

from __future__ import annotations

from driftline import state as st
from driftline.alerts.rules import fingerprint
from driftline.types import iso

#: the ``source`` of the merger's per-version no-data state rows
SILENCE_SOURCE = "merge:no_data"


def silences(marks: dict, model: str, now: float, firing: set[str]) -> dict[str, tuple[float, int]]:
    """Per version of ``model`` in any mark: how long it has sent nothing (seconds), and its
    newest event time (ms); ``firing``: versions whose no-data alert fires (their wall clock
    is not held back by a partition's new owner)."""
    newest_any = max((m["watermark"] for m in marks.values() if m["watermark"] is not None), default=None)
    found: dict[str, dict] = {}
    for mark in marks.values():
        seen = mark.get("seen") or {}
        for version, (newest, arrival) in ((seen.get("versions") or {}).get(model) or {}).items():
            v = found.setdefault(version, {"newest": newest, "arrival": arrival, "claimed": 0.0, "horizon": []})
            v["newest"], v["arrival"] = max(v["newest"], newest), max(v["arrival"], arrival)
            v["claimed"] = max(v["claimed"], seen.get("claimed") or 0.0)
            if not mark["idle"] and mark["watermark"] is not None:
                v["horizon"].append(mark["watermark"])
    out = {}
    for version, v in found.items():
        horizon = min(v["horizon"], default=newest_any)
        since = v["arrival"] if version in firing else max(v["arrival"], v["claimed"])
        out[version] = (max(now - since, (horizon - v["newest"]) / 1000), v["newest"])
    return out


class NoData:
    """The merger's no-data observations of one model (see the module docstring)."""

    def __init__(self, spec, secret: bytes | None):
        self.spec, self.secret = spec, secret
        self.rules = [r for r in spec.rules if r.no_data is not None]
        self.least = min(r.no_data for r in self.rules)
        self.windows: dict[str, list[tuple[int, int]]] = {}  # version → merged (first, last) event times, this pass

    def merged(self, version: str, w) -> None:
        """A window of ``version`` merged in this pass (in order of start)."""
        if w.first_ts is not None:
            self.windows.setdefault(version, []).append((w.first_ts, w.last_ts))

    def firing(self, alerts: dict) -> set[str]:
        """The versions (of ``alerts``' states) whose no-data alert fires."""
        out = set()
        for state in alerts.values():
            if state.model == self.spec.name and state.status == "firing" and any(
                    state.fingerprint == fingerprint(self.spec.name, state.version, r) for r in self.rules):
                out.add(state.version)
        return out

    def changes(self, marks: dict, now: float, alerts: dict) -> bool:
        """Whether the silence now would change an alert of ``alerts`` (a merge pass's cheap look,
        outside the lock: the merge itself decides on the committed state)."""
        firing = self.firing(alerts)
        for version, (silent_for, _) in silences(marks, self.spec.name, now, firing).items():
            for rule in self.rules:
                state = alerts.get(fingerprint(self.spec.name, version, rule))
                if (silent_for >= rule.no_data) != (state is not None and state.status == "firing"):
                    return True
        return False

    def observe(self, m, marks: dict, now: float, alerts: dict, unit) -> dict[tuple[str, str], list]:
        """What ``Router.tick`` takes for this model: per version, the longest gap between the
        windows merged in this pass (unless seen already), then the silence now; the changed
        state rows go into ``unit``."""
        name, windows, self.windows = self.spec.name, self.windows, {}
        now_seen = silences(marks, name, now, self.firing(alerts))
        out = {}
        for version in sorted(set(now_seen) | set(windows)):
            silent = now_seen.get(version)
            if version not in windows and silent[0] < self.least:
                out[(name, version)] = [(silent[0], iso(silent[1]))]
                continue  # nothing to remember: no state read
            state = self._state(m, version)
            before = dict(state)
            seen = self._gap(state, windows.get(version, []))
            if silent is not None:
                if silent[0] >= self.least:
                    state["from"] = silent[1]  # this silence is observed: its gap is not, later
                seen.append((silent[0], iso(silent[1])))
            out[(name, version)] = seen
            if state != before:
                unit.states[(name, version, SILENCE_SOURCE)] = st.encode(state, self.secret)
        return {k: v for k, v in out.items() if v}

    def _gap(self, state: dict, windows: list[tuple[int, int]]) -> list[tuple[float, str]]:
        """The longest gap before one of ``windows`` (from the newest merged event) long enough
        for a rule and starting after the last silence observed (windows are merged well after
        their events were read: a gap from before that is no news, and must neither resolve the
        alert the silence now fires nor fire a resolved one again); advances the newest merged event."""
        last, longest = state["last_ts"], None
        seen = state["from"] if state["from"] is not None else float("-inf")
        for first, newest in windows:
            if last is not None and last > seen and (first - last) / 1000 >= self.least and (
                    longest is None or first - last > longest[0]):
                longest = (first - last, last)
            last = newest if last is None else max(last, newest)
        state["last_ts"] = last
        if longest is None:
            return []
        state["from"] = longest[1]
        return [(longest[0] / 1000, iso(longest[1]))]

    def _state(self, m, version: str) -> dict:
        blob = m.state(version, SILENCE_SOURCE)
        if blob is None:
            return {"format": st.FORMAT, "last_ts": None, "from": None}
        return st.decode(blob, f"model {self.spec.name}, version {version}, its no-data state", self.secret)
