"""Rebuild a :class:`~driftline.labels.join.JoinBuffer` from its stored keys.

Keys: ``meta`` (format, configuration, counters, the next chunk id, the open chunk,
the removed-id record's bookkeeping), ``chunk/<cid>/<first row>`` (a part of a
chunk: its rows from that one on), ``dead/<cid>`` (the chunk's removed rows) and
``gone/<seq>`` (one segment of removed ids). Anything else is refused.
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


def _split(states: Mapping[str, dict]):
    parts, dead, gone = defaultdict(list), {}, {}
    for key, st in states.items():
        kind, _, rest = key.partition("/")
        try:
            if kind == "chunk":
                cid, start = rest.split("/")
                if int(start) != st["start"]:
                    raise ValueError(f"part starts at {st['start']}")
                parts[int(cid)].append(st)
            elif kind == "dead":
                dead[int(rest)] = st
            elif kind == "gone":
                gone[int(rest)] = st
            elif key != "meta":
                raise ValueError("unknown key")
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{WHAT}: stored key {key!r} cannot be read ({exc})") from exc
    if set(dead) - set(parts):
        raise StateError(f"{WHAT}: tombstones without a chunk: {sorted(set(dead) - set(parts))}")
    return parts, dead, gone


def restore(cls, states: Mapping[str, dict], overrides: dict):
    if "meta" not in states:
        raise StateError(f"{WHAT}: no 'meta' key among the stored keys")
    meta = check_format(states["meta"], WHAT)
    if set(overrides) - OVERRIDABLE:
        raise ValueError(f"from_state: only {sorted(OVERRIDABLE)} may change, not {sorted(set(overrides) - OVERRIDABLE)}")
    config = dict(meta["config"]) | overrides
    config["segments"] = tuple(config["segments"])
    buf = cls(**config)
    parts, dead, gone = _split(states)
    for cid in sorted(parts):
        capacity = buf.chunk_rows if cid == meta["open"] else None
        buf._chunks[cid] = Chunk.from_parts(cid, parts[cid], dead.get(cid), capacity)
    buf._open = buf._chunks.get(meta["open"]) if meta["open"] is not None else None
    buf._next_cid = meta["next_cid"]
    g = meta["gone"]
    buf._gone = Gone.from_state(buf.remember, g["seq"], g["held"], g["forgotten"], gone)
    buf.counts = dict.fromkeys(buf.counts, 0) | meta["counts"]
    buf._rebuild_index()
    if any(c.columns["hash"].dtype != np.uint64 for c in buf._chunks.values()):
        raise StateError(f"{WHAT}: a stored chunk's hashes are not uint64")
    return buf
