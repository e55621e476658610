# Study rooms with the official python-socketio client: join by the token's pattern and by a grant,
# room_presence (two tabs are one member), typing relayed to the room's other users and cleared on leave
# and on disconnect, and hostile payloads refused with the connection kept.
import time

from conftest import rid


def join(c, room):
    res = c.sio.call("join_room", {"room": room}, timeout=5)
    assert res["ok"] is True, res
    return res


def wait_typing(c, timeout=5.0):
    return c.wait_for("typing", timeout)


def test_rooms_presence_and_typing(herald, client):
    room = f"study:{rid('1.2.840')}"
    writer, reader, granted = rid("w"), rid("r"), rid("g")
    w1, w2, r, g = client(), client(), client(), client()
    w1.connect(herald.url, token=herald.token(writer, rooms=["study:*"]), transports=["websocket"])
    w2.connect(herald.url, token=herald.token(writer, rooms=["study:*"]), transports=["polling"])
    r.connect(herald.url, token=herald.token(reader, rooms=["*"]), transports=["websocket"])
    g.connect(herald.url, token=herald.token(granted), transports=["websocket"])
    for c in (w1, w2, r, g):
        c.wait_for("connected")

    first = join(w1, room)
    assert first["room"] == room
    assert [m["userId"] for m in first["members"]] == [writer]
    join(w2, room)
    answer = join(r, room)
    by_user = {m["userId"]: m for m in answer["members"]}
    assert by_user[writer]["connections"] == 2, answer
    assert set(by_user) == {writer, reader}

    # No pattern: forbidden until the backend grants the room.
    refused = g.sio.call("join_room", {"room": room}, timeout=5)
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused
    put = herald.api("PUT", f"/api/v1/rooms/{room}/members/{granted}")
    assert put.status_code == 201, put.text
    join(g, room)

    # Everyone in the room hears the members within the window (500 ms by default).
    deadline = time.time() + 5
    while True:
        frame = r.wait_for("room_presence", max(0.1, deadline - time.time()))
        if frame["room"] == room and len(frame["members"]) == 3:
            break
    assert {m["userId"] for m in frame["members"]} == {writer, reader, granted}

    # Typing reaches the other users, not the writer's own other tab.
    assert w1.sio.call("typing", {"room": room, "isTyping": True}, timeout=5) == {"ok": True}
    t = wait_typing(r)
    assert (t["room"], t["userId"], t["isTyping"]) == (room, writer, True)
    assert wait_typing(g)["userId"] == writer
    assert not [x for x in w2.unused("typing") if x["userId"] == writer]

    # A leave clears it on the writer's behalf; so does a disconnect.
    w1.sio.call("leave_room", {"room": room}, timeout=5)
    assert wait_typing(r)["isTyping"] is False
    time.sleep(1.1)  # the throttle: one typing a second per user and room
    w2.sio.call("typing", {"room": room, "isTyping": True}, timeout=5)
    assert wait_typing(r)["isTyping"] is True
    w2.close()
    off = wait_typing(r)
    assert (off["userId"], off["isTyping"]) == (writer, False)


def test_hostile_room_payloads_keep_the_connection(herald, client):
    c = client()
    c.connect(herald.url, token=herald.token(rid("h"), rooms=["study:*"]), transports=["websocket"])
    c.wait_for("connected")
    for event, data in [
        ("join_room", "study:1"),
        ("join_room", {"room": 7}),
        ("join_room", {"room": "a b"}),
        ("join_room", {"room": "z" * 129}),
        ("join_room", {"room": "z" * 100_000}),
        ("typing", {"room": "study:1", "isTyping": "yes"}),
        ("leave_room", {}),
    ]:
        res = c.sio.call(event, data, timeout=5)
        assert res["ok"] is False and res["error"]["code"] == "invalid_payload", (event, res)
    res = c.sio.call("join_room", {"room": "board:1"}, timeout=5)
    assert res["error"]["code"] == "forbidden", res
    res = c.sio.call("typing", {"room": "study:not-joined", "isTyping": True}, timeout=5)
    assert res["error"]["code"] == "forbidden", res
    assert c.sio.connected
    assert c.sio.call("activity", timeout=5) == {"ok": True}
