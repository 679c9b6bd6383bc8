"""Rebuild a :class:`~driftline.labels.join.JoinBuffer` from its stored keys.

Keys: ``meta`` (format, configuration, counters, the next chunk id, the open chunk,
the removed-id record's bookkeeping), ``chunk/<cid>/<first row>`` (a part of a
chunk: its rows from that one on), ``dead/<cid>`` (the chunk's removed rows) and
``gone/<seq>`` (one segment of removed ids). Anything else is refused. ``states`` may decode each row when it is read: the rebuild
reads every key once, one chunk at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from driftline.labels.chunk import Chunk
from driftline.labels.gone import Gone
from driftline.state import StateError, check_format

WHAT = "label-join buffer"
OVERRIDABLE = {"max_delay_ms", "max_pending", "remember", "compact_below"}


def _split(keys):
    """The stored keys by kind: chunk id → part keys, chunk id → tombstone key, segment → key."""
    parts, dead, gone = defaultdict(list), {}, {}
    for key in keys:
        kind, _, rest = key.partition("/")
        try:
            if kind == "chunk":
                cid, start = rest.split("/")
                parts[int(cid)].append((int(start), key))
            elif kind == "dead":
                dead[int(rest)] = key
            elif kind == "gone":
                gone[int(rest)] = key
            elif key != "meta":
                raise ValueError("unknown key")
        except ValueError as exc:
            raise StateError(f"{WHAT}: stored key {key!r} cannot be read ({exc})") from exc
    if set(dead) - set(parts):
        raise StateError(f"{WHAT}: tombstones without a chunk: {sorted(set(dead) - set(parts))}")
    return parts, dead, gone


def _parts(states: Mapping[str, dict], keys: list[tuple[int, str]]) -> list[dict]:
    out = []
    for start, key in keys:
        part = states[key]
        if part.get("start") != start:
            raise StateError(f"{WHAT}: stored key {key!r} holds the rows from {part.get('start')!r}")
        out.append(part)
    return out


def restore(cls, states: Mapping[str, dict], overrides: dict):
    if "meta" not in states:
        raise StateError(f"{WHAT}: no 'meta' key among the stored keys")
    meta = check_format(states["meta"], WHAT)
    if set(overrides) - OVERRIDABLE:
        raise ValueError(f"from_state: only {sorted(OVERRIDABLE)} may change, not {sorted(set(overrides) - OVERRIDABLE)}")
    config = dict(meta["config"]) | overrides
    config["segments"] = tuple(config["segments"])
    buf = cls(**config)
    parts, dead, gone = _split(list(states.keys()))
    for cid in sorted(parts):  # one chunk at a time: a mapping that decodes on access holds one chunk's rows
        capacity = buf.chunk_rows if cid == meta["open"] else None
        tomb = states[dead[cid]] if cid in dead else None
        buf._chunks[cid] = Chunk.from_parts(cid, _parts(states, parts[cid]), tomb, capacity)
    buf._open = buf._chunks.get(meta["open"]) if meta["open"] is not None else None
    buf._next_cid = meta["next_cid"]
    g = meta["gone"]
    buf._gone = Gone.from_state(buf.remember, g["seq"], g["held"], g["forgotten"], {s: states[k] for s, k in gone.items()})
    buf.counts = dict.fromkeys(buf.counts, 0) | meta["counts"]
    buf._rebuild_index()
    if any(c.columns["hash"].dtype != np.uint64 for c in buf._chunks.values()):
        raise StateError(f"{WHAT}: a stored chunk's hashes are not uint64")
    return buf
