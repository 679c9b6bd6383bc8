"""Scale-out (``kafka.scale_out``): several processes in one consumer group.

``partition`` keeps one partition's open windows and watermark, ``pipeline`` the partitions
a process owns and its checkpoints, ``merge`` the exactly-once merge of partial windows,
``limits`` what the mode leaves out (README "Scaling out", docs/architecture.md).
"""
