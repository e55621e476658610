# Calls (WebRTC signalling) with the official python-socketio client: an invitation rings the callee, the answer
# reaches the caller, a webrtc_signal is relayed with `from`, and call_end ends it for both; a third client that is
# not in the call cannot send a signal into it (`forbidden`) and hears nothing of it.
from conftest import rid


def call(c, event, data):
    return c.sio.call(event, data, timeout=5)


def connected(herald, client, user, transports):
    c = client()
    c.connect(herald.url, token=herald.token(user), transports=transports)
    return c, c.wait_for("connected")["socketId"]


def test_a_call_between_two_python_clients(herald, client):
    ann, ben = rid("ann"), rid("ben")
    a, a_sid = connected(herald, client, ann, ["websocket"])
    b, b_sid = connected(herald, client, ben, ["polling"])

    invited = call(a, "call_invite", {"to": {"userId": ben}, "media": ["audio", "video"]})
    assert invited["ok"] is True, invited
    call_id = invited["callId"]
    assert isinstance(invited["iceServers"], list)
    ring = b.wait_for("call_incoming")
    assert ring["callId"] == call_id
    assert ring["from"] == {"userId": ann, "socketId": a_sid}
    assert ring["media"] == ["audio", "video"]

    assert call(b, "call_answer", {"callId": call_id, "accept": True}) == {"ok": True, "callId": call_id, "accept": True}
    assert a.wait_for("call_answer") == {"callId": call_id, "from": {"userId": ben, "socketId": b_sid}, "accept": True}

    offer = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
    assert call(a, "webrtc_signal", {"callId": call_id, "to": b_sid, "type": "offer", "payload": offer})["ok"] is True
    assert b.wait_for("webrtc_signal") == {
        "callId": call_id, "from": {"userId": ann, "socketId": a_sid}, "type": "offer", "payload": offer,
    }
    answer = {"type": "answer", "sdp": "v=0\r\n"}
    assert call(b, "webrtc_signal", {"callId": call_id, "to": a_sid, "type": "answer", "payload": answer})["ok"] is True
    back = a.wait_for("webrtc_signal")
    assert (back["type"], back["payload"], back["from"]) == ("answer", answer, {"userId": ben, "socketId": b_sid})

    assert call(a, "call_end", {"callId": call_id}) == {"ok": True, "callId": call_id}
    for c in (a, b):
        assert c.wait_for("call_ended") == {"callId": call_id, "by": ann, "reason": "ended"}
    over = call(b, "webrtc_signal", {"callId": call_id, "to": a_sid, "type": "candidate", "payload": {}})
    assert over["ok"] is False and over["error"]["code"] == "forbidden", over


def test_a_client_outside_the_call_cannot_signal_into_it(herald, client):
    ann, ben, eve = rid("ann"), rid("ben"), rid("eve")
    a, a_sid = connected(herald, client, ann, ["websocket"])
    b, b_sid = connected(herald, client, ben, ["websocket"])
    e, _ = connected(herald, client, eve, ["websocket"])
    call_id = call(a, "call_invite", {"to": {"userId": ben}, "media": ["audio"]})["callId"]
    b.wait_for("call_incoming")
    assert call(b, "call_answer", {"callId": call_id, "accept": True})["ok"] is True
    a.wait_for("call_answer")

    # Eve knows the call id and both socket ids: still not a participant.
    for to in (a_sid, b_sid):
        r = call(e, "webrtc_signal", {"callId": call_id, "to": to, "type": "offer", "payload": {"sdp": "x"}})
        assert r["ok"] is False and r["error"]["code"] == "forbidden", r
    r = call(e, "call_end", {"callId": call_id})
    assert r["ok"] is False and r["error"]["code"] == "not_found", r
    # Without a callback, the refusal is an `error` event naming the event; the connection stays up.
    e.sio.emit("webrtc_signal", {"callId": call_id, "to": a_sid, "type": "candidate", "payload": {}})
    err = e.wait_for("error")
    assert (err["event"], err["code"]) == ("webrtc_signal", "forbidden"), err
    assert e.sio.connected

    # The call itself is untouched: a real signal still passes, and it is the first one the callee hears.
    assert call(a, "webrtc_signal", {"callId": call_id, "to": b_sid, "type": "candidate", "payload": {"c": 1}})["ok"]
    heard = b.wait_for("webrtc_signal")
    assert (heard["from"]["socketId"], heard["payload"]) == (a_sid, {"c": 1})
    assert not a.unused("webrtc_signal", settle=0)
    assert not e.unused("call_ended", settle=0) and not e.unused("webrtc_signal", settle=0)
