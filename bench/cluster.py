"""A Herald cluster for the benchmarks: N release nodes on their own ports,
sharing one private redis-server (a spare port, no persistence, so that its
INFO commandstats count nothing but this cluster) and one fresh PostgreSQL
database (created for this cluster, dropped when it stops). Everything on the
server side is pinned to core 1, as a single server is; PostgreSQL is the
machine's own server and is not pinned.

The backend API calls go to the first node (node-a); the clients connect to
the others, round robin, so that every delivery crosses Redis. Used by
run.py for the servers named cluster-N, and for herald-pg: one node with its
store in a fresh PostgreSQL database and no Redis, which tells the store's
share of a cluster's figures from Redis's."""

import os
import socket
import subprocess
import urllib.request
import json

# The PostgreSQL server, without a database name (trust auth on this machine and in CI).
PG_URL = os.environ.get("HERALD_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
# "off": the database commits without waiting for its WAL flush (ALTER DATABASE
# ... SET synchronous_commit = off): what the figures are without the disk's
# flush time. Not durable; an experiment only, never a default.
PG_SYNC = os.environ.get("HERALD_BENCH_PG_SYNCHRONOUS_COMMIT", "")
if PG_SYNC not in ("", "on", "off", "local"):
    raise SystemExit(f"HERALD_BENCH_PG_SYNCHRONOUS_COMMIT={PG_SYNC!r}: use on, off or local")
NODE_IDS = ["node-a", "node-b", "node-c", "node-d", "node-e"]
_created = 0


def nodes_of(name):
    """The node count of a server named cluster-N (1 for herald-pg), or None
    for a server of another kind."""
    if name == "herald-pg":
        return 1
    prefix, _, count = name.partition("-")
    return int(count) if prefix == "cluster" and count.isdigit() and 2 <= int(count) <= len(NODE_IDS) else None


def _psql(sql):
    done = subprocess.run(["psql", f"{PG_URL}/postgres", "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"PostgreSQL at {PG_URL} refused `{sql}`: {done.stderr.strip()[-300:]}")


def _redis_ping(port):
    """Redis answers PING on `port`."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def _ready_in_cluster(port):
    """GET /readyz says ready with Redis joined."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
        return r.status == 200 and json.loads(r.read()).get("redis") == "ok"


class Cluster:
    """N Herald nodes, their Redis and their database; `server_type` is run.Server."""

    def __init__(self, count, server_type, log_dir):
        global _created
        _created += 1
        self.db = f"herald_bench_{os.getpid()}_{_created}"
        self.redis, self.nodes = None, []
        try:
            _psql(f"CREATE DATABASE {self.db}")
            if PG_SYNC:
                _psql(f"ALTER DATABASE {self.db} SET synchronous_commit = '{PG_SYNC}'")
            env, ready = {"DATABASE_URL": f"{PG_URL}/{self.db}"}, None
            if count > 1:
                self.redis = server_type("redis", log_dir, ready=_redis_ping)
                env["REDIS_URL"], ready = f"redis://127.0.0.1:{self.redis.port}", _ready_in_cluster
            # One after the other: the first creates the schema in the empty database.
            for node_id in NODE_IDS[:count]:
                extra = {"HERALD_NODE_ID": node_id} if self.redis else {}
                self.nodes.append(server_type("herald", log_dir, {**env, **extra}, label=node_id,
                                              **({"ready": ready} if ready else {})))
        except Exception:
            self.stop()
            raise

    def target_args(self):
        """herald-loadgen's arguments: API on node-a, clients on the others, every node's pid, Redis."""
        if not self.redis:
            return self.nodes[0].target_args()
        api, clients = self.nodes[0], self.nodes[1:]
        return ["--addr", f"127.0.0.1:{api.port}",
                "--client-addrs", ",".join(f"127.0.0.1:{n.port}" for n in clients),
                "--server-pid", ",".join(str(p) for p in self.pids()),
                "--redis-addr", f"127.0.0.1:{self.redis.port}"]

    def pids(self):
        return [n.process.pid for n in self.nodes]

    def _children(self):
        return self.nodes + ([self.redis] if self.redis else [])

    def own_pids(self):
        """Every process of the cluster, Redis included (for the quiet-machine check)."""
        return [c.process.pid for c in self._children()]

    def alive(self):
        return all(c.alive() for c in self._children())

    def log_tail(self):
        return "".join(f"--- {c.label} ---\n{c.log_tail()}" for c in self._children())

    def stop(self):
        for node in self.nodes:
            node.stop()
        if self.redis:
            self.redis.stop()
        try:
            _psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            print(f"[bench] could not drop database {self.db}: {e}", flush=True)
