"""What the clinical closed loop costs, in one run on one release server
(pinned to core 1, as run.py pins it; this driver on core 0):

1. A notification with an escalation policy (two steps, due in an hour, so
   none fires during the run) against one without: the server's CPU per
   notification and what it writes per notification (bytes written by the
   process, /proc/PID/io, and rows added to the store). Both kinds are sent
   in alternating rounds, so the machine's noise falls on both alike.
2. The scheduler with many open notifications waiting on their deadlines:
   the server's CPU while idle with none open, then with --open of them.

    python3 bench/closed_loop.py                  # 4 rounds of 1000 each, 100,000 open
    python3 bench/closed_loop.py --quick          # seconds

Standard library only; the server is the release build under
CARGO_TARGET_DIR (or target/), built first unless --no-build.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness's server, build and CPU helpers)

POLICY = """
[escalation.policies.critical]
steps = [
  { after = "1h", renotify = true },
  { after = "2h", to_role = "attending" },
]
"""


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


class Api:
    """Keep-alive API connections, one per worker thread."""

    def __init__(self, port, workers):
        self.port, self.workers = port, workers

    def _post_many(self, bodies):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {run.API_KEY}", "Content-Type": "application/json"}
        for user, body in bodies:
            conn.request("POST", f"/api/v1/users/{user}/notifications", json.dumps(body), headers)
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                raise RuntimeError(f"POST answered {r.status}")
        conn.close()

    def send(self, bodies):
        chunks = [bodies[i::self.workers] for i in range(self.workers)]
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            for f in [pool.submit(self._post_many, c) for c in chunks if c]:
                f.result()


def body(severity, i, tag):
    return {"id": f"{tag}-{i}", "type": "critical_finding", "severity": severity,
            "title": "Critical Finding Detected", "patientId": f"patient-{i}", "studyId": f"study-{i}"}


def rows(db):
    """Rows of the tables a notification writes to."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("notifications", "recipients", "escalation_steps", "audit")}
    finally:
        c.close()


def idle_cpu(pid, seconds):
    """The server's CPU share (of one core) over `seconds` of doing nothing."""
    start_cpu, start = run.process_cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (run.process_cpu_s(pid) - start_cpu) / (time.monotonic() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--rounds", type=int)
    p.add_argument("--count", type=int, help="notifications per kind per round")
    p.add_argument("--open", type=int, help="open notifications for the scheduler figure")
    p.add_argument("--idle", type=float, help="seconds of each idle measurement")
    a = p.parse_args()
    rounds = a.rounds or (2 if a.quick else 4)
    count = a.count or (100 if a.quick else 1000)
    open_n = a.open if a.open is not None else (2000 if a.quick else 100_000)
    idle_s = a.idle or (2 if a.quick else 30)
    os.sched_setaffinity(0, {0})
    if not a.no_build:
        run.log("cargo build --release -p herald")
        subprocess.run(["cargo", "build", "--release", "-p", "herald"], cwd=run.ROOT, check=True)
    log_dir = tempfile.mkdtemp(prefix="bench-closed-loop-")
    config = os.path.join(log_dir, "herald.toml")
    with open(config, "w") as f:
        f.write(POLICY)
    os.environ["HERALD_ARGS"] = f"--config {config}"
    server = run.Server("herald", log_dir)
    try:
        pid, db = server.process.pid, os.path.join(server.data_dir, "herald.db")
        api = Api(server.port, 8)
        totals = {k: {"cpu": 0.0, "bytes": 0, "rows": {}, "n": 0} for k in ("with", "without")}
        for r in range(rounds):
            for kind, severity in (("without", "routine"), ("with", "critical")):
                bodies = [(f"user-{i % 100}", body(severity, i, f"{kind}-{r}")) for i in range(count)]
                before_rows, before_cpu, before_bytes = rows(db), run.process_cpu_s(pid), write_bytes(pid)
                api.send(bodies)
                time.sleep(0.2)  # the last group commit
                t = totals[kind]
                t["cpu"] += run.process_cpu_s(pid) - before_cpu
                t["bytes"] += write_bytes(pid) - before_bytes
                after = rows(db)
                for table, n in after.items():
                    t["rows"][table] = t["rows"].get(table, 0) + n - before_rows[table]
                t["n"] += count
        per = {}
        for kind, t in totals.items():
            per[kind] = {
                "cpu_us": t["cpu"] / t["n"] * 1e6,
                "bytes": t["bytes"] / t["n"],
                "rows": {table: n / t["n"] for table, n in t["rows"].items()},
            }
        # The scheduler: idle with what is open so far, then with `open_n`.
        baseline_open = rows(db)["escalation_steps"] // 2
        idle_before = idle_cpu(pid, idle_s)
        bodies = [(f"user-{i % 1000}", body("critical", i, "open")) for i in range(open_n)]
        started = time.monotonic()
        api.send(bodies)
        fill_s = time.monotonic() - started
        time.sleep(1)
        idle_after = idle_cpu(pid, idle_s)
        result = {
            "per_notification": per,
            "cpu_ratio": per["with"]["cpu_us"] / per["without"]["cpu_us"],
            "bytes_ratio": per["with"]["bytes"] / max(per["without"]["bytes"], 1),
            "scheduler": {
                "open_before": baseline_open, "idle_cpu_before": idle_before,
                "open_after": rows(db)["escalation_steps"] // 2, "idle_cpu_after": idle_after,
                "fill_seconds": fill_s, "idle_seconds": idle_s,
            },
            "rounds": rounds, "count": count,
        }
    finally:
        server.stop()
    w, wo = result["per_notification"]["with"], result["per_notification"]["without"]
    s = result["scheduler"]
    print(json.dumps(result, indent=2))
    print()
    print("| per notification | without a policy | with a two-step policy | ratio |")
    print("|---|---|---|---|")
    print(f"| server CPU | {wo['cpu_us']:.0f} µs | {w['cpu_us']:.0f} µs | {result['cpu_ratio']:.2f} |")
    print(f"| bytes written | {wo['bytes']:.0f} | {w['bytes']:.0f} | {result['bytes_ratio']:.2f} |")
    rw = ", ".join(f"{k} {v:.1f}" for k, v in wo["rows"].items())
    rp = ", ".join(f"{k} {v:.1f}" for k, v in w["rows"].items())
    print(f"| rows added | {rw} | {rp} | |")
    print()
    print(f"scheduler, idle: {s['idle_cpu_before'] * 100:.3f}% of a core with {s['open_before']:,} open, "
          f"{s['idle_cpu_after'] * 100:.3f}% with {s['open_after']:,} open "
          f"({s['idle_seconds']:.0f} s each; {s['open_after'] - s['open_before']:,} stored in {s['fill_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
