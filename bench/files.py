#!/usr/bin/env python3
"""What shared files cost Herald: upload and download throughput, and the
server's resident memory while it streams them.

For each store (SQLite in a fresh data folder; PostgreSQL in a fresh
database that is created for the run and dropped after) it starts a release
Herald pinned to core 1 (this script pins itself to core 0) and, for each
size, uploads a PDF of that many bytes (the PDF signature, then random
bytes) for a new user with `POST /api/v1/users/{userId}/files` (API key,
multipart), downloads it with that user's JWT (`GET /api/v1/files/{id}`)
and checks its SHA-256 and length. Around each transfer it reads the
server's VmRSS, resets its peak (`/proc/PID/clear_refs`, 5), and reads the
peak after (VmHWM): streaming means the peak stays near the RSS before,
whatever the file's size.

    python3 bench/files.py                          # 2 MiB, 20 MiB and the max, both stores
    python3 bench/files.py --stores sqlite --runs 1 # one store, one run per size
    python3 bench/files.py --json results.json      # the raw figures too

The binary is $HERALD_BIN, else release/herald under $CARGO_TARGET_DIR
(relative to the repository) or target/. PostgreSQL is
$HERALD_BENCH_PG_URL, else postgres://postgres@127.0.0.1:5432 (needs
`psql`). Every connection goes to 127.0.0.1. Standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
BIN = os.environ.get("HERALD_BIN") or os.path.join(TARGET_DIR, "release", "herald")
PG_URL = os.environ.get("HERALD_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
API_KEY = "bench-files-" + secrets.token_hex(16)
JWT_SECRET = secrets.token_hex(32)
MIB = 1024 * 1024
# files.max_size's default (25 MiB): the largest file Herald accepts.
MAX_SIZE = 25 * MIB
BOUNDARY = "herald-bench-" + secrets.token_hex(8)


def jwt(user_id):
    """An HS256 token for `user_id`, valid for an hour."""
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=")
    now = int(time.time())
    claims = {"userId": user_id, "sessionId": f"s-{user_id}", "role": "radiologist", "iat": now, "exp": now + 3600}
    head = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(claims)
    signature = hmac.new(JWT_SECRET.encode(), head, hashlib.sha256).digest()
    return (head + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def reset_peak(pid):
    """Sets the process's VmHWM back to its current RSS (Linux 4.0+)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    subprocess.run(["psql", f"{PG_URL}/postgres", "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql],
                   check=True, capture_output=True, text=True)


class Herald:
    """A fresh release Herald pinned to core 1; on PostgreSQL, in a fresh
    database dropped when it stops."""

    def __init__(self, store):
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="bench-files-")
        self.database = None
        env = dict(os.environ, HERALD_PORT=str(self.port), HERALD_HOST="127.0.0.1", HERALD_DATA_DIR=self.data_dir,
                   JWT_SECRET=JWT_SECRET, HERALD_API_KEYS=API_KEY, HERALD_LOG="warn",
                   HERALD_API_RATE_LIMIT_PER_SECOND="1000000", HERALD_API_RATE_LIMIT_BURST="1000000")
        for key in ("DATABASE_URL", "REDIS_URL"):
            env.pop(key, None)
        if store == "postgres":
            self.database = f"herald_files_bench_{os.getpid()}"
            psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
            psql(f"CREATE DATABASE {self.database}")
            env["DATABASE_URL"] = f"{PG_URL}/{self.database}"
        self.log = open(os.path.join(self.data_dir, "server.log"), "w")
        # taskset execs the server, so the child's pid is the server's.
        self.process = subprocess.Popen(["taskset", "-c", "1", BIN], env=env, cwd=self.data_dir,
                                        stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        tail = self.tail()
        self.stop()
        raise RuntimeError(f"{BIN} did not become healthy on {store}: {tail}")

    @property
    def pid(self):
        return self.process.pid

    def tail(self):
        self.log.flush()
        with open(self.log.name) as f:
            return "".join(f.readlines()[-15:])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.database:
            psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def measured(pid, transfer):
    """Runs `transfer()`; its result, seconds, and the server's RSS before
    and peak RSS during it (KiB)."""
    before = status_kib(pid, "VmRSS")
    reset_peak(pid)
    started = time.perf_counter()
    result = transfer()
    seconds = time.perf_counter() - started
    return result, seconds, before, status_kib(pid, "VmHWM")


def upload(port, user, content):
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode()
    body = head + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", f"/api/v1/users/{user}/files", body=body, headers={
        "Authorization": f"Bearer {API_KEY}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    r = c.getresponse()
    answer = r.read()
    c.close()
    if r.status != 201:
        raise RuntimeError(f"upload of {len(content)} bytes: HTTP {r.status} {answer[:300]!r}")
    return json.loads(answer)


def download(port, file_id, token):
    """The file's length and SHA-256, read 1 MiB at a time."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", f"/api/v1/files/{file_id}", headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"download: HTTP {r.status} {r.read()[:300]!r}")
    digest, length = hashlib.sha256(), 0
    while True:
        piece = r.read(MIB)
        if not piece:
            break
        digest.update(piece)
        length += len(piece)
    c.close()
    return length, digest.hexdigest()


def one_size(server, size, runs):
    """`runs` uploads and downloads of a file of `size` bytes, each checked."""
    samples = []
    for run in range(runs):
        content = bytearray(os.urandom(size))
        content[:9] = b"%PDF-1.7\n"
        content = bytes(content)
        want = hashlib.sha256(content).hexdigest()
        user = f"files-{size}-{run}-{secrets.token_hex(4)}"
        answer, up_s, up_before, up_peak = measured(server.pid, lambda: upload(server.port, user, content))
        if answer.get("sha256") != want or answer.get("size") != size:
            raise RuntimeError(f"the upload's answer does not match the file: {answer}")
        token = jwt(user)
        (length, digest), down_s, down_before, down_peak = measured(
            server.pid, lambda: download(server.port, answer["fileId"], token))
        if length != size or digest != want:
            raise RuntimeError(f"downloaded {length} bytes with SHA-256 {digest}; sent {size} with {want}")
        samples.append({"upload_s": up_s, "upload_rss_before_kib": up_before, "upload_peak_kib": up_peak,
                        "download_s": down_s, "download_rss_before_kib": down_before, "download_peak_kib": down_peak})
    mib = size / MIB
    return {
        "bytes": size,
        "runs": samples,
        "upload_mib_per_s": statistics.median(mib / s["upload_s"] for s in samples),
        "download_mib_per_s": statistics.median(mib / s["download_s"] for s in samples),
        "upload_peak_over_before_mib": max(s["upload_peak_kib"] - s["upload_rss_before_kib"] for s in samples) / 1024,
        "download_peak_over_before_mib": max(s["download_peak_kib"] - s["download_rss_before_kib"]
                                             for s in samples) / 1024,
        "rss_before_mib": samples[0]["upload_rss_before_kib"] / 1024,
    }


def size_of(text):
    return MAX_SIZE if text == "max" else int(float(text) * MIB)


def markdown(results):
    lines = ["| store | file | upload (MiB/s) | download (MiB/s) | RSS before (MiB) "
             "| peak over it, upload (MiB) | peak over it, download (MiB) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for store, sizes in results.items():
        for r in sizes:
            lines.append(f"| {store} | {r['bytes'] / MIB:g} MiB | {r['upload_mib_per_s']:.0f} "
                         f"| {r['download_mib_per_s']:.0f} | {r['rss_before_mib']:.1f} "
                         f"| {r['upload_peak_over_before_mib']:.1f} | {r['download_peak_over_before_mib']:.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--sizes", default="2,20,max", help="MiB each, comma-separated; max = files.max_size (25 MiB)")
    parser.add_argument("--runs", type=int, default=3, help="transfers of each size (medians and the largest peak)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    options = parser.parse_args()
    if not os.path.exists(BIN):
        parser.error(f"no Herald binary at {BIN}: build it (cargo build --release) or set HERALD_BIN")
    os.sched_setaffinity(0, {0})
    sizes = [size_of(s) for s in options.sizes.split(",") if s]
    results = {}
    for store in [s for s in options.stores.split(",") if s]:
        server = Herald(store)
        try:
            print(f"[files] {store}: Herald pid {server.pid}, RSS {status_kib(server.pid, 'VmRSS') / 1024:.1f} MiB",
                  file=sys.stderr, flush=True)
            results[store] = []
            for size in sizes:
                results[store].append(one_size(server, size, options.runs))
                print(f"[files] {store}: {size / MIB:g} MiB done", file=sys.stderr, flush=True)
        finally:
            server.stop()
    document = {"command": " ".join(["python3", "bench/files.py"] + sys.argv[1:]), "binary": BIN,
                "results": results}
    if options.json:
        with open(options.json, "w") as f:
            json.dump(document, f, indent=2)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
