"""Markdown for one scale run (``bench/scale/<output>.md``), from the run's JSON."""

from __future__ import annotations

from typing import Any


def _f(value: Any, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _connect(data: dict[str, Any]) -> list[str]:
    meta, c = data["meta"], data["result"]["connect"]
    lines = [
        "## Connect",
        "",
        f"{c['open']:,} of {c['sockets']:,} sockets open in {c['seconds']} s "
        f"({_f(c['per_second'], ',.0f')} per second), {c['failed']} never opened; from "
        f"{meta['client_processes']} client processes bound to {', '.join(meta['sources'])}.",
        "",
        "| process | sockets | RSS before → after (MB) | KiB per socket |",
        "| --- | ---: | ---: | ---: |",
    ]
    for m in c["memory"]:
        lines.append(
            f"| {m['process']} | {m['sockets']:,} | {m['rss_before_mb']:.0f} → "
            f"{m['rss_after_mb']:.0f} | {m['kib_per_socket']:.1f} |"
        )
    during = c.get("during", {})
    lines += [
        "",
        f"Redis grew by {c['redis_memory_growth_mb']:.1f} MB, {c['redis_bytes_per_socket']:.0f} B "
        f"per socket; {c['redis_clients']} Redis clients. Client processes' RSS (MB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in c["client_rss_mb"].items())
        + ".",
    ]
    if during:
        lines += ["", "While connecting: " + _system(during)]
    idle = data["result"].get("idle")
    if idle:
        lines += ["", "Idle (every socket open, no jobs), " + _system(idle)]
    return [*lines, ""]


def _system(p: dict[str, Any]) -> str:
    red = p["redis"]
    top = ", ".join(f"{k} {v:,.0f}" for k, v in red["top_commands_per_s"].items())
    groups = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p["cpu_cores_by_group"].items()))
    return (
        f"Redis **{red['cpu_cores']:.3f} cores**, **{red['commands_per_s']:,.0f} commands/s** "
        f"(script-internal commands included; INFO's instantaneous maximum "
        f"{red['ops_per_s_max']:,}), {red['memory_mb']:.1f} MB used, {red['clients']} clients, "
        f"{red['pubsub_channels']} pub/sub channels, {red['keys']:,} keys, "
        f"{red['new_connections_per_s']:.2f} new connections/s; commands/s by name: {top}. "
        f"CPU in cores: {groups}; this run {p['cpu_cores_ours']:.2f}, the machine "
        f"{p['cpu_cores_machine']:.2f}, **other work {p['cpu_cores_others']:.2f}**; load average "
        f"{p['load_avg']}. Database connections, most seen at once in `pg_stat_activity`: "
        f"{p['db_connections_max']}, total {p['db_connections_total_max']}. Visible messages, "
        f"most seen: {p['queue_visible_max']}."
    )


def _phase(name: str, scale: float, p: dict[str, Any]) -> list[str]:
    lines = [
        f"## {name.capitalize()}: jobs at {scale:g}x the model's peak-hour rate, {p['seconds']} s",
        "",
        "| process | sockets | state frames/s | pongs/s | publish→deliver p50 / p99 / max ms "
        "| CPU cores | RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in p["per_process"]:
        lines.append(
            f"| {row['process']} | {row['sockets']:,} | {row['state_frames_per_s']:.1f} | "
            f"{row['pongs_per_s']:.0f} | {_f(row['p50_ms'])} / {_f(row['p99_ms'])} / "
            f"{_f(row['max_ms'])} | {_f(row.get('cpu_cores'), '.3f')} | "
            f"{_f(row.get('rss_mb'), '.0f')} |"
        )
    a = p["all"]
    lines += [
        f"| **all** | | **{a['state_frames_per_s']:.1f}** | {a['pongs_per_s']:.0f} | "
        f"**{_f(a['p50_ms'])} / {_f(a['p99_ms'])}** / {_f(a['max_ms'])} | | |",
        "",
        f"{a['latency_samples']:,} frames timed; application pings sent "
        f"{p.get('pings_sent_per_s', 0):.0f}/s; closes {p['closes'] or 'none'}; failed "
        f"connection attempts {p['connect_failures']}.",
        "",
        "| job kind | created | refused | finished | events per job (median) "
        "| created → terminal p50 / p99 s |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for kind, j in p["jobs"].items():
        lines.append(
            f"| {kind} | {j['created']} | {j['refused'] or '-'} | {j['finished']} | "
            f"{_f(j['events_per_job_median'], '.0f')} | {_f(j['created_to_terminal_p50_s'])} / "
            f"{_f(j['created_to_terminal_p99_s'])} |"
        )
    lines += ["", "| HTTP | per s | answers | p50 / p99 ms |", "| --- | ---: | --- | ---: |"]
    for endpoint, h in p["http"].items():
        failed = f" + {h['errors']} failed" if h["errors"] else ""
        lines.append(
            f"| {endpoint} | {h['per_s']:.2f} | {h['statuses']}{failed} | "
            f"{_f(h['p50_ms'])} / {_f(h['p99_ms'])} |"
        )
    if p.get("http_error_samples"):
        lines += ["", f"HTTP failures (samples): {p['http_error_samples'][:3]}"]
    if "redis" in p:
        lines += ["", _system(p)]
    return [*lines, ""]


def _storm(s: dict[str, Any]) -> list[str]:
    return [
        f"## Reconnect storm: {s['process']} restarted with {s['sockets']:,} sockets",
        "",
        f"SIGTERM → old process exited after {s['exit_s']} s → new process listening at "
        f"{s['listening_s']} s (boot CPU {s['new_process_boot_cpu_s']} s) → **{s['back']:,} of "
        f"{s['sockets']:,} back and resubscribed, the last at {_f(s['all_back_s'])} s** after the "
        f"SIGTERM (p50 {_f(s['back_p50_s'])} s, p99 {_f(s['back_p99_s'])} s); the new process "
        f"spent {s['new_process_cpu_s_until_all_back']} s of CPU taking them back.",
        "",
        f"Redis commands/s: {_f(s['redis_commands_per_s_before'], ',.0f')} before the SIGTERM "
        f"(median of 0.25 s windows); peak {_f(s['redis_commands_per_s_peak'], ',.0f')} in a "
        f"0.25 s window, {_f(s['redis_commands_per_s_peak_1s'], ',.0f')} over 1 s. Of the "
        f"windows, **those of handshakes and resubscriptions peaked at "
        f"{_f(s.get('redis_reconnect_peak'), ',.0f')}**, those of a process's periodic connection "
        f"refresh (every socket's ZADD XX, every 30 s, storm or not) at "
        f"{_f(s.get('redis_refresh_peak'), ',.0f')}; Redis CPU peak "
        f"{_f(s['redis_cpu_peak'], '.2f')} cores. Closes seen by the clients: {s['closes']}; "
        f"failed connection attempts while the process was away: {s['connect_failures']:,}.",
        "",
        "Redis windows of 0.25 s above twice the quiet rate (s after SIGTERM, commands/s, CPU "
        "cores, clients, commands/s by name): " + ", ".join(str(x) for x in s["redis_timeline"]),
        "",
    ]


def markdown(data: dict[str, Any]) -> str:
    meta, r, b = data["meta"], data["result"], data["budget"]
    lines = [
        f"# Scale run: {meta['users']:,} users, {r['connect']['sockets']:,} sockets, "
        f"{meta['processes']} ASGI processes",
        "",
        f"`{meta['command']}`, {meta['date']} ({meta['machine']}); workers in the "
        f"`{meta['worker_layout']}` layout; load average {meta['load_start']} at the start, "
        f"{meta['load_end']} at the end; {meta['wall_s']:.0f} s in all.",
        "",
        *(
            [f"**The run failed:** {meta['error']}; the phases before it are reported.", ""]
            if meta.get("error")
            else []
        ),
        *_connect(data),
    ]
    if "peak" in r:
        lines += _phase("peak", 1, r["peak"])
    if "burst" in r:
        lines += _phase("burst", meta["burst"], r["burst"])
    if "drain" in r:
        d = r["drain"]
        lines += [
            "## Drain after the burst",
            "",
            f"Visible messages when the burst ended: {d['visible_at_start']}; "
            f"{'no queue holds a visible message' if d['drained'] else 'NOT drained'} after "
            f"**{d['seconds']} s** back at the peak rate. Timeline (s, visible): "
            + ", ".join(str(x) for x in d["timeline"]),
            "",
        ]
    if "storm" in r:
        lines += _storm(r["storm"])
    lines += [
        "## Database connection budget",
        "",
        f"{b['formula']} = {b['web']} + {b['workers']} + {b['relay']} + 1 = **{b['total']}**, "
        f"against `max_connections` {b['max_connections']} (the alarm fires at "
        f"{b['alarm_80_percent']}).",
        "",
    ]
    return "\n".join(lines)
