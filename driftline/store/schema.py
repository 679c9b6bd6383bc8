"""The database tables. Aggregates only: no raw feature values are stored."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

references = Table(
    "references", metadata,
    Column("model", String(200), primary_key=True),
    Column("profile", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

windows = Table(
    "windows", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("start", String(40), nullable=False),
    Column("end", String(40), nullable=False),
    Column("count", Integer, nullable=False),
    Column("invalid", Integer, nullable=False),
    Column("late", Integer, nullable=False),
    Column("tests_run", Boolean, nullable=False),
    Column("drifted", Integer, nullable=False),
    Column("summary", JSON, nullable=False),
    UniqueConstraint("model", "version", "seq", "start", name="uq_window"),
    Index("ix_windows_recent", "model", "version", "end"),  # migration 0005: status and windows reads
)

drift_results = Table(
    "drift_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_id", Integer, ForeignKey("windows.id"), nullable=False, index=True),
    Column("feature", String(200), nullable=False),
    Column("method", String(40), nullable=False),
    Column("statistic", Float, nullable=False),
    Column("p_value", Float),
    Column("threshold", Float, nullable=False),
    Column("drifted", Boolean, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("state", JSON, nullable=False),
)

alert_events = Table(
    "alert_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("window_end", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("fingerprint", "status", "window_end", name="uq_alert_event"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),
    Column("sink", String(40), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False, default=0.0),
    Column("last_error", String(500)),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float),
    Column("deadline_at", Float),  # set by `alerts --retry-failed`; else created_at + delivery_deadline
    Column("receipt", JSON),  # what the sink said when it accepted it (Receipt.detail)
    # migration 0010: claims (docs/alerting.md "Several processes"): the incident (with the sink,
    # the unit one process owns at a time), the process that claimed the row last, its lease
    Column("incident", String(40)),
    Column("claimed_by", String(120)),
    Column("claimed_until", Float),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_incident", "incident", "sink"),
)

triggers = Table(
    "triggers", metadata,
    Column("id", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("window_end_ms", BigInteger, nullable=False),
    Column("event", JSON, nullable=False),
)

incidents = Table(
    "incidents", metadata,
    Column("id", String(40), primary_key=True),
    Column("key", String(40), nullable=False),  # the group's labels' hash: one open incident per key
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # firing | resolved
    Column("severity", String(20), nullable=False),
    Column("opened_at", String(40)),
    Column("updated_at", String(40)),
    Column("resolved_at", String(40)),
    Column("state", JSON, nullable=False),  # Incident.to_state()
    Index("ix_incidents_status", "status", "model"),
)

performance = Table(  # migration 0008: realized performance per window, revised as its labels come
    "performance", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("window_key", BigInteger, nullable=False),  # start (epoch ms) of a time window, seq of a count window
    Column("window_kind", String(10), nullable=False),  # time | count
    Column("start", String(40)),
    Column("end", String(40)),
    Column("seq", Integer),
    Column("count", Integer, nullable=False),  # the window's predictions waiting for labels (sampled in)
    Column("labelled", Integer, nullable=False),
    Column("labelled_share", Float),
    Column("delay_p50", Float),  # seconds
    Column("delay_p90", Float),
    Column("delay_max", Float),
    Column("metrics", JSON, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    # migration 0009: "" for the whole version, "feature=value" for one segment
    Column("segment", String(400), nullable=False, server_default=""),
    Column("estimated", JSON),  # estimated metrics (before labels and beside them), or null
    Column("reference", JSON),  # the reference's metrics and the comparison with them, or null
    Column("versions", JSON),  # the window against the model's previous version, or null
    Column("findings", JSON),  # e.g. concept drift on the error stream: a list, or null
    UniqueConstraint("model", "version", "window_key", "segment", name="uq_performance"),
)

offsets = Table(
    "offsets", metadata,
    Column("group", String(200), primary_key=True),
    Column("topic", String(300), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, nullable=False),
)

states = Table(
    "states", metadata,
    Column("group", String(200), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),  # a version, or "" for the model's own state
    Column("source", String(300), primary_key=True),  # topic-partition, "*" for all of them
    Column("data", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)

checkpoints = Table(  # the pickled checkpoint of releases before 0003; converted on start, then deleted
    "checkpoints", metadata,
    Column("group", String(200), primary_key=True),
    Column("state", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)

silences = Table(  # migration 0006: label matchers (was model, rule, until, reason)
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),  # [[name, op, value], …]: driftline/silencing.py
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),  # set to the time `silence expire` ended it
    Column("author", String(200), nullable=False),
    Column("comment", String(1000), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expired_at", Float),  # when it was expired early, else null
    Index("ix_silences_ends", "ends_at"),  # the dispatcher's active silences, every pass
)

partials = Table(  # migration 0011: scale-out, a partition's share of a closed window until it is merged
    "partials", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("topic", String(300), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("closed_by", String(20), nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # the encoded Window state (driftline/state.py)
    Column("created_at", Float, nullable=False),
    UniqueConstraint("group", "model", "version", "start_ms", "topic", "partition", name="uq_partial"),
    Index("ix_partials_model", "group", "model", "start_ms"),
)

partitions = Table(  # migration 0011: scale-out, each source partition's event-time watermark
    "partitions", metadata,
    Column("group", String(200), primary_key=True),
    Column("topic", String(300), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("watermark", BigInteger),  # newest event time read (epoch ms), null before the first
    Column("models", JSON, nullable=False),  # the models it has carried
    Column("idle", Boolean, nullable=False),  # no record for kafka.partition_idle: its windows are closed
    Column("owner", String(120)),  # the process that owns it (fencing token)
    Column("updated_at", Float, nullable=False),
    Column("seen", JSON),  # migration 0013: its versions' newest event and last arrival (no-data rules)
    Column("read_to", BigInteger),  # migration 0014: the offset its owner found its end at (null: not at its end)
)

perf_partials = Table(  # migration 0012: scale-out, a partition's performance accumulator of a window
    "perf_partials", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("window_key", BigInteger, nullable=False),  # the window's start (epoch ms)
    Column("topic", String(300), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # the encoded accumulator (driftline/state.py)
    Column("newest", BigInteger, nullable=False),  # the partition's newest event or label time of the model (ms)
    Column("stamp", BigInteger, nullable=False),  # a new random value at every write
    Column("dirty", Boolean, nullable=False),  # written since the merger last revised its window
    Column("finished", Boolean, nullable=False),  # no label can reach the partition's share any more
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("group", "model", "version", "window_key", "topic", "partition", name="uq_perf_partial"),
    Index("ix_perf_partials_model", "group", "model", "dirty"),
)
