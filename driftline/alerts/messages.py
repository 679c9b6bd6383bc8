"""Human-readable alert and trigger messages: plain text and Slack Block Kit."""

from __future__ import annotations


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _effect(r: dict) -> str:
    e = r.get("effect") or {}
    if "mean_shift_sd" in e:
        ratio = f", std ×{e['std_ratio']:.2f}" if e.get("std_ratio") is not None else ""
        span = f" over the last {e['windows']} windows" if r.get("method") == "trend" else ""
        return f" — mean {e['mean_shift_sd']:+.2f} sd{ratio}{span}"
    if "share_cur" in e:
        return f" — share {e['share_ref']:.1%} → {e['share_cur']:.1%}"
    return ""


def metric_lines(features: dict) -> list[str]:
    """A performance alert's evidence (``rules.performance``): per metric, its value, standard
    error and how much of the window was labelled, e.g. ``roc_auc: 0.512 ± 0.018 over 1261
    labelled (63%), revision 3``."""
    lines = []
    for name, r in features.items():
        se = f" ± {_fmt(r['se'])}" if r.get("se") is not None else ""
        share = f" ({r['labelled_share']:.0%})" if r.get("labelled_share") is not None else ""
        lines.append(f"{name}: {_fmt(r['value'])}{se} over {r.get('labelled')} labelled{share}, "
                     f"revision {r.get('revision')}")
    return lines


def concept_lines(features: dict) -> list[str]:
    """A concept-drift alert's evidence (``rules.concept_drift``): per detection, what moved, e.g.
    ``adwin on the loss: 0.162 → 0.341 at 2026-11-18T11:07:41.000Z (window 1795000020000, 5210 labels seen)``."""
    return [f"{r.get('detector')} on the {r.get('signal')}: {_fmt(r.get('before'))} → {_fmt(r.get('after'))} "
            f"at {r.get('ts')} (window {r.get('window')}, {r.get('labels_seen')} labels seen)"
            for r in features.values()]


def evidence_lines(features: dict) -> list[str]:
    """One line per drifted subject, most significant first (a performance alert's: :func:`metric_lines`;
    a concept-drift alert's: :func:`concept_lines`)."""
    if any(isinstance(r, dict) and r.get("kind") == "concept_drift" for r in features.values()):
        return concept_lines(features)
    if any("value" in r and "statistic" not in r for r in features.values()):
        return metric_lines(features)
    lines = []
    order = sorted(features.items(), key=lambda kv: (kv[1].get("p_value") is None, kv[1].get("p_value") or 0,
                                                     -abs(kv[1]["statistic"])))
    for name, r in order:
        p = f", p={_fmt(r['p_value'])}" if r.get("p_value") is not None else ""
        lines.append(f"{name}: {r['method']} {_fmt(r['statistic'])} (threshold {_fmt(r['threshold'])}{p})"
                     + _effect(r))
    return lines


def alert_text(a: dict) -> str:
    head = ("RESOLVED" if a["status"] == "resolved" else a["severity"].upper())
    what = (f"[{head}] {a['model']} {a['version']}: {a['rule']} {a['status']} — "
            f"{a['subject']} ({_fmt(a['value'])} vs threshold {_fmt(a['threshold'])})")
    when = f"window {a['window_start']} → {a['window_end']}, since {a['since']}"
    return "\n".join([what, when, *("  " + x for x in evidence_lines(a["features"]))])


def trigger_text(t: dict) -> str:
    ev = t["event"]
    d = ev["data"]
    return (f"[RETRAIN] {d['model']} {d['version']}: retraining requested ({d['reason']}), "
            f"window ending {d['window']['end']}, drifted: {', '.join(d['drifted']) or '-'} "
            f"(cloudevent id {ev['id']})")


def alert_blocks(a: dict) -> list[dict]:
    emoji = ":white_check_mark:" if a["status"] == "resolved" else ":rotating_light:"
    title = f"{emoji} {a['model']} {a['version']} — {a['rule']} {a['status']}"
    fields = [
        ("Model", f"{a['model']} {a['version']}"),
        ("Severity", a["severity"]),
        ("Subject", a["subject"]),
        ("Value", f"{_fmt(a['value'])} (threshold {_fmt(a['threshold'])})"),
        ("Window", f"{a['window_start']} → {a['window_end']}"),
        ("Since", str(a["since"])),
    ]
    evidence = "\n".join("• " + x for x in evidence_lines(a["features"])) or "no feature over its threshold"
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Drifted features*\n{evidence}"[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"fingerprint `{a['fingerprint']}`"}]},
    ]


def trigger_blocks(t: dict) -> list[dict]:
    return [_section(":arrows_counterclockwise: " + slack_trigger_text(t))]


def slack_trigger_text(t: dict) -> str:
    """A retraining request as Slack shows it (mrkdwn-escaped), naming its incident."""
    ev = t.get("event") or {}
    d = ev.get("data") or {}
    drifted = [name(k) for k in list(d.get("drifted") or [])[:SHOWN_MAX]]
    more = len(d.get("drifted") or []) - len(drifted)
    incident = f" for incident `{esc(t['incident'])}`" if t.get("incident") else ""
    window = (d.get("window") or {}).get("end", "?")
    return cut(f"[RETRAIN] {esc(d.get('model', t.get('model')))} {esc(d.get('version', t.get('version')))}: "
               f"retraining requested{incident} ({esc(d.get('reason', '?'))}), window ending {esc(window)}, "
               f"drifted: {', '.join(drifted) or '-'}{f' … and {more} more' if more > 0 else ''} "
               f"(cloudevent id {esc(ev.get('id', '?'))})", TEXT_MAX)


# -- incidents (Slack) ---------------------------------------------------------------
#
# Every text that reaches Slack as mrkdwn goes through ``esc`` (a feature named
# ``<!channel>`` must not ping a channel); Block Kit's limits are kept by construction and
# checked once more by ``bounded``. ``plain_text`` is not parsed by Slack, so it is only cut.

HEADER_MAX, SECTION_MAX, FIELD_MAX, FIELDS_MAX, BLOCKS_MAX, TEXT_MAX = 150, 3000, 2000, 10, 50, 3000
NAME_MAX = 80  # a feature or model name longer than this is cut before it is escaped
SHOWN_MAX = 20  # features named one per line; the others are counted
_SEVERITY = {"critical": ":red_circle:", "warning": ":warning:"}


def esc(value) -> str:
    """``&``, ``<`` and ``>`` as Slack's mrkdwn wants them escaped.

    >>> esc("<!channel> & <script>")
    '&lt;!channel&gt; &amp; &lt;script&gt;'
    """
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, never ending inside an ``&…;`` entity."""
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    amp = head.rfind("&")
    if amp >= 0 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "…"


def name(value) -> str:
    """A name from the stream (feature, model, version), shortened and escaped for mrkdwn."""
    return esc(cut(str(value), NAME_MAX))


def fit(lines: list[str], limit: int, total: int | None = None) -> str:
    """As many whole lines as fit in ``limit`` characters, then ``… and N more``."""
    total = len(lines) if total is None else total
    out, used = [], 0
    for i, line in enumerate(lines):
        more = f"… and {total - i - 1} more" if total - i - 1 else ""
        if used + len(line) + 1 + len(more) > limit:
            break
        out.append(line)
        used += len(line) + 1
    if total > len(out):
        out.append(f"… and {total - len(out)} more")
    return "\n".join(out)


def _ratio(r: dict) -> float:
    """statistic ÷ threshold, as the payload has it or computed; 0 when it cannot be."""
    value = r.get("ratio")
    if not isinstance(value, (int, float)):
        try:
            value = float(r["statistic"]) / float(r["threshold"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            value = 0.0
    return 0.0 if value != value else float(value)  # NaN sorts nowhere


def _stat(r: dict) -> str:
    """``meanvar 32.8 vs threshold 4.45 (×7.37)``: the statistic against its threshold."""
    return (f"{esc(r.get('method', '?'))} {_num(r.get('statistic'))} vs threshold {_num(r.get('threshold'))}"
            f" (×{_ratio(r):.2f})")


def _num(x) -> str:
    """A number for mrkdwn: ``_fmt`` escaped (whatever the payload holds)."""
    return esc(_fmt(x))


def _effect_any(r: dict) -> str:
    """The effect size as the console says it, else its first three values."""
    effect = r.get("effect")
    if not isinstance(effect, dict) or not effect:
        return ""
    try:
        known = _effect(r)
    except (TypeError, ValueError, KeyError):
        known = ""
    if known:
        return esc(known)
    return " — " + ", ".join(f"{name(k)} {_num(v)}" for k, v in list(effect.items())[:3])


def feature_lines(features: dict, only=None) -> list[str]:
    """One mrkdwn line per drifted feature, the most over its threshold first."""
    chosen = [(k, r) for k, r in features.items() if (only is None or k in only) and isinstance(r, dict)]
    chosen.sort(key=lambda kv: -_ratio(kv[1]))
    return [cut(f"• *{name(k)}* {_stat(r)}{_effect_any(r)}", 400) for k, r in chosen]


def _features_text(inc: dict, title: str, only=None) -> str:
    features = inc.get("features") or {}
    lines = feature_lines(features, only)
    total = len(lines)
    body = fit(lines[:SHOWN_MAX], SECTION_MAX - len(title) - 1, total)
    return f"{title}\n{body or 'none'}"


def _worst(inc: dict) -> str:
    w = inc.get("worst") or {}
    return f"*{name(w['feature'])}* {_stat(w)}" if w.get("feature") is not None else "-"


def _head(inc: dict) -> str:
    return f"{esc(inc.get('model'))} {esc(inc.get('version'))}"


def duration(start, end) -> str:
    """``2h 05m`` between two ISO-8601 times; ``?`` when either is missing or unreadable.

    >>> duration("2026-11-18T11:07:00.000Z", "2026-11-18T13:12:30.000Z")
    '2h 05m'
    """
    from datetime import datetime
    try:
        seconds = int((datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds())
    except (AttributeError, TypeError, ValueError):
        return "?"
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _fields(pairs: list[tuple[str, str]]) -> dict:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": cut(f"*{k}*\n{v}", FIELD_MAX)}
                                          for k, v in pairs[:FIELDS_MAX]]}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_MAX)}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, FIELD_MAX)}]}


def _link(inc: dict) -> list[dict]:
    url = inc.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 3000:
        return []
    return [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open in driftline"}, "url": url}]}]


def _alert_lines(inc: dict) -> str:
    lines = [f"• {esc(a.get('rule'))} ({esc(a.get('level', '?'))}) {esc(a.get('status'))}: "
             f"{name(a.get('subject'))} {_num(a.get('value'))} vs {_num(a.get('threshold'))}"
             for a in inc.get("alerts") or [] if isinstance(a, dict)]
    return fit(lines[:10], 1500, len(lines)) or "-"


def incident_blocks(inc: dict) -> list[dict]:
    """The root message of an incident: firing, or resolved once it is."""
    resolved = inc.get("status") == "resolved"
    icon = ":white_check_mark: RESOLVED" if resolved else _SEVERITY.get(inc.get("severity"), ":rotating_light:")
    windows = inc.get("windows") or {}
    pairs = [("Model", _head(inc)), ("Severity", esc(str(inc.get("severity", "?")).upper())),
             ("Since", esc(inc.get("opened_at"))), ("Worst", _worst(inc)),
             ("Windows", f"{esc(windows.get('count', '?'))} (last ending {esc(windows.get('last', '?'))})"),
             ("Drifted features", str(len(inc.get("features") or {})))]
    if resolved:
        pairs[2:3] = [("Opened", esc(inc.get("opened_at"))), ("Resolved", esc(inc.get("resolved_at"))),
                      ("Duration", duration(inc.get("opened_at"), inc.get("resolved_at")))]
    title = "*Features involved*" if resolved else "*Drifted features*"
    return bounded([
        {"type": "header", "text": {"type": "plain_text", "text": cut(f"{icon} {inc.get('title', '')}", HEADER_MAX)}},
        _fields(pairs),
        _section(_features_text(inc, title)),
        _section(f"*Alerts*\n{_alert_lines(inc)}"),
        *_link(inc),
        _context(f"driftline incident `{esc(inc.get('id'))}`"),
    ])


def incident_text(inc: dict) -> str:
    """The notification text of the root message (what a phone shows), mrkdwn-escaped."""
    state = "RESOLVED" if inc.get("status") == "resolved" else str(inc.get("severity", "?")).upper()
    names = [name(k) for k in list(inc.get("features") or {})[:SHOWN_MAX]]
    more = len(inc.get("features") or {}) - len(names)
    drifted = ", ".join(names) + (f" … and {more} more" if more > 0 else "")
    return cut(f"[{state}] {esc(inc.get('title', ''))} — worst {_worst(inc)}, since {esc(inc.get('opened_at'))}"
               f"; drifted: {drifted or '-'}" + (f" <{esc(inc['url'])}|open>" if _link(inc) else ""), TEXT_MAX)


def update_text(event: str, inc: dict, threaded: bool, opened_severity: str | None = None) -> str:
    """One line for an ``updated``, ``repeat`` or ``resolved`` reply."""
    where = "" if threaded else f"Update to incident `{esc(inc.get('id'))}` ({_head(inc)}): "
    if event == "resolved":
        n = len(inc.get("features") or {})
        return cut(f"{where}:white_check_mark: Resolved after {duration(inc.get('opened_at'), inc.get('resolved_at'))}"
                   f" ({n} feature{'s' if n != 1 else ''} involved; worst {_worst(inc)})", TEXT_MAX)
    if event == "repeat":
        return cut(f"{where}Still firing since {esc(inc.get('opened_at'))}: "
                   f"{len(inc.get('features') or {})} drifted features, worst {_worst(inc)}", TEXT_MAX)
    new = inc.get("new_features") or []
    parts = [f"{len(new)} new drifted feature{'s' if len(new) != 1 else ''}: "
             + ", ".join(name(k) for k in new[:SHOWN_MAX]) + (f" … and {len(new) - SHOWN_MAX} more"
                                                              if len(new) > SHOWN_MAX else "")] if new else []
    severity = esc(str(inc.get("severity", "?")))
    if opened_severity and opened_severity != inc.get("severity"):
        parts.append(f"severity now {severity} (opened as {esc(opened_severity)})")
    else:
        parts.append(f"severity {severity}")
    parts.append(f"worst {_worst(inc)}")
    return cut(where + "Updated: " + "; ".join(parts), TEXT_MAX)


def update_blocks(event: str, inc: dict, threaded: bool, opened_severity: str | None = None) -> list[dict]:
    blocks = [_section(update_text(event, inc, threaded, opened_severity))]
    if event == "updated" and inc.get("new_features"):
        blocks.append(_section(_features_text(inc, "*New features*", set(inc["new_features"]))))
    if event == "resolved":
        blocks.append(_section(_features_text(inc, "*Features involved*")))
    if not threaded:
        blocks += _link(inc)
    return bounded(blocks + [_context(f"driftline incident `{esc(inc.get('id'))}` · {esc(event)}")])


def bounded(blocks: list[dict]) -> list[dict]:
    """Block Kit's limits, whatever went before: at most 50 blocks, a header in 150
    characters, a section's text in 3000, at most 10 fields of 2000 each."""
    for block in blocks:
        if block["type"] == "header":
            block["text"]["text"] = cut(block["text"]["text"], HEADER_MAX)
        if "text" in block and block["type"] == "section":
            block["text"]["text"] = cut(block["text"]["text"], SECTION_MAX)
        if "fields" in block:
            block["fields"] = [f | {"text": cut(f["text"], FIELD_MAX)} for f in block["fields"][:FIELDS_MAX]]
    return blocks[:BLOCKS_MAX]
