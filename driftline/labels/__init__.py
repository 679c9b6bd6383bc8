"""Labels: joining late ground truth to the predictions it belongs to.

:class:`~driftline.labels.join.JoinBuffer` holds the pending predictions of one
model compactly (numpy columns in append-only chunks) and joins label batches to
them; see ``docs/labels.md``.
"""
