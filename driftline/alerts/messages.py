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


def evidence_lines(features: dict) -> list[str]:
    """One line per drifted subject, most significant first."""
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
    return [{"type": "section", "text": {"type": "mrkdwn", "text": ":arrows_counterclockwise: " + trigger_text(t)}}]
