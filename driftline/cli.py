"""``driftline`` command line: thin wrappers around the composition root (``app.py``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import yaml

from driftline import logs
from driftline.config import load_settings, masked
from driftline.config.settings import parse_duration
from driftline.errors import BrokerError, DeliveryError, DriftlineError, SourceError, StoreError
from driftline.redact import for_settings as redactor_for


def _settings(path: str):
    settings = load_settings(path)
    logs.protect(redactor_for(settings))  # from here on, its secrets are masked in every log line
    return settings


def _reference_problems(settings) -> list[tuple[str, str]]:
    """Each reference file's head: it must be readable and hold every declared feature."""
    from driftline.errors import ReferenceError_
    from driftline.streams.files import table_columns
    problems = []
    for i, spec in enumerate(settings.models):
        if spec.reference.path is None:
            continue
        where = f"models[{i}].reference.path"
        try:
            columns = set(table_columns(spec.reference.path))
        except ReferenceError_ as exc:
            problems.append((where, str(exc)))
            continue
        absent = [name for name in spec.all_features() if name not in columns]
        if absent:
            what = "feature" if len(absent) == 1 else "features"
            problems.append((where, f"{spec.reference.path} has no column for declared {what} {', '.join(absent)}"))
    return problems


def cmd_check_config(args) -> int:
    from driftline.errors import ConfigError
    settings = _settings(args.file)
    problems = _reference_problems(settings)
    if problems:
        raise ConfigError(problems, args.file)
    print(f"{args.file}: OK — {len(settings.models)} model(s): "
          + ", ".join(f"{m.name} ({len(m.all_features())} monitored)" for m in settings.models))
    if args.print:
        print(yaml.safe_dump(masked(settings), sort_keys=False))
    return 0


def _install_signals(service) -> None:
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)


class _StopRequested(Exception):
    """SIGTERM or SIGINT before the service could take them (start-up waits for the store and broker)."""


def _stop_starting(*_args) -> None:
    raise _StopRequested


def cmd_run(args) -> int:
    from driftline.app import build_service
    signal.signal(signal.SIGTERM, _stop_starting)
    signal.signal(signal.SIGINT, _stop_starting)
    settings = _settings(args.config)
    try:
        service = build_service(settings, output_format=args.output)
    except _StopRequested:
        logging.getLogger(__name__).warning("stopped during start-up, before consuming anything")
        return 0
    _install_signals(service)
    logging.getLogger(__name__).info("driftline running against %s, store %s",
                                     settings.kafka.bootstrap_servers, service.pipeline.store.describe())
    http = _serve_http(settings, service)
    try:
        service.run()
    finally:
        if http is not None:
            http.stop()
    return 0


def _serve_http(settings, service):
    """The API and dashboard beside ``run`` when ``http.port`` is set."""
    if settings.http.port is None:
        return None
    from driftline.app import build_http
    http = build_http(settings, service=service)
    print(f"driftline: dashboard and API on {http.url}/", file=sys.stderr, flush=True)
    return http


def cmd_ui(args) -> int:
    """The API and dashboard from the store alone (no Kafka), until SIGTERM/SIGINT."""
    import threading

    from driftline.app import build_http
    settings = _settings(args.config)
    port = args.port if args.port is not None else settings.http.port if settings.http.port is not None else 8321
    http = build_http(settings, port=port, store_url=args.database)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"driftline ui: dashboard on {http.url}/ , API on {http.url}/api/v1/ (store "
          f"{http.store_description})", flush=True)
    stop.wait()
    http.stop()
    return 0


def cmd_replay(args) -> int:
    from driftline.app import build_service, build_sinks
    from driftline.metrics import NullMetrics
    from driftline.ports import NoDeadLetters
    from driftline.runtime import run_to_end
    from driftline.streams.files import FileSource
    settings = _settings(args.config)
    sinks = build_sinks(settings, None, args.output)
    if not args.notify:
        sinks.pop("slack", None)
    source = FileSource(args.input, settings.kafka.batch_size)
    service = build_service(settings, source=source, dead_letters=NoDeadLetters(), sinks=sinks,
                            metrics=NullMetrics(), store_url=args.database, output_format=args.output)
    done = source.skip_stored(service.pipeline.offsets)
    if done:
        print(f"{args.input}: resuming after line {done}, already processed into "
              f"{service.pipeline.store.describe()}", file=sys.stderr)
    run_to_end(service, source)
    return 0


def cmd_demo(args) -> int:
    from driftline.demo import run_demo
    return run_demo(duration=args.duration, data_dir=Path(args.data_dir), output=args.output,
                    rate=args.rate, drift_after=args.drift_after, drift_for=args.drift_for,
                    http_port=None if args.http_port < 0 else args.http_port)


def cmd_reference(args) -> int:
    from driftline.app import build_store
    from driftline.monitor import reference_for
    from driftline.streams.files import read_table
    from driftline.types import CommitUnit
    settings = _settings(args.config)
    spec = settings.model(args.model)
    if spec is None:
        raise DriftlineError(f"unknown model {args.model!r} (configured: {', '.join(m.name for m in settings.models)})")
    try:
        profile = reference_for(spec, read_table(args.input), str(args.input))
    except ValueError as exc:
        raise DriftlineError(f"{args.input}: {exc}") from exc
    store = build_store(settings)
    unit = CommitUnit(references=[profile])
    store.commit(settings.kafka.group_id, unit)
    print(f"reference for {spec.name}: {profile.n} rows, {len(profile.features)} features → {store.describe()}")
    return 0


def cmd_alerts(args) -> int:
    from driftline.app import build_store
    settings = _settings(args.config)
    store = build_store(settings)
    if args.retry_failed:
        now = time.time()
        n = store.outbox.retry_failed(now, now + settings.alerts.delivery_deadline)
        print(f"{n} given-up notification(s) back to pending, deadline in "
              f"{_age(settings.alerts.delivery_deadline)}")
        return 0
    if args.pending:
        return _print_pending(store, redactor_for(settings), settings.alerts.delivery_deadline, args.json)
    for ev in store.reads.alert_events()[-args.limit:]:
        print(orjson.dumps(ev).decode() if args.json else
              f"{ev['window_end']}  {ev['status']:8} {ev['severity']:8} {ev['model']} {ev['version']} "
              f"{ev['rule']}: {ev['subject']} ({ev['value']:.3g} vs {ev['threshold']:.3g})")
    return 0


def _age(seconds: float) -> str:
    """``42s``, ``7m``, ``3.5h``, ``2d``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}".removesuffix(".0") + unit
    return f"{seconds:.0f}s"


def _print_pending(store, redact, deadline: float, as_json: bool) -> int:
    """Notifications not delivered yet (``pending``) and given up (``failed``)."""
    now = time.time()
    rows = store.outbox.undelivered()
    for r in rows:
        due = r["deadline_at"] if r["deadline_at"] is not None else r["created_at"] + deadline
        row = {"id": r["id"], "status": "given up" if r["status"] == "failed" else "pending",
               "sink": r["sink"], "kind": r["kind"], "attempts": r["attempts"], "age": _age(now - r["created_at"]),
               "deadline_in": _age(due - now) if r["status"] == "pending" else "-",
               "last_error": redact(r["last_error"] or "")}
        print(orjson.dumps(row).decode() if as_json else
              f"{row['id']:>6}  {row['status']:8}  {row['sink']:18} {row['kind']:7} {row['attempts']:>3} attempt(s)  "
              f"age {row['age']:>6}  deadline in {row['deadline_in']:>6}  {row['last_error'] or '-'}")
    if not as_json:
        given_up = sum(r["status"] == "failed" for r in rows)
        print(f"{len(rows) - given_up} pending, {given_up} given up"
              + (" (`driftline alerts -c FILE --retry-failed` tries them again)" if given_up else ""))
    return 0


def cmd_silence(args) -> int:
    from driftline.app import build_store
    settings = _settings(args.config)
    if settings.model(args.model) is None:
        raise DriftlineError(f"unknown model {args.model!r}")
    until = time.time() + parse_duration(args.duration)
    build_store(settings).outbox.add_silence(args.model, args.rule, until, args.reason or "")
    print(f"silenced {args.model}{' ' + args.rule if args.rule else ''} for {args.duration}")
    return 0


def cmd_db_upgrade(args) -> int:
    from driftline.store import SqlStore
    store = SqlStore(_settings(args.config).store.url, upgrade=True)
    print(f"{store.describe()}: schema at revision {store.schema_version()} (newest)")
    return 0


def cmd_db_reset_state(args) -> int:
    from driftline.app import build_store
    settings = _settings(args.config)
    group = settings.kafka.group_id
    n = build_store(settings).state.reset(group)
    print(f"consumer group {group}: {n} stored state(s) discarded (open windows and detector state; "
          "closed windows, alerts and offsets are kept)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driftline", description="Watch ML models in production from Kafka.")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log at info level (-vv: debug); same as --log-level info")
    p.add_argument("--log-level", choices=list(logs.LEVELS), type=str.lower,
                   help="debug, info, warning (default) or error; else $DRIFTLINE_LOG_LEVEL")
    p.add_argument("--log-format", choices=list(logs.FORMATS), default=None,
                   help="text (default) or json: one object per line (time, level, logger, message, exception)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="the always-on service")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--output", choices=["text", "jsonl"], default="text")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="embedded broker + simulated drifting model + the service")
    s.add_argument("--duration", type=parse_duration, default=None, help="stop after e.g. 90s")
    s.add_argument("--data-dir", default=".driftline")
    s.add_argument("--output", choices=["text", "jsonl"], default="text")
    s.add_argument("--rate", type=int, default=1000, help="simulated events per second")
    s.add_argument("--drift-after", type=int, default=30000, help="events before the traffic drifts")
    s.add_argument("--drift-for", type=int, default=30000, help="drifted events before it recovers")
    s.add_argument("--http-port", type=int, default=8321, help="dashboard and API port (0: any free one, -1: off)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("replay", help="the same pipeline over a JSON-lines file, no broker")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("input")
    s.add_argument("--output", choices=["text", "jsonl"], default="jsonl")
    s.add_argument("--database", default="sqlite://", help="store URL (default: in memory)")
    s.add_argument("--notify", action="store_true", help="also post to Slack")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("ui", help="serve the dashboard, the HTTP API and health endpoints from the store (no Kafka)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--port", type=int, default=None, help="default: http.port, else 8321 (0: any free port)")
    s.add_argument("--database", default=None, help="store URL (default: store.url)")
    s.set_defaults(func=cmd_ui)

    s = sub.add_parser("check-config", help="validate a configuration file")
    s.add_argument("file")
    s.add_argument("--print", action="store_true", help="print it with secrets masked")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("reference", help="build a model's reference profile from a file")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("model")
    s.add_argument("input", help="CSV, Parquet or JSON lines")
    s.set_defaults(func=cmd_reference)

    s = sub.add_parser("alerts", help="list alert state changes, or notifications not delivered")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    what = s.add_mutually_exclusive_group()
    what.add_argument("--pending", action="store_true",
                      help="list notifications not delivered yet and those given up at their deadline")
    what.add_argument("--retry-failed", action="store_true",
                      help="put given-up notifications back to pending with a fresh delivery deadline")
    s.set_defaults(func=cmd_alerts)

    s = sub.add_parser("silence", help="mute a model's (or one rule's) alerts for a while")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("model")
    s.add_argument("--for", dest="duration", required=True, help="e.g. 2h")
    s.add_argument("--rule")
    s.add_argument("--reason")
    s.set_defaults(func=cmd_silence)

    s = sub.add_parser("db", help="database maintenance")
    dsub = s.add_subparsers(dest="db_command", required=True)
    u = dsub.add_parser("upgrade", help="create or upgrade the schema")
    u.add_argument("-c", "--config", required=True)
    u.set_defaults(func=cmd_db_upgrade)
    r = dsub.add_parser("reset-state", help="discard the consumer group's open windows and detector state "
                                            "(e.g. a state this release cannot read); results are kept")
    r.add_argument("-c", "--config", required=True)
    r.set_defaults(func=cmd_db_reset_state)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        level = logs.resolve_level(args.log_level, args.verbose)
        fmt = args.log_format or os.environ.get("DRIFTLINE_LOG_FORMAT") or "text"
        logs.setup(level, fmt)
    except ValueError as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except DriftlineError as exc:
        print(logs.REDACT(f"driftline: error: {exc}"), file=sys.stderr)
        return exit_code(exc)


def exit_code(exc: DriftlineError) -> int:
    """2: bad configuration or input (the message names it); 1: a runtime failure (store, broker, outage)."""
    return 1 if isinstance(exc, (StoreError, SourceError, BrokerError, DeliveryError)) else 2


if __name__ == "__main__":
    sys.exit(main())
