"""Silences as values: Alertmanager-style label matchers and the time a silence lasts.

A value module (standard library only), so the store can hand out :class:`Silence`
objects and the dispatcher (``alerts/silences.py``) can decide with them. Validation
raises ``ValueError`` naming what is wrong; the CLI turns it into exit 2.

>>> m = parse_matcher('rule=~feature_.*')
>>> m, str(m)
(Matcher(name='rule', op='=~', value='feature_.*'), 'rule=~"feature_.*"')
>>> m.matches("feature_drift"), m.matches("prefix_feature_drift")  # anchored: ^(?:feature_.*)$
(True, False)
>>> s = Silence(1, (parse_matcher('model="fraud"'), m), starts_at=100.0, ends_at=200.0)
>>> s.matches({"model": "fraud", "rule": "feature_drift"}), s.matches({"model": "fraud", "rule": "volume"})
(True, False)
>>> s.state(50.0), s.state(150.0), s.state(200.0)
('pending', 'active', 'expired')
>>> parse_matcher("rule=~feature_(")
Traceback (most recent call last):
...
ValueError: matcher rule=~"feature_(": bad regular expression 'feature_(': missing ), unterminated subpattern at position 8
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from driftline.types import iso

OPS = ("=", "!=", "=~", "!~")
LAST = 253402300800.0  # 10000-01-01: times are shown as ISO-8601
LABELS = ("model", "version", "rule", "subject", "severity")  # what driftline's alerts carry
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """``name op value``: ``=`` equal, ``!=`` not equal, ``=~`` the regex matches the whole
    value (``^(?:value)$``, as Alertmanager anchors it), ``!~`` it does not."""

    name: str
    op: str
    value: str
    _regex: re.Pattern | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"matcher {self.name!r}: a label name is letters, digits and _ (not first a digit)")
        if self.op not in OPS:
            raise ValueError(f"matcher {self.name}{self.op}: unknown operator {self.op!r} (one of {', '.join(OPS)})")
        if not isinstance(self.value, str):
            raise ValueError(f"matcher {self.name}{self.op}: the value must be a string, got {self.value!r}")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)  # first alone, so an error's position is in the user's text
                regex = re.compile(f"(?:{self.value})")
            except re.error as exc:
                raise ValueError(f"matcher {self}: bad regular expression {self.value!r}: {exc}") from exc
            object.__setattr__(self, "_regex", regex)

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        return (self._regex.fullmatch(value) is not None) == (self.op == "=~")

    def to_list(self) -> list[str]:
        """``[name, op, value]``, as stored."""
        return [self.name, self.op, self.value]

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matcher(text: str) -> Matcher:
    """``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``; the value may be in
    double quotes (JSON escapes: ``model="fraud"``, ``subject="a \\"b\\""``) or single quotes."""
    match = _MATCHER.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"matcher {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX, "
                         f"e.g. model=fraud or 'rule=~feature_.*'")
    name, op, value = match.groups()
    return Matcher(name, op, _unquote(text, value))


def _unquote(text: str, value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if not value.startswith('"'):
        return value
    try:
        out = json.loads(value)
    except ValueError:
        out = None
    if not isinstance(out, str):
        raise ValueError(f"matcher {text!r}: a quoted value must be one \"…\" string (escape a quote as \\\")")
    return out


def matcher_of(value) -> Matcher:
    """A :class:`Matcher` from itself, its text (``rule=volume``) or its stored ``[name, op, value]``."""
    if isinstance(value, Matcher):
        return value
    if isinstance(value, str):
        return parse_matcher(value)
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return Matcher(*value)
    raise ValueError(f"matcher {value!r}: expected text like model=fraud or [name, op, value]")


@dataclass(frozen=True)
class Silence:
    """Mutes what its ``matchers`` all match from ``starts_at`` until ``ends_at`` (epoch seconds).
    A label an alert does not have is the empty string, as in Alertmanager."""

    id: int | None
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str = ""
    comment: str = ""
    created_at: float = 0.0
    expired_at: float | None = None  # when `silence expire` ended it early

    def __post_init__(self):
        object.__setattr__(self, "matchers", tuple(matcher_of(m) for m in self.matchers))
        if not self.matchers:
            raise ValueError("matchers: a silence needs at least one matcher, e.g. model=fraud")
        if self.ends_at < self.starts_at:
            raise ValueError(f"ends_at: the end ({self.ends_at}) is before the start ({self.starts_at})")

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: float) -> str:
        """``pending`` (starts later), ``active`` or ``expired``: Alertmanager's names."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def matches(self, labels: dict) -> bool:
        return all(m.matches(_label(labels, m.name)) for m in self.matchers)


def _label(labels: dict, name: str) -> str:
    value = labels.get(name)
    return "" if value is None else str(value)


def check_new(matchers, starts_at: float, ends_at: float) -> tuple[Matcher, ...]:
    """The matchers of a silence about to be created, or ``ValueError``: at least one, an end
    after the start, and (as Alertmanager asks) one matcher that does not match the empty
    string, so a silence never mutes everything by accident (``model=~".+"`` does, on purpose)."""
    matchers = tuple(matcher_of(m) for m in matchers)
    if not matchers:
        raise ValueError("matchers: a silence needs at least one matcher, e.g. model=fraud")
    if all(m.matches("") for m in matchers):
        raise ValueError(f"matchers: {', '.join(map(str, matchers))} all match an empty value, so the silence would "
                         "also mute every alert without those labels; add one that does not, e.g. model=fraud "
                         "(model=~\".+\" mutes every model, on purpose)")
    for name, at in (("start", starts_at), ("end", ends_at)):
        if not 0 <= at < LAST:  # NaN fails too
            raise ValueError(f"{name}: must be between 1970 and 9999, got {at!r} (epoch seconds)")
    if ends_at <= starts_at:
        raise ValueError(f"end: must be after the start (start {starts_at:.0f}, end {ends_at:.0f}, epoch seconds)")
    return matchers


def view(silence: Silence, now: float) -> dict:
    """A silence as the API and ``silence list --json`` show it: matchers as text
    (``rule=~"feature_.*"``), its state at ``now``, times in epoch seconds and ISO-8601."""
    at = {name: getattr(silence, name) for name in ("starts_at", "ends_at", "created_at", "expired_at")}
    return {"id": silence.id, "matchers": [str(m) for m in silence.matchers], "state": silence.state(now),
            **at, **{f"{k}_iso": _iso(v) for k, v in at.items()},
            "author": silence.author, "comment": silence.comment}


def _iso(seconds: float | None) -> str | None:
    """ISO-8601, or ``None`` for no time (or one no calendar shows: a hand-written row)."""
    try:
        return None if seconds is None else iso(int(seconds * 1000))
    except (ValueError, OverflowError, OSError):
        return None
