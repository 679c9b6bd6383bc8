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
from driftline.errors import BrokerError, DeliveryError, DriftlineError, InputError, SourceError, StoreError
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
    for i, spec in enumerate(settings.models):
        if settings.kafka.scale_out and spec.reference.path is None:  # the store is not opened here
            print(f"note: models[{i}].reference: kafka.scale_out cannot collect model {spec.name}'s reference "
                  f"from the stream; `driftline run` refuses to start unless one is stored "
                  f"(`driftline reference -c {args.file} {spec.name} DATA`) or reference.path is set")
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
    from driftline.runtime import tune_gc
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
    tune_gc()
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

    from driftline.app import build_http, existing_store
    settings = _settings(args.config)
    existing_store(settings, args.database).close()  # a mistyped path is an error, not a new empty store
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
    from driftline.runtime import run_to_end, tune_gc
    from driftline.streams.files import FileSource
    settings = _settings(args.config)
    sinks = build_sinks(settings, None, args.output)
    if not args.notify:  # a replay of old traffic pages no one unless asked to
        for paging in ("slack", "pagerduty", "alertmanager"):
            sinks.pop(paging, None)
    from driftline.progress import Progress, Tracked
    plain = FileSource(args.input, settings.kafka.batch_size)
    bar = Progress(f"replay {Path(args.input).name}", plain.size())
    source = Tracked(plain, bar)
    service = build_service(settings, source=source, dead_letters=NoDeadLetters(), sinks=sinks,
                            metrics=NullMetrics(), store_url=args.database, output_format=args.output)
    done = source.skip_stored(service.pipeline.offsets)
    if done:
        print(f"{args.input}: resuming after line {done}, already processed into "
              f"{service.pipeline.store.describe()}", file=sys.stderr)
    tune_gc()
    try:
        run_to_end(service, source)
    finally:
        bar.close()
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
    from driftline.progress import Progress
    size = Path(args.input).stat().st_size if Path(args.input).is_file() else None
    try:
        with Progress(f"reference {spec.name}: reading, then profiling", size) as bar:
            columns = read_table(args.input)
            bar.to(size or 0)
            profile = reference_for(spec, columns, str(args.input))
    except ValueError as exc:
        raise DriftlineError(f"{args.input}: {exc}") from exc
    store = build_store(settings)
    unit = CommitUnit(references=[profile])
    store.commit(settings.kafka.group_id, unit)
    print(f"reference for {spec.name}: {profile.n} rows, {len(profile.features)} features → {store.describe()}")
    return 0


def cmd_alerts(args) -> int:
    from driftline.app import existing_store
    settings = _settings(args.config)
    store = existing_store(settings)
    if args.retry_failed:
        now = time.time()
        n = store.outbox.retry_failed(now, now + settings.alerts.delivery_deadline)
        print(f"{n} given-up notification(s) back to pending, deadline in "
              f"{_age(settings.alerts.delivery_deadline)}")
        return 0
    if args.pending:
        return _print_pending(store, redactor_for(settings), settings.alerts.delivery_deadline, args.json)
    _print_incidents(store.reads.incidents(args.resolved), args.json)
    for ev in store.reads.alert_events()[-args.limit:]:
        print(orjson.dumps(ev).decode() if args.json else
              f"{ev['window_end']}  {ev['status']:8} {ev['severity']:8} {ev['model']} {ev['version']} "
              f"{ev['rule']}: {ev['subject']} ({ev['value']:.3g} vs {ev['threshold']:.3g})")
    return 0


def _print_incidents(rows: list[dict], as_json: bool) -> None:
    """Open incidents, then recently resolved ones: one JSON line each (``"type": "incident"``), or
    a few lines of text each."""
    from driftline.alerts.incidents import Incident
    for row in rows:
        deliveries = row.pop("deliveries")
        try:
            inc = Incident.from_state(row).snapshot()
        except (TypeError, KeyError, ValueError):  # a state another release wrote: as stored
            inc = {k: row.get(k) for k in ("id", "model", "version", "status", "severity", "title", "opened_at",
                                           "resolved_at", "features")}
        inc.pop("new_features", None)
        if as_json:
            print(orjson.dumps({"type": "incident", **inc, "deliveries": deliveries},
                               option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode())
            continue
        print(f"{inc['id']}  {inc['status']:8} {inc['severity'] or '-':8} {inc['model']} {inc['version']}  "
              f"{inc.get('title') or ''}")
        print(f"    opened {inc.get('opened_at') or '-'}  resolved {inc.get('resolved_at') or '-'}")
        print(f"    features: {_worst_features(inc.get('features') or {})}")
        print(f"    deliveries: {_delivery_summary(deliveries)}")


def _worst_features(features: dict, shown: int = 6) -> str:
    """``country 54×, amount 8.03×, +3 more``: the features by how far over threshold they went."""
    if not features:
        return "none"
    ranked = sorted(features.items(), key=lambda kv: -(kv[1].get("ratio") or 0))
    names = [f"{name} {(r.get('ratio') or 0):.3g}×" for name, r in ranked[:shown]]
    return ", ".join(names) + (f", +{len(ranked) - shown} more" if len(ranked) > shown else "")


def _delivery_summary(deliveries: list[dict]) -> str:
    """Per sink, each notification's status in order: ``pagerduty: opened sent, resolved failed (timeout)``."""
    if not deliveries:
        return "none (no sink takes incidents)"
    sinks: dict[str, list[str]] = {}
    for d in deliveries:
        error = f" ({d['last_error'][:80]})" if d["status"] == "failed" and d.get("last_error") else ""
        sinks.setdefault(d["sink"], []).append(f"{d['event']} {d['status']}{error}")
    return "; ".join(f"{sink}: {', '.join(events)}" for sink, events in sinks.items())


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
    """``silence add|list|expire``; no action word: the deprecated ``silence MODEL --for D``."""
    if not getattr(args, "config", None):
        raise InputError("-c/--config FILE: required, e.g. driftline silence list -c driftline.yaml")
    actions = {"add": _silence_add, "list": _silence_list, "expire": _silence_expire}
    return actions.get(args.silence_command, _silence_legacy)(args)


def _when(text: str, arg: str) -> float:
    """Epoch seconds from ISO-8601 (``2026-12-01T18:00``, ``…Z``, ``…+01:00``; no zone: UTC)."""
    from datetime import UTC, datetime
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InputError(f"{arg}: expected an ISO-8601 time like 2026-12-01T18:00:00Z, got {text!r}") from None


def _matchers(settings, texts: list[str]) -> list:
    from driftline.silencing import LABELS, parse_matcher
    out = []
    for text in texts:
        try:
            m = parse_matcher(text)
        except ValueError as exc:
            raise InputError(f"MATCHER: {exc}") from None
        if m.name not in LABELS:
            raise InputError(f"MATCHER {text!r}: driftline's alerts have no label {m.name!r} "
                             f"(labels: {', '.join(LABELS)})")
        if m.name == "model" and m.op == "=" and settings.model(m.value) is None:
            raise InputError(f"MATCHER {text!r}: no configured model {m.value!r} "
                             f"(configured: {', '.join(spec.name for spec in settings.models)})")
        out.append(m)
    return out


def _silence_span(args, now: float) -> tuple[float, float]:
    starts = now if args.starts is None else _when(args.starts, "--starts")
    if args.until is not None:
        ends, arg = _when(args.until, "--until"), "--until"
    else:
        try:
            ends, arg = starts + parse_duration(args.duration), "--for"
        except ValueError as exc:
            raise InputError(f"--for: {exc}") from None
    if ends <= starts:
        raise InputError(f"{arg}: the end must be after the start ({args.starts or 'now'})")
    if ends <= now:
        raise InputError(f"{arg}: the end is in the past")
    return starts, ends


def _author(args) -> str:
    author = args.author if args.author is not None else os.environ.get("USER", "")
    if not author.strip():
        raise InputError("--author: required when $USER is not set, e.g. --author ana")
    return author.strip()


def _silence_add(args) -> int:
    from driftline.app import build_store
    from driftline.silencing import check_new
    settings, now = _settings(args.config), time.time()
    matchers = _matchers(settings, args.matchers)
    starts, ends = _silence_span(args, now)
    try:
        check_new(matchers, starts, ends)
    except ValueError as exc:
        arg = ("MATCHER" if str(exc).startswith("matchers") else "--starts" if str(exc).startswith("start")
               else "--until" if args.until else "--for")
        raise InputError(f"{arg}: {exc}") from None
    author = _author(args)
    for arg, value, most in (("--author", author, 200), ("--comment", args.comment, 1000)):
        if len(value) > most:
            raise InputError(f"{arg}: at most {most} characters, got {len(value)}")
    store = build_store(settings)
    print(store.outbox.add_silence(matchers, starts, ends, author, args.comment, now=now))
    store.close()
    return 0


def _silence_list(args) -> int:
    from driftline.app import existing_store
    from driftline.silencing import view
    now = time.time()
    store = existing_store(_settings(args.config))
    rows = [view(s, now) for s in store.outbox.silences(now, include_expired=args.all)]
    store.close()
    for r in rows:
        print(orjson.dumps(r).decode() if args.json else
              f"{r['id']:>5}  {r['state']:8} {r['starts_at_iso']} → {r['ends_at_iso']}  {r['author']:12} "
              f"{' '.join(r['matchers'])}  {r['comment']}")
    if not args.json:
        print(f"{len(rows)} silence(s)" + ("" if args.all else " active or pending (--all: ended ones too)"))
    return 0


def _silence_expire(args) -> int:
    from driftline.app import existing_store
    if not 0 < args.id < 2 ** 62:
        raise InputError(f"ID: no silence {args.id}")
    store = existing_store(_settings(args.config))
    done = store.outbox.expire_silence(args.id, time.time())
    store.close()
    if not done:
        raise InputError(f"ID: no active or pending silence {args.id} (`driftline silence list --all` lists them)")
    print(f"expired silence {args.id}")
    return 0


def _silence_legacy(args) -> int:
    """``silence -c FILE MODEL --for D [--rule R] [--reason T]``: kept, as ``model=MODEL[, rule=R]``."""
    from driftline.app import build_store
    from driftline.silencing import Matcher, check_new
    settings, now = _settings(args.config), time.time()
    if settings.model(args.model) is None:
        raise InputError(f"MODEL: unknown model {args.model!r} "
                         f"(configured: {', '.join(spec.name for spec in settings.models)})")
    try:
        until = now + parse_duration(args.duration)
    except ValueError as exc:
        raise InputError(f"--for: {exc}") from None
    matchers = [Matcher("model", "=", args.model)] + ([Matcher("rule", "=", args.rule)] if args.rule else [])
    reason = args.reason or ""
    try:
        check_new(matchers, now, until)
    except ValueError as exc:
        raise InputError(f"--for: {exc}") from None
    if len(reason) > 1000:
        raise InputError(f"--reason: at most 1000 characters, got {len(reason)}")
    print(f"driftline: `silence MODEL --for D` is deprecated; use: driftline silence add -c {args.config} "
          + " ".join(f"'{m}'" for m in matchers) + f" --for {args.duration} --author NAME --comment TEXT",
          file=sys.stderr)
    store = build_store(settings)
    store.outbox.add_silence(matchers, now, until, (os.environ.get("USER") or "unknown")[:200], reason, now=now)
    store.close()
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
    store = build_store(settings)
    store.state.lock_group(group)  # refused while a service of the group runs: it would write over the reset
    n = store.state.reset(group)
    store.close()
    print(f"consumer group {group}: {n} stored state(s) discarded (open windows and detector state; "
          "closed windows, alerts and offsets are kept)")
    return 0


CONFIG_HELP = "the YAML configuration (required), e.g. -c driftline.yaml"


def _command(sub, name: str, help: str, examples: list[str], description: str | None = None):
    """A subcommand whose help ends with example invocations."""
    return sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _config(s) -> None:
    s.add_argument("-c", "--config", required=True, metavar="FILE", help=CONFIG_HELP)


def parser() -> argparse.ArgumentParser:
    from driftline import __version__
    p = argparse.ArgumentParser(
        prog="driftline", description="Watch ML models in production from Kafka: drift per window, "
                                      "stored in SQL, alerts and retraining triggers out.",
        epilog="exit codes: 0 ok (or stopped on request), 2 bad configuration or input (the message names it),\n"
               "            1 runtime failure (store, broker, an outage longer than its max_outage)\n\n"
               "examples:\n  driftline init --from events.jsonl\n  driftline run -c driftline.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"driftline {__version__}",
                   help="print driftline's version and exit")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log at info level (-vv: debug); same as --log-level info (default: off)")
    p.add_argument("--log-level", choices=list(logs.LEVELS), type=str.lower,
                   help="debug, info, warning (default) or error; else $DRIFTLINE_LOG_LEVEL, e.g. --log-level info")
    p.add_argument("--log-format", choices=list(logs.FORMATS), default=None,
                   help="text (default) or json: one object per line (time, level, logger, message, exception); "
                        "else $DRIFTLINE_LOG_FORMAT, e.g. --log-format json")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = "how windows, alerts and triggers are printed: {} (default: %s), e.g. --output jsonl"

    s = _command(sub, "run", "the always-on service: consume Kafka, store windows, send alerts",
                 ["driftline run -c driftline.yaml", "driftline -v run -c driftline.yaml --output jsonl"])
    _config(s)
    s.add_argument("--output", choices=["text", "jsonl"], default="text",
                   help=output.format("text, one readable line each, or jsonl, one JSON object each") % "text")
    s.set_defaults(func=cmd_run)

    s = _command(sub, "demo", "embedded broker + simulated drifting model + the service",
                 ["driftline demo", "driftline demo --duration 90s --rate 500"])
    s.add_argument("--duration", type=parse_duration, default=None, metavar="DURATION",
                   help="stop after this long (default: run until Ctrl-C), e.g. --duration 90s")
    s.add_argument("--data-dir", default=".driftline", metavar="DIR",
                   help="where the demo's SQLite store goes (default: .driftline), e.g. --data-dir /tmp/demo")
    s.add_argument("--output", choices=["text", "jsonl"], default="text", help=output.format("text or jsonl") % "text")
    s.add_argument("--rate", type=int, default=1000, metavar="N",
                   help="simulated events per second (default: 1000), e.g. --rate 200")
    s.add_argument("--drift-after", type=int, default=30000, metavar="N",
                   help="events before the traffic drifts (default: 30000), e.g. --drift-after 10000")
    s.add_argument("--drift-for", type=int, default=30000, metavar="N",
                   help="drifted events before it recovers (default: 30000), e.g. --drift-for 5000")
    s.add_argument("--http-port", type=int, default=8321, metavar="PORT",
                   help="dashboard and API port (default: 8321; 0: any free one, -1: off), e.g. --http-port 0")
    s.set_defaults(func=cmd_demo)

    s = _command(sub, "replay", "the same pipeline over a JSON-lines file of events, no broker",
                 ["driftline replay -c driftline.yaml events.jsonl",
                  "driftline replay -c driftline.yaml events.jsonl --output text --database sqlite:///replay.db"])
    _config(s)
    s.add_argument("input", metavar="EVENTS.jsonl",
                   help="a JSON-lines file, one event per line in the configured shape, e.g. events.jsonl; "
                        "a stored database resumes after the lines it already holds")
    s.add_argument("--output", choices=["text", "jsonl"], default="jsonl", help=output.format("text or jsonl") % "jsonl")
    s.add_argument("--database", default="sqlite://", metavar="URL",
                   help="store URL (default: sqlite://, in memory), e.g. --database sqlite:///replay.db")
    s.add_argument("--notify", action="store_true",
                   help="also page: Slack, PagerDuty and Alertmanager get the replay's incidents "
                        "(default: the console and the retraining webhooks only)")
    s.set_defaults(func=cmd_replay)

    s = _command(sub, "ui", "serve the dashboard, the HTTP API and health endpoints from the store (no Kafka)",
                 ["driftline ui -c driftline.yaml", "driftline ui -c driftline.yaml --port 0 --database sqlite:///replay.db"])
    _config(s)
    s.add_argument("--port", type=int, default=None, metavar="PORT",
                   help="port to serve on (default: http.port, else 8321; 0: any free port), e.g. --port 8080")
    s.add_argument("--database", default=None, metavar="URL",
                   help="store URL to read (default: store.url), e.g. --database sqlite:///replay.db")
    s.set_defaults(func=cmd_ui)

    s = _command(sub, "check-config", "validate a configuration file (every error with its YAML path)",
                 ["driftline check-config driftline.yaml", "driftline check-config driftline.yaml --print"])
    s.add_argument("file", metavar="FILE", help="the YAML configuration to check, e.g. driftline.yaml")
    s.add_argument("--print", action="store_true",
                   help="also print it as loaded, defaults filled in and secrets masked (default: off)")
    s.set_defaults(func=cmd_check_config)

    s = _command(sub, "reference", "build a model's reference profile from a file and store it",
                 ["driftline reference -c driftline.yaml fraud training.parquet"])
    _config(s)
    s.add_argument("model", metavar="MODEL", help="a configured model's name, e.g. fraud")
    s.add_argument("input", metavar="FILE", help="CSV, Parquet or JSON lines with a column per feature, "
                                                 "e.g. training.parquet")
    s.set_defaults(func=cmd_reference)

    s = _command(sub, "alerts", "list incidents and alert state changes, or notifications not delivered",
                 ["driftline alerts -c driftline.yaml --limit 20", "driftline alerts -c driftline.yaml --pending --json"])
    _config(s)
    s.add_argument("--limit", type=int, default=50, metavar="N",
                   help="show the newest N state changes (default: 50), e.g. --limit 20")
    s.add_argument("--resolved", type=int, default=10, metavar="N",
                   help="after the open incidents, show the N newest resolved ones (default: 10), e.g. --resolved 3")
    s.add_argument("--json", action="store_true", help="one JSON object per line, for scripts (default: text)")
    what = s.add_mutually_exclusive_group()
    what.add_argument("--pending", action="store_true",
                      help="list notifications not delivered yet and those given up at their deadline")
    what.add_argument("--retry-failed", action="store_true",
                      help="put given-up notifications back to pending with a fresh delivery deadline")
    s.set_defaults(func=cmd_alerts)

    _add_silence(sub)

    s = _command(sub, "db", "database maintenance", ["driftline db upgrade -c driftline.yaml"])
    dsub = s.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    u = _command(dsub, "upgrade", "create or upgrade the schema", ["driftline db upgrade -c driftline.yaml"])
    _config(u)
    u.set_defaults(func=cmd_db_upgrade)
    r = _command(dsub, "reset-state", "discard the consumer group's open windows and detector state "
                                      "(e.g. a state this release cannot read); results are kept",
                 ["driftline db reset-state -c driftline.yaml"])
    _config(r)
    r.set_defaults(func=cmd_db_reset_state)
    _add_init(sub)
    _add_status(sub)
    _add_triggers(sub)
    _add_performance(sub)
    return p


class _SilenceActions(argparse._SubParsersAction):
    """``silence``'s actions (``add``, ``list``, ``expire``); any other first word is the
    deprecated form's model, ``silence -c FILE MODEL --for D``, parsed by ``legacy``."""

    legacy: argparse.ArgumentParser

    class AnyWord(dict):
        def __contains__(self, word) -> bool:  # argparse checks the first word against the choices
            return True

    def __call__(self, parser, namespace, values, option_string=None):
        if values[0] in self._name_parser_map:
            return super().__call__(parser, namespace, values, option_string)
        if not any(v == "--for" or v.startswith("--for=") for v in values[1:]):
            parser.error(f"argument ACTION: unknown action {values[0]!r} (choose from {', '.join(self._name_parser_map)}; "
                         "the deprecated form is MODEL --for DURATION)")
        setattr(namespace, self.dest, None)
        sub, rest = self.legacy.parse_known_args(values, None)
        for key, value in vars(sub).items():
            setattr(namespace, key, value)
        if rest:
            self.legacy.error(f"unrecognized arguments: {' '.join(rest)}")


def _silence_config(s, where: str = "before or after the action") -> None:
    s.add_argument("-c", "--config", metavar="FILE", default=argparse.SUPPRESS,
                   help=f"the YAML configuration (required, no default; {where}), e.g. -c driftline.yaml")


def _add_silence(sub) -> None:
    s = _command(sub, "silence", "mute alerts and incidents that match labels, for a while (Alertmanager-style)",
                 ["driftline silence add -c driftline.yaml 'model=fraud' 'rule=~feature_.*' --for 2h "
                  '--author ana --comment "backfill"',
                  "driftline silence list -c driftline.yaml --all", "driftline silence expire -c driftline.yaml 3"],
                 description="Mute alerts and incidents whose labels (model, version, rule, subject, severity) "
                             "match, from a start to an end. The old form `driftline silence -c FILE MODEL --for D "
                             "[--rule R] [--reason T]` still works (deprecated): it adds model=MODEL[ rule=R].")
    _silence_config(s)
    actions = s.add_subparsers(dest="silence_command", required=True, metavar="ACTION", action=_SilenceActions)
    a = _command(actions, "add", "add a silence; prints its id",
                 ["driftline silence add -c driftline.yaml 'model=fraud' 'rule=~feature_.*' --for 2h "
                  '--author ana --comment "backfill"',
                  "driftline silence add -c driftline.yaml model=fraud version=v3 --starts 2026-12-01T22:00:00Z "
                  "--until 2026-12-02T02:00:00Z --comment \"maintenance\""])
    _silence_config(a)
    a.add_argument("matchers", nargs="+", metavar="MATCHER",
                   help="label matchers, all must match: NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX "
                        "(regexes match the whole value; a value may be \"quoted\"); labels: model, version, "
                        "rule, subject, severity; e.g. model=fraud 'rule=~feature_.*'")
    end = a.add_mutually_exclusive_group(required=True)
    end.add_argument("--for", dest="duration", metavar="DURATION",
                     help="how long from the start (no default: this or --until is required), e.g. --for 2h or --for 30m")
    end.add_argument("--until", metavar="ISO", help="when it ends, ISO-8601, UTC unless a zone is given "
                                                     "(no default: this or --for is required), e.g. --until 2026-12-01T18:00:00Z")
    a.add_argument("--starts", metavar="ISO", help="when it starts, ISO-8601 (default: now), "
                                                   "e.g. --starts 2026-12-01T16:00:00Z")
    a.add_argument("--author", metavar="NAME", help="who added it (default: $USER), e.g. --author ana")
    a.add_argument("--comment", required=True, metavar="TEXT", help='why (required), e.g. --comment "backfill"')
    li = _command(actions, "list", "list silences in force and those starting later",
                  ["driftline silence list -c driftline.yaml", "driftline silence list -c driftline.yaml --all --json"])
    _silence_config(li)
    li.add_argument("--all", action="store_true", help="also the silences that ended (default: off)")
    li.add_argument("--json", action="store_true", help="one JSON object per line, for scripts (default: text)")
    e = _command(actions, "expire", "end a silence now (a pending one never starts)",
                 ["driftline silence expire -c driftline.yaml 3"])
    _silence_config(e)
    e.add_argument("id", type=int, metavar="ID", help="the silence's id, as `silence add` printed it, e.g. 3")
    actions.choices = _SilenceActions.AnyWord(actions.choices)
    actions.legacy = _legacy_silence_parser()
    for p in (s, a, li, e):
        p.set_defaults(func=cmd_silence)


def _legacy_silence_parser() -> argparse.ArgumentParser:
    s = argparse.ArgumentParser(prog="driftline silence", description="Deprecated: use `driftline silence add`.",
                                epilog="examples:\n  driftline silence -c driftline.yaml fraud --for 2h --reason backfill",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _silence_config(s, "before or after MODEL")
    s.add_argument("model", metavar="MODEL", help="a configured model's name, e.g. fraud")
    s.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                   help="how long (required), e.g. --for 2h or --for 30m")
    s.add_argument("--rule", help="only this rule's alerts (default: every rule of the model), e.g. --rule feature_drift")
    s.add_argument("--reason", help='why, stored as the comment (default: none), e.g. --reason "backfill"')
    s.set_defaults(func=cmd_silence)
    return s


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
    except BrokenPipeError:  # `driftline performance … | head`: the reader had enough (Python's own recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0


def exit_code(exc: DriftlineError) -> int:
    """2: bad configuration or input (the message names it); 1: a runtime failure (store, broker, outage)."""
    return 1 if isinstance(exc, (StoreError, SourceError, BrokerError, DeliveryError)) else 2


def cmd_init(args) -> int:
    from driftline.init import load
    from driftline.progress import Progress
    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputError(f"{out} exists; pass --force to overwrite it, or -o OTHER.yaml")
    if args.topic:
        records = _sample_topic(args)
        proposal = load.propose_records(f"topic {args.topic}", records, args.reference, args.limit)
        kafka = {"bootstrap": args.bootstrap, "topic": args.topic}
    elif args.source:
        path = Path(args.source)
        with Progress(f"reading {path.name}", path.stat().st_size if path.is_file() else None) as bar:
            proposal = load.propose_file(path, args.reference, args.model, args.limit, bar.advance)
        kafka = None
    else:
        raise InputError("init needs a sample: --from FILE (events or a training table) or --topic NAME --bootstrap HOST:PORT")
    from driftline.init.render import report
    text = load.checked_yaml(proposal, kafka)
    print("\n".join(report(proposal)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    sample = args.source if args.source and not load.is_table(args.source) else "EVENTS.jsonl"
    print(f"wrote {out}; next: driftline check-config {out} && driftline replay -c {out} {sample}")
    return 0


def _sample_topic(args) -> list[bytes]:
    from driftline.streams.kafka import client_config, sample_topic
    if not args.bootstrap:
        raise InputError("--topic needs --bootstrap HOST:PORT (the Kafka brokers to sample from)")
    print(f"sampling {args.topic} at {args.bootstrap} for at most {args.sample_for:g} s …", file=sys.stderr)
    records = sample_topic(client_config(args.bootstrap), args.topic, args.sample_for, args.limit)
    if not records:
        raise InputError(f"topic {args.topic!r} at {args.bootstrap}: no records within {args.sample_for:g} s")
    return records


def _add_init(sub) -> None:
    s = sub.add_parser(
        "init", help="propose a commented starting configuration from a sample of your events",
        description="Read a sample (JSON-lines events, a CSV/Parquet training file, or a live topic), infer the "
                    "models, versions, event shape, feature kinds, windows and reference, print what was inferred "
                    "and why, and write a configuration that check-config accepts and replay runs unedited.",
        epilog="examples:\n  driftline init --from events.jsonl\n"
               "  driftline init --from train.parquet --model fraud -o fraud.yaml\n"
               "  driftline init --topic model-events --bootstrap localhost:9092 --sample-for 20s",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--from", dest="source", metavar="FILE",
                   help="events as JSON lines (.jsonl), or a training table (.csv, .parquet) that becomes the "
                        "reference; e.g. --from events.jsonl (no default: this or --topic)")
    s.add_argument("--topic", help="sample this Kafka topic instead of a file (default: none), e.g. --topic model-events")
    s.add_argument("--bootstrap", metavar="HOST:PORT",
                   help="the brokers for --topic (default: none, required with --topic), e.g. localhost:9092")
    s.add_argument("--sample-for", type=parse_duration, default=10.0, metavar="DURATION",
                   help="how long to read --topic at most (default: 10s), e.g. 30s")
    s.add_argument("--limit", type=int, default=200_000, metavar="N",
                   help="records read at most (default: 200000), e.g. --limit 50000")
    s.add_argument("--reference", metavar="FILE",
                   help="a training file (CSV, Parquet, JSON lines) to use as the reference instead of the "
                        "sample's first events (default: first_n), e.g. --reference train.parquet")
    s.add_argument("--model", metavar="NAME",
                   help="the model's name for a training table (default: the file's name), e.g. --model fraud")
    s.add_argument("-o", "--output", default="driftline.yaml", metavar="FILE",
                   help="where to write the configuration (default: driftline.yaml), e.g. -o fraud.yaml")
    s.add_argument("--force", action="store_true", help="overwrite --output if it exists (default: refuse)")
    s.set_defaults(func=cmd_init)


def cmd_status(args) -> int:
    from driftline.app import existing_store
    from driftline.status import STATUS_COLUMNS, status_cells, status_rows, table
    settings = _settings(args.config)
    rows = status_rows(existing_store(settings).reads, time.time())
    if args.json:
        print(orjson.dumps(rows).decode())
    elif not rows:
        print(f"no windows stored yet in {settings.store.url.split('://')[0]} store (models: "
              f"{', '.join(m.name for m in settings.models)})")
    else:
        print(table([status_cells(r) for r in rows], STATUS_COLUMNS))
    return 0


def cmd_windows(args) -> int:
    from driftline.app import existing_store
    from driftline.status import WINDOW_COLUMNS, table, window_rows
    settings = _settings(args.config)
    spec = settings.model(args.model)
    if spec is None:
        raise InputError(f"unknown model {args.model!r} (configured: {', '.join(m.name for m in settings.models)})")
    known = {*spec.all_features(), "multivariate", "domain_classifier"}
    if args.feature is not None and args.feature not in known:
        raise InputError(f"model {args.model}: unknown feature {args.feature!r} (monitored: "
                         f"{', '.join(spec.all_features())}, multivariate)")
    summaries = existing_store(settings).reads.recent_windows(args.model, args.last, args.version)
    rows = window_rows(summaries, args.feature)
    if args.json:
        for r in rows:
            print(orjson.dumps(r).decode())
    else:
        print(table(rows, WINDOW_COLUMNS) if rows else f"no windows stored yet for {args.model}")
    return 0


def _last(text: str) -> int:
    n = int(text)
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError("expected a number of windows from 1 to 100000")
    return n


def _add_status(sub) -> None:
    s = _command(sub, "status", "models and versions now, from the store: last window, events in the last hour, "
                                "invalid share, drifted features, firing alerts, pending deliveries",
                 ["driftline status -c driftline.yaml", "driftline status -c driftline.yaml --json | jq ."])
    _config(s)
    s.add_argument("--json", action="store_true", help="one JSON array of rows, for scripts (default: a table)")
    s.set_defaults(func=cmd_status)

    s = _command(sub, "windows", "a model's recent windows: time, count, a feature's statistic against its threshold",
                 ["driftline windows -c driftline.yaml fraud --last 10",
                  "driftline windows -c driftline.yaml fraud --feature amount --json"])
    _config(s)
    s.add_argument("model", metavar="MODEL", help="a configured model's name, e.g. fraud")
    s.add_argument("--feature", metavar="NAME",
                   help="the feature to show (default: each window's most drifted one), e.g. --feature amount "
                        "(also prediction, multivariate)")
    s.add_argument("--version", metavar="VERSION", help="only this model version (default: all), e.g. --version v3")
    s.add_argument("--last", type=_last, default=20, metavar="N",
                   help="the newest N windows, oldest first (default: 20), e.g. --last 5")
    s.add_argument("--json", action="store_true", help="one JSON object per window, for scripts (default: a table)")
    s.set_defaults(func=cmd_windows)


def cmd_performance(args) -> int:
    from driftline import performance_view as pv
    from driftline.app import existing_store
    from driftline.status import table
    settings = _settings(args.config)
    try:
        segment = pv.check_segment(args.segment, "--segment")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    store = existing_store(settings)
    min_labelled = {m.name: m.labels.min_labelled for m in settings.models if m.labels is not None}
    lines = [pv.from_row(r, min_labelled.get(model))
             for model in _performance_models(settings, store, args.model, min_labelled)
             for r in store.browse.performance_rows(model, args.version, segment, args.last)]
    store.close()
    if args.output == "json":
        for line in lines:
            print(orjson.dumps({"type": "performance", **line}, option=orjson.OPT_SERIALIZE_NUMPY).decode())
    elif not lines:
        asked = [f"{k} {v}" for k, v in (("model", args.model), ("version", args.version), ("segment", args.segment)) if v]
        print("no performance stored yet" + (" for " + ", ".join(asked) if asked else ""))
    else:
        print(table([pv.text_row(x) for x in lines], pv.columns(lines, segment != "")))
    return 0


def _performance_models(settings, store, model: str | None, labelled: dict) -> list[str]:
    """``model`` (configured, with labels or stored performance), else every such model."""
    stored = store.browse.performance_models()
    if model is None:
        return sorted(set(labelled) | set(stored))
    if settings.model(model) is None and model not in stored:
        raise InputError(f"--model: unknown model {model!r} (configured: {', '.join(m.name for m in settings.models)})")
    if model not in labelled and model not in stored:
        raise InputError(f"--model: model {model!r} has no labels configured, so no performance "
                         f"(models with labels: {', '.join(labelled) or 'none'})")
    return [model]


def _add_performance(sub) -> None:
    s = _command(sub, "performance", "realized performance per window from the store: labelled share, whether "
                                     "enough is labelled, headline metrics (estimated beside them when present), "
                                     "label delay, revision",
                 ["driftline performance -c driftline.yaml", "driftline performance -c driftline.yaml --model fraud "
                  "--last 5", "driftline performance -c driftline.yaml --model fraud --segment country=DE --output json"])
    _config(s)
    s.add_argument("--model", metavar="MODEL",
                   help="only this configured model (default: every model with labels), e.g. --model fraud")
    s.add_argument("--version", metavar="VERSION", help="only this model version (default: all), e.g. --version v3")
    s.add_argument("--segment", metavar="FEATURE=VALUE",
                   help="one segment's performance (default: the whole version), e.g. --segment country=DE")
    s.add_argument("--last", type=_last, default=20, metavar="N",
                   help="the newest N windows of each model, oldest first (default: 20), e.g. --last 5")
    s.add_argument("--output", choices=["text", "json"], default="text",
                   help="text, a table (default), or json, one performance line per window, e.g. --output json")
    s.set_defaults(func=cmd_performance)


TRIGGER_COLUMNS = ["window_end", "model", "version", "cloudevent_id", "incident", "sink", "status", "attempts",
                   "receipt", "last_error"]


def cmd_triggers(args) -> int:
    from driftline.app import existing_store
    from driftline.status import table
    settings = _settings(args.config)
    if args.model is not None and settings.model(args.model) is None:
        raise InputError(f"unknown model {args.model!r} (configured: {', '.join(m.name for m in settings.models)})")
    redact = redactor_for(settings)
    history = [_trigger_row(h, redact) for h in existing_store(settings).reads.trigger_history(args.model, args.limit)]
    if args.json:
        for row in history:
            print(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode())
    elif not history:
        print("no retraining triggers stored yet" + (f" for {args.model}" if args.model else ""))
    else:
        print(table([cells for row in history for cells in _trigger_cells(row)], TRIGGER_COLUMNS))
    return 0


def _trigger_row(h: dict, redact) -> dict:
    """One trigger as ``triggers --json`` prints it: its CloudEvent, incident and each sink's delivery."""
    from driftline.types import iso
    deliveries = [{"sink": d["sink"], "status": d["status"], "attempts": d["attempts"],
                   "last_error": redact(d["last_error"]) if d["last_error"] else None,
                   "receipt_status": d["receipt"].get("status") if isinstance(d["receipt"], dict) else None,
                   "receipt": d["receipt"], "created_at": d["created_at"], "sent_at": d["sent_at"]}
                  for d in h["deliveries"]]
    return {"model": h["model"], "version": h["version"], "window_end": iso(h["window_end_ms"]),
            "cloudevent_id": h["id"], "incident": h["incident"], "deliveries": deliveries, "event": h["event"]}


def _trigger_cells(row: dict) -> list[dict]:
    """Table rows: one per delivery (a trigger no sink took has one, sink ``-``)."""
    head = {k: row[k] for k in ("window_end", "model", "version", "cloudevent_id", "incident")}
    if not row["deliveries"]:
        return [head]
    return [{**head, **d, "receipt": d["receipt_status"] if d["receipt_status"] is not None else d["receipt"],
             "last_error": (d["last_error"] or "")[:80] or None} for d in row["deliveries"]]


def _limit(text: str) -> int:
    n = int(text)
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError("expected a number of triggers from 1 to 100000")
    return n


def _add_triggers(sub) -> None:
    s = _command(sub, "triggers", "retraining triggers from the store, newest first: model, version, window end, "
                                  "CloudEvent id, incident, and each sink's delivery (status, attempts, last "
                                  "error, receipt)",
                 ["driftline triggers -c driftline.yaml", "driftline triggers -c driftline.yaml --model fraud --limit 5",
                  "driftline triggers -c driftline.yaml --json | jq .deliveries"])
    _config(s)
    s.add_argument("--model", metavar="MODEL",
                   help="only this configured model's triggers (default: every model), e.g. --model fraud")
    s.add_argument("--limit", type=_limit, default=20, metavar="N",
                   help="the newest N triggers (default: 20), e.g. --limit 5")
    s.add_argument("--json", action="store_true",
                   help="one JSON object per trigger, with its CloudEvent and deliveries, for scripts "
                        "(default: a table, a row per delivery)")
    s.set_defaults(func=cmd_triggers)


if __name__ == "__main__":
    sys.exit(main())
