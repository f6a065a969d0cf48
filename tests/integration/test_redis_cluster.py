"""socketio_sync servers sharing a real redis-server through ``RedisAdapter``.

Each test starts its own redis-server (fixture ``redis_server``) and two or three server
processes of ``tests/apps/cluster_app.py`` on different ports (fixture ``live_server``),
then spreads clients over them: official Node socket.io-client sockets (fixture
``node_clients``) and, in a few places, python-socketio clients.  Operations run on one
server through the app's ``op`` event and their effect is checked on the clients of the
other servers.

Absence ("this client did NOT get it") is checked with a *fence*: after the operation,
the same server broadcasts a ``fence`` event that every client must get; Redis keeps the
order of messages published one after the other, so a client that got the fence but not
the event will never get the event.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import msgpack
import pytest
import redis as redis_py
import socketio

import socketio_sync
from tests.jsclient import NodeClients

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.js]

APP = "tests.apps.cluster_app:build"
WAIT = 5.0
KEY = "socket.io"


# ======================================================================= helpers

def start_cluster(live_server: Any, redis_url: str, names: Iterable[str],
                  per_server: dict[str, dict[str, Any]] | None = None, **opts: Any) -> list[Any]:
    """Start one cluster_app process per name, in parallel; return them in order."""
    names = list(names)
    per_server = per_server or {}
    with ThreadPoolExecutor(len(names)) as pool:
        futures = [pool.submit(live_server, APP, redis_url=redis_url, name=n, **{**opts, **per_server.get(n, {})})
                   for n in names]
        return [f.result(timeout=30) for f in futures]


def op(nc: NodeClients, client: str, *, wait: float = 10.0, except_: list[str] | None = None,
       **spec: Any) -> Any:
    """Run ``spec`` on the server of ``client`` (cluster_app's "op" event); its result.
    ``wait``: seconds to wait for the answer (``timeout`` is a key of ``spec``);
    ``except_``: the ``except`` rooms."""
    if except_ is not None:
        spec["except"] = except_
    answer = nc.call(client, "op", spec, timeout=wait)
    assert len(answer) == 1, answer
    return answer[0]


def connect_all(nc: NodeClients, layout: dict[str, Any], nsp: str = "") -> dict[str, str]:
    """Connect a WebSocket client per name; ``layout`` maps client name -> server.
    Returns name -> sid. The auth is ``{"user": name}``."""
    sids = {}
    for name, srv in layout.items():
        reply = nc.connect(name, srv.url + nsp, transports=["websocket"], reconnection=False, auth={"user": name})
        sids[name] = reply["sid"]
    return sids


def wait_servers(nc: NodeClients, client: str, count: int, timeout: float = WAIT) -> None:
    """Poll until ``count`` servers are subscribed to the request channel of "/"."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = op(nc, client, kind="server_count")
        if seen == count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} servers expected on the bus, saw {seen}")


def join(nc: NodeClients, client: str, *rooms: str) -> None:
    for room in rooms:
        assert room in nc.call(client, "join", room)[0]


def fence(nc: NodeClients, sender: str, clients: Iterable[str], nsp: str = "", timeout: float = WAIT) -> None:
    """Broadcast a unique "fence" from the server of ``sender`` and wait until every
    client in ``clients`` (all in namespace ``nsp``) has it."""
    token = uuid.uuid4().hex
    spec: dict[str, Any] = {"kind": "emit", "event": "fence", "args": [token]}
    if nsp:
        spec["nsp"] = nsp
    op(nc, sender, **spec)
    for client in clients:
        nc.wait_for_event(client, "fence", timeout=timeout, predicate=lambda args: args == [token])


def received(nc: NodeClients, clients: Iterable[str], event: str) -> dict[str, list[list[Any]]]:
    return {c: nc.messages(c, event) for c in clients}


def poll(fn: Callable[..., Any], timeout: float = WAIT, interval: float = 0.05, what: str = "condition") -> Any:
    """Call ``fn`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")
        time.sleep(interval)


class PyClient:
    """A python-socketio client (threads) that records the events it gets."""

    def __init__(self, url: str, auth: Any = None, namespaces: tuple[str, ...] = ("/",)) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[str, str, list[Any]]] = []
        self.sio = socketio.Client(reconnection=False, handle_sigint=False)
        for ns in namespaces:
            self.sio.on("*", self._recorder(ns), namespace=ns)
        self.sio.connect(url, auth=auth, transports=["websocket"], namespaces=list(namespaces), wait_timeout=WAIT)

    def _recorder(self, ns: str) -> Callable[..., None]:
        def record(event: str, *args: Any) -> None:
            with self.cond:
                self.events.append((ns, event, list(args)))
                self.cond.notify_all()
        return record

    def wait(self, event: str, ns: str = "/", timeout: float = WAIT,
             predicate: Callable[[list[Any]], bool] | None = None) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e_ns, name, args in self.events:
                    if e_ns == ns and name == event and (predicate is None or predicate(args)):
                        return args
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"python client: no {event!r} on {ns} within {timeout}s: {self.events}")
                self.cond.wait(remaining)

    def get(self, event: str, ns: str = "/") -> list[list[Any]]:
        with self.cond:
            return [args for e_ns, name, args in self.events if e_ns == ns and name == event]

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def py_clients() -> Any:
    made: list[PyClient] = []

    def make(*args: Any, **kw: Any) -> PyClient:
        client = PyClient(*args, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.close()
        except Exception:
            pass


@dataclass
class Cluster:
    servers: list[Any]
    layout: dict[str, Any]  # client name -> server
    sids: dict[str, str]  # client name -> socket id
    nc: NodeClients
    redis: Any

    @property
    def clients(self) -> list[str]:
        return list(self.layout)


@pytest.fixture
def trio(live_server: Any, redis_server: Any, node_clients: NodeClients) -> Cluster:
    """Three servers A, B, C and two Node clients on each (a1, a2, b1, b2, c1, c2)."""
    servers = start_cluster(live_server, redis_server.url, ["A", "B", "C"])
    layout = {f"{s}{i}": srv for s, srv in zip("abc", servers) for i in (1, 2)}
    sids = connect_all(node_clients, layout)
    wait_servers(node_clients, "a1", 3)
    return Cluster(servers, layout, sids, node_clients, redis_server)


# ======================================================================= broadcasts

def test_emit_reaches_every_process(trio: Cluster) -> None:
    nc = trio.nc
    assert op(nc, "b1", kind="emit", event="news", args=[1, {"a": ["x", None, True]}, "é✓"]) == "done"
    for client in trio.clients:
        assert nc.wait_for_event(client, "news") == [1, {"a": ["x", None, True]}, "é✓"]
    fence(nc, "b1", trio.clients)
    # Exactly once everywhere: the origin server does not get its own message back.
    assert all(len(v) == 1 for v in received(nc, trio.clients, "news").values())


def test_rooms_and_except_across_processes(trio: Cluster) -> None:
    nc = trio.nc
    join(nc, "a1", "red")
    join(nc, "b1", "red", "vip")
    join(nc, "c1", "red")
    join(nc, "c2", "blue", "vip")
    join(nc, "a2", "blue")
    # One room (published on the room's own channel "socket.io#/#red#").
    op(nc, "b2", kind="emit", to=["red"], event="one", args=["red only"])
    # Several rooms, minus a room (published on "socket.io#/#").
    op(nc, "b2", kind="emit", to=["red", "blue"], event="two", args=["red or blue, not vip"],
       except_=["vip"])
    # Everyone but a room.
    op(nc, "b2", kind="emit", event="three", args=["not vip"], except_=["vip"])
    fence(nc, "b2", trio.clients)
    got = {c: [name for name in ("one", "two", "three") if nc.messages(c, name)] for c in trio.clients}
    assert got == {
        "a1": ["one", "two", "three"],
        "a2": ["two", "three"],
        "b1": ["one"],
        "b2": ["three"],
        "c1": ["one", "two", "three"],
        "c2": [],
    }
    for c in trio.clients:
        for name in ("one", "two", "three"):
            assert len(nc.messages(c, name)) <= 1, (c, name)


def test_socket_broadcast_emit_skips_only_the_sender(trio: Cluster) -> None:
    nc = trio.nc
    op(nc, "c1", kind="broadcast", event="hello", args=["from c1"])
    others = [c for c in trio.clients if c != "c1"]
    for client in others:
        assert nc.wait_for_event(client, "hello") == ["from c1"]
    fence(nc, "c1", trio.clients)
    assert nc.messages("c1", "hello") == []


def test_local_emit_stays_in_its_process(trio: Cluster) -> None:
    nc = trio.nc
    op(nc, "a1", kind="emit", local=True, event="local-news", args=["A only"])
    join(nc, "a2", "room-l")
    join(nc, "b2", "room-l")
    op(nc, "b1", kind="emit", local=True, to=["room-l"], event="local-room", args=["B room only"])
    fence(nc, "a1", trio.clients)
    fence(nc, "b1", trio.clients)
    assert {c: len(v) for c, v in received(nc, trio.clients, "local-news").items()} == {
        "a1": 1, "a2": 1, "b1": 0, "b2": 0, "c1": 0, "c2": 0}
    assert {c: len(v) for c, v in received(nc, trio.clients, "local-room").items()} == {
        "a1": 0, "a2": 0, "b1": 0, "b2": 1, "c1": 0, "c2": 0}


def test_binary_payloads_across_processes(trio: Cluster, py_clients: Any) -> None:
    nc = trio.nc
    py = py_clients(trio.servers[2].url, auth={"user": "py"})
    blob = bytes(range(256)) * 40
    payload = [b"\x00\x01\xff", {"nested": [blob, {"deep": b""}], "text": "t"}]
    op(nc, "a1", kind="emit", event="bin", args=payload)
    for client in trio.clients:
        assert nc.wait_for_event(client, "bin") == payload
    assert py.wait("bin") == payload
    # Binary in the other direction: clients of B and C answer an ack with bytes.
    for client in trio.clients:
        nc.ack_with(client, "give-bytes", client.encode() + b"\x00\xfe")
    answer = op(nc, "a1", kind="call", event="give-bytes", to=["x-none"], timeout=1)
    assert answer == {"ok": []}
    answer = op(nc, "a1", kind="call", event="give-bytes", except_=[trio.sids["a1"]], timeout=3)
    # py answers with None (its catch-all handler returns nothing).
    assert sorted(answer["ok"], key=repr) == sorted(
        [c.encode() + b"\x00\xfe" for c in trio.clients if c != "a1"] + [None], key=repr)


# ======================================================================= rooms of other servers

def test_sockets_join_leave_disconnect_across_processes(trio: Cluster) -> None:
    nc = trio.nc
    join(nc, "a2", "team")
    join(nc, "b2", "team")
    join(nc, "c2", "team")
    # io.in_("team").sockets_join("club") from server B.
    op(nc, "b1", kind="join", to=["team"], room="club")
    for client in ("a2", "b2", "c2"):
        poll(lambda c=client: "club" in nc.call(c, "rooms")[0], what=f"{client} in club")
    for client in ("a1", "b1", "c1"):
        assert nc.call(client, "rooms")[0] == []
    # A broadcast to the new room reaches exactly the joined sockets.
    op(nc, "a1", kind="emit", to=["club"], event="club-news")
    for client in ("a2", "b2", "c2"):
        assert nc.wait_for_event(client, "club-news") == []
    # except_ in a remote operation: everyone in "club" but c2 leaves it.
    op(nc, "a1", kind="leave", to=["club"], room="club", except_=[trio.sids["c2"]])
    for client in ("a2", "b2"):
        poll(lambda c=client: nc.call(c, "rooms")[0] == ["team"], what=f"{client} left club")
    assert nc.call("c2", "rooms")[0] == ["club", "team"]
    # Disconnect the sockets of the room, on every server.
    op(nc, "c1", kind="disconnect", to=["team"])
    for client in ("a2", "b2", "c2"):
        assert nc.wait_for(client, "disconnect")["reason"] == "io server disconnect"
    fence(nc, "c1", ["a1", "b1", "c1"])
    for client in ("a1", "b1", "c1"):
        assert nc.events(client, "disconnect") == []
        assert nc.state(client)["connected"] is True


def test_disconnect_sockets_close_across_processes(trio: Cluster) -> None:
    """close=False ends one namespace socket; close=True the whole connection: as on Node
    (``client._disconnect()``), every namespace socket of that connection gets a
    DISCONNECT, then the connection closes."""
    nc = trio.nc
    for client, srv in (("c1", trio.servers[2]), ("b2", trio.servers[1])):
        nc.connect(f"{client}-chat", srv.url + "/chat", transports=["websocket"], reconnection=False,
                   manager=client)
    join(nc, "c1", "soft")
    join(nc, "b2", "hard")
    op(nc, "a1", kind="disconnect", to=["soft"], close=False)
    op(nc, "a1", kind="disconnect", to=["hard"], close=True)
    assert nc.wait_for("c1", "disconnect")["reason"] == "io server disconnect"
    assert nc.wait_for("b2", "disconnect")["reason"] == "io server disconnect"
    assert nc.wait_for("b2-chat", "disconnect")["reason"] == "io server disconnect"
    assert nc.wait_for("b2", "engine_close")
    fence(nc, "a1", ["c1-chat"], nsp="/chat")
    fence(nc, "a1", ["a1", "a2", "b1", "c2"])
    assert nc.state("c1-chat")["connected"] is True
    assert nc.events("b1", "disconnect") == []


def test_fetch_sockets_returns_remote_sockets(trio: Cluster) -> None:
    nc = trio.nc
    join(nc, "b2", "fetchme")
    join(nc, "c1", "fetchme", "other")
    everyone = op(nc, "a1", kind="fetch")
    by_id = {d["id"]: d for d in everyone}
    assert set(by_id) == set(trio.sids.values())
    for client, sid in trio.sids.items():
        item = by_id[sid]
        server = trio.layout[client]
        name = "ABC"[trio.servers.index(server)]
        assert item["data"] == {"server": name, "user": client}
        assert item["auth"] == {"user": client}
        assert item["remote"] is (name != "A"), item
        assert sid in item["rooms"]
    assert sorted(by_id[trio.sids["c1"]]["rooms"]) == sorted(["fetchme", "other", trio.sids["c1"]])
    # Narrowed to a room, and a room left out.
    in_room = op(nc, "a1", kind="fetch", to=["fetchme"])
    assert sorted(d["id"] for d in in_room) == sorted([trio.sids["b2"], trio.sids["c1"]])
    assert all(d["remote"] for d in in_room)
    not_other = op(nc, "a1", kind="fetch", to=["fetchme"], except_=["other"])
    assert [d["id"] for d in not_other] == [trio.sids["b2"]]
    # Local only.
    assert sorted(d["id"] for d in op(nc, "b1", kind="fetch", local=True)) == sorted(
        [trio.sids["b1"], trio.sids["b2"]])
    # Nothing matches.
    assert op(nc, "c2", kind="fetch", to=["no-such-room"]) == []


def test_fetch_sockets_with_bytes_in_socket_data(live_server: Any, redis_server: Any,
                                                 node_clients: NodeClients) -> None:
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A", "B"])
    sids = connect_all(nc, {"a1": servers[0], "b1": servers[1]})
    wait_servers(nc, "a1", 2)
    op(nc, "b1", kind="set_data", key="blob", value=b"\x00\x01")
    fetched = op(nc, "a1", kind="fetch", wait=6)
    assert isinstance(fetched, list), fetched
    assert sorted(d["id"] for d in fetched) == sorted(sids.values())


def test_remote_socket_methods(trio: Cluster) -> None:
    nc = trio.nc
    join(nc, "b1", "target")
    join(nc, "c2", "target")
    # RemoteSocket.emit
    acted = op(nc, "a1", kind="remote_emit", to=["target"], event="direct", args=["to you", b"\x01"])
    assert acted == sorted([trio.sids["b1"], trio.sids["c2"]])
    for client in ("b1", "c2"):
        assert nc.wait_for_event(client, "direct") == ["to you", b"\x01"]
    # RemoteSocket.join / leave
    op(nc, "a1", kind="remote_join", to=["target"], room="joined-remotely")
    for client in ("b1", "c2"):
        poll(lambda c=client: "joined-remotely" in nc.call(c, "rooms")[0], what=f"{client} joined")
    op(nc, "a1", kind="remote_leave", to=["target"], room="target")
    for client in ("b1", "c2"):
        poll(lambda c=client: nc.call(c, "rooms")[0] == ["joined-remotely"], what=f"{client} left")
    # RemoteSocket.disconnect
    acted = op(nc, "a2", kind="remote_disconnect", to=["joined-remotely"])
    assert acted == sorted([trio.sids["b1"], trio.sids["c2"]])
    for client in ("b1", "c2"):
        assert nc.wait_for(client, "disconnect")["reason"] == "io server disconnect"
    fence(nc, "a2", ["a1", "a2", "b2", "c1"])
    assert all(nc.state(c)["connected"] for c in ("a1", "a2", "b2", "c1"))


# Not strict: the loss is a race (both messages read in one go); the Node -> Python
# variant in test_redis_node_interop.py loses every broadcast and is strict.
def test_join_then_emit_from_the_same_server_keeps_order(trio: Cluster) -> None:
    """``io.in_(sid).sockets_join(room); io.to(room).emit(...)`` in one go: the Node
    adapter applies the join before the broadcast on every server (both come in order
    on the same subscription); so must this one."""
    nc = trio.nc
    rounds = 40
    ops: list[dict[str, Any]] = []
    for i in range(rounds):
        ops.append({"kind": "join", "to": [trio.sids["b1"], trio.sids["c1"]], "room": f"seq-{i}"})
        ops.append({"kind": "emit", "to": [f"seq-{i}"], "event": "seq", "args": [i]})
    assert op(nc, "a1", kind="seq", ops=ops) == ["done"] * (2 * rounds)
    fence(nc, "a1", trio.clients)
    for client in ("b1", "c1"):
        got = [args[0] for args in nc.messages(client, "seq")]
        assert got == list(range(rounds)), f"{client} got only these broadcasts sent right after a remote join: {got}"


# ======================================================================= server-side emit

def test_server_side_emit_runs_on_the_other_servers(trio: Cluster) -> None:
    nc = trio.nc
    assert op(nc, "a1", kind="server_side_emit", event="record", args=[1, "two", {"three": 3}]) == "done"
    for client in ("b1", "c1"):
        poll(lambda c=client: op(nc, c, kind="received"), what=f"server of {client} ran the handler")
        assert op(nc, client, kind="received") == [[1, "two", {"three": 3}]]
    # Not on the emitting server itself (checked after the others got it).
    assert op(nc, "a2", kind="received") == []
    # A handler that broadcasts: ping-servers on B and C emit "server-side" to everyone.
    op(nc, "a1", kind="server_side_emit", event="ping-servers", args=["p"])
    for client in trio.clients:
        got = {tuple(nc.wait_for_event(client, "server-side")) for _ in range(2)}
        assert got == {("B", "p"), ("C", "p")}


def test_server_side_call_collects_every_reply(trio: Cluster) -> None:
    nc = trio.nc
    answer = op(nc, "b1", kind="server_side_call", event="record", args=["q"])
    assert sorted(answer["ok"]) == ["A", "C"]
    # As on the Node server, a server with no handler for the event does not answer:
    # the caller gets a timeout with no responses.
    answer = op(nc, "b1", kind="server_side_call", event="nobody-handles-this")
    assert answer == {"timeout": []}


def test_server_side_call_times_out_on_a_slow_server(live_server: Any, redis_server: Any,
                                                     node_clients: NodeClients) -> None:
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A", "B", "C"],
                            per_server={"B": {"slow_delay": 0.0}, "C": {"slow_delay": 4.0}})
    connect_all(nc, {"a1": servers[0]})
    wait_servers(nc, "a1", 3)
    started = time.monotonic()
    answer = op(nc, "a1", kind="server_side_call", event="slow", timeout=1.0)
    elapsed = time.monotonic() - started
    # RequestTimeout after the timeout, with the answer of the fast server.
    assert answer == {"timeout": ["B"]}
    assert elapsed < 3.5, elapsed


# ======================================================================= broadcast with acks

def test_broadcast_with_acks_across_processes(trio: Cluster) -> None:
    nc = trio.nc
    for client in trio.clients:
        nc.ack_with(client, "survey", f"answer of {client}")
    answer = op(nc, "c2", kind="call", event="survey", args=["question"], timeout=3)
    assert sorted(answer["ok"]) == sorted(f"answer of {c}" for c in trio.clients)
    # Narrowed to a room spread over two servers.
    join(nc, "a1", "panel")
    join(nc, "b2", "panel")
    answer = op(nc, "c2", kind="call", to=["panel"], event="survey", timeout=3)
    assert sorted(answer["ok"]) == ["answer of a1", "answer of b2"]


def test_broadcast_with_acks_partial_answers_and_timeout(trio: Cluster) -> None:
    nc = trio.nc
    silent = "c1"  # on another server than the caller; never answers
    for client in trio.clients:
        if client != silent:
            nc.ack_with(client, "survey", client)
    started = time.monotonic()
    answer = op(nc, "a1", kind="call", event="survey", timeout=1.5)
    elapsed = time.monotonic() - started
    assert sorted(answer["timeout"]) == sorted(c for c in trio.clients if c != silent)
    assert 1.3 < elapsed < 4.0, elapsed
    # The silent client did get the question (with an ack id it never used).
    assert nc.wait_for_message(silent, "survey").get("ackId") is not None


# ======================================================================= namespaces

def test_namespace_other_than_root(trio: Cluster) -> None:
    nc = trio.nc
    chat = {"chat-a": trio.servers[0], "chat-b": trio.servers[1], "chat-c": trio.servers[2]}
    chat_sids = connect_all(nc, chat, nsp="/chat")
    nc.call("chat-b", "join", "lobby")
    nc.call("chat-c", "join", "lobby")
    # From a "/" socket of server A, an emit on io.of("/chat").to("lobby").
    op(nc, "a1", kind="emit", nsp="/chat", to=["lobby"], event="chat-msg", args=["hi lobby"])
    for client in ("chat-b", "chat-c"):
        assert nc.wait_for_event(client, "chat-msg") == ["hi lobby"]
    op(nc, "a1", kind="emit", nsp="/chat", event="chat-all", args=[b"\x07"])
    for client in chat:
        assert nc.wait_for_event(client, "chat-all") == [b"\x07"]
    fence(nc, "a1", list(chat), nsp="/chat")
    fence(nc, "a1", trio.clients)
    assert nc.messages("chat-a", "chat-msg") == []
    for client in trio.clients:  # the "/" sockets got nothing of "/chat"
        assert nc.messages(client, "chat-msg") == [] and nc.messages(client, "chat-all") == []
    fetched = op(nc, "a1", kind="fetch", nsp="/chat")
    assert sorted(d["id"] for d in fetched) == sorted(chat_sids.values())
    assert {d["data"]["server"] for d in fetched if d["remote"]} == {"B", "C"}
    op(nc, "a1", kind="disconnect", nsp="/chat", to=["lobby"])
    for client in ("chat-b", "chat-c"):
        assert nc.wait_for(client, "disconnect")["reason"] == "io server disconnect"


# ======================================================================= Emitter

def test_emitter_reaches_clients(trio: Cluster, py_clients: Any) -> None:
    nc = trio.nc
    chat = {"chat-a": trio.servers[0], "chat-b": trio.servers[1], "chat-c": trio.servers[2]}
    connect_all(nc, chat, nsp="/chat")
    nc.call("chat-a", "join", "room")
    nc.call("chat-c", "join", "room")
    py = py_clients(trio.servers[1].url, auth={"user": "py"}, namespaces=("/", "/chat"))
    emitter = socketio_sync.Emitter(trio.redis.url)
    emitter.of("/chat").to("room").emit("from-emitter", {"n": 1}, b"\x00bin")
    for client in ("chat-a", "chat-c"):
        assert nc.wait_for_event(client, "from-emitter") == [{"n": 1}, b"\x00bin"]
    emitter.emit("root-news", "everyone")
    for client in trio.clients:
        assert nc.wait_for_event(client, "root-news") == ["everyone"]
    assert py.wait("root-news") == ["everyone"]
    join(nc, "b1", "x")
    join(nc, "c1", "x", "y")
    emitter.to("x").except_("y").emit("x-not-y")
    assert nc.wait_for_event("b1", "x-not-y") == []
    emitter.of("chat").emit("chat-everyone")  # "chat" means "/chat"
    for client in chat:
        assert nc.wait_for_event(client, "chat-everyone") == []
    assert py.wait("chat-everyone", ns="/chat") == []
    fence(nc, "a1", trio.clients)
    assert nc.messages("chat-b", "from-emitter") == []
    assert nc.messages("c1", "x-not-y") == []
    assert py.get("from-emitter", ns="/chat") == []


def test_emitter_requests(trio: Cluster) -> None:
    nc = trio.nc
    emitter = socketio_sync.Emitter(trio.redis.url)
    join(nc, "a2", "e-team")
    join(nc, "c2", "e-team")
    emitter.in_("e-team").sockets_join("e-club")
    for client in ("a2", "c2"):
        poll(lambda c=client: "e-club" in nc.call(c, "rooms")[0], what=f"{client} joined e-club")
    emitter.in_("e-club").sockets_leave("e-team")
    for client in ("a2", "c2"):
        poll(lambda c=client: nc.call(c, "rooms")[0] == ["e-club"], what=f"{client} left e-team")
    # server_side_emit from an emitter runs the handler on every server.
    emitter.server_side_emit("record", "from emitter")
    for client in ("a1", "b1", "c1"):
        poll(lambda c=client: op(nc, c, kind="received") == [["from emitter"]], what=f"record on {client}")
    emitter.in_("e-club").disconnect_sockets()
    for client in ("a2", "c2"):
        assert nc.wait_for(client, "disconnect")["reason"] == "io server disconnect"
    fence(nc, "b1", ["a1", "b1", "b2", "c1"])
    assert all(nc.state(c)["connected"] for c in ("a1", "b1", "b2", "c1"))


# ======================================================================= resilience

def test_redis_restart(live_server: Any, redis_server: Any, node_clients: NodeClients) -> None:
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A", "B"])
    layout = {"a1": servers[0], "a2": servers[0], "b1": servers[1]}
    connect_all(nc, layout)
    wait_servers(nc, "a1", 2)
    op(nc, "a1", kind="emit", event="before", args=[0])
    for client in layout:
        assert nc.wait_for_event(client, "before") == [0]

    redis_server.stop()
    # During the outage: the servers answer, local delivery works, the cluster-wide
    # operations degrade to this process.
    op(nc, "a1", kind="emit", event="during", args=[1])
    assert nc.wait_for_event("a1", "during") == [1]
    assert nc.wait_for_event("a2", "during") == [1]
    op(nc, "a1", kind="emit", local=True, event="during-local")
    assert nc.wait_for_event("a2", "during-local") == []
    assert op(nc, "b1", kind="server_count") == 1
    assert [d["id"] for d in op(nc, "b1", kind="fetch")] == [nc.state("b1")["sid"]]
    for client in ("a1", "b1"):
        nc.ack_with(client, "q", client)
    assert op(nc, "b1", kind="call", event="q", timeout=2) == {"ok": ["b1"]}
    assert all(srv.alive() for srv in servers)

    redis_server.start()  # same port
    # Broadcasts across processes resume once the listeners have reconnected (backoff
    # up to 5 s): poll with fresh tokens in both directions.
    for sender, receiver in (("a1", "b1"), ("b1", "a2")):
        deadline = time.monotonic() + 12
        while True:
            token = uuid.uuid4().hex
            op(nc, sender, kind="emit", event="after", args=[token])
            try:
                nc.wait_for_event(receiver, "after", timeout=0.5, predicate=[token].__eq__)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"broadcasts from {sender} never reached {receiver} after the restart")
    wait_servers(nc, "a1", 2, timeout=12)

    # And once more with redis.restart(delay=1), then the whole feature set works.
    redis_server.restart(delay=1)
    poll(lambda: op(nc, "a1", kind="server_count") == 2 and op(nc, "b1", kind="server_count") == 2,
         timeout=12, interval=0.2, what="both servers resubscribed")
    for client in ("a1", "a2", "b1"):
        nc.ack_with(client, "q2", client)
    answer = poll(lambda: (lambda r: r if "ok" in r and len(r["ok"]) == 3 else None)(
        op(nc, "a1", kind="call", event="q2", timeout=1)), timeout=12, interval=0.2,
        what="acks from every client after the restart")
    assert sorted(answer["ok"]) == ["a1", "a2", "b1"]
    assert sorted(d["id"] for d in op(nc, "a1", kind="fetch")) == sorted(
        nc.state(c)["sid"] for c in layout)
    stats = op(nc, "a1", kind="stats")
    assert stats["publish_errors"] >= 1, stats  # A published during the outage
    assert all(srv.alive() for srv in servers)


def test_frozen_server_gives_request_timeouts(trio: Cluster) -> None:
    """Server C stops answering (SIGSTOP) but stays subscribed: requests that wait for
    every server time out after requests_timeout (2 s in cluster_app) with what came;
    broadcasts between the others go on; all is well again once C resumes."""
    nc = trio.nc
    frozen = trio.servers[2]
    for client in trio.clients:
        nc.ack_with(client, "q", client)
    os.kill(frozen.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert "timeout" in op(nc, "a1", kind="fetch")
        assert 1.5 < time.monotonic() - started < 4.0
        assert op(nc, "a1", kind="server_side_call", event="record", timeout=1) == {"timeout": ["B"]}
        answer = op(nc, "b1", kind="call", event="q", timeout=1)
        assert sorted(answer["timeout"]) == ["a1", "a2", "b1", "b2"]
        op(nc, "a1", kind="emit", event="while-frozen")
        assert nc.wait_for_event("b2", "while-frozen") == []
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)
    assert nc.wait_for_event("c1", "while-frozen") == []  # queued in Redis' output buffer
    assert sorted(d["id"] for d in op(nc, "a1", kind="fetch")) == sorted(trio.sids.values())


def test_servers_started_before_redis(live_server: Any, redis_server: Any, node_clients: NodeClients) -> None:
    """Redis is down when the servers start: they serve their own clients at once and
    join the cluster when Redis comes up."""
    nc = node_clients
    redis_server.stop()
    servers = start_cluster(live_server, redis_server.url, ["A", "B"])
    connect_all(nc, {"a1": servers[0], "b1": servers[1]})
    op(nc, "a1", kind="emit", event="alone", args=[1])
    assert nc.wait_for_event("a1", "alone") == [1]
    redis_server.start()
    wait_servers(nc, "a1", 2, timeout=12)
    wait_servers(nc, "b1", 2, timeout=12)
    token = uuid.uuid4().hex
    op(nc, "a1", kind="emit", event="together", args=[token])
    assert nc.wait_for_event("b1", "together") == [token]
    fence(nc, "a1", ["a1", "b1"])  # from A, which emitted "alone": after it on the bus
    assert nc.messages("b1", "alone") == []


# ======================================================================= hostile bus messages

class _Evil:
    """Unpickling this creates ``path`` (and would run anything else just as well)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


class _EvilSystem:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.path}",))


def _channels(sids: Iterable[str] = ()) -> list[str]:
    channels = [f"{KEY}#/#", f"{KEY}-request#/#", f"{KEY}-response#/#", f"{KEY}#/chat#", f"{KEY}-request#/chat#"]
    channels += [f"{KEY}#/#{sid}#" for sid in sids]
    return channels


def _assert_cluster_works(nc: NodeClients, clients: list[str], sender: str) -> None:
    token = uuid.uuid4().hex
    op(nc, sender, kind="emit", event="still-alive", args=[token])
    for client in clients:
        assert nc.wait_for_event(client, "still-alive", predicate=lambda a: a == [token]) == [token]
    for client in clients:
        nc.ack_with(client, "still-q", client)
    assert sorted(op(nc, sender, kind="call", event="still-q", timeout=3)["ok"]) == sorted(clients)
    assert len(op(nc, sender, kind="fetch")) == len(clients)


def test_pickle_payloads_are_never_executed(live_server: Any, redis_server: Any, node_clients: NodeClients,
                                            tmp_path: Path) -> None:
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A", "B"])
    layout = {"a1": servers[0], "b1": servers[1]}
    sids = connect_all(nc, layout)
    wait_servers(nc, "a1", 2)
    marker = tmp_path / "pwned"
    marker2 = tmp_path / "pwned2"
    payloads = []
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        payloads.append(pickle.dumps(_Evil(str(marker)), protocol=proto))
        payloads.append(pickle.dumps(_EvilSystem(str(marker2)), protocol=proto))
        # The shape python-socketio's pickle-based managers publish, with a payload inside.
        payloads.append(pickle.dumps({"method": "emit", "event": "x", "data": _Evil(str(marker))}, protocol=proto))
    # Pickles wrapped in the formats the adapter does decode.
    inner = pickle.dumps(_Evil(str(marker)))
    payloads.append(msgpack.packb(["zzz", {"type": 2, "data": ["ev", inner], "nsp": "/"}, {"rooms": [], "except": []}],
                                  use_bin_type=True))
    payloads.append(msgpack.packb(msgpack.ExtType(1, inner)))
    before = [op(nc, c, kind="stats")["dropped"] for c in layout]
    r = redis_py.Redis.from_url(redis_server.url)
    try:
        for channel in _channels(sids.values()):
            for payload in payloads:
                r.publish(channel, payload)
    finally:
        r.close()
    fence(nc, "a1", list(layout))
    fence(nc, "b1", list(layout))
    _assert_cluster_works(nc, list(layout), "a1")
    assert not marker.exists() and not marker2.exists(), "a pickle from Redis was unpickled"
    after = [op(nc, c, kind="stats")["dropped"] for c in layout]
    assert all(a > b for a, b in zip(after, before)), (before, after)
    # The one well-formed broadcast carried the pickle as opaque bytes: delivered as bytes.
    for client in layout:
        assert nc.messages(client, "ev"), client
        for args in nc.messages(client, "ev"):
            assert args == [inner]
    assert all(srv.alive() for srv in servers)


def test_garbled_and_misshapen_messages_are_dropped(live_server: Any, redis_server: Any,
                                                    node_clients: NodeClients) -> None:
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A", "B"])
    layout = {"a1": servers[0], "b1": servers[1]}
    sids = connect_all(nc, layout)
    wait_servers(nc, "a1", 2)
    pk = lambda obj: msgpack.packb(obj, use_bin_type=True)  # noqa: E731
    good_opts: dict[str, Any] = {"rooms": [], "except": [], "flags": {}}
    broadcast_junk = [
        b"", b"\x00", b"\xc1", b"\xff" * 50, os.urandom(300), b"{not json", b"[1,2,3]",
        pk([1, 2]), pk("string"), pk({"a": 1}), pk(None),
        pk(["zzz", "not a packet", good_opts]),
        pk(["zzz", {"type": 2, "data": "not a list", "nsp": "/"}, good_opts]),
        pk(["zzz", {"type": 2, "data": [], "nsp": "/"}, good_opts]),
        pk(["zzz", {"type": 2, "data": [42, "x"], "nsp": "/"}, good_opts]),
        pk(["zzz", {"type": 2, "data": ["junk-event"], "nsp": "/"}, "not opts"]),
        pk(["zzz", {"type": 2, "data": ["junk-event"], "nsp": "/"}, {"rooms": "abc", "except": []}]),
        pk(["zzz", {"type": 2, "data": ["junk-event"], "nsp": "/other"}, good_opts]),
        # Packet types that are not events: a DISCONNECT or CONNECT must not reach clients.
        pk(["zzz", {"type": 1, "data": ["junk-event"], "nsp": "/"}, good_opts]),
        pk(["zzz", {"type": 0, "data": ["junk-event"], "nsp": "/"}, good_opts]),
        pk(["zzz", {"type": 3, "data": ["junk-event"], "nsp": "/", "id": 1}, good_opts]),
        pk(["zzz", {"type": 99, "data": ["junk-event"], "nsp": "/"}, good_opts]),
        # Truncated valid message, and deeply nested data.
        pk(["zzz", {"type": 2, "data": ["junk-event", "x" * 100], "nsp": "/"}, good_opts])[:-10],
        b"\x91" * 100_000 + b"\xc0",
        pk(msgpack.ExtType(5, b"\x00" * 10)),
    ]
    request_junk = [
        b"", b"{", b"{}", b'{"type": "2"}', b'{"type": null}', b'{"type": 2.5, "opts": {}}',
        b"[]", b'"str"', b"\xff\xfe", b'{"type": 2, "opts": "nope", "rooms": ["r"]}',
        b'{"type": 2, "opts": {"rooms": 5, "except": []}, "rooms": ["r"]}',
        b'{"type": 4, "opts": {"rooms": [], "except": "abc"}}',
        b'{"type": 4, "opts": "everyone"}',
        b'{"type": 5, "requestId": ["unhashable"], "opts": {}}',
        b'{"type": 5, "requestId": "r1", "opts": "bad"}',
        b'{"type": 6, "data": "not a list"}', b'{"type": 6, "data": []}', b'{"type": 6, "data": [1, 2]}',
        b'{"type": 6, "requestId": "r2", "data": {"a": 1}}',
        b'{"type": 7, "requestId": "r3", "packet": "nope", "opts": {}}',
        b'{"type": 7, "requestId": "r4", "packet": {"type": 2, "data": ["junk-event"], "nsp": "/"}, '
        b'"opts": {"rooms": [], "except": [], "flags": "x"}}',
        b'{"type": 1234}', b'{"type": -1}', b'{"type": 9007199254740993}',
        b'{"uid": {"x": 1}, "type": 0, "requestId": {"y": 2}}',
        b'[' * 100_000,
        pk({"type": 7, "requestId": "r5", "packet": {"type": 1, "nsp": "/"}, "opts": good_opts}),
        pk({"type": "x"}), pk([1, 2, 3]), os.urandom(200),
    ]
    response_junk = [
        b"", b"{", b"{}", b'{"requestId": ["a"]}', b'{"requestId": "zz", "sockets": 5}',
        b'{"type": 8, "requestId": "zz", "clientCount": "many"}', b"[1]", os.urandom(100),
        pk({"type": 9, "requestId": "zz", "packet": msgpack.ExtType(3, b"")}), pk([1]),
    ]
    r = redis_py.Redis.from_url(redis_server.url)
    try:
        for payload in broadcast_junk:
            for channel in (f"{KEY}#/#", f"{KEY}#/#{sids['a1']}#", f"{KEY}#/#{sids['b1']}#", f"{KEY}#/chat#"):
                r.publish(channel, payload)
        for payload in request_junk:
            for channel in (f"{KEY}-request#/#", f"{KEY}-request#/chat#"):
                r.publish(channel, payload)
        for payload in response_junk:
            r.publish(f"{KEY}-response#/#", payload)
    finally:
        r.close()
    fence(nc, "a1", list(layout))
    fence(nc, "b1", list(layout))
    for client in layout:
        assert nc.messages(client, "junk-event") == [], nc.messages(client, "junk-event")
        assert nc.events(client, "disconnect") == []
        assert nc.state(client)["connected"] is True
    _assert_cluster_works(nc, list(layout), "b1")
    stats = op(nc, "a1", kind="stats")
    assert stats["dropped"] >= 20, stats
    assert all(srv.alive() for srv in servers)


def test_wrong_typed_room_lists_are_dropped(live_server: Any, redis_server: Any, node_clients: NodeClients) -> None:
    """Node's adapter does ``new Set(request.opts.rooms)``: a non-iterable throws and the
    message is ignored; only a missing list means "every socket". The hostile messages go
    to "/chat", so the "/" client a1 can still send the fences."""
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A", "B"])
    connect_all(nc, {"a1": servers[0]})
    chat = ["chat-a", "chat-b"]
    connect_all(nc, {"chat-a": servers[0], "chat-b": servers[1]}, nsp="/chat")
    wait_servers(nc, "a1", 2)
    r = redis_py.Redis.from_url(redis_server.url)
    try:
        wrong: list[dict[str, Any]] = [
            {"rooms": [], "except": {}}, {"rooms": {}, "except": []}, {"rooms": 0, "except": False},
            {"rooms": "", "except": []}]
        for opts in wrong:
            r.publish(f"{KEY}#/chat#", msgpack.packb(
                ["zzz", {"type": 2, "data": ["junk-event"], "nsp": "/chat"}, opts], use_bin_type=True))
            r.publish(f"{KEY}-request#/chat#", json.dumps({"type": 4, "opts": opts, "close": False}))
    finally:
        r.close()
    token = uuid.uuid4().hex
    op(nc, "a1", kind="emit", nsp="/chat", event="fence", args=[token])
    for client in chat:  # the fence, or a disconnection (then no fence ever comes)
        poll(lambda c=client: [token] in nc.messages(c, "fence") or nc.events(c, "disconnect"),
             what=f"fence or disconnect on {client}")
    for client in chat:
        assert nc.events(client, "disconnect") == []
        assert nc.messages(client, "junk-event") == []


@pytest.mark.parametrize("mode", ["drop", "raise"])
def test_publishing_while_redis_is_down(live_server: Any, redis_server: Any, node_clients: NodeClients,
                                        mode: str) -> None:
    """``on_publish_error``: "drop" logs and goes on (local clients still get the emit);
    "raise" makes the emitting call raise PublishError. Either way the server lives on."""
    nc = node_clients
    servers = start_cluster(live_server, redis_server.url, ["A"], adapter_options={"on_publish_error": mode})
    connect_all(nc, {"a1": servers[0]})
    redis_server.stop()
    answer = op(nc, "a1", kind="emit", event="during-outage", args=[1])
    if mode == "drop":
        assert answer == "done"
        assert nc.wait_for_event("a1", "during-outage") == [1]
    else:
        assert "cannot publish to Redis" in answer["publish_error"]
    # local operations keep working, and the server process is alive
    assert op(nc, "a1", kind="emit", local=True, event="local-only", args=[2]) == "done"
    assert nc.wait_for_event("a1", "local-only") == [2]
    if mode == "raise":  # after "local-only", sent later on the same connection
        assert nc.messages("a1", "during-outage") == []
    assert servers[0].alive()
