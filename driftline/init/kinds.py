"""Each feature's kind from its sampled values, or why it is not monitored.

>>> infer("amount", [1.5, 2.0, None, 7.25]).kind
'numeric'
>>> infer("country", ["CZ", "DE", "CZ", "FR"] * 30).describe()
'categorical, top_k 3 (3 distinct values)'
>>> infer("session", [f"s{i}" for i in range(500)]).flag
'id-like: 500 distinct strings in 500 values'
>>> infer("source", ["web"] * 50).flag
"constant: always 'web'"
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

#: a string feature with more distinct values than this share of its values is an id, not a category
ID_SHARE = 0.5
ID_MIN_DISTINCT = 50
TOP_K_MAX = 200
COVER = 0.95  # a top_k above ~50 covers this share of the values
_ID_NAME = re.compile(r"(^|_|-)(id|uuid|guid|key)$|[a-z](Id|ID|Uuid|UUID)$", re.IGNORECASE)


@dataclass(frozen=True)
class Inferred:
    name: str
    kind: str | None  # numeric, categorical, boolean; None: not monitored
    values: int  # non-null values seen
    missing: int
    distinct: int
    top_k: int | None = None
    flag: str | None = None  # why it is not monitored
    note: str | None = None  # a remark that does not stop monitoring

    def describe(self) -> str:
        if self.kind is None:
            return f"not monitored — {self.flag}"
        text = self.kind
        if self.kind == "categorical":
            text += f", top_k {self.top_k} ({self.distinct} distinct values)"
        if self.missing:
            text += f", {self.missing} missing"
        return text + (f"; {self.note}" if self.note else "")


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "numeric"
    if isinstance(v, str):
        return "categorical"
    return "nested"


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def top_k(counts: Counter) -> int:
    """Every category when there are few; else the fewest commonest ones covering :data:`COVER`."""
    distinct = len(counts)
    if distinct <= 50:
        return max(2, distinct)
    total, covered = sum(counts.values()), 0
    for k, (_, c) in enumerate(counts.most_common(), 1):
        covered += c
        if covered >= COVER * total:
            return min(max(k, 50), TOP_K_MAX)
    return TOP_K_MAX


def infer(name: str, values: list) -> Inferred:
    """The kind of one feature from its sampled values (``None`` where absent)."""
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if not present:
        return Inferred(name, None, 0, missing, 0, flag="always missing in the sample")
    kinds = Counter(map(_kind, present))
    kind, count = kinds.most_common(1)[0]
    same = [v for v in present if _kind(v) == kind]
    counts = Counter(same) if kind != "nested" else Counter()
    base = dict(name=name, values=len(present), missing=missing, distinct=len(counts))
    note = None if count == len(present) else f"{len(present) - count} value(s) of another type count as invalid"
    if kind == "nested":
        return Inferred(**base, kind=None, flag="an object or list, not a scalar (map its fields one by one)")
    if len(counts) == 1:
        return Inferred(**base, kind=None, flag=f"constant: always {_show(same[0])}")
    if kind == "categorical" and len(counts) >= ID_MIN_DISTINCT and len(counts) > ID_SHARE * len(same):
        return Inferred(**base, kind=None, flag=f"id-like: {len(counts)} distinct strings in {len(same)} values")
    if kind == "numeric" and _ID_NAME.search(name) and all(float(v).is_integer() for v in same) \
            and len(counts) > ID_SHARE * len(same) and len(counts) >= ID_MIN_DISTINCT:
        return Inferred(**base, kind=None, flag=f"id-like: integers named like an id, {len(counts)} distinct")
    if kind == "categorical":
        return Inferred(**base, kind="categorical", top_k=top_k(counts), note=note)
    return Inferred(**base, kind=kind, note=note)
