"""What two memory attacks of the security review (issue 24) cost the
server, in resident memory (VmRSS from /proc/PID/status):

  heads   N connections each trickle a long request head that never ends
          (the attack sent 390 KB each); the server holds them to its
          header timeout.
  bodies  N API calls at once, each a notification of about 980 KB that is
          one array of 490,000 small elements.

    python3 bench/memory_attacks.py heads  [--connections 1000] [--head-kib 390]
    python3 bench/memory_attacks.py bodies [--calls 16] [--elements 490000]

Prints the server's RSS before, at its peak during the attack, and 3 s
after the attack let go, in MiB. Starts its own server ($HERALD_BIN, else
the debug build under CARGO_TARGET_DIR or target/) on 127.0.0.1 with a
fresh data folder, and stops it; every connection goes to 127.0.0.1 only.
Bounded: the heads are sent and held for --seconds (default 8); each
body call has 60 s to be answered (a debug build is slow to parse them). Standard library only.
"""

import argparse
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HERALD_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug", "herald"
)
API_KEY = "bench-" + secrets.token_hex(16)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir):
    port = free_port()
    env = dict(
        os.environ,
        HERALD_PORT=str(port),
        HERALD_HOST="127.0.0.1",
        HERALD_DATA_DIR=data_dir,
        JWT_SECRET=secrets.token_hex(32),
        HERALD_API_KEYS=API_KEY,
        HERALD_LOG="error",
    )
    server = subprocess.Popen([BIN, "serve"], env=env, stdin=subprocess.DEVNULL)
    for _ in range(400):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"{BIN} did not answer /healthz")


class Peak:
    """Samples the server's RSS every 10 ms until stopped."""

    def __init__(self, pid):
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.peak


def heads(port, args):
    """Opens the connections, then sends each its unfinished head in 16 KiB
    pieces, round after round, until all is sent or --seconds pass."""
    conns = []
    for _ in range(args.connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.send(b"GET /healthz HTTP/1.1\r\nHost: herald\r\nX-Pad: ")
        conns.append(s)
    piece = b"p" * 16384
    left = {s: args.head_kib * 1024 for s in conns}
    refused = set()
    deadline = time.monotonic() + args.seconds
    while left and time.monotonic() < deadline:
        for s in list(left):
            try:
                n = s.send(piece[: min(len(piece), left[s])])
                left[s] -= n
                if left[s] <= 0:
                    del left[s]
            except BlockingIOError:
                pass
            except OSError:
                refused.add(s)
                del left[s]
    # Held (or refused) until the end of the attack's time.
    time.sleep(max(0.0, deadline - time.monotonic()))
    answered_431 = 0
    for s in conns:
        try:
            answered_431 += s.recv(64).startswith(b"HTTP/1.1 431")
        except OSError:
            pass
        s.close()
    return f"{args.connections} connections, {args.head_kib} KiB each; {answered_431} answered 431"


def bodies(port, args):
    body = json.dumps({"title": "burst", "items": [0] * args.elements}, separators=(",", ":")).encode()
    statuses = []

    def call(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request(
            "POST",
            f"/api/v1/users/bench{i}/notifications",
            body=body,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        )
        statuses.append(c.getresponse().status)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(args.calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return f"{args.calls} bodies of {len(body)} bytes at once; statuses {sorted(statuses)}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("attack", choices=["heads", "bodies"])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--head-kib", type=int, default=390)
    p.add_argument("--calls", type=int, default=16)
    p.add_argument("--elements", type=int, default=490_000)
    p.add_argument("--seconds", type=float, default=8.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="herald-memory-attacks-") as data:
        server, port = start(data)
        try:
            time.sleep(0.5)
            before = rss_mib(server.pid)
            peak = Peak(server.pid)
            what = (heads if args.attack == "heads" else bodies)(port, args)
            time.sleep(3)
            top, after = peak.stop(), rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(10)
    print(f"{args.attack}: {what}")
    print(f"server RSS (MiB): before {before:.0f}, peak {top:.0f}, 3 s after {after:.0f}")


if __name__ == "__main__":
    sys.exit(main())
