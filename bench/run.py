#!/usr/bin/env python3
"""Runs Herald's benchmark scenarios against Herald and the Node.js reference in
one invocation: builds both, starts each server fresh per scenario pinned to
core 1, runs herald-loadgen pinned to core 0, turns the raw measurements into
per-unit costs, and writes bench/results/<date>.json plus a Markdown table
(stdout and bench/results/latest.md). With --cluster, also the cluster
scenarios on three and two Herald nodes sharing a private Redis and a fresh
PostgreSQL database, against the single node of the same run, in a second
table. Standard library only.

    python3 bench/run.py            # full sizes (minutes)
    python3 bench/run.py --quick    # smoke run (seconds), what CI runs
    python3 bench/run.py --servers herald --cluster   # single node and cluster
    python3 bench/run.py --servers "" --clusters herald-pg --scenarios notify@burst-32api
                                    # one cluster scenario on one PostgreSQL node only
"""

import argparse
import datetime
import json
import os
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import cluster
import cluster_report
import report

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
NODE_DIR = os.path.join(BENCH, "node-reference")
RESULTS = os.path.join(BENCH, "results")
JWT_SECRET = "bench-jwt-secret-0123456789abcdef"
API_KEY = "bench-api-key-0123456789abcdef"

# Scenario sizes: (name, loadgen arguments, per-scenario timeout in seconds).
# A name "base@variant" is the base scenario with other arguments.
FULL = [
    ("idle", "idle --conns 1000,5000,19000 --settle 3 --hold 30", 600),
    # The JWT only in the CONNECT packet's auth, as a browser's socket.io-client sends it.
    ("idle@auth-token", "idle --conns 1000,5000,19000 --settle 3 --hold 5 --no-query-token", 600),
    ("storm", "storm --conns 10000", 600),
    ("storm@presence-off", "storm --conns 2000", 600),
    ("storm@presence", "storm --conns 2000", 600),
    ("storm@presence-role", "storm --conns 2000", 600),
    ("storm@presence-10k", "storm --conns 10000", 600),
    ("fanout", "fanout --conns 5000 --rounds 20", 600),
    ("notify", "notify --users 1000 --count 10000 --concurrency 8", 600),
    ("notify@1000/s", "notify --users 1000 --count 10000 --rate 1000", 600),
    ("polling", "polling --conns 2000 --rounds 20", 600),
    ("room", "room --members 200 --seconds 20 --every-ms 250 --rounds 200", 600),
]
# Run only when named in --scenarios: the `role` audience at 10k connects,
# whose batches (each listing every user who changed in the window, to every
# socket of the role) do not finish on one core: a known limit of the wide
# audiences, which are for modest audiences (docs/cluster.md, Presence).
ON_REQUEST = [
    ("storm@presence-role-10k", "storm --conns 10000", 600),
]
# Herald's presence events are off in every scenario (HERALD_PRESENCE_AUDIENCE
# =none, unless the environment says otherwise), so that the rows stay
# comparable with the runs before presence had subscriptions; the Node
# reference has no presence. The storm@presence rows are the storm of
# distinct users in one role with each presence setting, Herald only:
# -off (none), plain and -10k (Herald's defaults: the audience is
# `subscribers`, and no generator client subscribes, so a connect's change
# reaches nobody), and -role (every socket of the role hears each change, in
# one `presence_batch` per window). A value of None leaves the variable unset,
# so the server runs with its own default.
PRESENCE_OFF = {"HERALD_PRESENCE_AUDIENCE": "none"}
SCENARIO_ENV = {
    "storm@presence-off": {"HERALD_PRESENCE_AUDIENCE": "none"},
    "storm@presence": {"HERALD_PRESENCE_AUDIENCE": None},
    "storm@presence-role": {"HERALD_PRESENCE_AUDIENCE": "role"},
    "storm@presence-10k": {"HERALD_PRESENCE_AUDIENCE": None},
    "storm@presence-role-10k": {"HERALD_PRESENCE_AUDIENCE": "role"},
}
# Scenarios that measure a Herald setting or feature the Node reference
# lacks (it has no study rooms).
HERALD_ONLY = {name for name in SCENARIO_ENV if name.startswith("storm@presence")} | {"room"}
# The idle scenarios hold more sockets than the default connection cap of a
# process at this machine's open-file limit (the limit less a reserve):
# they raise the cap to the limit less the files Herald keeps for itself.
# main() fills this in once it knows the limit.
IDLE_SCENARIOS = ("idle", "idle@auth-token")
IDLE_FILE_RESERVE = 256

# The defaults group: Herald with nothing set but what a deployment must
# set (its JWT secret and an API key), beside Node, because users run
# defaults. Every other scenario lifts Herald's rate limits and turns
# presence off so that it measures what it names. The notify row is paced
# below the API's default budget (500 calls/s per key), which a
# deployment would raise rather than be refused by.
DEFAULTS_FULL = [
    ("idle@defaults", "idle --conns 1000,5000,10000 --settle 3 --hold 10", 600),
    ("storm@defaults", "storm --conns 10000", 600),
    ("fanout@defaults", "fanout --conns 5000 --rounds 20", 600),
    ("notify@defaults-400/s", "notify --users 1000 --count 4000 --rate 400", 600),
]
DEFAULTS_QUICK = [
    ("storm@defaults", "storm --conns 300", 120),
    ("notify@defaults-200/s", "notify --users 100 --count 400 --rate 200", 120),
]


def runs_with_defaults(scenario):
    return "@defaults" in scenario

# The cluster scenarios, run on every cluster-N and on the single node (the
# single node only when the plan above did not run it already): cross-node
# notification latency at a moderate rate, and role broadcasts at two socket
# counts (Redis commands per broadcast must not grow with them).
# Each API call waits for the store's commit and, in a cluster, for the other
# nodes' counts: 8 API connections carry ~400 calls/s there (the 2026-12-02
# run), so the cluster's paced run has 32 to keep the rate.
CLUSTER_FULL = [
    ("notify@1000/s-32api", "notify --users 1000 --count 10000 --rate 1000 --concurrency 32", 600),
    # Unpaced: as many notifications as 32 API connections get accepted, the
    # store's ceiling (accepted/s at saturation, and the latency it costs).
    ("notify@burst-32api", "notify --users 1000 --count 20000 --concurrency 32", 600),
    ("fanout", "fanout --conns 5000 --rounds 20", 600),
    ("fanout@1000", "fanout --conns 1000 --rounds 20", 600),
]
CLUSTER_QUICK = [
    ("notify@200/s", "notify --users 100 --count 400 --rate 200", 120),
    ("fanout", "fanout --conns 300 --rounds 5", 120),
]
# herald-pg: one node on PostgreSQL without Redis, the store's share of the cluster's figures.
CLUSTERS = ["cluster-3", "cluster-2", "herald-pg"]
QUICK = [
    ("idle", "idle --conns 100,300 --settle 1 --hold 2", 120),
    ("idle@auth-token", "idle --conns 100 --settle 1 --hold 1 --no-query-token", 120),
    ("storm", "storm --conns 300", 120),
    ("storm@presence", "storm --conns 300", 120),
    ("storm@presence-role", "storm --conns 300", 120),
    ("fanout", "fanout --conns 300 --rounds 5", 120),
    ("notify", "notify --users 100 --count 500", 120),
    ("notify@200/s", "notify --users 100 --count 400 --rate 200", 120),
    ("polling", "polling --conns 200 --rounds 5", 120),
    ("room", "room --members 50 --seconds 3 --every-ms 250 --rounds 20", 120),
]


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log(f"fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")


# <target>/<PROFILE>/ holds the binaries; "debug" only for smoke runs (no timings).
PROFILE = "release"

# Where cargo puts them: CARGO_TARGET_DIR when set (relative to the repository,
# where cargo runs), else target/.
TARGET_DIR = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")


def binary(name):
    """Where cargo puts `name` (build() runs cargo at the repository root)."""
    return os.path.join(TARGET_DIR, PROFILE, name)


def build(skip):
    if skip:
        return
    flags = ["--release"] if PROFILE == "release" else []
    log(f"cargo build {' '.join(flags)} -p herald -p herald-loadgen")
    subprocess.run(["cargo", "build", *flags, "-p", "herald", "-p", "herald-loadgen"], cwd=ROOT, check=True)
    log("npm ci (node reference)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(name, port, data_dir, defaults=False):
    """The command line and environment that start server `name`; with
    `defaults`, Herald gets only what a deployment must set."""
    env = dict(os.environ)
    if name == "herald":
        env.update({
            "HERALD_PORT": str(port), "HERALD_HOST": "127.0.0.1", "HERALD_DATA_DIR": data_dir,
            "JWT_SECRET": JWT_SECRET, "HERALD_API_KEYS": API_KEY, "HERALD_LOG": "warn",
        })
        if defaults:
            for key in [k for k in env if k.startswith("HERALD_") and k not in (
                    "HERALD_PORT", "HERALD_HOST", "HERALD_DATA_DIR", "HERALD_API_KEYS", "HERALD_LOG", "HERALD_BIN")]:
                del env[key]
        else:
            env.update({
                "HERALD_RATE_LIMIT_PER_SECOND": "1000000", "HERALD_RATE_LIMIT_BURST": "1000000",
                "HERALD_API_RATE_LIMIT_PER_SECOND": "1000000", "HERALD_API_RATE_LIMIT_BURST": "1000000",
            })
            for key, value in PRESENCE_OFF.items():
                env.setdefault(key, value)
        herald = os.environ.get("HERALD_BIN", binary("herald"))
        return [herald] + shlex.split(os.environ.get("HERALD_ARGS", "")), env
    if name == "redis":  # a cluster's private Redis: nothing persisted
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", data_dir], env
    env.update({"PORT": str(port), "JWT_SECRET": JWT_SECRET, "API_KEY": API_KEY})
    return ["node", os.path.join(NODE_DIR, "server.js")], env


def _healthy(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
        return r.status == 200


class Server:
    """One fresh server process pinned to core 1, ready when /healthz says 200
    (or when `ready(port)` says so); `env` adds to its environment."""

    def __init__(self, name, log_dir, env=None, ready=_healthy, label=None, defaults=False):
        self.name, self.label = name, label or name
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        command, environment = server_command(name, self.port, self.data_dir, defaults)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)  # the server's own default
            else:
                environment[key] = value
        self.ready = ready
        self.log_path = os.path.join(log_dir, f"{self.label}-{self.port}.log")
        self.log_file = open(self.log_path, "w")
        # taskset execs the server, so the child's pid is the server's.
        self.process = subprocess.Popen(["taskset", "-c", "1"] + command, env=environment, cwd=self.data_dir,
                                        stdout=self.log_file, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}: {tail}")
            try:
                if self.ready(self.port):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"{self.label} not ready in {timeout}s: {tail}")

    def target_args(self):
        """herald-loadgen's arguments for this server."""
        return ["--addr", f"127.0.0.1:{self.port}", "--server-pid", str(self.process.pid)]

    def own_pids(self):
        return [self.process.pid]

    def alive(self):
        return self.process.poll() is None

    def log_tail(self, lines=15):
        self.log_file.flush()
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat:
    user, nice, system, irq, softirq (not idle, iowait, steal; guest is in user)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = [int(v) for v in f.readline().split()[1:8]]
    return (user + nice + system + irq + softirq) / TICK


def process_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_scenario(server_name, scenario, args, timeout, log_dir):
    """Runs one scenario against a fresh server; returns the loadgen's JSON,
    plus how much CPU other processes on the machine used meanwhile."""
    busy_before, children_before, started = machine_busy_s(), os.times(), time.time()
    try:
        nodes = cluster.nodes_of(server_name)
        server = (cluster.Cluster(nodes, Server, log_dir) if nodes
                  else Server(server_name, log_dir, env=SCENARIO_ENV.get(scenario),
                              defaults=runs_with_defaults(scenario)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return {"scenario": scenario, "ok": False, "error": str(e)}
    # Whatever happens (a bug here, Ctrl-C), the server's processes stop and
    # a cluster's database is dropped.
    try:
        command = (["taskset", "-c", "0", binary("herald-loadgen")] + server.target_args()
                   + ["--api-key", API_KEY, "--jwt-secret", JWT_SECRET, "--timeout", str(min(timeout, 120))]
                   + args.split())
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            lines = done.stdout.strip().splitlines()
            result = json.loads(lines[-1]) if lines else {"ok": False, "error": done.stderr.strip()[-500:]}
        except subprocess.TimeoutExpired:
            result = {"scenario": scenario, "ok": False, "error": f"loadgen exceeded {timeout}s"}
        except json.JSONDecodeError as e:
            result = {"scenario": scenario, "ok": False, "error": f"unreadable loadgen output: {e}"}
        if server.alive():
            children = os.times()
            ours = sum(process_cpu_s(pid) for pid in server.own_pids()) + (
                children.children_user - children_before.children_user
                + children.children_system - children_before.children_system)
            result["other_cpu_pct"] = round((machine_busy_s() - busy_before - ours) / (time.time() - started) * 100, 1)
        else:
            result["ok"] = False
            result.setdefault("error", f"server died: {server.log_tail()}")
        if not result.get("ok"):
            result["server_log_tail"] = server.log_tail()
        result["command"] = " ".join(command)
    finally:
        server.stop()
    time.sleep(1)
    return result


def herald_identity():
    """Which Herald binary ran: path, size, mtime, and the repository's HEAD."""
    path = os.environ.get("HERALD_BIN", binary("herald"))
    head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True)
    try:
        stat = os.stat(path)
        built = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")
    except OSError:
        stat, built = None, None
    return {"binary": path, "profile": PROFILE, "bytes": stat and stat.st_size, "built": built, "repo_head": head.stdout.strip()}


def machine():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, shell=True).stdout.strip()
        except OSError:
            return ""
    return {"nproc": out("nproc"), "lscpu": out("lscpu | grep -v '^Flags' | head -12"), "kernel": out("uname -r"),
            "node": out("node --version"), "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def render(document):
    """The Markdown of a run: Herald beside Node, then the cluster beside the
    single node when the run had cluster servers."""
    table = report.markdown(document)
    if document.get("cluster_rows"):
        table += "\n" + cluster_report.markdown(document, CLUSTERS)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: a few hundred connections")
    parser.add_argument("--servers", default="herald,node", help="comma-separated: herald,node")
    parser.add_argument("--scenarios", default="", help="comma-separated subset of names (default: all)")
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    parser.add_argument("--report", metavar="JSON", help="only re-render the table of a saved results file")
    parser.add_argument("--cluster", action="store_true",
                        help="also the cluster scenarios on " + ", ".join(CLUSTERS)
                        + " (needs redis-server, psql and PostgreSQL on 127.0.0.1:5432)")
    parser.add_argument("--clusters", metavar="NAMES",
                        help="with or without --cluster: only these of " + ", ".join(CLUSTERS)
                        + " (comma-separated); the single node runs them only when --servers names herald")
    parser.add_argument("--debug", action="store_true",
                        help="build and run debug binaries (a smoke run that reuses a debug build; no timings)")
    options = parser.parse_args()
    global PROFILE
    PROFILE = "debug" if options.debug else "release"
    if options.report:
        with open(options.report) as f:
            document = json.load(f)
        document["rows"], document["notes"] = report.rows(document["runs"])
        document["cluster_rows"], document["cluster_notes"] = cluster_report.rows(document["runs"], CLUSTERS)
        print(render(document))
        return 0

    raise_fd_limit()
    cap = str(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - IDLE_FILE_RESERVE)
    for scenario in IDLE_SCENARIOS:
        SCENARIO_ENV[scenario] = {"HERALD_MAX_CONNECTIONS": cap}
    build(options.no_build)
    os.makedirs(RESULTS, exist_ok=True)
    log_dir = tempfile.mkdtemp(prefix="bench-logs-")
    servers = [s for s in options.servers.split(",") if s]
    wanted = set(s for s in options.scenarios.split(",") if s)
    plan = [(s, a, t, [x for x in servers if x != "node"] if s in HERALD_ONLY else servers)
            for s, a, t in (QUICK + DEFAULTS_QUICK if options.quick else FULL + DEFAULTS_FULL)
            if not wanted or s in wanted]
    plan += [(s, a, t, [x for x in servers if x != "node"]) for s, a, t in ON_REQUEST if s in wanted]
    plan = [p for p in plan if p[3]]
    clusters = CLUSTERS
    if options.clusters is not None:
        clusters = [c for c in options.clusters.split(",") if c]
        unknown = set(clusters) - set(CLUSTERS)
        if unknown:
            parser.error(f"--clusters: unknown {', '.join(sorted(unknown))}; choose from {', '.join(CLUSTERS)}")
    if options.cluster or options.clusters is not None:
        planned = {p[0] for p in plan if "herald" in p[3]}
        single = [] if options.clusters is not None and "herald" not in servers else ["herald"]
        for s, a, t in CLUSTER_QUICK if options.quick else CLUSTER_FULL:
            if not wanted or s in wanted:
                plan.append((s, a, t, clusters + ([] if s in planned else single)))

    started = datetime.datetime.now(datetime.timezone.utc)
    runs = {}
    for scenario, args, timeout, on in plan:
        for server in on:
            log(f"{scenario} on {server}: {args}")
            result = run_scenario(server, scenario, args, timeout, log_dir)
            runs.setdefault(scenario, {})[server] = result
            log(f"  -> {'ok' if result.get('ok') else 'FAILED: ' + str(result.get('error'))[:300]}")

    rows, notes = report.rows(runs)
    cluster_rows, cluster_notes = cluster_report.rows(runs, CLUSTERS)
    document = {
        "date": started.isoformat(timespec="seconds"),
        "quick": options.quick,
        "command": " ".join([f"{k}={os.environ[k]}" for k in ("HERALD_BIN", "HERALD_ARGS", "HERALD_PRESENCE_AUDIENCE",
                                                               "HERALD_BENCH_PG_SYNCHRONOUS_COMMIT", "HERALD_BENCH_PG_URL")
                             if k in os.environ]
                            + ["python3", "bench/run.py"] + sys.argv[1:]),
        "herald": herald_identity(),
        "machine": machine(),
        "runs": runs,
        "rows": rows,
        "notes": notes,
        "cluster_rows": cluster_rows,
        "cluster_notes": cluster_notes,
    }
    stamp = started.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if options.quick else "")
    with open(os.path.join(RESULTS, f"{stamp}.json"), "w") as f:
        json.dump(document, f, indent=2)
    table = render(document)
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(table)
    print(table)
    failed = [f"{s}/{srv}" for s, by in runs.items() for srv, r in by.items() if not r.get("ok")]
    log(f"raw results: bench/results/{stamp}.json; server logs: {log_dir}")
    if failed:
        log(f"scenarios that failed to run: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
