"""Scale-out: the pipeline of one of several processes in a consumer group.

The service loop (``runtime.py``) drives it as it drives :class:`~driftline.pipeline.Pipeline`.
It holds a :class:`~driftline.scale.partition.Partition` per assigned partition (loaded on
assignment, checkpointed and dropped on revocation, dropped on loss), splits each batch by
partition, and writes one transaction per checkpoint: a partition's offsets, the states that
changed (source ``topic:partition``), the partials that closed and the partition's mark. Every
``checkpoint_every`` seconds it writes every owned partition; between those, only the
partitions the merge waits for (one that closed a window, became idle or was newly assigned),
each whole, so each partition's stored offsets and state always agree. After a checkpoint
(and at least every ``merge_every`` seconds) the :class:`~driftline.scale.merge.Merger`
merges what is ready.
"""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np

from driftline import state as st
from driftline.detectors.profile import ReferenceProfile
from driftline.metrics import NullMetrics
from driftline.pipeline import Pipeline
from driftline.scale.labels import LabelTotals
from driftline.scale.merge import Merger
from driftline.scale.partition import Partition, source_of
from driftline.store.partials import Fenced
from driftline.streams.decode import Decoded, Decoder
from driftline.types import Batch, CommitUnit

log = logging.getLogger(__name__)

TP = tuple[str, int]


def _sources(batch: Batch) -> list[TP]:
    if batch.sources is not None:
        return batch.sources
    return [(p.topic, p.partition) for p in map(batch.position, range(len(batch.values)))]


def _pieces(where: np.ndarray):
    """``(partition index, selection)`` for each partition among a group's rows: one stable
    permutation puts each partition's rows together, in order, so every piece is a slice of it
    (a view), not a mask per partition over every column."""
    if where.size and (where == where[0]).all():
        yield int(where[0]), slice(None), None
        return
    order = np.argsort(where, kind="stable")
    counts = np.bincount(where)
    ends = np.cumsum(counts)
    for p in np.flatnonzero(counts).tolist():
        yield p, slice(int(ends[p] - counts[p]), int(ends[p])), order


def by_partition(decoded: Decoded, batch: Batch) -> dict[TP, Decoded]:
    """A batch decoded once, split by source partition (each group's and each model's labels'
    rows keep their order): the same as decoding each partition's records on its own, without
    paying the decoder's and the statistics' per-call costs once per partition."""
    sources = _sources(batch)
    tps = list(dict.fromkeys(sources))
    if len(tps) == 1:
        return {tps[0]: decoded}
    index = {tp: i for i, tp in enumerate(tps)}
    code = np.fromiter(map(index.__getitem__, sources), dtype=np.int32, count=len(sources))
    out = {tp: Decoded() for tp in tps}
    for key, cols in decoded.groups.items():
        ordered = cols
        for p, sel, order in _pieces(code[decoded.rows[key]]):
            ordered = cols.take(order) if order is not None and ordered is cols else ordered
            out[tps[p]].groups[key] = ordered.take(sel)
    for name, labels in decoded.labels.items():
        ordered = labels
        for p, sel, order in _pieces(code[decoded.label_rows[name]]):
            ordered = labels.take(order) if order is not None and ordered is labels else ordered
            out[tps[p]].labels[name] = ordered.take(sel)
    for record in decoded.bad:
        part = out[(record.position.topic, record.position.partition)]
        part.bad.append(record)
        if record.model is not None and (record.model, record.version) in decoded.invalid:  # counted in its window
            part.invalid[(record.model, record.version)] = part.invalid.get((record.model, record.version), 0) + 1
    return out


class ScaleOutPipeline:
    """Per-partition open windows and offsets; partials to the store; the merge."""

    def __init__(self, settings, store, router, dead_letter, output, group: str = "driftline",
                 checkpoint_every: float = 5.0, clock=time.monotonic, wall=time.time, metrics=None,
                 topology=None, owner: str | None = None, merge_every: float = 1.0):
        self.settings, self.store, self.router = settings, store, router
        self.dead_letter, self.output, self.group = dead_letter, output, group
        self.checkpoint_every, self.clock, self.wall = checkpoint_every, clock, wall
        self.metrics = metrics or NullMetrics()
        self.owner = owner or f"{group}:{uuid.uuid4().hex[:12]}"
        self.merge_every = merge_every
        self.decoder = Decoder(settings.models)
        secret = settings.store.state_secret
        self._secret = secret.get_secret_value().encode() if secret else None
        self.idle_after = settings.kafka.partition_idle
        k = settings.kafka
        #: label topic → its event topic (co-partitioned: a label on partition p joins partition p's predictions)
        self.paired = dict(zip(k.label_topics, k.topics)) if len(k.label_topics) == len(k.topics) else {}
        self.merger = Merger(settings, store, router, group, self._secret, topology or (lambda: {}),
                             self.metrics, self._print, wall)
        self.monitors = self.merger.monitors  # the models' references (``app.load_references``)
        for name, profile in store.state.load_references().items():
            if name in self.monitors:
                self.monitors[name].profile = ReferenceProfile.from_dict(profile)
        self.parts: dict[TP, Partition] = {}
        self.offsets: dict[TP, int] = {}
        self.labels: dict = {}
        self.label_totals = LabelTotals()  # the label counts of the partitions it owns and owned
        self.pending: CommitUnit | None = None
        self.unknown_invalid = 0
        self._dirty = False
        self._staged: list[TP] = []  # the partitions of the unit staged last (all, or those the merge waits for)
        self._last_checkpoint = self._last_merge = clock()
        self._output_failed = False

    def set_reference(self, profile: ReferenceProfile) -> None:
        self.monitors[profile.model].profile = profile

    # -- assignment -------------------------------------------------------------------

    def home(self, tp: TP) -> TP:
        """The event partition whose state a partition's records join: a label topic's
        partition p, that of its paired event topic; any other, itself."""
        return (self.paired[tp[0]], tp[1]) if tp[0] in self.paired else tp

    def label_partitions(self, tp: TP) -> list[TP]:
        """The label topics' partitions read with event partition ``tp`` (the same number)."""
        return [(label, tp[1]) for label, topic in self.paired.items() if topic == tp[0]]

    def assign(self, tps: list[TP]) -> dict[TP, int]:
        """Load the state of newly assigned partitions; return their stored offsets, and those of
        their label partitions (read by their owner too, see :meth:`label_partitions`)."""
        stored = self.store.state.load_offsets(self.group)
        marks = self.store.partials.marks(self.group)
        profiles = {n: m.profile for n, m in self.monitors.items()}
        catalogues = {n: c for n in self.monitors if (c := self.merger.catalogue(n)) is not None}
        for tp in tps:
            part = Partition(tp, self.settings.models, profiles, self.owner, self.wall(), catalogues)
            blobs = self.store.state.load_states(self.group, source_of(tp))
            part.load({(m, k): st.decode(v, f"model {m}, version {k}, partition {source_of(tp)}", self._secret)
                       for (m, k, _src), v in blobs.items()}, marks.get(tp))
            self.parts[tp] = part
            if tp in stored:
                self.offsets[tp] = part.offset = stored[tp]
            for label in self.label_partitions(tp):
                if label in stored:
                    self.offsets[label] = stored[label]
        self._dirty = True  # the first checkpoint claims their marks
        self.metrics_assigned()
        return {x: stored[x] for tp in tps for x in (tp, *self.label_partitions(tp)) if x in stored}

    def revoke(self, tps: list[TP]) -> dict[TP, int]:
        """Checkpoint the revoked partitions, then forget them; return the offsets to commit."""
        mine = [tp for tp in tps if tp in self.parts]
        offsets = {}
        if mine:
            try:
                offsets = self._write(self._unit(mine, force=True), mine)
            except Exception as exc:  # noqa: BLE001 - the next owner resumes from the last checkpoint
                log.warning("could not checkpoint revoked partition(s) %s (%s); their next owner reads again "
                            "from the last checkpoint", ", ".join(map(source_of, mine)), exc)
        self.lose(mine)
        return offsets

    def lose(self, tps: list[TP]) -> None:
        for tp in tps:
            part = self.parts.pop(tp, None)
            if part is not None:
                self.label_totals.retire(part.labels)
            for x in (tp, *self.label_partitions(tp)):
                self.offsets.pop(x, None)
        self.metrics_assigned()

    def at_end(self, tp: TP, offset: int | None) -> None:
        """The consumer reached the end of ``tp`` at ``offset`` (see :meth:`Partition.reached_end`);
        its mark (``read_to``) goes at the next periodic checkpoint, if not before."""
        if (part := self.parts.get(tp)) is not None:
            part.reached_end(offset)
            self._dirty = self._dirty or part.dirty

    def metrics_assigned(self) -> None:
        self.metrics.set_assignment(sorted(self.parts))

    # -- batches ----------------------------------------------------------------------

    def process(self, batch: Batch, force: bool = False) -> dict[TP, int] | None:
        unit = self._stage(batch, force)
        offsets = None if unit is None else self._write(unit, self._staged)
        if offsets is not None or self.clock() - self._last_merge >= self.merge_every:
            self._last_merge = self.clock()
            self.merger.run(self.wall())
            self._release_quiet()
        return offsets

    def _release_quiet(self) -> None:
        """Close the windows of quiet partitions (read to their end, nothing for
        ``kafka.partition_idle``) that the newest event time of any other partition has passed:
        one process closes a window by the events of any partition, so a quiet partition
        neither holds it open nor closes it before that (its own later events would be late
        there too). Read to its end means both: its consumer reported the end at the offset
        read up to (a consumer starved in a rebalance, halfway through a record batch, is
        not quiet), and the broker's high watermark is not past that offset (records came
        since the report)."""
        quiet = [p for p in self.parts.values() if p.idle and p.holds_open and p.at_end]
        if not quiet:
            return
        ends = self.merger.bounds([p.tp for p in quiet]) if self.merger.ends is not None else {}  # this pass's
        marks = self.store.partials.marks(self.group)
        seen = {tp: m["watermark"] for tp, m in marks.items()} | {tp: p.watermark for tp, p in self.parts.items()}
        for part in quiet:
            bounds = ends.get(part.tp)
            if self.merger.ends is not None and (bounds is None or bounds[1] > self.offsets.get(part.tp, bounds[0])):
                continue  # records wait for it at the broker: not quiet, only behind
            others = [wm for tp, wm in seen.items() if tp != part.tp and wm is not None]
            if others:
                part.close_to(max(others))

    def retry_pending(self) -> dict[TP, int] | None:
        return None if self.pending is None else self._write(self.pending, self._staged)

    def _stage(self, batch: Batch, force: bool) -> CommitUnit | None:
        started, now = self.clock(), self.wall()
        if batch.values:
            decoded = self.decoder.decode(batch, int(now * 1000))
            for tp, mine in by_partition(decoded, batch).items():
                part = self.parts.get(self.home(tp))
                if part is None:
                    continue  # read just before it was revoked: its new owner reads it again
                self._bad(mine.bad)
                if part.tp == tp:  # a label partition's records are labels: they move no window
                    part.ingest(mine, now)
                part.join(mine)  # its label events: their predictions are on this partition
                self.metrics.observe_batch(mine, self.clock() - started)
        for tp, end in batch.next_offsets.items():
            if (part := self.parts.get(self.home(tp))) is not None:
                self.offsets[tp] = end
                if part.tp == tp:
                    part.offset = end
                self._dirty = True
        for part in self.parts.values():
            part.tick(now, self.idle_after)
        due = self.clock() - self._last_checkpoint >= self.checkpoint_every
        if force or (due and self._dirty):
            self._staged = list(self.parts)
        else:  # only the partitions the merge waits for: the others at the periodic checkpoint
            self._staged = [tp for tp, p in self.parts.items() if p.closed or (p.dirty and p.holds_nothing) or p.claim]
            if not self._staged:
                return None
        return self._unit(self._staged, force)

    def _unit(self, tps: list[TP], force: bool) -> CommitUnit:
        unit = CommitUnit()
        for tp in tps:
            self.parts[tp].take(unit, self._secret)
            for x in (tp, *self.label_partitions(tp)):
                if x in self.offsets:
                    unit.offsets[x] = self.offsets[x]
        return unit

    def _bad(self, bad) -> None:
        for record in bad:
            self.dead_letter.send(record)
            if record.model not in self.monitors:
                self.unknown_invalid += 1

    def _write(self, unit: CommitUnit, tps: list[TP]) -> dict[TP, int]:
        self.pending = unit
        self.dead_letter.flush()
        started = self.clock()
        while True:
            try:
                self.store.commit(self.group, unit)
                break
            except Fenced as exc:  # reassigned in a rebalance this process missed: its new owner has it
                log.warning("%s", exc)
                self.lose(exc.partitions)
                _without(unit, [x for tp in exc.partitions for x in (tp, *self.label_partitions(tp))])
        self.pending = None
        self.metrics.observe_commit(self.clock() - started)
        if any(p.labels.models for p in self.parts.values()):
            self.metrics.observe_labels(self.label_totals.view(self.parts.values()), [])
        for tp in tps:
            if tp in self.parts:
                self.parts[tp].checkpointed()
        if set(self.parts) <= set(tps):  # every partition's offsets and state are stored
            self._dirty, self._last_checkpoint = False, self.clock()
        return dict(unit.offsets)

    _print = Pipeline._print  # the stored window on the output; a closed stdout is not the input's fault

    # -- the service loop's other calls --------------------------------------------------

    def reload(self) -> None:
        """Forget everything since the last checkpoint: every owned partition from the store."""
        self.pending = None
        owned = list(self.parts)
        self.parts, self.offsets = {}, {}
        self.assign(owned)
        self.router.restore()

    def unstored_for(self) -> float:
        return self.clock() - self._last_checkpoint if self._dirty else 0.0

    def end_of_input(self) -> dict[TP, int]:
        raise NotImplementedError("scale-out serves Kafka only; `driftline replay` runs one process")


def _without(unit: CommitUnit, tps: list[TP]) -> None:
    """Take the partitions ``tps`` out of ``unit`` (their offsets, states, partials and marks)."""
    for tp in tps:
        unit.offsets.pop(tp, None)
        unit.marks.pop(tp, None)
        for key in [k for k in unit.states if k[2] == source_of(tp)]:
            unit.states.pop(key)
        unit.partials = [p for p in unit.partials if (p["topic"], p["partition"]) != tp]
        unit.perf_partials = [p for p in unit.perf_partials if (p["topic"], p["partition"]) != tp]
