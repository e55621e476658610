# Pytest fixtures for the python-socketio e2e tests: a real Herald process per module, JWT minting, event recording.
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import jwt
import pytest
import requests
import socketio

REPO = Path(__file__).resolve().parents[2]
HERALD_BIN = os.environ.get("HERALD_BIN") or str(REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "herald")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Herald:
    def __init__(self, extra_env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix="herald-py-")
        self.secret = secrets.token_hex(32)
        self.api_key = "k1-" + secrets.token_hex(12)
        self.env = {
            **os.environ,
            "HERALD_PORT": str(self.port),
            "HERALD_HOST": "127.0.0.1",
            "HERALD_DATA_DIR": self.data_dir,
            "JWT_SECRET": self.secret,
            "HERALD_API_KEYS": f"{self.api_key},k2-{secrets.token_hex(12)}",
            "HERALD_LOG": os.environ.get("HERALD_LOG", "info"),
            **(extra_env or {}),
        }
        self.log_path = Path(self.data_dir).with_suffix(".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HERALD_BIN, "serve"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"herald exited early ({self.proc.returncode}): {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("herald not ready within 20s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def token(self, user_id=None, session_id=None, role="radiologist", ttl=3600, **extra):
        claims = {"userId": user_id or rid("u"), "sessionId": session_id or rid("s"), "role": role,
                  "iat": int(time.time()), "exp": int(time.time()) + ttl, **extra}
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def api(self, method, path, json=None, key="default"):
        headers = {}
        if key == "default":
            key = self.api_key
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return requests.request(method, self.url + path, json=json, headers=headers, timeout=10)


def rid(prefix):
    return f"{prefix}-{secrets.token_hex(5)}"


class Recorder:
    """A python-socketio Client that records every event in arrival order."""

    def __init__(self, **client_kw):
        self.sio = socketio.Client(reconnection=False, **client_kw)
        self.cond = threading.Condition()
        self.events = []  # [name, data, used]

        @self.sio.event
        def connect_error(data):
            self._push("connect_error", data)

        @self.sio.event
        def disconnect(*args):
            self._push("disconnect", args)

        @self.sio.on("*")
        def any_event(event, *args):
            self._push(event, args[0] if args else None)

    def _push(self, name, data):
        with self.cond:
            self.events.append([name, data, False])
            self.cond.notify_all()

    def names(self):
        with self.cond:
            return [e[0] for e in self.events]

    def connect(self, url, token=None, transports=None, **kw):
        auth = {"token": token} if token is not None else None
        self.sio.connect(url, auth=auth, transports=transports, wait_timeout=5, **kw)

    def wait_for(self, name, timeout=5.0):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if not e[2] and e[0] == name:
                        e[2] = True
                        return e[1]
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"timeout waiting for {name}; got {[e[0] for e in self.events]}")
                self.cond.wait(left)

    def unused(self, name, settle=0.3):
        time.sleep(settle)
        with self.cond:
            return [e[1] for e in self.events if not e[2] and e[0] == name]

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:
            pass


@pytest.fixture(scope="module")
def herald():
    # A short ping interval bounds a python-engineio client race: when a refused connect closes while
    # the write loop is busy, the client never sends CLOSE and its last long-poll GET waits for the next ping.
    h = Herald({"HERALD_PING_INTERVAL": "1s"})
    yield h
    h.stop()


@pytest.fixture
def client():
    recs = []

    def make(**client_kw):
        r = Recorder(**client_kw)
        recs.append(r)
        return r

    yield make
    for r in recs:
        r.close()
