"""What scale-out mode (``kafka.scale_out: true``) supports, checked at ``check-config`` and start-up.

Several processes share one consumer group only through PostgreSQL (partials, partition
watermarks and a lock per model that dies with its session). Left out, each with the
YAML path that turns it on, because a partition's share of it cannot be merged:

- count windows (``window.size``): "the next 1,000 events" has no meaning across partitions
  that are read at different speeds; time windows are merged by their event-time bounds;
- ``kafka.label_topics`` (with labels) that do not pair one to one with ``kafka.topics``: a
  label joins its prediction in the process owning the prediction's partition, so labels go
  on the event topics with their prediction's key, or on a label topic co-partitioned with
  its event topic (``label_topics[i]`` with ``topics[i]``, the same partition count, checked
  at start-up: ``driftline/streams/kafka.py:copartitioned``);
- a segment's reference collected from the stream (``reference.segment_first_n``; a model with
  ``segments`` needs ``reference.path`` or stored segment references): a segment whose
  reference would be (too few rows in the file, ``(other)``, ``(missing)``) is not watched;
  and a feature's segments are fixed at start-up from the model's reference (its most frequent
  values, at most ``max_segments``), not first seen (``driftline/scale/segments.py``);
- a reference collected from the stream (``reference.first_n``) unless one is already
  stored (``driftline reference``): every process must bin on the same reference.

Sequence tests run in the merger, on the merged windows in order (the trend test); the
prediction ADWIN, which needs one ordered stream of predictions, is not computed. ``no_data``
rules are evaluated by the merger from every partition's mark (``driftline/scale/silence.py``:
a gap inside one window is not seen, and a version alone on a partition that carries
nothing else is seen silent by the wall clock only).
"""

from __future__ import annotations


def check_references(settings, stored: set[str]) -> None:
    """At start-up: every model must have a reference from a file or the store, and a model with
    ``segments`` its segments' too (their rows of the file, or stored ``<model>[<feature>=<value>]``)."""
    from driftline.errors import ConfigError
    for i, spec in enumerate(settings.models):
        if spec.reference.path is None and spec.name not in stored:
            raise ConfigError([(f"models[{i}].reference.first_n",
                                f"model {spec.name}: kafka.scale_out cannot collect a reference from the "
                                "stream (each process sees some partitions); build one first with "
                                "`driftline reference`, or set reference.path")])
        if spec.segments and spec.reference.path is None and not any(n.startswith(f"{spec.name}[") for n in stored):
            raise ConfigError([(f"models[{i}].reference.path",
                                f"model {spec.name}: kafka.scale_out cannot collect its segments' references "
                                "from the stream; set reference.path (each segment's reference is built from "
                                "its rows of the file)")])
