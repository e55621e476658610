"""The cluster table: each cluster scenario on N nodes beside the single node
of the same run. The per-unit costs of report.py (latency, fan-out time, CPU
per notification or delivery, summed over every node), what the API node and
the client nodes each spent, and what Redis did per notification or per
broadcast (commands from INFO commandstats, the time Redis spent in them,
Redis's own CPU). Used by run.py."""

import report

# Where each scenario's measured phases are in a loadgen result, and their units.
PHASES = {
    "notify": [(("notify",), "count", "notification"), (("connect",), "users", "connect")],
    "fanout": [(("rounds_phase",), "rounds", "broadcast"), (("connect",), "conns", "connect")],
}

TARGETS = {
    "delivery latency p99": "<= 10",
    "Redis commands per": "constant",
}


def _extra(result, label):
    """The cluster's own rows, for each phase: Redis per unit, and the API
    node's and the client nodes' share of the CPU (processes are in node
    order, node-a first)."""
    out = {}
    for path, units_key, unit in PHASES[label.split("@")[0]]:
        out.update(_phase_extra(report._get(result, *path), result.get(units_key), label, unit))
    return out


def _phase_extra(phase, units, label, unit):
    out = {}
    processes = (phase or {}).get("processes") or []
    if processes and units:
        out[f"{label} total CPU per {unit} on the API node, schedstat (us)"] = processes[0]["sched_us"] / units
        out[f"{label} total CPU per {unit} on the client nodes, schedstat (us)"] = (
            sum(p["sched_us"] for p in processes[1:]) / units)
    if (phase or {}).get("redis_error"):
        out[f"{label} Redis commands per {unit}"] = None
    redis = (phase or {}).get("redis")
    if redis and units:
        out[f"{label} Redis commands per {unit}"] = redis["calls"] / units
        out[f"{label} Redis time in commands per {unit} (us)"] = redis["usec"] / units
        out[f"{label} Redis CPU per {unit} (us)"] = (redis["cpu_user_us"] + redis["cpu_sys_us"]) / units
    return out


def _breakdown(label, server, result):
    """Notes: every Redis command per unit, the largest first, for each phase
    (or why Redis could not be read)."""
    notes = []
    for path, units_key, unit in PHASES[label.split("@")[0]]:
        phase, units = report._get(result, *path) or {}, result.get(units_key)
        if phase.get("redis_error"):
            notes.append(f"{label} on {server}: no Redis figures: {phase['redis_error'][:200]}")
        redis = phase.get("redis")
        if not redis or not units:
            continue
        parts = sorted(redis["commands"].items(), key=lambda kv: -kv[1]["calls"])
        text = ", ".join(f"{name} {stat['calls'] / units:.2f}" for name, stat in parts)
        notes.append(f"{label} on {server}, Redis commands per {unit}: {text or 'none'}")
    return notes


def _target(metric):
    return next((t for key, t in TARGETS.items() if key in metric), "report")


def rows(runs, clusters):
    """[{metric, single, <cluster>...}] for every scenario that ran on a cluster, plus notes."""
    table, notes = [], []
    for label, by_server in runs.items():
        if not any(c in by_server for c in clusters):
            continue
        scenario = label.split("@")[0]
        values = {}
        for server in ["herald"] + clusters:
            result = by_server.get(server)
            if result is None:
                continue
            notes += report.result_notes(label, server, result)
            if not result.get("ok"):
                continue
            measured = report.METRICS[scenario](result, label)
            if server != "herald":
                measured.update(_extra(result, label))
                notes += _breakdown(label, server, result)
            for metric, value in measured.items():
                values.setdefault(metric, {})["single" if server == "herald" else server] = value
        for metric, by in values.items():
            table.append({"metric": metric, "target": _target(metric), **by})
    return table, notes


def _nodes(server):
    return "1 node on PostgreSQL" if server == "herald-pg" else f"{server.split('-')[1]} nodes"


def markdown(document, clusters):
    first = clusters[0]
    lines = [
        f"## Herald cluster vs single node — {document['date']}{' (quick)' if document['quick'] else ''}",
        "",
        "Same run as the table above. API calls to node-a, clients on the other nodes (every delivery "
        "crosses Redis); nodes and their private Redis pinned to core 1, generator to core 0, PostgreSQL "
        "unpinned. CPU rows sum every node; Redis rows are from INFO commandstats and INFO cpu. "
        "1 node on PostgreSQL: a single node with its store in PostgreSQL and no Redis (the store's share).",
        "",
        f"| metric | single node | {' | '.join(_nodes(c) for c in clusters)} | {_nodes(first)} / single | target |",
        "|---|---:|" + "---:|" * len(clusters) + "---:|---|",
    ]
    for row in document.get("cluster_rows", []):
        single, head = row.get("single"), row.get(first)
        ratio = head / single if isinstance(head, (int, float)) and isinstance(single, (int, float)) and single \
            else None
        cells = " | ".join(report._fmt(row.get(c)) for c in clusters)
        lines.append(f"| {row['metric']} | {report._fmt(single)} | {cells} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} | {row['target']} |")
    if document.get("cluster_notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in document["cluster_notes"]]
    return "\n".join(lines) + "\n"
