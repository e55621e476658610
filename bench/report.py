"""Turns raw herald-loadgen results into per-unit costs and a Markdown table:
RSS per connection, server user/sys microseconds per connect, per delivery and
per notification, rates and latency percentiles, Herald beside Node with the
Herald/Node ratio and the target from issue 4. Used by run.py."""

SERVERS = ("herald", "node")


def _get(result, *path):
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def _per(phase, field, units):
    value = _get(phase, field)
    if value is None or not units:
        return None
    return value / units


def _idle(r, label):
    out = {}
    base = r.get("baseline_rss_kib", 0)
    for step in r.get("steps", []):
        out[f"{label} RSS per connection @ {step['conns']} (KiB)"] = (step["rss_kib"] - base) / step["conns"]
    hold, quiet = r.get("hold"), r.get("quiet")
    last = r["steps"][-1]["conns"] if r.get("steps") else 0
    if quiet:
        # The window between the last connect and the first ping of the hold;
        # under a second it says nothing (the ping schedule already runs).
        seconds = quiet["wall_ms"] / 1000
        out[f"{label} quiet window before the next ping @ {last} (s)"] = seconds
        out[f"{label} server CPU @ {last} between pings (% of a core)"] = (
            quiet["server_sched_us"] / (quiet["wall_ms"] * 1000) * 100 if seconds >= 1 else None)
    if hold:
        out[f"{label} server CPU @ {last}, pings included (% of a core)"] = (
            hold["server_sched_us"] / (hold["wall_ms"] * 1000) * 100)
        out[f"{label} pings answered during the hold (per s)"] = r.get("pings_during_hold", 0) / (hold["wall_ms"] / 1000)
    return out


def _storm(r, label):
    n, phase = r.get("connects"), r.get("connect")
    return {
        f"{label} user CPU per connect (us)": _per(phase, "server_user_us", n),
        f"{label} sys CPU per connect (us)": _per(phase, "server_sys_us", n),
        f"{label} total CPU per connect, schedstat (us)": _per(phase, "server_sched_us", n),
        f"{label} connects/s": r.get("connects_per_s"),
    }


def _fanout(r, label):
    n, phase = r.get("deliveries"), r.get("rounds_phase")
    out = {
        f"{label} fan-out time p50 (ms)": _get(r, "fanout", "p50_ms"),
        f"{label} fan-out time p99 (ms)": _get(r, "fanout", "p99_ms"),
        f"{label} user CPU per delivery (us)": _per(phase, "server_user_us", n),
        f"{label} sys CPU per delivery (us)": _per(phase, "server_sys_us", n),
        f"{label} total CPU per delivery, schedstat (us)": _per(phase, "server_sched_us", n),
    }
    burst = r.get("burst")
    if burst:
        out["burst deliveries/s"] = burst.get("deliveries_per_s")
        out["burst user CPU per delivery (us)"] = _per(burst.get("phase"), "server_user_us", burst.get("deliveries"))
        out["burst generator CPU (% of its core)"] = _get(burst, "phase", "gen_cpu_pct")
    return out


def _notify(r, label):
    n, phase = r.get("count"), r.get("notify")
    return {
        f"{label} user CPU per notification (us)": _per(phase, "server_user_us", n),
        f"{label} sys CPU per notification (us)": _per(phase, "server_sys_us", n),
        f"{label} total CPU per notification, schedstat (us)": _per(phase, "server_sched_us", n),
        f"{label} accepted/s": r.get("accepted_per_s"),
        f"{label} delivery latency p50 (ms)": _get(r, "delivery_latency", "p50_ms"),
        f"{label} delivery latency p99 (ms)": _get(r, "delivery_latency", "p99_ms"),
    }


def _room(r, label):
    join, typing = r.get("join") or {}, r.get("typing") or {}
    role, room = r.get("role_burst") or {}, r.get("room_burst") or {}
    return {
        f"{label} join storm: room_presence frames per socket per window (most)": join.get("per_socket_per_window_max"),
        f"{label} join storm: room_presence frames, all sockets": join.get("presence_frames"),
        f"{label} join storm: frames were it one per socket per join": join.get("frames_if_one_per_join"),
        f"{label} join storm: total CPU per join, schedstat (us)": _per(join.get("phase"), "server_sched_us", join.get("joins")),
        f"{label} typing frames per socket per s": typing.get("per_socket_per_s"),
        f"{label} typing frames per socket per s, at most (one a second per user)": typing.get("most_per_socket_per_s"),
        f"{label} typing user CPU per delivery (us)": _get(typing, "cpu_per_delivery", "user_us"),
        f"{label} typing sys CPU per delivery (us)": _get(typing, "cpu_per_delivery", "sys_us"),
        f"{label} typing total CPU per delivery, schedstat (us)": _get(typing, "cpu_per_delivery", "sched_us"),
        f"{label} role broadcast to the same sockets: total CPU per delivery, schedstat (us)":
            _get(role, "cpu_per_delivery", "sched_us"),
        f"{label} room event from the API: total CPU per delivery, schedstat (us)":
            _get(room, "cpu_per_delivery", "sched_us"),
        f"{label} typing / role broadcast, CPU per delivery": r.get("typing_over_role_cpu_per_delivery"),
    }


METRICS = {
    "idle": _idle,
    "storm": _storm,
    "fanout": _fanout,
    "notify": _notify,
    "polling": _fanout,
    "room": _room,
}

TARGETS = {
    "idle RSS per connection": "<= 4",
    "idle server CPU @ 19000 between": "< 0.2",
    "storm user CPU per connect": "<= 30",
    "fanout fan-out time p99": "<= 75",
    "fanout user CPU per delivery": "<= 1.5",
    "notify user CPU per notification": "<= 20",
    "notify delivery latency p99": "<= 10",
    "polling fan-out time p99": ">= 5x better than Node",
    "room join storm: room_presence frames per socket per window": "<= 1",
}


def _met(target, herald, node):
    """'yes'/'no' for a numeric target, '' where the target is only to report."""
    if not isinstance(herald, (int, float)):
        return ""
    if target.startswith(">= 5x"):
        return "" if not node else ("yes" if node / max(herald, 1e-9) >= 5 else "no")
    for op, test in (("<=", lambda a, b: a <= b), ("<", lambda a, b: a < b)):
        if target.startswith(op + " "):
            return "yes" if test(herald, float(target.split()[1])) else "no"
    return ""


def _target(metric, label):
    base = metric.replace(label, label.split("@")[0], 1)
    return next((t for prefix, t in TARGETS.items() if base.startswith(prefix)), "report")


def _phases(result):
    """Every phase report inside one loadgen result, with a path for notes."""
    for key, value in result.items():
        if isinstance(value, dict) and "gen_cpu_pct" in value:
            yield key, value
        elif isinstance(value, dict):
            for inner, phase in _phases(value):
                yield f"{key}.{inner}", phase
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    for inner, phase in _phases(item):
                        yield f"{key}[{i}].{inner}", phase


def result_notes(label, server, result):
    """Why one result is missing or to be read with care: it did not run, the
    machine was busy, or the generator was at its limit."""
    if not result.get("ok"):
        return [f"{label} on {server} did not run: {str(result.get('error'))[:300]}"]
    notes = []
    if result.get("other_cpu_pct", 0) > 10:
        notes.append(f"{label} on {server}: other processes used {result['other_cpu_pct']}% of a core "
                     "meanwhile: the machine was not quiet")
    for path, phase in _phases(result):
        if phase.get("gen_saturated"):
            notes.append(f"{label} on {server}: generator at {phase['gen_cpu_pct']}% of its core "
                         f"in {path}: this phase measured the generator too")
    return notes


def rows(runs):
    """[{metric, herald, node, ratio, target}], plus notes (failures, generator saturation)."""
    table, notes = [], []
    for label, by_server in runs.items():
        scenario = label.split("@")[0]
        values = {}
        for server in SERVERS:
            result = by_server.get(server)
            if result is None:
                continue
            notes += result_notes(label, server, result)
            if not result.get("ok"):
                continue
            for metric, value in METRICS[scenario](result, label).items():
                values.setdefault(metric, {})[server] = value
        for metric, by in values.items():
            h, n = by.get("herald"), by.get("node")
            ratio = h / n if isinstance(h, (int, float)) and isinstance(n, (int, float)) and n else None
            target = _target(metric, label)
            table.append({"metric": metric, "herald": h, "node": n, "ratio": ratio, "target": target,
                          "met": _met(target, h, n)})
    return table, notes


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(document):
    lines = [
        f"## Herald vs Node.js reference — {document['date']}{' (quick)' if document['quick'] else ''}",
        "",
        f"Command: `{document['command']}`; {document['machine'].get('nproc')} cores; "
        "servers pinned to core 1, generator to core 0."
        + (" **Debug build: timings mean nothing.**" if document.get("herald", {}).get("profile") == "debug" else ""),
        "",
        "| metric | Herald | Node | Herald/Node | target (Herald) | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in document["rows"]:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"| {row['metric']} | {_fmt(row['herald'])} | {_fmt(row['node'])} | {ratio} "
                     f"| {row['target']} | {row.get('met', '')} |")
    if document["notes"]:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in document["notes"]]
    return "\n".join(lines) + "\n"
