"""The official Node socket.io-client (4.8.x) against socketio_sync.

Each test runs over WebSocket only, HTTP long-polling only, and the default path
(polling, then upgrade to WebSocket) where that makes sense.  The server side is
``tests/apps/js_app.py``; the clients are driven through ``tests/js/driver.mjs``.
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.jsclient import ClientAckError, NodeClients, as_arraybuffer

pytestmark = [pytest.mark.integration, pytest.mark.js]

APP = "tests.apps.js_app:build"

TRANSPORTS: dict[str, list[str]] = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}


@pytest.fixture(params=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server(live_server: Any) -> Any:
    return live_server(APP)


def connect(
    nc: NodeClients, name: str, url: str, transport: str, *, reconnection: bool = False, **kw: Any
) -> dict[str, Any]:
    """Connect client ``name``; on the "upgrade" path the events/emits of the test then
    race with the upgrade to WebSocket (tests that need it finished call wait_upgraded)."""
    return nc.connect(name, url, transports=TRANSPORTS[transport], reconnection=reconnection, **kw)


def wait_upgraded(nc: NodeClients, name: str) -> None:
    ev = nc.wait_for(name, "upgrade")
    assert ev["transport"] == "websocket"
    assert nc.state(name)["transport"] == "websocket"


def observer(nc: NodeClients, url: str, name: str = "obs") -> str:
    """A WebSocket client in the room "observers" (gets "peer_disconnect" reports)."""
    nc.connect(name, url, transports=["websocket"], reconnection=False)
    assert nc.call(name, "observe") == [True]
    return name


def peer_disconnect(nc: NodeClients, obs: str, sid: str, timeout: float = 5.0) -> dict[str, Any]:
    ev = nc.wait_for(obs, "message", lambda e: e["args"][0]["id"] == sid, timeout=timeout, name="peer_disconnect")
    return ev


# ------------------------------------------------------------------ connecting

def test_connect(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    reply = connect(nc, "c1", server.url, transport)
    sid = reply["sid"]
    assert isinstance(sid, str) and sid
    assert reply["state"]["connected"] is True
    assert reply["state"]["engineId"]
    # The connection handler's first emit reaches a client that listens from the start.
    assert nc.wait_for_event("c1", "welcome") == [{"id": sid, "nsp": "/", "auth": {}}]
    assert nc.wait_for("c1", "connect")["sid"] == sid
    opened = nc.wait_for("c1", "manager_open")
    assert opened["transport"] == TRANSPORTS[transport][0]  # the handshake transport
    assert opened["upgrades"] == (["websocket"] if transport == "upgrade" else [])
    assert (opened["pingInterval"], opened["pingTimeout"], opened["maxPayload"]) == (25000, 20000, 1_000_000)
    if transport == "upgrade":
        wait_upgraded(nc, "c1")
    else:
        assert nc.state("c1")["transport"] == TRANSPORTS[transport][0]
    # Still usable after the upgrade.
    assert nc.call("c1", "echo", "after connect") == ["after connect"]
    assert nc.events("c1", "connect_error") == []
    assert nc.events("c1", "disconnect") == []


def test_connect_reply_precedes_first_emit(node_clients: NodeClients, server: Any, transport: str) -> None:
    """The CONNECT reply (40{"sid":...}) arrives before anything the connection handler emits.

    Traced engine "message" packets carry the Socket.IO packet without the engine type
    digit: "0{...}" is CONNECT, "2[...]" is EVENT.
    """
    nc = node_clients
    reply = connect(nc, "c1", server.url, transport, trace=True)
    nc.wait_for_event("c1", "welcome")
    nc.sync()
    incoming = [
        e["data"] for e in nc.events("c1", "packet")
        if e["dir"] == "in" and e["type"] == "message" and isinstance(e["data"], str)
    ]
    assert incoming, "no Socket.IO packets traced"
    assert incoming[0].startswith("0{"), f"first Socket.IO packet is not CONNECT: {incoming[:3]}"
    assert json.loads(incoming[0][1:])["sid"] == reply["sid"]
    welcome = [i for i, d in enumerate(incoming) if d.startswith('2["welcome"')]
    assert welcome and welcome[0] > 0, incoming[:5]


def test_connect_to_namespace_with_trace(node_clients: NodeClients, server: Any, transport: str) -> None:
    """Same ordering for a non-root namespace: 40/chat,{"sid"} before 42/chat,["chat_welcome",...]."""
    nc = node_clients
    reply = connect(nc, "c1", server.url + "/chat", transport, trace=True, auth={"name": "zoe"})
    assert nc.wait_for_event("c1", "chat_welcome") == [{"id": reply["sid"], "nsp": "/chat", "auth": {"name": "zoe"}}]
    nc.sync()
    incoming = [
        e["data"] for e in nc.events("c1", "packet")
        if e["dir"] == "in" and e["type"] == "message" and isinstance(e["data"], str)
    ]
    assert incoming[0].startswith("0/chat,"), incoming[:3]
    assert json.loads(incoming[0][len("0/chat,"):])["sid"] == reply["sid"]
    assert any(d.startswith('2/chat,["chat_welcome"') for d in incoming[1:]), incoming[:5]


def test_unknown_namespace(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    reply = connect(nc, "c1", server.url + "/nope", transport, expect_error=True)
    assert reply["error"]["message"] == "Invalid namespace"
    assert nc.state("c1")["connected"] is False


# ------------------------------------------------------------------ events

def test_emit_both_ways(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    args = [1, "two", {"three": [3, 3.5]}, None, True, "héllo ✓ 😀 \u2028 \x1e", [], {}]
    nc.emit("c1", "echo_event", "pong_evt", *args)
    assert nc.wait_for_event("c1", "pong_evt") == args
    big = "x" * 200_000 + "é"
    nc.emit("c1", "echo_event", "big", big)
    assert nc.wait_for_event("c1", "big") == [big]
    # No arguments at all.
    nc.emit("c1", "echo_event", "empty")
    assert nc.wait_for_event("c1", "empty") == []


def test_events_handled_in_order(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    # A burst in one tick (batched into few HTTP requests on polling) then single emits.
    nc.emit_many("c1", "seq", [[i] for i in range(150)])
    for i in range(150, 200):
        nc.emit("c1", "seq", i)
    assert nc.call("c1", "get_seq") == [list(range(200))]
    nc.wait_for_event("c1", "seq_echo", predicate=lambda a: a == [199])
    assert nc.messages("c1", "seq_echo") == [[i] for i in range(200)]


# ------------------------------------------------------------------ acknowledgements

def test_ack_from_handler_return_value(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    assert nc.call("c1", "echo", 1, "a", {"b": [2]}) == [1, "a", {"b": [2]}]
    assert nc.call("c1", "echo") == []
    assert nc.call("c1", "return_one") == [{"single": True}]
    assert nc.call("c1", "return_none") == []
    # NO_ACK: the handler runs, but no acknowledgement comes back.
    with pytest.raises(ClientAckError, match="timed out"):
        nc.call("c1", "no_ack", "x", timeout_ms=400)
    assert nc.wait_for_event("c1", "no_ack_seen") == ["x"]
    # A client-side timeout that is long enough does get the ack.
    assert nc.call("c1", "echo", "in time", timeout_ms=3000) == ["in time"]


def test_server_call_answered(node_clients: NodeClients, server: Any, transport: str) -> None:
    """Blocking ``socket.call``: None for 0 args, the value for 1, a tuple for several."""
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    nc.ack_with("c1", "q1", 42)
    nc.ack_with("c1", "q0")
    nc.ack_with("c1", "q2", "x", {"deep": [b"\x01\x02"]})
    assert nc.call("c1", "ask", "q1", [1, "two"], 3.0) == [{"type": "int", "value": 42}]
    assert nc.wait_for_event("c1", "q1") == [1, "two"]
    assert nc.wait_for_event("c1", "ask_result") == ["q1", {"type": "int", "value": 42}]
    assert nc.call("c1", "ask", "q0", [], 3.0) == [{"type": "NoneType", "value": None}]
    assert nc.call("c1", "ask", "q2", [], 3.0) == [
        {"type": "tuple", "value": ["x", {"deep": [{"bytes": "0102"}]}]}
    ]


def test_server_call_timeout(node_clients: NodeClients, server: Any, transport: str) -> None:
    """A client that never answers: the server's ``socket.call`` raises AckTimeout."""
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    started = time.monotonic()
    assert nc.call("c1", "ask", "unanswered", ["?"], 0.4) == [{"error": "AckTimeout"}]
    elapsed = time.monotonic() - started
    assert 0.35 <= elapsed < 3.0, elapsed
    assert nc.wait_for_event("c1", "ask_result") == ["unanswered", {"error": "AckTimeout"}]
    asked = nc.wait_for_message("c1", "unanswered")
    assert asked["args"] == ["?"] and isinstance(asked.get("ackId"), int)
    # A late answer is ignored and does not break the connection.
    nc.ack("c1", asked["ackId"], "too late")
    assert nc.call("c1", "echo", "still here") == ["still here"]
    assert nc.events("c1", "disconnect") == []


def test_server_emit_with_callback(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    nc.ack_with("c1", "cbq", "answer", {"n": 1}, b"\xff")
    nc.emit("c1", "ask_cb", "cbq", ["hi", 2])
    assert nc.wait_for_event("c1", "cbq") == ["hi", 2]
    assert nc.wait_for_event("c1", "cb_result") == ["cbq", ["answer", {"n": 1}, {"bytes": "ff"}]]
    # An ack with no arguments.
    nc.ack_with("c1", "cb0")
    nc.emit("c1", "ask_cb", "cb0", [])
    assert nc.wait_for_event("c1", "cb_result") == ["cb0", []]


def test_blocking_call_does_not_block_other_clients(node_clients: NodeClients, server: Any, transport: str) -> None:
    """While a handler blocks in ``socket.call``, other connections' events, server
    emits to the blocked client, and the awaited ack itself keep flowing."""
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    connect(nc, "c2", server.url, transport)
    pending = nc.emit_async("c1", "ask", "held", ["wait"], 10.0)
    held = nc.wait_for_message("c1", "held")  # the server handler is now blocked in call()
    assert held["args"] == ["wait"]
    assert nc.call("c2", "echo", "other") == ["other"]
    assert nc.call("c2", "broadcast", "hello_all", {"from": "c2"}) == [True]
    assert nc.wait_for_event("c1", "hello_all") == [{"from": "c2"}]
    assert nc.call("c2", "io_emit", "news", b"\x01") == [True]
    assert nc.wait_for_event("c1", "news") == [b"\x01"]
    assert not pending.done(), "the blocked handler answered before the client did"
    nc.ack("c1", held["ackId"], "released")
    assert nc.result(pending) == [{"type": "str", "value": "released"}]
    assert nc.wait_for_event("c1", "ask_result") == ["held", {"type": "str", "value": "released"}]


@pytest.mark.parametrize("where", ["same_namespace", "other_namespace"])
def test_blocking_call_holds_only_its_own_socket(
    node_clients: NodeClients, server: Any, transport: str, where: str
) -> None:
    """A handler waiting in ``socket.call`` holds up the later events of its own socket
    (socketio_sync handles one socket's events one after another, in order: documented),
    while its acks and the sockets of other namespaces on the same connection go on."""
    nc = node_clients
    connect(nc, "c1", server.url, transport, manager="m")
    if where == "other_namespace":
        connect(nc, "chat", server.url + "/chat", transport, manager="m")
    pending = nc.emit_async("c1", "ask", "held", ["wait"], 10.0)
    held = nc.wait_for_message("c1", "held")
    if where == "same_namespace":
        later = nc.emit_async("c1", "echo", "during")
        # the next event of the same socket runs only once the blocked handler returns
        nc.ack("c1", held["ackId"], "released")
        assert nc.result(pending) == [{"type": "str", "value": "released"}]
        assert nc.result(later) == ["during"]
        assert pending.done()
    else:
        assert nc.call("chat", "echo", "during", timeout=3) == ["/chat", "during"]
        assert not pending.done()
        nc.ack("c1", held["ackId"], "released")
        assert nc.result(pending) == [{"type": "str", "value": "released"}]


# ------------------------------------------------------------------ binary

BIN_ARGS = [
    b"\x00\x01\xff",
    {"nested": [b"", {"deep": bytes(range(256))}], "s": "text"},
    [b"a", [b"b", {"c": b"c"}]],
    "no binary",
]
BIN_DESCRIBED = [
    {"bytes": "0001ff"},
    {"nested": [{"bytes": ""}, {"deep": {"bytes": bytes(range(256)).hex()}}], "s": "text"},
    [{"bytes": "61"}, [{"bytes": "62"}, {"c": {"bytes": "63"}}]],
    "no binary",
]


def test_binary_client_to_server(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    assert nc.call("c1", "inspect", *BIN_ARGS) == [BIN_DESCRIBED]
    # ArrayBuffer instead of Buffer.
    assert nc.call("c1", "inspect", as_arraybuffer(b"\x10\x20"), {"x": as_arraybuffer(b"")}) == [
        [{"bytes": "1020"}, {"x": {"bytes": ""}}]
    ]
    big = bytes(range(256)) * 400  # 100 KiB
    assert nc.call("c1", "inspect", big) == [[{"bytes": big.hex()}]]
    # Binary in an ack (the handler returns what it got).
    assert nc.call("c1", "echo", *BIN_ARGS) == BIN_ARGS


def test_binary_server_to_client(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    connect(nc, "c1", server.url, transport)
    nc.emit("c1", "send_binary", 1000)
    assert nc.wait_for_event("c1", "binary") == [
        b"\x00\x01\x02\xff",
        {"nested": {"deep": [b"", b"abc", {"x": bytes(range(256))}]}, "text": "plain"},
        [b"\xfe" * 1000],
    ]
    nc.emit("c1", "send_binary", 100_000)
    assert nc.wait_for_event("c1", "binary")[2] == [b"\xfe" * 100_000]
    # Round trip through a server emit.
    nc.emit("c1", "echo_event", "bin_back", *BIN_ARGS)
    assert nc.wait_for_event("c1", "bin_back") == BIN_ARGS


# ------------------------------------------------------------------ namespaces, rooms

def test_multiplexed_namespaces(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    obs = observer(nc, server.url)
    root = connect(nc, "root", server.url, transport, manager="m", auth={"name": "r"})
    chat = connect(nc, "chat", server.url + "/chat", transport, manager="m", auth={"name": "c"})
    admin = connect(nc, "admin", server.url + "/admin", transport, manager="m", auth={"role": "admin"})
    # (socket.io-client keeps one socket per namespace and Manager: use a second one.)
    refused = connect(nc, "notadmin", server.url + "/admin", transport, manager="m2",
                      auth={"role": "user"}, expect_error=True)
    assert refused["error"]["message"] == "admins only"
    assert refused["error"]["data"] == {"role": "user"}
    engine_ids = {nc.state(c)["engineId"] for c in ("root", "chat", "admin")}
    assert len(engine_ids) == 1 and None not in engine_ids, engine_ids
    assert len({root["sid"], chat["sid"], admin["sid"]}) == 3
    assert nc.state("notadmin")["engineId"] not in engine_ids
    assert nc.wait_for_event("chat", "chat_welcome") == [{"id": chat["sid"], "nsp": "/chat", "auth": {"name": "c"}}]
    assert nc.wait_for_event("root", "welcome")[0]["id"] == root["sid"]
    assert nc.call("root", "echo", 1) == [1]
    assert nc.call("chat", "echo", 1) == ["/chat", 1]
    assert nc.call("admin", "echo", b"\x01") == ["/admin", b"\x01"]
    # An event in /chat stays in /chat.
    nc.emit("chat", "say", "hi")
    assert nc.wait_for_event("chat", "said") == [{"from": "c", "text": "hi"}]
    # Leaving one namespace keeps the others (and the connection) alive.
    nc.disconnect("chat")
    ev = peer_disconnect(nc, obs, chat["sid"])
    assert ev["args"][0] == {"id": chat["sid"], "name": "c", "nsp": "/chat", "reason": "client namespace disconnect"}
    assert nc.wait_for("chat", "disconnect")["reason"] == "io client disconnect"
    assert nc.call("root", "echo", 2) == [2]
    assert nc.call("admin", "echo", 3) == ["/admin", 3]
    assert nc.state("root")["engineId"] in engine_ids
    if transport == "upgrade":
        assert nc.wait_for("root", "upgrade")["transport"] == "websocket"
    assert nc.messages("root", "said") == []


def test_rooms_and_broadcast(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    ids = {}
    for name in ("a", "b", "c"):
        ids[name] = connect(nc, name, server.url, transport)["sid"]
    assert nc.call("a", "join", "r1") == [["r1"]]
    assert nc.call("b", "join", "r1") == [["r1"]]
    assert nc.call("b", "join", "r2") == [["r1", "r2"]]

    def settle(marker: str) -> None:
        # io.emit reaches everybody after anything emitted before it.
        assert nc.call("a", "io_emit", "marker", marker) == [True]
        for name in ("a", "b", "c"):
            nc.wait_for_event(name, "marker", predicate=lambda args: args == [marker])

    def got(name: str, event: str) -> list[Any]:
        return [args[0] for args in nc.messages(name, event)]

    # socket.to(room): room members except the sender.
    assert nc.call("a", "to_room", "r1", "n1", "from a") == [True]
    assert nc.call("c", "to_room", "r1", "n2", "from c") == [True]
    settle("m1")
    assert got("a", "n1") == [] and got("b", "n1") == ["from a"] and got("c", "n1") == []
    assert got("a", "n2") == ["from c"] and got("b", "n2") == ["from c"] and got("c", "n2") == []

    # io.to(r1).except_(r2), io.to(r1).to(r2) (union).
    assert nc.call("c", "io_to", ["r1"], ["r2"], "n3", 3) == [True]
    assert nc.call("c", "io_to", ["r1", "r2"], [], "n4", 4) == [True]
    assert nc.call("c", "io_to", ["r2"], [], "n5", b"\x05") == [True]
    settle("m2")
    assert (got("a", "n3"), got("b", "n3"), got("c", "n3")) == ([3], [], [])
    assert (got("a", "n4"), got("b", "n4"), got("c", "n4")) == ([4], [4], [])
    assert (got("a", "n5"), got("b", "n5"), got("c", "n5")) == ([], [b"\x05"], [])

    # socket.broadcast: everybody but the sender.
    assert nc.call("b", "broadcast", "n6", "bc") == [True]
    settle("m3")
    assert (got("a", "n6"), got("b", "n6"), got("c", "n6")) == (["bc"], [], ["bc"])

    # Leaving a room.
    assert nc.call("b", "leave", "r1") == [["r2"]]
    assert nc.call("c", "to_room", "r1", "n7", 7) == [True]
    settle("m4")
    assert (got("a", "n7"), got("b", "n7"), got("c", "n7")) == ([7], [], [])

    # A disconnected socket leaves all its rooms.
    a_id = nc.state("a")["sid"]
    assert a_id in nc.call("c", "room_members", "r1")[0]
    nc.disconnect("a")
    nc.wait_for("a", "disconnect")
    deadline = time.monotonic() + 5
    while a_id in nc.call("c", "room_members", "r1")[0]:  # the server sees the DISCONNECT
        assert time.monotonic() < deadline, "a is still in r1 after its disconnect"
        time.sleep(0.05)
    assert a_id not in nc.call("c", "room_members", a_id)[0]
    assert nc.call("c", "io_to", ["r1"], [], "n8", 8) == [True]
    assert nc.call("b", "io_emit", "marker", "m5") == [True]
    for name in ("b", "c"):
        nc.wait_for_event(name, "marker", predicate=lambda args: args == ["m5"])
    assert (got("a", "n8"), got("b", "n8"), got("c", "n8")) == ([], [], [])


# ------------------------------------------------------------------ middleware, auth

def test_middleware_refusal(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    reply = connect(nc, "bad", server.url, transport, auth={"token": "bad"}, expect_error=True)
    assert reply["error"]["message"] == "not authorized"
    assert reply["error"]["data"] == {"code": 401, "hint": "bad token"}
    assert nc.state("bad")["connected"] is False
    assert nc.messages("bad") == []  # the connection handler did not run
    reply = connect(nc, "bad2", server.url, transport, auth={"refuse": "handler"}, expect_error=True)
    assert reply["error"]["message"] == "refused by handler"
    assert reply["error"]["data"] == ["a", 1]
    # The server is fine for well-behaved clients.
    good = connect(nc, "good", server.url, transport, auth={"token": "ok"})
    assert good["connected"] is True
    assert nc.call("good", "echo", "ok") == ["ok"]


def test_auth_and_query_reach_handshake(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    auth = {"token": "t1", "name": "alice", "nested": {"list": [1, 2, {"x": None}], "t": True}}
    reply = connect(nc, "c1", server.url + "/?room=lobby&n=1", transport, auth=auth, query={"extra": "q"})
    assert nc.wait_for_event("c1", "welcome") == [{"id": reply["sid"], "nsp": "/", "auth": auth}]
    [hs] = nc.call("c1", "handshake")
    assert hs["auth"] == auth
    assert hs["id"] == reply["sid"] and hs["nsp"] == "/"
    assert hs["query"]["room"] == "lobby" and hs["query"]["n"] == "1" and hs["query"]["extra"] == "q"
    assert hs["query"]["EIO"] == "4"
    assert hs["query"]["transport"] == TRANSPORTS[transport][0]
    assert hs["address"] == "127.0.0.1"


# ------------------------------------------------------------------ disconnection

def test_client_disconnect_reason(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    obs = observer(nc, server.url)
    sid = connect(nc, "c1", server.url, transport, auth={"name": "leaver"})["sid"]
    assert nc.wait_for("c1", "connect")["sid"] == sid
    nc.disconnect("c1")
    ev = peer_disconnect(nc, obs, sid)
    assert ev["args"][0] == {"id": sid, "name": "leaver", "nsp": "/", "reason": "client namespace disconnect"}
    assert nc.wait_for("c1", "disconnect")["reason"] == "io client disconnect"
    # Reconnecting the same client object gives a new session.
    nc.open("c1")
    new = nc.wait_for("c1", "connect")
    assert new["sid"] != sid
    assert nc.call("c1", "echo", "back") == ["back"]


def test_server_disconnect_reason(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    obs = observer(nc, server.url)
    # reconnection=True: a server-side disconnect must still not be retried.
    sid = connect(nc, "c1", server.url, transport, reconnection=True, auth={"name": "kicked"})["sid"]
    nc.emit("c1", "server_disconnect")
    assert nc.wait_for("c1", "disconnect")["reason"] == "io server disconnect"
    ev = peer_disconnect(nc, obs, sid)
    assert ev["args"][0] == {"id": sid, "name": "kicked", "nsp": "/", "reason": "server namespace disconnect"}
    state = nc.state("c1")
    assert state["connected"] is False and state["active"] is False


def test_server_disconnect_close_whole_connection(node_clients: NodeClients, server: Any, transport: str) -> None:
    """``socket.disconnect(close=True)`` ends every namespace of the connection."""
    nc = node_clients
    obs = observer(nc, server.url)
    root = connect(nc, "root", server.url, transport, manager="m", reconnection=True, auth={"name": "r"})
    chat = connect(nc, "chat", server.url + "/chat", transport, manager="m", reconnection=True, auth={"name": "c"})
    nc.emit("root", "server_disconnect", True)
    # Every namespace gets a DISCONNECT packet (not just a closed transport, after which
    # the client would reconnect).
    assert nc.wait_for("root", "disconnect")["reason"] == "io server disconnect"
    assert nc.wait_for("chat", "disconnect")["reason"] == "io server disconnect"
    for name, sock in (("r", root), ("c", chat)):
        ev = peer_disconnect(nc, obs, sock["sid"])
        assert ev["args"][0]["reason"] == "server namespace disconnect", (name, ev)
    # With no socket left, the client closes its Manager: nothing reconnects.
    nc.wait_for("root", "manager_close")
    state = nc.state("root")
    assert state["active"] is False and state["managerState"] == "closed"
    assert nc.state("chat")["active"] is False


def test_transport_close_reason(node_clients: NodeClients, server: Any, transport: str) -> None:
    """The client closes its Engine.IO connection: the server reports "transport close"."""
    nc = node_clients
    obs = observer(nc, server.url)
    sid = connect(nc, "c1", server.url, transport, auth={"name": "gone"})["sid"]
    if transport == "upgrade":
        wait_upgraded(nc, "c1")
    nc.close_engine("c1")
    ev = peer_disconnect(nc, obs, sid)
    assert ev["args"][0] == {"id": sid, "name": "gone", "nsp": "/", "reason": "transport close"}
    assert nc.wait_for("c1", "disconnect")["reason"] == "forced close"


def test_transport_killed_reason(node_clients: NodeClients, server: Any) -> None:
    """The TCP connection under a WebSocket disappears without a close frame."""
    nc = node_clients
    obs = observer(nc, server.url)
    sid = connect(nc, "c1", server.url, "websocket", auth={"name": "killed"})["sid"]
    nc.kill_transport("c1")
    ev = peer_disconnect(nc, obs, sid)
    assert ev["args"][0] == {"id": sid, "name": "killed", "nsp": "/", "reason": "transport close"}
    assert nc.wait_for("c1", "disconnect")["reason"] == "transport close"


def test_ping_timeout_detected(node_clients: NodeClients, live_server: Any, transport: str) -> None:
    """A client that stops answering pings is dropped within ping_interval + ping_timeout."""
    interval, timeout = 0.3, 0.2
    srv = live_server(APP, ping_interval=interval, ping_timeout=timeout)
    nc = node_clients
    obs = observer(nc, srv.url)
    sid = connect(nc, "c1", srv.url, transport, trace=True, auth={"name": "frozen"})["sid"]
    if transport == "upgrade":
        wait_upgraded(nc, "c1")
    # The handshake advertises the configured values (in ms), and a client that answers
    # the server's pings stays connected.
    opened = nc.wait_for("c1", "manager_open")
    assert (opened["pingInterval"], opened["pingTimeout"]) == (300, 200)
    for _ in range(3):
        nc.wait_for("c1", "packet", lambda e: e["dir"] == "in" and e["type"] == "ping", timeout=3)
    assert nc.state("c1")["connected"] is True
    nc.drop_pongs("c1")
    frozen_at = time.monotonic()
    ev = peer_disconnect(nc, obs, sid, timeout=5)
    detected_after = ev["_t"] - frozen_at
    assert ev["args"][0] == {"id": sid, "name": "frozen", "nsp": "/", "reason": "ping timeout"}
    dropped = nc.wait_for("c1", "pong_dropped")
    assert ev["_t"] - dropped["_t"] >= timeout * 0.5, "server gave up before ping_timeout"
    assert detected_after <= interval + timeout + 0.6, f"ping timeout detected after {detected_after:.2f}s"
    # The healthy observer has not been disconnected meanwhile.
    assert nc.state(obs)["connected"] is True
    assert nc.events(obs, "disconnect") == []


def test_reconnect_after_server_restart(node_clients: NodeClients, server: Any, transport: str) -> None:
    nc = node_clients
    first = connect(
        nc, "c1", server.url, transport, reconnection=True,
        reconnectionDelay=100, reconnectionDelayMax=300, randomizationFactor=0,
    )
    assert nc.wait_for_event("c1", "welcome")[0]["id"] == first["sid"]
    assert nc.wait_for("c1", "connect")["sid"] == first["sid"]
    server.restart(delay=0.5)
    gone = nc.wait_for("c1", "disconnect", timeout=10)
    assert gone["reason"] in ("transport close", "transport error", "ping timeout"), gone
    assert nc.wait_for("c1", "reconnect_attempt", timeout=10)["attempt"] >= 1
    nc.wait_for("c1", "reconnect", timeout=10)
    again = nc.wait_for("c1", "connect", timeout=10)
    assert again["sid"] != first["sid"]
    assert nc.wait_for_event("c1", "welcome")[0]["id"] == again["sid"]
    assert nc.call("c1", "echo", "after restart") == ["after restart"]
    assert nc.state("c1")["connected"] is True
