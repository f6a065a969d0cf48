"""The Node server's Socket.IO-level API, checked with the official Node client.

Dynamic namespaces (``io.of(pattern)``, ``io.of(fn)``, parent broadcasts, cleanup of
empty children), the ``volatile``/``compress``/``timeout`` flags, per-packet middlewares
(``socket.use``), ``on_any_outgoing``, ``once``, class-based namespaces and the msgpack
parser (``socket.io-msgpack-parser`` from npm on the client). Server:
``tests/apps/nodeapi_app.py``. One server and one Node driver per module (distinct client
names per test) keep this file fast.
"""
from __future__ import annotations

import datetime
import time
from typing import Any, Iterator

import pytest

from tests.conftest import LiveServer, require_path
from tests.jsclient import JS_DIR, NodeClients, require_node_clients

pytestmark = [pytest.mark.integration, pytest.mark.js]

APP = "tests.apps.nodeapi_app:build"


@pytest.fixture(scope="module")
def nc() -> Iterator[NodeClients]:
    node = require_node_clients()
    require_path(JS_DIR / "node_modules" / "socket.io-msgpack-parser",
                 "socket.io-msgpack-parser is missing: run npm ci in tests/js")
    clients = NodeClients(node).start()
    try:
        yield clients
    finally:
        clients.stop()
    assert not clients.driver_errors, clients.driver_errors


def _server(**opts: Any) -> Iterator[LiveServer]:
    srv = LiveServer(APP, **opts)
    try:
        yield srv
    finally:
        alive = srv.alive()
        srv.stop()
        assert alive, "the test server died"


@pytest.fixture(scope="module")
def srv() -> Iterator[LiveServer]:
    yield from _server()


@pytest.fixture(scope="module")
def cleanup_srv() -> Iterator[LiveServer]:
    yield from _server(cleanup=True)


@pytest.fixture(scope="module")
def msgpack_srv() -> Iterator[LiveServer]:
    yield from _server(parser="msgpack")


WS = ["websocket"]
POLL = ["polling"]


def report(nc: NodeClients, client: str) -> dict[str, Any]:
    return nc.call(client, "report")[0]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ dynamic namespaces

def test_dynamic_namespace_by_pattern(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("dn_a", srv.url + "/room-1", transports=WS, reconnection=False)
    nc.connect("dn_b", srv.url + "/room-22", transports=POLL, reconnection=False)
    assert nc.wait_for_event("dn_a", "hello") == ["/room-1"]  # the parent's connection handler
    assert nc.wait_for_event("dn_b", "hello") == ["/room-22"]
    # the parent's middleware applies to its children
    refused = nc.connect("dn_ban", srv.url + "/room-3", transports=WS, reconnection=False,
                         auth={"ban": True}, expect_error=True)
    assert refused["error"]["message"] == "banned"
    # a name no parent accepts
    bad = nc.connect("dn_bad", srv.url + "/room-x", transports=WS, reconnection=False, expect_error=True)
    assert bad["error"]["message"] == "Invalid namespace"

    # parent.emit reaches every child; parent.to(room) only the sockets in the room
    nc.connect("dn_main", srv.url, transports=WS, reconnection=False)
    assert nc.call("dn_b", "join", "vip") == [True]
    nc.emit("dn_main", "rooms_emit", None, "tick", 1)
    assert nc.wait_for_event("dn_a", "tick") == [1]
    assert nc.wait_for_event("dn_b", "tick") == [1]
    nc.emit("dn_main", "rooms_emit", "vip", "tick", 2)
    assert nc.wait_for_event("dn_b", "tick") == [2]
    nc.emit("dn_main", "rooms_emit", None, "tick", 3)
    assert nc.wait_for_event("dn_a", "tick") == [3]  # dn_a never got 2: it came after it
    state = report(nc, "dn_main")
    assert {"/room-1", "/room-22", "/room-3"} <= set(state["namespaces"])
    assert "/room-x" not in state["namespaces"]
    assert {"/room-1", "/room-22"} <= set(state["created"])  # io.on("new_namespace")
    for name in ("dn_a", "dn_b", "dn_ban", "dn_bad", "dn_main"):
        nc.remove(name)


def test_dynamic_namespace_by_function(nc: NodeClients, srv: LiveServer) -> None:
    ok = nc.connect("df_ok", srv.url + "/user-ann", transports=WS, reconnection=False, auth={"token": "ok"})
    assert ok["connected"]
    assert nc.wait_for_event("df_ok", "hello") == ["/user-ann"]
    no = nc.connect("df_no", srv.url + "/user-bob", transports=WS, reconnection=False,
                    auth={"token": "nope"}, expect_error=True)
    assert no["error"]["message"] == "Invalid namespace"
    nc.remove("df_ok")
    nc.remove("df_no")


def test_empty_child_namespaces_are_removed(nc: NodeClients, cleanup_srv: LiveServer) -> None:
    url = cleanup_srv.url
    nc.connect("cl_main", url, transports=WS, reconnection=False)
    nc.connect("cl_a", url + "/room-7", transports=WS, reconnection=False, manager="cl_m")
    nc.connect("cl_b", url + "/room-8", transports=WS, reconnection=False, manager="cl_m")
    assert {"/room-7", "/room-8"} <= set(report(nc, "cl_main")["namespaces"])
    nc.disconnect("cl_a")
    # the DISCONNECT travels on another connection than the report: wait for it to land
    deadline = time.monotonic() + 5
    while "/room-7" in (state := report(nc, "cl_main"))["namespaces"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "/room-7" not in state["namespaces"] and "/room-8" in state["namespaces"]
    assert state["children"]["/_0"] == ["/room-8"]
    # connecting again creates a new child
    nc.open("cl_a")
    nc.wait_for("cl_a", "connect")
    assert "/room-7" in report(nc, "cl_main")["namespaces"]
    for name in ("cl_main", "cl_a", "cl_b"):
        nc.remove(name)


# ------------------------------------------------------------------ broadcast flags

def test_volatile_is_dropped_when_polling_transport_is_busy(nc: NodeClients, srv: LiveServer) -> None:
    for name, transports in (("vo_ws", WS), ("vo_poll", POLL)):
        nc.connect(name, srv.url, transports=transports, reconnection=False)
        for broadcast in (False, True):
            nc.emit(name, "volatile_burst", 5, broadcast)
            nc.wait_for_event(name, "burst_done")
        got = [args[0] for args in nc.messages(name, "v")]
        if name == "vo_ws":
            assert got == [0, 1, 2, 3, 4] * 2  # a WebSocket with no backlog is always ready
        else:
            # the first packet of a burst takes the waiting GET; the others find the
            # transport busy and are dropped (never queued)
            assert len(got) <= 2 and set(got) <= {0}
        # once the client polls again, a volatile packet goes through
        nc.emit(name, "volatile_later")
        assert nc.wait_for_event(name, "v_late") == [1]
        nc.wait_for_event(name, "late_done")
        nc.remove(name)


def test_compress_false_still_delivers(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("cp_a", srv.url, transports=WS, reconnection=False)
    nc.connect("cp_b", srv.url, transports=POLL, reconnection=False)
    nc.emit("cp_a", "compressed")
    assert nc.wait_for_event("cp_a", "nc") == ["socket"]
    assert nc.wait_for_event("cp_a", "nc") == ["room"]
    assert nc.wait_for_event("cp_b", "nc_peer") == ["broadcast"]
    nc.remove("cp_a")
    nc.remove("cp_b")


def test_socket_timeout_emit(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("to_a", srv.url, transports=WS, reconnection=False)
    nc.ack_with("to_a", "question", "pong!", 7)
    nc.emit("to_a", "ask_me", 2.0)
    assert nc.wait_for_event("to_a", "ask_result") == [None, ["pong!", 7]]
    assert nc.call("to_a", "ask_me_blocking", 2.0) == [["ok", ["pong!", 7]]]
    nc.request("ackWith", client="to_a", name="question", args=None)  # stop answering
    nc.emit("to_a", "ask_me", 0.3)
    assert nc.wait_for_event("to_a", "ask_result") == ["AckTimeout", []]
    assert nc.call("to_a", "ask_me_blocking", 0.3) == [["timeout", None]]
    nc.remove("to_a")


def test_broadcast_timeout_collects_acks(nc: NodeClients, srv: LiveServer) -> None:
    for name, vote in (("bt_a", "x"), ("bt_b", "y"), ("bt_c", None)):
        nc.connect(name, srv.url, transports=WS, reconnection=False)
        assert nc.call(name, "join", "voters") == [True]
        if vote is not None:
            nc.ack_with(name, "poll", vote)
    # a room where everybody answers
    assert nc.call("bt_a", "join", "fast") == [True]
    assert nc.call("bt_b", "join", "fast") == [True]
    nc.emit("bt_a", "ask_all", "fast", 2.0, "io")
    assert nc.wait_for_event("bt_a", "all_result") == [None, ["x", "y"]]
    # bt_c never answers: the callback gets the timeout and what came
    nc.emit("bt_a", "ask_all", "voters", 1.0, "io")
    assert nc.wait_for_event("bt_a", "all_result", timeout=5) == ["AckTimeout", ["x", "y"]]
    # socket.broadcast leaves the sender out
    nc.emit("bt_c", "ask_all", None, 2.0, "broadcast")
    result = nc.wait_for_event("bt_c", "all_result")
    assert result[0] is None and {"x", "y"} <= set(result[1])
    # a namespace's own operator: every socket of "/" (bt_c is silent)
    nc.emit("bt_a", "ask_all", None, 1.0, "nsp")
    result = nc.wait_for_event("bt_a", "all_result", timeout=5)
    assert result[0] == "AckTimeout" and {"x", "y"} <= set(result[1])
    assert nc.call("bt_a", "ask_all_blocking", "fast", 2.0) == [["ok", ["x", "y"]]]
    assert nc.call("bt_a", "ask_all_blocking", "voters", 1.0) == [["timeout", ["x", "y"]]]
    for name in ("bt_a", "bt_b", "bt_c"):
        nc.remove(name)


# ------------------------------------------------------------------ middlewares, listeners

def test_per_packet_middleware(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("mw", srv.url, transports=WS, reconnection=False)
    # a middleware may change the packet
    assert nc.call("mw", "upper", "abc", 1) == [["ABC", "1"]]
    # raising rejects: no handler, no ack, the socket's "error" handlers get it
    fut = nc.emit_async("mw", "forbidden")
    assert nc.wait_for_event("mw", "rejected") == ["forbidden event"]
    # the Node form: next(err), here from another greenlet later
    nc.emit("mw", "gated")
    assert nc.wait_for_event("mw", "rejected") == ["gate closed"]
    state = report(nc, "mw")
    assert state["rejected"] == ["ValueError: forbidden event", "PermissionError: gate closed"]
    assert not fut.done()
    nc.remove("mw")


def test_on_any_outgoing(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("ao", srv.url, transports=WS, reconnection=False)
    assert nc.call("ao", "track_outgoing", True) == [2]
    nc.emit("ao", "say", "hi", 2)
    nc.wait_for_event("ao", "said")
    nc.wait_for_event("ao", "said_room")
    assert nc.call("ao", "track_outgoing", False) == [0]
    nc.emit("ao", "say", "quiet")
    nc.wait_for_event("ao", "said_room")
    # emits and broadcasts both seen (the prepended handler first); nothing after off_any_outgoing
    assert report(nc, "ao")["outgoing"] == [
        ["*said"], ["said", "hi", 2], ["*said_room"], ["said_room", "hi", 2]]
    nc.remove("ao")


def test_namespace_once(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("on_1", srv.url + "/once", transports=WS, reconnection=False)
    nc.wait_for_event("on_1", "every")
    nc.connect("on_2", srv.url + "/once", transports=WS, reconnection=False)
    nc.wait_for_event("on_2", "every")
    nc.sync()
    assert nc.messages("on_1", "first") == [[]]
    assert nc.messages("on_2", "first") == []
    nc.remove("on_1")
    nc.remove("on_2")


def test_class_namespace(nc: NodeClients, srv: LiveServer) -> None:
    nc.connect("cn_obs", srv.url, transports=WS, reconnection=False)
    assert nc.call("cn_obs", "observe") == [True]
    a = nc.connect("cn_a", srv.url + "/cls", transports=WS, reconnection=False)
    nc.connect("cn_b", srv.url + "/cls", transports=POLL, reconnection=False)
    assert nc.wait_for_event("cn_a", "hello") == [{"nsp": "/cls", "cls": "Chat"}]
    assert nc.call("cn_a", "echo", 1, "two", {"three": 3}) == [1, "two", {"three": 3}]
    nc.emit("cn_b", "shout", "hey")
    assert nc.wait_for_event("cn_a", "shout")[0] == "hey"
    refused = nc.connect("cn_r", srv.url + "/cls", transports=WS, reconnection=False,
                         auth={"refuse": True}, expect_error=True)
    assert refused["error"] == {"message": "no entry", "data": {"why": "refuse"}}
    nc.disconnect("cn_a")
    assert nc.wait_for_event("cn_obs", "cls_left") == [a["sid"], "client namespace disconnect"]
    for name in ("cn_obs", "cn_a", "cn_b", "cn_r"):
        nc.remove(name)


# ------------------------------------------------------------------ msgpack parser

@pytest.mark.parametrize("transports", [WS, POLL], ids=["websocket", "polling"])
def test_msgpack_parser(nc: NodeClients, msgpack_srv: LiveServer, transports: list[str]) -> None:
    name = f"mp_{transports[0]}"
    other = name + "_peer"
    reply = nc.connect(name, msgpack_srv.url, transports=transports, reconnection=False,
                       parser="msgpack", trace=True)
    assert reply["connected"]
    nc.connect(other, msgpack_srv.url + "/cls", transports=transports, reconnection=False, parser="msgpack")
    assert nc.wait_for_event(other, "hello") == [{"nsp": "/cls", "cls": "Chat"}]
    # binary stays inline, both ways; an ack comes back with every type intact
    args = [b"\x00\x01\xff", {"n": [1, 2.5, None, True], "s": "é\u2603"}, -7, 2**40]
    assert nc.call(other, "echo", *args) == args
    # packets travel as binary Engine.IO messages (one per packet, no attachments)
    sent = [ev for ev in nc.events(name, "packet") if ev["dir"] == "in" and ev["type"] == "message"]
    assert sent and all(isinstance(ev["data"], dict) and "$bin" in ev["data"] for ev in sent)
    # server-side features work unchanged with the other parser
    nc.emit(name, "say", b"\x02", "x")
    assert nc.wait_for_event(name, "said") == [b"\x02", "x"]
    nc.ack_with(name, "question", b"\xfe", {"k": "v"})
    assert nc.call(name, "ask_me_blocking", 2.0) == [["ok", [b"\xfe", {"k": "v"}]]]
    # a Date from the client arrives as a datetime and goes back as a Date
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 10_000, tzinfo=datetime.timezone.utc)
    assert nc.call(other, "echo", when, [when]) == [when, [when]]
    nc.remove(name)
    nc.remove(other)


def test_json_client_cannot_talk_to_a_msgpack_server(nc: NodeClients, msgpack_srv: LiveServer) -> None:
    # the server closes the connection on a text Socket.IO packet (a "parse error")
    nc.connect("mp_json", msgpack_srv.url, transports=WS, reconnection=False, wait=False)
    closed = nc.wait_for("mp_json", "engine_close")
    assert closed["reason"] in ("transport close", "parse error", "forced close")
    assert not nc.events("mp_json", "connect")
    nc.remove("mp_json")



def test_test_client_follows_the_server_parser() -> None:
    import socketio_sync

    io = socketio_sync.Server(parser="msgpack")

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("echo", lambda *args: args)

    client = io.test_client()
    try:
        assert client.call("echo", b"\x00\x01", {"a": [1, None]}) == (b"\x00\x01", {"a": [1, None]})
    finally:
        client.disconnect()
