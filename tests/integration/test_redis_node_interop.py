"""A socketio_sync server and a Node socket.io 4.8 server (@socket.io/redis-adapter 8.x)
in one cluster, sharing a real redis-server; and the Node @socket.io/redis-emitter.

The Node server is ``tests/js/node_cluster_server.mjs``: the same app as
``tests/apps/cluster_app.py`` ("op", "join", "rooms" events; "record", "slow",
"ping-servers" server-side handlers), so every operation can be run from either side.
Python server "P" has clients p1, p2; Node server "N" has clients n1, n2 (all official
Node socket.io-client sockets over WebSocket).
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
import redis as redis_py

import socketio_sync
from tests.conftest import require_path, require_tool
from tests.integration.test_redis_cluster import (
    connect_all, fence, join, op, poll, start_cluster, wait_servers,
)
from tests.jsclient import JS_DIR, NodeClients, require_node_clients, to_wire

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.js]

WAIT = 5.0


# ======================================================================= the Node server

class NodeClusterServer:
    """``node node_cluster_server.mjs <port> <redisUrl> <name>`` in a subprocess."""

    def __init__(self, node: str, redis_url: str, name: str, adapter_options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.expected_down = False
        self.proc = subprocess.Popen(
            [node, str(JS_DIR / "node_cluster_server.mjs"), "0", redis_url, name, json.dumps(adapter_options or {})],
            cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the process exits if it cannot start
        if not line.startswith("LISTENING "):
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"node cluster server did not start: {line!r}\n{err}")
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.expected_down = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def node_server() -> Iterator[Any]:
    """Factory: ``node_server(redis_url, "N")`` -> a running NodeClusterServer."""
    node = require_node_clients()
    for pkg in ("socket.io", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "redis"):
        require_path(JS_DIR / "node_modules" / pkg, f"tests/js/node_modules/{pkg} is missing: run npm ci in tests/js")
    servers: list[NodeClusterServer] = []

    def start(redis_url: str, name: str, adapter_options: dict[str, Any] | None = None) -> NodeClusterServer:
        srv = NodeClusterServer(node, redis_url, name, adapter_options)
        servers.append(srv)
        return srv

    yield start
    crashed = [s.name for s in servers if not s.expected_down and not s.alive()]
    for srv in servers:
        srv.stop()
    assert not crashed, f"node cluster server(s) died during the test: {crashed}"


def run_node_emitter(redis_url: str, ops: list[dict[str, Any]]) -> None:
    """Run operations through @socket.io/redis-emitter (tests/js/node_emitter.mjs)."""
    node = require_tool("node", "nodejs")
    done = subprocess.run(
        [node, str(JS_DIR / "node_emitter.mjs"), redis_url, json.dumps(to_wire(ops))],
        cwd=JS_DIR, capture_output=True, text=True, timeout=20,
    )
    assert done.returncode == 0 and done.stdout.startswith(f"DONE {len(ops)}"), (done.stdout, done.stderr)


@dataclass
class Mixed:
    py: Any  # the socketio_sync server "P"
    node: NodeClusterServer  # the Node server "N"
    layout: dict[str, Any]  # client name -> server
    sids: dict[str, str]
    nc: NodeClients
    redis: Any

    @property
    def clients(self) -> list[str]:
        return list(self.layout)


@pytest.fixture
def mixed(live_server: Any, redis_server: Any, node_server: Any, node_clients: NodeClients) -> Mixed:
    """Python server P (clients p1, p2) and Node server N (clients n1, n2) on one Redis."""
    py = start_cluster(live_server, redis_server.url, ["P"], slow_delay=2.5)[0]
    nd = node_server(redis_server.url, "N")
    layout = {"p1": py, "p2": py, "n1": nd, "n2": nd}
    sids = connect_all(node_clients, layout)
    wait_servers(node_clients, "p1", 2)
    wait_servers(node_clients, "n1", 2)
    return Mixed(py, nd, layout, sids, node_clients, redis_server)


# ======================================================================= broadcasts

@pytest.mark.parametrize("sender", ["p1", "n1"])
def test_broadcasts_reach_the_other_servers_clients(mixed: Mixed, sender: str) -> None:
    nc = mixed.nc
    payload = ["text é✓", 42, 1.5, None, True, {"nested": {"list": [1, "2", None]}}, []]
    op(nc, sender, kind="emit", event="news", args=payload)
    for client in mixed.clients:
        assert nc.wait_for_event(client, "news") == payload
    # Binary, nested, several attachments.
    blob = bytes(range(256)) * 20
    binary = [b"\x00\x01", {"a": [blob, {"b": b""}]}, "after"]
    op(nc, sender, kind="emit", event="bin", args=binary)
    for client in mixed.clients:
        assert nc.wait_for_event(client, "bin") == binary
    # Rooms (one room: the room's own channel; several: the namespace channel) and except.
    join(nc, "p2", f"red-{sender}")
    join(nc, "n2", f"red-{sender}", f"vip-{sender}")
    join(nc, "n1", f"blue-{sender}")
    op(nc, sender, kind="emit", to=[f"red-{sender}"], event="one")
    op(nc, sender, kind="emit", to=[f"red-{sender}", f"blue-{sender}"], event="two",
       except_=[f"vip-{sender}"])
    op(nc, sender, kind="emit", event="three", except_=[f"red-{sender}"])
    op(nc, sender, kind="broadcast", event="four")
    fence(nc, sender, mixed.clients)
    got = {c: [e for e in ("one", "two", "three", "four") if nc.messages(c, e)] for c in mixed.clients}
    expected = {
        "p1": ["three", "four"],
        "p2": ["one", "two", "four"],
        "n1": ["two", "three", "four"],
        "n2": ["one", "four"],
    }
    expected[sender].remove("four")  # socket.broadcast skips the sender
    assert got == expected
    for client in mixed.clients:
        assert all(len(nc.messages(client, e)) <= 1 for e in ("news", "one", "two", "three", "four"))


def test_namespace_other_than_root(mixed: Mixed) -> None:
    nc = mixed.nc
    connect_all(nc, {"chat-p": mixed.py, "chat-n": mixed.node}, nsp="/chat")
    nc.call("chat-n", "join", "lobby")
    nc.call("chat-p", "join", "lobby")
    op(nc, "p1", kind="emit", nsp="/chat", to=["lobby"], event="from-py", args=[b"\x01"])
    op(nc, "n1", kind="emit", nsp="/chat", to=["lobby"], event="from-node", args=[b"\x02"])
    for client in ("chat-p", "chat-n"):
        assert nc.wait_for_event(client, "from-py") == [b"\x01"]
        assert nc.wait_for_event(client, "from-node") == [b"\x02"]
    fence(nc, "p1", mixed.clients)
    fence(nc, "n1", mixed.clients)
    for client in mixed.clients:
        assert nc.messages(client, "from-py") == [] and nc.messages(client, "from-node") == []


def test_values_json_has_no_literal_for(mixed: Mixed) -> None:
    """A Node server emitting a typed array, undefined (in an object and in an array) and a
    Map: its own clients get the JSON forms (the typed array as binary); the Python
    server's clients get the same through Redis (notepack MessagePack)."""
    nc = mixed.nc
    op(nc, "n1", kind="emit_special", event="special", date=False)
    expected = ["no date", b"\x01\x02\x03", {"kept": 1}, [None, 2], {}]
    for client in mixed.clients:
        assert nc.wait_for_event(client, "special") == expected


def test_node_date_reaches_python_clients_as_iso_string(mixed: Mixed) -> None:
    nc = mixed.nc
    op(nc, "n1", kind="emit_special", event="special")
    assert nc.wait_for_event("p1", "special", timeout=2)[0] == "2024-01-02T03:04:05.678Z"


# ======================================================================= fetch / remote rooms

def test_fetch_sockets_both_ways(mixed: Mixed) -> None:
    nc = mixed.nc
    join(nc, "p2", "fetchme")
    join(nc, "n2", "fetchme", "other")
    for asker, remote_side in (("p1", ("n1", "n2")), ("n1", ("p1", "p2"))):
        everyone = {d["id"]: d for d in op(nc, asker, kind="fetch")}
        assert set(everyone) == set(mixed.sids.values()), asker
        for client, sid in mixed.sids.items():
            item = everyone[sid]
            server = "P" if client.startswith("p") else "N"
            assert item["data"] == {"server": server, "user": client}, (asker, item)
            assert item["auth"] == {"user": client}
            assert item["remote"] is (client in remote_side), (asker, item)
            assert sid in item["rooms"]
        assert sorted(everyone[mixed.sids["n2"]]["rooms"]) == sorted(["fetchme", "other", mixed.sids["n2"]])
        narrowed = op(nc, asker, kind="fetch", to=["fetchme"], except_=["other"])
        assert [d["id"] for d in narrowed] == [mixed.sids["p2"]]


def test_all_rooms_from_node_includes_python_rooms(mixed: Mixed) -> None:
    nc = mixed.nc
    join(nc, "p1", "py-room")
    join(nc, "n1", "node-room")
    rooms = op(nc, "n1", kind="all_rooms")
    assert {"py-room", "node-room", mixed.sids["p1"], mixed.sids["n2"]} <= set(rooms)


@pytest.mark.parametrize("actor", ["p1", "n1"])
def test_sockets_join_leave_disconnect_both_ways(mixed: Mixed, actor: str) -> None:
    nc = mixed.nc
    targets = ("p2", "n2")
    for client in targets:
        join(nc, client, "team")
    op(nc, actor, kind="join", to=["team"], room="club")
    for client in targets:
        poll(lambda c=client: nc.call(c, "rooms")[0] == ["club", "team"], what=f"{client} joined club")
    op(nc, actor, kind="leave", to=["club"], room="team")
    for client in targets:
        poll(lambda c=client: nc.call(c, "rooms")[0] == ["club"], what=f"{client} left team")
    # RemoteSocket.join from each side on the other's sockets.
    op(nc, actor, kind="remote_join", to=["club"], room="via-remote-socket")
    other = "n2" if actor == "p1" else "p2"
    poll(lambda: "via-remote-socket" in nc.call(other, "rooms")[0], what=f"{other} joined via RemoteSocket")
    # RemoteSocket.emit
    op(nc, actor, kind="remote_emit", to=["club"], event="direct", args=["hi", b"\x09"])
    assert nc.wait_for_event(other, "direct") == ["hi", b"\x09"]
    op(nc, actor, kind="disconnect", to=["club"])
    for client in targets:
        assert nc.wait_for(client, "disconnect")["reason"] == "io server disconnect"
    fence(nc, actor, ["p1", "n1"])
    assert nc.state("p1")["connected"] and nc.state("n1")["connected"]


def test_responses_on_specific_channels(live_server: Any, redis_server: Any, node_server: Any,
                                        node_clients: NodeClients) -> None:
    """``publishOnSpecificResponseChannel`` on both sides: answers go to
    ``socket.io-response#/#<uid of the asking server>#``."""
    nc = node_clients
    py = start_cluster(live_server, redis_server.url, ["P"],
                       adapter_options={"publish_on_specific_response_channel": True})[0]
    nd = node_server(redis_server.url, "N", {"publishOnSpecificResponseChannel": True})
    sids = connect_all(nc, {"p1": py, "n1": nd})
    wait_servers(nc, "p1", 2)
    wait_servers(nc, "n1", 2)
    spy = redis_py.Redis.from_url(redis_server.url).pubsub()
    spy.psubscribe("socket.io-response#*")
    try:
        for asker in ("p1", "n1"):
            assert sorted(d["id"] for d in op(nc, asker, kind="fetch")) == sorted(sids.values())
        # Both fetch_sockets answers were published on a specific channel.
        fetch_channels = []
        deadline = time.monotonic() + WAIT
        while len(fetch_channels) < 2 and time.monotonic() < deadline:
            message = spy.get_message(timeout=0.2)
            if message and message["type"] == "pmessage" and b'"sockets"' in message["data"]:
                fetch_channels.append(message["channel"].decode())
        assert len(fetch_channels) == 2, fetch_channels
        assert all(re.fullmatch(r"socket\.io-response#/#[\w-]{6}#", c) for c in fetch_channels), fetch_channels
        assert fetch_channels[0] != fetch_channels[1]
    finally:
        spy.close()
    for asker in ("p1", "n1"):
        nc.ack_with("p1" if asker == "n1" else "n1", "q", "remote answer")
        nc.ack_with(asker, "q", "local answer")
        assert sorted(op(nc, asker, kind="call", event="q", timeout=3)["ok"]) == ["local answer", "remote answer"]
    assert op(nc, "p1", kind="server_side_call", event="record") == {"ok": ["N"]}
    assert op(nc, "n1", kind="server_side_call", event="record") == {"ok": ["P"]}


# ======================================================================= server-side emit

def test_server_side_emit_both_ways(mixed: Mixed) -> None:
    nc = mixed.nc
    op(nc, "p1", kind="server_side_emit", event="record", args=["from P", {"n": 1}])
    poll(lambda: op(nc, "n1", kind="received") == [["from P", {"n": 1}]], what="Node ran the handler")
    op(nc, "n1", kind="server_side_emit", event="record", args=["from N", [1, 2]])
    poll(lambda: op(nc, "p1", kind="received") == [["from N", [1, 2]]], what="Python ran the handler")
    # With acknowledgements.
    assert op(nc, "p1", kind="server_side_call", event="record", args=["q"]) == {"ok": ["N"]}
    assert op(nc, "n1", kind="server_side_call", event="record", args=["q"]) == {"ok": ["P"]}
    # A handler that broadcasts to everyone from the other server.
    op(nc, "n1", kind="server_side_emit", event="ping-servers", args=["x"])
    for client in mixed.clients:
        assert nc.wait_for_event(client, "server-side") == ["P", "x"]


@pytest.mark.parametrize("asker", ["p1", "n1"])
def test_server_side_call_timeout_both_ways(mixed: Mixed, asker: str) -> None:
    nc = mixed.nc
    started = time.monotonic()
    # Python asks with a 1 s timeout; Node with its requestsTimeout (2 s). The other
    # server's "slow" handler answers after 2.5 s (Python) / 3 s (Node).
    answer = op(nc, asker, kind="server_side_call", event="slow", timeout=1.0)
    assert answer == {"timeout": []}
    assert time.monotonic() - started < 4.0


# ======================================================================= broadcast with acks

@pytest.mark.parametrize("asker", ["p1", "n1"])
def test_broadcast_with_acks_both_ways(mixed: Mixed, asker: str) -> None:
    nc = mixed.nc
    for client in mixed.clients:
        nc.ack_with(client, "survey", f"answer {client}", b"\x01")  # only the first argument counts
    answer = op(nc, asker, kind="call", event="survey", timeout=3)
    assert sorted(answer["ok"]) == sorted(f"answer {c}" for c in mixed.clients)
    join(nc, "p2", "panel")
    join(nc, "n2", "panel")
    answer = op(nc, asker, kind="call", to=["panel"], event="survey", timeout=3)
    assert sorted(answer["ok"]) == ["answer n2", "answer p2"]
    # Binary answers travel back through Redis (MessagePack BROADCAST_ACK responses).
    for client in mixed.clients:
        nc.ack_with(client, "bin-survey", client.encode() + b"\xff")
    answer = op(nc, asker, kind="call", event="bin-survey", timeout=3)
    assert sorted(answer["ok"]) == sorted(c.encode() + b"\xff" for c in mixed.clients)


@pytest.mark.parametrize("asker", ["p1", "n1"])
def test_broadcast_with_acks_partial_answers(mixed: Mixed, asker: str) -> None:
    nc = mixed.nc
    silent = "n2" if asker == "p1" else "p2"
    for client in mixed.clients:
        if client != silent:
            nc.ack_with(client, "survey", client)
    started = time.monotonic()
    answer = op(nc, asker, kind="call", event="survey", timeout=1.5)
    assert sorted(answer["timeout"]) == sorted(c for c in mixed.clients if c != silent)
    assert time.monotonic() - started < 4.0
    assert nc.wait_for_message(silent, "survey").get("ackId") is not None


# ======================================================================= ordering

def test_node_join_then_emit_reaches_python_clients(mixed: Mixed) -> None:
    nc = mixed.nc
    for i in range(5):
        op(nc, "n1", kind="seq", ops=[
            {"kind": "join", "to": [mixed.sids["p2"], mixed.sids["n2"]], "room": f"seq-{i}"},
            {"kind": "emit", "to": [f"seq-{i}"], "event": "seq", "args": [i]},
        ])
    fence(nc, "n1", mixed.clients)
    # The Python server applies the join (request channel) before the room broadcast that
    # the Node server published after it, so its client gets every message, in order.
    # (The Node server's own client n2 is not checked: the Node adapter applies its own
    # socketsJoin only when the request comes back from Redis, after its local broadcast.)
    assert [a[0] for a in nc.messages("p2", "seq")] == list(range(5))


# ======================================================================= emitters

def test_node_redis_emitter_reaches_python_and_node_clients(mixed: Mixed) -> None:
    nc = mixed.nc
    connect_all(nc, {"chat-p": mixed.py, "chat-n": mixed.node}, nsp="/chat")
    nc.call("chat-p", "join", "room")
    join(nc, "p2", "e-room")
    join(nc, "n2", "e-room")
    join(nc, "p1", "e-other")
    run_node_emitter(mixed.redis.url, [
        {"kind": "emit", "event": "all", "args": ["everyone", {"x": [1, None]}]},
        {"kind": "emit", "event": "bin", "args": [b"\x00\xff" * 100, {"in": b"\x01"}]},
        {"kind": "emit", "to": ["e-room"], "event": "room-only"},
        {"kind": "emit", "to": ["e-room", "e-other"], "except": ["e-other"], "event": "room-not-other"},
        {"kind": "emit", "nsp": "/chat", "to": ["room"], "event": "chat-room", "args": [1]},
        {"kind": "server_side_emit", "event": "record", "args": ["from node emitter"]},
        {"kind": "join", "to": ["e-room"], "room": "e-joined"},
    ])
    for client in mixed.clients:
        assert nc.wait_for_event(client, "all") == ["everyone", {"x": [1, None]}]
        assert nc.wait_for_event(client, "bin") == [b"\x00\xff" * 100, {"in": b"\x01"}]
    for client in ("p2", "n2"):
        assert nc.wait_for_event(client, "room-only") == []
        assert nc.wait_for_event(client, "room-not-other") == []
    assert nc.wait_for_event("chat-p", "chat-room") == [1]
    for client in ("p1", "n1"):
        poll(lambda c=client: op(nc, c, kind="received") == [["from node emitter"]], what=f"record via {client}")
    for client in ("p2", "n2"):
        poll(lambda c=client: "e-joined" in nc.call(c, "rooms")[0], what=f"{client} joined e-joined")
    fence(nc, "p1", mixed.clients)
    fence(nc, "n1", mixed.clients)
    for client in ("p1", "n1"):
        assert nc.messages(client, "room-only") == [] and nc.messages(client, "room-not-other") == []
    run_node_emitter(mixed.redis.url, [{"kind": "disconnect", "to": ["e-joined"]}])
    for client in ("p2", "n2"):
        assert nc.wait_for(client, "disconnect")["reason"] == "io server disconnect"


def test_python_emitter_reaches_node_server_clients(mixed: Mixed) -> None:
    nc = mixed.nc
    emitter = socketio_sync.Emitter(mixed.redis.url)
    join(nc, "n2", "py-e")
    emitter.emit("hello", "from python", b"\x07")
    for client in mixed.clients:
        assert nc.wait_for_event(client, "hello") == ["from python", b"\x07"]
    emitter.to("py-e").emit("room")
    assert nc.wait_for_event("n2", "room") == []
    emitter.server_side_emit("record", "py emitter")
    poll(lambda: op(nc, "n1", kind="received") == [["py emitter"]], what="Node ran the handler")
    emitter.in_("py-e").sockets_join("py-e2")
    poll(lambda: "py-e2" in nc.call("n2", "rooms")[0], what="n2 joined py-e2")
    emitter.in_("py-e2").disconnect_sockets()
    assert nc.wait_for("n2", "disconnect")["reason"] == "io server disconnect"
    fence(nc, "n1", ["p1", "p2", "n1"])
    assert nc.messages("n1", "room") == []
