"""``driftline init``: a commented starting configuration inferred from a sample.

The sample is events (JSON lines, or records sampled from a Kafka topic) or a training
table (CSV, Parquet, flat JSON lines). ``sample`` reads it, ``shape`` finds where the
model, version, id, timestamp, features and prediction live, ``kinds`` infers each
feature's kind, ``timing`` proposes windows and a reference, ``propose`` puts them
together and ``render`` writes the YAML with the reasons as comments. Nothing here
talks to Kafka or the store: the CLI passes the sampled records in.
"""

from driftline.init.propose import Proposal, from_events, from_table

__all__ = ["Proposal", "from_events", "from_table"]
