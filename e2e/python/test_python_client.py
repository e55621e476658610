# Covers Herald with the official python-socketio client: auth refusal messages, connected, notifications, acks, both transports.
import re
import socket
import time

import pytest
import socketio

from conftest import rid

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_no_token_is_refused_with_exact_message(herald, client):
    c = client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect(herald.url)
    err = c.wait_for("connect_error", 3)
    assert err == {"message": "Authentication token required"} or err.get("message") == "Authentication token required"


def test_bad_token_is_refused_with_exact_message(herald, client):
    c = client()
    bad = herald.token(session_id="s").rsplit(".", 1)[0] + ".AAAA"
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect(herald.url, token=bad)
    assert c.wait_for("connect_error", 3)["message"] == "Invalid authentication token"


def test_token_without_session_is_refused_with_exact_message(herald, client):
    import jwt
    c = client()
    tok = jwt.encode({"userId": rid("u"), "role": "r", "exp": int(time.time()) + 600}, herald.secret, algorithm="HS256")
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect(herald.url, token=tok)
    assert c.wait_for("connect_error", 3)["message"] == "Authentication failed"


# websocket-client sends `Origin: http://<server host:port>` by default (same-origin, allowed for an IP
# address); "no-origin" suppresses it with the option on socketio.Client(...), not on connect().
@pytest.mark.parametrize("transports,client_kw", [
    (["polling"], {}),
    (["websocket"], {}),
    (None, {}),
    (["websocket"], {"websocket_extra_options": {"suppress_origin": True}}),
], ids=["polling", "websocket", "upgrade", "websocket-no-origin"])
def test_connect_notify_acknowledge(herald, client, transports, client_kw):
    user = rid("py")
    session = rid("s")
    c = client(**client_kw)
    c.connect(herald.url, token=herald.token(user, session), transports=transports)
    hello = c.wait_for("connected")
    assert c.names()[0] == "connected"
    assert hello["userId"] == user
    assert hello["socketId"] == c.sio.get_sid()
    assert TS_RE.match(hello["timestamp"])
    if transports is None:
        # default: polling first, then the upgrade must really happen
        deadline = time.time() + 5
        while c.sio.transport() != "websocket" and time.time() < deadline:
            time.sleep(0.05)
        assert c.sio.transport() == "websocket", "python-socketio did not upgrade to websocket"

    r = herald.api("POST", f"/api/v1/users/{user}/notifications",
                   {"id": rid("n"), "type": "critical_finding", "title": "From python", "patientId": "p-1"})
    assert r.status_code == 202, r.text
    assert r.json()["deliveredTo"] == 1
    n = c.wait_for("critical_notification")
    assert n["title"] == "From python"
    assert n["patientId"] == "p-1"
    assert "redelivered" not in n
    assert TS_RE.match(n["createdAt"])

    res = c.sio.call("acknowledge_notification", {"notificationId": n["id"], "userId": user}, timeout=5)
    assert res["ok"] is True, res
    assert res["notificationId"] == n["id"]
    assert TS_RE.match(res["acknowledgedAt"])
    ev = c.wait_for("notification_acknowledged")
    assert ev == {"notificationId": n["id"], "acknowledgedAt": res["acknowledgedAt"]}

    bad = c.sio.call("acknowledge_notification", "not an object", timeout=5)
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"
    assert c.sio.call("activity", timeout=5) == {"ok": True}

    g = herald.api("GET", f"/api/v1/users/{user}/notifications/{n['id']}")
    assert g.json()["state"] == "acknowledged"


def test_offline_catch_up_is_redelivered(herald, client):
    user = rid("py")
    ids = [herald.api("POST", f"/api/v1/users/{user}/notifications", {"id": rid(f"off{i}"), "seq": i}).json()["notification"]["id"]
           for i in range(3)]
    c = client()
    c.connect(herald.url, token=herald.token(user), transports=["polling"])
    c.wait_for("connected")
    got = [c.wait_for("critical_notification") for _ in ids]
    assert [n["id"] for n in got] == ids
    assert all(n["redelivered"] is True for n in got)
    assert c.names()[:4] == ["connected"] + ["critical_notification"] * 3


def test_error_event_without_callback(herald, client):
    c = client()
    c.connect(herald.url, token=herald.token(), transports=["polling"])
    c.wait_for("connected")
    c.sio.emit("extend_session", {"sessionId": ["not", "a", "string"]})
    e = c.wait_for("error")
    assert e["event"] == "extend_session" and e["code"] == "invalid_payload"
    assert isinstance(e["message"], str)
    assert c.sio.connected


def test_server_disconnect_is_seen(herald, client):
    user = rid("py")
    c = client()
    c.connect(herald.url, token=herald.token(user), transports=["polling"])
    c.wait_for("connected")
    r = herald.api("DELETE", f"/api/v1/users/{user}/connections")
    assert r.json() == {"disconnected": 1}
    c.wait_for("disconnect")


def _local_names():
    """localhost, and this machine's own name when it resolves here."""
    names = ["localhost"]
    own = socket.gethostname().lower()
    try:
        if socket.gethostbyname(own).startswith("127.") or own == "localhost":
            names.append(own)
    except OSError:
        pass
    return names


# The sync Client's websocket library sends `Origin: http://<host>:<port>`, the server's own address:
# a same-origin request, allowed by name (localhost, this machine's name) with the default settings.
@pytest.mark.parametrize("name", _local_names())
def test_websocket_by_host_name_with_default_settings(herald, client, name):
    user = rid("py")
    c = client()
    c.connect(f"http://{name}:{herald.port}", token=herald.token(user, rid("s")), transports=["websocket"])
    assert c.wait_for("connected")["userId"] == user
    assert c.sio.transport() == "websocket"
    r = herald.api("POST", f"/api/v1/users/{user}/notifications", {"id": rid("n"), "title": "by name"})
    assert r.json()["deliveredTo"] == 1, r.text
    assert c.wait_for("critical_notification")["title"] == "by name"
