"""Fast checks of the Node-API pieces without a network: broadcast flags reach the engine
as packet options, parent namespaces resolve and fan out, listener bookkeeping. The
recipients are fake sockets (objects with ``_send_prepared``) put in a namespace."""
from __future__ import annotations

import re
from typing import Any

import pytest

import socketio_sync
from socketio_sync import ParentNamespace, sio
from socketio_sync.socket import _takes_two
from socketio_sync.wsgi.engine import Outgoing


class FakeSocket:
    """Records what a broadcast hands to a socket."""

    def __init__(self, sid: str) -> None:
        self.id = sid
        self.received: list[tuple[Outgoing, sio.Packet | None]] = []

    def _send_prepared(self, out: Outgoing, packet: sio.Packet | None = None) -> None:
        self.received.append((out, packet))


def add_fake(nsp: Any, sid: str, *rooms: str) -> FakeSocket:
    sock = FakeSocket(sid)
    nsp.sockets[sid] = sock
    nsp.adapter.add_all(sid, (sid, *rooms))
    return sock


def test_flags_reach_the_engine_as_packet_options() -> None:
    io = socketio_sync.Server()
    a = add_fake(io.sockets, "a", "r")
    io.emit("plain")
    io.compress(False).emit("nc")
    io.volatile.emit("vol")
    io.to("r").volatile.compress(False).emit("both")
    opts = [(out.volatile, out.compress, packet.data[0]) for out, packet in a.received if packet]
    assert opts == [(False, True, "plain"), (False, False, "nc"), (True, True, "vol"), (True, False, "both")]
    # immutable operators: the flags did not stick
    assert io.to("r").flags == {}


def test_parent_namespace_resolves_and_fans_out() -> None:
    io = socketio_sync.Server()
    created: list[str] = []
    io.on("new_namespace", lambda nsp: created.append(nsp.name))
    rooms = io.of(re.compile(r"^/room-\d+$"))
    assert isinstance(rooms, ParentNamespace)

    def boom(name: str, auth: dict[str, Any]) -> bool:
        raise RuntimeError("matcher bug")

    io.of(boom)
    users = io.of(lambda name, auth: auth.get("ok") is True)
    assert io._resolve_namespace("/room-x", {}) is None  # boom counts as "no"
    one = io._resolve_namespace("/room-1", {})
    assert one is not None and one.parent is rooms and io.of("/room-1") is one
    assert io._resolve_namespace("/room-1", {}) is one
    two = io._resolve_namespace("/room-2", {})
    assert io._resolve_namespace("/anything", {"ok": True}).parent is users  # type: ignore[union-attr]
    assert created == ["/room-1", "/room-2", "/anything"]
    assert sorted(rooms.children) == ["/room-1", "/room-2"]

    s1 = add_fake(one, "s1", "vip")
    s2 = add_fake(two, "s2")
    rooms.emit("tick", 1)
    rooms.to("vip").emit("tick", 2)
    got = {s.id: [(p.nsp, p.data) for _, p in s.received if p] for s in (s1, s2)}
    assert got == {"s1": [("/room-1", ["tick", 1]), ("/room-1", ["tick", 2])], "s2": [("/room-2", ["tick", 1])]}

    # middlewares and connection handlers of the parent apply to children, even later ones
    def mw(socket: Any, next: Any) -> None:
        next()

    rooms.use(mw)
    assert one._all_middlewares() == [mw]
    with pytest.raises(socketio_sync.LocalProtocolError):
        rooms.server_side_emit("x")


def test_cleanup_of_empty_children() -> None:
    io = socketio_sync.Server(cleanup_empty_child_namespaces=True)
    rooms = io.of(re.compile(r"^/r\d$"))
    child = io._resolve_namespace("/r1", {})
    assert child is not None
    child._socket_left()
    assert "/r1" not in io.namespaces and rooms.children == {}
    keep = socketio_sync.Server()
    keep.of(re.compile(r"^/r\d$"))
    kept = keep._resolve_namespace("/r1", {})
    assert kept is not None
    kept._socket_left()
    assert "/r1" in keep.namespaces


def test_namespace_once_off_listeners() -> None:
    io = socketio_sync.Server()
    calls: list[str] = []

    def a(socket: Any) -> None:
        calls.append("a")

    def b(socket: Any) -> None:
        calls.append("b")

    io.once("connection", a)
    io.on("connection", b)
    assert len(io.listeners("connection")) == 2
    io.off("connection", a)  # removes the once-wrapper too
    assert io.listeners("connection") == [b]
    io.off("connection")
    assert io.listeners("connection") == []
    io.on("new_namespace", b)
    assert io.listeners("new_namespace") == [b]
    io.off("new_namespace", b)
    assert io.listeners("new_namespace") == []


def test_of_with_a_handler_and_bad_names() -> None:
    io = socketio_sync.Server()

    def fn(socket: Any) -> None: ...

    nsp = io.of("chat", fn)  # the leading slash is added
    assert nsp.name == "/chat" and nsp.listeners("connection") == [fn]
    with pytest.raises(TypeError):
        io.of(42)  # type: ignore[arg-type]


def test_middleware_form_is_told_by_its_signature() -> None:
    def one(packet: list[Any]) -> None: ...
    def two(packet: list[Any], next: Any) -> None: ...
    def star(*args: Any) -> None: ...

    assert (_takes_two(one), _takes_two(two), _takes_two(star)) == (False, True, True)
    assert _takes_two(lambda packet, nxt=None: None)


def test_class_namespace_needs_registration() -> None:
    class Chat(socketio_sync.ClassNamespace):
        def on_hi(self, socket: Any) -> None: ...

    chat = Chat("/chat")
    with pytest.raises(socketio_sync.LocalProtocolError):
        chat.emit("x")
    io = socketio_sync.Server()
    nsp = io.register_namespace(chat)
    assert nsp is io.of("/chat") and chat.nsp is nsp and len(nsp.listeners("connection")) == 1
    with pytest.raises(TypeError):
        io.register_namespace(object())  # type: ignore[arg-type]
